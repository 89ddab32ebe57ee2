//! Creating and editing an experiment in a form. Field names are the API's field
//! paths (`variants[1].weight`), so the form becomes the API's JSON body and the
//! API's own validation answers; each problem it names is shown beside its field.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::definition::{
    blank_values, spec_document, values_of, GUARDRAIL_ROWS, STAGE_ROWS, VARIANT_ROWS,
};
use super::error::WebError;
use super::fields::{choices, Builder, Choice, Field, Fields};
use super::session::{Session, SignedForm};
use super::view::{render, Chrome};
use super::WebState;
use crate::control::ControlError;
use crate::domain::experiment::GuardrailAction;
use crate::domain::validation::from_json;
use crate::domain::{Environment, Experiment, ExperimentSpec, FieldProblem, Metric, Role};

const GUARDRAIL_ACTIONS: [GuardrailAction; 4] = [
    GuardrailAction::Alert,
    GuardrailAction::Pause,
    GuardrailAction::Adjust,
    GuardrailAction::Rollback,
];

pub(crate) struct VariantRow {
    key: Field,
    weight: Field,
    value: Field,
}

pub(crate) struct GuardrailRow {
    metric: Field,
    metric_choices: Vec<Choice>,
    max_drop: Field,
    min_users: Field,
    action: Field,
    action_choices: Vec<Choice>,
}

pub(crate) struct StageRow {
    coverage: Field,
    hold_seconds: Field,
}

#[derive(Template)]
#[template(path = "experiment_form.html")]
struct FormPage {
    chrome: Chrome,
    title: String,
    target: String,
    editing: bool,
    refusal: Option<String>,
    problems: Vec<FieldProblem>,
    key: Field,
    name: Field,
    hypothesis: Field,
    variants: Vec<VariantRow>,
    variants_error: Option<String>,
    coverage: Field,
    condition: Field,
    hash_attribute: Field,
    namespace_name: Field,
    namespace_start: Field,
    namespace_end: Field,
    namespace_error: Option<String>,
    primary_metric: Field,
    primary_choices: Vec<Choice>,
    secondary_metrics: Vec<Choice>,
    secondary_error: Option<String>,
    environments: Vec<Choice>,
    environments_error: Option<String>,
    guardrails: Vec<GuardrailRow>,
    guardrails_error: Option<String>,
    stages: Vec<StageRow>,
    stages_error: Option<String>,
    dimensions: Field,
    alpha: Field,
    report_after_hours: Field,
}

/// What the form shows besides the values and problems.
struct FormContext {
    chrome: Chrome,
    metrics: Vec<Metric>,
    environments: Vec<Environment>,
    editing: Option<String>,
    refusal: Option<String>,
}

fn variant_rows(b: &mut Builder<'_>) -> Vec<VariantRow> {
    (0..VARIANT_ROWS)
        .map(|i| VariantRow {
            key: b.row("variants", i, "key", &format!("Variant {} key", i + 1)),
            weight: b.row("variants", i, "weight", "Weight"),
            value: b.row("variants", i, "value", "Payload (JSON)"),
        })
        .collect()
}

fn guardrail_rows(b: &mut Builder<'_>, metric_options: &[(String, String)]) -> Vec<GuardrailRow> {
    let action_options: Vec<(String, String)> = GUARDRAIL_ACTIONS
        .iter()
        .map(|a| (a.as_str().to_owned(), a.as_str().to_owned()))
        .collect();
    (0..GUARDRAIL_ROWS)
        .map(|i| {
            let metric = b.row(
                "guardrails",
                i,
                "metric",
                &format!("Guardrail {} metric", i + 1),
            );
            let action = b.row("guardrails", i, "action", "Action");
            GuardrailRow {
                metric_choices: choices(
                    metric_options,
                    std::slice::from_ref(&metric.value),
                    &metric.id,
                ),
                action_choices: choices(
                    &action_options,
                    std::slice::from_ref(&action.value),
                    &action.id,
                ),
                metric,
                max_drop: b.row("guardrails", i, "max_drop", "Largest tolerated drop"),
                min_users: b.row("guardrails", i, "min_users", "Minimum users per variant"),
                action,
            }
        })
        .collect()
}

fn stage_rows(b: &mut Builder<'_>) -> Vec<StageRow> {
    (0..STAGE_ROWS)
        .map(|i| StageRow {
            coverage: b.row(
                "stages",
                i,
                "coverage",
                &format!("Stage {} coverage", i + 1),
            ),
            hold_seconds: b.row("stages", i, "hold_seconds", "Minimum hold (seconds)"),
        })
        .collect()
}

