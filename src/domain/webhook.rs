//! Webhooks: a URL told about changes (audit actions such as `guard_rollback`, and
//! `report_ready`). Each one has a [`WebhookFormat`]: Sluice's own JSON, signed with
//! HMAC-SHA256 over the body using the webhook's secret, or the message a chat
//! service's incoming webhook expects (rendered at delivery, see
//! [`crate::control::notify`]), signed the way that service defines, if at all.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::audit::{ActorKind, AuditAction};
use super::experiment::Status;
use super::validation::{is_storable, Problems, ValidationError, NUL_RULE};
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

/// What a webhook's requests look like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// Sluice's own JSON body with `X-Sluice-Signature`.
    #[default]
    Json,
    /// A Slack incoming webhook.
    Slack,
    /// A Feishu (Lark) group's custom bot.
    Feishu,
    /// A DingTalk group's custom robot.
    Dingtalk,
    /// A WeCom (WeChat Work) group robot.
    Wecom,
}

/// Whether a format's requests are signed with the webhook's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signing {
    Always,
    /// Only where the bot's "sign" security is on, which the team knows and we
    /// cannot: a secret given means it is.
    IfSecret,
    /// The service signs nothing: its URL is the secret.
    Never,
}

impl WebhookFormat {
    pub const ALL: [WebhookFormat; 5] = [
        WebhookFormat::Json,
        WebhookFormat::Slack,
        WebhookFormat::Feishu,
        WebhookFormat::Dingtalk,
        WebhookFormat::Wecom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Feishu => "feishu",
            WebhookFormat::Dingtalk => "dingtalk",
            WebhookFormat::Wecom => "wecom",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|format| format.as_str() == text)
    }

    fn signing(self) -> Signing {
        match self {
            WebhookFormat::Json => Signing::Always,
            WebhookFormat::Feishu | WebhookFormat::Dingtalk => Signing::IfSecret,
            WebhookFormat::Slack | WebhookFormat::Wecom => Signing::Never,
        }
    }
}

/// The body of `POST /api/v1/webhooks`.
#[derive(Debug, Clone, Deserialize)]
pub struct NewWebhook {
    pub url: String,
    /// Signs the requests: required for `json`, optional for `feishu` and
    /// `dingtalk` (their bot's "sign" secret), refused for `slack` and `wecom`.
    #[serde(default)]
    pub secret: Option<String>,
    pub events: Vec<String>,
    #[serde(default)]
    pub format: WebhookFormat,
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
        problems.check(is_storable(&self.url), "url", NUL_RULE);
        self.validate_secret(&mut problems);
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

    fn validate_secret(&self, problems: &mut Problems) {
        let format = self.format.as_str();
        match (&self.secret, self.format.signing()) {
            (None, Signing::Always) => problems.add(
                "secret",
                format!("is required for {format} webhooks: every request is signed with it"),
            ),
            (Some(_), Signing::Never) => problems.add(
                "secret",
                format!("must be left out: {format} incoming webhooks are not signed (the URL is the secret)"),
            ),
            (Some(secret), _) => {
                problems.check(
                    secret.len() >= 16 && secret.len() <= 256,
                    "secret",
                    "must be 16 to 256 characters",
                );
                problems.check(is_storable(secret), "secret", NUL_RULE);
            }
            (None, _) => {}
        }
    }
}

/// A webhook as stored; the secret is never shown again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    #[serde(skip)]
    pub secret: Option<String>,
    pub events: Vec<String>,
    pub format: WebhookFormat,
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

/// What a delivery tells: the body `json` webhooks receive, stored with the
/// delivery and read back to render the chat formats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub event: AuditAction,
    pub experiment: Option<String>,
    pub actor: String,
    pub actor_kind: ActorKind,
    #[serde(with = "super::rfc3339")]
    pub at: Millis,
    /// The experiment's status after the change.
    pub status: Option<Status>,
    /// The numbers an automatic action decided on, or a report's headline.
    pub evidence: Option<serde_json::Value>,
}

