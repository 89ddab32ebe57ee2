//! API keys: minting, verifying (with a short cache, so SDK endpoints do not hit
//! the database on every request), listing and revoking. Both HTTP layers and the
//! `sluice key` command go through [`Keys`]; every change is audited.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::{settings_entry, ControlError};
use crate::domain::key::secret_digest;
use crate::domain::validation::{is_storable, NUL_RULE};
use crate::domain::{
    hex, now_millis, Actor, ActorKind, ApiKey, AuditAction, AuditSubject, NewApiKey, Role,
    ValidationError,
};
use crate::store::{Store, StoreErrorKind};

const CACHE_TTL: Duration = Duration::from_secs(60);
/// While the database is unreachable, a key verified this recently still passes,
/// so apps keep their ruleset through an outage.
const CACHE_TTL_WHEN_UNREACHABLE: Duration = Duration::from_secs(3600);
const CACHE_MAX_ENTRIES: usize = 10_000;
const MAX_NAME_CHARS: usize = 200;

/// What a new key is for.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    pub role: Role,
    /// A name for the audit log (default: role and a short id).
    pub name: Option<String>,
    /// The environment an SDK key serves (default `production`).
    pub environment: Option<String>,
}

impl KeyRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        let Some(name) = &self.name else {
            return Ok(());
        };
        if ActorKind::is_reserved_name(name) {
            return Err(ValidationError::single(
                "name",
                "is reserved for the server's own actions (guard, scheduler, cli)",
            ));
        }
        if name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(ValidationError::single(
                "name",
                format!("must be 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        if !is_storable(name) {
            return Err(ValidationError::single("name", NUL_RULE));
        }
        Ok(())
    }
}

pub struct Keys {
    store: Arc<dyn Store>,
    cache: KeyCache,
}

impl Keys {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            cache: KeyCache::default(),
        }
    }

    /// Mints a key; returns its secret (shown once: only a hash is kept) and the
    /// stored key.
    pub async fn create(
        &self,
        request: KeyRequest,
        actor: &Actor,
    ) -> Result<(String, ApiKey), ControlError> {
        request.validate()?;
        let key = NewApiKey::generate(request.role, request.name, request.environment);
        if let Some(environment) = &key.environment {
            let defined = self.store.list_environments().await?;
            if !defined.iter().any(|e| &e.key == environment) {
                return Err(ValidationError::single(
                    "environment",
                    format!(
                        "no environment {environment:?} (create it: POST /api/v1/environments)"
                    ),
                )
                .into());
            }
        }
        let summary = serde_json::json!({
            "name": key.name, "role": key.role, "environment": key.environment,
        });
        let at = now_millis();
        let audit = |id| {
            settings_entry(
                AuditSubject::ApiKey(id),
                actor,
                AuditAction::KeyCreate,
                Some(summary.clone()),
                at,
            )
        };
        let stored = self.store.insert_api_key(&key, &audit).await?;
        Ok((key.secret, stored))
    }

    /// The stored, unrevoked key whose secret this is, or [`ControlError::UnknownKey`].
    /// The API's bearer header and the dashboard's session both end here.
    pub async fn authenticate(&self, secret: &str) -> Result<Arc<ApiKey>, ControlError> {
        let digest = secret_digest(secret);
        if let Some(key) = self.cache.get(&digest, CACHE_TTL) {
            return Ok(key);
        }
        let found = match self.store.find_api_key(&hex(&digest)).await {
            Err(err) if err.kind() == StoreErrorKind::Unavailable => {
                return self
                    .cache
                    .get(&digest, CACHE_TTL_WHEN_UNREACHABLE)
                    .ok_or_else(|| err.into());
            }
            found => found?,
        };
        let key = Arc::new(found.ok_or(ControlError::UnknownKey)?);
        self.cache.put(digest, key.clone());
        Ok(key)
    }

    /// Every key, revoked ones too, oldest first.
    pub async fn list(&self) -> Result<Vec<ApiKey>, ControlError> {
        Ok(self.store.list_api_keys().await?)
    }

    /// Revokes a key: this server refuses it at once, servers that cached it
    /// within their cache's lifetime.
    pub async fn revoke(&self, id: i64, actor: &Actor) -> Result<(), ControlError> {
        let audit = settings_entry(
            AuditSubject::ApiKey(id),
            actor,
            AuditAction::KeyRevoke,
            None,
            now_millis(),
        );
        if !self.store.revoke_api_key(id, &audit).await? {
            return Err(ControlError::NotFound(format!("API key {id}")));
        }
        self.cache.forget(id);
        tracing::info!(key = id, actor = actor.name(), "API key revoked");
        Ok(())
    }
}

/// The SHA-256 of a key's secret.
type SecretDigest = [u8; 32];

/// Recently verified keys, by the digest of their secret, with when each was read.
#[derive(Default)]
struct KeyCache {
    entries: RwLock<HashMap<SecretDigest, (Arc<ApiKey>, Instant)>>,
}

impl KeyCache {
    fn get(&self, digest: &SecretDigest, ttl: Duration) -> Option<Arc<ApiKey>> {
        let entries = self.entries.read().ok()?;
        let (key, at) = entries.get(digest)?;
        (at.elapsed() < ttl).then(|| key.clone())
    }

    fn forget(&self, id: i64) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, (key, _)| key.id != id);
        }
    }

    fn put(&self, digest: SecretDigest, key: Arc<ApiKey>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= CACHE_MAX_ENTRIES {
                entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL_WHEN_UNREACHABLE);
            }
            entries.insert(digest, (key, Instant::now()));
        }
    }
}
