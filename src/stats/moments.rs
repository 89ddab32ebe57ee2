//! Sufficient statistics of one arm for one metric: `n`, `Σx` and `Σx²` ([`Moments`]),
//! or those of per-user pairs plus `Σxy` ([`PairedMoments`], for ratio metrics and
//! CUPED), mergeable with `+`; the metric type that decides how a variance is derived
//! from them; and the [`Summary`] of an arm that every test is built on.

use std::iter::Sum;
use std::ops::{Add, AddAssign};

use super::Reason;

/// How a metric's per-user values are distributed, which decides its variance.
///
/// Sluice's `conversion` metrics are [`MetricType::Proportion`]; `mean` and `count`
/// metrics are [`MetricType::Mean`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// 0/1 per user; Bernoulli variance `p(1 − p)` (gbstats `ProportionStatistic`).
    Proportion,
    /// Any real value per user; sample variance with `n − 1` (gbstats
    /// `SampleMeanStatistic`).
    Mean,
}

/// Sufficient statistics of a sample: size, sum and sum of squares.
///
/// For a proportion, `sum_squares == sum` (each value is 0 or 1).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moments {
    /// Number of units (users).
    pub n: u64,
    /// Σ x over the units.
    pub sum: f64,
    /// Σ x² over the units.
    pub sum_squares: f64,
}

impl Moments {
    /// Moments with these sums.
    pub fn new(n: u64, sum: f64, sum_squares: f64) -> Self {
        Self {
            n,
            sum,
            sum_squares,
        }
    }

    /// Moments of `conversions` out of `n` 0/1 values.
    pub fn conversions(n: u64, conversions: u64) -> Self {
        let c = conversions as f64;
        Self::new(n, c, c)
    }

    /// Moments of a sample of values.
    pub fn from_values(values: &[f64]) -> Self {
        values.iter().fold(Self::default(), |m, &x| Self {
            n: m.n + 1,
            sum: m.sum + x,
            sum_squares: m.sum_squares + x * x,
        })
    }

    /// Sample mean `Σx / n`; `None` when `n == 0`.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// Variance of one unit's value under `metric`:
    /// - [`MetricType::Proportion`]: `p(1 − p)` with `p = Σx / n` (gbstats
    ///   `ProportionStatistic.variance`); `None` when `n == 0`;
    /// - [`MetricType::Mean`]: `(Σx² − (Σx)²/n) / (n − 1)` (gbstats
    ///   `SampleMeanStatistic.variance`); `None` when `n < 2`.
    ///
    /// A negative value caused by rounding in `Σx² − (Σx)²/n` is returned as 0.
    pub fn variance(&self, metric: MetricType) -> Option<f64> {
        let n = self.n as f64;
        let v = match metric {
            MetricType::Proportion => {
                let p = self.mean()?;
                p * (1.0 - p)
            }
            MetricType::Mean => {
                if self.n < 2 {
                    return None;
                }
                (self.sum_squares - self.sum * self.sum / n) / (n - 1.0)
            }
        };
        Some(v.max(0.0))
    }
}

impl Add for Moments {
    type Output = Moments;

    fn add(self, rhs: Moments) -> Moments {
        Moments {
            n: self.n + rhs.n,
            sum: self.sum + rhs.sum,
            sum_squares: self.sum_squares + rhs.sum_squares,
        }
    }
}

impl AddAssign for Moments {
    fn add_assign(&mut self, rhs: Moments) {
        *self = *self + rhs;
    }
}

impl Sum for Moments {
    fn sum<I: Iterator<Item = Moments>>(iter: I) -> Moments {
        iter.fold(Moments::default(), Add::add)
    }
}

/// One arm of a comparison: a metric's moments in one variant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arm {
    /// How the metric's variance is derived.
    pub metric: MetricType,
    /// The variant's sufficient statistics for the metric.
    pub moments: Moments,
}

impl Arm {
    /// An arm of `metric` with these moments.
    pub fn new(metric: MetricType, moments: Moments) -> Self {
        Self { metric, moments }
    }

    /// See [`Moments::mean`].
    pub fn mean(&self) -> Option<f64> {
        self.moments.mean()
    }

    /// See [`Moments::variance`].
    pub fn variance(&self) -> Option<f64> {
        self.moments.variance(self.metric)
    }

