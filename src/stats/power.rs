//! Planning: sample size, minimum detectable effect and power of a two-sided test of a
//! relative lift, before an experiment runs.
//!
//! The model is statsmodels' `NormalIndPower` (a two-sample z-test, `ratio=1`,
//! `alternative="two-sided"`): with standardized effect d and n units per arm,
//! power = Φ̄(z_{1−α/2} − d·√(n/2)) + Φ(−z_{1−α/2} − d·√(n/2))
//! (statsmodels `normal_power` with `nobs = 1/(1/n + 1/n)`; both tails counted).
//! Its inverses are solved to machine precision by bisection, as statsmodels'
//! `solve_power` does with brentq.
//!
//! Choices, stated once:
//! - d = mde_relative·|μ| / σ, from the baseline's mean and per-unit variance, and the
//!   treatment arm is assumed to share σ (the planning-time convention of
//!   statsmodels' `effectsize`-based calculators; the real test is Welch's);
//! - with `variants` arms (control included) there are `variants − 1` comparisons with
//!   the control, and α is split evenly among them (Bonferroni): each is run at
//!   α / (variants − 1). This is conservative, and the simplest correction that keeps
//!   the family-wise error at α whatever the correlation between comparisons.

use super::dist::{norm_cdf, norm_ppf};
use super::{finite, in_open_unit, positive, Arm, Reason};

/// The control's expected mean and per-unit variance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baseline {
    /// Expected mean per unit (e.g. a conversion rate).
    pub mean: f64,
    /// Expected variance per unit.
    pub variance: f64,
}

impl Baseline {
    /// A conversion rate `p`: variance p(1 − p).
    pub fn proportion(p: f64) -> Self {
        Self {
            mean: p,
            variance: p * (1.0 - p),
        }
    }

    /// From historical data for the metric; `None` without a variance (see
    /// [`Arm::variance`]).
    pub fn from_arm(arm: Arm) -> Option<Self> {
        Some(Self {
            mean: arm.mean()?,
            variance: arm.variance()?,
        })
    }

    /// σ/|μ|, turning a relative effect into a standardized one; checks the baseline.
    fn relative_sd(&self) -> Result<f64, Reason> {
        if !self.mean.is_finite() || !self.variance.is_finite() || self.variance < 0.0 {
            return Err(Reason::InvalidInput);
        }
        if self.mean == 0.0 {
            return Err(Reason::ZeroNegativeBaseline);
        }
        if self.variance == 0.0 {
            return Err(Reason::ZeroNegativeVariance);
        }
        Ok(self.variance.sqrt() / self.mean.abs())
    }
}

/// α per comparison after the Bonferroni split, checked.
fn alpha_per_comparison(alpha: f64, variants: usize) -> Result<f64, Reason> {
    if !in_open_unit(alpha) || variants < 2 {
        return Err(Reason::InvalidSettings);
    }
    Ok(alpha / (variants - 1) as f64)
}

/// statsmodels `NormalIndPower.power(d, n, a, ratio=1, alternative="two-sided")`.
fn normal_power(d: f64, n: f64, a: f64) -> f64 {
    let crit = -norm_ppf(a / 2.0);
    let shift = d * (n / 2.0).sqrt();
    norm_cdf(-(crit - shift)) + norm_cdf(-crit - shift)
}

