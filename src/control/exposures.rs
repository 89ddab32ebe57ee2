//! Exposures logged by server-side assignment (`POST /sdk/v1/assign`). They are
//! queued and written in batches by a background task so that assignment never waits
//! on the database; a full queue drops (and counts) rather than slowing callers.
//! Each exposure's id is derived from experiment, variant and user, so repeats are
//! stored once.
//!
//! Repeats are dropped before the queue: an app assigns the same user again and
//! again, and a queue full of exposures already logged used to crowd out first
//! exposures. The queue's capacity is about distinct exposures; [`Seen`] remembers
//! the recent ones in bounded memory.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::ingest::IngestQueue;
use crate::domain::validation::is_storable;
use crate::domain::{now_millis, Event, EventKind};

/// Distinct exposures waiting to be written.
const QUEUE_CAPACITY: usize = 100_000;
const BATCH_SIZE: usize = 1_000;
const MAX_ATTEMPTS: u32 = 5;
/// Exposures remembered as logged, over both generations of [`Seen`]: about 10
/// bytes each, so some 20 MB.
const SEEN_CAPACITY: usize = 2_000_000;
const SEEN_SHARDS: usize = 16;

pub struct ExposureLog {
    queue: mpsc::Sender<Event>,
    stop: watch::Sender<bool>,
    seen: Arc<Seen>,
    dropped: Arc<AtomicU64>,
    repeats: AtomicU64,
}

impl ExposureLog {
    /// Starts the writer; the handle finishes once [`ExposureLog::shutdown`] has been
    /// called and the queue is flushed.
    pub fn spawn(ingest: IngestQueue) -> (Arc<Self>, JoinHandle<()>) {
        Self::spawn_with(ingest, QUEUE_CAPACITY, SEEN_CAPACITY)
    }

    fn spawn_with(
        ingest: IngestQueue,
        queue_capacity: usize,
        seen_capacity: usize,
    ) -> (Arc<Self>, JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(queue_capacity);
        let (stop, stopped) = watch::channel(false);
        let seen = Arc::new(Seen::new(seen_capacity));
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = tokio::spawn(write_batches(
            ingest,
            receiver,
            stopped,
            Forget {
                seen: seen.clone(),
                dropped: dropped.clone(),
            },
        ));
        let log = Arc::new(Self {
            queue,
            stop,
            seen,
            dropped,
            repeats: AtomicU64::new(0),
        });
        (log, writer)
    }

