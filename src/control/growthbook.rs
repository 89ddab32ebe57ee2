//! The ruleset in the shape GrowthBook's SDKs read (`GET /api/features/{key}`):
//! one feature per served experiment, named by its key, whose value is what
//! `/sdk/v1/assign` gives. Running experiments carry one experiment rule; the
//! others are a plain default value.

use serde_json::{json, Value};
use sluice_sdk::{ExperimentRule, RuleStatus};

use crate::domain::Millis;

/// `dateUpdated`: RFC 3339 with milliseconds always written, so that the
/// SDKs' comparisons of it, as text or as a date, agree with time.
pub(crate) fn date_updated(at: Millis) -> String {
    const FORMAT: &[time::format_description::FormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}

/// One experiment's feature.
pub(crate) fn feature(rule: &ExperimentRule) -> Value {
    let control = rule
        .variants
        .first()
        .map_or(Value::Null, |v| v.value.clone());
    match rule.status {
        RuleStatus::Running => json!({"defaultValue": control, "rules": [experiment_rule(rule)]}),
        RuleStatus::Shipped => json!({"defaultValue": shipped_value(rule).unwrap_or(control)}),
        RuleStatus::Draft | RuleStatus::Paused | RuleStatus::RolledBack | RuleStatus::Stopped => {
            json!({ "defaultValue": control })
        }
    }
}

fn shipped_value(rule: &ExperimentRule) -> Option<Value> {
    let shipped = rule.shipped_variant.as_deref()?;
    let variant = rule.variants.iter().find(|v| v.key == shipped)?;
    Some(variant.value.clone())
}

/// `seed`, `hashVersion` and `hashAttribute` are always sent: the SDKs default
/// them differently from us (hash version 1, the feature key as the seed). A
/// `force` key is never sent: the SDKs would serve it instead of splitting.
fn experiment_rule(rule: &ExperimentRule) -> Value {
    let mut out = json!({
        "key": rule.key,
        "seed": rule.seed,
        "hashVersion": rule.hash_version,
        "hashAttribute": rule.hash_attribute,
        "variations": rule.variants.iter().map(|v| &v.value).collect::<Vec<_>>(),
        "weights": rule.variants.iter().map(|v| v.weight).collect::<Vec<_>>(),
        "coverage": rule.coverage,
        "meta": rule.variants.iter().map(|v| json!({"key": v.key})).collect::<Vec<_>>(),
        "name": rule.key,
        "phase": "0",
    });
    if let Some(condition) = &rule.condition {
        out["condition"] = condition.clone();
    }
    if let Some(namespace) = &rule.namespace {
        let [start, end] = namespace.range;
        out["namespace"] = json!([namespace.name, start, end]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::{NamespaceRule, VariantRule};

    fn rule(status: RuleStatus) -> ExperimentRule {
        ExperimentRule {
            key: "pricing".into(),
            status,
            variants: vec![
                VariantRule {
                    key: "control".into(),
                    weight: 0.4,
                    value: json!({"price": 199}),
                },
                VariantRule {
                    key: "premium".into(),
                    weight: 0.6,
                    value: json!({"price": 249}),
                },
            ],
            coverage: 0.5,
            condition: Some(json!({"country": "CN"})),
            hash_attribute: "device_id".into(),
            seed: "s1".into(),
            hash_version: 1,
            namespace: Some(NamespaceRule {
                name: "checkout".into(),
                range: [0.0, 0.5],
            }),
            shipped_variant: Some("premium".into()),
            dimensions: vec![],
        }
    }

    #[test]
    fn a_running_experiment_is_one_experiment_rule_with_every_hashing_field() {
        assert_eq!(
            feature(&rule(RuleStatus::Running)),
            json!({
                "defaultValue": {"price": 199},
                "rules": [{
                    "key": "pricing", "seed": "s1", "hashVersion": 1,
                    "hashAttribute": "device_id",
                    "variations": [{"price": 199}, {"price": 249}],
                    "weights": [0.4, 0.6], "coverage": 0.5,
                    "condition": {"country": "CN"},
                    "namespace": ["checkout", 0.0, 0.5],
                    "meta": [{"key": "control"}, {"key": "premium"}],
                    "name": "pricing", "phase": "0"
                }]
            })
        );
    }

    #[test]
    fn stopped_experiments_serve_a_default_and_shipped_ones_the_winner() {
        for status in [
            RuleStatus::Paused,
            RuleStatus::RolledBack,
            RuleStatus::Stopped,
        ] {
            assert_eq!(
                feature(&rule(status)),
                json!({"defaultValue": {"price": 199}})
            );
        }
        assert_eq!(
            feature(&rule(RuleStatus::Shipped)),
            json!({"defaultValue": {"price": 249}})
        );
    }

    #[test]
    fn date_updated_always_has_milliseconds_so_text_order_is_time_order() {
        assert_eq!(date_updated(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(date_updated(1_764_700_000_500), "2025-12-02T18:26:40.500Z");
        assert!(date_updated(1_764_700_000_000) < date_updated(1_764_700_000_001));
    }
}
