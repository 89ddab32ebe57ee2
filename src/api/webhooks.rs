//! `/api/v1/webhooks` (admin): subscribe URLs to changes, and read delivery logs.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::Router;

use super::auth::{AdminRole, Authorized};
use super::error::ApiError;
use super::json::{AppJson, Definition};
use super::ApiState;
use crate::domain::webhook::{Delivery, NewWebhook, Webhook};

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/webhooks", get(list).post(create))
        .route("/api/v1/webhooks/{id}", delete(remove))
        .route("/api/v1/webhooks/{id}/deliveries", get(deliveries))
}

async fn create(
    State(state): State<ApiState>,
    caller: Authorized<AdminRole>,
    Definition(hook): Definition<NewWebhook>,
) -> Result<(StatusCode, AppJson<Webhook>), ApiError> {
    let stored = state.control.create_webhook(hook, &caller.actor()).await?;
    Ok((StatusCode::CREATED, AppJson(stored)))
}

async fn list(
    State(state): State<ApiState>,
    _caller: Authorized<AdminRole>,
) -> Result<AppJson<Vec<Webhook>>, ApiError> {
    Ok(AppJson(state.control.list_webhooks().await?))
}

async fn remove(
    State(state): State<ApiState>,
    caller: Authorized<AdminRole>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.control.delete_webhook(id, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn deliveries(
    State(state): State<ApiState>,
    _caller: Authorized<AdminRole>,
    Path(id): Path<i64>,
) -> Result<AppJson<Vec<Delivery>>, ApiError> {
    Ok(AppJson(state.control.webhook_deliveries(id).await?))
}
