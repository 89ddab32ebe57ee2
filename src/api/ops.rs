//! Operations endpoints: liveness and Prometheus metrics.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::ApiState;
use crate::domain::format_millis;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

/// Liveness, and what an on-call engineer asks first: which ruleset is served,
/// whether this server leads, when the breakers last completed a pass, and
/// whether server-side exposures were lost.
async fn healthz(State(state): State<ApiState>) -> impl IntoResponse {
    let control = &state.control;
    let version = control.rulesets().current().version();
    let leader = control.leadership().is_leading();
    let guard = control.guard_health();
    let exposures = control.exposures();
    Json(json!({
        "status": "ok",
        "ruleset_version": version,
        "leader": leader,
        "guard": {
            "last_pass_at": guard.last_pass_at().map(format_millis),
            "passes": guard.passes(),
            "check_failures": guard.check_failures(),
            "restarts": guard.restarts(),
        },
        "exposures": {
            "dropped": exposures.dropped(),
            "repeats": exposures.repeats(),
        },
    }))
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    let version = state.control.rulesets().current().version();
    let exposures = state.control.exposures();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state
            .telemetry
            .render(version, exposures, state.control.guard_health()),
    )
}
