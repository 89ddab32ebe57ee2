//! The in-app client (feature `client`): local evaluation against a ruleset
//! kept fresh in the background, with exposures and track events shipped in
//! batches.
//!
//! - The ruleset is fetched from `GET /sdk/v1/ruleset` (Bearer SDK key,
//!   `ETag`/`If-None-Match`, a 304 keeps the current one), re-fetched when
//!   `GET /sdk/v1/stream` pushes a `ruleset` event, and polled every
//!   `poll_interval` as a fallback. It lives in an atomically swapped `Arc`,
//!   so [`Client::assign`] never waits for the network.
//! - [`Client::assign`] evaluates locally and logs one exposure per (user,
//!   experiment) — remembered in a bounded set — when the user is in the
//!   experiment. [`Client::track`] logs a metric event.
//! - Events go into a bounded buffer; a full buffer drops the event (counted
//!   in [`Client::stats`]) rather than blocking the caller. A background
//!   task batches them to `POST /sdk/v1/events` with retries;
//!   [`Client::close`] flushes what is left.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sluice_sdk::client::ClientError> {
//! use sluice_sdk::client::Client;
//! use serde_json::json;
//!
//! let client = Client::builder("http://127.0.0.1:8080", "sdk-key").build().await?;
//! let user = json!({"id": "u1", "country": "CN"});
//! if let Some(a) = client.assign("pricing-q4", user.as_object().unwrap_or(&Default::default())) {
//!     println!("{} gets {} ({})", "u1", a.variant, a.reason);
//! }
//! client.track("u1", "purchase", Some(249.0));
//! client.close().await;
//! # Ok(()) }
//! ```

mod events;
mod sse;
mod sync;

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::{unit_id, Attributes, CompiledRuleset, EvalWarning, OwnedAssignment};

use events::{Event, IdGenerator};

/// Why the client could not start or fetch.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request failed (connection, timeout, body).
    #[error("ruleset request failed: {0}")]
    Http(#[source] reqwest::Error),
    /// The server answered with an unexpected status.
    #[error("ruleset request returned HTTP {0}")]
    Status(u16),
    /// The ruleset body was not a valid ruleset.
    #[error("ruleset is not valid JSON for a ruleset: {0}")]
    Decode(#[source] serde_json::Error),
    /// The client could not be built (e.g. TLS initialisation).
    #[error("could not build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// The kind of a [`ClientError`], for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientErrorKind {
    /// See [`ClientError::Http`].
    Http,
    /// See [`ClientError::Status`].
    Status,
    /// See [`ClientError::Decode`].
    Decode,
    /// See [`ClientError::Build`].
    Build,
}

impl ClientError {
    /// The kind of error.
    pub fn kind(&self) -> ClientErrorKind {
        match self {
            ClientError::Http(_) => ClientErrorKind::Http,
            ClientError::Status(_) => ClientErrorKind::Status,
            ClientError::Decode(_) => ClientErrorKind::Decode,
            ClientError::Build(_) => ClientErrorKind::Build,
        }
    }
}

/// Counters describing what the client did, as of the call to
/// [`Client::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Events accepted into the buffer.
    pub events_queued: u64,
    /// Events dropped because the buffer was full (or the client closing).
    pub events_dropped: u64,
    /// Events the server stored.
    pub events_sent: u64,
    /// Events the server refused for good: those a 400 named, or every event of
    /// a batch refused with another 4xx.
    pub events_rejected: u64,
    /// Events the server took but does not count: they name an experiment or
    /// variant it does not serve to this key's environment (`skipped`).
    pub events_skipped: u64,
    /// Batches the server stored.
    pub batches_sent: u64,
    /// Batches the server refused in part or in whole (a 4xx other than
    /// 408/429).
    pub batches_rejected: u64,
    /// Failed delivery attempts that were retried.
    pub send_retries: u64,
    /// Exposures not logged because the (user, experiment) was seen already.
    pub exposures_deduplicated: u64,
    /// Ruleset requests made.
    pub ruleset_fetches: u64,
    /// Ruleset requests answered 304 Not Modified.
    pub ruleset_not_modified: u64,
    /// Times a new ruleset was swapped in.
    pub ruleset_updates: u64,
    /// Rulesets refused because they were older than the one served (a lagging
    /// server must not undo a rollback).
    pub ruleset_stale: u64,
    /// Ruleset requests that failed.
    pub fetch_errors: u64,
    /// Successful connections to the event stream.
    pub stream_connects: u64,
    /// Warnings from compiling the current ruleset.
    pub compile_warnings: u64,
}

