//! The experiment form's values and the API's JSON definition, both ways: a
//! submitted form becomes the body `POST /api/v1/experiments` takes (so the API's
//! validation judges it), and an experiment becomes the values its edit form shows.

use serde_json::{json, Map, Value};

use super::fields::Fields;
use super::text::Text;
use super::view;
use crate::domain::{Experiment, FieldProblem, ValidationError};

/// How many rows of each repeated group the form offers.
pub(super) const VARIANT_ROWS: usize = 4;
pub(super) const GUARDRAIL_ROWS: usize = 2;
pub(super) const STAGE_ROWS: usize = 4;

/// A number as JSON when the text is one; otherwise the text itself, so that the
/// API's validation names the field and says what it expected.
pub(super) fn number(text: &str) -> Value {
    let text = text.trim();
    text.parse::<u64>()
        .map(Value::from)
        .or_else(|_| text.parse::<f64>().map(Value::from))
        .unwrap_or_else(|_| Value::from(text))
}

/// The JSON document in a text area; empty means absent.
fn json_text(
    t: Text,
    values: &Fields,
    name: &str,
    problems: &mut Vec<FieldProblem>,
) -> Option<Value> {
    let text = values.get(name).trim();
    if text.is_empty() {
        return None;
    }
    serde_json::from_str(text)
        .map_err(|err| {
            problems.push(FieldProblem {
                field: name.to_owned(),
                problem: t.not_valid_json(err.line(), err.column()),
            });
        })
        .ok()
}

/// The API's JSON body for the submitted form. Optional parts left empty are null,
/// so that an edit clears them; JSON that does not parse is a problem of its field.
pub(super) fn spec_document(t: Text, values: &Fields) -> Result<Value, ValidationError> {
    let mut problems = Vec::new();
    let text = |name: &str| values.get(name).trim().to_owned();
    let filled = |name: String| !values.get(&name).trim().is_empty();
    let mut variants = Vec::new();
    for i in (0..VARIANT_ROWS)
        .filter(|i| filled(format!("variants[{i}].key")) || filled(format!("variants[{i}].weight")))
    {
        let mut variant = json!({
            "key": text(&format!("variants[{i}].key")),
            "weight": number(values.get(&format!("variants[{i}].weight"))),
        });
        if let Some(payload) = json_text(t, values, &format!("variants[{i}].value"), &mut problems)
        {
            variant["value"] = payload;
        }
        variants.push(variant);
    }
    let guardrails: Vec<Value> = (0..GUARDRAIL_ROWS)
        .filter(|i| filled(format!("guardrails[{i}].metric")))
        .map(|i| {
            let part = |p: &str| values.get(&format!("guardrails[{i}].{p}")).to_owned();
            json!({"metric": part("metric"), "max_drop": number(&part("max_drop")),
                   "min_users": number(&part("min_users")), "action": part("action")})
        })
        .collect();
    let stages: Vec<Value> = (0..STAGE_ROWS)
        .filter(|i| filled(format!("stages[{i}].coverage")))
        .map(|i| {
            let mut stage =
                json!({"coverage": number(values.get(&format!("stages[{i}].coverage")))});
            let hold = text(&format!("stages[{i}].hold_seconds"));
            if !hold.is_empty() {
                stage["hold_seconds"] = number(&hold);
            }
            stage
        })
        .collect();
    let namespace = filled("namespace.name".to_owned()).then(|| {
        json!({"name": text("namespace.name"),
               "range": [number(values.get("namespace.range[0]")), number(values.get("namespace.range[1]"))]})
    });
    let mut document = Map::new();
    document.insert("key".into(), text("key").into());
    document.insert("name".into(), text("name").into());
    document.insert("hypothesis".into(), text("hypothesis").into());
    document.insert("variants".into(), variants.into());
    for optional_number in ["coverage", "alpha"] {
        if filled(optional_number.to_owned()) {
            document.insert(optional_number.into(), number(values.get(optional_number)));
        }
    }
    if filled("hash_attribute".to_owned()) {
        document.insert("hash_attribute".into(), text("hash_attribute").into());
    }
    let report_after_hours =
        filled("report_after_hours".to_owned()).then(|| number(values.get("report_after_hours")));
    document.insert(
        "report_after_hours".into(),
        report_after_hours.unwrap_or(Value::Null),
    );
    let cuped = filled("cuped.lookback_days".to_owned())
        .then(|| json!({"lookback_days": number(values.get("cuped.lookback_days"))}));
    document.insert("cuped".into(), cuped.unwrap_or(Value::Null));
    let condition = json_text(t, values, "condition", &mut problems);
    document.insert("condition".into(), condition.unwrap_or(Value::Null));
    document.insert("namespace".into(), namespace.unwrap_or(Value::Null));
    let primary = Some(text("primary_metric")).filter(|p| !p.is_empty());
    document.insert("primary_metric".into(), primary.into());
    document.insert(
        "secondary_metrics".into(),
        values.all("secondary_metrics").into(),
    );
    document.insert("environments".into(), values.all("environments").into());
    document.insert("guardrails".into(), guardrails.into());
    document.insert("stages".into(), stages.into());
    let dimensions: Vec<String> = text("dimensions")
        .split(',')
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .collect();
    document.insert("dimensions".into(), dimensions.into());
    if problems.is_empty() {
        Ok(Value::Object(document))
    } else {
        Err(ValidationError { problems })
    }
}

