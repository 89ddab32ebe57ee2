//! Fixed-horizon Welch t-tests of a treatment against a control, on the absolute or
//! the relative difference of means: the effect estimate with its delta-method
//! variance and Welch–Satterthwaite degrees of freedom, then two-sided and one-sided
//! p-values and intervals. Mirrors gbstats 0.8.0 `gbstats/frequentist/tests.py`
//! (`TTest`, `TwoSidedTTest`, `OneSidedTreatment{Greater,Lesser}TTest`).

use super::dist::{t_cdf, t_ppf, t_sf};
use super::moments::Summary;
use super::{finite, Arm, Difference, OneSided, Reason, Settings, Side};

/// A treatment-vs-control effect with its sampling variance and Welch degrees of
/// freedom: what every test in this module is built from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Estimate {
    /// Point estimate: `μ_t − μ_c`, or `(μ_t − μ_c) / μ_c` for the relative effect.
    pub(super) effect: f64,
    /// Variance of `effect`.
    pub(super) variance: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub(super) dof: f64,
    /// Total units in both arms (the sequential tests' `N`).
    pub(super) units: f64,
}

impl Estimate {
    /// Standard error of the effect.
    pub(super) fn stddev(&self) -> f64 {
        self.variance.sqrt()
    }
}

/// Checks the arms and returns the effect estimate, or why there is none.
///
/// Reasons, in this order: [`Reason::MixedMetricTypes`], [`Reason::InvalidInput`],
/// then those of [`require_units`] and [`estimate_from`].
pub(super) fn estimate(
    control: Arm,
    treatment: Arm,
    difference: Difference,
) -> Result<Estimate, Reason> {
    if control.metric != treatment.metric {
        return Err(Reason::MixedMetricTypes);
    }
    control.validate()?;
    treatment.validate()?;
    require_units(control.moments.n, treatment.moments.n)?;
    estimate_from(control.summary()?, treatment.summary()?, difference)
}

/// [`Reason::TooFewUnits`] if an arm has n < 2: no sample variance, and Welch's df
/// divides by n − 1. Every kind of metric checks this before building its
/// [`Summary`].
pub(super) fn require_units(control: u64, treatment: u64) -> Result<(), Reason> {
    if control < 2 || treatment < 2 {
        Err(Reason::TooFewUnits)
    } else {
        Ok(())
    }
}

/// The effect estimate from two arm summaries, whatever their metric kind.
///
/// Reasons, in this order: [`Reason::ZeroNegativeBaseline`] (relative only, control
/// mean exactly 0, adjusted or not, as gbstats checks `stat_a.mean == 0` and
/// `stat_a.unadjusted_mean == 0`), [`Reason::ZeroNegativeVariance`] (either arm, as
/// gbstats' `_has_zero_variance`: with 0% or 100% conversions the normal approximation
/// says nothing).
pub(super) fn estimate_from(
    control: Summary,
    treatment: Summary,
    difference: Difference,
) -> Result<Estimate, Reason> {
    let (n_c, n_t) = (control.n as f64, treatment.n as f64);
    let (m_c, m_t) = (control.unadjusted_mean, treatment.unadjusted_mean);
    let (v_c, v_t) = (control.variance, treatment.variance);
    if difference == Difference::Relative && (control.mean == 0.0 || m_c == 0.0) {
        return Err(Reason::ZeroNegativeBaseline);
    }
    if v_c <= 0.0 || v_t <= 0.0 {
        return Err(Reason::ZeroNegativeVariance);
    }
    let diff = treatment.mean - control.mean;
    let (effect, variance) = match difference {
        // Var(μ̂_t − μ̂_c) = σ_t²/n_t + σ_c²/n_c.
        Difference::Absolute => (diff, v_t / n_t + v_c / n_c),
        // Delta method for μ̂_t/μ̂_c − 1 (gbstats `frequentist_variance`, relative):
        // Var ≈ σ_t²/(μ_c² n_t) + σ_c² μ_t²/(μ_c⁴ n_c). Under CUPED the σ² are the
        // adjusted variances and the μ the unadjusted means, as gbstats passes
        // `unadjusted_mean` to both `frequentist_diff` and `frequentist_variance`.
        Difference::Relative => (
            diff / m_c,
            v_t / (m_c.powi(2) * n_t) + v_c * m_t.powi(2) / (m_c.powi(4) * n_c),
        ),
    };
    // Welch–Satterthwaite (Satterthwaite 1946; Welch 1947), on the arms'
    // variances for both differences, as gbstats `TTest.dof`:
    // ν = (σ_t²/n_t + σ_c²/n_c)² / (σ_t⁴/(n_t²(n_t − 1)) + σ_c⁴/(n_c²(n_c − 1))).
    let dof = (v_t / n_t + v_c / n_c).powi(2)
        / (v_t.powi(2) / (n_t.powi(2) * (n_t - 1.0)) + v_c.powi(2) / (n_c.powi(2) * (n_c - 1.0)));
    Ok(Estimate {
        effect: finite(effect)?,
        variance: finite(variance)?,
        dof: finite(dof)?,
        units: n_c + n_t,
    })
}

