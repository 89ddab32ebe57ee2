//! A report's headline, what a `report_ready` notification carries: the
//! experiment's health and, per treatment, the primary metric against the control.

use serde::{Deserialize, Serialize};

use super::{Report, SrmBlock};
use crate::guard::GuardStatus;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    pub health: GuardStatus,
    pub alpha: f64,
    pub srm: SrmBlock,
    /// The report's first metric: the primary one, when the experiment names it;
    /// none when the experiment measures nothing.
    pub metric: Option<String>,
    pub comparisons: Vec<HeadlineComparison>,
}

/// One treatment against the control on the headline metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadlineComparison {
    pub variant: String,
    pub baseline: String,
    pub users: u64,
    pub baseline_users: u64,
    /// The relative lift, its confidence interval and two-sided p-value.
    pub rel_effect: Option<f64>,
    pub rel_ci: Option<[f64; 2]>,
    pub p_value: Option<f64>,
    pub significant: bool,
}

impl Headline {
    pub fn of(report: &Report) -> Self {
        let primary = report.metrics.first();
        let users = |variant: &str| {
            primary
                .and_then(|m| m.variants.iter().find(|v| v.variant == variant))
                .map_or(0, |v| v.users)
        };
        let comparisons = primary
            .map(|m| m.comparisons.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|c| HeadlineComparison {
                variant: c.variant.clone(),
                baseline: c.baseline.clone(),
                users: users(&c.variant),
                baseline_users: users(&c.baseline),
                rel_effect: c.rel_effect,
                rel_ci: c.rel_ci,
                p_value: c.p_value,
                significant: c.significant,
            })
            .collect();
        Headline {
            health: report.health,
            alpha: report.alpha,
            srm: report.srm.clone(),
            metric: primary.map(|m| m.metric.clone()),
            comparisons,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::totals::{ExposureSummary, VariantTotals};
    use crate::domain::{Experiment, ExperimentSpec, Metric, MetricKind};
    use crate::report::{build, MetricTotals, ReportInput};

    fn totals(variant: &str, users: u64, converted: u64) -> VariantTotals {
        VariantTotals {
            variant: variant.into(),
            users,
            converted,
            ..VariantTotals::default()
        }
    }

    #[test]
    fn the_headline_is_the_primary_metric_per_treatment_with_the_health() {
        let spec: ExperimentSpec = serde_json::from_value(serde_json::json!({
            "key": "pricing-q4", "primary_metric": "purchase",
            "variants": [{"key": "control", "weight": 0.5}, {"key": "premium", "weight": 0.5}]
        }))
        .unwrap();
        let experiment = Experiment::new_draft(spec, 0);
        let metric = |key: &str| Metric::of_event(key, MetricKind::Conversion, key);
        let report = build(ReportInput {
            experiment: &experiment,
            metrics: vec![
                (
                    metric("purchase"),
                    MetricTotals::Running(vec![
                        totals("control", 1000, 100),
                        totals("premium", 1000, 150),
                    ]),
                ),
                (
                    metric("refund"),
                    MetricTotals::Running(vec![totals("control", 1000, 10)]),
                ),
            ],
            exposures: ExposureSummary {
                users: vec![("control".into(), 1000), ("premium".into(), 1000)],
                multiple_exposures: 0,
            },
            correction: None,
            generated_at: String::new(),
        })
        .unwrap();
        let headline = Headline::of(&report);
        assert_eq!(headline.metric.as_deref(), Some("purchase"));
        assert_eq!(headline.health, report.health);
        let [premium] = headline.comparisons.as_slice() else {
            panic!("one treatment: {headline:?}");
        };
        let expected = &report.metrics[0].comparisons[0];
        assert_eq!(
            (premium.variant.as_str(), premium.baseline.as_str()),
            ("premium", "control")
        );
        assert_eq!((premium.users, premium.baseline_users), (1000, 1000));
        assert_eq!(premium.rel_effect, expected.rel_effect);
        assert_eq!(premium.rel_ci, expected.rel_ci);
        assert_eq!(premium.p_value, expected.p_value);
        assert!(premium.significant);
    }
}
