//! Statistical and structural properties of assignment.
//!
//! - determinism: the same user always gets the same answer;
//! - variant shares match the weights (chi-square goodness of fit);
//! - experiments with different seeds bucket independently (chi-square test
//!   of independence on the K×K contingency table);
//! - raising coverage never moves or drops an included user;
//! - all of it for non-ASCII ids too (UTF-16 hashing of BMP and astral
//!   characters).
//!
//! The chi-square p-values come from the regularized upper incomplete gamma
//! function implemented below (series / continued fraction, as in Numerical
//! Recipes §6.2), checked against table values.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use proptest::prelude::*;
use serde_json::{json, Value};
use sluice_sdk::{
    Attributes, CompiledRuleset, ExperimentRule, Reason, RuleStatus, Ruleset, VariantRule,
};

// ---------------------------------------------------------------- helpers

fn rule(key: &str, weights: &[f64], coverage: f64, hash_version: u32) -> ExperimentRule {
    ExperimentRule {
        key: key.to_owned(),
        status: RuleStatus::Running,
        variants: weights
            .iter()
            .enumerate()
            .map(|(i, w)| VariantRule {
                key: format!("v{i}"),
                weight: *w,
                value: json!(i),
            })
            .collect(),
        coverage,
        condition: None,
        hash_attribute: "id".to_owned(),
        seed: key.to_owned(),
        hash_version,
        namespace: None,
        shipped_variant: None,
        dimensions: Vec::new(),
    }
}

fn compile(rules: Vec<ExperimentRule>) -> CompiledRuleset {
    let (c, warnings) = CompiledRuleset::compile(Ruleset {
        version: 1,
        experiments: rules,
    });
    assert!(warnings.is_empty(), "{warnings:?}");
    c
}

fn user(id: &str) -> Attributes {
    let mut a = Attributes::new();
    a.insert("id".to_owned(), Value::String(id.to_owned()));
    a
}

/// Variant index of the assignment, or None when not in the experiment.
fn variant_index(c: &CompiledRuleset, key: &str, id: &str) -> Option<usize> {
    let a = c.assign(key, &user(id))?;
    if !a.in_experiment {
        return None;
    }
    a.variant.strip_prefix('v')?.parse().ok()
}

/// Id families: ASCII, Japanese (BMP, non-Latin-1), Latin-1 accents, and
/// emoji (surrogate pairs in UTF-16).
fn id(family: usize, i: usize) -> String {
    match family % 4 {
        0 => format!("user-{i}"),
        1 => format!("ユーザー{i}"),
        2 => format!("élodie.{i}"),
        _ => format!("😀{i}🎉"),
    }
}

// ------------------------------------------------------- chi-square maths

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, n = 9).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized upper incomplete gamma Q(s, x) = Γ(s, x) / Γ(s).
fn gamma_q(s: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + s * x.ln() - ln_gamma(s)).exp();
    if x < s + 1.0 {
        // Series for P(s, x).
        let (mut sum, mut term, mut n) = (1.0 / s, 1.0 / s, s);
        for _ in 0..10_000 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        1.0 - sum * front
    } else {
        // Continued fraction for Q(s, x) (modified Lentz).
        let tiny = 1e-300;
        let mut b = x + 1.0 - s;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - s);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-15 {
                break;
            }
        }
        front * h
    }
}

/// Survival function of the chi-square distribution: P(X > x) for `dof`.
fn chi2_sf(x: f64, dof: usize) -> f64 {
    gamma_q(dof as f64 / 2.0, x / 2.0)
}

