//! `DELETE /api/v1/users/{id}` (admin): erase what is stored about one user, for
//! their right to be forgotten.

use axum::extract::{Path, State};
use axum::routing::delete;
use axum::Router;
use serde_json::{json, Value};

use super::auth::{AdminRole, Authorized};
use super::error::ApiError;
use super::json::AppJson;
use super::ApiState;

pub(crate) fn router() -> Router<ApiState> {
    Router::new().route("/api/v1/users/{id}", delete(erase))
}

async fn erase(
    State(state): State<ApiState>,
    caller: Authorized<AdminRole>,
    Path(user): Path<String>,
) -> Result<AppJson<Value>, ApiError> {
    let events = state.control.erase_user(&user, &caller.actor()).await?;
    Ok(AppJson(json!({"user": user, "events_erased": events})))
}
