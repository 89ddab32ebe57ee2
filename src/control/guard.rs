//! The guard loop: runs the breakers over running experiments and acts on red
//! guardrails — alert, pause (freeze the ramp), adjust (coverage back one stage),
//! rollback (everyone gets control). Every action is an audit entry by `guard` with
//! the verdicts it decided on, and a new ruleset version pushed to SDKs. One breach
//! is acted on once: the experiment remembers it until every guardrail is green.
//! When the breakers have nothing to do, the same check advances a staged rollout
//! whose stage may move on (see [`crate::rollout`]), as `scheduler`.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use super::{experiment_report, Control, ControlError, ReportOptions};
use crate::domain::experiment::{GuardState, GuardrailAction};
use crate::domain::{now_millis, Experiment, LifecycleAction, Status};
use crate::guard::{strongest_action, GuardStatus, GuardrailVerdict};
use crate::rollout::{next_stage, StageDecision};

/// The audit log's name for the breakers.
pub const GUARD_ACTOR: &str = "guard";
/// The audit log's name for the staged-rollout scheduler.
pub const SCHEDULER_ACTOR: &str = "scheduler";

/// What one check found and did.
#[derive(Debug, Clone, Serialize)]
pub struct GuardDecision {
    pub experiment: String,
    pub status: Status,
    pub health: GuardStatus,
    /// `rollback`, `adjust`, `pause`, `alert`, `warn` (a guardrail turned yellow),
    /// `freeze` (sample ratio mismatch), `clear` (the breach is over), `advance`
    /// (the staged rollout moved on) or `none`.
    pub action: &'static str,
    pub reason: String,
    pub verdicts: Vec<GuardrailVerdict>,
    pub coverage: f64,
    /// The staged rollout: whether it advanced, or why it holds.
    pub stage: StageDecision,
}

impl Control {
    /// Runs the breakers for one experiment now.
    pub async fn guard_check(&self, key: &str) -> Result<GuardDecision, ControlError> {
        let experiment = self.get_experiment(key).await?;
        let report = experiment_report(self.store(), key, ReportOptions::default()).await?;
        let mut decision = GuardDecision {
            experiment: key.to_owned(),
            status: experiment.status,
            health: report.health,
            action: "none",
            reason: String::new(),
            stage: next_stage(&experiment, &report.guardrails, report.srm.ok, now_millis()),
            verdicts: report.guardrails,
            coverage: experiment.spec.coverage,
        };
        if experiment.status != Status::Running {
            decision.reason = format!("the experiment is {}", experiment.status.as_str());
            return Ok(decision);
        }
        let Some(plan) = plan(&experiment, &decision.verdicts, report.srm.ok) else {
            decision.reason = "no action needed".to_owned();
            if decision.stage.advance {
                let evidence =
                    serde_json::json!({"verdicts": decision.verdicts, "srm": report.srm});
                let after = self.advance(experiment, evidence).await?;
                decision.action = "advance";
                decision.coverage = after.spec.coverage;
            }
            return Ok(decision);
        };
        let evidence = serde_json::json!({
            "verdicts": decision.verdicts,
            "srm": report.srm,
            "reason": plan.reason,
        });
        let after = self.save_guard_action(experiment, &plan, evidence).await?;
        decision.action = plan.name;
        decision.reason = plan.reason;
        decision.status = after.status;
        decision.coverage = after.spec.coverage;
        Ok(decision)
    }

    async fn advance(
        &self,
        before: Experiment,
        evidence: serde_json::Value,
    ) -> Result<Experiment, ControlError> {
        let mut after = before.clone();
        after.advance_stage(now_millis());
        let after = self
            .save(before, after, "advance", SCHEDULER_ACTOR, Some(evidence))
            .await?;
        tracing::info!(
            experiment = after.key(),
            coverage = after.spec.coverage,
            "staged rollout advanced"
        );
        Ok(after)
    }

