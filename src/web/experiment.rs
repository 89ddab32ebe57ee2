//! One experiment's page: its definition, guardrails with their evidence, the
//! significance table, the SRM warning, a chart per metric, a breakdown by
//! dimension, the audit timeline, CSV export and the lifecycle buttons.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::chart::{self, Chart};
use super::error::WebError;
use super::experiments::exposure;
use super::lifecycle::{available_actions, ActionLink};
use super::session::Session;
use super::view::{self, render, Chrome};
use super::WebState;
use crate::control::ReportOptions;
use crate::domain::experiment::Guardrail;
use crate::domain::{AuditEntry, Experiment, Role, Status};
use crate::http::csv_attachment;
use crate::report::{ComparisonReport, MetricReport, Report};

#[derive(Deserialize, Default)]
pub(crate) struct ShowQuery {
    #[serde(default)]
    dimension: String,
}

struct VariantView {
    key: String,
    weight: String,
    payload: String,
}

struct StageView {
    coverage: String,
    hold: String,
    current: bool,
}

struct GuardrailView {
    status: &'static str,
    evidence: String,
}

/// A variant's row of the significance table; the control has no comparison.
struct ArmView {
    variant: String,
    users: u64,
    mean: String,
    comparison: Option<ComparisonView>,
}

struct ComparisonView {
    lift: String,
    interval: String,
    p_value: String,
    chance_to_win: String,
    significant: bool,
    /// "win", "loss", or "flat" while not significant.
    verdict: &'static str,
}

struct MetricView {
    metric: String,
    kind: String,
    arms: Vec<ArmView>,
    charts: Vec<Chart>,
}

struct SegmentView {
    value: String,
    users: u64,
    metrics: Vec<MetricView>,
}

struct DimensionOption {
    name: String,
    selected: bool,
}

struct AuditView {
    at: String,
    actor: String,
    action: String,
    change: String,
    evidence: Option<String>,
}

#[derive(Template)]
#[template(path = "experiment.html")]
struct ExperimentPage {
    chrome: Chrome,
    key: String,
    name: String,
    hypothesis: String,
    status: &'static str,
    exposure: String,
    shipped_variant: Option<String>,
    variants: Vec<VariantView>,
    condition: Option<String>,
    namespace: Option<String>,
    /// Where it is served; empty for every environment.
    environments: String,
    stages: Vec<StageView>,
    /// When a staged rollout may advance at the earliest, while it runs.
    next_stage: Option<String>,
    hash_attribute: String,
    health: &'static str,
    srm_warning: Option<String>,
    guardrail_rules: Vec<String>,
    guardrails: Vec<GuardrailView>,
    metrics: Vec<MetricView>,
    dimensions: Vec<DimensionOption>,
    breakdown: Vec<SegmentView>,
    audit: Vec<AuditView>,
    actions: Vec<ActionLink>,
}

