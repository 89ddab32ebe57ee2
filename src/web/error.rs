//! What a dashboard request that fails shows: a redirect to sign in, or a page that
//! says what went wrong with the status the API would answer.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::view::render;
use crate::control::{ControlError, ControlErrorKind};
use crate::domain::key::RoleRefused;
use crate::http::status_of;

#[derive(Debug)]
pub(crate) enum WebError {
    /// No session, or its key is no longer valid.
    SignIn,
    /// A form's CSRF token was missing or wrong; nothing was changed.
    BadCsrf,
    /// Anything else, with the message a person may read.
    Page { status: StatusCode, message: String },
}

impl WebError {
    pub(crate) fn bad_request(message: &str) -> Self {
        WebError::Page {
            status: StatusCode::BAD_REQUEST,
            message: message.to_owned(),
        }
    }
}

impl From<ControlError> for WebError {
    fn from(err: ControlError) -> Self {
        let kind = err.kind();
        let (status, _) = status_of(kind);
        let message = match kind {
            ControlErrorKind::Internal => {
                tracing::error!(error = %err, source = ?std::error::Error::source(&err), "internal error");
                "Something went wrong on the server; its log has the details.".to_owned()
            }
            ControlErrorKind::DatabaseUnavailable => {
                tracing::error!(error = ?err, "the database is unreachable");
                "The database is unreachable; try again in a moment.".to_owned()
            }
            _ => err.to_string(),
        };
        WebError::Page { status, message }
    }
}

impl From<RoleRefused> for WebError {
    fn from(err: RoleRefused) -> Self {
        WebError::Page {
            status: StatusCode::FORBIDDEN,
            message: err.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    reason: &'a str,
    message: &'a str,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            WebError::SignIn => return Redirect::to("/signin").into_response(),
            WebError::BadCsrf => (
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this dashboard. Reload the page and try again.".to_owned(),
            ),
            WebError::Page { status, message } => (status, message),
        };
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: &message,
        };
        (status, render(&page)).into_response()
    }
}
