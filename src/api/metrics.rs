//! `/api/v1/metrics`: what experiments measure.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use super::auth::{AnalystRole, Authorized, EditorRole};
use super::error::ApiError;
use super::json::{AppJson, Definition};
use super::ApiState;
use crate::domain::Metric;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/metrics", get(list).post(create))
        .route("/api/v1/metrics/{key}", get(show))
}

async fn create(
    State(state): State<ApiState>,
    _caller: Authorized<EditorRole>,
    Definition(metric): Definition<Metric>,
) -> Result<(StatusCode, AppJson<Metric>), ApiError> {
    let metric = state.control.create_metric(metric).await?;
    Ok((StatusCode::CREATED, AppJson(metric)))
}

async fn list(
    State(state): State<ApiState>,
    _caller: Authorized<AnalystRole>,
) -> Result<AppJson<Vec<Metric>>, ApiError> {
    Ok(AppJson(state.control.list_metrics().await?))
}

async fn show(
    State(state): State<ApiState>,
    _caller: Authorized<AnalystRole>,
    Path(key): Path<String>,
) -> Result<AppJson<Metric>, ApiError> {
    Ok(AppJson(state.control.get_metric(&key).await?))
}
