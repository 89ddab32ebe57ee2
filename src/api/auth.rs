//! Bearer-key authentication and role checks for the API; the keys themselves
//! (verification, its cache, revocation) are [`crate::control::Keys`]'.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderValue;

use super::error::ApiError;
use super::limits::{SlowDown, Surface};
use super::ApiState;
use crate::domain::{Actor, ApiKey, Role};

/// The caller, authenticated by `Authorization: Bearer KEY`.
pub(crate) struct Caller(pub ApiKey);

impl Caller {
    /// Fails with 403 unless the caller's role grants `role`.
    pub(crate) fn require(&self, role: Role) -> Result<&ApiKey, ApiError> {
        self.0.require(role)?;
        Ok(&self.0)
    }

    /// Who the audit log records.
    pub(crate) fn actor(&self) -> Actor {
        Actor::Key(self.0.name.clone())
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer KEY"))?;
        let secret = bearer(header)?;
        authenticate(state, secret, Surface::Management).await
    }
}

/// The key with this secret, if it is within its rate limit on `surface`.
async fn authenticate(
    state: &ApiState,
    secret: &str,
    surface: Surface,
) -> Result<Caller, ApiError> {
    let key = state.control.keys().authenticate(secret).await?;
    state
        .admit(&key, surface)
        .map_err(|SlowDown(wait)| ApiError::too_many_requests(wait))?;
    Ok(Caller(key))
}

fn bearer(header: &HeaderValue) -> Result<&str, ApiError> {
    header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::unauthorized("Authorization must be \"Bearer KEY\""))
}

/// The caller of an SDK endpoint: by `Authorization: Bearer KEY`, `X-API-Key`,
/// or a `key` query parameter, for what a browser cannot send with a header
/// (`EventSource`, `navigator.sendBeacon`). SDK keys are public by design; the
/// management API takes the header alone.
pub(crate) struct SdkCaller(pub Caller);

impl FromRequestParts<ApiState> for SdkCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        if let Some(header) = parts.headers.get(AUTHORIZATION) {
            let secret = bearer(header)?;
            return authenticate(state, secret, Surface::Sdk)
                .await
                .map(SdkCaller);
        }
        let in_query = parts.uri.query().and_then(|query| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(query)
                .ok()?
                .into_iter()
                .find_map(|(name, value)| (name == "key").then_some(value))
        });
        let from_header = parts
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let secret = from_header
            .or(in_query)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("missing Authorization: Bearer KEY (or X-API-Key, or ?key=)")
            })?;
        authenticate(state, secret.trim(), Surface::Sdk)
            .await
            .map(SdkCaller)
    }
}
