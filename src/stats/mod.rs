//! Statistics of experiments: pure functions on per-arm sufficient statistics
//! ([`Moments`]: n, Σx, Σx²; [`PairedMoments`]: the same for per-user pairs plus Σxy).
//! No I/O, no async, nothing from the rest of the crate.
//!
//! What is here, each in its own file:
//! - `moments`: [`Moments`], [`PairedMoments`], [`MetricType`], [`Arm`] — the inputs
//!   and their variance — and the summary of an arm (n, mean, unadjusted mean, a
//!   unit's variance) that every test below is computed from;
//! - `frequentist`: Welch t-tests on the absolute and the relative (delta-method)
//!   effect, two-sided and one-sided ([`one_sided_t_test`]);
//! - `sequential`: always-valid tests from asymptotic confidence sequences
//!   (Waudby-Smith et al.), two-sided and one-sided ([`sequential_one_sided_test`]);
//! - `bayesian`: chance to win, risk and credible interval (flat Gaussian prior);
//! - [`compare`] (this file): all of the above for one variant against the control, as
//!   a report needs it ([`Comparison`]);
//! - `ratio`: [`RatioArm`] and [`compare_ratio`] — ratio metrics Σx/Σy with the
//!   delta-method variance (gbstats `RatioStatistic`);
//! - `cuped`: [`CupedArm`] and [`compare_cuped`] — regression adjustment by a
//!   pre-exposure covariate with θ pooled over the two arms (gbstats
//!   `RegressionAdjustedStatistic`, `compute_theta`), giving a [`CupedComparison`] with
//!   θ and the variance reduction;
//! - `srm`: sample-ratio mismatch, chi-square goodness of fit ([`srm`]);
//! - `correction`: [`holm`] and [`benjamini_hochberg`] adjusted p-values;
//! - `power`: [`sample_size_per_variant`], [`minimum_detectable_effect`], [`power`].
//!
//! Ratio and CUPED arms differ from plain ones only in how an arm is summarised; the
//! tests and the [`Comparison`] they fill are the same code for all three. Caps are
//! not here: a capped metric caps each user's value before the sums are taken, and is
//! then an ordinary [`Arm`].
//!
//! The numbers follow gbstats 0.8.0 (GrowthBook's engine), scipy and statsmodels; the
//! tests compare them, within 1e-6 relative, to fixtures in `tests/fixtures/stats/`
//! made by `scripts/stats/generate_fixtures.py` (versions and the command to
//! regenerate them are in each file's header).
//!
//! Nothing here panics or returns NaN: a quantity that cannot be computed is `None`,
//! with a [`Reason`] saying why.
//!
//! ```
//! use sluice::stats::{compare, Arm, MetricType, Moments, Settings};
//!
//! let control = Arm::new(MetricType::Proportion, Moments::conversions(5012, 498));
//! let premium = Arm::new(MetricType::Proportion, Moments::conversions(4988, 476));
//! let c = compare(control, premium, &Settings::default());
//! assert!(c.p_value.unwrap() > 0.05 && !c.significant);
//! ```
//!
//! Revenue per order, with CUPED on revenue per user (each user's `(x, y)` pair: for
//! the ratio numerator and denominator, for CUPED the metric and its pre-exposure
//! value):
//!
//! ```
//! use sluice::stats::{compare_cuped, compare_ratio, CupedArm, RatioArm};
//! use sluice::stats::{MetricType::Mean, PairedMoments, Settings};
//!
//! let per_order =
//!     |pairs: &[(f64, f64)]| RatioArm::new(Mean, Mean, PairedMoments::from_pairs(pairs));
//! let control = per_order(&[(30.0, 1.0), (0.0, 0.0), (95.0, 2.0), (12.0, 1.0)]);
//! let premium = per_order(&[(41.0, 1.0), (70.0, 2.0), (0.0, 0.0), (55.0, 1.0)]);
//! assert_eq!(control.mean(), Some(137.0 / 4.0));
//! assert!(compare_ratio(control, premium, &Settings::default()).p_value.is_some());
//!
//! let cuped =
//!     |pairs: &[(f64, f64)]| CupedArm::new(Mean, PairedMoments::from_pairs(pairs));
//! let control = cuped(&[(30.0, 25.0), (0.0, 2.0), (95.0, 80.0), (12.0, 20.0)]);
//! let premium = cuped(&[(41.0, 30.0), (70.0, 61.0), (0.0, 5.0), (55.0, 40.0)]);
//! let c = compare_cuped(control, premium, &Settings::default());
//! assert!(c.theta.is_some() && c.variance_reduction.unwrap() > 0.0);
//! ```

