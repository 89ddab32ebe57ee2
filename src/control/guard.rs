//! The guard loop: runs the breakers over running experiments and acts on red
//! guardrails — alert, pause (freeze the ramp), adjust (coverage back one stage),
//! rollback (everyone gets control). Every action is an audit entry by `guard` with
//! the verdicts it decided on, and a new ruleset version pushed to SDKs. One breach
//! is acted on once: the experiment remembers it until every guardrail is green.
//! When the breakers have nothing to do, the same check advances a staged rollout
//! whose stage may move on (see [`crate::rollout`]), as `scheduler`; each pass
//! also sends the reports that are due (see [`super::report_ready`]).
//!
//! The loop is supervised: a check that fails or panics is logged and counted and
//! the others still run; a loop that ends is started again. [`GuardHealth`] says
//! when the last pass completed, for `/healthz` and `/metrics`.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use serde::{Deserialize, Serialize, Serializer};
use tokio::sync::watch;

use super::{experiment_report, Control, ControlError, ReportOptions};
use crate::domain::experiment::{GuardState, GuardrailAction};
use crate::domain::{
    now_millis, Actor, AuditAction, Experiment, GuardAction, LifecycleAction, Millis, Status,
};
use crate::guard::{strongest_action, GuardStatus, GuardrailVerdict};
use crate::report::{BackfillReport, SrmBlock};
use crate::rollout::{next_stage, StageDecision};

/// A frozen ramp thaws once its cause (a sample ratio mismatch, a breach) has
/// been clear for this many consecutive checks, so one transient blip does not
/// hold a staged rollout for ever; an editor may also resume it at once.
pub const UNFREEZE_AFTER_CLEAN_CHECKS: u32 = 3;

/// How long a supervisor waits before starting a loop that ended again, so a loop
/// that fails at once does not spin.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// What one check found and did.
#[derive(Debug, Clone, Serialize)]
pub struct GuardDecision {
    pub experiment: String,
    pub status: Status,
    pub health: GuardStatus,
    /// `rollback`, `adjust`, `pause`, `alert`, `warn` (a guardrail turned yellow),
    /// `freeze` (sample ratio mismatch), `clear` (the breach is over), `unfreeze`
    /// (a frozen ramp's cause stayed clear), `advance` (the staged rollout moved
    /// on) or `none`.
    #[serde(serialize_with = "decision_action")]
    pub action: Option<AuditAction>,
    pub reason: String,
    pub verdicts: Vec<GuardrailVerdict>,
    pub coverage: f64,
    /// The staged rollout: whether it advanced, or why it holds.
    pub stage: StageDecision,
}

/// The numbers a guard or scheduler action decided on: its audit entry's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardEvidence {
    pub verdicts: Vec<GuardrailVerdict>,
    pub srm: SrmBlock,
    /// Why the guard acted (a stage advance needs no reason beyond the numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl GuardEvidence {
    fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl Control {
    /// Runs the breakers for one experiment now.
    pub async fn guard_check(&self, key: &str) -> Result<GuardDecision, ControlError> {
        let experiment = self.get_experiment(key).await?;
        let report = experiment_report(self.store(), key, ReportOptions::default()).await?;
        let rebuilding = rebuilding_guardrails(&experiment, report.backfill.as_ref());
        let mut decision = GuardDecision {
            experiment: key.to_owned(),
            status: experiment.status,
            health: report.health,
            action: None,
            reason: String::new(),
            stage: next_stage(&experiment, &report.guardrails, report.srm.ok, now_millis()),
            verdicts: report.guardrails,
            coverage: experiment.spec.coverage,
        };
        if experiment.status != Status::Running {
            decision.reason = format!("the experiment is {}", experiment.status.as_str());
            return Ok(decision);
        }
        if let Some(rebuilding) = rebuilding {
            decision.reason = rebuilding;
            decision.stage.advance = false;
            return Ok(decision);
        }
        let clean = report.srm.ok
            && !experiment.guard.tripped
            && decision
                .verdicts
                .iter()
                .all(|v| v.status == GuardStatus::Green);
        let clean_checks = self
            .frozen_ramps
            .count(key, experiment.guard.ramp_frozen && clean);
        let Some(plan) = plan(&experiment, &decision.verdicts, report.srm.ok, clean_checks) else {
            decision.reason = "no action needed".to_owned();
            if decision.stage.advance {
                let evidence = GuardEvidence {
                    verdicts: decision.verdicts.clone(),
                    srm: report.srm,
                    reason: None,
                };
                let after = self.advance(experiment, evidence.to_value()).await?;
                decision.action = Some(AuditAction::Advance);
                decision.coverage = after.spec.coverage;
            }
            return Ok(decision);
        };
        let evidence = GuardEvidence {
            verdicts: decision.verdicts.clone(),
            srm: report.srm,
            reason: Some(plan.reason.clone()),
        };
        let after = self
            .save_guard_action(experiment, &plan, evidence.to_value())
            .await?;
        if plan.action == GuardAction::Unfreeze {
            self.frozen_ramps.count(key, false);
        }
        decision.action = Some(AuditAction::Guard(plan.action));
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
            .save(
                before,
                after,
                AuditAction::Advance,
                &Actor::Scheduler,
                Some(evidence),
            )
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
            GuardAction::Rollback => after.apply(&LifecycleAction::Rollback, now)?,
            GuardAction::Adjust => {
                after.step_back_coverage(now);
            }
            _ => {}
        }
        after.set_guard(plan.guard.clone(), now);
        let action = AuditAction::Guard(plan.action);
        let after = self
            .save(before, after, action, &Actor::Guard, Some(evidence))
            .await?;
        tracing::warn!(experiment = after.key(), action = action.as_str(), reason = %plan.reason, "guard acted");
        Ok(after)
    }
}

