//! Bearer-key authentication and role checks for the API; the keys themselves
//! (verification, its cache, revocation) are [`crate::control::Keys`]'.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use std::marker::PhantomData;
use std::sync::Arc;

use super::error::ApiError;
use super::limits::{SlowDown, Surface};
use super::ApiState;
use crate::domain::{Actor, ApiKey, Role};

/// The caller, authenticated by `Authorization: Bearer KEY`.
pub(crate) struct Caller(pub Arc<ApiKey>);

impl Caller {
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

async fn sdk_caller(state: &ApiState, secret: &str) -> Result<SdkCaller, ApiError> {
    let Caller(key) = authenticate(state, secret, Surface::Sdk).await?;
    key.require(Role::Sdk)?;
    Ok(SdkCaller(key))
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

/// A role a handler needs, as a type, so that the check runs while the request is
/// extracted: before its body is read, so a caller without the role learns
/// nothing from validation errors.
pub(crate) trait NeedsRole {
    const ROLE: Role;
}

pub(crate) struct AdminRole;
pub(crate) struct EditorRole;
pub(crate) struct AnalystRole;

impl NeedsRole for AdminRole {
    const ROLE: Role = Role::Admin;
}
impl NeedsRole for EditorRole {
    const ROLE: Role = Role::Editor;
}
impl NeedsRole for AnalystRole {
    const ROLE: Role = Role::Analyst;
}

/// A caller whose key grants the role `R` (403 otherwise).
pub(crate) struct Authorized<R>(Caller, PhantomData<R>);

impl<R> std::ops::Deref for Authorized<R> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<R: NeedsRole> FromRequestParts<ApiState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.0.require(R::ROLE)?;
        Ok(Authorized(caller, PhantomData))
    }
}

/// The caller of an SDK endpoint: by `Authorization: Bearer KEY`, `X-API-Key`,
/// or a `key` query parameter, for what a browser cannot send with a header
/// (`EventSource`, `navigator.sendBeacon`). SDK keys are public by design; the
/// management API takes the header alone. The key must grant the `sdk` role.
pub(crate) struct SdkCaller(pub Arc<ApiKey>);

impl FromRequestParts<ApiState> for SdkCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        if let Some(header) = parts.headers.get(AUTHORIZATION) {
            let secret = bearer(header)?;
            return sdk_caller(state, secret).await;
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
        sdk_caller(state, secret.trim()).await
    }
}
