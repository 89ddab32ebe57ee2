//! One error type for every handler, rendered as the contract's error body:
//! `{"error": {"code", "message", "details"}}`. Internal failures are logged with
//! their cause and answered with a generic message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::control::ControlError;
use crate::domain::{FieldProblem, ValidationError};
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Vec<FieldProblem>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn with_details(mut self, details: Vec<FieldProblem>) -> Self {
        self.details = details;
        self
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: String) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    pub fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause, source = ?cause.source(), "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message the client is shown (never an internal cause).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            err.to_string(),
        )
        .with_details(err.problems)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::AlreadyExists(_) => {
                Self::new(StatusCode::CONFLICT, "already_exists", err.to_string())
            }
            StoreError::Conflict(_) => {
                Self::new(StatusCode::CONFLICT, "concurrent_change", err.to_string())
            }
            StoreError::NotFound(_) => Self::not_found(err.to_string()),
            _ if err.is_unavailable() => {
                tracing::error!(error = ?err, "the database is unreachable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database is unreachable; retry later",
                )
            }
            _ => Self::internal(&err),
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(err: ControlError) -> Self {
        match err {
            ControlError::Invalid(err) => err.into(),
            ControlError::NotFound(what) => Self::not_found(format!("{what} not found")),
            ControlError::Refused(refused) => {
                Self::new(StatusCode::CONFLICT, "conflict", refused.to_string())
            }
            ControlError::Store(err) => err.into(),
            ControlError::Unavailable(err) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                err.to_string(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "details": self.details,
        }});
        (self.status, Json(body)).into_response()
    }
}
