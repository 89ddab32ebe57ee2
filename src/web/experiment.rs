//! One experiment's page: its definition, guardrails with their evidence, the
//! significance table, the SRM warning, a chart per metric, a breakdown by one or
//! two dimensions, the audit timeline, CSV export and the lifecycle buttons. The
//! report follows the filter in the query string (see [`super::filter`]), and so
//! does the CSV export.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::chart::{self, Chart};
use super::error::WebError;
use super::filter::{filter_view, read_query, Asked, FilterView};
use super::lifecycle::{available_actions, ActionLink};
use super::session::Session;
use super::summary::{exposure, guardrails, GuardrailView, Verdict};
use super::text::Text;
use super::view::{self, render, Chrome};
use super::WebState;
use crate::control::{Control, ControlError, ReportOptions, ReportQuery};
use crate::domain::experiment::Guardrail;
use crate::domain::validation::FieldProblem;
use crate::domain::{AuditEntry, Experiment, Role, Status, ValidationError};
use crate::http::csv_attachment;
use crate::report::{ComparisonReport, CupedReport, MetricReport, Report};

struct VariantView {
    key: String,
    weight: String,
    payload: String,
}

struct StageView {
    text: String,
    current: bool,
}

/// A variant's row of the significance table; the control has no comparison.
struct ArmView {
    variant: String,
    users: String,
    /// "312 users still in their window", for a shaped metric with such users.
    pending: Option<String>,
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
    cuped: Option<CupedView>,
}

/// A CUPED note and its title: the experiment's badge ("CUPED · 14-day
/// lookback"), or what it did to a comparison ("variance −23%", θ as its title).
struct CupedView {
    text: String,
    title: String,
}

struct MetricView {
    metric: String,
    kind: String,
    arms: Vec<ArmView>,
    charts: Vec<Chart>,
}

struct SegmentView {
    value: String,
    users: String,
    metrics: Vec<MetricView>,
}

struct AuditView {
    /// RFC 3339, for `<time datetime>`.
    at: String,
    when: String,
    /// The API's name of the action.
    action: String,
    /// Who did what, in words.
    line: String,
    change: String,
    evidence: Option<String>,
}

#[derive(Template)]
#[template(path = "experiment.html")]
struct ExperimentPage {
    t: Text,
    chrome: Chrome,
    key: String,
    name: String,
    hypothesis: String,
    status: &'static str,
    status_label: &'static str,
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
    health_label: &'static str,
    cuped: Option<CupedView>,
    srm_warning: Option<String>,
    backfill_note: Option<String>,
    guardrail_rules: Vec<String>,
    guardrails: Vec<GuardrailView>,
    metrics: Vec<MetricView>,
    /// Whether the experiment keeps any dimension to break down by.
    keeps_dimensions: bool,
    /// Whether the report carries a breakdown.
    broken_down: bool,
    filter: FilterView,
    breakdown: Vec<SegmentView>,
    audit: Vec<AuditView>,
    actions: Vec<ActionLink>,
}

pub(crate) async fn show(
    State(state): State<WebState>,
    session: Session,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let experiment = state.control.get_experiment(&key).await?;
    let query = read_query(raw.as_deref());
    let shown = shown_report(&state.control, &key, &query).await?;
    let kept = state.control.kept_values(&experiment).await?;
    let audit = state.control.audit_log(&key).await?;
    let t = session.text();
    let actions = if session.may(Role::Editor) {
        available_actions(t, &experiment)
    } else {
        Vec::new()
    };
    let asked = Asked {
        key: &key,
        raw: raw.as_deref(),
        query: query.as_ref().ok(),
    };
    let status = if shown.problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let filter = filter_view(t, &asked, &kept, &shown.options.filter, shown.problems);
    let page = page(
        t,
        session.chrome(),
        &experiment,
        &shown.report,
        &audit,
        filter,
        actions,
    );
    Ok((status, render(&page)).into_response())
}

/// The CSV of what the page with the same query string shows.
pub(crate) async fn csv(
    State(state): State<WebState>,
    _session: Session,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let options = read_query(raw.as_deref())
        .and_then(|query| query.options())
        .map_err(ControlError::Invalid)?;
    let report = state.control.report(&key, options).await?;
    Ok(csv_attachment(&key, &report))
}

