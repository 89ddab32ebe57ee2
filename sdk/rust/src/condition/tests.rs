use super::*;
use serde_json::json;

fn strict_err(cond: Value) -> ConditionError {
    match Condition::compile(&cond) {
        Ok(c) => panic!("{cond} compiled strictly: {c:?}"),
        Err(e) => e,
    }
}

fn matches(cond: Value, attrs: Value) -> bool {
    let c = Condition::compile(&cond).unwrap();
    c.matches_value(&attrs)
}

#[test]
fn unknown_operator_is_rejected_with_its_path() {
    let e = strict_err(json!({"name": {"$regx": "hello"}}));
    assert_eq!(e.path, "name.$regx");
    assert_eq!(e.kind(), ConditionErrorKind::UnknownOperator);
    assert_eq!(e.to_string(), "name.$regx: unknown operator $regx");
}

#[test]
fn invalid_regex_is_rejected_with_its_path() {
    let e = strict_err(json!({"country": {"$regex": "/???***[)"}}));
    assert_eq!(e.path, "country.$regex");
    assert_eq!(e.kind, ConditionErrorKind::InvalidRegex);
    assert!(e.message.starts_with("invalid regular expression"), "{e}");
}

#[test]
fn paths_reach_into_logic_operators() {
    let e = strict_err(json!({"$and": [{"a": 1}, {"$or": [{"b": {"$in": "x"}}]}]}));
    assert_eq!(e.path, "$and[1].$or[0].b.$in");
    assert_eq!(e.kind, ConditionErrorKind::WrongType);
    assert_eq!(e.message, "expected an array, got a string");
    let e = strict_err(json!({"tags": {"$elemMatch": {"name": {"$regexi": 5}}}}));
    assert_eq!(e.path, "tags.$elemMatch.name.$regexi");
}

#[test]
fn wrong_operand_types_are_rejected() {
    for (cond, path) in [
        (json!({"a": {"$in": 1}}), "a.$in"),
        (json!({"a": {"$nin": {"x": 1}}}), "a.$nin"),
        (json!({"a": {"$in": [1, [2]]}}), "a.$in[1]"),
        (json!({"a": {"$gt": [1]}}), "a.$gt"),
        (json!({"a": {"$gte": null}}), "a.$gte"),
        (json!({"a": {"$exists": 1}}), "a.$exists"),
        (json!({"a": {"$regex": 1}}), "a.$regex"),
        (json!({"a": {"$type": "date"}}), "a.$type"),
        (json!({"a": {"$size": "3"}}), "a.$size"),
        (json!({"a": {"$all": "x"}}), "a.$all"),
        (json!({"a": {"$elemMatch": 3}}), "a.$elemMatch"),
        (json!({"a": {"$eq": [1]}}), "a.$eq"),
        (json!({"a": {"$vgt": true}}), "a.$vgt"),
        (json!({"$or": {"a": 1}}), "$or"),
        (json!({"$and": [1]}), "$and[0]"),
        (json!({"$not": "x"}), "$not"),
        (json!([1, 2]), ""),
    ] {
        let e = strict_err(cond.clone());
        assert_eq!(e.path, path, "{cond}: {e}");
        assert_eq!(e.kind, ConditionErrorKind::WrongType, "{cond}: {e}");
    }
    assert_eq!(
        strict_err(json!([1])).to_string(),
        "condition: expected a condition object, got an array"
    );
}

#[test]
fn mixed_operator_and_plain_keys_are_rejected() {
    let e = strict_err(json!({"a": {"$gt": 1, "b": 2}}));
    assert_eq!(e.path, "a");
    assert_eq!(e.kind, ConditionErrorKind::MixedKeys);
}

#[test]
fn saved_groups_resolve_at_compile_time() {
    let groups: SavedGroups = json!({"beta": ["u1", "u2", 3]})
        .as_object()
        .cloned()
        .unwrap();
    let c = Condition::compile_with_groups(&json!({"id": {"$inGroup": "beta"}}), &groups).unwrap();
    assert!(c.matches_value(&json!({"id": "u2"})));
    assert!(c.matches_value(&json!({"id": 3})));
    assert!(!c.matches_value(&json!({"id": "3"})));
    let e = Condition::compile_with_groups(&json!({"id": {"$notInGroup": "alpha"}}), &groups)
        .unwrap_err();
    assert_eq!(e.kind, ConditionErrorKind::UnknownSavedGroup);
    assert_eq!(e.path, "id.$notInGroup");
    // Without groups, strict compile rejects any group reference.
    assert_eq!(
        strict_err(json!({"id": {"$inGroup": "beta"}})).kind,
        ConditionErrorKind::UnknownSavedGroup
    );
    // Lenient: an unknown group is empty, as in GrowthBook.
    let lenient = Condition::compile_lenient(&json!({"id": {"$notInGroup": "alpha"}}), &groups);
    assert!(lenient.matches_value(&json!({"id": "u1"})));
}

