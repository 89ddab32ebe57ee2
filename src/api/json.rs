//! `AppJson`: JSON in and out with our error body. Malformed JSON, wrong types and
//! oversized bodies are answered as the contract says, with the field path of a
//! type error (`variants[1].weight`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ApiError;
use crate::domain::validation::from_json_exact;
use crate::domain::ValidationError;

pub(crate) struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large("request body is too large")
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    rejection.body_text(),
                )
            }
        })?;
        parse(&bytes).map(AppJson)
    }
}

/// A management API definition (experiment, metric, webhook, key): JSON as
/// [`AppJson`] reads it, and a field the type does not have is refused with 400
/// naming it, so a typo never silently creates something else.
pub(crate) struct Definition<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Definition<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let AppJson(value) = AppJson::<serde_json::Value>::from_request(req, state).await?;
        Ok(Definition(from_json_exact(value)?))
    }
}

/// Parses a JSON body, naming the field of a type error.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        classify(err.into_inner(), field)
    })?;
    deserializer
        .end()
        .map_err(|err| classify(err, "body".to_owned()))?;
    Ok(value)
}

fn classify(err: serde_json::Error, field: String) -> ApiError {
    if err.is_syntax() || err.is_eof() {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("request body is not valid JSON: {err}"),
        )
    } else {
        ValidationError::single(field, err.to_string()).into()
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query-string parameters, with bad ones answered in our error body.
pub(crate) struct AppQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| AppQuery(q.0))
            .map_err(|rejection| ValidationError::single("query", rejection.body_text()).into())
    }
}