impl Notification {
    pub fn of(audit: &super::NewAuditEntry) -> Self {
        let status = audit
            .after
            .as_ref()
            .and_then(|after| after.get("status"))
            .and_then(|status| Status::deserialize(status).ok());
        Self {
            event: audit.action,
            experiment: audit.subject.experiment().map(str::to_owned),
            actor: audit.actor.name().to_owned(),
            actor_kind: audit.actor.kind(),
            at: audit.at,
            status,
            evidence: audit.evidence.clone(),
        }
    }
}

/// The JSON body sent for an audit entry.
pub fn payload(audit: &super::NewAuditEntry) -> String {
    serde_json::to_string(&Notification::of(audit)).unwrap_or_default()
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
    format!(
        "sha256={}",
        super::hex(&hmac_sha256(secret.as_bytes(), body))
    )
}

/// A Feishu custom bot's `sign` for `timestamp` (seconds): the base64 of an
/// HMAC-SHA256 keyed with `timestamp + "\n" + secret` over nothing, as Feishu's
/// "signature verification" documents it (its samples pass an empty message).
pub fn feishu_signature(secret: &str, timestamp_seconds: i64) -> String {
    let key = format!("{timestamp_seconds}\n{secret}");
    base64(&hmac_sha256(key.as_bytes(), b""))
}

/// A DingTalk custom robot's `sign` for `timestamp` (milliseconds): the base64 of
/// an HMAC-SHA256 keyed with the secret over `timestamp + "\n" + secret`, as
/// DingTalk's "加签" security documents it (URL-encoding is left to the caller).
pub fn dingtalk_signature(secret: &str, timestamp_millis: Millis) -> String {
    let message = format!("{timestamp_millis}\n{secret}");
    base64(&hmac_sha256(secret.as_bytes(), message.as_bytes()))
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
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

    // The chat signatures are compared with the services' own Python samples
    // (Python 3.11): Feishu's `hmac.new(f"{ts}\n{secret}".encode(), b"",
    // sha256)` and DingTalk's `hmac.new(secret.encode(), f"{ts}\n{secret}".encode(),
    // sha256)`, each base64-encoded.
    #[test]
    fn feishu_signature_matches_its_documented_sample() {
        assert_eq!(
            feishu_signature("feishu-secret-0123456789", 1_599_360_473),
            "QU0nhHtTWgsio7QLFvIbBrQy8PbzRrtVl3Z897DMqjw="
        );
    }

    #[test]
    fn dingtalk_signature_matches_its_documented_sample() {
        assert_eq!(
            dingtalk_signature("SEC0123456789abcdef0123456789abcdef", 1_577_262_236_757),
            "YGw85b2LUFftHwoRE2Tu5e4uJcIick0Tb7RUa4Y4h94="
        );
    }

    fn hook(format: WebhookFormat, secret: Option<&str>) -> NewWebhook {
        NewWebhook {
            url: "https://example.com/hook".into(),
            secret: secret.map(str::to_owned),
            events: vec![ALL_EVENTS.into()],
            format,
        }
    }

    #[test]
    fn each_format_takes_the_secret_its_service_signs_with() {
        let secret = Some("s3cret-s3cret-s3cret");
        let problems = |hook: NewWebhook| {
            hook.validate()
                .err()
                .map(|e| e.problems.into_iter().map(|p| p.field).collect::<Vec<_>>())
        };
        assert_eq!(problems(hook(WebhookFormat::Json, secret)), None);
        assert_eq!(
            problems(hook(WebhookFormat::Json, None)),
            Some(vec!["secret".to_owned()])
        );
        for signed_if_asked in [WebhookFormat::Feishu, WebhookFormat::Dingtalk] {
            assert_eq!(problems(hook(signed_if_asked, secret)), None);
            assert_eq!(problems(hook(signed_if_asked, None)), None);
        }
        for unsigned in [WebhookFormat::Slack, WebhookFormat::Wecom] {
            assert_eq!(problems(hook(unsigned, None)), None);
            assert_eq!(
                problems(hook(unsigned, secret)),
                Some(vec!["secret".to_owned()])
            );
        }
    }

    #[test]
    fn formats_are_named_as_the_api_spells_them() {
        for format in WebhookFormat::ALL {
            let json = serde_json::to_value(format).unwrap();
            assert_eq!(json, format.as_str());
            assert_eq!(WebhookFormat::parse(format.as_str()), Some(format));
        }
    }
}
