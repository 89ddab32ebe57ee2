//! Exposures logged by server-side assignment (`POST /sdk/v1/assign`). They are
//! queued and written in batches by a background task so that assignment does not
//! wait on the database. When first exposures arrive faster than the database takes
//! them and the queue is full, assignment waits for room (at most
//! [`QUEUE_FULL_WAIT`]): slowing callers beats losing exposures. Only past that is
//! an exposure dropped, and counted. Each exposure's id is derived from experiment,
//! variant and user, so repeats are stored once.
//!
//! Repeats are dropped before the queue: an app assigns the same user again and
//! again, and a queue full of exposures already logged used to crowd out first
//! exposures. The queue's capacity is about distinct exposures; [`Seen`] remembers
//! the recent ones in bounded memory.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
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
/// How long an assignment waits for room in a full queue before dropping.
pub const QUEUE_FULL_WAIT: Duration = Duration::from_secs(2);
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

    /// Queues the first exposures among a user's `exposures` (experiment, variant);
    /// waits while the queue is full (see the module). `dimensions(i)` makes the
    /// kept attributes of the `i`-th, only when it is queued. Exposures for an id
    /// that cannot be stored (see [`is_storable`]) are dropped here: in a batch,
    /// they would fail every other exposure of the batch on PostgreSQL.
    pub async fn record(
        &self,
        user: &str,
        exposures: &[(&str, &str)],
        dimensions: impl Fn(usize) -> Option<String>,
    ) {
        if !is_storable(user) {
            self.dropped
                .fetch_add(exposures.len() as u64, Ordering::Relaxed);
            return;
        }
        // A user assigned again is usually in the same experiments and variants:
        // one look-up of the whole set instead of one per exposure.
        let keys: Vec<u64> = exposures
            .iter()
            .map(|(experiment, variant)| self.seen.key(experiment, variant, user))
            .collect();
        let set = keys.iter().fold(0, |set, key| set ^ key);
        let user_key = self.seen.user_key(user);
        if self.seen.sets.get(user_key) == Some(set) {
            self.repeats
                .fetch_add(exposures.len() as u64, Ordering::Relaxed);
            return;
        }
        // Remembered before queueing, so that a writer forgetting a lost exposure
        // (see [`Forget`]) always comes after; taken back if any is dropped here.
        self.seen.sets.insert(user_key, set);
        let (mut repeats, mut all_queued) = (0, true);
        for (i, (&(experiment, variant), key)) in exposures.iter().zip(keys).enumerate() {
            if self.seen.exposures.get(key).is_some() {
                repeats += 1;
            } else if self.queue(experiment, variant, user, dimensions(i)).await {
                // Remembered only once queued: a dropped exposure is logged again
                // by the user's next assignment.
                self.seen.exposures.insert(key, ());
            } else {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                all_queued = false;
            }
        }
        if !all_queued {
            self.seen.sets.remove(user_key);
        }
        self.repeats.fetch_add(repeats, Ordering::Relaxed);
    }

    /// Queues one exposure, waiting for room at most [`QUEUE_FULL_WAIT`]; whether
    /// it was queued.
    async fn queue(
        &self,
        experiment: &str,
        variant: &str,
        user: &str,
        dimensions: Option<String>,
    ) -> bool {
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
        match self.queue.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(event)) => self
                .queue
                .send_timeout(event, QUEUE_FULL_WAIT)
                .await
                .is_ok(),
            Err(mpsc::error::TrySendError::Closed(_)) => false,
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
                let key = self.seen.key(experiment, variant, &event.user);
                self.seen.exposures.remove(key);
                self.seen.sets.remove(self.seen.user_key(&event.user));
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

/// The exposures logged recently, and per user the set last logged, as 64-bit
/// keyed hashes (a set: the XOR of its exposures'). Two distinct exposures share a
/// hash with odds of about n²/2⁶⁵: for the 2 million remembered, one in ten million.
struct Seen {
    hasher: RandomState,
    exposures: Recent<()>,
    sets: Recent<u64>,
}

