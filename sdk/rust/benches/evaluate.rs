//! Evaluation hot paths.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-sdk cargo bench -p sluice-sdk -- --measurement-time 3`
//! Targets: one experiment with a 3-clause condition ≤ 100 ns; all of 100
//! such experiments for one user ≤ 5 µs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use sluice_sdk::{Attributes, CompiledRuleset, Ruleset};

fn experiment(key: &str, min_age: u32) -> Value {
    json!({
        "key": key,
        "status": "running",
        "coverage": 1.0,
        "hash_attribute": "id",
        "seed": key,
        "hash_version": 2,
        "condition": {"country": {"$in": ["CN", "US", "DE"]}, "device": "ios", "age": {"$gte": min_age}},
        "variants": [
            {"key": "control", "weight": 0.5, "value": {"price": 199}},
            {"key": "treatment", "weight": 0.5, "value": {"price": 249}}
        ]
    })
}

fn compile(experiments: Vec<Value>) -> CompiledRuleset {
    let ruleset: Ruleset =
        serde_json::from_value(json!({"version": 1, "experiments": experiments})).unwrap();
    let (compiled, warnings) = CompiledRuleset::compile(ruleset);
    assert!(warnings.is_empty(), "{warnings:?}");
    compiled
}

fn users(n: usize) -> Vec<Attributes> {
    (0..n)
        .map(|i| {
            json!({"id": format!("user-{i:06}"), "country": "US", "device": "ios", "age": 30})
                .as_object()
                .cloned()
                .unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let single = compile(vec![experiment("checkout-button", 18)]);
    // 64 users: their attribute maps stay in cache, as a request's freshly
    // parsed attributes would.
    let people = users(64);
    let mut i = 0usize;
    c.bench_function("assign/1 experiment, 3-clause condition", |b| {
        b.iter(|| {
            i = (i + 1) & 63;
            let a = single.assign(black_box("checkout-button"), &people[i]);
            black_box(a.map(|a| a.in_experiment))
        })
    });
    // 8192 users rotated: every lookup misses the caches (worst case).
    let crowd = users(8192);
    let mut ci = 0usize;
    c.bench_function("assign/1 experiment, cold attributes", |b| {
        b.iter(|| {
            ci = (ci + 1) & 8191;
            let a = single.assign(black_box("checkout-button"), &crowd[ci]);
            black_box(a.map(|a| a.in_experiment))
        })
    });

    // 100 experiments with the same targeting (conditions are shared).
    let same = compile(
        (0..100)
            .map(|k| experiment(&format!("exp-{k:03}"), 18))
            .collect(),
    );
    let mut j = 0usize;
    c.bench_function("assign_all/100 experiments, shared condition", |b| {
        b.iter(|| {
            j = (j + 1) & 63;
            let n = same
                .assign_all(&people[j])
                .filter(|a| a.in_experiment)
                .count();
            black_box(n)
        })
    });

    // 100 experiments whose conditions all differ (no sharing possible).
    let distinct = compile(
        (0..100)
            .map(|k| experiment(&format!("exp-{k:03}"), k))
            .collect(),
    );
    assert_eq!(distinct.distinct_conditions(), 100);
    let mut k = 0usize;
    c.bench_function("assign_all/100 experiments, distinct conditions", |b| {
        b.iter(|| {
            k = (k + 1) & 63;
            let n = distinct
                .assign_all(&people[k])
                .filter(|a| a.in_experiment)
                .count();
            black_box(n)
        })
    });

    let cond = sluice_sdk::condition::Condition::compile(
        &json!({"country": {"$in": ["CN", "US", "DE"]}, "device": "ios", "age": {"$gte": 18}}),
    )
    .unwrap();
    let mut m = 0usize;
    c.bench_function("condition/3 clauses", |b| {
        b.iter(|| {
            m = (m + 1) & 63;
            black_box(cond.matches(&people[m]))
        })
    });

    c.bench_function("hash/v2 12-char id", |b| {
        b.iter(|| sluice_sdk::hash::hash(black_box("checkout-button"), black_box("user-000042"), 2))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
