//! Rebuilding shaped metrics from the raw events. When an experiment's windowed,
//! capped or ratio metrics or its CUPED lookback change once users were exposed,
//! the store drops what it kept for them and records a rebuild (see
//! [`crate::domain::shaped::Backfill`]); the leading server works through it here,
//! a chunk of users per transaction, logging its progress, until every user is
//! back in the totals.

use std::sync::Weak;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Control, ControlError};
use crate::domain::shaped::BackfillStep;

/// Users rebuilt per transaction: ingestion waits for one chunk at a time.
const CHUNK_USERS: usize = 1_000;
/// How often the leading server looks for rebuilds another server started.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How often a long rebuild logs its progress.
const LOG_EVERY: Duration = Duration::from_secs(10);

impl Control {
    /// Wakes the rebuilder now, rather than at its next poll.
    pub(crate) fn wake_backfill(&self) {
        self.backfill_wake.notify_one();
    }

    /// Works through every rebuild in progress; returns the users rebuilt.
    pub async fn run_backfills(&self) -> Result<u64, ControlError> {
        let mut rebuilt = 0;
        let mut last_log = Instant::now();
        while let Some(step) = self.store.backfill_shaped(CHUNK_USERS).await? {
            rebuilt += step.users;
            if step.finished || last_log.elapsed() >= LOG_EVERY {
                log_progress(&step);
                last_log = Instant::now();
            }
            // Lets ingestion and reports in between chunks.
            tokio::task::yield_now().await;
        }
        Ok(rebuilt)
    }
}

fn log_progress(step: &BackfillStep) {
    let b = &step.backfill;
    if step.finished {
        tracing::info!(
            experiment = %b.experiment,
            users = b.users_done,
            "shaped metrics rebuilt from the raw events"
        );
    } else {
        tracing::info!(
            experiment = %b.experiment,
            users_done = b.users_done,
            users_total = b.users_total,
            "rebuilding shaped metrics from the raw events"
        );
    }
}

/// Runs the rebuilds on the leading server, woken by a change on this server or
/// every [`POLL_EVERY`], until the server shuts down.
pub async fn run(control: Weak<Control>, mut shutdown: watch::Receiver<bool>) {
    let Some(wake) = control.upgrade().map(|c| c.backfill_wake.clone()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL_EVERY) => {}
            _ = wake.notified() => {}
            _ = super::stopping(&mut shutdown) => return,
        }
        let Some(control) = control.upgrade() else {
            return;
        };
        if !control.leadership().check(control.store()).await {
            continue;
        }
        if let Err(err) = control.run_backfills().await {
            tracing::error!(error = %err, "rebuilding shaped metrics failed; retrying");
        }
    }
}