/// What the guard is about to do.
struct Plan {
    action: GuardAction,
    guard: GuardState,
    reason: String,
}

/// A decision's action as the API names it: the guard's without its `guard_`
/// prefix, `advance`, or `none`.
fn decision_action<S: Serializer>(
    action: &Option<AuditAction>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(match action {
        None => "none",
        Some(AuditAction::Guard(guard)) => guard.as_str(),
        Some(other) => other.as_str(),
    })
}

/// How many consecutive checks found each frozen ramp's cause clear, on this
/// server (a new leader starts counting again).
#[derive(Debug, Default)]
pub(crate) struct FrozenRamps(std::sync::Mutex<std::collections::HashMap<String, u32>>);

impl FrozenRamps {
    /// Counts one more clean check of `key`, or starts again; the count so far.
    fn count(&self, key: &str, clean: bool) -> u32 {
        let Ok(mut counts) = self.0.lock() else {
            return 0;
        };
        if !clean {
            counts.remove(key);
            return 0;
        }
        let count = counts.entry(key.to_owned()).or_default();
        *count += 1;
        *count
    }
}

/// Decides from the verdicts, the experiment's memory of earlier breaches, and
/// how many consecutive checks found a frozen ramp's cause clear.
/// Why the guard holds while guarded metrics are rebuilt from the raw events: their
/// figures count only the users rebuilt so far.
fn rebuilding_guardrails(
    experiment: &Experiment,
    backfill: Option<&BackfillReport>,
) -> Option<String> {
    let backfill = backfill?;
    let guarded: Vec<&str> = experiment
        .spec
        .guardrails
        .iter()
        .map(|g| g.metric.as_str())
        .filter(|m| backfill.metrics.iter().any(|b| b == m))
        .collect();
    (!guarded.is_empty()).then(|| {
        format!(
            "holding: {} rebuilt from the raw events ({} of {} users so far)",
            guarded.join(", "),
            backfill.users_done,
            backfill.users_total
        )
    })
}

fn plan(
    experiment: &Experiment,
    verdicts: &[GuardrailVerdict],
    srm_ok: bool,
    clean_checks: u32,
) -> Option<Plan> {
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
            action: action.into(),
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
            action: GuardAction::Freeze,
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
            action: GuardAction::Warn,
            guard: GuardState {
                warned: true,
                ..state.clone()
            },
            reason: format!("yellow guardrail: {}", yellow.join(", ")),
        });
    }
    let all_green = verdicts.iter().all(|v| v.status == GuardStatus::Green);
    if state.ramp_frozen && !state.tripped && clean_checks >= UNFREEZE_AFTER_CLEAN_CHECKS {
        return Some(Plan {
            action: GuardAction::Unfreeze,
            guard: GuardState {
                ramp_frozen: false,
                ..state.clone()
            },
            reason: format!(
                "the cause of the frozen ramp has been clear for {clean_checks} consecutive checks"
            ),
        });
    }
    ((state.tripped || state.warned) && all_green && srm_ok).then(|| Plan {
        action: GuardAction::Clear,
        guard: GuardState {
            tripped: false,
            warned: false,
            ramp_frozen: state.ramp_frozen,
        },
        reason: "every guardrail is green again".to_owned(),
    })
}

/// How the guard loop is doing, for `/healthz` and `/metrics`.
#[derive(Debug, Default)]
pub struct GuardHealth {
    /// When the last pass over every watched experiment ended; 0 before the first.
    last_pass_at: AtomicI64,
    passes: AtomicU64,
    check_failures: AtomicU64,
    restarts: AtomicU64,
}

impl GuardHealth {
    /// When the guard last completed a pass, if it has.
    pub fn last_pass_at(&self) -> Option<Millis> {
        Some(self.last_pass_at.load(Ordering::Relaxed)).filter(|&at| at > 0)
    }

    /// Completed passes since the server started.
    pub fn passes(&self) -> u64 {
        self.passes.load(Ordering::Relaxed)
    }

    /// Checks of one experiment (or listings of them) that failed or panicked.
    pub fn check_failures(&self) -> u64 {
        self.check_failures.load(Ordering::Relaxed)
    }

