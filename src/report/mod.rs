//! Significance reports: per metric and variant the sufficient statistics, and per
//! treatment the comparison with the control (Welch, sequential, Bayesian), the
//! sample-ratio check, guardrail verdicts and an overall health. Building a report
//! is pure; [`crate::control`] gathers its inputs from the store.

mod arms;
pub mod breakdown;
mod csv;
mod headline;
pub mod series;
mod table;

use serde::{Deserialize, Serialize};

pub use self::csv::to_csv;
/// A report's health and guardrail verdicts are the guard's, named here for its readers.
pub use crate::guard::{GuardStatus, GuardrailVerdict};
pub use arms::{Analysis, CupedReport};
pub use headline::{Headline, HeadlineComparison};
pub use table::to_table;

use crate::domain::shaped::{Backfill, ShapedPlan};
use crate::domain::totals::{ExposureSummary, PairedTotals, UserFilter, VariantTotals};
use crate::domain::{format_millis, Experiment, Metric, MetricKind};
use crate::guard::judge;
use crate::stats::{benjamini_hochberg, holm, srm, Settings};
use arms::VariantArm;

/// A share of users seen in several variants above this turns health yellow.
const MULTIPLE_EXPOSURE_SHARE_LIMIT: f64 = 0.01;

/// Why a report cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The stored definition has no variants, so there is no control to compare
    /// with: a corrupt or hand-edited row.
    #[error("experiment {0:?} has no variants; its stored definition is corrupt")]
    NoVariants(String),
}

/// Correction for testing many metrics × variants at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    Holm,
    #[serde(rename = "bh")]
    BenjaminiHochberg,
}

impl Correction {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "holm" => Some(Self::Holm),
            "bh" => Some(Self::BenjaminiHochberg),
            _ => None,
        }
    }
}

/// A metric's per-variant inputs, as the store keeps them.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricTotals {
    /// A per-event metric: its running totals.
    Running(Vec<VariantTotals>),
    /// A shaped metric (or any metric under CUPED): its paired totals.
    Paired(Analysis, Vec<PairedTotals>),
}

/// What a report is computed from.
pub struct ReportInput<'a> {
    pub experiment: &'a Experiment,
    /// The experiment's metrics in report order, each with its per-variant totals.
    pub metrics: Vec<(Metric, MetricTotals)>,
    pub exposures: ExposureSummary,
    pub correction: Option<Correction>,
    pub generated_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub experiment: String,
    pub status: &'static str,
    pub generated_at: String,
    pub health: GuardStatus,
    pub alpha: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correction: Option<Correction>,
    pub srm: SrmBlock,
    pub multiple_exposures: u64,
    /// The users counted, when not everyone (`?from=…&to=…&segment=…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterEcho>,
    pub metrics: Vec<MetricReport>,
    pub guardrails: Vec<GuardrailVerdict>,
    /// Results per value of one or two dimensions, on request
    /// (`?dimension=country` or `?dimension=country,device`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<breakdown::Breakdown>,
    /// Daily cumulative effects, on request (`?series=daily`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<series::SeriesPoint>>,
    /// The shaped metrics being rebuilt from the raw events, while they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill: Option<BackfillReport>,
}

/// A rebuild of shaped metrics in progress: their figures count only the users
/// rebuilt so far, and the guard does not act on them until it is done.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackfillReport {
    pub metrics: Vec<String>,
    pub users_done: u64,
    /// The users exposed when it began (at least those done).
    pub users_total: u64,
    pub started_at: String,
}

impl BackfillReport {
    pub fn of(backfill: &Backfill, plan: &ShapedPlan, metrics: &[MetricReport]) -> Self {
        BackfillReport {
            metrics: metrics
                .iter()
                .filter(|m| plan.covers(&m.metric))
                .map(|m| m.metric.clone())
                .collect(),
            users_done: backfill.users_done,
            users_total: backfill.users_total.max(backfill.users_done),
            started_at: format_millis(backfill.started_at),
        }
    }
}

/// The filter a report was built with, as the request gave it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterEcho {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `DIMENSION:VALUE`, one per value.
    pub segments: Vec<String>,
}

