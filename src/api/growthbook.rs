//! GrowthBook-compatible SDK endpoints, so that GrowthBook's own SDKs (JavaScript,
//! Python, Go, Kotlin, Swift…) evaluate our experiments locally and agree with
//! `/sdk/v1/assign`: `GET /api/features/{key}` and its stream `GET /sub/{key}`.
//! The key is in the path, as those SDKs send it; errors take their shape,
//! `{"status", "error"}`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use serde_json::json;

use super::limits::Surface;
use super::sdk::{matches_etag, preflight};
use super::ApiState;
use crate::control::ControlError;
use crate::domain::{ApiKey, Role};
use crate::http::status_of;

const SSE_SUPPORT: HeaderName = HeaderName::from_static("x-sse-support");

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/features/{key}", get(features).options(preflight))
        .route("/sub/{key}", get(subscribe).options(preflight))
}

/// An error in the shape GrowthBook's SDKs read.
struct GrowthBookError(StatusCode, String);

impl IntoResponse for GrowthBookError {
    fn into_response(self) -> Response {
        let GrowthBookError(status, error) = self;
        let body = Json(json!({"status": status.as_u16(), "error": error}));
        let mut response = (status, body).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<ControlError> for GrowthBookError {
    fn from(err: ControlError) -> Self {
        let (status, _) = status_of(err.kind());
        let message = if status.is_server_error() {
            tracing::error!(error = %err, "GrowthBook endpoint failed");
            "the server cannot answer now; retry later".to_owned()
        } else {
            err.to_string()
        };
        GrowthBookError(status, message)
    }
}

async fn sdk_key(state: &ApiState, secret: &str) -> Result<Arc<ApiKey>, GrowthBookError> {
    let key = state.control.keys().authenticate(secret).await?;
    key.require(Role::Sdk)
        .map_err(|refused| GrowthBookError(StatusCode::FORBIDDEN, refused.to_string()))?;
    state.admit(&key, Surface::Sdk).map_err(|_| {
        let message = "this key sent more requests than its rate limit allows".to_owned();
        GrowthBookError(StatusCode::TOO_MANY_REQUESTS, message)
    })?;
    Ok(key)
}

async fn features(
    State(state): State<ApiState>,
    Path(secret): Path<String>,
    headers: HeaderMap,
) -> Result<Response, GrowthBookError> {
    let key = sdk_key(&state, &secret).await?;
    let rulesets = state.control.rulesets().current();
    let snapshot = rulesets.environment(key.served_environment());
    let headers_out = [
        (ETAG, snapshot.etag.clone()),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
        (SSE_SUPPORT, HeaderValue::from_static("enabled")),
    ];
    Ok(if matches_etag(&headers, &snapshot.etag) {
        (StatusCode::NOT_MODIFIED, headers_out).into_response()
    } else {
        (headers_out, snapshot.growthbook.clone()).into_response()
    })
}

/// The payload at once, then again each time the key's environment is served
/// something new.
async fn subscribe(
    State(state): State<ApiState>,
    Path(secret): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, GrowthBookError> {
    let key = sdk_key(&state, &secret).await?;
    let mut shutdown = state.shutdown.clone();
    let payloads = state
        .control
        .rulesets()
        .follow(key.served_environment().to_owned())
        .map(|snapshot| {
            let data = String::from_utf8_lossy(&snapshot.growthbook).into_owned();
            Ok(SseEvent::default().event("features").data(data))
        })
        .take_until(async move {
            let _ = shutdown.wait_for(|stopping| *stopping).await;
        });
    Ok(Sse::new(payloads).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
