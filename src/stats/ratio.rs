//! Ratio metrics (revenue per order, ROI): per arm the ratio `Σx/Σy` of two metrics
//! summed over the same users, with the delta-method variance that accounts for the
//! numerator–denominator covariance (gbstats 0.8.0 `RatioStatistic`). Once each arm is
//! reduced to its ratio and that variance, [`compare_ratio`] runs the same tests as
//! [`compare`](super::compare).

use super::frequentist::{estimate_from, require_units, Estimate};
use super::moments::Summary;
use super::sequential::one_sided_test;
use super::{compare_estimates, Comparison, Difference, MetricType, PairedMoments};
use super::{OneSided, Reason, Settings, Side};

/// One arm of a ratio metric: the numerator `x` and denominator `y` of each user,
/// each of its own metric type (a ratio is made of two existing metrics).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatioArm {
    /// The numerator metric's type, which decides its variance.
    pub numerator: MetricType,
    /// The denominator metric's type.
    pub denominator: MetricType,
    /// Per-user numerator `x` and denominator `y`, with `Σxy`.
    pub moments: PairedMoments,
}

impl RatioArm {
    /// A ratio arm of these metric types with these moments.
    pub fn new(numerator: MetricType, denominator: MetricType, moments: PairedMoments) -> Self {
        Self {
            numerator,
            denominator,
            moments,
        }
    }

    /// The ratio `Σx / Σy` (a report's variant `mean`); `None` when `Σy == 0`.
    pub fn mean(&self) -> Option<f64> {
        let m = self.moments;
        (m.sum_y != 0.0).then(|| m.sum_x / m.sum_y)
    }

    /// The arm as the tests see it. [`Reason::ZeroDenominator`] when `Σy == 0`, where
    /// gbstats makes the mean and variance 0 and then refuses the comparison.
    ///
    /// The variance of one unit is that of `x̄/ȳ` by the delta method (first-order
    /// Taylor expansion; Deng, Knoblich and Lu, "Applying the Delta Method in Metric
    /// Analytics", KDD 2018, §2), times n, as gbstats `RatioStatistic.variance`:
    /// `σx²/μy² − 2·cov(x, y)·μx/μy³ + μx²·σy²/μy⁴`, each σ² by its metric type and the
    /// covariance from `Σxy` with n − 1.
    fn summary(&self) -> Result<Summary, Reason> {
        let ratio = self.mean().ok_or(Reason::ZeroDenominator)?;
        let d = self.moments.describe(self.numerator, self.denominator)?;
        Ok(Summary {
            n: self.moments.n,
            mean: ratio,
            unadjusted_mean: ratio,
            variance: d.variance_x / d.mean_y.powi(2)
                - 2.0 * d.covariance * d.mean_x / d.mean_y.powi(3)
                + d.mean_x.powi(2) * d.variance_y / d.mean_y.powi(4),
        })
    }
}

/// Reasons, in this order: [`Reason::MixedMetricTypes`] (numerator or denominator
/// types differ between the arms), [`Reason::InvalidInput`], [`Reason::TooFewUnits`],
/// [`Reason::ZeroDenominator`], then those of `estimate_from`.
fn estimate(
    control: RatioArm,
    treatment: RatioArm,
    difference: Difference,
) -> Result<Estimate, Reason> {
    if (control.numerator, control.denominator) != (treatment.numerator, treatment.denominator) {
        return Err(Reason::MixedMetricTypes);
    }
    for arm in [control, treatment] {
        arm.moments.validate(arm.numerator, arm.denominator)?;
    }
    require_units(control.moments.n, treatment.moments.n)?;
    estimate_from(control.summary()?, treatment.summary()?, difference)
}

/// Compares `treatment` to `control` on a ratio metric: the effects are those of the
/// ratios `Σx/Σy`, everything else as [`compare`](super::compare).
pub fn compare_ratio(control: RatioArm, treatment: RatioArm, settings: &Settings) -> Comparison {
    compare_estimates(
        |difference| estimate(control, treatment, difference),
        settings,
    )
}

