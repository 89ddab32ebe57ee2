//! API keys and roles. A key is shown once; only its SHA-256 is stored.

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, keys too.
    Admin,
    /// Definitions and lifecycle, and everything an analyst may read.
    Editor,
    /// Read access and reports.
    Analyst,
    /// The `/sdk/v1` endpoints for one environment.
    Sdk,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Analyst => "analyst",
            Role::Sdk => "sdk",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "editor" => Some(Role::Editor),
            "analyst" => Some(Role::Analyst),
            "sdk" => Some(Role::Sdk),
            _ => None,
        }
    }

    /// Whether a key of this role may do what `needed` allows. Admin may do
    /// everything; editors may read like analysts; SDK keys only reach the SDK API.
    pub fn grants(self, needed: Role) -> bool {
        match self {
            Role::Admin => true,
            Role::Editor => matches!(needed, Role::Editor | Role::Analyst),
            Role::Analyst => needed == Role::Analyst,
            Role::Sdk => needed == Role::Sdk,
        }
    }
}

/// A key as stored: never the secret itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub environment: Option<String>,
    #[serde(with = "super::rfc3339")]
    pub created_at: Millis,
    /// When the key was revoked; it no longer authenticates from then on.
    #[serde(serialize_with = "super::rfc3339_option::serialize")]
    pub revoked_at: Option<Millis>,
}

impl ApiKey {
    /// Fails unless this key's role grants `role`.
    pub fn require(&self, role: Role) -> Result<(), RoleRefused> {
        if self.role.grants(role) {
            Ok(())
        } else {
            Err(RoleRefused {
                have: self.role,
                need: role,
            })
        }
    }

    /// The environment whose experiments this key is served: its own, or
    /// `production` for keys of other roles.
    pub fn served_environment(&self) -> &str {
        self.environment
            .as_deref()
            .unwrap_or(super::environment::PRODUCTION)
    }
}

/// A key tried what its role does not allow (HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {} key cannot do this; it needs the {} role", .have.as_str(), .need.as_str())]
pub struct RoleRefused {
    pub have: Role,
    pub need: Role,
}

/// A freshly minted key: the secret (to show once) and what to store.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub secret: String,
    pub hash: String,
    pub name: String,
    pub role: Role,
    pub environment: Option<String>,
}

impl NewApiKey {
    /// Mints a random 192-bit key. SDK keys default to the `production` environment.
    pub fn generate(role: Role, name: Option<String>, environment: Option<String>) -> Self {
        let mut random = [0u8; 24];
        rand::rng().fill(&mut random);
        let body = super::hex(&random);
        let secret = format!("sk_{}_{body}", role.as_str());
        let environment = match role {
            Role::Sdk => {
                Some(environment.unwrap_or_else(|| super::environment::PRODUCTION.to_owned()))
            }
            _ => environment,
        };
        Self {
            hash: hash_secret(&secret),
            name: name.unwrap_or_else(|| format!("{}-{}", role.as_str(), &body[..6])),
            secret,
            role,
            environment,
        }
    }
}

/// The stored form of a key: hex SHA-256. Keys are random, so no salt is needed.
pub fn hash_secret(secret: &str) -> String {
    super::hex(&secret_digest(secret))
}

/// The SHA-256 of a secret, whose hex form is what the store keeps.
pub fn secret_digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_unique_and_only_hashed() {
        let a = NewApiKey::generate(Role::Sdk, None, None);
        let b = NewApiKey::generate(Role::Sdk, None, None);
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with("sk_sdk_"));
        assert_eq!(a.hash, hash_secret(&a.secret));
        assert_ne!(a.hash, a.secret);
        assert_eq!(a.environment.as_deref(), Some("production"));
    }

    #[test]
    fn roles_grant_down_the_ladder_only() {
        assert!(Role::Admin.grants(Role::Sdk));
        assert!(Role::Editor.grants(Role::Analyst));
        assert!(!Role::Editor.grants(Role::Admin));
        assert!(!Role::Analyst.grants(Role::Editor));
        assert!(!Role::Sdk.grants(Role::Analyst));
    }
}
