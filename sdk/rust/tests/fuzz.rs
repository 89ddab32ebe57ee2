//! Fuzzing the evaluation core with arbitrary input: conditions, whole
//! rulesets and the hash and bucket functions. Whatever they are given, they
//! must not panic; a condition compiles or is refused with an error; an
//! assignment names a variant the rule has.
//!
//! Each property runs `PROPTEST_CASES` cases (256 by default); a longer run:
//! `PROPTEST_CASES=20000 cargo test --release -p sluice-sdk --test fuzz`.
//! `properties.rs` checks what the answers are; this file only that there is
//! one.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sluice_sdk::bucket::{choose_variation, get_bucket_ranges, in_namespace};
use sluice_sdk::condition::{Condition, SavedGroups};
use sluice_sdk::hash::{fnv1a32_utf16, hash};
use sluice_sdk::{
    unit_id, Attributes, CompiledRuleset, ExperimentRule, NamespaceRule, RuleStatus, Ruleset,
    VariantRule,
};

/// Cases per property: `PROPTEST_CASES`, or 256.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Every operator of the condition language, a few it does not have, and
/// attribute paths the generated users have too.
const KEYS: &[&str] = &[
    "$and",
    "$or",
    "$nor",
    "$not",
    "$eq",
    "$ne",
    "$lt",
    "$lte",
    "$gt",
    "$gte",
    "$in",
    "$nin",
    "$ini",
    "$nini",
    "$all",
    "$alli",
    "$elemMatch",
    "$size",
    "$exists",
    "$type",
    "$regex",
    "$regexi",
    "$veq",
    "$vne",
    "$vgt",
    "$vgte",
    "$vlt",
    "$vlte",
    "$inGroup",
    "$notInGroup",
    "$",
    "$bogus",
    "id",
    "country",
    "age",
    "tags",
    "tags.0",
    "a.b.c",
    "",
    ".",
];

fn any_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Scalars: edge numbers, version strings, regexes valid and not, any text.
fn any_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![
            json!(0),
            json!(-0.0),
            json!(1e308),
            json!(-1e308),
            json!(5e-324),
            json!(""),
            json!("1.2.3-rc.1"),
            json!("v10.0.0+build"),
            json!("string"),
            json!("array"),
            json!("("),
            json!("[a-"),
            json!("(?P<x>"),
            json!("a{99999}"),
            json!("\\"),
            json!("(a+)+$"),
            json!("^ユーザー.*😀$"),
        ]),
        "[a-z0-9.()*+?|^$\\[\\]{}\\\\-]{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ]
}