#[test]
fn lenient_mode_never_matches_what_strict_rejects() {
    let none = SavedGroups::new();
    for cond in [
        json!({"name": {"$regx": "hello"}}),
        json!({"name": {"$regex": "(unclosed"}}),
        json!({"name": {"$in": "hello"}}),
        json!({"$or": 5}),
        json!({"$nor": 5}),
    ] {
        assert!(Condition::compile(&cond).is_err());
        let c = Condition::compile_lenient(&cond, &none);
        assert!(!c.matches_value(&json!({"name": "hello"})), "{cond}");
    }
}

/// Regression: `{"$nor": []}` matched everyone (`!any([])`); SPEC.md §6 and
/// GrowthBook say an empty `$nor` is false. Found by the TypeScript port.
#[test]
fn an_empty_nor_matches_no_one() {
    assert!(!matches(json!({"$nor": []}), json!({"a": 1})));
    assert!(matches(json!({"$nor": [{"a": 2}]}), json!({"a": 1})));
    assert!(!matches(json!({"$nor": [{"a": 1}]}), json!({"a": 1})));
}

#[test]
fn null_and_empty_conditions_match_everyone() {
    assert!(matches(json!(null), json!({})));
    assert!(matches(json!({}), json!({"a": 1})));
    assert!(Condition::always().matches(&Attributes::new()));
}

#[test]
fn dotted_paths_and_array_indices() {
    assert!(matches(json!({"a.b.c": 1}), json!({"a": {"b": {"c": 1}}})));
    assert!(matches(json!({"tags.1": "x"}), json!({"tags": ["w", "x"]})));
    assert!(!matches(
        json!({"tags.01": "x"}),
        json!({"tags": ["w", "x"]})
    ));
    assert!(matches(json!({"a.b": null}), json!({"a": "str"})));
}

#[test]
fn javascript_coercions() {
    // String conditions compare String(value).
    assert!(matches(json!({"n": "10"}), json!({"n": 10})));
    assert!(matches(json!({"n": "1.5"}), json!({"n": 1.5})));
    assert!(matches(json!({"n": "null"}), json!({})));
    // Number conditions compare Number(value).
    assert!(matches(json!({"n": 10}), json!({"n": "10"})));
    assert!(matches(json!({"n": 0}), json!({})));
    assert!(matches(json!({"n": 1}), json!({"n": true})));
    // Boolean conditions use truthiness, but null is never true or false.
    assert!(matches(json!({"b": true}), json!({"b": "yes"})));
    assert!(matches(json!({"b": false}), json!({"b": 0})));
    assert!(!matches(json!({"b": false}), json!({})));
    // $eq is strict.
    assert!(!matches(json!({"n": {"$eq": 10}}), json!({"n": "10"})));
    assert!(matches(json!({"n": {"$eq": null}}), json!({})));
    // Numbers and numeric strings compare numerically, strings by code units.
    assert!(!matches(json!({"n": {"$lt": "9"}}), json!({"n": 10})));
    assert!(matches(json!({"s": {"$lt": "9"}}), json!({"s": "10"})));
    // Deep equality ignores key order and compares numbers as numbers.
    assert!(matches(
        json!({"o": {"b": 1, "a": [1.0, 2]}}),
        json!({"o": {"a": [1, 2], "b": 1}})
    ));
}

#[test]
fn elem_match_skips_falsy_elements_like_growthbook() {
    assert!(!matches(
        json!({"a": {"$elemMatch": {"$eq": 0}}}),
        json!({"a": [0, 1]})
    ));
    assert!(matches(
        json!({"a": {"$elemMatch": {"$eq": 1}}}),
        json!({"a": [0, 1]})
    ));
}

#[test]
fn case_insensitive_operators_handle_non_ascii() {
    assert!(matches(
        json!({"c": {"$ini": ["ÉLODIE"]}}),
        json!({"c": "élodie"})
    ));
    assert!(!matches(
        json!({"c": {"$regexi": "^straße$"}}),
        json!({"c": "STRASSE"})
    ));
    assert!(matches(
        json!({"c": {"$regexi": "^ÉL"}}),
        json!({"c": "élodie"})
    ));
    assert!(matches(
        json!({"t": {"$alli": ["ÜBER", "x"]}}),
        json!({"t": ["über", "X"]})
    ));
}

#[test]
fn regex_matches_string_form_of_non_strings() {
    assert!(matches(json!({"n": {"$regex": "^12"}}), json!({"n": 123})));
    assert!(matches(json!({"n": {"$regex": "^nul"}}), json!({})));
}

#[test]
fn conditions_are_send_sync_clone() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug>() {}
    check::<Condition>();
}
