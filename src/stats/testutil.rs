//! Test helpers: loading the reference fixtures of `tests/fixtures/stats/` and
//! comparing to them within 1e-6 relative.

use serde_json::Value;

use super::{Arm, MetricType, Moments};

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

/// The arm `key` (`"control"`, `"treatment"`) of a case.
pub(super) fn arm(case: &Value, key: &str) -> Arm {
    let metric = match case["metric_type"].as_str() {
        Some("proportion") => MetricType::Proportion,
        _ => MetricType::Mean,
    };
    let a = &case[key];
    Arm::new(
        metric,
        Moments::new(
            a["n"].as_u64().unwrap(),
            a["sum"].as_f64().unwrap(),
            a["sum_squares"].as_f64().unwrap(),
        ),
    )
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
