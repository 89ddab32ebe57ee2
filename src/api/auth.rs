//! Bearer-key authentication and role checks for the API; the keys themselves
//! (verification, its cache, revocation) are [`crate::control::Keys`]'.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
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
        let secret = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::unauthorized("Authorization must be \"Bearer KEY\""))?;
        Ok(Caller(state.control.keys().authenticate(secret).await?))
    }
}
