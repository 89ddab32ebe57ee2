//! Evaluation order, statuses, reasons and compile warnings.

use super::*;
use serde_json::json;
use std::sync::Arc;

fn rule(status: RuleStatus) -> ExperimentRule {
    ExperimentRule {
        key: "exp".into(),
        status,
        variants: vec![
            VariantRule {
                key: "control".into(),
                weight: 0.5,
                value: json!({"price": 199}),
            },
            VariantRule {
                key: "premium".into(),
                weight: 0.5,
                value: json!({"price": 249}),
            },
        ],
        coverage: 1.0,
        condition: None,
        hash_attribute: "id".into(),
        seed: "exp".into(),
        hash_version: 2,
        namespace: None,
        shipped_variant: None,
        dimensions: Vec::new(),
    }
}

fn compile(rules: Vec<ExperimentRule>) -> (CompiledRuleset, Vec<EvalWarning>) {
    CompiledRuleset::compile(Ruleset {
        version: 3,
        experiments: rules,
    })
}

fn user(v: Value) -> Attributes {
    v.as_object().cloned().unwrap()
}

fn assign_one(r: ExperimentRule, u: Value) -> (String, bool, Reason) {
    let (c, _) = compile(vec![r]);
    let a = c.assign("exp", &user(u)).unwrap();
    (a.variant.to_owned(), a.in_experiment, a.reason)
}

#[test]
fn running_experiment_splits() {
    let (c, w) = compile(vec![rule(RuleStatus::Running)]);
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(c.version(), 3);
    let mut seen = std::collections::HashSet::new();
    for i in 0..200 {
        let a = c
            .assign("exp", &user(json!({"id": format!("u{i}")})))
            .unwrap();
        assert!(a.in_experiment);
        assert_eq!(a.reason, Reason::Split);
        assert_eq!(a.experiment, "exp");
        let expected_value = if a.variant == "control" { 199 } else { 249 };
        assert_eq!(a.value, &json!({"price": expected_value}));
        seen.insert(a.variant);
    }
    assert_eq!(seen.len(), 2);
}

#[test]
fn unknown_experiment_is_none() {
    let (c, _) = compile(vec![rule(RuleStatus::Running)]);
    assert!(c.assign("nope", &user(json!({"id": "u"}))).is_none());
}

#[test]
fn statuses_serve_control_without_exposure() {
    for (status, reason) in [
        (RuleStatus::Draft, Reason::Draft),
        (RuleStatus::Paused, Reason::Paused),
        (RuleStatus::RolledBack, Reason::RolledBack),
        (RuleStatus::Stopped, Reason::Stopped),
    ] {
        // Even a user who fails the condition and lacks an id: status wins.
        let mut r = rule(status);
        r.condition = Some(json!({"country": "CN"}));
        assert_eq!(
            assign_one(r, json!({})),
            ("control".to_owned(), false, reason),
            "{status:?}"
        );
    }
}

#[test]
fn shipped_serves_the_shipped_variant_to_everyone() {
    let mut r = rule(RuleStatus::Shipped);
    r.shipped_variant = Some("premium".into());
    r.condition = Some(json!({"country": "CN"}));
    r.coverage = 0.0;
    assert_eq!(
        assign_one(r, json!({})),
        ("premium".to_owned(), false, Reason::Shipped)
    );
}

#[test]
fn shipped_with_unknown_variant_serves_control_and_warns() {
    let mut r = rule(RuleStatus::Shipped);
    r.shipped_variant = Some("gold".into());
    let (c, w) = compile(vec![r]);
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("\"gold\""), "{}", w[0]);
    let a = c.assign("exp", &user(json!({"id": "u"}))).unwrap();
    assert_eq!(
        (a.variant, a.in_experiment, a.reason),
        ("control", false, Reason::Shipped)
    );
}

#[test]
fn condition_is_checked_before_the_id() {
    let mut r = rule(RuleStatus::Running);
    r.condition = Some(json!({"country": {"$in": ["CN", "US"]}}));
    assert_eq!(
        assign_one(r.clone(), json!({"country": "DE"})),
        ("control".to_owned(), false, Reason::Condition)
    );
    assert_eq!(
        assign_one(r.clone(), json!({"country": "CN"})),
        ("control".to_owned(), false, Reason::NoHashAttribute)
    );
    assert!(assign_one(r, json!({"country": "CN", "id": "u1"})).1);
}

