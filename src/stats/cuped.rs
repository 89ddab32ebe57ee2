//! CUPED, regression adjustment by a pre-exposure covariate (Deng, Xu, Kohavi and
//! Walker, "Improving the Sensitivity of Online Controlled Experiments by Utilizing
//! Pre-Experiment Data", WSDM 2013): each arm's mean `x̄` becomes `x̄ − θ·ȳ`, with `y`
//! the same metric before the user's first exposure and θ the pooled regression slope
//! of `x` on `y`. The covariate is independent of the assignment, so the effect keeps
//! its expectation and loses the part of its variance that `y` explains.
//!
//! As gbstats 0.8.0: θ from `compute_theta`, the adjusted arms from
//! `RegressionAdjustedStatistic`, and the tests exactly as for unadjusted metrics with
//! relative effects over the unadjusted control mean. gbstats 0.8.0 has no CUPED for
//! ratio metrics (no `RegressionAdjustedRatioStatistic`), and neither does Sluice.

use super::frequentist::{estimate_from, require_units, Estimate};
use super::moments::Summary;
use super::sequential::one_sided_test;
use super::{compare_estimates, finite, Arm, Comparison, Difference, MetricType};
use super::{OneSided, PairedMoments, Reason, Settings, Side};

/// One arm of a CUPED-adjusted metric: each user's value `x` after exposure and
/// covariate `y` (the same metric over the lookback window before it), with `Σxy`.
/// Both are of the arm's one metric type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CupedArm {
    /// The metric's type, which decides the variances of `x` and of `y`.
    pub metric: MetricType,
    /// Per-user metric `x` and covariate `y`.
    pub moments: PairedMoments,
}

impl CupedArm {
    /// A CUPED arm of `metric` with these moments.
    pub fn new(metric: MetricType, moments: PairedMoments) -> Self {
        Self { metric, moments }
    }

    /// The arm adjusted by `theta`, as gbstats `RegressionAdjustedStatistic`: mean
    /// `x̄ − θ·ȳ`, unadjusted mean `x̄`, and a unit's variance
    /// `Var(x − θy) = σx² + θ²·σy² − 2θ·cov(x, y)`.
    fn summary(&self, theta: f64) -> Result<Summary, Reason> {
        let d = self.moments.describe(self.metric, self.metric)?;
        Ok(Summary {
            n: self.moments.n,
            mean: d.mean_x - theta * d.mean_y,
            unadjusted_mean: d.mean_x,
            variance: d.variance_x + theta.powi(2) * d.variance_y - 2.0 * theta * d.covariance,
        })
    }
}

/// A CUPED-adjusted comparison and its adjustment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CupedComparison {
    /// The headline figures, adjusted by [`theta`](Self::theta). Where θ is undefined
    /// they are the unadjusted ones, as gbstats does.
    pub comparison: Comparison,
    /// θ = cov(x, y) / Var(y) over both arms pooled (gbstats `compute_theta`).
    pub theta: Option<f64>,
    /// 1 − the adjusted variance of the relative effect over the unadjusted one
    /// (API.md, CUPED; gbstats 0.8.0 reports no such figure). Negative when the
    /// adjustment made things worse, which a pooled θ can do for one comparison.
    pub variance_reduction: Option<f64>,
    /// Why `theta` or `variance_reduction` is `None`, if one is.
    pub reason: Option<Reason>,
}

