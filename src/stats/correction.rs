//! Multiple-comparison corrections across metrics × variants: adjusted p-values as
//! statsmodels `multipletests` computes them (methods `holm` and `fdr_bh`).
//!
//! Inputs are p-values in [0, 1]; anything else is clamped into it first, with NaN
//! taken as 1 (no evidence), so that a bad entry can never make another significant.
//! The output is in the input's order.

/// Holm's step-down adjustment (Holm 1979), controlling the family-wise error rate:
/// with p₍₁₎ ≤ … ≤ p₍ₘ₎, p̃₍ᵢ₎ = min(1, max_{j ≤ i} (m − j + 1)·p₍ⱼ₎).
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let (order, sorted) = sort(p_values);
    let m = sorted.len() as f64;
    let mut adjusted = vec![0.0; sorted.len()];
    let mut running: f64 = 0.0;
    for (i, p) in sorted.iter().enumerate() {
        running = running.max((m - i as f64) * p).min(1.0);
        adjusted[order[i]] = running;
    }
    adjusted
}

/// Benjamini–Hochberg step-up adjustment (Benjamini & Hochberg 1995), controlling the
/// false discovery rate: p̃₍ᵢ₎ = min(1, min_{j ≥ i} m·p₍ⱼ₎ / j).
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let (order, sorted) = sort(p_values);
    let m = sorted.len() as f64;
    let mut adjusted = vec![0.0; sorted.len()];
    let mut running: f64 = 1.0;
    for (i, p) in sorted.iter().enumerate().rev() {
        running = running.min(m * p / (i as f64 + 1.0));
        adjusted[order[i]] = running;
    }
    adjusted
}

/// Clamped p-values in ascending order, and each one's index in the input.
fn sort(p_values: &[f64]) -> (Vec<usize>, Vec<f64>) {
    let clean: Vec<f64> = p_values
        .iter()
        .map(|&p| if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) })
        .collect();
    let mut order: Vec<usize> = (0..clean.len()).collect();
    order.sort_by(|&a, &b| clean[a].total_cmp(&clean[b]));
    let sorted = order.iter().map(|&i| clean[i]).collect();
    (order, sorted)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{assert_close, cases};
    use super::*;
    use serde_json::Value;

    #[test]
    fn matches_statsmodels_multipletests() {
        let mut checked = 0;
        for case in cases("correction.json") {
            let name = case["name"].as_str().unwrap();
            let ps: Vec<f64> = case["p_values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_f64().unwrap())
                .collect();
            for (method, got) in [("holm", holm(&ps)), ("fdr_bh", benjamini_hochberg(&ps))] {
                let want = case["want"][method].as_array().unwrap();
                assert_eq!(got.len(), want.len(), "{name} {method}");
                for (g, w) in got.iter().zip(want) {
                    assert_close(name, method, Some(*g), w);
                }
            }
            checked += 1;
        }
        assert!(checked >= 10);
    }

    #[test]
    fn bad_entries_are_conservative() {
        let got = holm(&[f64::NAN, 0.01, -3.0, 7.0]);
        assert_eq!((got[0], got[2], got[3]), (1.0, 0.0, 1.0));
        assert_close("nan", "holm", Some(got[1]), &Value::from(0.03));
        let got = benjamini_hochberg(&[f64::NAN, 0.01]);
        assert_close("nan", "bh", Some(got[1]), &Value::from(0.02));
        assert_eq!(got[0], 1.0);
    }
}