#[test]
fn missing_or_falsy_ids_are_no_hash_attribute() {
    for u in [
        json!({}),
        json!({"id": null}),
        json!({"id": ""}),
        json!({"id": 0}),
        json!({"id": false}),
        json!({"id": [1]}),
        json!({"id": {"a": 1}}),
    ] {
        assert_eq!(
            assign_one(rule(RuleStatus::Running), u.clone()),
            ("control".to_owned(), false, Reason::NoHashAttribute),
            "{u}"
        );
    }
    // Numbers are ids too (formatted like JavaScript).
    assert!(assign_one(rule(RuleStatus::Running), json!({"id": 42})).1);
}

#[test]
fn custom_hash_attribute() {
    let mut r = rule(RuleStatus::Running);
    r.hash_attribute = "device_id".into();
    assert_eq!(
        assign_one(r.clone(), json!({"id": "u"})).2,
        Reason::NoHashAttribute
    );
    assert_eq!(assign_one(r, json!({"device_id": "d"})).2, Reason::Split);
}

#[test]
fn namespace_excludes_users_outside_the_slice() {
    let mut r = rule(RuleStatus::Running);
    r.namespace = Some(NamespaceRule {
        name: "pricing".into(),
        range: [0.0, 0.5],
    });
    let (c, w) = compile(vec![r]);
    assert!(w.is_empty());
    let (mut inside, mut outside) = (0, 0);
    for i in 0..400 {
        let id = format!("user-{i}");
        let a = c.assign("exp", &user(json!({"id": id}))).unwrap();
        let expected_in = bucket::in_namespace(&id, "pricing", [0.0, 0.5]);
        if expected_in {
            inside += 1;
            assert_eq!(a.reason, Reason::Split);
        } else {
            outside += 1;
            assert_eq!(
                (a.variant, a.in_experiment, a.reason),
                ("control", false, Reason::Namespace)
            );
        }
    }
    assert!(inside > 100 && outside > 100, "{inside} / {outside}");
}

#[test]
fn namespace_miss_needs_an_id_first() {
    let mut r = rule(RuleStatus::Running);
    r.namespace = Some(NamespaceRule {
        name: "pricing".into(),
        range: [0.0, 0.0],
    });
    assert_eq!(assign_one(r.clone(), json!({})).2, Reason::NoHashAttribute);
    assert_eq!(assign_one(r, json!({"id": "u"})).2, Reason::Namespace);
}

#[test]
fn coverage_excludes_users_outside_the_ranges() {
    let mut r = rule(RuleStatus::Running);
    r.coverage = 0.0;
    assert_eq!(
        assign_one(r, json!({"id": "u1"})),
        ("control".to_owned(), false, Reason::Coverage)
    );
}

#[test]
fn hash_v1_and_v2_bucket_like_growthbook() {
    for version in [1, 2] {
        let mut r = rule(RuleStatus::Running);
        r.hash_version = version;
        let (c, _) = compile(vec![r]);
        for i in 0..100 {
            let id = format!("u{i}");
            let n = hash::hash("exp", &id, version).unwrap();
            let expected = if n < 0.5 { "control" } else { "premium" };
            let a = c.assign("exp", &user(json!({"id": id}))).unwrap();
            assert_eq!(a.variant, expected);
        }
    }
}

#[test]
fn empty_seed_defaults_to_the_key() {
    let mut a = rule(RuleStatus::Running);
    a.seed = String::new();
    let b = rule(RuleStatus::Running);
    let (ca, _) = compile(vec![a]);
    let (cb, _) = compile(vec![b]);
    for i in 0..50 {
        let u = user(json!({"id": format!("u{i}")}));
        assert_eq!(ca.assign("exp", &u), cb.assign("exp", &u));
    }
}

#[test]
fn invalid_rules_serve_control_with_a_warning() {
    let mut bad_regex = rule(RuleStatus::Running);
    bad_regex.condition = Some(json!({"ua": {"$regex": "(unclosed"}}));
    let mut bad_version = rule(RuleStatus::Running);
    bad_version.hash_version = 3;
    let mut one_variant = rule(RuleStatus::Running);
    one_variant.variants.truncate(1);
    let mut no_variants = rule(RuleStatus::Running);
    no_variants.variants.clear();
    let mut dup_variant = rule(RuleStatus::Running);
    dup_variant.variants[1].key = "control".into();
    let mut bad_shipped = rule(RuleStatus::Shipped);
    bad_shipped.shipped_variant = Some("premium".into());
    bad_shipped.condition = Some(json!({"a": {"$bogus": 1}}));

    for (r, needle) in [
        (bad_regex, "ua.$regex: invalid regular expression"),
        (bad_version, "unknown hash_version 3"),
        (one_variant, "at least two variants"),
        (no_variants, "at least two variants"),
        (dup_variant, "appears twice"),
        (bad_shipped, "a.$bogus: unknown operator"),
    ] {
        let expected_variant = r.variants.first().map_or("", |v| v.key.as_str()).to_owned();
        let (c, w) = compile(vec![r]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].experiment, "exp");
        assert!(w[0].message.contains(needle), "{} lacks {needle}", w[0]);
        assert!(w[0].to_string().starts_with("experiment \"exp\": "));
        let a = c
            .assign("exp", &user(json!({"id": "u1", "ua": "x"})))
            .unwrap();
        assert_eq!(a.variant, expected_variant);
        assert!(!a.in_experiment);
        assert_eq!(a.reason, Reason::InvalidRule);
        if expected_variant.is_empty() {
            assert_eq!(a.value, &Value::Null);
        }
    }
}

