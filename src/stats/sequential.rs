//! Sequential (always-valid) tests: asymptotic confidence sequences of Waudby-Smith,
//! Arnold, Wu, Howard and Ramdas, "Time-uniform central limit theory and asymptotic
//! confidence sequences" (arXiv:2103.06476v7, 2023), applied to the effect estimate of
//! [`frequentist`](super::frequentist). An analyst (or the guard) may look at these after
//! every new user without inflating the error rate beyond α.
//!
//! Two-sided: gbstats 0.8.0 `SequentialTwoSidedTTest`. One-sided: GrowthBook's later
//! `SequentialOneSidedTreatment{Lesser,Greater}TTest` (not in gbstats 0.8.0 on PyPI);
//! its p-value is found there by bisection, here in closed form (see
//! [`sequential_one_sided_test`]).

use super::frequentist::{estimate, Estimate};
use super::{finite, Arm, Difference, OneSided, Reason, Settings, Side};

/// ρ, the mixing-distribution width tuned so that the sequence is tightest at
/// `n_star` units: eq. 161 of Waudby-Smith et al.,
/// ρ = √((−2 ln α + ln(−2 ln α + 1)) / N*). One-sided sequences use 2α (GrowthBook).
fn rho(alpha: f64, n_star: f64) -> f64 {
    let l = -2.0 * alpha.ln();
    ((l + (l + 1.0).ln()) / n_star).sqrt()
}

/// A two-sided confidence-sequence interval and its always-valid p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct SequentialTwoSided {
    pub(super) ci: [f64; 2],
    pub(super) p_value: f64,
}

/// Two-sided asymptotic confidence sequence (gbstats `SequentialTwoSidedTTest`).
///
/// With N = n_c + n_t units, s² = N·Var(effect) and ρ from [`rho`], the half width is
/// eq. 9 of Waudby-Smith et al.:
/// `√s² · √( 2(Nρ² + 1) / (Nρ)² · ln(√(Nρ² + 1) / α) )`.
///
/// The p-value is 1/E capped at 1, with E the mixture e-value of eq. 155:
/// `E = exp(ρ²·S / (2(Nρ² + 1))) / √(Nρ² + 1)`, S = effect²·N / Var(effect).
/// It is computed in log space, so a huge S gives a tiny p-value instead of gbstats'
/// overflow to `exp(inf)` (same limit, 0).
pub(super) fn two_sided(
    est: Estimate,
    alpha: f64,
    n_star: f64,
) -> Result<SequentialTwoSided, Reason> {
    let n = est.units;
    let r = rho(alpha, n_star);
    let nr2p1 = n * r * r + 1.0;
    let s2 = est.variance * n;
    let width =
        finite(s2.sqrt() * (2.0 * nr2p1 * (nr2p1.sqrt() / alpha).ln() / (n * r).powi(2)).sqrt())?;
    let st2 = est.effect.powi(2) * n / est.variance;
    let log_e = r * r * st2 / (2.0 * nr2p1) - 0.5 * nr2p1.ln();
    let p_value = finite((-log_e).exp().min(1.0))?;
    Ok(SequentialTwoSided {
        ci: [est.effect - width, est.effect + width],
        p_value,
    })
}

/// One-sided asymptotic confidence sequence, for guardrails that must be checked
/// continuously (GrowthBook `SequentialOneSidedTreatment{Lesser,Greater}TTest`).
///
/// ρ uses 2α (GrowthBook `sequentialRho(..., twoSided = false)`), and with N, s² as in
/// the two-sided test the half width is the one-sided boundary of Waudby-Smith et al.
/// (as transcribed by GrowthBook, `sequentialIntervalHalfwidthOneSided`):
/// `h(α) = √( s² · 2(Nρ² + 1)/(Nρ)² · ln(1 + √(Nρ² + 1)/(2α)) )`.
/// [`Side::TreatmentLesser`] gives the upper end `effect + h(α)` as
/// [`OneSided::bound`], [`Side::TreatmentGreater`] the lower end `effect − h(α)`.
///
/// The p-value is the smallest α at which the bound excludes 0, with ρ held at the
/// configured α's value (as GrowthBook does). Solving `h(α*) = |effect|` exactly:
/// `α* = √(Nρ² + 1) / (2·(exp(L) − 1))`, `L = effect² (Nρ)² / (s² · 2(Nρ² + 1))`,
/// capped at 1; an effect on the other side of 0 gives 1. GrowthBook bisects for the
/// same α within 1e-6 of the bound and clamps it to [1e-5, 0.4999]; the fixtures record
/// both and compare this one to a 1e-14 root-finder.
///
/// α ≥ 0.5 is refused ([`Reason::InvalidSettings`]), as GrowthBook does: ρ is undefined.
pub fn sequential_one_sided_test(
    control: Arm,
    treatment: Arm,
    difference: Difference,
    side: Side,
    settings: &Settings,
) -> OneSided {
    one_sided_test(|| estimate(control, treatment, difference), side, settings)
}

