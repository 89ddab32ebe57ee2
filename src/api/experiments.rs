//! `/api/v1/experiments`: definitions, lifecycle actions and the audit log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::Value;

use super::auth::{AnalystRole, Authorized, EditorRole};
use super::error::ApiError;
use super::json::{parse, AppJson};
use super::ApiState;
use crate::control::guard::GuardDecision;
use crate::domain::validation::from_json_exact;
use crate::domain::{AuditEntry, Experiment, ExperimentSpec, LifecycleAction, Status};

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/experiments", get(list).post(create))
        .route("/api/v1/experiments/{key}", get(show).patch(update))
        .route("/api/v1/experiments/{key}/audit", get(audit))
        .route("/api/v1/experiments/{key}/guard/check", post(guard_check))
        .route("/api/v1/experiments/{key}/{action}", post(act))
}

async fn create(
    State(state): State<ApiState>,
    caller: Authorized<EditorRole>,
    AppJson(mut body): AppJson<Value>,
) -> Result<(StatusCode, AppJson<Experiment>), ApiError> {
    // The body may say `"status": "draft"`, as API.md shows; nothing else.
    let status = body.as_object_mut().and_then(|b| b.remove("status"));
    if status.is_some_and(|s| s != Status::Draft.as_str()) {
        return Err(crate::domain::ValidationError::single(
            "status",
            "experiments are created as drafts; use POST /api/v1/experiments/{key}/start",
        )
        .into());
    }
    let experiment = state
        .control
        .create_experiment(from_json_exact::<ExperimentSpec>(body)?, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, AppJson(experiment)))
}

async fn list(
    State(state): State<ApiState>,
    _caller: Authorized<AnalystRole>,
) -> Result<AppJson<Vec<Experiment>>, ApiError> {
    Ok(AppJson(state.control.list_experiments().await?))
}

async fn show(
    State(state): State<ApiState>,
    _caller: Authorized<AnalystRole>,
    Path(key): Path<String>,
) -> Result<AppJson<Experiment>, ApiError> {
    Ok(AppJson(state.control.get_experiment(&key).await?))
}

async fn update(
    State(state): State<ApiState>,
    caller: Authorized<EditorRole>,
    Path(key): Path<String>,
    AppJson(patch): AppJson<Value>,
) -> Result<AppJson<Experiment>, ApiError> {
    let experiment = state
        .control
        .patch_experiment(&key, &patch, &caller.actor())
        .await?;
    Ok(AppJson(experiment))
}

#[derive(Deserialize)]
struct ShipBody {
    variant: String,
}

async fn act(
    State(state): State<ApiState>,
    caller: Authorized<EditorRole>,
    Path((key, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<AppJson<Experiment>, ApiError> {
    let variant = match action.as_str() {
        "ship" => Some(parse::<ShipBody>(&body)?.variant),
        _ => None,
    };
    let action = LifecycleAction::from_name(&action, variant).ok_or_else(|| {
        ApiError::not_found(format!(
            "no action {action:?}; use start, pause, resume, rollback, ship or stop"
        ))
    })?;
    let experiment = state.control.act(&key, action, &caller.actor()).await?;
    Ok(AppJson(experiment))
}

async fn audit(
    State(state): State<ApiState>,
    _caller: Authorized<AnalystRole>,
    Path(key): Path<String>,
) -> Result<AppJson<Vec<AuditEntry>>, ApiError> {
    Ok(AppJson(state.control.audit_log(&key).await?))
}

async fn guard_check(
    State(state): State<ApiState>,
    _caller: Authorized<EditorRole>,
    Path(key): Path<String>,
) -> Result<AppJson<GuardDecision>, ApiError> {
    Ok(AppJson(state.control.guard_check(&key).await?))
}
