//! `/api/v1/keys` (admin): mint API keys. The secret is in the response once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Caller;
use super::error::ApiError;
use super::json::AppJson;
use super::AppState;
use crate::domain::Role;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/api/v1/keys", post(create))
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