/// [`sequential_one_sided_test`] on the effect `estimate` gives (plain or adjusted).
pub(super) fn one_sided_test(
    estimate: impl FnOnce() -> Result<Estimate, Reason>,
    side: Side,
    settings: &Settings,
) -> OneSided {
    let run = || -> Result<(f64, f64, f64), Reason> {
        settings.validate()?;
        if settings.alpha >= 0.5 {
            return Err(Reason::InvalidSettings);
        }
        let est = estimate()?;
        let (bound, p) = one_sided(est, side, settings.alpha, settings.sequential_tuning)?;
        Ok((est.effect, bound, p))
    };
    OneSided::from_result(run())
}

fn one_sided(est: Estimate, side: Side, alpha: f64, n_star: f64) -> Result<(f64, f64), Reason> {
    let n = est.units;
    let r = rho(2.0 * alpha, n_star);
    let nr2p1 = n * r * r + 1.0;
    let s2 = est.variance * n;
    let scale = s2 * 2.0 * nr2p1 / (n * r).powi(2);
    let width = finite((scale * (1.0 + nr2p1.sqrt() / (2.0 * alpha)).ln()).sqrt())?;
    let (bound, toward) = match side {
        Side::TreatmentLesser => (est.effect + width, est.effect < 0.0),
        Side::TreatmentGreater => (est.effect - width, est.effect > 0.0),
    };
    let p = if toward {
        let l = est.effect.powi(2) / scale;
        (nr2p1.sqrt() / (2.0 * l.exp_m1())).min(1.0)
    } else {
        1.0
    };
    Ok((finite(bound)?, finite(p)?))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{arm, assert_close, cases};
    use super::*;

    #[test]
    fn one_sided_matches_reference() {
        let mut checked = 0;
        for case in cases("one_sided.json") {
            let (c, t) = (arm(&case, "control"), arm(&case, "treatment"));
            let difference = match case["difference"].as_str() {
                Some("absolute") => Difference::Absolute,
                _ => Difference::Relative,
            };
            let name = case["name"].as_str().unwrap();
            let seq = case["want"]["sequential"].as_object().unwrap();
            for (n_star, want) in seq {
                let settings = Settings {
                    alpha: case["settings"]["alpha"].as_f64().unwrap(),
                    sequential_tuning: n_star.parse().unwrap(),
                    ..Settings::default()
                };
                let label = format!("{name}/N*={n_star}");
                let l =
                    sequential_one_sided_test(c, t, difference, Side::TreatmentLesser, &settings);
                let g =
                    sequential_one_sided_test(c, t, difference, Side::TreatmentGreater, &settings);
                assert_close(&label, "lesser_upper", l.bound, &want["lesser_upper"]);
                assert_close(&label, "lesser_p", l.p_value, &want["lesser_p_value"]);
                assert_close(&label, "greater_lower", g.bound, &want["greater_lower"]);
                assert_close(&label, "greater_p", g.p_value, &want["greater_p_value"]);
                // GrowthBook's bisection lands within its tolerance of ours wherever
                // it is not clamped to its [1e-5, 0.4999] search range.
                for (p, key) in [
                    (l.p_value, "lesser_p_value_growthbook_bisection"),
                    (g.p_value, "greater_p_value_growthbook_bisection"),
                ] {
                    let (Some(p), Some(b)) = (p, want[key].as_f64()) else {
                        continue;
                    };
                    if p > 1e-5 && p < 0.4999 {
                        assert!((p - b).abs() < 1e-3, "{label} {key}: {p} vs {b}");
                    }
                }
                checked += 1;
            }
        }
        assert!(checked >= 90, "only {checked} sequential one-sided cases");
    }

    #[test]
    fn alpha_of_one_half_is_refused_one_sided() {
        let m = super::super::MetricType::Proportion;
        let c = Arm::new(m, super::super::Moments::conversions(1000, 100));
        let t = Arm::new(m, super::super::Moments::conversions(1000, 90));
        let s = Settings {
            alpha: 0.5,
            ..Settings::default()
        };
        let r = sequential_one_sided_test(c, t, Difference::Relative, Side::TreatmentLesser, &s);
        assert_eq!(r.reason, Some(Reason::InvalidSettings));
        assert_eq!(r.p_value, None);
    }

    #[test]
    fn sequential_interval_is_wider_than_fixed_horizon() {
        let est = Estimate {
            effect: 0.05,
            variance: 0.0004,
            dof: 1e4,
            units: 2e4,
        };
        let seq = two_sided(est, 0.05, 5000.0).unwrap();
        let fixed = super::super::frequentist::two_sided(est, 0.05).unwrap();
        assert!(seq.ci[0] < fixed.ci[0] && seq.ci[1] > fixed.ci[1]);
        assert!(seq.p_value > fixed.p_value);
    }
}
