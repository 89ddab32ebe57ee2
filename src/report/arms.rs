//! One variant of one metric as the tests see it: a plain arm (per-user values), a
//! CUPED arm (values and their pre-exposure covariate) or a ratio arm (numerator and
//! denominator), made from running totals or from a shaped metric's paired totals.
//! Every part of a report — variant rows, comparisons, guardrails — goes through
//! these, so the three kinds of metric share one path.

use serde::Serialize;

use crate::domain::totals::{PairedTotals, VariantTotals};
use crate::domain::MetricKind;
use crate::guard::GuardArms;
use crate::stats::{self, compare_cuped, compare_ratio, Arm, Comparison, CupedArm, MetricType};
use crate::stats::{Moments, PairedMoments, RatioArm, Settings};

/// How a shaped metric is analysed: CUPED when the experiment has a covariate, as
/// a ratio of its parts' kinds for a ratio metric (never both: gbstats has no CUPED
/// for ratios, and neither does Sluice).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Analysis {
    Plain(MetricKind),
    Cuped(MetricKind),
    Ratio(MetricKind, MetricKind),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum VariantArm {
    Plain(Arm),
    Cuped(CupedArm),
    Ratio(RatioArm),
}

/// θ and the variance reduction of a CUPED-adjusted comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CupedReport {
    pub theta: Option<f64>,
    pub variance_reduction: Option<f64>,
    /// Why the adjustment could not be made (e.g. `ZERO_COVARIATE_VARIANCE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// The statistic type of a non-ratio metric's per-user values.
fn metric_type(kind: MetricKind) -> MetricType {
    match kind {
        MetricKind::Conversion => MetricType::Proportion,
        MetricKind::Mean | MetricKind::Count | MetricKind::Ratio => MetricType::Mean,
    }
}

impl VariantArm {
    /// A per-event metric's arm from its running totals.
    pub(super) fn running(kind: MetricKind, totals: &VariantTotals) -> Self {
        let moments = match kind {
            MetricKind::Conversion => Moments::conversions(totals.users, totals.converted),
            MetricKind::Mean | MetricKind::Ratio => {
                Moments::new(totals.users, totals.value_sum, totals.value_sum_squares)
            }
            MetricKind::Count => {
                Moments::new(totals.users, totals.count_sum, totals.count_sum_squares)
            }
        };
        VariantArm::Plain(Arm::new(metric_type(kind), moments))
    }

    /// A shaped metric's arm from its paired totals.
    pub(super) fn paired(analysis: Analysis, t: &PairedTotals) -> Self {
        let moments = PairedMoments::new(
            t.users,
            t.sum_x,
            t.sum_squares_x,
            t.sum_y,
            t.sum_squares_y,
            t.sum_products,
        );
        match analysis {
            Analysis::Plain(kind) => VariantArm::Plain(Arm::new(metric_type(kind), moments.x())),
            Analysis::Cuped(kind) => VariantArm::Cuped(CupedArm::new(metric_type(kind), moments)),
            Analysis::Ratio(n, d) => {
                VariantArm::Ratio(RatioArm::new(metric_type(n), metric_type(d), moments))
            }
        }
    }

    /// The arm of the values alone (for a ratio, of its numerator).
    fn values(self) -> Arm {
        match self {
            VariantArm::Plain(arm) => arm,
            VariantArm::Cuped(arm) => Arm::new(arm.metric, arm.moments.x()),
            VariantArm::Ratio(arm) => Arm::new(arm.numerator, arm.moments.x()),
        }
    }

    pub(super) fn users(self) -> u64 {
        self.values().moments.n
    }

    /// Σx and Σx² of the values (a ratio's numerator).
    pub(super) fn sums(self) -> (f64, f64) {
        let m = self.values().moments;
        (m.sum, m.sum_squares)
    }

    /// The variant's mean: Σnumerator ÷ Σdenominator for a ratio.
    pub(super) fn mean(self) -> Option<f64> {
        match self {
            VariantArm::Ratio(arm) => arm.mean(),
            other => other.values().mean(),
        }
    }

    /// The per-user standard deviation (none for a ratio: it has no per-user value).
    pub(super) fn stddev(self) -> Option<f64> {
        match self {
            VariantArm::Ratio(_) => None,
            other => other.values().stddev(),
        }
    }

    /// The treatment against this control: every figure, adjusted for CUPED arms.
    pub(super) fn compare(
        self,
        treatment: VariantArm,
        settings: &Settings,
    ) -> (Comparison, Option<CupedReport>) {
        match (self, treatment) {
            (VariantArm::Cuped(c), VariantArm::Cuped(t)) => {
                let cuped = compare_cuped(c, t, settings);
                let report = CupedReport {
                    theta: cuped.theta,
                    variance_reduction: cuped.variance_reduction,
                    reason: cuped.reason.map(|r| r.as_str()),
                };
                (cuped.comparison, Some(report))
            }
            (VariantArm::Ratio(c), VariantArm::Ratio(t)) => (compare_ratio(c, t, settings), None),
            (c, t) => (stats::compare(c.values(), t.values(), settings), None),
        }
    }

    /// What the guard judges the treatment against this control on.
    pub(super) fn guard(self, treatment: VariantArm) -> GuardArms {
        match (self, treatment) {
            (VariantArm::Cuped(control), VariantArm::Cuped(treatment)) => {
                GuardArms::Cuped { control, treatment }
            }
            (VariantArm::Ratio(control), VariantArm::Ratio(treatment)) => {
                GuardArms::Ratio { control, treatment }
            }
            (c, t) => GuardArms::Plain {
                control: c.values(),
                treatment: t.values(),
            },
        }
    }
}
