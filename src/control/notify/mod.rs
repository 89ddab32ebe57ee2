//! What a webhook delivery sends, by the webhook's [`WebhookFormat`]: Sluice's
//! own JSON as it was queued, or a chat message rendered from it at send time
//! (the services' signatures carry the time, and must be fresh within an hour).
//! Rendering is pure: [`outgoing`] takes the clock and the public URL as inputs.
//!
//! Language: Slack messages are in English. Feishu's rich text carries a Chinese
//! and an English version and each reader's client shows the one in their
//! language; DingTalk and WeCom have no such choice, and the teams using them
//! work in Chinese, so their messages are in Simplified Chinese (keys of
//! experiments, variants and metrics stay as they are defined).

mod chat;
mod message;

use std::net::SocketAddr;

use serde_json::Value;

use self::message::{message, Language, Message};
use crate::domain::webhook::{
    dingtalk_signature, feishu_signature, signature, Notification, Webhook, WebhookFormat,
};
use crate::domain::Millis;

/// Where people reach the dashboard: the base of the links in chat messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// An `http://` or `https://` URL; a trailing slash is dropped.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = text.trim().trim_end_matches('/');
        let host = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        match host {
            Some(host) if !host.is_empty() => Ok(Self(url.to_owned())),
            _ => Err("expected an http:// or https:// URL".to_owned()),
        }
    }

    /// The URL of a server listening on `addr`, for want of a better one.
    pub fn of_listener(addr: SocketAddr) -> Self {
        Self(format!("http://{addr}"))
    }

    /// The dashboard page of an experiment.
    pub fn experiment_page(&self, key: &str) -> String {
        format!("{}/experiments/{key}", self.0)
    }
}

impl Default for PublicUrl {
    fn default() -> Self {
        Self::of_listener(SocketAddr::from(([127, 0, 0, 1], 8080)))
    }
}