/// Bisection for the root of an increasing `f` on `[lo, hi]` with `f(lo) < 0 ≤ f(hi)`,
/// to adjacent floating-point numbers.
fn bisect(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    for _ in 0..2000 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if f(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

fn check_power(target: f64, a: f64) -> Result<(), Reason> {
    // Power can't be below the α of the test itself (what d = 0 gives).
    if target > a && target < 1.0 {
        Ok(())
    } else {
        Err(Reason::InvalidSettings)
    }
}

/// Units per variant (control included) for a two-sided test at level `alpha`
/// (Bonferroni-split over `variants − 1` comparisons) to detect a relative lift of
/// `mde_relative` with probability `power`. Continuous, as statsmodels' `solve_power`
/// returns it: round up to plan.
pub fn sample_size_per_variant(
    baseline: Baseline,
    mde_relative: f64,
    alpha: f64,
    power: f64,
    variants: usize,
) -> Result<f64, Reason> {
    let a = alpha_per_comparison(alpha, variants)?;
    check_power(power, a)?;
    if !positive(mde_relative) {
        return Err(Reason::InvalidSettings);
    }
    let d = mde_relative / baseline.relative_sd()?;
    // One tail alone reaches `power` at n₀ = 2((z_{1−a/2} + z_power)/d)², so the root is
    // in (0, n₀] (the second tail only adds power).
    let n0 = 2.0 * ((-norm_ppf(a / 2.0) + norm_ppf(power)) / d).powi(2);
    let n0 = finite(n0)?;
    finite(bisect(|n| normal_power(d, n, a) - power, 0.0, n0))
}

/// The smallest relative lift a two-sided test with `n_per_variant` units in each arm
/// detects with probability `power` (same model and α split as
/// [`sample_size_per_variant`]).
pub fn minimum_detectable_effect(
    n_per_variant: f64,
    baseline: Baseline,
    alpha: f64,
    power: f64,
    variants: usize,
) -> Result<f64, Reason> {
    let a = alpha_per_comparison(alpha, variants)?;
    check_power(power, a)?;
    if !positive(n_per_variant) {
        return Err(Reason::InvalidSettings);
    }
    let rel_sd = baseline.relative_sd()?;
    let d0 = (-norm_ppf(a / 2.0) + norm_ppf(power)) / (n_per_variant / 2.0).sqrt();
    let d0 = finite(d0)?;
    let d = bisect(|d| normal_power(d, n_per_variant, a) - power, 0.0, d0);
    finite(d * rel_sd)
}

/// Probability that a two-sided test with `n_per_variant` units per arm detects a
/// relative lift of `mde_relative` (same model and α split as
/// [`sample_size_per_variant`]).
pub fn power(
    n_per_variant: f64,
    baseline: Baseline,
    mde_relative: f64,
    alpha: f64,
    variants: usize,
) -> Result<f64, Reason> {
    let a = alpha_per_comparison(alpha, variants)?;
    if !positive(n_per_variant) || !mde_relative.is_finite() {
        return Err(Reason::InvalidSettings);
    }
    let d = mde_relative.abs() / baseline.relative_sd()?;
    finite(normal_power(d, n_per_variant, a))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{assert_close, cases};
    use super::*;
    use serde_json::Value;

    #[test]
    fn matches_statsmodels_normal_ind_power() {
        let mut checked = 0;
        for case in cases("power.json") {
            let name = case["name"].as_str().unwrap();
            let b = Baseline {
                mean: case["baseline"]["mean"].as_f64().unwrap(),
                variance: case["baseline"]["variance"].as_f64().unwrap(),
            };
            let mde = case["mde_relative"].as_f64().unwrap();
            let alpha = case["alpha"].as_f64().unwrap();
            let pw = case["power"].as_f64().unwrap();
            let k = case["variants"].as_u64().unwrap() as usize;
            let want = &case["want"];
            let n_round = want["n_round"].as_f64().unwrap();
            let n = sample_size_per_variant(b, mde, alpha, pw, k).ok();
            assert_close(name, "sample_size", n, &want["sample_size_per_variant"]);
            let p = power(n_round, b, mde, alpha, k).ok();
            assert_close(name, "power", p, &want["power_at_n_round"]);
            let m = minimum_detectable_effect(n_round, b, alpha, pw, k).ok();
            assert_close(name, "mde", m, &want["mde_relative_at_n_round"]);
            checked += 1;
        }
        assert!(checked >= 50);
    }

    #[test]
    fn round_trips() {
        let b = Baseline::proportion(0.1);
        let n = sample_size_per_variant(b, 0.05, 0.05, 0.8, 3).unwrap();
        let mde = minimum_detectable_effect(n, b, 0.05, 0.8, 3).unwrap();
        assert_close("round trip", "mde", Some(mde), &Value::from(0.05));
        let p = power(n, b, 0.05, 0.05, 3).unwrap();
        assert_close("round trip", "power", Some(p), &Value::from(0.8));
    }

    #[test]
    fn refuses_nonsense() {
        let b = Baseline::proportion(0.1);
        assert_eq!(
            sample_size_per_variant(b, 0.05, 0.05, 0.8, 1),
            Err(Reason::InvalidSettings)
        );
        assert_eq!(
            sample_size_per_variant(b, 0.0, 0.05, 0.8, 2),
            Err(Reason::InvalidSettings)
        );
        assert_eq!(
            sample_size_per_variant(Baseline::proportion(0.0), 0.05, 0.05, 0.8, 2),
            Err(Reason::ZeroNegativeBaseline)
        );
        assert_eq!(
            minimum_detectable_effect(100.0, b, 0.05, 0.01, 2),
            Err(Reason::InvalidSettings)
        );
    }
}
