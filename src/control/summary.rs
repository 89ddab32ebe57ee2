//! Reports of many experiments at once, for the pages that list them: the running
//! totals of every experiment asked for are read together, in a fixed number of
//! statements, and each report is then built in memory by [`crate::report`], the
//! code that builds a single experiment's report.

use crate::domain::shaped::ShapedPlan;
use crate::domain::totals::UserFilter;
use crate::domain::{format_millis, now_millis, Experiment, Metric};
use crate::report::{self, MetricTotals, Report, ReportInput};
use crate::store::Store;

use super::{report_metrics, shaped_analysis, ControlError};

/// An experiment with its report (without breakdown, series or correction).
#[derive(Debug)]
pub struct Summary {
    pub experiment: Experiment,
    pub report: Report,
}

/// The report of each experiment, in the order given: the metrics and the
/// running totals are read once for all of them.
pub(super) async fn summarize(
    store: &dyn Store,
    experiments: Vec<Experiment>,
    filter: &UserFilter,
) -> Result<Vec<Summary>, ControlError> {
    let defined = store.list_metrics().await?;
    let measured: Vec<Vec<Metric>> = experiments
        .iter()
        .map(|experiment| report_metrics(experiment, &defined))
        .collect();
    let keys: Vec<&str> = experiments.iter().map(Experiment::key).collect();
    let mut events: Vec<&str> = measured
        .iter()
        .flatten()
        .map(|metric| metric.event.as_str())
        .collect();
    events.sort_unstable();
    events.dedup();
    let totals = store.running_totals(&keys, &events, filter).await?;
    let generated_at = format_millis(now_millis());
    let mut summaries = Vec::with_capacity(experiments.len());
    for ((experiment, metrics), totals) in experiments.into_iter().zip(measured).zip(totals) {
        let plan = ShapedPlan::of(&experiment.spec, &defined);
        let metrics = metrics
            .into_iter()
            .map(|metric| {
                let totals = match shaped_analysis(&experiment, plan.as_ref(), &metric, &defined) {
                    Some(analysis) => MetricTotals::Paired(analysis, totals.of_shaped(&metric.key)),
                    None => MetricTotals::Running(totals.of_event(&metric.event)),
                };
                (metric, totals)
            })
            .collect();
        let mut report = report::build(ReportInput {
            experiment: &experiment,
            metrics,
            exposures: totals.exposures,
            correction: None,
            generated_at: generated_at.clone(),
        })?;
        report.filter = (!filter.is_everyone()).then(|| report::FilterEcho::of(filter));
        summaries.push(Summary { experiment, report });
    }
    Ok(summaries)
}