#[test]
fn chi2_sf_matches_tables() {
    // Upper-tail critical values from the NIST/SEMATECH e-Handbook of
    // Statistical Methods, table 1.3.6.7.4 (chi-square distribution).
    for (x, dof, p) in [
        (3.841, 1, 0.05),
        (10.828, 1, 0.001),
        (9.210, 2, 0.01),
        (13.816, 2, 0.001),
        (16.266, 3, 0.001),
        (18.467, 4, 0.001),
        (27.877, 9, 0.001),
        (23.209, 10, 0.01),
    ] {
        let got = chi2_sf(x, dof);
        assert!(
            (got - p).abs() < p * 0.01,
            "sf({x}, {dof}) = {got}, table {p}"
        );
    }
    assert!((chi2_sf(0.0, 3) - 1.0).abs() < 1e-12);
}

/// Goodness of fit of `counts` against `weights` (which sum to 1).
fn goodness_of_fit(counts: &[u64], weights: &[f64]) -> f64 {
    let n: u64 = counts.iter().sum();
    let stat: f64 = counts
        .iter()
        .zip(weights)
        .map(|(&o, &w)| {
            let e = n as f64 * w;
            (o as f64 - e).powi(2) / e
        })
        .sum();
    chi2_sf(stat, counts.len() - 1)
}

/// Chi-square test of independence on a contingency table.
fn independence(table: &[Vec<u64>]) -> f64 {
    let rows: Vec<f64> = table.iter().map(|r| r.iter().sum::<u64>() as f64).collect();
    let cols: Vec<f64> = (0..table[0].len())
        .map(|j| table.iter().map(|r| r[j]).sum::<u64>() as f64)
        .collect();
    let n: f64 = rows.iter().sum();
    let mut stat = 0.0;
    for (i, r) in table.iter().enumerate() {
        for (j, &o) in r.iter().enumerate() {
            let e = rows[i] * cols[j] / n;
            stat += (o as f64 - e).powi(2) / e;
        }
    }
    chi2_sf(stat, (rows.len() - 1) * (cols.len() - 1))
}

// ------------------------------------------------------------- properties

const N: usize = 100_000;

#[test]
fn variant_shares_follow_the_weights() {
    for (weights, hash_version, family) in [
        (vec![0.5, 0.5], 2, 0),
        (vec![0.2, 0.3, 0.5], 2, 1),
        (vec![0.1, 0.1, 0.1, 0.7], 2, 2),
        (vec![0.25, 0.25, 0.25, 0.25], 2, 3),
        (vec![0.5, 0.5], 1, 0),
        (vec![0.2, 0.8], 1, 1),
    ] {
        let c = compile(vec![rule("shares", &weights, 1.0, hash_version)]);
        let mut counts = vec![0u64; weights.len()];
        for i in 0..N {
            let v = variant_index(&c, "shares", &id(family, i)).expect("full coverage");
            counts[v] += 1;
        }
        let p = goodness_of_fit(&counts, &weights);
        assert!(
            p > 0.001,
            "weights {weights:?} v{hash_version} family {family}: counts {counts:?}, p = {p}"
        );
    }
}

#[test]
fn coverage_share_matches_coverage() {
    let c = compile(vec![rule("cov", &[0.5, 0.5], 0.3, 2)]);
    let included = (0..N)
        .filter(|&i| variant_index(&c, "cov", &id(1, i)).is_some())
        .count() as u64;
    let p = goodness_of_fit(&[included, N as u64 - included], &[0.3, 0.7]);
    assert!(p > 0.001, "included {included} of {N}, p = {p}");
}

#[test]
fn different_seeds_are_independent() {
    for (wa, wb, family) in [
        (vec![0.5, 0.5], vec![0.5, 0.5], 0),
        (
            vec![0.2, 0.3, 0.5],
            vec![1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0],
            1,
        ),
        (vec![0.5, 0.5], vec![0.1, 0.9], 3),
    ] {
        let c = compile(vec![rule("alpha", &wa, 1.0, 2), rule("beta", &wb, 1.0, 2)]);
        let mut table = vec![vec![0u64; wb.len()]; wa.len()];
        for i in 0..N {
            let uid = id(family, i);
            let a = variant_index(&c, "alpha", &uid).expect("in alpha");
            let b = variant_index(&c, "beta", &uid).expect("in beta");
            table[a][b] += 1;
        }
        let p = independence(&table);
        assert!(p > 0.001, "table {table:?}, p = {p}");
    }
}

