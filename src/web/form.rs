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
use super::fields::{choices, translated, Builder, Choice, Field, Fields};
use super::session::{Session, SignedForm};
use super::text::Text;
use super::view::{render, Chrome};
use super::WebState;
use crate::control::ControlError;
use crate::domain::experiment::{FrozenField, GuardrailAction};
use crate::domain::validation::from_json;
use crate::domain::{Environment, Experiment, ExperimentSpec, FieldProblem, Metric, Role};

const GUARDRAIL_ACTIONS: [GuardrailAction; 4] = [
    GuardrailAction::Alert,
    GuardrailAction::Pause,
    GuardrailAction::Adjust,
    GuardrailAction::Rollback,
];

/// The ids of the notes that say why fields are read-only.
const FROZEN_NOTE: &str = "frozen-note";

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
    t: Text,
    chrome: Chrome,
    title: String,
    target: String,
    editing: bool,
    refusal: Option<String>,
    /// Why some fields are read-only, when the experiment has started.
    frozen_note: Option<String>,
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
    cuped_lookback_days: Field,
    /// What a change to CUPED or shaped metrics does once users were exposed.
    cuped_note: Option<&'static str>,
}

/// What the form shows besides the values and problems.
struct FormContext {
    t: Text,
    chrome: Chrome,
    metrics: Vec<Metric>,
    environments: Vec<Environment>,
    editing: Option<String>,
    /// What the domain refuses to change in the experiment edited.
    frozen: &'static [FrozenField],
    /// Whether users were exposed: a change to shaped metrics or CUPED rebuilds.
    exposed: bool,
    refusal: Option<String>,
}

fn variant_rows(t: Text, b: &mut Builder<'_>) -> Vec<VariantRow> {
    (0..VARIANT_ROWS)
        .map(|i| VariantRow {
            key: b.row("variants", i, "key", &t.variant_key(i + 1)),
            weight: b.row("variants", i, "weight", t.weight()),
            value: b.row("variants", i, "value", t.payload_json()),
        })
        .collect()
}

fn guardrail_rows(
    t: Text,
    b: &mut Builder<'_>,
    metric_options: &[(String, String)],
) -> Vec<GuardrailRow> {
    let action_options: Vec<(String, String)> = GUARDRAIL_ACTIONS
        .iter()
        .map(|a| (a.as_str().to_owned(), t.guardrail_action(*a).to_owned()))
        .collect();
    (0..GUARDRAIL_ROWS)
        .map(|i| {
            let metric = b.row("guardrails", i, "metric", &t.guardrail_metric(i + 1));
            let action = b.row("guardrails", i, "action", t.action());
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
                max_drop: b.row("guardrails", i, "max_drop", t.largest_drop()),
                min_users: b.row("guardrails", i, "min_users", t.min_users()),
                action,
            }
        })
        .collect()
}

fn stage_rows(t: Text, b: &mut Builder<'_>) -> Vec<StageRow> {
    (0..STAGE_ROWS)
        .map(|i| StageRow {
            coverage: b.row("stages", i, "coverage", &t.stage_coverage(i + 1)),
            hold_seconds: b.row("stages", i, "hold_seconds", t.min_hold()),
        })
        .collect()
}

/// Makes the fields of what may no longer change read-only.
fn lock(page: &mut FormPage, frozen: &[FrozenField]) {
    for field in frozen {
        match field {
            FrozenField::Variants => {
                for row in &mut page.variants {
                    row.key.locked = Some(FROZEN_NOTE);
                    row.weight.locked = Some(FROZEN_NOTE);
                }
            }
            FrozenField::HashAttribute => page.hash_attribute.locked = Some(FROZEN_NOTE),
            FrozenField::Namespace => {
                for part in [
                    &mut page.namespace_name,
                    &mut page.namespace_start,
                    &mut page.namespace_end,
                ] {
                    part.locked = Some(FROZEN_NOTE);
                }
            }
            // The form does not offer them: they keep their stored values.
            FrozenField::Seed | FrozenField::HashVersion => {}
        }
    }
}

