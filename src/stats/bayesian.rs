//! Bayesian read-out of the relative effect with a flat (improper) Gaussian prior:
//! chance to win, risk (expected loss) and a credible interval. Mirrors gbstats 0.8.0
//! `EffectBayesianABTest` with its default `GaussianPrior(proper=False)`: the posterior
//! of the effect is then N(effect, Var(effect)) with the frequentist delta-method
//! estimate (Gelman et al., *Bayesian Data Analysis*, 3rd ed., §2.5, normal likelihood
//! with a flat prior).

use super::dist::{norm_cdf, norm_pdf, norm_ppf};
use super::finite;
use super::frequentist::Estimate;
use super::Reason;

/// The Bayesian numbers of one comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Posterior {
    pub(super) chance_to_win: f64,
    /// Expected loss of choosing the treatment.
    pub(super) risk: f64,
    /// Expected loss of keeping the control.
    pub(super) risk_control: f64,
    pub(super) credible_interval: [f64; 2],
}

/// Posterior summaries for an effect X ~ N(μ, σ²), μ = effect, σ² = Var(effect).
///
/// - chance to win: P(X > 0) = Φ(μ/σ), or P(X < 0) when lower is better
///   (gbstats `chance_to_win`, `norm.sf(0, μ, σ)`);
/// - credible interval: μ + σ·Φ⁻¹(α/2), μ + σ·Φ⁻¹(1 − α/2) (gbstats
///   `credible_interval`);
/// - risk (gbstats `get_risk`): the loss of choosing the treatment is the expected
///   effect where it is negative, E[−X·1{X<0}] = σφ(z) − μΦ(−z) with z = μ/σ; the loss
///   of keeping the control is E[X·1{X>0}] = σφ(z) + μΦ(z) (first moments of the
///   normal truncated at 0). When lower is better the two swap, as gbstats flips `risk`.
pub(super) fn posterior(
    est: Estimate,
    alpha: f64,
    higher_is_better: bool,
) -> Result<Posterior, Reason> {
    let mu = est.effect;
    let sigma = est.stddev();
    let z = mu / sigma;
    let p_positive = norm_cdf(z);
    let p_negative = norm_cdf(-z);
    // Loss where X < 0 and where X > 0; the first is σ·g(z), the second σ·g(−z).
    let loss_negative = sigma * partial_expectation(z);
    let loss_positive = sigma * partial_expectation(-z);
    let (chance_to_win, risk, risk_control) = if higher_is_better {
        (p_positive, loss_negative, loss_positive)
    } else {
        (p_negative, loss_positive, loss_negative)
    };
    let q = norm_ppf(alpha / 2.0);
    Ok(Posterior {
        chance_to_win: finite(chance_to_win)?,
        risk: finite(risk)?,
        risk_control: finite(risk_control)?,
        credible_interval: [finite(mu + sigma * q)?, finite(mu - sigma * q)?],
    })
}

/// g(z) = E[(Z' )⁻] for Z' ~ N(z, 1): φ(z) − z·Φ(−z), the standard normal loss
/// function. For large z the two terms cancel, so there we use the Laplace continued
/// fraction of the Mills ratio R(z) = Φ(−z)/φ(z) = 1/(z + 1/(z + 2/(z + 3/(z + …)))):
/// writing R = 1/(z + u), g = φ(z)(1 − zR) = φ(z)·u/(z + u) with no cancellation
/// (Abramowitz & Stegun 26.2.14).
fn partial_expectation(z: f64) -> f64 {
    if z <= 3.0 {
        return norm_pdf(z) - z * norm_cdf(-z);
    }
    let mut u = 0.0;
    for k in (1..=300).rev() {
        u = k as f64 / (z + u);
    }
    norm_pdf(z) * u / (z + u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_function_is_continuous_at_the_switch() {
        let below = partial_expectation(3.0);
        let above = partial_expectation(3.0 + 1e-12);
        assert!((below - above).abs() <= 1e-9 * below);
    }

    #[test]
    fn loss_function_matches_closed_form() {
        // scipy 1.17.1: norm.pdf(z) - z * norm.sf(z). statrs' Φ is ~1e-11 off.
        let close = |got: f64, want: f64| (got - want).abs() <= 1e-9 * want;
        assert!(close(partial_expectation(0.0), 0.398_942_280_401_432_7));
        assert!(close(partial_expectation(-1.0), 1.083_315_470_587_686_4));
        assert!(close(partial_expectation(3.0), 3.821_543_170_477_275e-4));
        // z = 6: φ(6)(1 − 6R(6)) with R from scipy.special.erfcx.
        assert!(close(partial_expectation(6.0), 1.563_569_795_970_951_1e-10));
    }

    #[test]
    fn risks_swap_when_lower_is_better() {
        let est = Estimate {
            effect: 0.02,
            variance: 1e-4,
            dof: 100.0,
            units: 200.0,
        };
        let up = posterior(est, 0.05, true).unwrap();
        let down = posterior(est, 0.05, false).unwrap();
        assert_eq!(up.risk, down.risk_control);
        assert_eq!(up.risk_control, down.risk);
        assert!((up.chance_to_win + down.chance_to_win - 1.0).abs() < 1e-15);
    }
}
