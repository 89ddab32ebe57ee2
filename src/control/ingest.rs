//! Group commit for events. Every request's validated batch joins a queue; a
//! writer takes whatever has queued up, stores it in a single transaction and only
//! then answers each request. Under load many requests share one commit (and one
//! fsync), without weakening "acknowledged after commit". There are as many writers
//! as the store runs ingestion transactions at once: one on SQLite, a few on
//! PostgreSQL, where they fold different users side by side.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;

use crate::domain::pseudonym::Pseudonyms;
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
    /// With `--pseudonymize-users`: what user ids become before they are stored.
    pseudonyms: Option<Arc<Pseudonyms>>,
}

/// The writer has stopped: the server is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("event ingestion is shutting down")]
pub struct IngestClosed;

impl IngestQueue {
    /// Starts the writers. They stop once every `IngestQueue` clone is dropped and
    /// the queue is drained; the handle ends when all of them have.
    pub fn spawn(store: Arc<dyn Store>) -> (Self, JoinHandle<()>) {
        let (jobs, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let receiver = Arc::new(Mutex::new(receiver));
        let writers: Vec<JoinHandle<()>> = (0..store.ingest_writers().max(1))
            .map(|_| tokio::spawn(write_groups(store.clone(), receiver.clone())))
            .collect();
        let all = tokio::spawn(async move {
            for writer in writers {
                if let Err(err) = writer.await {
                    tracing::error!(error = %err, "an event writer failed");
                }
            }
        });
        let queue = Self {
            jobs,
            pseudonyms: None,
        };
        (queue, all)
    }

    /// Stores every user id as its pseudonym from now on.
    pub fn pseudonymizing(mut self, pseudonyms: Pseudonyms) -> Self {
        self.pseudonyms = Some(Arc::new(pseudonyms));
        self
    }

    /// The id under which `user` is stored: itself, or its pseudonym.
    pub fn stored_user_id(&self, user: &str) -> String {
        match &self.pseudonyms {
            Some(pseudonyms) => pseudonyms.of(user),
            None => user.to_owned(),
        }
    }

    /// Stores a validated batch; returns after it is committed.
    pub async fn submit(
        &self,
        mut events: Vec<Event>,
    ) -> Result<Result<IngestOutcome, StoreError>, IngestClosed> {
        if let Some(pseudonyms) = &self.pseudonyms {
            for event in &mut events {
                event.user = pseudonyms.of(&event.user);
            }
        }
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send(Job { events, done })
            .await
            .map_err(|_| IngestClosed)?;
        outcome.await.map_err(|_| IngestClosed)
    }
}

async fn write_groups(store: Arc<dyn Store>, receiver: Arc<Mutex<mpsc::Receiver<Job>>>) {
    while let Some(group) = next_group(&receiver).await {
        write_group(store.as_ref(), group).await;
    }
}

/// Waits for a request, then takes whatever else has queued up behind it.
async fn next_group(receiver: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut size = first.events.len();
    let mut group = vec![first];
    while size < MAX_EVENTS_PER_COMMIT {
        let Ok(job) = receiver.try_recv() else {
            break;
        };
        size += job.events.len();
        group.push(job);
    }
    Some(group)
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