fn form_page(context: FormContext, values: &Fields, problems: Vec<FieldProblem>) -> FormPage {
    let t = context.t;
    let problems = translated(t, problems);
    let mut b = Builder {
        values,
        problems: problems.clone(),
    };
    let metric_options: Vec<(String, String)> = context
        .metrics
        .iter()
        .map(|m| (m.key.clone(), t.metric_choice(&m.key, &m.name)))
        .collect();
    let mut none_then_metrics = vec![(String::new(), t.none().to_owned())];
    none_then_metrics.extend(metric_options.iter().cloned());
    let variants = variant_rows(t, &mut b);
    let guardrails = guardrail_rows(t, &mut b, &none_then_metrics);
    let stages = stage_rows(t, &mut b);
    let primary_metric = b.field(
        "primary_metric",
        t.primary_metric(),
        t.primary_metric_hint(),
    );
    let secondary = values.all("secondary_metrics");
    let environment_options: Vec<(String, String)> = context
        .environments
        .iter()
        .map(|e| (e.key.clone(), t.environment_choice(&e.name, &e.key)))
        .collect();
    let (title, target) = match &context.editing {
        Some(key) => (t.edit_experiment(key), format!("/experiments/{key}/edit")),
        None => (t.new_experiment().to_owned(), "/experiments/new".to_owned()),
    };
    let frozen_note = (!context.frozen.is_empty()).then(|| {
        let names: Vec<&str> = context.frozen.iter().map(|f| t.frozen_part(*f)).collect();
        t.frozen_note(names.join(t.list_separator()))
    });
    let mut page = FormPage {
        t,
        chrome: context.chrome,
        title,
        target,
        editing: context.editing.is_some(),
        refusal: context.refusal,
        frozen_note,
        key: b.field("key", t.key(), t.key_hint()),
        name: b.field("name", t.name(), ""),
        hypothesis: b.field("hypothesis", t.hypothesis(), ""),
        variants,
        variants_error: b.group("variants"),
        coverage: b.field("coverage", t.coverage(), t.coverage_hint()),
        condition: b.field("condition", t.condition_json(), t.condition_hint()),
        hash_attribute: b.field(
            "hash_attribute",
            t.hash_attribute(),
            t.hash_attribute_hint(),
        ),
        namespace_name: b.field("namespace.name", t.namespace(), t.namespace_hint()),
        namespace_start: b.field("namespace.range[0]", t.range_start(), ""),
        namespace_end: b.field("namespace.range[1]", t.range_end(), ""),
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
        dimensions: b.field("dimensions", t.dimensions(), t.dimensions_hint()),
        alpha: b.field("alpha", t.significance_level(), t.alpha_hint()),
        report_after_hours: b.field(
            "report_after_hours",
            t.report_after(),
            t.report_after_hint(),
        ),
        cuped_lookback_days: b.field(
            "cuped.lookback_days",
            t.cuped_lookback(),
            t.cuped_lookback_hint(),
        ),
        cuped_note: context.exposed.then(|| t.shaped_change_rebuilds()),
        problems,
    };
    lock(&mut page, context.frozen);
    page
}

/// The form's context for a new experiment, or for editing `editing`.
async fn context(
    state: &WebState,
    session: &Session,
    editing: Option<&Experiment>,
) -> Result<FormContext, WebError> {
    let exposed = match editing {
        Some(experiment) => state.control.has_exposures(experiment.key()).await?,
        None => false,
    };
    Ok(FormContext {
        t: session.text(),
        chrome: session.chrome(),
        metrics: state.control.list_metrics().await?,
        environments: state.control.list_environments().await?,
        editing: editing.map(|e| e.key().to_owned()),
        frozen: editing.map_or(&[], Experiment::frozen_fields),
        exposed,
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
    let context = context(&state, &session, Some(&experiment)).await?;
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
    let outcome = match spec_document(form.session.text(), &form.fields) {
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
    let outcome = match spec_document(form.session.text(), &form.fields) {
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
    let edited = match &editing {
        Some(key) => Some(state.control.get_experiment(key).await?),
        None => None,
    };
    let mut context = context(state, &form.session, edited.as_ref()).await?;
    let (status, problems) = match err {
        ControlError::Invalid(invalid) => (StatusCode::BAD_REQUEST, invalid.problems),
        other => match WebError::from(other) {
            WebError::Page { status, problem } if !status.is_server_error() => {
                context.refusal = Some(problem.text(context.t));
                (status, Vec::new())
            }
            failed => return Err(failed),
        },
    };
    let page = form_page(context, &form.fields, problems);
    Ok((status, render(&page)).into_response())
}
