//! HTTP only: routes, authentication, error mapping. Handlers parse, authorize, call
//! the control layer and map its answer; no SQL and no statistics here.

mod auth;
mod error;
mod experiments;
mod json;
mod keys;
mod metrics;
mod ops;
mod reports;
mod sdk;
mod telemetry;
mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::control::{Control, ExposureLog, IngestQueue, Leadership, RulesetHub};
use crate::store::{Store, StoreError};

pub(crate) use auth::{authenticate, require_role, revoke_key};
pub use error::ApiError;
pub(crate) use reports::{csv_attachment, plan, PowerQuery};
pub use sdk::MAX_EVENTS_PER_BATCH;

const FINISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Request bodies other than event batches are small definitions.
const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub(crate) control: Arc<Control>,
    keys: Arc<auth::KeyCache>,
    telemetry: Arc<telemetry::Telemetry>,
    /// Flips to true when the server begins to shut down; long-lived streams end.
    shutdown: watch::Receiver<bool>,
}

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
    /// Other servers may share the store.
    shared: bool,
}

impl Server {
    /// Builds the state and router over a store and starts background writers.
    pub async fn build(store: Arc<dyn Store>) -> Result<Server, StoreError> {
        let rulesets = RulesetHub::load(store.as_ref()).await?;
        let (ingest, event_writer) = IngestQueue::spawn(store.clone());
        let (exposures, exposure_writer) = ExposureLog::spawn(ingest.clone());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let leadership = Arc::new(Leadership::default());
        let webhook_sender = tokio::spawn(crate::control::webhooks::run(
            store.clone(),
            leadership.clone(),
            shutdown_rx.clone(),
        ));
        let changes = store.changes().await?;
        let shared = changes.is_some();
        let control = Arc::new(Control::new(
            store,
            rulesets,
            ingest,
            exposures.clone(),
            leadership,
        ));
        if let Some(changes) = changes {
            tokio::spawn(crate::control::ruleset::follow_other_servers(
                Arc::downgrade(&control),
                changes,
                shutdown_rx.clone(),
            ));
        }
        let state = AppState {
            control: control.clone(),
            keys: Arc::default(),
            telemetry: Arc::default(),
            shutdown: shutdown_rx,
        };
        Ok(Server {
            router: router(state),
            shutdown,
            exposures,
            exposure_writer,
            event_writer,
            webhook_sender,
            control,
            shared,
        })
    }

    /// The control plane behind the router, for in-process use (`sluice demo`).
    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// Starts the guard loop: every `interval`, the breakers check each running
    /// experiment. It stops when the server shuts down.
    /// Runs this server without a guard loop. Where servers share the database it
    /// then never leads, so the guard, the scheduler and webhook delivery stay with
    /// one that runs them all; a lone server still delivers webhooks.
    pub fn without_guard(&self) {
        if self.shared {
            self.control.leadership().step_aside();
        }
    }

    pub fn spawn_guard(&self, interval: std::time::Duration) -> JoinHandle<()> {
        let shutdown = self.shutdown.subscribe();
        tokio::spawn(crate::control::guard::run_loop(
            self.control.clone(),
            interval,
            shutdown,
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

fn router(state: AppState) -> Router {
    Router::new()
        .merge(experiments::router())
        .merge(metrics::router())
        .merge(reports::router())
        .merge(keys::router())
        .merge(sdk::router())
        .merge(ops::router())
        .merge(webhooks::router())
        .merge(crate::web::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            telemetry::record,
        ))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not accept that method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
