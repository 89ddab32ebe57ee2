//! The `report_ready` notification: once an experiment has run for its
//! `report_after_hours`, the leader's guard pass queues one notification with the
//! report's headline. The experiment records that it was sent (`report_sent_at`)
//! in the transaction whose audit entry queues the deliveries, and that write
//! expects the revision it read: it goes out once, across servers and restarts.

use super::{Control, ControlError, ReportOptions};
use crate::domain::{now_millis, Actor, AuditAction};
use crate::report::Headline;

impl Control {
    /// Sends the report of `key` if it is due; whether it was sent.
    pub async fn send_report_if_due(&self, key: &str) -> Result<bool, ControlError> {
        let experiment = self.get_experiment(key).await?;
        let now = now_millis();
        if !experiment.report_due(now) {
            return Ok(false);
        }
        let report = self.report(key, ReportOptions::default()).await?;
        let headline = serde_json::to_value(Headline::of(&report)).unwrap_or_default();
        let mut after = experiment.clone();
        after.mark_report_sent(now);
        self.save(
            experiment,
            after,
            AuditAction::ReportReady,
            &Actor::Scheduler,
            Some(headline),
        )
        .await?;
        tracing::info!(experiment = key, "report_ready queued");
        Ok(true)
    }
}