mod bayesian;
mod correction;
mod cuped;
mod dist;
mod frequentist;
mod moments;
mod power;
mod ratio;
mod sequential;
mod srm;
#[cfg(test)]
mod testutil;

pub use correction::{benjamini_hochberg, holm};
pub use cuped::{compare_cuped, sequential_one_sided_cuped_test, CupedArm, CupedComparison};
pub use frequentist::one_sided_t_test;
pub use moments::{Arm, MetricType, Moments, PairedMoments};
pub use power::{minimum_detectable_effect, power, sample_size_per_variant, Baseline};
pub use ratio::{compare_ratio, sequential_one_sided_ratio_test, RatioArm};
pub use sequential::sequential_one_sided_test;
pub use srm::{srm, SrmResult, SRM_THRESHOLD};

/// Why a statistic could not be computed. [`Reason::as_str`] gives a stable code for
/// reports and logs (gbstats' codes from `gbstats/messages.py` where one exists).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Reason {
    /// An arm has fewer than 2 units: no sample variance, no Welch degrees of freedom.
    #[error("an arm has fewer than 2 units")]
    TooFewUnits,
    /// An arm's variance is zero (e.g. 0% or 100% conversions, or constant values).
    #[error("an arm has zero variance")]
    ZeroNegativeVariance,
    /// The control's mean is 0, so a relative effect is undefined.
    #[error("the control mean is 0, so the relative effect is undefined")]
    ZeroNegativeBaseline,
    /// A ratio metric's denominator sums to 0 in an arm, so its ratio is undefined.
    #[error("an arm's ratio denominator sums to 0")]
    ZeroDenominator,
    /// The CUPED covariate does not vary over both arms (e.g. only new users, whose
    /// pre-exposure value is 0), so θ is undefined and the metric is left unadjusted.
    #[error("the covariate does not vary, so CUPED cannot adjust")]
    ZeroCovariateVariance,
    /// Control and treatment moments are of different metric types.
    #[error("control and treatment have different metric types")]
    MixedMetricTypes,
    /// The moments are impossible: non-finite sums, Σx² < 0, conversions outside
    /// [0, n], more units than a `u64` counts, or (SRM) counts and weights that do
    /// not match.
    #[error("the input statistics are invalid")]
    InvalidInput,
    /// A setting is out of range: α not in (0, 1), N* ≤ 0, power not in (α, 1), fewer
    /// than 2 variants, a minimum detectable effect ≤ 0, a sample size ≤ 0.
    #[error("a setting is out of range")]
    InvalidSettings,
    /// A computation overflowed or lost all precision (a result was not finite).
    #[error("a result was not finite")]
    NumericalFailure,
}

impl Reason {
    /// The stable machine-readable code.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::TooFewUnits => "TOO_FEW_UNITS",
            Reason::ZeroNegativeVariance => "ZERO_NEGATIVE_VARIANCE",
            Reason::ZeroNegativeBaseline => "ZERO_NEGATIVE_BASELINE_VARIATION",
            Reason::ZeroDenominator => "ZERO_DENOMINATOR",
            Reason::ZeroCovariateVariance => "ZERO_COVARIATE_VARIANCE",
            Reason::MixedMetricTypes => "MIXED_METRIC_TYPES",
            Reason::InvalidInput => "INVALID_INPUT",
            Reason::InvalidSettings => "INVALID_SETTINGS",
            Reason::NumericalFailure => "NUMERICAL_FAILURE",
        }
    }
}

/// Turns a non-finite intermediate result into [`Reason::NumericalFailure`].
pub(crate) fn finite(x: f64) -> Result<f64, Reason> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(Reason::NumericalFailure)
    }
}

/// `0 < x < 1` (false for NaN).
pub(crate) fn in_open_unit(x: f64) -> bool {
    x > 0.0 && x < 1.0
}

/// `0 < x < ∞` (false for NaN).
pub(crate) fn positive(x: f64) -> bool {
    x > 0.0 && x.is_finite()
}

/// How a comparison is analysed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Significance level of tests and 1 − coverage of intervals; default 0.05.
    pub alpha: f64,
    /// N*, the total sample size (both arms) at which the sequential intervals are
    /// tightest; default 5000, as gbstats.
    pub sequential_tuning: f64,
    /// Whether a larger metric is better; decides which side chance to win and risk
    /// count (gbstats' `inverse` is `!higher_is_better`). Default true.
    pub higher_is_better: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            sequential_tuning: 5000.0,
            higher_is_better: true,
        }
    }
}

impl Settings {
    fn validate(&self) -> Result<(), Reason> {
        if in_open_unit(self.alpha) && positive(self.sequential_tuning) {
            Ok(())
        } else {
            Err(Reason::InvalidSettings)
        }
    }
}

