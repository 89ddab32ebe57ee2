//! A guardrail's status from per-variant statistics.
//!
//! - red: the sequential one-sided test says the treatment is worse (p < alpha), the
//!   observed drop is at least `max_drop`, and every arm has `min_users`;
//! - yellow: an observed drop past `max_drop` that is not significant yet, significant
//!   harm smaller than `max_drop` (or before `min_users`), or a sample ratio mismatch;
//! - green: no evidence of harm.

use serde::{Deserialize, Serialize};

use crate::domain::experiment::Guardrail;
use crate::stats::{sequential_one_sided_cuped_test, sequential_one_sided_ratio_test};
use crate::stats::{sequential_one_sided_test, Arm, CupedArm, Difference, OneSided};
use crate::stats::{RatioArm, Settings, Side};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardStatus {
    Green,
    Yellow,
    Red,
}

impl GuardStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GuardStatus::Green => "green",
            GuardStatus::Yellow => "yellow",
            GuardStatus::Red => "red",
        }
    }
}

/// The decision for one treatment against the control, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardrailVerdict {
    pub metric: String,
    pub variant: String,
    pub status: GuardStatus,
    /// The relative change in the harmful direction (0.24 = 24% worse), if defined.
    pub observed_drop: Option<f64>,
    /// Always-valid one-sided p-value for "the treatment is worse".
    pub p_value: Option<f64>,
    pub control_users: u64,
    pub treatment_users: u64,
    pub evidence: String,
}

/// What a guardrail is judged on: the control and the treatment, adjusted by their
/// pre-exposure covariate when the experiment has one (CUPED).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GuardArms {
    Plain {
        control: Arm,
        treatment: Arm,
    },
    Cuped {
        control: CupedArm,
        treatment: CupedArm,
    },
    Ratio {
        control: RatioArm,
        treatment: RatioArm,
    },
}

impl GuardArms {
    /// The always-valid one-sided test of the relative effect on the harmful side.
    fn test(self, harmful: Side, settings: &Settings) -> OneSided {
        match self {
            GuardArms::Plain { control, treatment } => sequential_one_sided_test(
                control,
                treatment,
                Difference::Relative,
                harmful,
                settings,
            ),
            GuardArms::Cuped { control, treatment } => sequential_one_sided_cuped_test(
                control,
                treatment,
                Difference::Relative,
                harmful,
                settings,
            ),
            GuardArms::Ratio { control, treatment } => sequential_one_sided_ratio_test(
                control,
                treatment,
                Difference::Relative,
                harmful,
                settings,
            ),
        }
    }

    fn users(self) -> (u64, u64) {
        match self {
            GuardArms::Plain { control, treatment } => (control.moments.n, treatment.moments.n),
            GuardArms::Cuped { control, treatment } => (control.moments.n, treatment.moments.n),
            GuardArms::Ratio { control, treatment } => (control.moments.n, treatment.moments.n),
        }
    }
}

/// Judges one treatment arm against the control for a guardrail.
pub fn judge(
    guardrail: &Guardrail,
    variant: &str,
    arms: GuardArms,
    settings: &Settings,
    srm_ok: bool,
) -> GuardrailVerdict {
    let harmful = if settings.higher_is_better {
        Side::TreatmentLesser
    } else {
        Side::TreatmentGreater
    };
    let test = arms.test(harmful, settings);
    let observed_drop = test.effect.map(|effect| {
        if settings.higher_is_better {
            -effect
        } else {
            effect
        }
    });
    let significant = test.p_value.is_some_and(|p| p < settings.alpha);
    let past_threshold = observed_drop.is_some_and(|d| d > 0.0 && d >= guardrail.max_drop);
    let (control_users, treatment_users) = arms.users();
    let enough_users = control_users.min(treatment_users) >= guardrail.min_users;
    let status = if significant && past_threshold && enough_users {
        GuardStatus::Red
    } else if past_threshold || significant || !srm_ok {
        GuardStatus::Yellow
    } else {
        GuardStatus::Green
    };
    let evidence = describe(
        guardrail,
        variant,
        arms,
        (observed_drop, test.p_value),
        settings.alpha,
        srm_ok,
    );
    GuardrailVerdict {
        metric: guardrail.metric.clone(),
        variant: variant.to_owned(),
        status,
        observed_drop,
        p_value: test.p_value,
        control_users,
        treatment_users,
        evidence,
    }
}