/// The report a page shows, the options it was built with, and why the query was
/// not applied when it was not.
struct Shown {
    report: Report,
    options: ReportOptions,
    problems: Vec<FieldProblem>,
}

/// The report the query asks for, with the daily series the charts draw; for a
/// query that is not valid, everyone's report and the problems with the query.
async fn shown_report(
    control: &Control,
    key: &str,
    query: &Result<ReportQuery, ValidationError>,
) -> Result<Shown, WebError> {
    let with_series = |options| ReportOptions {
        daily_series: true,
        ..options
    };
    let asked = query.clone().and_then(|query| query.options());
    let invalid = match asked.map(with_series) {
        Ok(options) => match control.report(key, options.clone()).await {
            Ok(report) => {
                return Ok(Shown {
                    report,
                    options,
                    problems: Vec::new(),
                })
            }
            Err(ControlError::Invalid(invalid)) => invalid,
            Err(other) => return Err(other.into()),
        },
        Err(invalid) => invalid,
    };
    let options = with_series(ReportOptions::default());
    Ok(Shown {
        report: control.report(key, options.clone()).await?,
        options,
        problems: invalid.problems,
    })
}

fn page(
    t: Text,
    chrome: Chrome,
    experiment: &Experiment,
    report: &Report,
    audit: &[AuditEntry],
    filter: FilterView,
    actions: Vec<ActionLink>,
) -> ExperimentPage {
    let spec = &experiment.spec;
    let series = report.series.as_deref().unwrap_or_default();
    ExperimentPage {
        t,
        chrome,
        key: spec.key.clone(),
        name: spec.name.clone(),
        hypothesis: spec.hypothesis.clone(),
        status: experiment.status.as_str(),
        status_label: t.status_of(experiment.status),
        exposure: exposure(t, experiment),
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
            t.namespace_range(&n.name, view::number(n.range[0]), view::number(n.range[1]))
        }),
        environments: spec.environments.join(", "),
        stages: stages(t, experiment),
        next_stage: experiment
            .rollout
            .as_ref()
            .and_then(|r| r.hold_until.as_deref())
            .filter(|_| experiment.status == Status::Running)
            .map(|at| view::date_time_text(t.lang, at)),
        hash_attribute: spec.hash_attribute.clone(),
        health: report.health.as_str(),
        health_label: t.health_of(report.health),
        cuped: spec.cuped.map(|c| {
            let days = view::count(c.lookback_days);
            CupedView {
                text: t.cuped_badge(&days),
                title: t.cuped_explained(&days),
            }
        }),
        srm_warning: srm_warning(t, report),
        backfill_note: report.backfill.as_ref().map(|b| {
            t.backfill_note(
                b.metrics.join(", "),
                view::count(b.users_done),
                view::count(b.users_total),
            )
        }),
        guardrail_rules: spec
            .guardrails
            .iter()
            .map(|g| guardrail_rule(t, g))
            .collect(),
        guardrails: guardrails(t, experiment, report),
        metrics: report
            .metrics
            .iter()
            .map(|m| metric_view(t, m, chart::charts(t, &m.metric, series)))
            .collect(),
        keeps_dimensions: !spec.dimensions.is_empty(),
        broken_down: report.breakdown.is_some(),
        filter,
        breakdown: breakdown(t, report),
        audit: audit.iter().rev().map(|e| audit_view(t, e)).collect(),
        actions,
    }
}

fn stages(t: Text, experiment: &Experiment) -> Vec<StageView> {
    let current = experiment.rollout.as_ref().map(|r| r.stage);
    experiment
        .spec
        .stages
        .iter()
        .enumerate()
        .map(|(i, stage)| StageView {
            text: t.stage_of(
                view::percent(stage.coverage),
                stage.hold_seconds.map_or_else(
                    || t.until_shipped().to_owned(),
                    |seconds| hold_text(t, seconds),
                ),
            ),
            current: current == Some(i),
        })
        .collect()
}

/// A hold in the largest whole unit: 259200 → "at least 3 days".
fn hold_text(t: Text, seconds: u64) -> String {
    match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => t.hold_days(view::count(s / 86_400)),
        s if s >= 3_600 && s % 3_600 == 0 => t.hold_hours(view::count(s / 3_600)),
        s => t.hold_seconds(view::count(s)),
    }
}