#[test]
fn soft_problems_warn_but_still_run() {
    let mut bad_weights = rule(RuleStatus::Running);
    bad_weights.variants[0].weight = 0.7;
    bad_weights.coverage = 1.5;
    bad_weights.hash_attribute = String::new();
    let (c, w) = compile(vec![bad_weights]);
    let messages: Vec<_> = w.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "coverage 1.5 is outside 0..=1; using 1",
            "weights must add up to 1; using equal weights",
            "empty hash_attribute; using \"id\"",
        ]
    );
    assert_eq!(
        c.assign("exp", &user(json!({"id": "u"}))).unwrap().reason,
        Reason::Split
    );
}

#[test]
fn duplicate_keys_evaluate_the_first_only() {
    let first = rule(RuleStatus::Running);
    let second = rule(RuleStatus::Stopped);
    let (c, w) = compile(vec![first, second]);
    assert_eq!(w.len(), 1);
    let u = user(json!({"id": "u"}));
    assert_eq!(c.assign("exp", &u).unwrap().reason, Reason::Split);
    assert_eq!(c.assign_all(&u).count(), 1);
}

#[test]
fn assign_all_matches_assign_and_shares_conditions() {
    let mut rules = Vec::new();
    for i in 0..10 {
        let mut r = rule(if i % 3 == 0 {
            RuleStatus::Paused
        } else {
            RuleStatus::Running
        });
        r.key = format!("exp{i}");
        r.seed = r.key.clone();
        r.condition = Some(json!({"age": {"$gte": 18 + (i % 2)}}));
        rules.push(r);
    }
    let (c, w) = compile(rules);
    assert!(w.is_empty());
    assert_eq!(c.distinct_conditions(), 2);
    for age in [17, 18, 19] {
        let u = user(json!({"id": "someone", "age": age}));
        let all: Vec<_> = c.assign_all(&u).collect();
        assert_eq!(all.len(), 10);
        for a in &all {
            assert_eq!(Some(a), c.assign(a.experiment, &u).as_ref());
        }
    }
}

#[test]
fn assignment_serializes_to_the_api_shape() {
    let (c, _) = compile(vec![rule(RuleStatus::Paused)]);
    let a = c.assign("exp", &user(json!({"id": "u"}))).unwrap();
    assert_eq!(
        serde_json::to_value(&a).unwrap(),
        json!({"experiment": "exp", "variant": "control", "value": {"price": 199},
               "in_experiment": false, "reason": "paused"})
    );
    let owned: OwnedAssignment = a.into();
    assert_eq!(owned.reason.as_str(), "paused");
}

#[test]
fn reasons_and_statuses_round_trip() {
    for r in [
        Reason::Split,
        Reason::Condition,
        Reason::Namespace,
        Reason::Coverage,
        Reason::NoHashAttribute,
        Reason::Draft,
        Reason::Paused,
        Reason::RolledBack,
        Reason::Shipped,
        Reason::Stopped,
        Reason::InvalidRule,
    ] {
        assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
    }
    let s: RuleStatus = serde_json::from_value(json!("rolled_back")).unwrap();
    assert_eq!(s, RuleStatus::RolledBack);
    assert_eq!(s.as_str(), "rolled_back");
}

#[test]
fn ruleset_wire_form_round_trips() {
    let mut r = rule(RuleStatus::Running);
    r.namespace = Some(NamespaceRule {
        name: "ns".into(),
        range: [0.0, 0.5],
    });
    let rs = Ruleset {
        version: 9,
        experiments: vec![r],
    };
    let text = serde_json::to_string(&rs).unwrap();
    assert!(!text.contains("shipped_variant") && !text.contains("condition"));
    let back: Ruleset = serde_json::from_str(&text).unwrap();
    assert_eq!(back, rs);
    let (c, _) = CompiledRuleset::compile(back);
    assert!(c.rules().eq(&rs.experiments));
}