    async fn save_guard_action(
        &self,
        before: Experiment,
        plan: &Plan,
        evidence: serde_json::Value,
    ) -> Result<Experiment, ControlError> {
        let now = now_millis();
        let mut after = before.clone();
        match plan.action {
            Some(GuardrailAction::Rollback) => after.apply(&LifecycleAction::Rollback, now)?,
            Some(GuardrailAction::Adjust) => {
                after.step_back_coverage(now);
            }
            _ => {}
        }
        after.set_guard(plan.guard.clone(), now);
        let action = format!("guard_{}", plan.name);
        let after = self
            .save(before, after, &action, GUARD_ACTOR, Some(evidence))
            .await?;
        tracing::warn!(experiment = after.key(), action = plan.name, reason = %plan.reason, "guard acted");
        Ok(after)
    }
}

/// What the guard is about to do.
struct Plan {
    name: &'static str,
    action: Option<GuardrailAction>,
    guard: GuardState,
    reason: String,
}

/// Decides from the verdicts and the experiment's memory of earlier breaches.
fn plan(experiment: &Experiment, verdicts: &[GuardrailVerdict], srm_ok: bool) -> Option<Plan> {
    let state = &experiment.guard;
    if let Some((action, red)) = strongest_action(&experiment.spec.guardrails, verdicts) {
        if state.tripped {
            return None;
        }
        let metrics: Vec<String> = red
            .iter()
            .map(|v| format!("{} ({})", v.metric, v.variant))
            .collect();
        return Some(Plan {
            name: action.as_str(),
            action: Some(action),
            guard: GuardState {
                tripped: true,
                ramp_frozen: state.ramp_frozen || action != GuardrailAction::Alert,
                warned: state.warned,
            },
            reason: format!("red guardrail: {}", metrics.join(", ")),
        });
    }
    if !srm_ok && !state.ramp_frozen {
        return Some(Plan {
            name: "freeze",
            action: None,
            guard: GuardState {
                ramp_frozen: true,
                ..state.clone()
            },
            reason: "sample ratio mismatch: the ramp is frozen until it is explained".to_owned(),
        });
    }
    let yellow: Vec<String> = verdicts
        .iter()
        .filter(|v| v.status == GuardStatus::Yellow)
        .map(|v| format!("{} ({})", v.metric, v.variant))
        .collect();
    if !yellow.is_empty() && !state.warned && !state.tripped {
        return Some(Plan {
            name: "warn",
            action: None,
            guard: GuardState {
                warned: true,
                ..state.clone()
            },
            reason: format!("yellow guardrail: {}", yellow.join(", ")),
        });
    }
    let all_green = verdicts.iter().all(|v| v.status == GuardStatus::Green);
    ((state.tripped || state.warned) && all_green && srm_ok).then(|| Plan {
        name: "clear",
        action: None,
        guard: GuardState {
            tripped: false,
            warned: false,
            ramp_frozen: state.ramp_frozen,
        },
        reason: "every guardrail is green again".to_owned(),
    })
}

/// Checks every running experiment every `interval` until `shutdown` flips.
pub async fn run_loop(
    control: Arc<Control>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => check_all(&control).await,
            _ = crate::control::stopping(&mut shutdown) => return,
        }
    }
}

async fn check_all(control: &Control) {
    if !control.leadership().check(control.store()).await {
        return;
    }
    let experiments = match control.store().list_experiments().await {
        Ok(experiments) => experiments,
        Err(err) => {
            tracing::error!(error = %err, "guard could not list experiments");
            return;
        }
    };
    let watched = |e: &&Experiment| {
        e.status == Status::Running && (!e.spec.guardrails.is_empty() || e.rollout.is_some())
    };
    for experiment in experiments.iter().filter(watched) {
        if let Err(err) = control.guard_check(experiment.key()).await {
            tracing::error!(experiment = experiment.key(), error = %err, "guard check failed");
        }
    }
}
