//! `/api/v1/keys` (admin): mint, list and revoke API keys. A new key's secret is in
//! the response once; only hashes are stored.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::json::AppJson;
use super::AppState;
use crate::domain::{ApiKey, Role};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/keys", get(list).post(create))
        .route("/api/v1/keys/{id}", delete(revoke))
}

#[derive(Deserialize)]
struct CreateKey {
    role: Role,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    environment: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(body): AppJson<CreateKey>,
) -> Result<(StatusCode, AppJson<Value>), ApiError> {
    caller.require(Role::Admin)?;
    let (secret, key) = state
        .control
        .create_api_key(body.role, body.name, body.environment)
        .await?;
    let mut response = serde_json::to_value(key).unwrap_or_default();
    response["key"] = json!(secret);
    Ok((StatusCode::CREATED, AppJson(response)))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<AppJson<Vec<ApiKey>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(AppJson(state.control.list_api_keys().await?))
}

async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    super::auth::revoke_key(&state, id, caller.name()).await?;
    Ok(StatusCode::NO_CONTENT)
}