/// Which effect a test is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Difference {
    /// μ_t − μ_c.
    Absolute,
    /// (μ_t − μ_c) / μ_c, with the delta-method variance.
    Relative,
}

/// The alternative of a one-sided test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// H₁: the treatment's effect is below 0 ("treatment is worse" for a metric where
    /// higher is better).
    TreatmentLesser,
    /// H₁: the treatment's effect is above 0.
    TreatmentGreater,
}

/// Result of a one-sided test.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OneSided {
    /// The effect estimate (absolute or relative, as asked).
    pub effect: Option<f64>,
    /// The finite end of the one-sided 1 − α interval: the upper end for
    /// [`Side::TreatmentLesser`] (interval (−∞, bound]), the lower end for
    /// [`Side::TreatmentGreater`] (interval [bound, ∞)).
    pub bound: Option<f64>,
    /// p-value of H₀ (effect = 0) against the side's alternative.
    pub p_value: Option<f64>,
    /// Why the numbers are `None`, if they are.
    pub reason: Option<Reason>,
}

impl OneSided {
    fn from_result(r: Result<(f64, f64, f64), Reason>) -> Self {
        match r {
            Ok((effect, bound, p_value)) => Self {
                effect: Some(effect),
                bound: Some(bound),
                p_value: Some(p_value),
                reason: None,
            },
            Err(reason) => Self {
                reason: Some(reason),
                ..Self::default()
            },
        }
    }
}

/// One variant against the control for one metric: everything a report row needs.
/// Field names follow the report contract (API.md, Reports).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Comparison {
    /// μ_t − μ_c.
    pub abs_effect: Option<f64>,
    /// Two-sided 1 − α Welch interval of the absolute effect.
    pub abs_ci: Option<[f64; 2]>,
    /// Two-sided Welch p-value of the absolute effect.
    pub abs_p_value: Option<f64>,
    /// (μ_t − μ_c) / μ_c.
    pub rel_effect: Option<f64>,
    /// Two-sided 1 − α Welch interval of the relative effect (delta method).
    pub rel_ci: Option<[f64; 2]>,
    /// Two-sided Welch p-value of the relative effect (gbstats `TwoSidedTTest`).
    pub p_value: Option<f64>,
    /// Always-valid 1 − α confidence-sequence interval of the relative effect.
    pub seq_rel_ci: Option<[f64; 2]>,
    /// Always-valid p-value of the relative effect.
    pub seq_p_value: Option<f64>,
    /// Posterior probability that the treatment is better (flat prior).
    pub chance_to_win: Option<f64>,
    /// Expected relative loss of choosing the treatment.
    pub risk: Option<f64>,
    /// Expected relative loss of keeping the control.
    pub risk_control: Option<f64>,
    /// Posterior 1 − α interval of the relative effect.
    pub credible_interval: Option<[f64; 2]>,
    /// `p_value < alpha` (equivalently, `rel_ci` excludes 0); false when undefined.
    pub significant: bool,
    /// Why the absolute numbers are `None`, if they are.
    pub abs_reason: Option<Reason>,
    /// Why the relative numbers (frequentist, sequential and Bayesian) are `None`.
    pub rel_reason: Option<Reason>,
}

/// Compares `treatment` to `control` on one metric.
///
/// Absolute and relative numbers fail independently: with a control mean of 0 the
/// absolute effect may still be defined. See [`Reason`] for what makes them `None`;
/// the checks run in the order mixed types, invalid input or settings, too few units,
/// zero baseline (relative only), zero variance.
pub fn compare(control: Arm, treatment: Arm, settings: &Settings) -> Comparison {
    compare_estimates(
        |difference| frequentist::estimate(control, treatment, difference),
        settings,
    )
}

