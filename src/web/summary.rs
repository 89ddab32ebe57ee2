//! What the pages that list experiments show of each one, from its
//! [`Summary`]: status, coverage or stage, health, the primary metric's lift and
//! each guardrail's verdict in words. The experiments list, the overview and the
//! experiment page share these, so an experiment reads the same everywhere.

use super::text::Text;
use super::view;
use crate::control::Summary;
use crate::domain::experiment::Guardrail;
use crate::domain::Experiment;
use crate::report::{ComparisonReport, GuardrailVerdict, Report};

/// One experiment as a row of the experiments list or the overview.
pub(crate) struct SummaryRow {
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) status: &'static str,
    pub(crate) status_label: &'static str,
    pub(crate) exposure: String,
    pub(crate) health: &'static str,
    pub(crate) health_label: &'static str,
    /// Why the data cannot be trusted yet, when users do not split as weighted.
    pub(crate) srm: Option<String>,
    pub(crate) lift: String,
    /// The primary lift's [`Verdict`], as a class.
    pub(crate) lift_class: &'static str,
    pub(crate) guardrails: Vec<GuardrailView>,
}

/// A guardrail's verdict for one treatment, with the numbers it rests on.
pub(crate) struct GuardrailView {
    pub(crate) status: &'static str,
    pub(crate) status_label: &'static str,
    pub(crate) evidence: String,
}

impl SummaryRow {
    pub(crate) fn of(t: Text, summary: &Summary) -> Self {
        let (experiment, report) = (&summary.experiment, &summary.report);
        let (lift, verdict) = primary_lift(t, experiment, report);
        SummaryRow {
            key: experiment.key().to_owned(),
            name: experiment.spec.name.clone(),
            status: experiment.status.as_str(),
            status_label: t.status_of(experiment.status),
            exposure: exposure(t, experiment),
            health: report.health.as_str(),
            health_label: t.health_of(report.health),
            srm: (!report.srm.ok)
                .then(|| t.srm_flag(view::or_dash(report.srm.p_value, view::p_value))),
            lift,
            lift_class: verdict.as_str(),
            guardrails: guardrails(t, experiment, report),
        }
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

/// What a comparison says of a treatment so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Significantly up.
    Win,
    /// Significantly down.
    Loss,
    /// Not significant (yet), or undefined.
    Flat,
}

impl Verdict {
    pub(crate) fn of(comparison: &ComparisonReport) -> Self {
        match (comparison.significant, comparison.rel_effect) {
            (true, Some(effect)) if effect > 0.0 => Verdict::Win,
            (true, Some(_)) => Verdict::Loss,
            _ => Verdict::Flat,
        }
    }

    /// The class the pages colour it by.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Win => "win",
            Verdict::Loss => "loss",
            Verdict::Flat => "flat",
        }
    }
}

/// The first treatment's relative effect on the primary metric, and its verdict.
fn primary_lift(t: Text, experiment: &Experiment, report: &Report) -> (String, Verdict) {
    let comparison = experiment.spec.primary_metric.as_ref().and_then(|primary| {
        report
            .metrics
            .iter()
            .find(|m| &m.metric == primary)
            .and_then(|m| m.comparisons.first())
    });
    match comparison.and_then(|c| c.rel_effect.map(|effect| (c, effect))) {
        Some((comparison, effect)) => (
            t.lift_of(&comparison.variant, view::signed_percent(effect)),
            Verdict::of(comparison),
        ),
        None => ("—".to_owned(), Verdict::Flat),
    }
}

/// Each guardrail's verdict per treatment, in report order.
pub(crate) fn guardrails(t: Text, experiment: &Experiment, report: &Report) -> Vec<GuardrailView> {
    report
        .guardrails
        .iter()
        .map(|verdict| GuardrailView {
            status: verdict.status.as_str(),
            status_label: t.health_of(verdict.status),
            evidence: evidence(t, verdict, &experiment.spec.guardrails, report),
        })
        .collect()
}

/// The numbers a guardrail's verdict rests on, in words.
fn evidence(t: Text, verdict: &GuardrailVerdict, rules: &[Guardrail], report: &Report) -> String {
    let Some(rule) = rules.iter().find(|g| g.metric == verdict.metric) else {
        return verdict.evidence.clone();
    };
    let change = verdict.observed_drop.map_or_else(
        || t.change_undefined().to_owned(),
        |drop| t.change_vs_control(view::signed_percent(-drop)),
    );
    let line = t.evidence(
        &verdict.variant,
        &verdict.metric,
        change,
        view::percent(rule.max_drop),
        view::or_dash(verdict.p_value, |p| format!("{p:.4}")),
        view::number(report.alpha),
        view::count(verdict.control_users),
        view::count(verdict.treatment_users),
        view::count(rule.min_users),
    );
    if report.srm.ok {
        line
    } else {
        t.with_srm(line)
    }
}
