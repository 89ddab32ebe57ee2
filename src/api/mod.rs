//! HTTP only: routes, authentication, error mapping. Handlers parse, authorize,
//! call the control layer and map its answer; no SQL and no statistics here.

mod auth;
mod environments;
mod error;
mod experiments;
mod growthbook;
mod json;
mod keys;
mod limits;
mod metrics;
mod ofrep;
mod ops;
mod reports;
mod sdk;
mod telemetry;
mod users;
mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use tokio::sync::watch;

use crate::control::Control;
use crate::domain::ApiKey;

pub use error::ApiError;
pub use limits::{RateLimits, DEFAULT_EVENT_BYTES_IN_FLIGHT};

/// What one caller may take of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub rates: RateLimits,
    /// Bytes of event batches received but not yet committed.
    pub event_bytes_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            rates: RateLimits::default(),
            event_bytes_in_flight: DEFAULT_EVENT_BYTES_IN_FLIGHT,
        }
    }
}
pub use sdk::MAX_EVENTS_PER_BATCH;

/// Request bodies other than event batches are small definitions.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the API's handlers share.
#[derive(Clone)]
pub struct ApiState {
    control: Arc<Control>,
    telemetry: Arc<telemetry::Telemetry>,
    limiter: Arc<limits::Limiter>,
    /// Bytes of event batches between being received and being committed.
    event_bytes: Arc<limits::EventBytes>,
    /// Flips to true when the server begins to shut down; long-lived streams end.
    shutdown: watch::Receiver<bool>,
}

impl ApiState {
    pub fn new(control: Arc<Control>, shutdown: watch::Receiver<bool>, limits: Limits) -> Self {
        Self {
            control,
            telemetry: Arc::default(),
            limiter: Arc::new(limits::Limiter::new(limits.rates)),
            event_bytes: Arc::new(limits::EventBytes::new(limits.event_bytes_in_flight)),
            shutdown,
        }
    }
}

impl ApiState {
    /// Counts a request of `key` against its rate limit on `surface`.
    fn admit(&self, key: &ApiKey, surface: limits::Surface) -> Result<(), limits::SlowDown> {
        self.limiter.admit(key.id, surface)
    }
}

/// Which browser origins may call the SDK endpoints (CORS).
#[derive(Debug, Clone, Default)]
pub enum CorsOrigins {
    /// Any origin: SDK keys are public and read-only by design.
    #[default]
    Any,
    /// Only these (`https://shop.example.com`).
    List(Vec<String>),
}

impl CorsOrigins {
    /// `*` or a comma-separated list of origins.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim() == "*" {
            return Ok(CorsOrigins::Any);
        }
        let origins: Vec<String> = text
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        match origins
            .iter()
            .find(|o| !(o.starts_with("http://") || o.starts_with("https://")))
        {
            Some(bad) => Err(format!(
                "{bad:?} is not an origin like https://shop.example.com"
            )),
            None if origins.is_empty() => Err("name at least one origin, or *".to_owned()),
            None => Ok(CorsOrigins::List(origins)),
        }
    }
}

/// Every API route. Only the SDK-facing endpoints (ours, GrowthBook's and
/// OFREP's) answer browsers on other origins.
pub fn router(state: ApiState, cors: &CorsOrigins) -> Router {
    Router::new()
        .merge(experiments::router())
        .merge(metrics::router())
        .merge(environments::router())
        .merge(reports::router())
        .merge(keys::router())
        .merge(
            sdk::router()
                .merge(growthbook::router())
                .merge(ofrep::router())
                .layer(sdk::cors(cors)),
        )
        .merge(ops::router())
        .merge(webhooks::router())
        .merge(users::router())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_star_or_a_list_of_origins() {
        assert!(matches!(CorsOrigins::parse(" * "), Ok(CorsOrigins::Any)));
        let Ok(CorsOrigins::List(list)) =
            CorsOrigins::parse("https://shop.example.com/, http://localhost:3000")
        else {
            panic!("a list");
        };
        assert_eq!(list, ["https://shop.example.com", "http://localhost:3000"]);
        assert!(CorsOrigins::parse("shop.example.com").is_err());
        assert!(CorsOrigins::parse(" , ").is_err());
    }
}
