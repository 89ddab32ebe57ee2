//! Sample-ratio mismatch: does the number of users per variant fit the configured
//! weights? Pearson's chi-square goodness-of-fit test (scipy.stats.chisquare; gbstats
//! `check_srm`).

use super::dist::chi2_sf;
use super::Reason;

/// p-values below this flag a mismatch (the usual SRM threshold; DESIGN.md).
pub const SRM_THRESHOLD: f64 = 0.001;

/// Result of [`srm`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SrmResult {
    /// p-value of the chi-square test; `None` when the input is invalid.
    pub p_value: Option<f64>,
    /// `p_value >= SRM_THRESHOLD`. Also true when there is no p-value: invalid input
    /// is a configuration problem reported through `reason`, not evidence of SRM.
    pub ok: bool,
    /// Why `p_value` is `None`.
    pub reason: Option<Reason>,
}

/// Chi-square goodness of fit of `observed` users per variant to `weights`:
/// X² = Σ (o_i − e_i)² / e_i with e_i = w_i / Σw · Σo, p = P(χ²_{k−1} > X²)
/// (Pearson 1900; scipy `chisquare(observed, f_exp)`).
///
/// With no users at all the p-value is 1, as gbstats `check_srm`. Fewer than 2
/// variants, lengths that differ, or a weight that is not finite and > 0 give
/// [`Reason::InvalidInput`] (scipy would divide by a zero expectation).
pub fn srm(observed: &[u64], weights: &[f64]) -> SrmResult {
    match srm_p_value(observed, weights) {
        Ok(p) => SrmResult {
            p_value: Some(p),
            ok: p >= SRM_THRESHOLD,
            reason: None,
        },
        Err(reason) => SrmResult {
            p_value: None,
            ok: true,
            reason: Some(reason),
        },
    }
}

fn srm_p_value(observed: &[u64], weights: &[f64]) -> Result<f64, Reason> {
    let weights_ok = weights.iter().all(|w| w.is_finite() && *w > 0.0);
    if observed.len() != weights.len() || observed.len() < 2 || !weights_ok {
        return Err(Reason::InvalidInput);
    }
    let total: f64 = observed.iter().map(|&o| o as f64).sum();
    if total == 0.0 {
        return Ok(1.0);
    }
    let total_weight: f64 = weights.iter().sum();
    let statistic: f64 = observed
        .iter()
        .zip(weights)
        .map(|(&o, &w)| {
            let e = w / total_weight * total;
            (o as f64 - e).powi(2) / e
        })
        .sum();
    super::finite(chi2_sf(statistic, (observed.len() - 1) as f64))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{assert_close, cases};
    use super::*;

    #[test]
    fn matches_scipy_chisquare() {
        let mut checked = 0;
        for case in cases("srm.json") {
            let name = case["name"].as_str().unwrap();
            let users: Vec<u64> = case["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_u64().unwrap())
                .collect();
            let weights: Vec<f64> = case["weights"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_f64().unwrap())
                .collect();
            let got = srm(&users, &weights);
            assert_close(name, "p_value", got.p_value, &case["want"]["p_value"]);
            assert_eq!(Some(got.ok), case["want"]["ok"].as_bool(), "{name} ok");
            checked += 1;
        }
        assert!(checked >= 20);
    }

    #[test]
    fn no_users_is_fine() {
        assert_eq!(srm(&[0, 0], &[0.5, 0.5]).p_value, Some(1.0));
    }

    #[test]
    fn bad_shapes_are_invalid_input() {
        for (o, w) in [
            (&[1u64, 2][..], &[0.5][..]),
            (&[10], &[1.0]),
            (&[10, 10], &[1.0, 0.0]),
            (&[10, 10], &[1.0, f64::NAN]),
        ] {
            let r = srm(o, w);
            assert_eq!(r.reason, Some(Reason::InvalidInput));
            assert!(r.ok && r.p_value.is_none());
        }
    }
}