#[derive(Default)]
pub(crate) struct Stats {
    events_queued: AtomicU64,
    events_dropped: AtomicU64,
    events_sent: AtomicU64,
    events_rejected: AtomicU64,
    events_skipped: AtomicU64,
    batches_sent: AtomicU64,
    batches_rejected: AtomicU64,
    send_retries: AtomicU64,
    exposures_deduplicated: AtomicU64,
    ruleset_fetches: AtomicU64,
    ruleset_not_modified: AtomicU64,
    ruleset_updates: AtomicU64,
    ruleset_stale: AtomicU64,
    fetch_errors: AtomicU64,
    stream_connects: AtomicU64,
    compile_warnings: AtomicU64,
}

impl Stats {
    fn snapshot(&self) -> ClientStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClientStats {
            events_queued: g(&self.events_queued),
            events_dropped: g(&self.events_dropped),
            events_sent: g(&self.events_sent),
            events_rejected: g(&self.events_rejected),
            events_skipped: g(&self.events_skipped),
            batches_sent: g(&self.batches_sent),
            batches_rejected: g(&self.batches_rejected),
            send_retries: g(&self.send_retries),
            exposures_deduplicated: g(&self.exposures_deduplicated),
            ruleset_fetches: g(&self.ruleset_fetches),
            ruleset_not_modified: g(&self.ruleset_not_modified),
            ruleset_updates: g(&self.ruleset_updates),
            ruleset_stale: g(&self.ruleset_stale),
            fetch_errors: g(&self.fetch_errors),
            stream_connects: g(&self.stream_connects),
            compile_warnings: g(&self.compile_warnings),
        }
    }
}

/// Tuning, validated by the builder.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    poll_interval: Duration,
    flush_interval: Duration,
    batch_size: usize,
    buffer_capacity: usize,
    dedupe_capacity: usize,
    request_timeout: Duration,
    close_timeout: Duration,
    stream: bool,
    stream_idle_timeout: Duration,
    retry_initial: Duration,
    retry_max: Duration,
}

/// Builds a [`Client`]; every setting has a default.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    sdk_key: String,
    config: Config,
}

impl ClientBuilder {
    /// Fallback polling period (default 30 s).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.config.poll_interval = every.max(Duration::from_millis(10));
        self
    }

    /// Longest time an event waits before its batch is sent (default 2 s).
    pub fn flush_interval(mut self, every: Duration) -> Self {
        self.config.flush_interval = every.max(Duration::from_millis(1));
        self
    }

    /// Events per `POST /sdk/v1/events` (default 500).
    pub fn batch_size(mut self, events: usize) -> Self {
        self.config.batch_size = events.max(1);
        self
    }

    /// Events buffered before new ones are dropped (default 10 000).
    pub fn buffer_capacity(mut self, events: usize) -> Self {
        self.config.buffer_capacity = events.max(1);
        self
    }

    /// (user, experiment) pairs remembered for exposure de-duplication
    /// (default 100 000; the oldest are forgotten first).
    pub fn dedupe_capacity(mut self, pairs: usize) -> Self {
        self.config.dedupe_capacity = pairs.max(1);
        self
    }

    /// Timeout of each HTTP request (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// How long [`Client::close`] keeps trying to flush (default 5 s).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.config.close_timeout = timeout;
        self
    }

    /// Whether to follow the Server-Sent Events stream (default true).
    pub fn stream(mut self, enabled: bool) -> Self {
        self.config.stream = enabled;
        self
    }

    /// First and longest delay between retries (defaults 200 ms and 30 s).
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.config.retry_initial = initial.max(Duration::from_millis(1));
        self.config.retry_max = max.max(self.config.retry_initial);
        self
    }

    /// Fetches the ruleset once, then starts the background tasks (on the
    /// current Tokio runtime). Fails when that first fetch fails.
    pub async fn build(self) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("sluice-sdk-rust/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Build)?;
        let (tx, rx) = mpsc::channel(self.config.buffer_capacity);
        let (stop_tx, stop_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            base_url: self.base_url.trim_end_matches('/').to_owned(),
            sdk_key: self.sdk_key,
            http,
            rules: ArcSwap::from_pointee(CompiledRuleset::empty()),
            etag: Mutex::new(None),
            warnings: Mutex::new(Vec::new()),
            fetch_lock: tokio::sync::Mutex::new(()),
            events: tx,
            ids: IdGenerator::new(),
            seen: Mutex::new(Dedupe::new(self.config.dedupe_capacity)),
            stats: Stats::default(),
            config: self.config,
        });
        sync::fetch(&inner).await?;
        let sender = tokio::spawn(events::run_sender(inner.clone(), rx, stop_rx.clone()));
        let mut background = vec![tokio::spawn(sync::run_poller(
            inner.clone(),
            stop_rx.clone(),
        ))];
        if inner.config.stream {
            background.push(tokio::spawn(sync::run_stream(inner.clone(), stop_rx)));
        }
        Ok(Client {
            inner,
            stop: stop_tx,
            sender: Some(sender),
            background,
        })
    }
}