/// One delivery's request, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub body: String,
    /// Headers besides `content-type`.
    pub headers: Vec<(&'static str, String)>,
    /// Parameters added to the webhook URL's query.
    pub query: Vec<(&'static str, String)>,
}

impl Outgoing {
    fn chat(body: Value) -> Self {
        Self {
            body: body.to_string(),
            headers: Vec::new(),
            query: Vec::new(),
        }
    }
}

/// The request for a delivery of `payload` (the queued JSON) to `hook` at `now`;
/// an error when a chat format cannot read the payload back.
pub fn outgoing(
    hook: &Webhook,
    payload: &str,
    public_url: &PublicUrl,
    now: Millis,
) -> Result<Outgoing, serde_json::Error> {
    let told = |language| -> Result<Message, serde_json::Error> {
        let notification: Notification = serde_json::from_str(payload)?;
        Ok(message(&notification, language, public_url))
    };
    let secret = hook.secret.as_deref();
    Ok(match hook.format {
        WebhookFormat::Json => Outgoing {
            body: payload.to_owned(),
            headers: secret
                .map(|secret| ("x-sluice-signature", signature(secret, payload.as_bytes())))
                .into_iter()
                .collect(),
            query: Vec::new(),
        },
        WebhookFormat::Slack => Outgoing::chat(chat::slack(&told(Language::English)?)),
        WebhookFormat::Feishu => {
            let mut body = chat::feishu(&told(Language::Chinese)?, &told(Language::English)?);
            if let Some(secret) = secret {
                // Feishu's signature verification: `timestamp` (seconds) and
                // `sign` beside the message in the body.
                let seconds = now / 1000;
                body["timestamp"] = seconds.to_string().into();
                body["sign"] = feishu_signature(secret, seconds).into();
            }
            Outgoing::chat(body)
        }
        WebhookFormat::Dingtalk => {
            let mut request = Outgoing::chat(chat::dingtalk(&told(Language::Chinese)?));
            if let Some(secret) = secret {
                // DingTalk's 加签: `timestamp` (milliseconds) and `sign` in the
                // query of the robot's URL.
                request.query = vec![
                    ("timestamp", now.to_string()),
                    ("sign", dingtalk_signature(secret, now)),
                ];
            }
            request
        }
        WebhookFormat::Wecom => Outgoing::chat(chat::wecom(&told(Language::Chinese)?)),
    })
}

/// Whether the receiver took a delivery, from its answer. Feishu, DingTalk and
/// WeCom answer most failures (a bad signature, a missing keyword, a rate limit)
/// with HTTP 200 and a nonzero code in the body, so theirs is read too.
pub fn accepted(format: WebhookFormat, status: u16, body: &str) -> Result<(), String> {
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    let (code, text) = match format {
        WebhookFormat::Json | WebhookFormat::Slack => return Ok(()),
        WebhookFormat::Feishu => ("code", "msg"),
        WebhookFormat::Dingtalk | WebhookFormat::Wecom => ("errcode", "errmsg"),
    };
    let Ok(answer) = serde_json::from_str::<Value>(body) else {
        return Ok(());
    };
    match answer.get(code).and_then(Value::as_i64) {
        Some(nonzero) if nonzero != 0 => {
            let said = answer.get(text).and_then(Value::as_str).unwrap_or_default();
            Err(format!(
                "{} answered {code} {nonzero}: {said}",
                format.as_str()
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Actor, ActorKind, AuditAction, GuardAction, Status};

    const NOW: Millis = 1_764_000_000_123;

    fn hook(format: WebhookFormat, secret: Option<&str>) -> Webhook {
        Webhook {
            id: 1,
            url: "https://chat.example/hook".into(),
            secret: secret.map(str::to_owned),
            events: vec!["*".into()],
            format,
            created_at: 0,
        }
    }

    fn rollback() -> String {
        serde_json::to_string(&Notification {
            event: AuditAction::Guard(GuardAction::Rollback),
            experiment: Some("pricing-q4".into()),
            actor: Actor::Guard.name().into(),
            actor_kind: ActorKind::Guard,
            at: NOW,
            status: Some(Status::RolledBack),
            evidence: None,
        })
        .unwrap()
    }

    fn render(format: WebhookFormat, secret: Option<&str>) -> (Outgoing, Value) {
        let public = PublicUrl::parse("https://sluice.example/").unwrap();
        let request = outgoing(&hook(format, secret), &rollback(), &public, NOW).unwrap();
        let body = serde_json::from_str(&request.body).unwrap();
        (request, body)
    }

    #[test]
    fn json_is_the_queued_body_signed_by_sluice() {
        let payload = rollback();
        let secret = "s3cret-s3cret-s3cret";
        let (request, _) = render(WebhookFormat::Json, Some(secret));
        assert_eq!(request.body, payload);
        assert_eq!(
            request.headers,
            [("x-sluice-signature", signature(secret, payload.as_bytes()))]
        );
        assert!(request.query.is_empty());
    }

    #[test]
    fn feishu_signs_in_the_body_and_dingtalk_in_the_query_only_with_a_secret() {
        let (_, signed) = render(WebhookFormat::Feishu, Some("feishu-secret-0123456789"));
        assert_eq!(signed["timestamp"], "1764000000");
        assert_eq!(
            signed["sign"],
            feishu_signature("feishu-secret-0123456789", 1_764_000_000)
        );
        let (_, unsigned) = render(WebhookFormat::Feishu, None);
        assert!(unsigned.get("sign").is_none() && unsigned.get("timestamp").is_none());

        let (request, _) = render(WebhookFormat::Dingtalk, Some("SEC0123456789abcdef"));
        assert_eq!(
            request.query,
            [
                ("timestamp", NOW.to_string()),
                ("sign", dingtalk_signature("SEC0123456789abcdef", NOW))
            ]
        );
        assert!(render(WebhookFormat::Dingtalk, None).0.query.is_empty());
    }

    #[test]
    fn every_chat_format_links_the_experiment_page() {
        for format in [
            WebhookFormat::Slack,
            WebhookFormat::Feishu,
            WebhookFormat::Dingtalk,
            WebhookFormat::Wecom,
        ] {
            let (request, _) = render(format, None);
            assert!(
                request
                    .body
                    .contains("https://sluice.example/experiments/pricing-q4"),
                "{format:?}: {}",
                request.body
            );
            assert!(request.headers.is_empty(), "{format:?}");
        }
    }

    #[test]
    fn an_unreadable_payload_is_an_error_for_chat_formats_only() {
        let public = PublicUrl::default();
        assert!(outgoing(&hook(WebhookFormat::Slack, None), "{}", &public, NOW).is_err());
        assert!(outgoing(&hook(WebhookFormat::Json, Some("x")), "{}", &public, NOW).is_ok());
    }

    #[test]
    fn chat_services_refusing_with_200_are_not_deliveries() {
        let feishu = r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#;
        assert_eq!(
            accepted(WebhookFormat::Feishu, 200, feishu),
            Err("feishu answered code 19021: sign match fail or timestamp is not within one hour from current time".into())
        );
        assert_eq!(
            accepted(
                WebhookFormat::Feishu,
                200,
                r#"{"code":0,"msg":"success","data":{}}"#
            ),
            Ok(())
        );
        let dingtalk = r#"{"errcode":310000,"errmsg":"keywords not in content"}"#;
        assert!(accepted(WebhookFormat::Dingtalk, 200, dingtalk).is_err());
        assert!(accepted(WebhookFormat::Wecom, 200, r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        assert_eq!(accepted(WebhookFormat::Slack, 200, "ok"), Ok(()));
        assert_eq!(
            accepted(WebhookFormat::Json, 503, ""),
            Err("HTTP 503".into())
        );
    }

    #[test]
    fn the_public_url_is_an_http_base() {
        assert_eq!(
            PublicUrl::parse("https://ab.example.com/")
                .unwrap()
                .experiment_page("k"),
            "https://ab.example.com/experiments/k"
        );
        assert!(PublicUrl::parse("ab.example.com").is_err());
        assert!(PublicUrl::parse("http://").is_err());
    }
}
