//! What the two HTTP layers ([`crate::api`] and [`crate::web`]) share, so that
//! neither imports the other: the status each kind of control error answers with,
//! and a report as a CSV download.

use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::control::ControlErrorKind;
use crate::report::{to_csv, Report};

/// The status and the contract's error `code` for a kind of control error.
pub fn status_of(kind: ControlErrorKind) -> (StatusCode, &'static str) {
    match kind {
        ControlErrorKind::Invalid => (StatusCode::BAD_REQUEST, "validation_failed"),
        ControlErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        ControlErrorKind::Refused => (StatusCode::CONFLICT, "conflict"),
        ControlErrorKind::AlreadyExists => (StatusCode::CONFLICT, "already_exists"),
        ControlErrorKind::ConcurrentChange => (StatusCode::CONFLICT, "concurrent_change"),
        ControlErrorKind::UnknownKey | ControlErrorKind::NoSession => {
            (StatusCode::UNAUTHORIZED, "unauthorized")
        }
        ControlErrorKind::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
        ControlErrorKind::DatabaseUnavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
        }
        ControlErrorKind::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        ControlErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

/// A report as a CSV file download: the API's `?format=csv` and the dashboard's
/// export.
pub fn csv_attachment(key: &str, report: &Report) -> Response {
    (
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{key}-report.csv\""),
            ),
        ],
        to_csv(report),
    )
        .into_response()
}