/// A guardrail's definition in words.
fn guardrail_rule(t: Text, guardrail: &Guardrail) -> String {
    t.guardrail_rule(
        &guardrail.metric,
        view::percent(guardrail.max_drop),
        view::count(guardrail.min_users),
        t.guardrail_action(guardrail.action),
    )
}

fn srm_warning(t: Text, report: &Report) -> Option<String> {
    if report.srm.ok {
        return None;
    }
    let users = report
        .srm
        .users
        .iter()
        .map(|(variant, n)| {
            let users = n.as_u64().map_or_else(|| n.to_string(), view::count);
            t.variant_users(variant, users)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let p = view::or_dash(report.srm.p_value, view::p_value);
    Some(t.srm_warning(users, p))
}

fn metric_view(t: Text, metric: &MetricReport, charts: Vec<Chart>) -> MetricView {
    MetricView {
        metric: metric.metric.clone(),
        kind: t.metric_kind(metric.kind).to_owned(),
        arms: metric
            .variants
            .iter()
            .map(|v| ArmView {
                variant: v.variant.clone(),
                users: view::count(v.users),
                pending: v
                    .users_pending
                    .filter(|n| *n > 0)
                    .map(|n| t.users_pending(view::count(n))),
                mean: view::or_dash(v.mean, |m| format!("{m:.4}")),
                comparison: metric
                    .comparisons
                    .iter()
                    .find(|c| c.variant == v.variant)
                    .map(|c| comparison_view(t, c)),
            })
            .collect(),
        charts,
    }
}

fn comparison_view(t: Text, c: &ComparisonReport) -> ComparisonView {
    ComparisonView {
        lift: view::or_dash(c.rel_effect, view::signed_percent),
        interval: view::interval(c.rel_ci),
        p_value: view::or_dash(c.adjusted_p_value.or(c.p_value), view::p_value),
        chance_to_win: view::or_dash(c.chance_to_win, view::percent),
        significant: c.significant,
        verdict: Verdict::of(c).as_str(),
        cuped: c.cuped.map(|cuped| cuped_view(t, &cuped)),
    }
}

/// The variance CUPED took off a comparison ("variance −23%"), θ as its title; or
/// that it could not adjust.
fn cuped_view(t: Text, cuped: &CupedReport) -> CupedView {
    match (cuped.variance_reduction, cuped.theta) {
        (Some(reduction), Some(theta)) => {
            let change = -reduction * 100.0;
            let sign = if change < 0.0 { '−' } else { '+' };
            CupedView {
                text: t.variance_change(format!("{sign}{:.0}%", change.abs())),
                title: t.cuped_theta(format!("{theta:.4}")),
            }
        }
        _ => CupedView {
            text: t.cuped_not_adjusted().to_owned(),
            title: t.cuped_not_adjusted_why().to_owned(),
        },
    }
}

fn breakdown(t: Text, report: &Report) -> Vec<SegmentView> {
    let Some(breakdown) = &report.breakdown else {
        return Vec::new();
    };
    breakdown
        .segments
        .iter()
        .map(|s| SegmentView {
            value: s.value.clone(),
            users: view::count(s.users),
            metrics: s
                .metrics
                .iter()
                .map(|m| metric_view(t, m, Vec::new()))
                .collect(),
        })
        .collect()
}

fn audit_view(t: Text, entry: &AuditEntry) -> AuditView {
    AuditView {
        at: entry.at.clone(),
        when: view::date_time_text(t.lang, &entry.at),
        action: entry.action.clone(),
        line: t.audit_line(t.event_of(&entry.action), &entry.actor),
        change: change_summary(t, entry),
        evidence: entry.evidence.as_ref().map(view::json),
    }
}

/// What an audit entry changed, in a few words: the status, else the coverage.
fn change_summary(t: Text, entry: &AuditEntry) -> String {
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
        ((None, Some(after)), _) => t.created_as(t.status_named(&after)),
        ((Some(before), Some(after)), _) if before != after => {
            t.status_change(t.status_named(&before), t.status_named(&after))
        }
        (_, (Some(before), Some(after))) if before != after => t.coverage_change(before, after),
        _ => t.definition_changed().to_owned(),
    }
}