    /// Standard deviation of one unit's value (`√variance`).
    pub fn stddev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }

    /// [`Reason::InvalidInput`] for impossible moments: non-finite sums, `Σx² < 0`, or
    /// a proportion's conversions outside `[0, n]`.
    pub(super) fn validate(&self) -> Result<(), Reason> {
        let m = self.moments;
        let sums_ok = m.sum.is_finite() && m.sum_squares.is_finite() && m.sum_squares >= 0.0;
        let proportion_ok = match self.metric {
            MetricType::Proportion => m.sum >= 0.0 && m.sum <= m.n as f64,
            MetricType::Mean => true,
        };
        if sums_ok && proportion_ok {
            Ok(())
        } else {
            Err(Reason::InvalidInput)
        }
    }

    /// The arm as the tests see it: its mean and a unit's variance.
    pub(super) fn summary(&self) -> Result<Summary, Reason> {
        let mean = self.mean().ok_or(Reason::TooFewUnits)?;
        Ok(Summary {
            n: self.moments.n,
            mean,
            unadjusted_mean: mean,
            variance: self.variance().ok_or(Reason::TooFewUnits)?,
        })
    }
}

/// Sufficient statistics of per-user pairs `(x, y)`: size, both sums and sums of
/// squares, and the sum of products `Σxy` that gives their covariance.
///
/// A ratio metric pairs numerator `x` and denominator `y`; CUPED pairs the metric `x`
/// with its pre-exposure covariate `y`. One `n` for both, since both values belong to
/// the same users.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairedMoments {
    /// Number of units (users).
    pub n: u64,
    /// Σ x.
    pub sum_x: f64,
    /// Σ x².
    pub sum_squares_x: f64,
    /// Σ y.
    pub sum_y: f64,
    /// Σ y².
    pub sum_squares_y: f64,
    /// Σ x·y.
    pub sum_products: f64,
}

impl PairedMoments {
    /// Paired moments with these sums.
    pub fn new(
        n: u64,
        sum_x: f64,
        sum_squares_x: f64,
        sum_y: f64,
        sum_squares_y: f64,
        sum_products: f64,
    ) -> Self {
        Self {
            n,
            sum_x,
            sum_squares_x,
            sum_y,
            sum_squares_y,
            sum_products,
        }
    }

    /// Paired moments of a sample of `(x, y)` pairs.
    pub fn from_pairs(pairs: &[(f64, f64)]) -> Self {
        pairs.iter().fold(Self::default(), |m, &(x, y)| {
            m + Self::new(1, x, x * x, y, y * y, x * y)
        })
    }

    /// The moments of `x` alone.
    pub fn x(&self) -> Moments {
        Moments::new(self.n, self.sum_x, self.sum_squares_x)
    }

    /// The moments of `y` alone.
    pub fn y(&self) -> Moments {
        Moments::new(self.n, self.sum_y, self.sum_squares_y)
    }

    /// Sample covariance `(Σxy − Σx·Σy/n) / (n − 1)` (gbstats `RatioStatistic.covariance`
    /// and `RegressionAdjustedStatistic.covariance`); `None` when `n < 2`.
    pub fn covariance(&self) -> Option<f64> {
        let n = self.n as f64;
        (self.n >= 2).then(|| (self.sum_products - self.sum_x * self.sum_y / n) / (n - 1.0))
    }

    /// Both sides' means and per-unit variances, each by its metric type, and their
    /// covariance: what the ratio's and CUPED's variances are built from.
    /// [`Reason::TooFewUnits`] when any is undefined.
    pub(super) fn describe(
        &self,
        x_metric: MetricType,
        y_metric: MetricType,
    ) -> Result<PairedDescription, Reason> {
        let x = Arm::new(x_metric, self.x());
        let y = Arm::new(y_metric, self.y());
        Ok(PairedDescription {
            mean_x: x.mean().ok_or(Reason::TooFewUnits)?,
            mean_y: y.mean().ok_or(Reason::TooFewUnits)?,
            variance_x: x.variance().ok_or(Reason::TooFewUnits)?,
            variance_y: y.variance().ok_or(Reason::TooFewUnits)?,
            covariance: self.covariance().ok_or(Reason::TooFewUnits)?,
        })
    }

    /// [`Reason::InvalidInput`] unless both sides are valid moments of `x_metric` and
    /// `y_metric` ([`Arm::validate`]) and `Σxy` is finite.
    pub(super) fn validate(
        &self,
        x_metric: MetricType,
        y_metric: MetricType,
    ) -> Result<(), Reason> {
        Arm::new(x_metric, self.x()).validate()?;
        Arm::new(y_metric, self.y()).validate()?;
        if self.sum_products.is_finite() {
            Ok(())
        } else {
            Err(Reason::InvalidInput)
        }
    }
}

/// Means, per-unit variances and covariance of a pair of metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct PairedDescription {
    pub(super) mean_x: f64,
    pub(super) mean_y: f64,
    pub(super) variance_x: f64,
    pub(super) variance_y: f64,
    pub(super) covariance: f64,
}