/// Arbitrary JSON made mostly of the condition language's words, nested up
/// to 8 levels deep.
fn any_condition() -> impl Strategy<Value = Value> {
    any_scalar().prop_recursive(8, 128, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any_key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// A condition wrapped in `$not`/`$and`/`$or` `depth` times: deeper than
/// the recursive strategy goes, as deep as a JSON parser lets through.
fn deep_condition() -> impl Strategy<Value = Value> {
    (any_condition(), 1usize..120).prop_map(|(leaf, depth)| {
        (0..depth).fold(leaf, |inner, level| match level % 3 {
            0 => json!({"$not": inner}),
            1 => json!({"$and": [inner, {}]}),
            _ => json!({"country": {"$elemMatch": inner}}),
        })
    })
}

/// Users: the attributes conditions name, with values of any type.
fn any_attributes() -> impl Strategy<Value = Attributes> {
    prop::collection::vec((any_key(), any_condition()), 0..6)
        .prop_map(|entries| entries.into_iter().collect::<Map<String, Value>>())
}

fn any_status() -> impl Strategy<Value = RuleStatus> {
    prop::sample::select(vec![
        RuleStatus::Draft,
        RuleStatus::Running,
        RuleStatus::Paused,
        RuleStatus::RolledBack,
        RuleStatus::Shipped,
        RuleStatus::Stopped,
    ])
}

fn any_variant() -> impl Strategy<Value = VariantRule> {
    (
        prop::sample::select(vec!["control", "premium", "v2", ""]),
        prop_oneof![0.0f64..=1.0, any::<f64>()],
        any_scalar(),
    )
        .prop_map(|(key, weight, value)| VariantRule {
            key: key.to_owned(),
            weight,
            value,
        })
}

/// Rules with any field out of range: NaN and infinite weights and
/// coverage, unknown hash versions, empty or duplicate variants, shipped
/// variants that do not exist, inverted namespace ranges.
fn any_rule() -> impl Strategy<Value = ExperimentRule> {
    (
        (
            prop::sample::select(vec!["pricing", "checkout", ""]),
            any_status(),
            prop::collection::vec(any_variant(), 0..5),
            prop_oneof![0.0f64..=1.0, any::<f64>()],
            prop::option::of(prop_oneof![any_condition(), deep_condition()]),
        ),
        (
            any_key(),
            any::<String>(),
            prop_oneof![1u32..=2, any::<u32>()],
            prop::option::of((any::<String>(), any::<[f64; 2]>())),
            prop::option::of(prop::sample::select(vec!["control", "premium", "nope"])),
            prop::collection::vec(any_key(), 0..3),
        ),
    )
        .prop_map(
            |(
                (key, status, variants, coverage, condition),
                (hash_attribute, seed, hash_version, namespace, shipped, dimensions),
            )| ExperimentRule {
                key: key.to_owned(),
                status,
                variants,
                coverage,
                condition,
                hash_attribute,
                seed,
                hash_version,
                namespace: namespace.map(|(name, range)| NamespaceRule { name, range }),
                shipped_variant: shipped.map(str::to_owned),
                dimensions,
            },
        )
}

/// Checks that every assignment names a variant of its rule (or control when
/// the rule has none to name) and is in the experiment only when running.
fn check_assignments(compiled: &CompiledRuleset, user: &Attributes) -> Result<(), TestCaseError> {
    for assignment in compiled.assign_all(user) {
        let rule = compiled.rule(assignment.experiment).unwrap();
        let single = compiled.assign(assignment.experiment, user);
        prop_assert_eq!(single.as_ref(), Some(&assignment));
        if assignment.in_experiment {
            prop_assert_eq!(rule.status, RuleStatus::Running);
        }
        if !rule.variants.is_empty() {
            let index = rule
                .variants
                .iter()
                .position(|v| v.key == assignment.variant);
            prop_assert!(index.is_some(), "{} is not a variant", assignment.variant);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// A condition compiles strictly or is refused with an error; either way,
    /// the lenient reading and evaluation against any user answer.
    #[test]
    fn arbitrary_conditions_compile_or_fail_without_panicking(
        condition in prop_oneof![any_condition(), deep_condition()],
        user in any_attributes(),
        other in any_condition(),
    ) {
        let groups: SavedGroups = json!({"g": [1, "a", null]}).as_object().cloned().unwrap();
        match Condition::compile_with_groups(&condition, &groups) {
            Ok(strict) => {
                strict.matches(&user);
                strict.matches_value(&other);
            }
            Err(error) => prop_assert!(!error.message.is_empty()),
        }
        let _ = Condition::compile(&condition);
        let lenient = Condition::compile_lenient(&condition, &groups);
        lenient.matches(&user);
        lenient.matches_value(&other);
    }

    /// Any ruleset compiles (broken rules to warnings) and assigns every user.
    #[test]
    fn arbitrary_rulesets_compile_and_assign(
        experiments in prop::collection::vec(any_rule(), 0..5),
        version in any::<u64>(),
        users in prop::collection::vec(any_attributes(), 1..4),
    ) {
        let (compiled, _warnings) = CompiledRuleset::compile(Ruleset { version, experiments });
        for user in &users {
            check_assignments(&compiled, user)?;
        }
    }

    /// A ruleset read from arbitrary JSON is refused by serde or compiles and
    /// assigns; a rule's JSON with any field replaced takes the same path.
    #[test]
    fn rulesets_from_arbitrary_json_never_panic(
        rule in any_rule(),
        field in prop::sample::select(vec![
            "key", "status", "variants", "coverage", "condition", "hash_attribute",
            "seed", "hash_version", "namespace", "shipped_variant", "dimensions",
        ]),
        replacement in any_condition(),
        user in any_attributes(),
    ) {
        let mut value = json!({"version": 1, "experiments": [rule]});
        value["experiments"][0][field] = replacement;
        if let Ok(ruleset) = serde_json::from_value::<Ruleset>(value) {
            let (compiled, _warnings) = CompiledRuleset::compile(ruleset);
            check_assignments(&compiled, &user)?;
        }
    }

    /// Hashing takes any seed, id and version; a hash is in [0, 1).
    #[test]
    fn hashes_of_any_input_are_in_the_unit_interval(
        seed in any::<String>(),
        id in any::<String>(),
        version in prop_oneof![1u32..=2, any::<u32>()],
        units in prop::collection::vec(any::<u16>(), 0..32),
        id_value in any_scalar(),
    ) {
        if let Some(h) = hash(&seed, &id, version) {
            prop_assert!((0.0..1.0).contains(&h), "{h}");
        } else {
            prop_assert!(version != 1 && version != 2);
        }
        fnv1a32_utf16(units);
        if let Some(id) = unit_id(&id_value) {
            prop_assert!(!id.is_empty());
        }
    }

    /// Bucket ranges for any weights and coverage: one per variant, and a
    /// chosen variation is one of them.
    #[test]
    fn buckets_of_any_weights_choose_a_variant_in_range(
        weights in prop::collection::vec(any::<f64>(), 0..8),
        count in 0usize..8,
        coverage in any::<f64>(),
        n in prop_oneof![0.0f64..1.0, any::<f64>()],
        unit in any::<String>(),
        namespace in any::<String>(),
        range in any::<[f64; 2]>(),
    ) {
        let ranges = get_bucket_ranges(count, coverage, Some(&weights));
        prop_assert_eq!(ranges.len(), count);
        if let Some(index) = choose_variation(n, &ranges) {
            prop_assert!(index < count);
        }
        in_namespace(&unit, &namespace, range);
    }
}
