//! Circuit breakers. [`status`] judges a guardrail from the data (green, yellow,
//! red) with an always-valid one-sided test, so checking as often as we like does
//! not inflate false alarms.

pub mod simulate;
pub mod status;

pub use status::{judge, GuardArms, GuardStatus, GuardrailVerdict};

use crate::domain::experiment::{Guardrail, GuardrailAction};

/// The strongest action among the guardrails that are red, and their verdicts.
pub fn strongest_action<'v>(
    guardrails: &[Guardrail],
    verdicts: &'v [GuardrailVerdict],
) -> Option<(GuardrailAction, Vec<&'v GuardrailVerdict>)> {
    let red: Vec<&GuardrailVerdict> = verdicts
        .iter()
        .filter(|v| v.status == GuardStatus::Red)
        .collect();
    let action = red
        .iter()
        .filter_map(|v| guardrails.iter().find(|g| g.metric == v.metric))
        .map(|g| g.action)
        .max_by_key(|action| severity(*action))?;
    Some((action, red))
}

/// The ladder: alert < pause < adjust < rollback.
fn severity(action: GuardrailAction) -> u8 {
    match action {
        GuardrailAction::Alert => 0,
        GuardrailAction::Pause => 1,
        GuardrailAction::Adjust => 2,
        GuardrailAction::Rollback => 3,
    }
}
