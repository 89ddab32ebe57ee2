//! One error type for every handler, rendered as the contract's error body:
//! `{"error": {"code", "message", "details"}}`. Internal failures are logged with
//! their cause and answered with a generic message.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::control::{ControlError, ControlErrorKind};
use crate::domain::key::RoleRefused;
use crate::domain::{FieldProblem, ValidationError};
use crate::http::status_of;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Vec<FieldProblem>,
    /// Seconds for `Retry-After`, on 429.
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// 503: the server has no room for the request now; retry in a second.
    pub(crate) fn busy(message: &str) -> Self {
        let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message);
        err.retry_after = Some(1);
        err
    }

    /// 429: this key sent more than its rate limit allows.
    pub(crate) fn too_many_requests(wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("this key sent more requests than its rate limit allows; retry in {seconds} s"),
        );
        err.retry_after = Some(seconds.max(1));
        err
    }

    pub fn with_details(mut self, details: Vec<FieldProblem>) -> Self {
        self.details = details;
        self
    }

    pub(crate) fn unauthorized(message: &str) -> Self {
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

impl From<ControlError> for ApiError {
    fn from(err: ControlError) -> Self {
        let kind = err.kind();
        let (status, code) = status_of(kind);
        match (kind, err) {
            (_, ControlError::Invalid(invalid)) => invalid.into(),
            (ControlErrorKind::Internal, err) => Self::internal(&err),
            (ControlErrorKind::DatabaseUnavailable, err) => {
                tracing::error!(error = ?err, "the database is unreachable");
                Self::new(status, code, "the database is unreachable; retry later")
            }
            (_, err) => Self::new(status, code, err.to_string()),
        }
    }
}

impl From<RoleRefused> for ApiError {
    fn from(err: RoleRefused) -> Self {
        Self::forbidden(err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "details": self.details,
        }});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
