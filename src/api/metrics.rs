//! `/api/v1/metrics`: what experiments measure.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use super::auth::Caller;
use super::error::ApiError;
use super::json::{AppJson, Definition};
use super::ApiState;
use crate::domain::{Metric, Role};

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/metrics", get(list).post(create))
        .route("/api/v1/metrics/{key}", get(show))
}

async fn create(
    State(state): State<ApiState>,
    caller: Caller,
    Definition(metric): Definition<Metric>,
) -> Result<(StatusCode, AppJson<Metric>), ApiError> {
    caller.require(Role::Editor)?;
    let metric = state.control.create_metric(metric).await?;
    Ok((StatusCode::CREATED, AppJson(metric)))
}

async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<AppJson<Vec<Metric>>, ApiError> {
    caller.require(Role::Analyst)?;
    Ok(AppJson(state.control.list_metrics().await?))
}

async fn show(
    State(state): State<ApiState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<AppJson<Metric>, ApiError> {
    caller.require(Role::Analyst)?;
    Ok(AppJson(state.control.get_metric(&key).await?))
}