/// Shared state of the client and its background tasks.
pub(crate) struct Inner {
    base_url: String,
    sdk_key: String,
    http: reqwest::Client,
    rules: ArcSwap<CompiledRuleset>,
    etag: Mutex<Option<String>>,
    warnings: Mutex<Vec<EvalWarning>>,
    fetch_lock: tokio::sync::Mutex<()>,
    events: mpsc::Sender<Event>,
    ids: IdGenerator,
    seen: Mutex<Dedupe>,
    stats: Stats,
    config: Config,
}

/// A bounded set of (user, experiment) fingerprints, oldest evicted first.
struct Dedupe {
    set: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
    hasher: std::collections::hash_map::RandomState,
}

impl Dedupe {
    fn new(capacity: usize) -> Self {
        Dedupe {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity,
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn contains(&self, user: &str, experiment: &str) -> bool {
        self.set.contains(&self.hasher.hash_one((user, experiment)))
    }

    /// Records the pair, forgetting the oldest beyond the capacity.
    fn insert(&mut self, user: &str, experiment: &str) {
        let key = self.hasher.hash_one((user, experiment));
        if !self.set.insert(key) {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

/// A connected client. Cheap to share behind an `Arc`; all methods take
/// `&self` except [`Client::close`].
pub struct Client {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    sender: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl Client {
    /// Starts building a client for the server at `base_url` (e.g.
    /// `http://127.0.0.1:8080`) with an SDK key.
    pub fn builder(base_url: impl Into<String>, sdk_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            sdk_key: sdk_key.into(),
            config: Config {
                poll_interval: Duration::from_secs(30),
                flush_interval: Duration::from_secs(2),
                batch_size: 500,
                buffer_capacity: 10_000,
                dedupe_capacity: 100_000,
                request_timeout: Duration::from_secs(10),
                close_timeout: Duration::from_secs(5),
                stream: true,
                stream_idle_timeout: Duration::from_secs(90),
                retry_initial: sync::RETRY_INITIAL,
                retry_max: sync::RETRY_MAX,
            },
        }
    }

    /// Evaluates `experiment` for the user locally (`None` for an unknown
    /// key) and, when the user is in the experiment, logs an exposure once
    /// per (user, experiment).
    pub fn assign(&self, experiment: &str, attributes: &Attributes) -> Option<OwnedAssignment> {
        let rules = self.inner.rules.load();
        let a = rules.assign(experiment, attributes)?.to_owned_assignment();
        self.log_if_exposed(&rules, attributes, &a);
        Some(a)
    }

    /// Evaluates every experiment for the user, logging exposures as
    /// [`Client::assign`] does.
    pub fn assign_all(&self, attributes: &Attributes) -> Vec<OwnedAssignment> {
        let rules = self.inner.rules.load();
        rules
            .assign_all(attributes)
            .map(|a| {
                let a = a.to_owned_assignment();
                self.log_if_exposed(&rules, attributes, &a);
                a
            })
            .collect()
    }

    fn log_if_exposed(
        &self,
        rules: &CompiledRuleset,
        attributes: &Attributes,
        a: &OwnedAssignment,
    ) {
        if !a.in_experiment {
            return;
        }
        let Some(rule) = rules.rule(&a.experiment) else {
            return;
        };
        let Some(user) = attributes
            .get(rule.hash_attribute.as_str())
            .and_then(unit_id)
        else {
            return;
        };
        let kept: Attributes = rule
            .dimensions
            .iter()
            .filter_map(|name| Some((name.clone(), attributes.get(name)?.clone())))
            .collect();
        self.log_exposure(&user, a, (!kept.is_empty()).then_some(kept));
    }

    fn log_exposure(&self, user: &str, a: &OwnedAssignment, attributes: Option<Attributes>) {
        let Ok(mut seen) = self.inner.seen.lock() else {
            return;
        };
        if seen.contains(user, &a.experiment) {
            self.inner
                .stats
                .exposures_deduplicated
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let queued = self.enqueue(Event::Exposure {
            id: self.inner.ids.next_id(),
            user: user.to_owned(),
            experiment: a.experiment.clone(),
            variant: a.variant.clone(),
            ts: events::now_rfc3339(),
            attributes,
        });
        // Remembered only once queued: an exposure a full buffer dropped is
        // logged by the user's next assignment instead of never.
        if queued {
            seen.insert(user, &a.experiment);
        }
    }

    /// Logs a metric event (e.g. `purchase` with value 249.0) for a user.
    /// Never blocks: when the buffer is full the event is dropped and counted.
    pub fn track(&self, user: &str, event: &str, value: Option<f64>) {
        self.enqueue(Event::Track {
            id: self.inner.ids.next_id(),
            user: user.to_owned(),
            event: event.to_owned(),
            value: value.filter(|v| v.is_finite()),
            ts: events::now_rfc3339(),
        });
    }

    /// Whether the event is in the buffer (otherwise it was dropped and counted).
    fn enqueue(&self, event: Event) -> bool {
        let queued = self.inner.events.try_send(event).is_ok();
        let counter = if queued {
            &self.inner.stats.events_queued
        } else {
            &self.inner.stats.events_dropped
        };
        counter.fetch_add(1, Ordering::Relaxed);
        queued
    }

    /// The ruleset currently in use.
    pub fn ruleset(&self) -> Arc<CompiledRuleset> {
        self.inner.rules.load_full()
    }

    /// Warnings from compiling the current ruleset.
    pub fn warnings(&self) -> Vec<EvalWarning> {
        self.inner
            .warnings
            .lock()
            .map(|w| w.clone())
            .unwrap_or_default()
    }

    /// Fetches the ruleset now (normally the stream and the poller do this).
    pub async fn refresh(&self) -> Result<(), ClientError> {
        sync::fetch(&self.inner).await
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ClientStats {
        self.inner.stats.snapshot()
    }

    /// Stops the background tasks and flushes buffered events, waiting at
    /// most the close timeout; events still unsent then are counted as
    /// dropped. Returns the final counters.
    pub async fn close(mut self) -> ClientStats {
        let _ = self.stop.send(true);
        for task in self.background.drain(..) {
            task.abort();
        }
        if let Some(sender) = self.sender.take() {
            let abort = sender.abort_handle();
            if tokio::time::timeout(self.inner.config.close_timeout, sender)
                .await
                .is_err()
            {
                abort.abort();
                let stats = &self.inner.stats;
                let done = stats.events_sent.load(Ordering::Relaxed)
                    + stats.events_skipped.load(Ordering::Relaxed)
                    + stats.events_rejected.load(Ordering::Relaxed)
                    + stats.events_dropped.load(Ordering::Relaxed);
                let queued = stats.events_queued.load(Ordering::Relaxed);
                stats
                    .events_dropped
                    .fetch_add(queued.saturating_sub(done), Ordering::Relaxed);
            }
        }
        self.stats()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Dropped without close(): stop the tasks; unsent events are lost.
        let _ = self.stop.send(true);
        for task in &self.background {
            task.abort();
        }
        if let Some(sender) = &self.sender {
            sender.abort();
        }
    }
}