impl Add for PairedMoments {
    type Output = PairedMoments;

    fn add(self, rhs: PairedMoments) -> PairedMoments {
        PairedMoments {
            n: self.n + rhs.n,
            sum_x: self.sum_x + rhs.sum_x,
            sum_squares_x: self.sum_squares_x + rhs.sum_squares_x,
            sum_y: self.sum_y + rhs.sum_y,
            sum_squares_y: self.sum_squares_y + rhs.sum_squares_y,
            sum_products: self.sum_products + rhs.sum_products,
        }
    }
}

impl AddAssign for PairedMoments {
    fn add_assign(&mut self, rhs: PairedMoments) {
        *self = *self + rhs;
    }
}

impl Sum for PairedMoments {
    fn sum<I: Iterator<Item = PairedMoments>>(iter: I) -> PairedMoments {
        iter.fold(PairedMoments::default(), Add::add)
    }
}

/// One arm of a comparison as the tests see it, whatever kind of metric it is: every
/// effect, interval and p-value is computed from two of these (see
/// `frequentist::estimate_from`). Built only by the kinds' `summary` functions, after
/// they have checked `n ≥ 2`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Summary {
    /// Number of units.
    pub(super) n: u64,
    /// The mean the effect is measured on: `Σx/n`, a ratio `Σx/Σy`, or CUPED's
    /// adjusted `x̄ − θ·ȳ`.
    pub(super) mean: f64,
    /// The mean a relative effect divides by, and the delta method's means: the same
    /// as `mean` except under CUPED, where it is `x̄` (gbstats `unadjusted_mean`).
    pub(super) unadjusted_mean: f64,
    /// Variance of one unit's value (the effect's variance divides it by `n`).
    pub(super) variance: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_merges_like_concatenation() {
        let a = Moments::from_values(&[1.0, 2.0, 3.0]);
        let b = Moments::from_values(&[4.0, 10.0]);
        let all = Moments::from_values(&[1.0, 2.0, 3.0, 4.0, 10.0]);
        assert_eq!(a + b, all);
        assert_eq!([a, b].into_iter().sum::<Moments>(), all);
        let mut c = a;
        c += b;
        assert_eq!(c, all);
    }

    #[test]
    fn sample_variance_uses_n_minus_one() {
        let m = Moments::from_values(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m.mean(), Some(2.5));
        let v = m.variance(MetricType::Mean).unwrap();
        assert!((v - 5.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn proportion_variance_is_bernoulli() {
        let m = Moments::conversions(10, 3);
        let v = m.variance(MetricType::Proportion).unwrap();
        assert!((v - 0.21).abs() < 1e-15);
    }

    #[test]
    fn too_small_samples_have_no_variance() {
        assert_eq!(Moments::default().mean(), None);
        assert_eq!(Moments::default().variance(MetricType::Proportion), None);
        assert_eq!(
            Moments::from_values(&[5.0]).variance(MetricType::Mean),
            None
        );
    }

    #[test]
    fn rounding_never_gives_negative_variance() {
        let m = Moments::from_values(&[0.1; 7]);
        assert!(m.variance(MetricType::Mean).unwrap() >= 0.0);
    }

    #[test]
    fn paired_moments_merge_like_concatenation() {
        let a = PairedMoments::from_pairs(&[(1.0, 2.0), (3.0, 0.0)]);
        let b = PairedMoments::from_pairs(&[(4.0, 1.0)]);
        let all = PairedMoments::from_pairs(&[(1.0, 2.0), (3.0, 0.0), (4.0, 1.0)]);
        assert_eq!(a + b, all);
        assert_eq!([a, b].into_iter().sum::<PairedMoments>(), all);
        let mut c = a;
        c += b;
        assert_eq!(c, all);
        assert_eq!(all.x(), Moments::from_values(&[1.0, 3.0, 4.0]));
        assert_eq!(all.y(), Moments::from_values(&[2.0, 0.0, 1.0]));
    }

    #[test]
    fn covariance_uses_n_minus_one() {
        // x̄ = 8/3, ȳ = 1: Σ(x − x̄)(y − ȳ) = (−5/3)(1) + (1/3)(−1) + (4/3)(0) = −2.
        let m = PairedMoments::from_pairs(&[(1.0, 2.0), (3.0, 0.0), (4.0, 1.0)]);
        assert!((m.covariance().unwrap() - -1.0).abs() < 1e-15);
        assert_eq!(PairedMoments::from_pairs(&[(1.0, 2.0)]).covariance(), None);
    }
}
