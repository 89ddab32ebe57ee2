//! What a dashboard request that fails shows: a redirect to sign in, or a page that
//! says what went wrong with the status the API would answer.
//!
//! A handler's error does not know the request's language, so it becomes a bare
//! response carrying a [`Failure`]; the [`localize`] layer, which sees the request,
//! renders the page in its language.

use askama::Template;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::lang::{LangSwitch, Locale};
use super::text::Text;
use super::view::render;
use crate::control::{ControlError, ControlErrorKind};
use crate::domain::experiment::ChangeRefused;
use crate::domain::key::RoleRefused;
use crate::domain::ValidationError;
use crate::http::status_of;

#[derive(Debug)]
pub(crate) enum WebError {
    /// No session, or its key is no longer valid.
    SignIn,
    /// A form's CSRF token was missing or wrong; nothing was changed.
    BadCsrf,
    /// Anything else, with what a person may read.
    Page {
        status: StatusCode,
        problem: Problem,
    },
}

/// What went wrong, to be put in words in the reader's language.
#[derive(Debug, Clone)]
pub(crate) enum Problem {
    Internal,
    DatabaseUnavailable,
    BadCsrf,
    /// The language switch named a language the dashboard is not written in.
    UnknownLanguage,
    ShuttingDown,
    UnreadableForm,
    FormTooLarge,
    NoSuchAction,
    NoSuchRole,
    /// What was not found, as the control layer names it in English.
    NotFound(String),
    AlreadyExists,
    ConcurrentChange,
    Refused(ChangeRefused),
    RoleRefused(RoleRefused),
    Invalid(ValidationError),
}

impl Problem {
    pub(crate) fn text(&self, t: Text) -> String {
        match self {
            Problem::Internal => t.error_internal().to_owned(),
            Problem::DatabaseUnavailable => t.error_database().to_owned(),
            Problem::BadCsrf => t.error_bad_csrf().to_owned(),
            Problem::UnknownLanguage => t.error_unknown_language().to_owned(),
            Problem::ShuttingDown => t.error_shutting_down().to_owned(),
            Problem::UnreadableForm => t.error_unreadable_form().to_owned(),
            Problem::FormTooLarge => t.error_form_too_large().to_owned(),
            Problem::NoSuchAction => t.error_no_such_action().to_owned(),
            Problem::NoSuchRole => t.error_no_such_role().to_owned(),
            Problem::NotFound(what) => t.error_not_found(t.domain(what)),
            Problem::AlreadyExists => t.error_already_exists().to_owned(),
            Problem::ConcurrentChange => t.error_concurrent_change().to_owned(),
            Problem::Refused(ChangeRefused::IllegalTransition { action, from }) => {
                t.error_illegal_move(t.event_of(action), t.status_named(from))
            }
            Problem::Refused(ChangeRefused::Frozen { fields }) => {
                let fields: Vec<&str> = fields.iter().map(|f| t.frozen_field(*f)).collect();
                t.error_frozen(fields.join(", "))
            }
            Problem::Refused(ChangeRefused::StatusViaPatch) => {
                t.error_status_via_patch().to_owned()
            }
            Problem::RoleRefused(refused) => {
                t.error_role_refused(t.role_of(refused.have), t.role_of(refused.need))
            }
            Problem::Invalid(invalid) => {
                let problems: Vec<String> = invalid
                    .problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field, t.domain(&p.problem)))
                    .collect();
                t.error_invalid(problems.join("; "))
            }
        }
    }
}

impl WebError {
    pub(crate) fn bad_request(problem: Problem) -> Self {
        WebError::Page {
            status: StatusCode::BAD_REQUEST,
            problem,
        }
    }
}

impl From<ControlError> for WebError {
    fn from(err: ControlError) -> Self {
        let (status, _) = status_of(err.kind());
        let problem = match err {
            ControlError::NotFound(what) => Problem::NotFound(what),
            ControlError::Refused(refused) => Problem::Refused(refused),
            ControlError::Forbidden(refused) => Problem::RoleRefused(refused),
            ControlError::Invalid(invalid) => Problem::Invalid(invalid),
            other => match other.kind() {
                ControlErrorKind::DatabaseUnavailable => {
                    tracing::error!(error = ?other, "the database is unreachable");
                    Problem::DatabaseUnavailable
                }
                ControlErrorKind::ShuttingDown => Problem::ShuttingDown,
                ControlErrorKind::AlreadyExists => Problem::AlreadyExists,
                ControlErrorKind::ConcurrentChange => Problem::ConcurrentChange,
                _ => {
                    tracing::error!(error = %other, source = ?std::error::Error::source(&other), "internal error");
                    Problem::Internal
                }
            },
        };
        WebError::Page { status, problem }
    }
}

impl From<RoleRefused> for WebError {
    fn from(err: RoleRefused) -> Self {
        WebError::Page {
            status: StatusCode::FORBIDDEN,
            problem: Problem::RoleRefused(err),
        }
    }
}

/// An error page to render, left on the response for [`localize`].
#[derive(Debug, Clone)]
struct Failure(Problem);

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, problem) = match self {
            WebError::SignIn => return Redirect::to("/signin").into_response(),
            WebError::BadCsrf => (StatusCode::FORBIDDEN, Problem::BadCsrf),
            WebError::Page { status, problem } => (status, problem),
        };
        let mut response = status.into_response();
        response.extensions_mut().insert(Failure(problem));
        response
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    t: Text,
    switch: LangSwitch,
    status: u16,
    reason: &'static str,
    message: String,
}

/// Renders the error page a handler left on its response, in the request's language.
pub(crate) async fn localize(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let locale = Locale::of(&parts);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let Some(Failure(problem)) = response.extensions_mut().remove::<Failure>() else {
        return response;
    };
    let t = Text { lang: locale.lang };
    let status = response.status();
    let page = ErrorPage {
        t,
        switch: locale.switch(),
        status: status.as_u16(),
        reason: t.reason(status.as_u16()),
        message: problem.text(t),
    };
    (status, render(&page)).into_response()
}
