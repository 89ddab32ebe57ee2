//! OpenFeature remote evaluation (OFREP), so that OpenFeature's providers in any
//! language evaluate our experiments on the server: `POST
//! /ofrep/v1/evaluate/flags/{key}` and the bulk `POST /ofrep/v1/evaluate/flags`.
//! Each served experiment is a flag; evaluation is `/sdk/v1/assign`'s, exposures
//! included. Every answer, errors too, is JSON with the flag's `key`, a `reason`,
//! a `variant` and a `metadata` object, which some providers require.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, ETAG, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use sluice_sdk::{Attributes, Reason};

use super::limits::Surface;
use super::sdk::{log_exposures, matches_etag, preflight};
use super::ApiState;
use crate::control::{ControlError, RulesetSnapshot};
use crate::domain::{hex, ApiKey, Role};
use crate::http::status_of;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/ofrep/v1/evaluate/flags", post(bulk).options(preflight))
        .route(
            "/ofrep/v1/evaluate/flags/{key}",
            post(single).options(preflight),
        )
}

/// OFREP's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum ErrorCode {
    FlagNotFound,
    TargetingKeyMissing,
    InvalidContext,
    ParseError,
}

impl ErrorCode {
    fn status(self) -> StatusCode {
        match self {
            ErrorCode::FlagNotFound => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// One flag's answer, or why there is none.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum FlagAnswer {
    Evaluated {
        key: String,
        value: Value,
        variant: String,
        reason: &'static str,
        metadata: Value,
    },
    Failed {
        key: String,
        #[serde(rename = "errorCode")]
        error_code: ErrorCode,
        #[serde(rename = "errorDetails")]
        error_details: String,
        /// Sent even with errors: providers that read these without a default
        /// would fail on their absence.
        reason: &'static str,
        metadata: Value,
    },
}

impl FlagAnswer {
    fn failed(key: &str, error_code: ErrorCode, details: impl Into<String>) -> Self {
        FlagAnswer::Failed {
            key: key.to_owned(),
            error_code,
            error_details: details.into(),
            reason: "ERROR",
            metadata: json!({}),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            FlagAnswer::Evaluated { .. } => StatusCode::OK,
            FlagAnswer::Failed { error_code, .. } => error_code.status(),
        }
    }
}

impl IntoResponse for FlagAnswer {
    fn into_response(self) -> Response {
        (self.status(), Json(self)).into_response()
    }
}

/// Authentication failures and unavailability, before any flag is looked at.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let Refused(status, details) = self;
        let code = match status {
            StatusCode::TOO_MANY_REQUESTS => "RATE_LIMITED",
            s if s.is_server_error() => "GENERAL",
            _ => "UNAUTHORIZED",
        };
        let body = json!({"key": "", "errorCode": code, "errorDetails": details, "metadata": {}});
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl From<ControlError> for Refused {
    fn from(err: ControlError) -> Self {
        let (status, _) = status_of(err.kind());
        if status.is_server_error() {
            tracing::error!(error = %err, "OFREP authentication failed");
            return Refused(status, "the server cannot answer now; retry later".into());
        }
        Refused(status, err.to_string())
    }
}

/// The key from `Authorization: Bearer KEY` or `X-API-Key: KEY`.
async fn sdk_key(state: &ApiState, headers: &HeaderMap) -> Result<Arc<ApiKey>, Refused> {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let secret = bearer
        .or(api_key)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Refused(
                StatusCode::UNAUTHORIZED,
                "send the SDK key as Authorization: Bearer KEY or X-API-Key: KEY".into(),
            )
        })?;
    let key = state.control.keys().authenticate(secret).await?;
    key.require(Role::Sdk)
        .map_err(|refused| Refused(StatusCode::FORBIDDEN, refused.to_string()))?;
    state.admit(&key, Surface::Sdk).map_err(|_| {
        let message = "this key sent more requests than its rate limit allows".to_owned();
        Refused(StatusCode::TOO_MANY_REQUESTS, message)
    })?;
    Ok(key)
}

