//! Webhooks: a URL told about changes (audit actions such as `guard_rollback`),
//! each request signed with HMAC-SHA256 over its body using the webhook's secret.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::audit::AuditAction;
use super::validation::{Problems, ValidationError};
use super::Millis;

/// Subscribes a webhook to every event.
pub const ALL_EVENTS: &str = "*";

/// The event names a webhook may subscribe to: every action on an experiment, and
/// [`ALL_EVENTS`].
pub fn event_types() -> Vec<&'static str> {
    AuditAction::experiment_actions()
        .map(AuditAction::as_str)
        .chain([ALL_EVENTS])
        .collect()
}

/// The body of `POST /api/v1/webhooks`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewWebhook {
    pub url: String,
    pub secret: String,
    pub events: Vec<String>,
}

impl NewWebhook {
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut problems = Problems::default();
        problems.check(
            (self.url.starts_with("http://") || self.url.starts_with("https://"))
                && self.url.len() <= 2048,
            "url",
            "must be an http:// or https:// URL",
        );
        problems.check(
            self.secret.len() >= 16 && self.secret.len() <= 256,
            "secret",
            "must be 16 to 256 characters",
        );
        problems.check(
            !self.events.is_empty(),
            "events",
            "must name at least one event type",
        );
        let known = event_types();
        for (i, event) in self.events.iter().enumerate() {
            problems.check(
                known.contains(&event.as_str()),
                format!("events[{i}]"),
                format!("must be one of {}", known.join(", ")),
            );
        }
        problems.into_result()
    }
}

/// A webhook as stored; the secret is never shown again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    #[serde(skip)]
    pub secret: String,
    pub events: Vec<String>,
    #[serde(with = "super::rfc3339")]
    pub created_at: Millis,
}

/// Whether a webhook subscribed to `events` hears of `action`.
pub fn subscribed(events: &[String], action: AuditAction) -> bool {
    action.is_webhook_event()
        && events
            .iter()
            .any(|e| e == ALL_EVENTS || e == action.as_str())
}

/// One queued or finished delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event: String,
    #[serde(skip)]
    pub payload: String,
    /// `pending`, `delivered` or `failed` (gave up).
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    #[serde(with = "super::rfc3339")]
    pub created_at: Millis,
}

/// The JSON body sent for an audit entry.
pub fn payload(audit: &super::NewAuditEntry) -> String {
    let status = audit
        .after
        .as_ref()
        .and_then(|after| after.get("status"))
        .cloned();
    serde_json::json!({
        "event": audit.action,
        "experiment": audit.subject.experiment(),
        "actor": audit.actor.name(),
        "actor_kind": audit.actor.kind(),
        "at": super::format_millis(audit.at),
        "status": status,
        "evidence": audit.evidence,
    })
    .to_string()
}

/// What happened to one delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    Delivered {
        at: Millis,
    },
    Retry {
        error: String,
        next_attempt_at: Millis,
    },
    GaveUp {
        error: String,
    },
}

/// `X-Sluice-Signature`: `sha256=` and the hex HMAC-SHA256 of the body.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("sha256={}", super::hex(&digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_test_case_2() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
