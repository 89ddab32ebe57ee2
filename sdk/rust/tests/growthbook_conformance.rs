//! GrowthBook's cross-SDK conformance cases (`shared/conformance/growthbook-cases.json`,
//! a copy of `packages/sdk-js/test/cases.json`; see its PROVENANCE file).
//!
//! Runs every case of the sections that concern the evaluation core: hash,
//! getBucketRange, chooseVariation, getEqualWeights, inNamespace and
//! evalCondition (with saved groups). Mismatches are collected and reported
//! together. Floats are compared within 1e-6 after GrowthBook's own
//! rounding (its JS tests round hashes and ranges to a few decimals).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::path::PathBuf;

use serde_json::{Map, Value};
use sluice_sdk::bucket::{choose_variation, get_bucket_ranges, get_equal_weights, in_namespace};
use sluice_sdk::condition::Condition;
use sluice_sdk::hash::hash;

fn cases_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/growthbook-cases.json")
}

fn load() -> Option<Value> {
    let path = cases_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(v) => Some(v),
            Err(e) => panic!("{} is not valid JSON: {e}", path.display()),
        },
        Err(_) => {
            println!("skipping: {} not found", path.display());
            None
        }
    }
}

fn section<'a>(cases: &'a Value, name: &str) -> &'a [Value] {
    match cases.get(name).and_then(Value::as_array) {
        Some(items) => items,
        None => panic!("section {name} missing from the conformance file"),
    }
}

/// GrowthBook's tests round to this many decimals before comparing.
fn round(x: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (x * p).round() / p
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn as_f64(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn as_str(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn ranges_of(v: &Value) -> Vec<[f64; 2]> {
    v.as_array()
        .map(|rs| rs.iter().map(|r| [as_f64(&r[0]), as_f64(&r[1])]).collect())
        .unwrap_or_default()
}

struct Report {
    checked: usize,
    failures: Vec<String>,
}

impl Report {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.failures.push(what());
        }
    }
}

#[test]
fn growthbook_conformance() {
    let Some(cases) = load() else { return };
    let mut r = Report {
        checked: 0,
        failures: Vec::new(),
    };

    // ["seed", "value", version, expected | null]
    for c in section(&cases, "hash") {
        let version = c[2].as_u64().unwrap_or(0) as u32;
        let got = hash(as_str(&c[0]), as_str(&c[1]), version);
        let ok = match (got, c[3].as_f64()) {
            (None, None) => true,
            (Some(g), Some(e)) => close(round(g, 5), e),
            _ => false,
        };
        r.check(ok, || format!("hash {c}: got {got:?}"));
    }

    // ["name", [numVariations, coverage, weights | null], expected ranges]
    for c in section(&cases, "getBucketRange") {
        let args = &c[1];
        let n = args[0].as_u64().unwrap_or(0) as usize;
        let weights: Option<Vec<f64>> = args[2].as_array().map(|w| w.iter().map(as_f64).collect());
        let got = get_bucket_ranges(n, as_f64(&args[1]), weights.as_deref());
        let expected = ranges_of(&c[2]);
        let ok = got.len() == expected.len()
            && got
                .iter()
                .zip(&expected)
                .all(|(g, e)| close(round(g[0], 6), e[0]) && close(round(g[1], 6), e[1]));
        r.check(ok, || format!("getBucketRange {c}: got {got:?}"));
    }

    // ["name", n, ranges, expected index | -1]
    for c in section(&cases, "chooseVariation") {
        let got = choose_variation(as_f64(&c[1]), &ranges_of(&c[2]));
        let expected = c[3].as_i64().unwrap_or(-2);
        let got_i = got.map_or(-1, |i| i as i64);
        r.check(got_i == expected, || {
            format!("chooseVariation {c}: got {got_i}")
        });
    }

    // [n, expected weights]
    for c in section(&cases, "getEqualWeights") {
        let n = c[0].as_i64().unwrap_or(0).max(0) as usize;
        let got = get_equal_weights(n);
        let expected: Vec<f64> = c[1]
            .as_array()
            .map(|w| w.iter().map(as_f64).collect())
            .unwrap_or_default();
        let ok = got.len() == expected.len()
            && got
                .iter()
                .zip(&expected)
                .all(|(g, e)| close(round(*g, 8), *e));
        r.check(ok, || format!("getEqualWeights {c}: got {got:?}"));
    }

    // ["name", id, [namespace, lo, hi], expected]
    for c in section(&cases, "inNamespace") {
        let ns = &c[2];
        let got = in_namespace(
            as_str(&c[1]),
            as_str(&ns[0]),
            [as_f64(&ns[1]), as_f64(&ns[2])],
        );
        r.check(Some(got) == c[3].as_bool(), || {
            format!("inNamespace {c}: got {got}")
        });
    }

    // ["name", condition, attributes, expected, savedGroups?]
    let no_groups = Map::new();
    for c in section(&cases, "evalCondition") {
        let groups = c.get(4).and_then(Value::as_object).unwrap_or(&no_groups);
        let cond = Condition::compile_lenient(&c[1], groups);
        let got = cond.matches_value(&c[2]);
        r.check(Some(got) == c[3].as_bool(), || {
            format!("evalCondition {}: got {got}", c[0])
        });
    }

    println!("checked {} GrowthBook conformance cases", r.checked);
    assert!(
        r.failures.is_empty(),
        "{} of {} conformance cases failed:\n{}",
        r.failures.len(),
        r.checked,
        r.failures.join("\n")
    );
    // 15 + 13 + 13 + 6 + 16 + 248 cases in the snapshot; fewer means the file
    // changed shape and cases were silently skipped.
    assert!(r.checked >= 311, "only {} cases checked", r.checked);
}