fn describe(
    guardrail: &Guardrail,
    variant: &str,
    arms: GuardArms,
    (drop, p_value): (Option<f64>, Option<f64>),
    alpha: f64,
    srm_ok: bool,
) -> String {
    let adjusted = match arms {
        GuardArms::Plain { .. } | GuardArms::Ratio { .. } => "",
        GuardArms::Cuped { .. } => " (CUPED-adjusted)",
    };
    let change = drop.map_or("change undefined".to_owned(), |d| {
        format!("{:+.1}% vs control{adjusted}", -d * 100.0)
    });
    let (control_users, treatment_users) = arms.users();
    let p = p_value.map_or("p undefined".to_owned(), |p| {
        format!("always-valid one-sided p = {p:.4}")
    });
    let srm = if srm_ok {
        ""
    } else {
        "; sample ratio mismatch"
    };
    format!(
        "{variant}: {} {change} (max drop {:.1}%), {p} (alpha {alpha}), users {control_users}/{treatment_users} (min {}){srm}",
        guardrail.metric,
        guardrail.max_drop * 100.0,
        guardrail.min_users
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::experiment::GuardrailAction;
    use crate::stats::{MetricType, Moments};

    fn guardrail(max_drop: f64, min_users: u64) -> Guardrail {
        Guardrail {
            metric: "purchase".into(),
            max_drop,
            min_users,
            action: GuardrailAction::Rollback,
        }
    }

    fn conversions(n: u64, converted: u64) -> Arm {
        Arm::new(MetricType::Proportion, Moments::conversions(n, converted))
    }

    fn plain(control: Arm, treatment: Arm) -> GuardArms {
        GuardArms::Plain { control, treatment }
    }

    #[test]
    fn a_large_significant_drop_with_enough_users_is_red() {
        let verdict = judge(
            &guardrail(0.2, 500),
            "premium",
            plain(conversions(20_000, 2_000), conversions(20_000, 1_400)),
            &Settings::default(),
            true,
        );
        assert_eq!(verdict.status, GuardStatus::Red, "{}", verdict.evidence);
        assert!((verdict.observed_drop.unwrap() - 0.3).abs() < 1e-12);
        assert!(verdict.evidence.contains("-30.0% vs control"));
    }

    #[test]
    fn the_same_drop_before_min_users_is_yellow() {
        let verdict = judge(
            &guardrail(0.2, 50_000),
            "premium",
            plain(conversions(20_000, 2_000), conversions(20_000, 1_400)),
            &Settings::default(),
            true,
        );
        assert_eq!(verdict.status, GuardStatus::Yellow);
    }

    #[test]
    fn a_noisy_drop_is_yellow_and_no_drop_is_green() {
        let noisy = judge(
            &guardrail(0.2, 10),
            "b",
            plain(conversions(100, 10), conversions(100, 7)),
            &Settings::default(),
            true,
        );
        assert_eq!(noisy.status, GuardStatus::Yellow);
        let flat = judge(
            &guardrail(0.2, 10),
            "b",
            plain(conversions(10_000, 1_000), conversions(10_000, 1_010)),
            &Settings::default(),
            true,
        );
        assert_eq!(flat.status, GuardStatus::Green);
        let srm = judge(
            &guardrail(0.2, 10),
            "b",
            plain(conversions(10_000, 1_000), conversions(10_000, 1_010)),
            &Settings::default(),
            false,
        );
        assert_eq!(srm.status, GuardStatus::Yellow);
    }
}