#[test]
fn raising_coverage_never_moves_or_drops_a_user() {
    for hash_version in [1, 2] {
        let steps = [0.05, 0.2, 0.5, 1.0];
        let compiled: Vec<_> = steps
            .iter()
            .map(|&cov| compile(vec![rule("ramp", &[0.2, 0.3, 0.5], cov, hash_version)]))
            .collect();
        let mut included = vec![0usize; steps.len()];
        for i in 0..20_000 {
            let uid = id(i % 4, i);
            let mut previous: Option<usize> = None;
            for (s, c) in compiled.iter().enumerate() {
                let now = variant_index(c, "ramp", &uid);
                if let Some(p) = previous {
                    assert_eq!(now, Some(p), "{uid} moved/dropped at coverage {}", steps[s]);
                }
                if now.is_some() {
                    included[s] += 1;
                }
                previous = now;
            }
        }
        assert!(
            included.windows(2).all(|w| w[0] < w[1]),
            "coverage should add users: {included:?}"
        );
    }
}

#[test]
fn assignment_is_deterministic_across_compiles_and_entry_points() {
    let rules = || {
        vec![
            rule("a", &[0.5, 0.5], 1.0, 2),
            rule("b", &[0.1, 0.9], 0.5, 1),
            rule("c", &[0.2, 0.3, 0.5], 0.8, 2),
        ]
    };
    let first = compile(rules());
    let second = compile(rules());
    for i in 0..2_000 {
        let u = user(&id(i % 4, i));
        let all: Vec<_> = first.assign_all(&u).collect();
        for a in &all {
            assert_eq!(Some(a), first.assign(a.experiment, &u).as_ref());
            assert_eq!(Some(a), second.assign(a.experiment, &u).as_ref());
        }
        let again: Vec<_> = second.assign_all(&u).collect();
        assert_eq!(all, again);
    }
}

#[test]
fn non_ascii_ids_hash_over_utf16_units() {
    // Reference values computed independently with a Python FNV-1a over
    // UTF-16-LE code units (see sdk/spec/vectors.json, generated and
    // cross-checked by sdk/spec/check_vectors.py).
    use sluice_sdk::hash::{fnv1a32, hash};
    assert_eq!(fnv1a32("ユーザー"), 0x545b_d3b5);
    assert_eq!(fnv1a32("élodie"), 0x9e41_3a61);
    assert_eq!(fnv1a32("😀"), 0xcb31_c4b8);
    // Differs from FNV over UTF-8 bytes.
    let utf8 = "élodie".bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    assert_ne!(utf8, fnv1a32("élodie"));
    assert!(hash("seed", "ユーザー", 2).is_some());
}

// ------------------------------------------------------------- proptests

fn any_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_-]{1,24}",
        "\\PC{1,12}",
        "[ぁ-んァ-ン一-龯]{1,8}",
        "[😀-🙏🎉]{1,4}[a-z]{0,4}",
    ]
}