pub(crate) async fn show(
    State(state): State<WebState>,
    session: Session,
    Path(key): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Response, WebError> {
    let experiment = state.control.get_experiment(&key).await?;
    let options = ReportOptions {
        daily_series: true,
        dimension: Some(query.dimension.clone()).filter(|d| !d.is_empty()),
        ..ReportOptions::default()
    };
    let report = state.control.report(&key, options).await?;
    let audit = state.control.audit_log(&key).await?;
    let actions = if session.may(Role::Editor) {
        available_actions(&experiment)
    } else {
        Vec::new()
    };
    let page = page(
        session.chrome(),
        &experiment,
        &report,
        &audit,
        &query.dimension,
        actions,
    );
    Ok(render(&page))
}

pub(crate) async fn csv(
    State(state): State<WebState>,
    _session: Session,
    Path(key): Path<String>,
) -> Result<Response, WebError> {
    let report = state.control.report(&key, ReportOptions::default()).await?;
    Ok(csv_attachment(&key, &report))
}

fn page(
    chrome: Chrome,
    experiment: &Experiment,
    report: &Report,
    audit: &[AuditEntry],
    dimension: &str,
    actions: Vec<ActionLink>,
) -> ExperimentPage {
    let spec = &experiment.spec;
    let series = report.series.as_deref().unwrap_or_default();
    ExperimentPage {
        chrome,
        key: spec.key.clone(),
        name: spec.name.clone(),
        hypothesis: spec.hypothesis.clone(),
        status: experiment.status.as_str(),
        exposure: exposure(experiment),
        shipped_variant: experiment.shipped_variant.clone(),
        variants: spec
            .variants
            .iter()
            .map(|v| VariantView {
                key: v.key.clone(),
                weight: view::percent(v.weight),
                payload: view::json(&v.value),
            })
            .collect(),
        condition: spec.condition.as_ref().map(view::json),
        namespace: spec.namespace.as_ref().map(|n| {
            format!(
                "{} [{}, {})",
                n.name,
                view::number(n.range[0]),
                view::number(n.range[1])
            )
        }),
        environments: spec.environments.join(", "),
        stages: stages(experiment),
        next_stage: experiment
            .rollout
            .as_ref()
            .and_then(|r| r.hold_until.clone())
            .filter(|_| experiment.status == Status::Running),
        hash_attribute: spec.hash_attribute.clone(),
        health: report.health.as_str(),
        srm_warning: srm_warning(report),
        guardrail_rules: spec.guardrails.iter().map(guardrail_rule).collect(),
        guardrails: report
            .guardrails
            .iter()
            .map(|g| GuardrailView {
                status: g.status.as_str(),
                evidence: g.evidence.clone(),
            })
            .collect(),
        metrics: report
            .metrics
            .iter()
            .map(|m| metric_view(m, chart::charts(&m.metric, series)))
            .collect(),
        dimensions: spec
            .dimensions
            .iter()
            .map(|name| DimensionOption {
                name: name.clone(),
                selected: name == dimension,
            })
            .collect(),
        breakdown: breakdown(report),
        audit: audit.iter().rev().map(audit_view).collect(),
        actions,
    }
}

fn stages(experiment: &Experiment) -> Vec<StageView> {
    let current = experiment.rollout.as_ref().map(|r| r.stage);
    experiment
        .spec
        .stages
        .iter()
        .enumerate()
        .map(|(i, stage)| StageView {
            coverage: view::percent(stage.coverage),
            hold: stage
                .hold_seconds
                .map_or_else(|| "until shipped".to_owned(), hold_text),
            current: current == Some(i),
        })
        .collect()
}

/// A hold in the largest whole unit: 259200 → "3 days".
fn hold_text(seconds: u64) -> String {
    match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => format!("at least {} days", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("at least {} hours", s / 3_600),
        s => format!("at least {s} seconds"),
    }
}

/// A guardrail's definition in words.
fn guardrail_rule(guardrail: &Guardrail) -> String {
    format!(
        "{}: a drop of {} or more, once every variant has {} users, triggers {}",
        guardrail.metric,
        view::percent(guardrail.max_drop),
        guardrail.min_users,
        guardrail.action.as_str()
    )
}

fn srm_warning(report: &Report) -> Option<String> {
    if report.srm.ok {
        return None;
    }
    let users = report
        .srm
        .users
        .iter()
        .map(|(variant, n)| format!("{variant} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let p = view::or_dash(report.srm.p_value, view::p_value);
    Some(format!(
        "Sample ratio mismatch: the users per variant ({users}) do not match the configured weights (p = {p}). Assignment or logging is broken somewhere; do not trust the results until it is found."
    ))
}

fn metric_view(metric: &MetricReport, charts: Vec<Chart>) -> MetricView {
    MetricView {
        metric: metric.metric.clone(),
        kind: format!("{:?}", metric.kind).to_lowercase(),
        arms: metric
            .variants
            .iter()
            .map(|v| ArmView {
                variant: v.variant.clone(),
                users: v.users,
                mean: view::or_dash(v.mean, |m| format!("{m:.4}")),
                comparison: metric
                    .comparisons
                    .iter()
                    .find(|c| c.variant == v.variant)
                    .map(comparison_view),
            })
            .collect(),
        charts,
    }
}

fn comparison_view(c: &ComparisonReport) -> ComparisonView {
    let verdict = match (c.significant, c.rel_effect) {
        (true, Some(effect)) if effect > 0.0 => "win",
        (true, Some(_)) => "loss",
        _ => "flat",
    };
    ComparisonView {
        lift: view::or_dash(c.rel_effect, view::signed_percent),
        interval: view::interval(c.rel_ci),
        p_value: view::or_dash(c.adjusted_p_value.or(c.p_value), view::p_value),
        chance_to_win: view::or_dash(c.chance_to_win, view::percent),
        significant: c.significant,
        verdict,
    }
}

fn breakdown(report: &Report) -> Vec<SegmentView> {
    let Some(breakdown) = &report.breakdown else {
        return Vec::new();
    };
    breakdown
        .segments
        .iter()
        .map(|s| SegmentView {
            value: s.value.clone(),
            users: s.users,
            metrics: s
                .metrics
                .iter()
                .map(|m| metric_view(m, Vec::new()))
                .collect(),
        })
        .collect()
}

fn audit_view(entry: &AuditEntry) -> AuditView {
    AuditView {
        at: entry.at.clone(),
        actor: entry.actor.clone(),
        action: entry.action.clone(),
        change: change_summary(entry),
        evidence: entry.evidence.as_ref().map(view::json),
    }
}

/// What an audit entry changed, in a few words: the status, else the coverage.
fn change_summary(entry: &AuditEntry) -> String {
    let field = |state: &Option<serde_json::Value>, name: &str| {
        state.as_ref().and_then(|s| s.get(name)).cloned()
    };
    let text = |value: Option<serde_json::Value>| value.and_then(|v| v.as_str().map(str::to_owned));
    let share =
        |value: Option<serde_json::Value>| value.and_then(|v| v.as_f64()).map(view::percent);
    let status = (
        text(field(&entry.before, "status")),
        text(field(&entry.after, "status")),
    );
    let coverage = (
        share(field(&entry.before, "coverage")),
        share(field(&entry.after, "coverage")),
    );
    match (status, coverage) {
        ((None, Some(after)), _) => format!("created as {after}"),
        ((Some(before), Some(after)), _) if before != after => format!("{before} → {after}"),
        (_, (Some(before), Some(after))) if before != after => {
            format!("coverage {before} → {after}")
        }
        _ => "definition changed".to_owned(),
    }
}