/// The form's values for an existing experiment, as if it had been submitted.
pub(super) fn values_of(experiment: &Experiment) -> Fields {
    let spec = &experiment.spec;
    let mut pairs = vec![
        ("key".to_owned(), spec.key.clone()),
        ("name".to_owned(), spec.name.clone()),
        ("hypothesis".to_owned(), spec.hypothesis.clone()),
        ("coverage".to_owned(), view::number(spec.coverage)),
        ("hash_attribute".to_owned(), spec.hash_attribute.clone()),
        ("alpha".to_owned(), view::number(spec.alpha)),
        ("dimensions".to_owned(), spec.dimensions.join(", ")),
        (
            "primary_metric".to_owned(),
            spec.primary_metric.clone().unwrap_or_default(),
        ),
    ];
    if let Some(condition) = &spec.condition {
        pairs.push(("condition".to_owned(), condition.to_string()));
    }
    if let Some(hours) = spec.report_after_hours {
        pairs.push(("report_after_hours".to_owned(), view::number(hours)));
    }
    if let Some(cuped) = spec.cuped {
        pairs.push((
            "cuped.lookback_days".to_owned(),
            cuped.lookback_days.to_string(),
        ));
    }
    if let Some(namespace) = &spec.namespace {
        pairs.push(("namespace.name".to_owned(), namespace.name.clone()));
        pairs.push((
            "namespace.range[0]".to_owned(),
            view::number(namespace.range[0]),
        ));
        pairs.push((
            "namespace.range[1]".to_owned(),
            view::number(namespace.range[1]),
        ));
    }
    for (i, v) in spec.variants.iter().enumerate() {
        pairs.push((format!("variants[{i}].key"), v.key.clone()));
        pairs.push((format!("variants[{i}].weight"), view::number(v.weight)));
        if !v.value.is_null() {
            pairs.push((format!("variants[{i}].value"), v.value.to_string()));
        }
    }
    for environment in &spec.environments {
        pairs.push(("environments".to_owned(), environment.clone()));
    }
    for metric in &spec.secondary_metrics {
        pairs.push(("secondary_metrics".to_owned(), metric.clone()));
    }
    for (i, g) in spec.guardrails.iter().enumerate() {
        pairs.push((format!("guardrails[{i}].metric"), g.metric.clone()));
        pairs.push((
            format!("guardrails[{i}].max_drop"),
            view::number(g.max_drop),
        ));
        pairs.push((
            format!("guardrails[{i}].min_users"),
            g.min_users.to_string(),
        ));
        pairs.push((
            format!("guardrails[{i}].action"),
            g.action.as_str().to_owned(),
        ));
    }
    for (i, s) in spec.stages.iter().enumerate() {
        pairs.push((format!("stages[{i}].coverage"), view::number(s.coverage)));
        if let Some(hold) = s.hold_seconds {
            pairs.push((format!("stages[{i}].hold_seconds"), hold.to_string()));
        }
    }
    Fields::from_pairs(pairs)
}

/// A new experiment's form starts with a 50/50 split and full coverage.
pub(super) fn blank_values() -> Fields {
    Fields::from_pairs(vec![
        ("variants[0].key".to_owned(), "control".to_owned()),
        ("variants[0].weight".to_owned(), "0.5".to_owned()),
        ("variants[1].key".to_owned(), "treatment".to_owned()),
        ("variants[1].weight".to_owned(), "0.5".to_owned()),
        ("coverage".to_owned(), "1".to_owned()),
        ("hash_attribute".to_owned(), "id".to_owned()),
        ("alpha".to_owned(), "0.05".to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validation::from_json;
    use crate::domain::ExperimentSpec;

    fn spec() -> ExperimentSpec {
        from_json(json!({
            "key": "pricing-q4", "name": "Premium price", "hypothesis": "keeps buyers",
            "variants": [{"key": "control", "weight": 0.5, "value": {"price": 199}},
                         {"key": "premium", "weight": 0.5, "value": {"price": 249}}],
            "coverage": 0.05, "condition": {"country": {"$in": ["CN", "US"]}},
            "namespace": {"name": "pricing", "range": [0, 0.5]},
            "primary_metric": "purchase", "secondary_metrics": ["revenue"],
            "guardrails": [{"metric": "purchase", "max_drop": 0.2, "min_users": 500, "action": "rollback"}],
            "stages": [{"coverage": 0.05, "hold_seconds": 259200}, {"coverage": 1.0}],
            "dimensions": ["country", "device"], "alpha": 0.1, "report_after_hours": 48,
            "cuped": {"lookback_days": 14}
        }))
        .unwrap()
    }

    #[test]
    fn an_experiment_survives_its_edit_form_unchanged() {
        let experiment = Experiment::new_draft(spec(), 0);
        let document = spec_document(Text::default(), &values_of(&experiment)).unwrap();
        let mut round_trip: ExperimentSpec = from_json(document).unwrap();
        round_trip.seed = experiment.spec.seed.clone();
        assert_eq!(round_trip, experiment.spec);
    }

    #[test]
    fn empty_optional_parts_are_null_and_bad_json_names_its_field() {
        let values = Fields::from_pairs(vec![
            ("key".to_owned(), "k".to_owned()),
            ("variants[0].key".to_owned(), "a".to_owned()),
            ("variants[0].weight".to_owned(), "half".to_owned()),
            ("variants[0].value".to_owned(), "{oops".to_owned()),
        ]);
        let invalid = spec_document(Text::default(), &values).unwrap_err();
        assert_eq!(invalid.problems[0].field, "variants[0].value");
        let values = Fields::from_pairs(vec![("variants[0].weight".to_owned(), "half".to_owned())]);
        let document = spec_document(Text::default(), &values).unwrap();
        assert_eq!(document["condition"], Value::Null);
        assert_eq!(document["namespace"], Value::Null);
        assert_eq!(document["variants"][0]["weight"], "half");
    }
}