#[test]
fn unit_id_formats_like_growthbook() {
    assert_eq!(unit_id(&json!("ユーザー")).as_deref(), Some("ユーザー"));
    assert_eq!(unit_id(&json!(123)).as_deref(), Some("123"));
    assert_eq!(unit_id(&json!(1.0)).as_deref(), Some("1"));
    assert_eq!(unit_id(&json!(1.5e21)).as_deref(), Some("1.5e+21"));
    assert_eq!(unit_id(&json!(-7)).as_deref(), Some("-7"));
    assert_eq!(unit_id(&json!(true)).as_deref(), Some("true"));
    for none in [
        json!(null),
        json!(""),
        json!(0),
        json!(false),
        json!([1]),
        json!({}),
    ] {
        assert_eq!(unit_id(&none), None, "{none}");
    }
}

#[test]
fn compiled_ruleset_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<CompiledRuleset>();
}

#[test]
fn assignments_written_from_prepared_bytes_match_serde() {
    let with = |key: &str, status, value: Value| {
        let mut r = rule(status);
        r.key = key.into();
        r.seed = key.into();
        r.variants[1].value = value;
        r
    };
    let mut shipped = with("shipped", RuleStatus::Shipped, json!(null));
    shipped.shipped_variant = Some("premium".into());
    let mut no_variants = with("empty", RuleStatus::Running, json!(1));
    no_variants.variants.clear();
    let mut targeted = with("targeted", RuleStatus::Running, json!([1.5, "x"]));
    targeted.condition = Some(json!({"country": "CN"}));
    let (ruleset, _) = compile(vec![
        with(
            "copy-\"引号\"\n",
            RuleStatus::Running,
            json!({"headline": "满99元包邮 \u{1F600} \\ \t"}),
        ),
        shipped,
        no_variants,
        targeted,
        with(
            "paused",
            RuleStatus::Paused,
            json!({"deep": {"a": [true, false, null]}}),
        ),
    ]);
    let (other, _) = compile(vec![rule(RuleStatus::Running)]);
    for i in 0..200 {
        let user = user(
            json!({"id": format!("user-{i}"), "country": if i % 2 == 0 { "CN" } else { "US" }}),
        );
        let mut assignments: Vec<Assignment> = ruleset.assign_all(&user).collect();
        assignments.extend(other.assign_all(&user));
        let mut written = Vec::new();
        ruleset.write_assignments(&assignments, &mut written);
        assert_eq!(
            String::from_utf8(written).unwrap(),
            serde_json::to_string(&assignments).unwrap()
        );
    }
    let mut empty = Vec::new();
    ruleset.write_assignments(&[], &mut empty);
    assert_eq!(empty, b"[]");
}

#[test]
fn a_rule_compiled_once_evaluates_alike_in_every_ruleset_assembled_from_it() {
    let keyed = |key: &str, condition: Value| ExperimentRule {
        key: key.into(),
        seed: key.into(),
        condition: Some(condition),
        ..rule(RuleStatus::Running)
    };
    let country = keyed("by-country", json!({"country": {"$in": ["CN", "US"]}}));
    let adults = keyed("adults", json!({"age": {"$gte": 18}, "device": "ios"}));
    let also_country = keyed("also-by-country", json!({"country": {"$in": ["CN", "US"]}}));
    let broken = keyed("broken", json!({"age": {"$regex": "("}}));
    let shared = Arc::new(CompiledRule::compile(country.clone()));
    // The shared rule's attribute moves to another slot in the larger ruleset.
    let small = vec![country.clone()];
    let large = vec![
        adults.clone(),
        country,
        broken.clone(),
        also_country.clone(),
    ];
    for rules in [small, large] {
        let (whole, whole_warnings) = compile(rules.clone());
        let assembled_rules = rules
            .into_iter()
            .map(|r| match r.key.as_str() {
                "by-country" => shared.clone(),
                _ => Arc::new(CompiledRule::compile(r)),
            })
            .collect();
        let (assembled, warnings) = CompiledRuleset::assemble(3, assembled_rules);
        assert_eq!(warnings, whole_warnings);
        assert_eq!(assembled.distinct_conditions(), whole.distinct_conditions());
        for i in 0..300 {
            let country = ["CN", "DE"][i % 2];
            let u = user(json!({"id": format!("u{i}"), "country": country,
                                "age": 10 + i % 20, "device": "ios"}));
            let all: Vec<_> = assembled
                .assign_all(&u)
                .map(|a| a.to_owned_assignment())
                .collect();
            let expected: Vec<_> = whole
                .assign_all(&u)
                .map(|a| a.to_owned_assignment())
                .collect();
            assert_eq!(all, expected);
            assert_eq!(
                assembled
                    .assign("by-country", &u)
                    .map(|a| a.to_owned_assignment()),
                whole
                    .assign("by-country", &u)
                    .map(|a| a.to_owned_assignment())
            );
        }
    }
}