/// The request's context as attributes.
fn context(body: &[u8]) -> Result<Attributes, (ErrorCode, String)> {
    let request: Value =
        serde_json::from_slice(body).map_err(|err| (ErrorCode::ParseError, err.to_string()))?;
    match request.get("context") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(context)) => Ok(context.clone()),
        Some(_) => Err((
            ErrorCode::InvalidContext,
            "\"context\" must be a JSON object".to_owned(),
        )),
    }
}

/// Evaluates one flag and logs its exposure as `/sdk/v1/assign` does;
/// `targetingKey` stands for the hash attribute when the context lacks it.
async fn evaluate(
    state: &ApiState,
    snapshot: &RulesetSnapshot,
    flag: &str,
    context: &Attributes,
) -> FlagAnswer {
    let Some(served) = snapshot.served.get(flag) else {
        return FlagAnswer::failed(flag, ErrorCode::FlagNotFound, "no such flag is served");
    };
    let targeted;
    let attributes = match context.get("targetingKey") {
        Some(key) if !context.contains_key(&served.hash_attribute) => {
            let mut with_unit = context.clone();
            with_unit.insert(served.hash_attribute.clone(), key.clone());
            targeted = with_unit;
            &targeted
        }
        _ => context,
    };
    let Some(assignment) = snapshot.compiled.assign(flag, attributes) else {
        return FlagAnswer::failed(flag, ErrorCode::FlagNotFound, "no such flag is served");
    };
    log_exposures(
        state,
        snapshot,
        attributes,
        std::slice::from_ref(&assignment),
    )
    .await;
    let reason = match assignment.reason {
        Reason::Split => "SPLIT",
        Reason::Shipped => "STATIC",
        Reason::Draft | Reason::Paused | Reason::RolledBack | Reason::Stopped => "DISABLED",
        Reason::NoHashAttribute => {
            let details = format!(
                "the context has no targetingKey and no {:?} attribute",
                served.hash_attribute
            );
            return FlagAnswer::failed(flag, ErrorCode::TargetingKeyMissing, details);
        }
        Reason::Condition | Reason::Namespace | Reason::Coverage | Reason::InvalidRule => "DEFAULT",
    };
    FlagAnswer::Evaluated {
        key: flag.to_owned(),
        value: assignment.value.clone(),
        variant: assignment.variant.to_owned(),
        reason,
        metadata: json!({"in_experiment": assignment.in_experiment}),
    }
}

async fn single(
    State(state): State<ApiState>,
    Path(flag): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<FlagAnswer, Refused> {
    let key = sdk_key(&state, &headers).await?;
    let context = match context(&body) {
        Ok(context) => context,
        Err((code, details)) => return Ok(FlagAnswer::failed(&flag, code, details)),
    };
    let rulesets = state.control.rulesets().current();
    let snapshot = rulesets.environment(key.served_environment());
    Ok(evaluate(&state, snapshot, &flag, &context).await)
}

async fn bulk(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refused> {
    let key = sdk_key(&state, &headers).await?;
    let context = match context(&body) {
        Ok(context) => context,
        Err((code, details)) => {
            let body = json!({"errorCode": code, "errorDetails": details});
            return Ok((code.status(), Json(body)).into_response());
        }
    };
    let rulesets = state.control.rulesets().current();
    let snapshot = rulesets.environment(key.served_environment());
    let mut flags = Vec::new();
    for rule in snapshot.compiled.rules() {
        flags.push(evaluate(&state, snapshot, &rule.key, &context).await);
    }
    let body = serde_json::to_vec(&json!({ "flags": flags })).unwrap_or_default();
    let etag = format!("\"{}\"", &hex(&Sha256::digest(&body))[..24]);
    let etag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    let content_type = HeaderValue::from_static("application/json");
    if matches_etag(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(ETAG, etag)]).into_response());
    }
    Ok(([(ETAG, etag), (CONTENT_TYPE, content_type)], body).into_response())
}
