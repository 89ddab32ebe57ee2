//! `/api/v1/keys` (admin): mint, list and revoke API keys. A new key's secret is in
//! the response once; only hashes are stored. `/api/v1/audit` (admin): who changed
//! keys and webhooks.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{AdminRole, Authorized};
use super::error::ApiError;
use super::json::{AppJson, Definition};
use super::ApiState;
use crate::control::KeyRequest;
use crate::domain::{ApiKey, AuditEntry, Role};

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/keys", get(list).post(create))
        .route("/api/v1/keys/{id}", delete(revoke))
        .route("/api/v1/audit", get(settings_audit))
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
    State(state): State<ApiState>,
    caller: Authorized<AdminRole>,
    Definition(body): Definition<CreateKey>,
) -> Result<(StatusCode, AppJson<Value>), ApiError> {
    let request = KeyRequest {
        role: body.role,
        name: body.name,
        environment: body.environment,
    };
    let (secret, key) = state
        .control
        .keys()
        .create(request, &caller.actor())
        .await?;
    let mut response = serde_json::to_value(key).unwrap_or_default();
    response["key"] = json!(secret);
    Ok((StatusCode::CREATED, AppJson(response)))
}

async fn list(
    State(state): State<ApiState>,
    _caller: Authorized<AdminRole>,
) -> Result<AppJson<Vec<ApiKey>>, ApiError> {
    Ok(AppJson(state.control.keys().list().await?))
}

async fn revoke(
    State(state): State<ApiState>,
    caller: Authorized<AdminRole>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.control.keys().revoke(id, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many settings changes `/api/v1/audit` lists, newest first.
const SETTINGS_AUDIT_LIMIT: u32 = 500;

async fn settings_audit(
    State(state): State<ApiState>,
    _caller: Authorized<AdminRole>,
) -> Result<AppJson<Vec<AuditEntry>>, ApiError> {
    let entries = state
        .control
        .settings_audit_log(SETTINGS_AUDIT_LIMIT)
        .await?;
    Ok(AppJson(entries))
}