/// The guard's always-valid one-sided test ([`sequential_one_sided_test`]) on the
/// effect on the ratios.
///
/// [`sequential_one_sided_test`]: super::sequential_one_sided_test
pub fn sequential_one_sided_ratio_test(
    control: RatioArm,
    treatment: RatioArm,
    difference: Difference,
    side: Side,
    settings: &Settings,
) -> OneSided {
    one_sided_test(|| estimate(control, treatment, difference), side, settings)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{
        assert_all_finite, check_comparisons, close, metric_type, paired,
    };
    use super::super::{compare, Arm, Moments};
    use super::*;

    fn arm(case: &serde_json::Value, key: &str) -> RatioArm {
        RatioArm::new(
            metric_type(&case["numerator_type"]),
            metric_type(&case["denominator_type"]),
            paired(case, key),
        )
    }

    #[test]
    fn compare_ratio_matches_gbstats() {
        let checked = check_comparisons("ratio.json", |_, case, settings| {
            compare_ratio(arm(case, "control"), arm(case, "treatment"), settings)
        });
        assert!(checked >= 31, "only {checked} ratio comparisons checked");
    }

    /// With y ≡ 1 the ratio is the mean of x and the delta method gives x's variance.
    #[test]
    fn a_denominator_of_one_is_a_mean_metric() {
        let pairs = |xs: &[f64]| xs.iter().map(|&x| (x, 1.0)).collect::<Vec<_>>();
        let (xc, xt) = ([1.0, 4.0, 0.0, 2.5, 7.0], [3.0, 0.5, 6.0, 2.0, 8.0, 1.0]);
        let m = MetricType::Mean;
        let ratio = compare_ratio(
            RatioArm::new(m, m, PairedMoments::from_pairs(&pairs(&xc))),
            RatioArm::new(m, m, PairedMoments::from_pairs(&pairs(&xt))),
            &Settings::default(),
        );
        let mean = compare(
            Arm::new(m, Moments::from_values(&xc)),
            Arm::new(m, Moments::from_values(&xt)),
            &Settings::default(),
        );
        for (got, want) in [
            (ratio.abs_p_value, mean.abs_p_value),
            (ratio.p_value, mean.p_value),
            (ratio.seq_p_value, mean.seq_p_value),
            (ratio.chance_to_win, mean.chance_to_win),
        ] {
            assert!(close(got.unwrap(), want.unwrap()), "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn a_zero_denominator_gives_a_reason() {
        let m = MetricType::Mean;
        let some = RatioArm::new(m, m, PairedMoments::from_pairs(&[(1.0, 2.0), (3.0, 1.0)]));
        let none = RatioArm::new(m, m, PairedMoments::from_pairs(&[(1.0, 0.0), (0.0, 0.0)]));
        assert_eq!(none.mean(), None);
        for (c, t) in [(none, some), (some, none)] {
            let got = compare_ratio(c, t, &Settings::default());
            assert_eq!(got.abs_reason, Some(Reason::ZeroDenominator));
            assert_eq!(got.rel_reason, Some(Reason::ZeroDenominator));
            assert_eq!(got.p_value, None);
        }
    }

    #[test]
    fn mixed_component_types_are_refused() {
        let (p, m) = (MetricType::Proportion, MetricType::Mean);
        let moments = PairedMoments::from_pairs(&[(1.0, 2.0), (0.0, 1.0), (1.0, 3.0)]);
        let got = compare_ratio(
            RatioArm::new(p, m, moments),
            RatioArm::new(m, m, moments),
            &Settings::default(),
        );
        assert_eq!(got.rel_reason, Some(Reason::MixedMetricTypes));
    }

    #[test]
    fn extreme_inputs_never_give_nan() {
        let m = MetricType::Mean;
        let shapes = [
            PairedMoments::new(2, 1e300, 1e300, 1e-300, 1e-300, 1e300),
            PairedMoments::new(u64::MAX, 1.0, 1.0, 1.0, 1.0, 1.0),
            PairedMoments::new(3, 1.0, 1.0, 2.0, 2.0, f64::INFINITY),
            PairedMoments::new(5, 1e-300, 1e-300, -1e-300, 1e-300, 0.0),
            PairedMoments::new(1_000_000_000, 5e8, 1e300, 1e9, 1e9, -1e300),
        ];
        for a in shapes {
            for b in shapes {
                let got = compare_ratio(
                    RatioArm::new(m, m, a),
                    RatioArm::new(m, m, b),
                    &Settings::default(),
                );
                assert_all_finite(&format!("{a:?} {b:?}"), &got);
            }
        }
    }
}
