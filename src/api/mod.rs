//! HTTP only: routes, authentication, error mapping. Handlers parse, authorize,
//! call the control layer and map its answer; no SQL and no statistics here.

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

use crate::control::Control;

pub use error::ApiError;
pub use sdk::MAX_EVENTS_PER_BATCH;

/// Request bodies other than event batches are small definitions.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the API's handlers share.
#[derive(Clone)]
pub struct ApiState {
    control: Arc<Control>,
    telemetry: Arc<telemetry::Telemetry>,
    /// Flips to true when the server begins to shut down; long-lived streams end.
    shutdown: watch::Receiver<bool>,
}

impl ApiState {
    pub fn new(control: Arc<Control>, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            control,
            telemetry: Arc::default(),
            shutdown,
        }
    }
}

/// Every API route.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(experiments::router())
        .merge(metrics::router())
        .merge(reports::router())
        .merge(keys::router())
        .merge(sdk::router())
        .merge(ops::router())
        .merge(webhooks::router())
        .with_state(state)
}

/// What every route of the server gets, the dashboard's too: request telemetry,
/// the body limit, and the API's answers to unknown endpoints and methods.
pub fn around(routes: Router, state: &ApiState) -> Router {
    routes
        .route_layer(axum::middleware::from_fn_with_state(
            state.telemetry.clone(),
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
}