/// Every figure of a [`Comparison`] from `estimate`, which gives the effect of either
/// [`Difference`] for one kind of metric ([`compare`], [`compare_ratio`],
/// [`compare_cuped`]): the tests only ever see an [`Estimate`](frequentist::Estimate).
fn compare_estimates(
    estimate: impl Fn(Difference) -> Result<frequentist::Estimate, Reason>,
    settings: &Settings,
) -> Comparison {
    let mut out = Comparison::default();
    let absolute = settings
        .validate()
        .and_then(|()| estimate(Difference::Absolute))
        .and_then(|est| frequentist::two_sided(est, settings.alpha).map(|t| (est, t)));
    match absolute {
        Ok((est, t)) => {
            out.abs_effect = Some(est.effect);
            out.abs_ci = Some(t.ci);
            out.abs_p_value = Some(t.p_value);
        }
        Err(reason) => out.abs_reason = Some(reason),
    }
    let relative = || -> Result<_, Reason> {
        settings.validate()?;
        let est = estimate(Difference::Relative)?;
        let fixed = frequentist::two_sided(est, settings.alpha)?;
        let seq = sequential::two_sided(est, settings.alpha, settings.sequential_tuning)?;
        let post = bayesian::posterior(est, settings.alpha, settings.higher_is_better)?;
        Ok((est, fixed, seq, post))
    };
    match relative() {
        Ok((est, fixed, seq, post)) => {
            out.rel_effect = Some(est.effect);
            out.rel_ci = Some(fixed.ci);
            out.p_value = Some(fixed.p_value);
            out.seq_rel_ci = Some(seq.ci);
            out.seq_p_value = Some(seq.p_value);
            out.chance_to_win = Some(post.chance_to_win);
            out.risk = Some(post.risk);
            out.risk_control = Some(post.risk_control);
            out.credible_interval = Some(post.credible_interval);
            out.significant = fixed.p_value < settings.alpha;
        }
        Err(reason) => out.rel_reason = Some(reason),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::testutil::{arm, assert_all_finite, assert_close, check_comparisons};
    use super::*;

    #[test]
    fn compare_matches_gbstats() {
        let checked = check_comparisons("compare.json", |_, case, settings| {
            compare(arm(case, "control"), arm(case, "treatment"), settings)
        });
        assert!(checked >= 50, "only {checked} comparisons checked");
    }

    #[test]
    fn capped_means_match_gbstats() {
        let checked = check_comparisons("capped.json", |label, case, settings| {
            let cap = case["cap"].as_f64().unwrap();
            let [c, t] = ["control", "treatment"].map(|key| {
                let values: Vec<f64> = case[&format!("{key}_values")]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap().min(cap))
                    .collect();
                let moments = Moments::from_values(&values);
                let want = arm(case, key).moments;
                assert_eq!(moments.n, want.n, "{label} {key} n");
                assert_close(label, "sum", Some(moments.sum), &want.sum.into());
                assert_close(
                    label,
                    "sum_squares",
                    Some(moments.sum_squares),
                    &want.sum_squares.into(),
                );
                Arm::new(MetricType::Mean, moments)
            });
            compare(c, t, settings)
        });
        assert!(checked >= 21, "only {checked} capped comparisons checked");
    }

    #[test]
    fn invalid_settings_give_a_reason_not_nan() {
        let m = MetricType::Proportion;
        let c = Arm::new(m, Moments::conversions(1000, 100));
        let t = Arm::new(m, Moments::conversions(1000, 120));
        for alpha in [0.0, 1.0, f64::NAN, -0.1] {
            let s = Settings {
                alpha,
                ..Settings::default()
            };
            let got = compare(c, t, &s);
            assert_eq!(got.rel_reason, Some(Reason::InvalidSettings));
            assert_eq!(got.abs_reason, Some(Reason::InvalidSettings));
            assert_eq!(got.p_value, None);
            assert!(!got.significant);
        }
    }

    #[test]
    fn absolute_survives_a_zero_control_mean() {
        let m = MetricType::Mean;
        let c = Arm::new(m, Moments::from_values(&[-1.0, 1.0, -2.0, 2.0]));
        let t = Arm::new(m, Moments::from_values(&[0.0, 1.0, 3.0, 2.0]));
        let got = compare(c, t, &Settings::default());
        assert!(got.abs_p_value.is_some());
        assert_eq!(got.rel_reason, Some(Reason::ZeroNegativeBaseline));
    }

    #[test]
    fn extreme_inputs_never_give_nan() {
        let m = MetricType::Mean;
        let shapes = [
            Moments::new(2, 1e300, 1e300),
            Moments::new(u64::MAX, 1.0, 1.0),
            Moments::new(3, f64::INFINITY, 1.0),
            Moments::new(5, 1e-300, 1e-300),
            Moments::new(1_000_000_000, 5e8, 1e300),
        ];
        for a in shapes {
            for b in shapes {
                let got = compare(Arm::new(m, a), Arm::new(m, b), &Settings::default());
                assert_all_finite(&format!("{a:?} {b:?}"), &got);
            }
        }
    }

    #[test]
    fn reason_codes_are_stable() {
        assert_eq!(
            Reason::ZeroNegativeVariance.as_str(),
            "ZERO_NEGATIVE_VARIANCE"
        );
        assert_eq!(
            Reason::ZeroNegativeBaseline.as_str(),
            "ZERO_NEGATIVE_BASELINE_VARIATION"
        );
        assert_eq!(Reason::TooFewUnits.as_str(), "TOO_FEW_UNITS");
        assert_eq!(Reason::ZeroDenominator.as_str(), "ZERO_DENOMINATOR");
        assert_eq!(
            Reason::ZeroCovariateVariance.as_str(),
            "ZERO_COVARIATE_VARIANCE"
        );
    }
}
