//! The experiments page: every experiment with its status, coverage or stage,
//! health and the primary metric's lift; filtered by status and searched by key.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::error::WebError;
use super::session::Session;
use super::text::Text;
use super::view::{self, render, Chrome};
use super::WebState;
use crate::control::ReportOptions;
use crate::domain::{Experiment, Status};
use crate::report::Report;

/// Every status, in lifecycle order, for the filter.
const STATUSES: [Status; 6] = [
    Status::Draft,
    Status::Running,
    Status::Paused,
    Status::RolledBack,
    Status::Shipped,
    Status::Stopped,
];

#[derive(Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
}

pub(crate) struct StatusOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

pub(crate) struct ExperimentRow {
    key: String,
    name: String,
    status: &'static str,
    status_label: &'static str,
    exposure: String,
    health: &'static str,
    health_label: &'static str,
    lift: String,
    lift_class: &'static str,
}

#[derive(Template)]
#[template(path = "experiments.html")]
struct ExperimentsPage {
    t: Text,
    chrome: Chrome,
    search: String,
    statuses: Vec<StatusOption>,
    rows: Vec<ExperimentRow>,
    total: usize,
}

pub(crate) async fn list(
    State(state): State<WebState>,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Result<Response, WebError> {
    let t = session.text();
    let experiments = state.control.list_experiments().await?;
    let total = experiments.len();
    let search = query.q.trim().to_lowercase();
    let mut rows = Vec::new();
    for experiment in experiments.iter().filter(|e| {
        (query.status.is_empty() || e.status.as_str() == query.status)
            && e.key().to_lowercase().contains(&search)
    }) {
        let report = state
            .control
            .report(experiment.key(), ReportOptions::default())
            .await?;
        rows.push(row(t, experiment, &report));
    }
    let statuses = STATUSES
        .iter()
        .map(|s| StatusOption {
            value: s.as_str(),
            label: t.status_of(*s),
            selected: s.as_str() == query.status,
        })
        .collect();
    Ok(render(&ExperimentsPage {
        t,
        chrome: session.chrome(),
        search: query.q,
        statuses,
        rows,
        total,
    }))
}

fn row(t: Text, experiment: &Experiment, report: &Report) -> ExperimentRow {
    let (lift, lift_class) = primary_lift(t, experiment, report);
    ExperimentRow {
        key: experiment.key().to_owned(),
        name: experiment.spec.name.clone(),
        status: experiment.status.as_str(),
        status_label: t.status_of(experiment.status),
        exposure: exposure(t, experiment),
        health: report.health.as_str(),
        health_label: t.health_of(report.health),
        lift,
        lift_class,
    }
}

/// The coverage, and the stage for a staged rollout: "5.0% · stage 1 of 3".
pub(crate) fn exposure(t: Text, experiment: &Experiment) -> String {
    let coverage = view::percent(experiment.spec.coverage);
    match &experiment.rollout {
        Some(rollout) => {
            t.exposure_stage(coverage, rollout.stage + 1, experiment.spec.stages.len())
        }
        None => coverage,
    }
}

/// The first treatment's relative effect on the primary metric, and whether it is
/// significant ("win", "loss") or not yet ("flat").
fn primary_lift(t: Text, experiment: &Experiment, report: &Report) -> (String, &'static str) {
    let comparison = experiment.spec.primary_metric.as_ref().and_then(|primary| {
        report
            .metrics
            .iter()
            .find(|m| &m.metric == primary)
            .and_then(|m| m.comparisons.first())
    });
    let Some(comparison) = comparison else {
        return ("—".to_owned(), "flat");
    };
    let Some(effect) = comparison.rel_effect else {
        return ("—".to_owned(), "flat");
    };
    let class = match (comparison.significant, effect > 0.0) {
        (true, true) => "win",
        (true, false) => "loss",
        (false, _) => "flat",
    };
    let lift = t.lift_of(&comparison.variant, view::signed_percent(effect));
    (lift, class)
}