    /// Queues an exposure. One for an id that cannot be stored (see
    /// [`is_storable`]) is dropped here: in a batch, it would fail every other
    /// exposure of the batch on PostgreSQL.
    pub fn record(&self, experiment: &str, variant: &str, user: &str, dimensions: Option<String>) {
        if !is_storable(user) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let key = self.seen.key(experiment, variant, user);
        if self.seen.contains(key) {
            self.repeats.fetch_add(1, Ordering::Relaxed);
            return;
        }
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
        // Remembered only once queued: a dropped exposure is logged again by the
        // user's next assignment.
        match self.queue.try_send(event) {
            Ok(()) => self.seen.insert(key),
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Exposures lost: the queue was full, the id could not be stored, or the
    /// database refused them for good.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Exposures not queued because the same one was logged recently.
    pub fn repeats(&self) -> u64 {
        self.repeats.load(Ordering::Relaxed)
    }

    /// Asks the writer to flush what is queued and stop.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

/// What the writer does with exposures it could not store: count them and forget
/// them, so that the next assignment logs them again.
struct Forget {
    seen: Arc<Seen>,
    dropped: Arc<AtomicU64>,
}

impl Forget {
    fn lost(&self, events: &[Event]) {
        self.dropped
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        for event in events {
            if let EventKind::Exposure {
                experiment,
                variant,
                ..
            } = &event.kind
            {
                self.seen
                    .remove(self.seen.key(experiment, variant, &event.user));
            }
        }
    }
}

async fn write_batches(
    ingest: IngestQueue,
    mut receiver: mpsc::Receiver<Event>,
    mut stopped: watch::Receiver<bool>,
    forget: Forget,
) {
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    loop {
        tokio::select! {
            received = receiver.recv_many(&mut batch, BATCH_SIZE) => {
                if received == 0 {
                    return;
                }
                store_batch(&ingest, &mut batch, &forget).await;
            }
            _ = stop_requested(&mut stopped) => {
                // After close, recv_many yields what is still queued, then 0.
                receiver.close();
                while receiver.recv_many(&mut batch, BATCH_SIZE).await > 0 {
                    store_batch(&ingest, &mut batch, &forget).await;
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

async fn store_batch(ingest: &IngestQueue, batch: &mut Vec<Event>, forget: &Forget) {
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
            Ok(Err(err)) => {
                tracing::error!(error = %err, "giving up on a batch of exposures");
                forget.lost(&events);
            }
            Err(closed) => {
                tracing::error!(error = %closed, "exposures not stored");
                forget.lost(&events);
                return;
            }
        }
    }
}

/// The exposures logged recently, as 64-bit keyed hashes in two generations:
/// when the young one fills half the capacity it becomes the old one and the
/// oldest are forgotten (a forgotten repeat is queued again and stored once, by
/// its id). Sharded so that concurrent assignments rarely wait on one lock. Two
/// distinct exposures share a hash with odds of about n²/2⁶⁵: for the 2 million
/// remembered, one in ten million.
struct Seen {
    hasher: RandomState,
    shards: Vec<Mutex<Generations>>,
    shard_capacity: usize,
}

#[derive(Default)]
struct Generations {
    young: HashSet<u64>,
    old: HashSet<u64>,
}

impl Seen {
    fn new(capacity: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..SEEN_SHARDS).map(|_| Mutex::default()).collect(),
            shard_capacity: (capacity / SEEN_SHARDS).max(2),
        }
    }

    fn key(&self, experiment: &str, variant: &str, user: &str) -> u64 {
        self.hasher.hash_one((experiment, variant, user))
    }

    fn shard(&self, key: u64) -> Option<std::sync::MutexGuard<'_, Generations>> {
        let index = (key % self.shards.len() as u64) as usize;
        self.shards.get(index)?.lock().ok()
    }

    fn contains(&self, key: u64) -> bool {
        self.shard(key)
            .is_some_and(|g| g.young.contains(&key) || g.old.contains(&key))
    }

    fn insert(&self, key: u64) {
        let half = self.shard_capacity / 2;
        if let Some(mut g) = self.shard(key) {
            if g.young.len() >= half {
                g.old = std::mem::take(&mut g.young);
            }
            g.young.insert(key);
        }
    }

    fn remove(&self, key: u64) {
        if let Some(mut g) = self.shard(key) {
            g.young.remove(&key);
            g.old.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 12): repeats of exposures already logged filled the queue,
    /// and first exposures arriving behind them were dropped for good.
    #[tokio::test]
    async fn repeats_do_not_crowd_first_exposures_out_of_the_queue() {
        let store = crate::store::open("sqlite::memory:").await.unwrap();
        let (ingest, _writers) = IngestQueue::spawn(store.clone());
        let (log, writer) = ExposureLog::spawn_with(ingest, 10, 1000);
        // A current-thread runtime: the writer drains nothing until this awaits.
        for user in 0..5 {
            log.record("pricing", "control", &format!("u{user}"), None);
        }
        for round in 0..10_000 {
            log.record("pricing", "control", &format!("u{}", round % 5), None);
        }
        for user in 5..10 {
            log.record("pricing", "control", &format!("u{user}"), None);
        }
        assert_eq!((log.dropped(), log.repeats()), (0, 10_000));

        log.record("pricing", "control", "u10", None);
        assert_eq!(log.dropped(), 1, "the queue is full: counted, not silent");
        tokio::time::sleep(Duration::from_millis(50)).await;
        log.record("pricing", "control", "u10", None);
        assert_eq!(log.dropped(), 1, "a dropped exposure is logged again later");

        log.shutdown();
        writer.await.unwrap();
        let summary = store.exposure_summary("pricing").await.unwrap();
        assert_eq!(summary.users, vec![("control".to_owned(), 11)]);
    }

    #[test]
    fn seen_forgets_the_oldest_generation_only() {
        let seen = Seen::new(SEEN_SHARDS * 4);
        let keys: Vec<u64> = (0..SEEN_SHARDS as u64 * 64).collect();
        for &key in &keys {
            seen.insert(key);
        }
        let remembered = keys.iter().filter(|&&k| seen.contains(k)).count();
        assert!(remembered <= SEEN_SHARDS * 4, "bounded: {remembered}");
        assert!(seen.contains(*keys.last().unwrap()), "the newest stay");
        seen.remove(*keys.last().unwrap());
        assert!(!seen.contains(*keys.last().unwrap()));
    }
}