/// θ for this pair of arms, as gbstats `compute_theta`: both arms' moments pooled
/// ([`PairedMoments`] `+`, gbstats `create_joint_statistic`), then
/// `cov(x, y) / Var(y)`, Var(y) by the metric type (so `p(1 − p)` for a proportion)
/// and the covariance with n − 1: for a sample-mean metric the slope of the pooled
/// least-squares fit of x on y, the θ that minimises `Var(x − θy)` (Deng et al. 2013,
/// control variates).
///
/// Reasons: those of [`check`], [`Reason::ZeroNegativeVariance`] when x does not
/// vary over both arms, [`Reason::ZeroCovariateVariance`] when y does not (gbstats
/// returns θ = 0 for both).
fn theta(control: CupedArm, treatment: CupedArm) -> Result<f64, Reason> {
    check(control, treatment)?;
    let joint = control.moments + treatment.moments;
    let (x, y) = (
        Arm::new(control.metric, joint.x()),
        Arm::new(control.metric, joint.y()),
    );
    let var_x = x.variance().ok_or(Reason::TooFewUnits)?;
    let var_y = y.variance().ok_or(Reason::TooFewUnits)?;
    if var_x <= 0.0 {
        return Err(Reason::ZeroNegativeVariance);
    }
    if var_y <= 0.0 {
        return Err(Reason::ZeroCovariateVariance);
    }
    finite(joint.covariance().ok_or(Reason::TooFewUnits)? / var_y)
}

/// [`Reason::MixedMetricTypes`], then [`Reason::InvalidInput`] for impossible moments
/// or more units than a `u64` counts.
fn check(control: CupedArm, treatment: CupedArm) -> Result<(), Reason> {
    if control.metric != treatment.metric {
        return Err(Reason::MixedMetricTypes);
    }
    for arm in [control, treatment] {
        arm.moments.validate(arm.metric, arm.metric)?;
    }
    match control.moments.n.checked_add(treatment.moments.n) {
        Some(_) => Ok(()),
        None => Err(Reason::InvalidInput),
    }
}

/// The effect with both arms adjusted by `theta` (0: unadjusted). Reasons: those of
/// [`check`], [`Reason::TooFewUnits`], then those of `estimate_from`.
fn estimate(
    control: CupedArm,
    treatment: CupedArm,
    theta: f64,
    difference: Difference,
) -> Result<Estimate, Reason> {
    check(control, treatment)?;
    require_units(control.moments.n, treatment.moments.n)?;
    estimate_from(
        control.summary(theta)?,
        treatment.summary(theta)?,
        difference,
    )
}

/// Compares `treatment` to `control` with CUPED: θ from these two arms (API.md: θ is
/// computed per comparison), every figure of [`compare`](super::compare) on the
/// adjusted arms, and the variance reduction.
///
/// Where θ is undefined (say, all new users, whose covariate is all 0), gbstats
/// analyses the metric unadjusted ("revert to non-RA under the hood", `BaseABTest`),
/// which is θ = 0; so does this, with `theta` and `variance_reduction` `None` and the
/// [`CupedComparison::reason`] saying why.
pub fn compare_cuped(
    control: CupedArm,
    treatment: CupedArm,
    settings: &Settings,
) -> CupedComparison {
    let theta = theta(control, treatment);
    let applied = theta.unwrap_or(0.0);
    let comparison = compare_estimates(
        |difference| estimate(control, treatment, applied, difference),
        settings,
    );
    let variance_reduction = theta.and_then(|theta| {
        let adjusted = estimate(control, treatment, theta, Difference::Relative)?;
        let unadjusted = estimate(control, treatment, 0.0, Difference::Relative)?;
        finite(1.0 - adjusted.variance / unadjusted.variance)
    });
    CupedComparison {
        comparison,
        theta: theta.ok(),
        variance_reduction: variance_reduction.ok(),
        reason: variance_reduction.err(),
    }
}

