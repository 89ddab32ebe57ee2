//! Test helpers: loading the reference fixtures of `tests/fixtures/stats/` and
//! comparing to them within 1e-6 relative.

use serde_json::Value;

use super::{Arm, Comparison, MetricType, Moments, PairedMoments, Settings};

/// Relative tolerance against the reference numbers.
pub(super) const RELATIVE: f64 = 1e-6;
/// Absolute floor, for values near 0 (p-values that scipy flushes to 0 via
/// `1 - cdf`, risks of 1e-300 that underflow differently).
pub(super) const ABSOLUTE: f64 = 1e-12;

/// The `cases` of a fixture file, after checking its header names its tools.
pub(super) fn cases(file: &str) -> Vec<Value> {
    let path = format!("{}/tests/fixtures/stats/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let json: Value = serde_json::from_str(&text).unwrap();
    let header = &json["header"];
    assert!(
        header["versions"]["gbstats"].is_string(),
        "{path}: no versions"
    );
    assert!(header["regenerate"].is_string(), "{path}: no command");
    let cases = json["cases"].as_array().unwrap().clone();
    assert_eq!(header["cases"].as_u64(), Some(cases.len() as u64));
    cases
}

/// A fixture's metric type: `"proportion"` or (anything else) `"mean"`.
pub(super) fn metric_type(value: &Value) -> MetricType {
    match value.as_str() {
        Some("proportion") => MetricType::Proportion,
        _ => MetricType::Mean,
    }
}

/// The arm `key` (`"control"`, `"treatment"`) of a case.
pub(super) fn arm(case: &Value, key: &str) -> Arm {
    let a = &case[key];
    Arm::new(
        metric_type(&case["metric_type"]),
        Moments::new(
            a["n"].as_u64().unwrap(),
            a["sum"].as_f64().unwrap(),
            a["sum_squares"].as_f64().unwrap(),
        ),
    )
}

/// The paired moments of arm `key` of a ratio or CUPED case.
pub(super) fn paired(case: &Value, key: &str) -> PairedMoments {
    let a = &case[key];
    let f = |k: &str| a[k].as_f64().unwrap();
    PairedMoments::new(
        a["n"].as_u64().unwrap(),
        f("sum_x"),
        f("sum_squares_x"),
        f("sum_y"),
        f("sum_squares_y"),
        f("sum_products"),
    )
}

/// Checks the [`Comparison`] that `run` makes from each case of `file` (a fixture in
/// `compare.json`'s schema) against the case's `want`, once per sequential N* the case
/// records (or at the default when it records none), and returns how many were
/// checked. `run` gets a label for its own assertions, the case and the settings.
pub(super) fn check_comparisons(
    file: &str,
    mut run: impl FnMut(&str, &Value, &Settings) -> Comparison,
) -> usize {
    let mut checked = 0;
    for case in cases(file) {
        let name = case["name"].as_str().unwrap();
        let want = &case["want"];
        let seq = want["sequential"].as_object().cloned().unwrap_or_default();
        let tunings: Vec<String> = if seq.is_empty() {
            vec!["5000".into()]
        } else {
            seq.keys().cloned().collect()
        };
        for n_star in tunings {
            let settings = Settings {
                alpha: case["settings"]["alpha"].as_f64().unwrap(),
                sequential_tuning: n_star.parse().unwrap(),
                higher_is_better: case["settings"]["higher_is_better"].as_bool().unwrap(),
            };
            let label = format!("{file}/{name}/N*={n_star}");
            let got = run(&label, &case, &settings);
            assert_comparison(&label, &got, want, &want["sequential"][&n_star]);
            checked += 1;
        }
    }
    checked
}

/// `got` against a fixture's `want` (and `want_seq`, its figures at this N*).
fn assert_comparison(label: &str, got: &Comparison, want: &Value, want_seq: &Value) {
    assert_eq!(
        got.abs_reason.map(|r| r.as_str()),
        want["abs_reason"].as_str(),
        "{label} abs_reason"
    );
    assert_eq!(
        got.rel_reason.map(|r| r.as_str()),
        want["rel_reason"].as_str(),
        "{label} rel_reason"
    );
    // Where gbstats refuses, we refuse too.
    if !want["gbstats_error"].is_null() {
        assert!(
            got.p_value.is_none() && got.chance_to_win.is_none(),
            "{label}"
        );
    }
    if !want["gbstats_abs_error"].is_null() {
        assert!(got.abs_p_value.is_none(), "{label}");
    }
    let singles = [
        ("abs_effect", got.abs_effect),
        ("abs_p_value", got.abs_p_value),
        ("rel_effect", got.rel_effect),
        ("p_value", got.p_value),
        ("chance_to_win", got.chance_to_win),
        ("risk", got.risk),
        ("risk_control", got.risk_control),
    ];
    for (field, value) in singles {
        assert_close(label, field, value, &want[field]);
    }
    let pairs = [
        ("abs_ci", got.abs_ci),
        ("rel_ci", got.rel_ci),
        ("credible_interval", got.credible_interval),
    ];
    for (field, value) in pairs {
        assert_close_pair(label, field, value, &want[field]);
    }
    assert_close_pair(label, "seq_rel_ci", got.seq_rel_ci, &want_seq["seq_rel_ci"]);
    assert_close(
        label,
        "seq_p_value",
        got.seq_p_value,
        &want_seq["seq_p_value"],
    );
    if let Some(s) = want["significant"].as_bool() {
        assert_eq!(got.significant, s, "{label} significant");
    }
}

/// Every number of `got` that is there is finite.
pub(super) fn assert_all_finite(label: &str, got: &Comparison) {
    let nums = [
        got.abs_effect,
        got.abs_p_value,
        got.rel_effect,
        got.p_value,
        got.seq_p_value,
        got.chance_to_win,
        got.risk,
        got.risk_control,
    ];
    assert!(nums.iter().flatten().all(|x| x.is_finite()), "{label}");
    for ci in [
        got.abs_ci,
        got.rel_ci,
        got.seq_rel_ci,
        got.credible_interval,
    ] {
        assert!(ci.iter().flatten().all(|x| x.is_finite()), "{label}");
    }
}

/// Whether `got` is within tolerance of `want`.
pub(super) fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= RELATIVE * want.abs() + ABSOLUTE
}

/// `got` must be `None` when the fixture has no value, and close to it otherwise.
pub(super) fn assert_close(case: &str, field: &str, got: Option<f64>, want: &Value) {
    match (got, want.as_f64()) {
        (None, None) => {}
        (Some(g), Some(w)) => assert!(close(g, w), "{case} {field}: got {g:e}, want {w:e}"),
        (g, _) => panic!("{case} {field}: got {g:?}, want {want}"),
    }
}

/// As [`assert_close`], for intervals.
pub(super) fn assert_close_pair(case: &str, field: &str, got: Option<[f64; 2]>, want: &Value) {
    match (got, want.as_array()) {
        (None, None) => {}
        (Some(g), Some(w)) => {
            assert_eq!(w.len(), 2, "{case} {field}");
            assert_close(case, field, Some(g[0]), &w[0]);
            assert_close(case, field, Some(g[1]), &w[1]);
        }
        (g, _) => panic!("{case} {field}: got {g:?}, want {want}"),
    }
}
