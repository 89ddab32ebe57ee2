//! Exposures logged by server-side assignment (`POST /sdk/v1/assign`). They are
//! queued and written in batches by a background task so that assignment never waits
//! on the database; a full queue drops (and counts) rather than slowing callers.
//! Each exposure's id is derived from experiment, variant and user, so repeats are
//! stored once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::ingest::IngestQueue;
use crate::domain::{now_millis, Event, EventKind};

const QUEUE_CAPACITY: usize = 100_000;
const BATCH_SIZE: usize = 1_000;
const MAX_ATTEMPTS: u32 = 5;

pub struct ExposureLog {
    queue: mpsc::Sender<Event>,
    stop: watch::Sender<bool>,
    dropped: AtomicU64,
}

impl ExposureLog {
    /// Starts the writer; the handle finishes once [`ExposureLog::shutdown`] has been
    /// called and the queue is flushed.
    pub fn spawn(ingest: IngestQueue) -> (Arc<Self>, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let (stop, stopped) = watch::channel(false);
        let writer = tokio::spawn(write_batches(ingest, receiver, stopped));
        let log = Arc::new(Self {
            queue,
            stop,
            dropped: AtomicU64::new(0),
        });
        (log, writer)
    }

    pub fn record(&self, experiment: &str, variant: &str, user: &str, dimensions: Option<String>) {
        let event = Event {
            id: format!("assign:{experiment}:{variant}:{user}"),
            user: user.to_owned(),
            ts: now_millis(),
            kind: EventKind::Exposure {
                experiment: experiment.to_owned(),
                variant: variant.to_owned(),
                dimensions,
            },
        };
        if self.queue.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Exposures dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Asks the writer to flush what is queued and stop.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

async fn write_batches(
    ingest: IngestQueue,
    mut receiver: mpsc::Receiver<Event>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    loop {
        tokio::select! {
            received = receiver.recv_many(&mut batch, BATCH_SIZE) => {
                if received == 0 {
                    return;
                }
                store_batch(&ingest, &mut batch).await;
            }
            _ = stop_requested(&mut stopped) => {
                // After close, recv_many yields what is still queued, then 0.
                receiver.close();
                while receiver.recv_many(&mut batch, BATCH_SIZE).await > 0 {
                    store_batch(&ingest, &mut batch).await;
                }
                return;
            }
        }
    }
}

async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    // A dropped sender also means stop.
    let _ = stopped.wait_for(|stop| *stop).await;
}

async fn store_batch(ingest: &IngestQueue, batch: &mut Vec<Event>) {
    if batch.is_empty() {
        return;
    }
    let events = std::mem::take(batch);
    for attempt in 1..=MAX_ATTEMPTS {
        match ingest.submit(events.clone()).await {
            Ok(Ok(_)) => return,
            Ok(Err(err)) if attempt < MAX_ATTEMPTS => {
                tracing::warn!(error = %err, attempt, "storing exposures failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Ok(Err(err)) => tracing::error!(error = %err, "giving up on a batch of exposures"),
            Err(closed) => tracing::error!(error = %closed, "exposures not stored"),
        }
    }
}