    /// Times the loop ended unexpectedly and was started again.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    fn record_pass(&self, at: Millis) {
        self.last_pass_at.store(at, Ordering::Relaxed);
        self.passes.fetch_add(1, Ordering::Relaxed);
    }

    fn record_failure(&self) {
        self.check_failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// Runs the guard loop for as long as the server runs, starting it again (and
/// counting it) whenever it ends before `shutdown` flips: a panic must not end
/// every circuit breaker for the life of the process.
pub async fn supervise(control: Arc<Control>, interval: Duration, shutdown: watch::Receiver<bool>) {
    let start = {
        let (control, shutdown) = (control.clone(), shutdown.clone());
        move || run_loop(control.clone(), interval, shutdown.clone())
    };
    supervise_with(start, control.guard_health(), shutdown).await;
}

async fn supervise_with<F, Fut>(start: F, health: &GuardHealth, mut shutdown: watch::Receiver<bool>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let ended = tokio::spawn(start()).await;
        if *shutdown.borrow() {
            return;
        }
        match ended {
            Ok(()) => tracing::error!("the guard loop ended; starting it again"),
            Err(err) => tracing::error!(error = %err, "the guard loop failed; starting it again"),
        }
        health.restarts.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(RESTART_DELAY) => {}
            _ = super::stopping(&mut shutdown) => return,
        }
    }
}

/// Checks every running experiment every `interval` until `shutdown` flips.
async fn run_loop(control: Arc<Control>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => check_all(&control).await,
            _ = super::stopping(&mut shutdown) => return,
        }
    }
}

/// One pass: every watched experiment is checked, and every report that is due
/// is sent, whatever happens to the others.
pub async fn check_all(control: &Control) {
    if !control.leadership().check(control.store()).await {
        return;
    }
    let health = control.guard_health();
    let experiments = match control.store().list_experiments().await {
        Ok(experiments) => experiments,
        Err(err) => {
            health.record_failure();
            tracing::error!(error = %err, "guard could not list experiments");
            return;
        }
    };
    let watched = |e: &Experiment| {
        e.status == Status::Running && (!e.spec.guardrails.is_empty() || e.rollout.is_some())
    };
    let now = now_millis();
    for experiment in &experiments {
        let key = experiment.key();
        if watched(experiment) {
            contain(health, key, "guard check", control.guard_check(key)).await;
        }
        if experiment.report_due(now) {
            contain(health, key, "report", control.send_report_if_due(key)).await;
        }
    }
    health.record_pass(now_millis());
}

/// Runs one experiment's step of a pass; a failure or a panic is logged and
/// counted, and the pass goes on.
async fn contain<T>(
    health: &GuardHealth,
    key: &str,
    step: &str,
    work: impl Future<Output = Result<T, ControlError>>,
) {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => {
            health.record_failure();
            tracing::error!(experiment = key, step, error = %err, "check failed");
        }
        Err(_) => {
            health.record_failure();
            tracing::error!(experiment = key, step, "check panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn the_guard_holds_while_a_guarded_metric_is_rebuilt() {
        let spec = serde_json::from_value(serde_json::json!({
            "key": "checkout",
            "variants": [{"key": "control", "weight": 0.5}, {"key": "b", "weight": 0.5}],
            "guardrails": [{"metric": "revenue", "max_drop": 0.1, "action": "rollback"}]
        }))
        .unwrap();
        let experiment = Experiment::new_draft(spec, 0);
        let backfill = |metrics: &[&str]| BackfillReport {
            metrics: metrics.iter().map(|m| (*m).to_owned()).collect(),
            users_done: 1_000,
            users_total: 4_000,
            started_at: "2026-12-04T00:00:00Z".to_owned(),
        };
        assert_eq!(rebuilding_guardrails(&experiment, None), None);
        assert_eq!(
            rebuilding_guardrails(&experiment, Some(&backfill(&["d7"]))),
            None
        );
        assert_eq!(
            rebuilding_guardrails(&experiment, Some(&backfill(&["d7", "revenue"]))).as_deref(),
            Some("holding: revenue rebuilt from the raw events (1000 of 4000 users so far)")
        );
    }

    #[tokio::test]
    async fn a_loop_that_panics_is_started_again_until_shutdown() {
        tokio::time::pause();
        let health = Arc::new(GuardHealth::default());
        let starts = Arc::new(AtomicUsize::new(0));
        let (stop, shutdown) = watch::channel(false);
        let counted = starts.clone();
        let stopping = shutdown.clone();
        let start = move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            let mut stopping = stopping.clone();
            async move {
                assert!(run >= 2, "the first two loops panic");
                super::super::stopping(&mut stopping).await;
            }
        };
        let supervisor = {
            let health = health.clone();
            tokio::spawn(async move { supervise_with(start, &health, shutdown).await })
        };
        while starts.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.send_replace(true);
        supervisor.await.unwrap();
        assert_eq!(health.restarts(), 2);
        assert_eq!(starts.load(Ordering::SeqCst), 3);
    }
}