impl Seen {
    fn new(capacity: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            exposures: Recent::new(capacity),
            sets: Recent::new(capacity / 4),
        }
    }

    fn key(&self, experiment: &str, variant: &str, user: &str) -> u64 {
        self.hasher.hash_one((experiment, variant, user))
    }

    fn user_key(&self, user: &str) -> u64 {
        self.hasher.hash_one(user)
    }
}

/// Recent keys (with a value each) in bounded memory, in two generations: when the
/// young one fills half the capacity it becomes the old one and the oldest are
/// forgotten (a forgotten exposure is queued again and stored once, by its id).
/// Sharded so that concurrent assignments rarely wait on one lock.
struct Recent<V> {
    shards: Vec<Mutex<Generations<V>>>,
    shard_capacity: usize,
}

struct Generations<V> {
    young: HashMap<u64, V, AlreadyHashed>,
    old: HashMap<u64, V, AlreadyHashed>,
}

impl<V> Generations<V> {
    /// Both tables made at their full size once: filling them never reallocates,
    /// so resident memory stops growing once they are full.
    fn with_capacity(capacity: usize) -> Self {
        Self {
            young: HashMap::with_capacity_and_hasher(capacity, AlreadyHashed),
            old: HashMap::with_capacity_and_hasher(capacity, AlreadyHashed),
        }
    }
}

/// The keys are keyed hashes already: hashing them again only costs time.
#[derive(Default, Clone, Copy)]
struct AlreadyHashed;

impl BuildHasher for AlreadyHashed {
    type Hasher = KeyAsHash;

    fn build_hasher(&self) -> KeyAsHash {
        KeyAsHash(0)
    }
}

struct KeyAsHash(u64);

impl std::hash::Hasher for KeyAsHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

impl<V: Copy> Recent<V> {
    fn new(capacity: usize) -> Self {
        let shard_capacity = (capacity / SEEN_SHARDS).max(2);
        Self {
            shards: (0..SEEN_SHARDS)
                .map(|_| Mutex::new(Generations::with_capacity(shard_capacity / 2)))
                .collect(),
            shard_capacity,
        }
    }

