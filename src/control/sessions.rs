//! Dashboard sessions, kept on the server so that they work across servers and
//! can end: the cookie carries a random id and the database only its SHA-256. A
//! session ends when it expires (enforced here, not by the cookie's `Max-Age`),
//! when it signs out, or when its key is revoked. The key's secret is never in
//! the cookie.

use std::sync::Arc;

use rand::Rng;

use super::{ControlError, Keys};
use crate::domain::key::hash_secret;
use crate::domain::{hex, now_millis, ApiKey, Millis, Role};
use crate::store::Store;

/// How long a session lasts from sign-in, whatever the browser does.
pub const SESSION_LIFETIME_SECONDS: u32 = 12 * 3600;

pub struct Sessions {
    store: Arc<dyn Store>,
}

impl Sessions {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Signs in with a key that may read the dashboard: returns the new session's
    /// secret (for the cookie) and the key.
    pub async fn open(
        &self,
        keys: &Keys,
        key_secret: &str,
    ) -> Result<(String, ApiKey), ControlError> {
        let key = keys.authenticate(key_secret).await?;
        key.require(Role::Analyst)?;
        let mut random = [0u8; 32];
        rand::rng().fill(&mut random);
        let secret = hex(&random);
        let now = now_millis();
        let expires_at = now + Millis::from(SESSION_LIFETIME_SECONDS) * 1000;
        self.store
            .insert_session(&hash_secret(&secret), key.id, now, expires_at)
            .await?;
        Ok((secret, ApiKey::clone(&key)))
    }

    /// The key behind a live session, or [`ControlError::NoSession`].
    pub async fn find(&self, secret: &str) -> Result<ApiKey, ControlError> {
        self.store
            .find_session(&hash_secret(secret), now_millis())
            .await?
            .ok_or(ControlError::NoSession)
    }

    /// Signs out: the session ends on every server at once.
    pub async fn close(&self, secret: &str) -> Result<(), ControlError> {
        Ok(self.store.delete_session(&hash_secret(secret)).await?)
    }
}
