//! Staged rollouts: a list of stages (coverage, minimum hold). A rollout advances to
//! the next stage only when the hold has passed, every guardrail has its minimum
//! sample and is green, the sample ratio is fine, and the breakers have not frozen
//! the ramp. The decision is pure; the guard loop applies it.

use serde::Serialize;

use crate::domain::{Experiment, Millis, Status};
use crate::guard::{GuardStatus, GuardrailVerdict};

/// Whether a staged rollout may move on, and why (or why not).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageDecision {
    pub advance: bool,
    pub reason: String,
    /// When the current stage's hold ends (RFC 3339), if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_until: Option<String>,
}

impl StageDecision {
    fn hold(reason: impl Into<String>, hold_until: Option<String>) -> Self {
        Self {
            advance: false,
            reason: reason.into(),
            hold_until,
        }
    }
}

pub fn next_stage(
    experiment: &Experiment,
    verdicts: &[GuardrailVerdict],
    srm_ok: bool,
    now: Millis,
) -> StageDecision {
    let Some(rollout) = &experiment.rollout else {
        return StageDecision::hold("no staged rollout", None);
    };
    let stages = &experiment.spec.stages;
    let hold_ms = stages
        .get(rollout.stage)
        .and_then(|s| s.hold_seconds)
        .map_or(0, |s| (s as i64).saturating_mul(1000));
    let until = rollout.since.saturating_add(hold_ms);
    let hold_until = Some(crate::domain::format_millis(until));
    let hold = |reason: &str| StageDecision::hold(reason, hold_until.clone());
    if experiment.status != Status::Running {
        return hold("the experiment is not running");
    }
    if rollout.stage + 1 >= stages.len() {
        return hold("at the last stage");
    }
    if experiment.guard.ramp_frozen {
        return hold("the ramp is frozen by the breakers");
    }
    if now < until {
        return hold("the stage's hold has not passed");
    }
    if !srm_ok {
        return hold("sample ratio mismatch");
    }
    let short = experiment.spec.guardrails.iter().any(|g| {
        verdicts
            .iter()
            .any(|v| v.metric == g.metric && v.control_users.min(v.treatment_users) < g.min_users)
    });
    if short {
        return hold("a guardrail lacks its minimum users");
    }
    if verdicts.iter().any(|v| v.status != GuardStatus::Green) {
        return hold("a guardrail is not green");
    }
    StageDecision {
        advance: true,
        reason: format!(
            "advancing to stage {} of {}",
            rollout.stage + 2,
            stages.len()
        ),
        hold_until,
    }
}
