//! Static assets compiled into the binary: nothing is loaded from elsewhere at run
//! time. Names carry a version (bump it in `templates/head.html` too when a file
//! changes, and in the template that loads it) so that browsers may cache them
//! for a long time.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

const CACHE_FOR_A_YEAR: &str = "public, max-age=31536000, immutable";

pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    let (content_type, body) = match name.as_str() {
        "sluice-3.css" => (
            "text/css; charset=utf-8",
            include_str!("../../assets/sluice.css"),
        ),
        "overview-1.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../assets/overview.js"),
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, CACHE_FOR_A_YEAR),
        ],
        body,
    )
        .into_response()
}
