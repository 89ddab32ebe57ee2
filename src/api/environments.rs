//! `/api/v1/environments`: where experiments are served. Analysts read them,
//! admins add them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use super::auth::{AdminRole, AnalystRole, Authorized};
use super::error::ApiError;
use super::json::{AppJson, Definition};
use super::ApiState;
use crate::domain::Environment;

pub(crate) fn router() -> Router<ApiState> {
    Router::new().route("/api/v1/environments", get(list).post(create))
}

async fn list(
    State(state): State<ApiState>,
    _caller: Authorized<AnalystRole>,
) -> Result<AppJson<Vec<Environment>>, ApiError> {
    Ok(AppJson(state.control.list_environments().await?))
}

async fn create(
    State(state): State<ApiState>,
    caller: Authorized<AdminRole>,
    Definition(environment): Definition<Environment>,
) -> Result<(StatusCode, AppJson<Environment>), ApiError> {
    let created = state
        .control
        .create_environment(environment, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, AppJson(created)))
}
