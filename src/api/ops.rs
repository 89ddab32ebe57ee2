//! Operations endpoints: liveness and Prometheus metrics.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let version = state.control.rulesets().current().version();
    let leader = state.control.leadership().is_leading();
    Json(json!({"status": "ok", "ruleset_version": version, "leader": leader}))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let version = state.control.rulesets().current().version();
    let dropped = state.control.exposures().dropped();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.telemetry.render(version, dropped),
    )
}