impl FilterEcho {
    pub fn of(filter: &UserFilter) -> Self {
        FilterEcho {
            from: filter.from.map(format_millis),
            to: filter.to.map(format_millis),
            segments: filter
                .segments
                .iter()
                .flat_map(|(dimension, values)| {
                    values.iter().map(move |v| format!("{dimension}:{v}"))
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SrmBlock {
    pub p_value: Option<f64>,
    pub ok: bool,
    /// Users per variant, in the experiment's variant order.
    pub users: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricReport {
    pub metric: String,
    pub kind: MetricKind,
    pub variants: Vec<VariantStats>,
    pub comparisons: Vec<ComparisonReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantStats {
    pub variant: String,
    pub users: u64,
    /// Users whose window has not closed yet, left out of the figures (shaped
    /// metrics only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_pending: Option<u64>,
    pub sum: f64,
    pub sum_squares: f64,
    pub mean: Option<f64>,
    pub stddev: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComparisonReport {
    pub variant: String,
    pub baseline: String,
    pub abs_effect: Option<f64>,
    pub abs_ci: Option<[f64; 2]>,
    pub abs_p_value: Option<f64>,
    pub rel_effect: Option<f64>,
    pub rel_ci: Option<[f64; 2]>,
    pub p_value: Option<f64>,
    /// `p_value` after the requested multiple-comparison correction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adjusted_p_value: Option<f64>,
    pub seq_rel_ci: Option<[f64; 2]>,
    pub seq_p_value: Option<f64>,
    pub chance_to_win: Option<f64>,
    pub risk: Option<f64>,
    pub risk_control: Option<f64>,
    pub credible_interval: Option<[f64; 2]>,
    pub significant: bool,
    /// Why some numbers are null (e.g. `TOO_FEW_UNITS`), if any are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// With CUPED: θ and the variance reduction (the figures above are adjusted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cuped: Option<CupedReport>,
}

/// One variant of one metric, in the experiment's variant order.
struct VariantRow {
    variant: String,
    arm: VariantArm,
    users_pending: Option<u64>,
}

/// Per-variant arms in the experiment's variant order; variants nobody saw yet have
/// zero users.
fn variant_rows(
    experiment: &Experiment,
    metric: &Metric,
    totals: &MetricTotals,
) -> Vec<VariantRow> {
    experiment
        .spec
        .variants
        .iter()
        .map(|v| match totals {
            MetricTotals::Running(totals) => {
                let found = totals.iter().find(|t| t.variant == v.key);
                let empty = VariantTotals::default();
                VariantRow {
                    variant: v.key.clone(),
                    arm: VariantArm::running(metric.kind, found.unwrap_or(&empty)),
                    users_pending: None,
                }
            }
            MetricTotals::Paired(analysis, totals) => {
                let found = totals.iter().find(|t| t.variant == v.key);
                let empty = PairedTotals::empty(&v.key);
                let found = found.unwrap_or(&empty);
                VariantRow {
                    variant: v.key.clone(),
                    arm: VariantArm::paired(*analysis, found),
                    users_pending: Some(found.users_pending),
                }
            }
        })
        .collect()
}

pub fn build(input: ReportInput<'_>) -> Result<Report, ReportError> {
    let experiment = input.experiment;
    if experiment.spec.variants.is_empty() {
        return Err(ReportError::NoVariants(experiment.key().to_owned()));
    }
    let srm = srm_block(experiment, &input.exposures);
    let mut metrics = Vec::new();
    let mut guardrails = Vec::new();
    for (metric, totals) in &input.metrics {
        let rows = variant_rows(experiment, metric, totals);
        let settings = settings(experiment, metric);
        metrics.push(metric_report(metric, &rows, &settings));
        let Some((control, treatments)) = rows.split_first() else {
            continue;
        };
        for guardrail in experiment
            .spec
            .guardrails
            .iter()
            .filter(|g| g.metric == metric.key)
        {
            for treatment in treatments {
                let arms = control.arm.guard(treatment.arm);
                guardrails.push(judge(
                    guardrail,
                    &treatment.variant,
                    arms,
                    &settings,
                    srm.ok,
                ));
            }
        }
    }
    if let Some(correction) = input.correction {
        adjust(&mut metrics, correction, experiment.spec.alpha);
    }
    let health = health(&srm, &guardrails, &input.exposures);
    Ok(Report {
        experiment: experiment.key().to_owned(),
        status: experiment.status.as_str(),
        generated_at: input.generated_at,
        health,
        alpha: experiment.spec.alpha,
        correction: input.correction,
        srm,
        multiple_exposures: input.exposures.multiple_exposures,
        filter: None,
        metrics,
        guardrails,
        breakdown: None,
        series: None,
        backfill: None,
    })
}

/// The statistical settings for one metric of an experiment.
pub fn settings(experiment: &Experiment, metric: &Metric) -> Settings {
    Settings {
        alpha: experiment.spec.alpha,
        sequential_tuning: experiment.spec.sequential_tuning,
        higher_is_better: metric.higher_is_better,
    }
}

fn srm_block(experiment: &Experiment, exposures: &ExposureSummary) -> SrmBlock {
    let variants = &experiment.spec.variants;
    let observed: Vec<u64> = variants
        .iter()
        .map(|v| {
            exposures
                .users
                .iter()
                .find(|(key, _)| *key == v.key)
                .map_or(0, |(_, n)| *n)
        })
        .collect();
    let weights: Vec<f64> = variants.iter().map(|v| v.weight).collect();
    let result = srm(&observed, &weights);
    let users = variants
        .iter()
        .zip(&observed)
        .map(|(v, n)| (v.key.clone(), serde_json::Value::from(*n)))
        .collect();
    // Without users there is nothing to mismatch: report no p-value but not a failure.
    let ok = result.ok || observed.iter().sum::<u64>() == 0;
    SrmBlock {
        p_value: result.p_value,
        ok,
        users,
    }
}

fn metric_report(metric: &Metric, rows: &[VariantRow], settings: &Settings) -> MetricReport {
    let variants = rows
        .iter()
        .map(|row| {
            let (sum, sum_squares) = row.arm.sums();
            VariantStats {
                variant: row.variant.clone(),
                users: row.arm.users(),
                users_pending: row.users_pending,
                sum,
                sum_squares,
                mean: row.arm.mean(),
                stddev: row.arm.stddev(),
            }
        })
        .collect();
    MetricReport {
        metric: metric.key.clone(),
        kind: metric.kind,
        variants,
        comparisons: comparisons(rows, settings),
    }
}

/// Each treatment against the control (the first variant).
fn comparisons(rows: &[VariantRow], settings: &Settings) -> Vec<ComparisonReport> {
    let Some((control, treatments)) = rows.split_first() else {
        return Vec::new();
    };
    treatments
        .iter()
        .map(|t| {
            let (c, cuped) = control.arm.compare(t.arm, settings);
            ComparisonReport {
                variant: t.variant.clone(),
                baseline: control.variant.clone(),
                abs_effect: c.abs_effect,
                abs_ci: c.abs_ci,
                abs_p_value: c.abs_p_value,
                rel_effect: c.rel_effect,
                rel_ci: c.rel_ci,
                p_value: c.p_value,
                adjusted_p_value: None,
                seq_rel_ci: c.seq_rel_ci,
                seq_p_value: c.seq_p_value,
                chance_to_win: c.chance_to_win,
                risk: c.risk,
                risk_control: c.risk_control,
                credible_interval: c.credible_interval,
                significant: c.significant,
                reason: c.rel_reason.or(c.abs_reason).map(|r| r.as_str()),
                cuped,
            }
        })
        .collect()
}

/// Adjusts every defined p-value across metrics × variants; significance then
/// follows the adjusted value.
fn adjust(metrics: &mut [MetricReport], correction: Correction, alpha: f64) {
    let mut slots: Vec<&mut ComparisonReport> = metrics
        .iter_mut()
        .flat_map(|m| m.comparisons.iter_mut())
        .filter(|c| c.p_value.is_some())
        .collect();
    let raw: Vec<f64> = slots.iter().filter_map(|c| c.p_value).collect();
    let adjusted = match correction {
        Correction::Holm => holm(&raw),
        Correction::BenjaminiHochberg => benjamini_hochberg(&raw),
    };
    for (slot, p) in slots.iter_mut().zip(adjusted) {
        slot.adjusted_p_value = Some(p);
        slot.significant = p < alpha;
    }
}

fn health(
    srm: &SrmBlock,
    guardrails: &[GuardrailVerdict],
    exposures: &ExposureSummary,
) -> GuardStatus {
    let worst = guardrails
        .iter()
        .map(|g| g.status)
        .max()
        .unwrap_or(GuardStatus::Green);
    let users: u64 =
        exposures.users.iter().map(|(_, n)| n).sum::<u64>() + exposures.multiple_exposures;
    let multiple_share = if users == 0 {
        0.0
    } else {
        exposures.multiple_exposures as f64 / users as f64
    };
    let data_warning = !srm.ok || multiple_share > MULTIPLE_EXPOSURE_SHARE_LIMIT;
    if data_warning {
        worst.max(GuardStatus::Yellow)
    } else {
        worst
    }
}
