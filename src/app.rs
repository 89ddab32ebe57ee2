//! The application: builds the control plane over a store, starts its background
//! tasks, and composes the API and the dashboard into one router. The two HTTP
//! layers are siblings that meet only here.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, ApiState, CorsOrigins, Limits};
use crate::control::{
    Control, ExposureLog, IngestQueue, Leadership, PublicUrl, Retention, RulesetHub,
};
use crate::domain::event::DEFAULT_MAX_CLOCK_SKEW_MS;
use crate::domain::pseudonym::Pseudonyms;
use crate::store::{Store, StoreError};
use crate::web::{self, CookieSecurity};

const FINISH_TIMEOUT: Duration = Duration::from_secs(10);

/// A running server's state and the handles main needs to stop it cleanly.
pub struct Server {
    pub router: Router,
    pub shutdown: watch::Sender<bool>,
    pub exposures: Arc<ExposureLog>,
    pub exposure_writer: JoinHandle<()>,
    pub event_writer: JoinHandle<()>,
    /// Sends webhook deliveries; ends when the server shuts down.
    pub webhook_sender: JoinHandle<()>,
    control: Arc<Control>,
}

/// How a server is set up beyond its store.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Whether the dashboard's cookies are marked `Secure`.
    pub cookies: CookieSecurity,
    /// Which browser origins may call the SDK endpoints.
    pub cors_origins: CorsOrigins,
    /// Requests per second per key, bytes of event batches in flight.
    pub limits: Limits,
    /// How far ahead of the server's clock an event may be stamped.
    pub max_event_skew: Duration,
    /// Store user ids as keyed hashes (`--pseudonymize-users`).
    pub pseudonymize_users: bool,
    /// How long raw events are kept (`--retain-events-days`).
    pub retention: Retention,
    /// Where people reach the dashboard, for links in chat messages.
    pub public_url: PublicUrl,
    /// Never lead where servers share the store: for a server that runs no guard
    /// loop, so the guard, the scheduler and webhook delivery stay with one that
    /// runs them all. A lone server leads regardless.
    pub stand_aside: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            cookies: CookieSecurity::default(),
            cors_origins: CorsOrigins::default(),
            limits: Limits::default(),
            max_event_skew: Duration::from_millis(DEFAULT_MAX_CLOCK_SKEW_MS as u64),
            pseudonymize_users: false,
            retention: Retention::default(),
            public_url: PublicUrl::default(),
            stand_aside: false,
        }
    }
}

impl Server {
    /// Builds the state and router over a store and starts background writers.
    pub async fn build(store: Arc<dyn Store>) -> Result<Server, StoreError> {
        Self::build_with(store, ServerOptions::default()).await
    }

    pub async fn build_with(
        store: Arc<dyn Store>,
        options: ServerOptions,
    ) -> Result<Server, StoreError> {
        let rulesets = RulesetHub::load(store.as_ref()).await?;
        let (mut ingest, event_writer) = IngestQueue::spawn(store.clone());
        if options.pseudonymize_users {
            ingest = ingest.pseudonymizing(pseudonyms(store.as_ref()).await?);
        }
        let (exposures, exposure_writer) = ExposureLog::spawn(ingest.clone());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let changes = store.changes().await?;
        let leadership = Arc::new(Leadership::default());
        if changes.is_some() && options.stand_aside {
            leadership.step_aside();
        }
        let webhook_sender = tokio::spawn(crate::control::webhooks::run(
            store.clone(),
            leadership.clone(),
            options.public_url.clone(),
            shutdown_rx.clone(),
        ));
        let control = Arc::new(Control::new(
            store,
            rulesets,
            ingest,
            exposures.clone(),
            leadership,
            options.max_event_skew.as_millis() as i64,
            options.retention,
        ));
        tokio::spawn(crate::control::retention::run(
            Arc::downgrade(&control),
            shutdown_rx.clone(),
        ));
        tokio::spawn(crate::control::backfill::run(
            Arc::downgrade(&control),
            shutdown_rx.clone(),
        ));
        tokio::spawn(crate::control::ruleset::follow_changes(
            Arc::downgrade(&control),
            changes,
            shutdown_rx.clone(),
        ));
        Ok(Server {
            router: compose(control.clone(), shutdown_rx, options),
            shutdown,
            exposures,
            exposure_writer,
            event_writer,
            webhook_sender,
            control,
        })
    }

    /// The control plane behind the router, for in-process use (`sluice demo`).
    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// Starts the supervised guard loop: every `interval`, the breakers check each
    /// running experiment. It stops when the server shuts down.
    pub fn spawn_guard(&self, interval: Duration) -> JoinHandle<()> {
        tokio::spawn(crate::control::guard::supervise(
            self.control.clone(),
            interval,
            self.shutdown.subscribe(),
        ))
    }

    /// Flushes queued exposures and lets the event writer finish its last commit.
    /// Call after the listener stopped and in-flight requests completed.
    pub async fn finish(self) {
        drop(self.router);
        drop(self.control);
        self.exposures.shutdown();
        if let Err(err) = self.exposure_writer.await {
            tracing::error!(error = %err, "exposure writer failed");
        }
        // The writer ends when the last handle to the queue is gone.
        match tokio::time::timeout(FINISH_TIMEOUT, self.event_writer).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "event writer failed"),
            Err(_) => tracing::error!("event writer did not finish in time"),
        }
    }
}

/// The key of pseudonymous user ids, made once per database.
async fn pseudonyms(store: &dyn Store) -> Result<Pseudonyms, StoreError> {
    let fresh = crate::domain::hex(&rand::random::<[u8; 32]>());
    let key = store.server_secret("pseudonym_key", &fresh).await?;
    Ok(Pseudonyms::new(key.into_bytes()))
}

/// The API and the dashboard on one router.
fn compose(
    control: Arc<Control>,
    shutdown: watch::Receiver<bool>,
    options: ServerOptions,
) -> Router {
    let api_state = ApiState::new(control.clone(), shutdown, options.limits);
    let routes = api::router(api_state.clone(), &options.cors_origins)
        .merge(web::router(control, options.cookies));
    api::around(routes, &api_state)
}
