//! `/api/v1/webhooks` (admin): subscribe URLs to changes, and read delivery logs.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::Router;

use super::auth::Caller;
use super::error::ApiError;
use super::json::AppJson;
use super::AppState;
use crate::domain::webhook::{Delivery, NewWebhook, Webhook};
use crate::domain::Role;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/webhooks", get(list).post(create))
        .route("/api/v1/webhooks/{id}", delete(remove))
        .route("/api/v1/webhooks/{id}/deliveries", get(deliveries))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(hook): AppJson<NewWebhook>,
) -> Result<(StatusCode, AppJson<Webhook>), ApiError> {
    caller.require(Role::Admin)?;
    hook.validate()?;
    let stored = state.control.store().insert_webhook(&hook).await?;
    Ok((StatusCode::CREATED, AppJson(stored)))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<AppJson<Vec<Webhook>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(AppJson(state.control.store().list_webhooks().await?))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    if state.control.store().delete_webhook(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("webhook {id} not found")))
    }
}

async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<AppJson<Vec<Delivery>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(AppJson(state.control.store().webhook_deliveries(id).await?))
}
