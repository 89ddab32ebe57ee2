//! Planning an experiment: the users needed for an effect, or the effect a number
//! of users can detect. The one place the CLI (`sluice power`), the API
//! (`GET /api/v1/power`) and the dashboard's calculator ask.

use serde::{Deserialize, Serialize};

use crate::domain::ValidationError;
use crate::stats::{self, Baseline};

/// The question. `baseline` is a conversion rate, or a mean when `variance` is
/// given; `mde` asks for the users needed, `users` (per variant) for the smallest
/// detectable effect: exactly one of the two.
#[derive(Debug, Clone, Deserialize)]
pub struct PowerQuery {
    pub baseline: f64,
    #[serde(default)]
    pub variance: Option<f64>,
    #[serde(default)]
    pub mde: Option<f64>,
    #[serde(default)]
    pub users: Option<f64>,
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default = "default_power")]
    pub power: f64,
    #[serde(default = "default_variants")]
    pub variants: usize,
}

fn default_alpha() -> f64 {
    0.05
}
fn default_power() -> f64 {
    0.8
}
fn default_variants() -> usize {
    2
}

/// The answer: users per variant and the relative effect they detect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PowerPlan {
    pub users_per_variant: f64,
    /// Users over all variants, when the question was the sample size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_users: Option<f64>,
    pub mde: f64,
    pub alpha: f64,
    pub power: f64,
    pub variants: usize,
}

/// Answers the question, or says which part of it is wrong.
pub fn plan(q: &PowerQuery) -> Result<PowerPlan, ValidationError> {
    let baseline = match q.variance {
        Some(variance) => Baseline {
            mean: q.baseline,
            variance,
        },
        None => Baseline::proportion(q.baseline),
    };
    let invalid = |r: stats::Reason| ValidationError::single("query", r.to_string());
    let answer = |users_per_variant, total_users, mde| PowerPlan {
        users_per_variant,
        total_users,
        mde,
        alpha: q.alpha,
        power: q.power,
        variants: q.variants,
    };
    match (q.mde, q.users) {
        (Some(mde), None) => {
            let n = stats::sample_size_per_variant(baseline, mde, q.alpha, q.power, q.variants)
                .map_err(invalid)?
                .ceil();
            Ok(answer(n, Some(n * q.variants as f64), mde))
        }
        (None, Some(users)) => {
            let mde =
                stats::minimum_detectable_effect(users, baseline, q.alpha, q.power, q.variants)
                    .map_err(invalid)?;
            Ok(answer(users, None, mde))
        }
        _ => Err(ValidationError::single(
            "mde",
            "give exactly one of mde or users",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(mde: Option<f64>, users: Option<f64>) -> PowerQuery {
        PowerQuery {
            baseline: 0.1,
            variance: None,
            mde,
            users,
            alpha: 0.05,
            power: 0.8,
            variants: 2,
        }
    }

    #[test]
    fn sample_size_and_effect_answer_each_other() {
        let sized = plan(&query(Some(0.05), None)).unwrap();
        assert_eq!(sized.total_users, Some(sized.users_per_variant * 2.0));
        let effect = plan(&query(None, Some(sized.users_per_variant))).unwrap();
        assert_eq!(effect.total_users, None);
        assert!(effect.mde <= 0.05 && effect.mde > 0.0499, "{}", effect.mde);
    }

    #[test]
    fn exactly_one_of_mde_or_users() {
        for q in [query(None, None), query(Some(0.05), Some(1000.0))] {
            let err = plan(&q).unwrap_err();
            assert_eq!(err.problems[0].field, "mde");
        }
    }
}