fn any_weights() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(1u32..100, 2..6).prop_map(|raw| {
        let total: u32 = raw.iter().sum();
        raw.iter()
            .map(|r| f64::from(*r) / f64::from(total))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn prop_coverage_is_monotone(
        uid in any_id(),
        weights in any_weights(),
        mut coverages in prop::collection::vec(0.0f64..=1.0, 2..6),
        hash_version in 1u32..=2,
    ) {
        coverages.sort_by(f64::total_cmp);
        let mut previous: Option<usize> = None;
        for cov in coverages {
            let c = compile(vec![rule("p", &weights, cov, hash_version)]);
            let now = variant_index(&c, "p", &uid);
            if previous.is_some() {
                prop_assert_eq!(now, previous);
            }
            previous = now;
        }
    }

    #[test]
    fn prop_assign_all_agrees_with_assign(
        uid in any_id(),
        country in "[A-Z]{2}",
        age in 0u32..100,
        n in 1usize..30,
    ) {
        let rules: Vec<_> = (0..n)
            .map(|k| {
                let mut r = rule(&format!("e{k}"), &[0.5, 0.5], 0.9, if k % 3 == 0 { 1 } else { 2 });
                if k % 2 == 0 {
                    r.condition = Some(json!({"country": {"$in": ["CN", "US", "DE"]}, "age": {"$gte": k}}));
                }
                if k % 5 == 4 {
                    r.hash_attribute = "device".to_owned();
                }
                r
            })
            .collect();
        let c = compile(rules);
        let mut u = user(&uid);
        u.insert("country".into(), json!(country));
        u.insert("age".into(), json!(age));
        u.insert("device".into(), json!(format!("d-{uid}")));
        let all: Vec<_> = c.assign_all(&u).collect();
        prop_assert_eq!(all.len(), n);
        for a in &all {
            let single = c.assign(a.experiment, &u);
            prop_assert_eq!(Some(a), single.as_ref());
            let reason_ok = matches!(a.reason, Reason::Split | Reason::Condition | Reason::Coverage);
            prop_assert!(reason_ok);
        }
    }

    #[test]
    fn prop_hash_is_in_unit_interval(seed in any_id(), uid in any_id(), v in 1u32..=2) {
        let h = sluice_sdk::hash::hash(&seed, &uid, v).unwrap_or(-1.0);
        prop_assert!((0.0..1.0).contains(&h));
    }
}

/// Arbitrary JSON built from the condition language's vocabulary, so that
/// generated conditions hit real operators as well as nonsense.
fn any_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("$and"),
        Just("$or"),
        Just("$nor"),
        Just("$not"),
        Just("$eq"),
        Just("$ne"),
        Just("$lt"),
        Just("$lte"),
        Just("$gt"),
        Just("$gte"),
        Just("$in"),
        Just("$nin"),
        Just("$ini"),
        Just("$nini"),
        Just("$all"),
        Just("$alli"),
        Just("$elemMatch"),
        Just("$size"),
        Just("$exists"),
        Just("$type"),
        Just("$regex"),
        Just("$regexi"),
        Just("$veq"),
        Just("$vgt"),
        Just("$vlte"),
        Just("$inGroup"),
        Just("$notInGroup"),
        Just("$bogus"),
        Just("a"),
        Just("b.c"),
        Just("tags"),
        Just("tags.0"),
        Just("v"),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[a-z0-9.()*+?|^$\\[\\]-]{0,6}".prop_map(Value::String),
        Just(json!("1.2.3-rc.1")),
        Just(json!("string")),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..4).prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Compiling and evaluating arbitrary conditions never panics, and a
    /// condition that compiles strictly gives the same answer as the
    /// lenient (GrowthBook) reading of it.
    #[test]
    fn prop_conditions_never_panic(cond in any_json(), attrs in any_json()) {
        use sluice_sdk::condition::{Condition, SavedGroups};
        let groups: SavedGroups = json!({"g": [1, "a"]}).as_object().cloned().unwrap_or_default();
        let lenient = Condition::compile_lenient(&cond, &groups);
        let answer = lenient.matches_value(&attrs);
        if let Ok(strict) = Condition::compile_with_groups(&cond, &groups) {
            prop_assert_eq!(strict.matches_value(&attrs), answer);
        }
        // And inside a ruleset, whatever the condition, assignment works.
        let mut r = rule("fuzz", &[0.5, 0.5], 1.0, 2);
        r.condition = Some(cond);
        let (c, _) = CompiledRuleset::compile(Ruleset { version: 1, experiments: vec![r] });
        let user = attrs.as_object().cloned().unwrap_or_default();
        prop_assert!(c.assign("fuzz", &user).is_some());
        prop_assert_eq!(c.assign_all(&user).count(), 1);
    }
}
