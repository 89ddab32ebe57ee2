//! From a hash in `[0, 1)` to a variant: bucket ranges, coverage, namespaces.
//!
//! Each variant owns the slice `[start, start + weight)` of the unit
//! interval, where `start` is the sum of the previous weights. Coverage `c`
//! shrinks every slice in place to `[start, start + c * weight)`: the start
//! never moves, so raising coverage only adds users to each variant and
//! never moves one from a variant to another (GrowthBook's `getBucketRanges`).

use crate::hash;

/// A half-open range `[start, end)` of hash values.
pub type BucketRange = [f64; 2];

/// Lowest accepted sum of weights before falling back to equal weights.
pub const MIN_WEIGHT_SUM: f64 = 0.99;
/// Highest accepted sum of weights before falling back to equal weights.
pub const MAX_WEIGHT_SUM: f64 = 1.01;

/// `n` equal weights summing to 1 (none for `n == 0`).
pub fn get_equal_weights(num_variations: usize) -> Vec<f64> {
    // usize -> f64 is exact for any realistic number of variants.
    #[allow(clippy::cast_precision_loss)]
    let w = 1.0 / num_variations as f64;
    vec![w; num_variations]
}

/// Why a set of weights was replaced with equal weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightProblem {
    /// The weights array does not have one entry per variant.
    WrongLength,
    /// The weights do not sum to 1 (within 0.99..=1.01).
    BadSum,
    /// A weight is negative, NaN or infinite.
    NotFinitePositive,
}

impl WeightProblem {
    /// A human-readable description.
    pub fn as_str(self) -> &'static str {
        match self {
            WeightProblem::WrongLength => "weights must have one entry per variant",
            WeightProblem::BadSum => "weights must add up to 1",
            WeightProblem::NotFinitePositive => "weights must be finite and non-negative",
        }
    }
}

/// Checks weights the way GrowthBook does (length, sum within 0.99..=1.01),
/// plus a check for negative or non-finite entries, which GrowthBook would
/// turn into overlapping ranges.
pub fn check_weights(num_variations: usize, weights: &[f64]) -> Result<(), WeightProblem> {
    if weights.len() != num_variations {
        return Err(WeightProblem::WrongLength);
    }
    if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
        return Err(WeightProblem::NotFinitePositive);
    }
    let total: f64 = weights.iter().sum();
    if !(MIN_WEIGHT_SUM..=MAX_WEIGHT_SUM).contains(&total) {
        return Err(WeightProblem::BadSum);
    }
    Ok(())
}

/// Clamps coverage to `[0, 1]`; NaN counts as 0 (nobody is included).
pub fn clamp_coverage(coverage: f64) -> f64 {
    if coverage.is_nan() {
        0.0
    } else {
        coverage.clamp(0.0, 1.0)
    }
}

/// GrowthBook's `getBucketRanges`: one range per variant. Coverage is
/// clamped to `[0, 1]`; missing or invalid weights become equal weights.
pub fn get_bucket_ranges(
    num_variations: usize,
    coverage: f64,
    weights: Option<&[f64]>,
) -> Vec<BucketRange> {
    let coverage = clamp_coverage(coverage);
    let equal;
    let weights = match weights {
        Some(w) if check_weights(num_variations, w).is_ok() => w,
        _ => {
            equal = get_equal_weights(num_variations);
            &equal[..]
        }
    };
    let mut cumulative = 0.0;
    weights
        .iter()
        .map(|w| {
            let start = cumulative;
            cumulative += w;
            [start, start + coverage * w]
        })
        .collect()
}

/// Whether `n` lies in `[start, end)`.
#[inline]
pub fn in_range(n: f64, range: BucketRange) -> bool {
    n >= range[0] && n < range[1]
}

/// GrowthBook's `chooseVariation`: the index of the first range containing
/// `n`, or `None` (GrowthBook's -1) when `n` falls outside every range.
#[inline]
pub fn choose_variation(n: f64, ranges: &[BucketRange]) -> Option<usize> {
    ranges.iter().position(|r| in_range(n, *r))
}

/// A bucket range in integer hash buckets: `[lo, hi)` such that for every
/// bucket `b`, `b / scale` lies in the float range exactly when
/// `lo <= b < hi`. Computed with the same float operations as the hash, so
/// the integer test is exact, and it saves a division per evaluation.
pub(crate) fn integer_range(range: BucketRange, scale: u32) -> [u32; 2] {
    let value = |b: u32| f64::from(b) / f64::from(scale);
    // `b / scale` grows with `b`, so both predicates flip once.
    let first = |pred: &dyn Fn(f64) -> bool| -> u32 {
        let (mut lo, mut hi) = (0u32, scale + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(value(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    };
    let lo = first(&|v| v < range[0]);
    let hi = first(&|v| v < range[1]);
    [lo, hi.max(lo)]
}

/// [`choose_variation`] on integer buckets (see [`integer_range`]).
#[inline]
pub(crate) fn choose_bucket(bucket: u32, ranges: &[[u32; 2]]) -> Option<usize> {
    ranges.iter().position(|r| bucket >= r[0] && bucket < r[1])
}

/// GrowthBook's `inNamespace`: whether the unit falls in `[lo, hi)` of the
/// namespace `name`, hashed with version 1 and the seed `"__" + name`.
pub fn in_namespace(unit_id: &str, name: &str, range: BucketRange) -> bool {
    let n = hash::finish_v1(hash::Fnv1a32::new().str(unit_id).str("__").str(name));
    in_range(n, range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_scales_in_place() {
        let r = get_bucket_ranges(3, 0.2, Some(&[0.2, 0.3, 0.5]));
        assert_eq!(r.len(), 3);
        assert!((r[1][0] - 0.2).abs() < 1e-12 && (r[1][1] - 0.26).abs() < 1e-12);
    }

    #[test]
    fn invalid_weights_fall_back() {
        assert_eq!(
            check_weights(2, &[0.5, f64::NAN]),
            Err(WeightProblem::NotFinitePositive)
        );
        assert_eq!(check_weights(2, &[0.5]), Err(WeightProblem::WrongLength));
        assert_eq!(check_weights(2, &[0.7, 0.6]), Err(WeightProblem::BadSum));
        assert_eq!(
            get_bucket_ranges(2, 1.0, Some(&[-0.5, 1.5])),
            vec![[0.0, 0.5], [0.5, 1.0]]
        );
        assert_eq!(
            get_bucket_ranges(2, f64::NAN, None),
            vec![[0.0, 0.0], [0.5, 0.5]]
        );
    }

    #[test]
    fn integer_ranges_agree_with_float_ranges() {
        let ranges = get_bucket_ranges(3, 0.37, Some(&[0.2, 0.3, 0.5]));
        for scale in [1000u32, 10000] {
            let ints: Vec<[u32; 2]> = ranges.iter().map(|r| integer_range(*r, scale)).collect();
            for b in 0..scale {
                let n = f64::from(b) / f64::from(scale);
                assert_eq!(
                    choose_bucket(b, &ints),
                    choose_variation(n, &ranges),
                    "{b}/{scale}"
                );
            }
        }
    }

    #[test]
    fn namespace_uses_v1_hash() {
        let n = hash::hash("__ns", "user", 1).unwrap_or(-1.0);
        assert!(in_namespace("user", "ns", [n, n + 0.001]));
        assert!(!in_namespace("user", "ns", [n + 0.001, 1.0]));
    }
}