/// A two-sided interval and p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct TwoSided {
    pub(super) ci: [f64; 2],
    pub(super) p_value: f64,
}

/// Two-sided Welch t-test of `effect = 0` (gbstats `TwoSidedTTest`):
/// p = 2·P(T_ν > |effect|/se), CI = effect ± t_{ν, 1−α/2}·se.
///
/// gbstats computes `2 * (1 - t.cdf(|z|))`; the survival function is the same number
/// without the cancellation that flushes p-values below ~1e-16 to 0.
pub(super) fn two_sided(est: Estimate, alpha: f64) -> Result<TwoSided, Reason> {
    let se = est.stddev();
    let z = est.effect / se;
    let p_value = finite((2.0 * t_sf(z.abs(), est.dof)).min(1.0))?;
    let width = finite(t_ppf(1.0 - alpha / 2.0, est.dof) * se)?;
    Ok(TwoSided {
        ci: [est.effect - width, est.effect + width],
        p_value,
    })
}

/// One-sided fixed-horizon Welch t-test, for guardrails (gbstats
/// `OneSidedTreatmentLesserTTest` / `OneSidedTreatmentGreaterTTest`).
///
/// - [`Side::TreatmentLesser`]: H₁ effect < 0; p = P(T_ν ≤ z); the interval is
///   `(−∞, effect + t_{ν,1−α}·se]` and [`OneSided::bound`] is its upper end.
///   (gbstats 0.8.0 returns `effect − width` for this end, which is not a 1 − α bound;
///   GrowthBook's later releases use `+`, as here.)
/// - [`Side::TreatmentGreater`]: H₁ effect > 0; p = P(T_ν > z); the interval is
///   `[effect − t_{ν,1−α}·se, ∞)`.
pub fn one_sided_t_test(
    control: Arm,
    treatment: Arm,
    difference: Difference,
    side: Side,
    settings: &Settings,
) -> OneSided {
    let run = || -> Result<(f64, f64, f64), Reason> {
        settings.validate()?;
        let est = estimate(control, treatment, difference)?;
        let se = est.stddev();
        let z = est.effect / se;
        let width = finite(t_ppf(1.0 - settings.alpha, est.dof) * se)?;
        let (bound, p) = match side {
            Side::TreatmentLesser => (est.effect + width, t_cdf(z, est.dof)),
            Side::TreatmentGreater => (est.effect - width, t_sf(z, est.dof)),
        };
        Ok((est.effect, finite(bound)?, finite(p)?))
    };
    OneSided::from_result(run())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{arm, assert_close, cases};
    use super::*;

    #[test]
    fn one_sided_matches_gbstats() {
        let mut checked = 0;
        for case in cases("one_sided.json") {
            let (c, t) = (arm(&case, "control"), arm(&case, "treatment"));
            let difference = match case["difference"].as_str() {
                Some("absolute") => Difference::Absolute,
                _ => Difference::Relative,
            };
            let settings = Settings {
                alpha: case["settings"]["alpha"].as_f64().unwrap(),
                ..Settings::default()
            };
            let want = &case["want"];
            let name = case["name"].as_str().unwrap();
            let lesser = one_sided_t_test(c, t, difference, Side::TreatmentLesser, &settings);
            let greater = one_sided_t_test(c, t, difference, Side::TreatmentGreater, &settings);
            assert_close(name, "effect", lesser.effect, &want["effect"]);
            assert_close(name, "lesser_p", lesser.p_value, &want["lesser_p_value"]);
            assert_close(name, "lesser_upper", lesser.bound, &want["lesser_upper"]);
            assert_close(name, "greater_p", greater.p_value, &want["greater_p_value"]);
            assert_close(name, "greater_lower", greater.bound, &want["greater_lower"]);
            checked += 1;
        }
        assert!(checked >= 30, "only {checked} one-sided cases");
    }

    #[test]
    fn mixed_metric_types_are_refused() {
        let c = Arm::new(
            super::super::MetricType::Proportion,
            super::super::Moments::conversions(100, 10),
        );
        let t = Arm::new(
            super::super::MetricType::Mean,
            super::super::Moments::conversions(100, 10),
        );
        assert_eq!(
            estimate(c, t, Difference::Absolute),
            Err(Reason::MixedMetricTypes)
        );
    }

    #[test]
    fn impossible_conversion_counts_are_refused() {
        let m = super::super::MetricType::Proportion;
        let c = Arm::new(m, super::super::Moments::conversions(100, 10));
        let t = Arm::new(m, super::super::Moments::conversions(100, 101));
        assert_eq!(
            estimate(c, t, Difference::Absolute),
            Err(Reason::InvalidInput)
        );
    }
}
