//! Raw-event retention (`--retain-events-days`): the raw events nothing will read
//! again are deleted once they are older than the window; the per-user aggregates
//! and running totals that reports read stay. Exposure events go once their
//! experiment has finished (stopped, shipped or rolled back). Track events go once
//! they are older than the window and than the start of every experiment still
//! running or paused: a late exposure rebuilds a user's aggregates from the tracks
//! since its first exposure, which is never before its experiment's start — nor,
//! under CUPED, from before the start less the lookback.

use std::sync::Weak;
use std::time::Duration;

use tokio::sync::watch;

use super::{Control, ControlError};
use crate::domain::event::Expiry;
use crate::domain::{now_millis, Millis, Status};

/// How often the leading server deletes what has expired.
const PASS_EVERY: Duration = Duration::from_secs(3600);

/// How long raw events are kept: for ever, or a number of days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention(Option<Millis>);

impl Retention {
    pub fn days(days: u32) -> Self {
        Self(Some(i64::from(days) * 86_400_000))
    }

    /// The oldest time raw events are kept from, at `now`.
    pub fn kept_from(self, now: Millis) -> Millis {
        self.0
            .map_or(Millis::MIN, |window| now.saturating_sub(window))
    }
}

impl Control {
    /// Deletes the raw events that have expired at `now`; nothing without a
    /// retention window.
    pub async fn expire_events(&self, now: Millis) -> Result<(), ControlError> {
        if self.retention == Retention::default() {
            return Ok(());
        }
        let experiments = self.store.list_experiments().await?;
        let before = self.retention.kept_from(now);
        let active_since = experiments
            .iter()
            .filter(|e| matches!(e.status, Status::Running | Status::Paused))
            .map(|e| e.exposed_from() - e.spec.cuped.map_or(0, |c| c.lookback_ms()))
            .min();
        let expiry = Expiry {
            finished: experiments
                .iter()
                .filter(|e| {
                    matches!(
                        e.status,
                        Status::Stopped | Status::Shipped | Status::RolledBack
                    )
                })
                .map(|e| e.key().to_owned())
                .collect(),
            before,
            tracks_before: active_since.map_or(before, |since| since.min(before)),
        };
        self.store.expire_events(&expiry).await?;
        tracing::info!(?expiry, "expired raw events deleted");
        Ok(())
    }
}

/// Deletes expired raw events every [`PASS_EVERY`] on the leading server, until
/// the server shuts down.
pub async fn run(control: Weak<Control>, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(PASS_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = super::stopping(&mut shutdown) => return,
        }
        let Some(control) = control.upgrade() else {
            return;
        };
        if !control.leadership().check(control.store()).await {
            continue;
        }
        if let Err(err) = control.expire_events(now_millis()).await {
            tracing::error!(error = %err, "deleting expired raw events failed; retrying at the next pass");
        }
    }
}
