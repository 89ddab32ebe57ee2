//! Bearer-key authentication and role checks. Key lookups are cached briefly so the
//! SDK endpoints do not hit the database on every request.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use super::AppState;
use crate::domain::key::hash_secret;
use crate::domain::{ApiKey, Role};

const CACHE_TTL: Duration = Duration::from_secs(60);
/// While the database is unreachable, a key verified this recently still passes,
/// so apps keep their ruleset through an outage.
const CACHE_TTL_WHEN_UNREACHABLE: Duration = Duration::from_secs(3600);
const CACHE_MAX_ENTRIES: usize = 10_000;

/// Recently verified keys, by hash.
#[derive(Default)]
pub(crate) struct KeyCache {
    entries: RwLock<HashMap<String, (ApiKey, Instant)>>,
}

impl KeyCache {
    fn get(&self, hash: &str, ttl: Duration) -> Option<ApiKey> {
        let entries = self.entries.read().ok()?;
        let (key, at) = entries.get(hash)?;
        (at.elapsed() < ttl).then(|| key.clone())
    }

    /// Drops a (revoked) key, so this server refuses it at once.
    pub(crate) fn forget(&self, id: i64) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, (key, _)| key.id != id);
        }
    }

    fn put(&self, hash: String, key: ApiKey) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= CACHE_MAX_ENTRIES {
                entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL_WHEN_UNREACHABLE);
            }
            entries.insert(hash, (key, Instant::now()));
        }
    }
}

/// The caller, authenticated by `Authorization: Bearer KEY`.
pub(crate) struct Caller(pub ApiKey);

impl Caller {
    /// Fails with 403 unless the caller's role grants `role`.
    pub(crate) fn require(&self, role: Role) -> Result<&ApiKey, ApiError> {
        require_role(&self.0, role)?;
        Ok(&self.0)
    }

    /// The name the audit log records.
    pub(crate) fn name(&self) -> &str {
        &self.0.name
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
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
        Ok(Caller(authenticate(state, secret).await?))
    }
}

/// Revokes a key; this server refuses it at once (others within their cache's
/// lifetime).
pub(crate) async fn revoke_key(state: &AppState, id: i64, actor: &str) -> Result<(), ApiError> {
    state.control.revoke_api_key(id, actor).await?;
    state.keys.forget(id);
    Ok(())
}

/// Fails with 403 unless `key`'s role grants `role`.
pub(crate) fn require_role(key: &ApiKey, role: Role) -> Result<(), ApiError> {
    if key.role.grants(role) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "a {} key cannot do this; it needs the {} role",
            key.role.as_str(),
            role.as_str()
        )))
    }
}

/// The stored key whose secret this is (cached), or 401. The API's bearer header
/// and the dashboard's session cookie both carry the secret to this one check.
pub(crate) async fn authenticate(state: &AppState, secret: &str) -> Result<ApiKey, ApiError> {
    let hash = hash_secret(secret);
    if let Some(key) = state.keys.get(&hash, CACHE_TTL) {
        return Ok(key);
    }
    let found = match state.control.store().find_api_key(&hash).await {
        Err(err) if err.is_unavailable() => {
            return state
                .keys
                .get(&hash, CACHE_TTL_WHEN_UNREACHABLE)
                .ok_or_else(|| err.into());
        }
        found => found?,
    };
    let key = found.ok_or_else(|| ApiError::unauthorized("unknown API key"))?;
    state.keys.put(hash, key.clone());
    Ok(key)
}
