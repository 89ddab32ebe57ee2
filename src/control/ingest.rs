//! Group commit for events. Every request's validated batch joins a queue; one
//! writer takes whatever has queued up, stores it in a single transaction and only
//! then answers each request. Under load many requests share one commit (and one
//! fsync), without weakening "acknowledged after commit".

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::domain::Event;
use crate::store::{IngestOutcome, Store, StoreError};

/// Requests waiting for the writer; beyond this, submitters wait (back-pressure).
const QUEUE_CAPACITY: usize = 256;
/// Events per transaction at most, so one commit never grows without bound.
const MAX_EVENTS_PER_COMMIT: usize = 50_000;

struct Job {
    events: Vec<Event>,
    done: oneshot::Sender<Result<IngestOutcome, StoreError>>,
}

#[derive(Clone)]
pub struct IngestQueue {
    jobs: mpsc::Sender<Job>,
}

/// The writer has stopped: the server is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("event ingestion is shutting down")]
pub struct IngestClosed;

impl IngestQueue {
    /// Starts the writer. It stops once every `IngestQueue` clone is dropped and the
    /// queue is drained.
    pub fn spawn(store: Arc<dyn Store>) -> (Self, JoinHandle<()>) {
        let (jobs, receiver) = mpsc::channel(QUEUE_CAPACITY);
        (Self { jobs }, tokio::spawn(write_groups(store, receiver)))
    }

    /// Stores a validated batch; returns after it is committed.
    pub async fn submit(
        &self,
        events: Vec<Event>,
    ) -> Result<Result<IngestOutcome, StoreError>, IngestClosed> {
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send(Job { events, done })
            .await
            .map_err(|_| IngestClosed)?;
        outcome.await.map_err(|_| IngestClosed)
    }
}

async fn write_groups(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<Job>) {
    while let Some(first) = receiver.recv().await {
        let mut size = first.events.len();
        let mut group = vec![first];
        while size < MAX_EVENTS_PER_COMMIT {
            let Ok(job) = receiver.try_recv() else {
                break;
            };
            size += job.events.len();
            group.push(job);
        }
        write_group(store.as_ref(), group).await;
    }
}

async fn write_group(store: &dyn Store, group: Vec<Job>) {
    let batches: Vec<&[Event]> = group.iter().map(|job| job.events.as_slice()).collect();
    match store.ingest(&batches).await {
        Ok(outcomes) => {
            for (job, outcome) in group.into_iter().zip(outcomes) {
                let _ = job.done.send(Ok(outcome));
            }
        }
        Err(err) if group.len() == 1 => {
            let _ = group.into_iter().next().map(|job| job.done.send(Err(err)));
        }
        Err(err) => {
            // Isolate the failure: each request gets its own outcome and error.
            tracing::warn!(error = %err, requests = group.len(), "group commit failed; storing requests one by one");
            for job in group {
                let outcome = store
                    .ingest(&[job.events.as_slice()])
                    .await
                    .map(|outcomes| outcomes.into_iter().next().unwrap_or_default());
                let _ = job.done.send(outcome);
            }
        }
    }
}