/// The guard's always-valid one-sided test ([`sequential_one_sided_test`]) on the
/// CUPED-adjusted effect, with θ from these two arms as in [`compare_cuped`] (θ = 0,
/// unadjusted, where it is undefined).
///
/// [`sequential_one_sided_test`]: super::sequential_one_sided_test
pub fn sequential_one_sided_cuped_test(
    control: CupedArm,
    treatment: CupedArm,
    difference: Difference,
    side: Side,
    settings: &Settings,
) -> OneSided {
    let theta = theta(control, treatment).unwrap_or(0.0);
    one_sided_test(
        || estimate(control, treatment, theta, difference),
        side,
        settings,
    )
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{assert_all_finite, assert_close, check_comparisons};
    use super::super::testutil::{metric_type, paired};
    use super::super::{compare, Moments};
    use super::*;

    fn arm(case: &serde_json::Value, key: &str) -> CupedArm {
        CupedArm::new(metric_type(&case["metric_type"]), paired(case, key))
    }

    #[test]
    fn compare_cuped_matches_gbstats() {
        let checked = check_comparisons("cuped.json", |label, case, settings| {
            let got = compare_cuped(arm(case, "control"), arm(case, "treatment"), settings);
            let want = &case["want"];
            assert_close(label, "theta", got.theta, &want["theta"]);
            assert_close(
                label,
                "variance_reduction",
                got.variance_reduction,
                &want["variance_reduction"],
            );
            assert_eq!(
                got.reason.map(|r| r.as_str()),
                want["cuped_reason"].as_str(),
                "{label} cuped_reason"
            );
            got.comparison
        });
        assert!(checked >= 35, "only {checked} CUPED comparisons checked");
    }

    #[test]
    fn an_all_zero_covariate_leaves_the_metric_unadjusted() {
        let xs = [[0.0, 3.0, 1.0, 0.0, 9.5], [2.0, 0.0, 4.0, 1.0, 0.0]];
        let [c, t] = xs.map(|x| {
            let pairs: Vec<_> = x.iter().map(|&v| (v, 0.0)).collect();
            CupedArm::new(MetricType::Mean, PairedMoments::from_pairs(&pairs))
        });
        let got = compare_cuped(c, t, &Settings::default());
        assert_eq!(got.theta, None);
        assert_eq!(got.variance_reduction, None);
        assert_eq!(got.reason, Some(Reason::ZeroCovariateVariance));
        let [c, t] = xs.map(|x| Arm::new(MetricType::Mean, Moments::from_values(&x)));
        assert_eq!(got.comparison, compare(c, t, &Settings::default()));
    }

    #[test]
    fn a_single_user_arm_gives_a_reason() {
        let m = MetricType::Mean;
        let one = CupedArm::new(m, PairedMoments::from_pairs(&[(2.0, 1.0)]));
        let more = CupedArm::new(m, PairedMoments::from_pairs(&[(1.0, 1.0), (4.0, 3.0)]));
        let got = compare_cuped(one, more, &Settings::default());
        assert_eq!(got.comparison.rel_reason, Some(Reason::TooFewUnits));
        assert_eq!(got.comparison.abs_reason, Some(Reason::TooFewUnits));
        assert_eq!(got.reason, Some(Reason::TooFewUnits));
        assert!(got.theta.is_some(), "θ pools both arms: 3 users are enough");
    }

    #[test]
    fn extreme_inputs_never_give_nan() {
        let shapes = [
            PairedMoments::new(2, 1e300, 1e300, 1e-300, 1e-300, 1e300),
            PairedMoments::new(u64::MAX, 1.0, 1.0, 1.0, 1.0, 1.0),
            PairedMoments::new(3, 1.0, 1.0, 2.0, f64::NAN, 1.0),
            PairedMoments::new(5, 1e-300, 1e-300, -1e-300, 1e-300, 0.0),
            PairedMoments::new(1_000_000_000, 5e8, 1e300, 1e9, 1e300, -1e300),
        ];
        for m in [MetricType::Mean, MetricType::Proportion] {
            for a in shapes {
                for b in shapes {
                    let got = compare_cuped(
                        CupedArm::new(m, a),
                        CupedArm::new(m, b),
                        &Settings::default(),
                    );
                    let label = format!("{m:?} {a:?} {b:?}");
                    assert_all_finite(&label, &got.comparison);
                    let figures = [got.theta, got.variance_reduction];
                    assert!(figures.iter().flatten().all(|x| x.is_finite()), "{label}");
                }
            }
        }
    }
}