    fn shard(&self, key: u64) -> Option<std::sync::MutexGuard<'_, Generations<V>>> {
        let index = (key % self.shards.len() as u64) as usize;
        self.shards.get(index)?.lock().ok()
    }

    fn get(&self, key: u64) -> Option<V> {
        let g = self.shard(key)?;
        g.young.get(&key).or_else(|| g.old.get(&key)).copied()
    }

    fn insert(&self, key: u64, value: V) {
        let half = self.shard_capacity / 2;
        if let Some(mut g) = self.shard(key) {
            if g.young.len() >= half {
                // The oldest are forgotten; their table, emptied, takes the new ones.
                let g = &mut *g;
                std::mem::swap(&mut g.young, &mut g.old);
                g.young.clear();
            }
            g.young.insert(key, value);
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
    use crate::store::UserFilter;

    /// Regression (issue 12): repeats of exposures already logged filled the queue,
    /// and first exposures arriving behind them were dropped for good.
    #[tokio::test]
    async fn repeats_do_not_crowd_first_exposures_out_of_the_queue() {
        let store = crate::store::open("sqlite::memory:").await.unwrap();
        let (ingest, _writers) = IngestQueue::spawn(store.clone());
        let (log, writer) = ExposureLog::spawn_with(ingest, 10, 1000);
        // A current-thread runtime: the writer drains nothing until this waits.
        for user in 0..5 {
            log.record(&format!("u{user}"), &[("pricing", "control")], |_| None)
                .await;
        }
        for round in 0..10_000 {
            log.record(
                &format!("u{}", round % 5),
                &[("pricing", "control")],
                |_| None,
            )
            .await;
        }
        for user in 5..10 {
            log.record(&format!("u{user}"), &[("pricing", "control")], |_| None)
                .await;
        }
        assert_eq!((log.dropped(), log.repeats()), (0, 10_000));
        log.shutdown();
        writer.await.unwrap();
        let summary = store
            .exposure_summary("pricing", &UserFilter::EVERYONE)
            .await
            .unwrap();
        assert_eq!(summary.users, vec![("control".to_owned(), 10)]);
    }

    /// Regression (issue 16): at 100 experiments of new users, exposures arrived
    /// faster than the database took them; a full queue dropped them.
    #[tokio::test]
    async fn a_full_queue_makes_assignment_wait_instead_of_dropping() {
        let store = crate::store::open("sqlite::memory:").await.unwrap();
        let (ingest, _writers) = IngestQueue::spawn(store.clone());
        let (log, writer) = ExposureLog::spawn_with(ingest, 10, 100_000);
        for user in 0..5_000 {
            log.record(&format!("u{user}"), &[("pricing", "control")], |_| None)
                .await;
        }
        assert_eq!(log.dropped(), 0);
        log.shutdown();
        writer.await.unwrap();
        let summary = store
            .exposure_summary("pricing", &UserFilter::EVERYONE)
            .await
            .unwrap();
        assert_eq!(summary.users, vec![("control".to_owned(), 5_000)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_queue_that_stays_full_drops_and_counts() {
        let (queue, _receiver) = mpsc::channel(1);
        let (stop, _) = watch::channel(false);
        let log = ExposureLog {
            queue,
            stop,
            seen: Arc::new(Seen::new(100)),
            dropped: Arc::default(),
            repeats: AtomicU64::new(0),
        };
        log.record("u1", &[("pricing", "control")], |_| None).await;
        log.record("u2", &[("pricing", "control")], |_| None).await;
        assert_eq!(
            log.dropped(),
            1,
            "no writer: counted after the wait, not silent"
        );
        log.record("u2", &[("pricing", "control")], |_| None).await;
        assert_eq!(log.dropped(), 2, "a dropped exposure is tried again later");
    }

    #[test]
    fn recent_keys_forget_the_oldest_generation_only() {
        let seen = Recent::new(SEEN_SHARDS * 4);
        let keys: Vec<u64> = (0..SEEN_SHARDS as u64 * 64).collect();
        for &key in &keys {
            seen.insert(key, ());
        }
        let remembered = keys.iter().filter(|&&k| seen.get(k).is_some()).count();
        assert!(remembered <= SEEN_SHARDS * 4, "bounded: {remembered}");
        assert!(seen.get(*keys.last().unwrap()).is_some(), "the newest stay");
        seen.remove(*keys.last().unwrap());
        assert!(seen.get(*keys.last().unwrap()).is_none());
    }

    /// A user assigned again in one more experiment logs that one exposure only,
    /// and the same set again logs nothing.
    #[tokio::test]
    async fn a_users_new_experiment_is_logged_beside_the_set_already_logged() {
        let store = crate::store::open("sqlite::memory:").await.unwrap();
        let (ingest, _writers) = IngestQueue::spawn(store.clone());
        let (log, writer) = ExposureLog::spawn_with(ingest, 10, 1000);
        let dims = |i: usize| Some(format!("{{\"n\":{i}}}"));
        log.record("u1", &[("a", "control"), ("b", "treatment")], dims)
            .await;
        log.record("u1", &[("a", "control"), ("b", "treatment")], dims)
            .await;
        assert_eq!(log.repeats(), 2);
        log.record(
            "u1",
            &[("a", "control"), ("b", "treatment"), ("c", "control")],
            dims,
        )
        .await;
        assert_eq!((log.dropped(), log.repeats()), (0, 4));
        log.shutdown();
        writer.await.unwrap();
        for experiment in ["a", "b", "c"] {
            let summary = store
                .exposure_summary(experiment, &UserFilter::EVERYONE)
                .await
                .unwrap();
            assert_eq!(summary.users.iter().map(|(_, n)| n).sum::<u64>(), 1);
        }
    }
}