fn form_page(context: FormContext, values: &Fields, problems: Vec<FieldProblem>) -> FormPage {
    let mut b = Builder {
        values,
        problems: problems.clone(),
    };
    let metric_options: Vec<(String, String)> = context
        .metrics
        .iter()
        .map(|m| (m.key.clone(), format!("{} ({})", m.key, m.name)))
        .collect();
    let mut none_then_metrics = vec![(String::new(), "None".to_owned())];
    none_then_metrics.extend(metric_options.iter().cloned());
    let variants = variant_rows(&mut b);
    let guardrails = guardrail_rows(&mut b, &none_then_metrics);
    let stages = stage_rows(&mut b);
    let primary_metric = b.field(
        "primary_metric",
        "Primary metric",
        "The metric that decides the experiment.",
    );
    let secondary = values.all("secondary_metrics");
    let environment_options: Vec<(String, String)> = context
        .environments
        .iter()
        .map(|e| (e.key.clone(), format!("{} ({})", e.name, e.key)))
        .collect();
    let (title, target) = match &context.editing {
        Some(key) => (format!("Edit {key}"), format!("/experiments/{key}/edit")),
        None => ("New experiment".to_owned(), "/experiments/new".to_owned()),
    };
    FormPage {
        chrome: context.chrome,
        title,
        target,
        editing: context.editing.is_some(),
        refusal: context.refusal,
        key: b.field(
            "key",
            "Key",
            "Letters, digits, '-', '_' or '.'; used in URLs and by the SDK.",
        ),
        name: b.field("name", "Name", ""),
        hypothesis: b.field("hypothesis", "Hypothesis", ""),
        variants,
        variants_error: b.group("variants"),
        coverage: b.field(
            "coverage",
            "Coverage",
            "Share of matching users who enter, from 0 to 1.",
        ),
        condition: b.field(
            "condition",
            "Condition (JSON)",
            "Who may enter, e.g. {\"country\": {\"$in\": [\"US\"]}}; empty for everyone.",
        ),
        hash_attribute: b.field(
            "hash_attribute",
            "Hash attribute",
            "The user attribute that buckets users.",
        ),
        namespace_name: b.field(
            "namespace.name",
            "Namespace",
            "Experiments in one namespace with disjoint ranges never share users.",
        ),
        namespace_start: b.field("namespace.range[0]", "Range start", ""),
        namespace_end: b.field("namespace.range[1]", "Range end", ""),
        namespace_error: b.group("namespace.range"),
        primary_choices: choices(
            &none_then_metrics,
            std::slice::from_ref(&primary_metric.value),
            "primary",
        ),
        primary_metric,
        secondary_metrics: choices(&metric_options, &secondary, "secondary"),
        secondary_error: b.claim(|f| f.starts_with("secondary_metrics")),
        environments: choices(
            &environment_options,
            &values.all("environments"),
            "environment",
        ),
        environments_error: b.claim(|f| f.starts_with("environments")),
        guardrails,
        guardrails_error: b.group("guardrails"),
        stages,
        stages_error: b.group("stages"),
        dimensions: b.field(
            "dimensions",
            "Dimensions",
            "User attributes kept at exposure for breakdowns, separated by commas.",
        ),
        alpha: b.field(
            "alpha",
            "Significance level",
            "Reports and guardrails use it; 0.05 is usual.",
        ),
        report_after_hours: b.field(
            "report_after_hours",
            "Report after (hours)",
            "Webhooks get the headline results once, this long after the start; empty for none.",
        ),
        problems,
    }
}

async fn context(
    state: &WebState,
    session: &Session,
    editing: Option<String>,
) -> Result<FormContext, WebError> {
    Ok(FormContext {
        chrome: session.chrome(),
        metrics: state.control.list_metrics().await?,
        environments: state.control.list_environments().await?,
        editing,
        refusal: None,
    })
}

pub(crate) async fn new(
    State(state): State<WebState>,
    session: Session,
) -> Result<Response, WebError> {
    session.require(Role::Editor)?;
    let context = context(&state, &session, None).await?;
    Ok(render(&form_page(context, &blank_values(), Vec::new())))
}

pub(crate) async fn edit(
    State(state): State<WebState>,
    session: Session,
    Path(key): Path<String>,
) -> Result<Response, WebError> {
    session.require(Role::Editor)?;
    let experiment = state.control.get_experiment(&key).await?;
    let context = context(&state, &session, Some(key)).await?;
    Ok(render(&form_page(
        context,
        &values_of(&experiment),
        Vec::new(),
    )))
}

pub(crate) async fn create(
    State(state): State<WebState>,
    form: SignedForm,
) -> Result<Response, WebError> {
    form.session.require(Role::Editor)?;
    let actor = &form.session.actor();
    let outcome = match spec_document(&form.fields) {
        Ok(document) => match from_json::<ExperimentSpec>(document) {
            Ok(spec) => state.control.create_experiment(spec, actor).await,
            Err(invalid) => Err(invalid.into()),
        },
        Err(invalid) => Err(invalid.into()),
    };
    answer(&state, form, None, outcome).await
}

pub(crate) async fn update(
    State(state): State<WebState>,
    Path(key): Path<String>,
    form: SignedForm,
) -> Result<Response, WebError> {
    form.session.require(Role::Editor)?;
    let actor = &form.session.actor();
    let outcome = match spec_document(&form.fields) {
        Ok(document) => state.control.patch_experiment(&key, &document, actor).await,
        Err(invalid) => Err(invalid.into()),
    };
    answer(&state, form, Some(key), outcome).await
}

/// Redirects to the experiment after a change; shows the form again with every
/// problem beside its field, or the reason a change was refused.
async fn answer(
    state: &WebState,
    form: SignedForm,
    editing: Option<String>,
    outcome: Result<Experiment, ControlError>,
) -> Result<Response, WebError> {
    let err = match outcome {
        Ok(experiment) => {
            return Ok(Redirect::to(&format!("/experiments/{}", experiment.key())).into_response())
        }
        Err(err) => err,
    };
    let mut context = context(state, &form.session, editing).await?;
    let (status, problems) = match err {
        ControlError::Invalid(invalid) => (StatusCode::BAD_REQUEST, invalid.problems),
        other => match WebError::from(other) {
            WebError::Page { status, message } if !status.is_server_error() => {
                context.refusal = Some(message);
                (status, Vec::new())
            }
            failed => return Err(failed),
        },
    };
    let page = form_page(context, &form.fields, problems);
    Ok((status, render(&page)).into_response())
}
