//! Webhooks: signed deliveries of breaker actions, a delivery log, retries for a
//! dead receiver, and admin-only management; the chat formats, each checked
//! against the body its service documents (signatures recomputed as the services'
//! own samples do); the one `report_ready` notification `report_after_hours`
//! after the start.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{traffic, webhook_receiver, Backend, Hit, Received, TestApp, PUBLIC_URL};
use serde_json::{json, Value};
use sluice::app::Server;
use sluice::control::guard::check_all;
use sluice::domain::webhook::signature;
use sluice::domain::{Actor, AuditAction, NewAuditEntry};

const SECRET: &str = "s3cret-s3cret-s3cret";

async fn a_rollback_is_announced_signed_and_logged(backend: Backend) {
    let app = TestApp::on(backend).await;
    let (url, received) = webhook_receiver().await;
    let hook = app
        .post(
            "/api/v1/webhooks",
            &app.admin,
            json!({"url": url, "secret": SECRET, "events": ["guard_rollback"]}),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    assert!(
        hook.body.get("secret").is_none(),
        "the secret is never shown back"
    );
    let id = hook.body["id"].as_i64().unwrap();
    let dead = app
        .post(
            "/api/v1/webhooks",
            &app.admin,
            json!({"url": "http://127.0.0.1:9/hook", "secret": SECRET, "events": ["*"]}),
        )
        .await;
    let dead_id = dead.body["id"].as_i64().unwrap();

    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let mut events = traffic("control", 3000, 300);
    events.extend(traffic("premium", 3000, 150));
    app.post("/sdk/v1/events", &app.sdk, json!({"events": events}))
        .await;
    let decision = app
        .post(
            "/api/v1/experiments/pricing-q4/guard/check",
            &app.editor,
            json!({}),
        )
        .await;
    assert_eq!(decision.body["action"], "rollback");

    let started = Instant::now();
    let (headers, body) = loop {
        if let Some(first) = received.lock().unwrap().first().cloned() {
            break (first.headers, first.body);
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no delivery within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(headers["x-sluice-event"], "guard_rollback");
    assert_eq!(
        headers["x-sluice-signature"],
        signature(SECRET, &body).as_str()
    );
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["experiment"], "pricing-q4");
    assert_eq!(payload["actor"], "guard");
    assert_eq!(payload["status"], "rolled_back");
    assert_eq!(payload["evidence"]["verdicts"][0]["status"], "red");
    assert_eq!(
        received.lock().unwrap().len(),
        1,
        "only the subscribed event"
    );

    // The receiver answered; the log records it right after.
    let started = Instant::now();
    loop {
        let log = app
            .get(&format!("/api/v1/webhooks/{id}/deliveries"), &app.admin)
            .await
            .body;
        if log[0]["status"] == "delivered" {
            assert_eq!(log[0]["attempts"], 1);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The dead receiver's deliveries (create, start, guard_rollback) wait for a retry.
    let started = Instant::now();
    loop {
        let log = app
            .get(
                &format!("/api/v1/webhooks/{dead_id}/deliveries"),
                &app.admin,
            )
            .await
            .body;
        let failed: Vec<&Value> = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["attempts"].as_i64() >= Some(1))
            .collect();
        if failed.len() == 3 {
            assert!(failed
                .iter()
                .all(|d| d["status"] == "pending" && d["last_error"].is_string()));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn webhooks_are_admin_only_and_validated(backend: Backend) {
    let app = TestApp::on(backend).await;
    let editor = app
        .post(
            "/api/v1/webhooks",
            &app.editor,
            json!({"url": "http://x", "secret": SECRET, "events": ["*"]}),
        )
        .await;
    assert_eq!(editor.status, StatusCode::FORBIDDEN);
    let bad = app
        .post(
            "/api/v1/webhooks",
            &app.admin,
            json!({"url": "ftp://x", "secret": "short", "events": ["explode"]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let fields = common::problem_fields(&bad.body);
    assert_eq!(fields, ["url", "secret", "events[0]"]);
    let created = app
        .post(
            "/api/v1/webhooks",
            &app.admin,
            json!({"url": "http://127.0.0.1:9", "secret": SECRET, "events": ["start"]}),
        )
        .await;
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(created.body["format"], "json", "the default format");
    let listed = app.get("/api/v1/webhooks", &app.admin).await.body;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["format"], "json");
    for (body, field) in [
        (
            json!({"url": "http://x", "events": ["*"], "format": "teams"}),
            "format",
        ),
        (json!({"url": "http://x", "events": ["*"]}), "secret"),
        (
            json!({"url": "http://x", "secret": SECRET, "events": ["*"], "format": "slack"}),
            "secret",
        ),
    ] {
        let refused = app.post("/api/v1/webhooks", &app.admin, body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            refused.body["error"]["details"][0]["field"], field,
            "{:?}",
            refused.body
        );
    }
    let gone = app
        .send(
            axum::http::Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            Some(&app.admin),
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let again = app
        .send(
            axum::http::Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            Some(&app.admin),
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

/// A receiver for each format, each webhook subscribed to `events`: json (the
/// default, so created without a format), slack, feishu and dingtalk signing with
/// their secrets, wecom.
async fn a_webhook_per_format(app: &TestApp, events: &[&str]) -> Vec<(&'static str, Received)> {
    let mut hooks = Vec::new();
    for format in ["json", "slack", "feishu", "dingtalk", "wecom"] {
        let (url, received) = webhook_receiver().await;
        let mut body = json!({"url": url, "events": events, "format": format});
        match format {
            "json" => body = json!({"url": url, "events": events, "secret": SECRET}),
            "feishu" => body["secret"] = FEISHU_SECRET.into(),
            "dingtalk" => body["secret"] = DINGTALK_SECRET.into(),
            _ => {}
        }
        let hook = app.post("/api/v1/webhooks", &app.admin, body).await;
        assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
        assert_eq!(hook.body["format"], format);
        hooks.push((format, received));
    }
    hooks
}

const FEISHU_SECRET: &str = "feishu-bot-secret-0123";
const DINGTALK_SECRET: &str = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";

/// The first request a receiver got for `event`, waiting up to 5 s for it.
async fn first_hit(received: &Received, event: &str) -> Hit {
    let started = Instant::now();
    loop {
        if let Some(hit) = received
            .lock()
            .unwrap()
            .iter()
            .find(|hit| hit.headers["x-sluice-event"] == event)
            .cloned()
        {
            return hit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no {event} delivery within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn hmac_base64(key: &[u8], message: &[u8]) -> String {
    use base64::Engine as _;
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A timestamp the services would accept: theirs must be within an hour of now.
fn assert_recent(timestamp: &str, per_second: i64) {
    let now = sluice::domain::now_millis() / (1000 / per_second);
    let stamped: i64 = timestamp.parse().unwrap();
    assert!(
        (now - stamped).abs() <= 60 * per_second,
        "{timestamp} vs {now}"
    );
}

fn text_of(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("a string: {value}"))
}

/// Checks a chat delivery against its service's documented body and signature;
/// returns every text it shows people, for the caller to look for its numbers.
fn documented_text(format: &str, hit: &Hit) -> String {
    assert!(
        hit.headers.get("x-sluice-signature").is_none(),
        "{format} bodies are not Sluice's to sign"
    );
    let body: Value = serde_json::from_slice(&hit.body).unwrap();
    match format {
        // Slack incoming webhook: `text` (the notification's fallback) and blocks.
        "slack" => {
            let blocks = body["blocks"].as_array().unwrap();
            assert_eq!(blocks[0]["type"], "header");
            assert_eq!(blocks[0]["text"]["type"], "plain_text");
            let mut text = text_of(&body["text"]).to_owned();
            for block in blocks {
                text.push('\n');
                text.push_str(text_of(&block["text"]["text"]));
            }
            text
        }
        // Feishu custom bot: msg_type post, content.post.LOCALE.{title, content:
        // [[{tag, text | href}]]}; signed with timestamp (s) and sign in the body.
        "feishu" => {
            assert_eq!(body["msg_type"], "post");
            let timestamp = text_of(&body["timestamp"]);
            assert_recent(timestamp, 1);
            let key = format!("{timestamp}\n{FEISHU_SECRET}");
            assert_eq!(text_of(&body["sign"]), hmac_base64(key.as_bytes(), b""));
            let mut text = String::new();
            for locale in ["zh_cn", "en_us"] {
                let post = &body["content"]["post"][locale];
                text.push_str(text_of(&post["title"]));
                for paragraph in post["content"].as_array().unwrap() {
                    for element in paragraph.as_array().unwrap() {
                        match text_of(&element["tag"]) {
                            "text" => text.push_str(text_of(&element["text"])),
                            "a" => text.push_str(text_of(&element["href"])),
                            other => panic!("tag {other}"),
                        }
                        text.push('\n');
                    }
                }
            }
            text
        }
        // DingTalk custom robot: msgtype markdown, markdown.{title, text}; signed
        // with timestamp (ms) and sign in the query.
        "dingtalk" => {
            assert_eq!(body["msgtype"], "markdown");
            let query: HashMap<String, String> =
                serde_urlencoded::from_str(hit.query.as_deref().unwrap()).unwrap();
            assert_recent(&query["timestamp"], 1000);
            let message = format!("{}\n{DINGTALK_SECRET}", query["timestamp"]);
            assert_eq!(
                query["sign"],
                hmac_base64(DINGTALK_SECRET.as_bytes(), message.as_bytes())
            );
            format!(
                "{}\n{}",
                text_of(&body["markdown"]["title"]),
                text_of(&body["markdown"]["text"])
            )
        }
        // WeCom group robot: msgtype markdown, markdown.content (4096 bytes at most).
        "wecom" => {
            assert_eq!(body["msgtype"], "markdown");
            let content = text_of(&body["markdown"]["content"]);
            assert!(content.len() <= 4096);
            content.to_owned()
        }
        other => panic!("format {other}"),
    }
}

fn assert_mentions(format: &str, text: &str, wanted: &[&str]) {
    let link = format!("{PUBLIC_URL}/experiments/pricing-q4");
    for part in wanted.iter().chain([&link.as_str()]) {
        assert!(text.contains(part), "{format} lacks {part:?}: {text}");
    }
}

async fn each_chat_format_tells_of_a_rollback_as_its_service_documents(backend: Backend) {
    let app = TestApp::on(backend).await;
    let hooks = a_webhook_per_format(&app, &["guard_rollback"]).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    app.send_traffic((3000, 300), (3000, 150)).await;
    let decision = app
        .post(
            "/api/v1/experiments/pricing-q4/guard/check",
            &app.editor,
            json!({}),
        )
        .await;
    assert_eq!(decision.body["action"], "rollback");

    for (format, received) in &hooks {
        let hit = first_hit(received, "guard_rollback").await;
        if *format == "json" {
            assert_eq!(
                hit.headers["x-sluice-signature"],
                signature(SECRET, &hit.body).as_str()
            );
            let payload: Value = serde_json::from_slice(&hit.body).unwrap();
            assert_eq!(payload["event"], "guard_rollback");
            assert_eq!(payload["evidence"]["verdicts"][0]["status"], "red");
            continue;
        }
        let text = documented_text(format, &hit);
        // Control converts 10%, premium 5%: a 50% drop, on 3000 users each.
        let happened = if matches!(*format, "slack" | "feishu") {
            "Guard rolled back pricing-q4"
        } else {
            "熔断：实验 pricing-q4 已自动回滚"
        };
        assert_mentions(
            format,
            &text,
            &[happened, "purchase", "premium", "50.0%", "3000", "0.0001"],
        );
    }
}

/// Moves the experiment's recorded start `minutes` into the past, as if it had
/// been running that long.
async fn backdate_start(app: &TestApp, minutes: i64) {
    let mut experiment = app
        .store
        .get_experiment("pricing-q4")
        .await
        .unwrap()
        .unwrap();
    let read = experiment.revision;
    let now = sluice::domain::now_millis();
    experiment.started_at = Some(now - minutes * 60_000);
    experiment.revision += 1;
    let audit =
        NewAuditEntry::for_experiment(&Actor::Cli, AuditAction::Update, None, &experiment, now);
    app.store
        .update_experiment(&experiment, read, &audit)
        .await
        .unwrap();
}

/// The queued deliveries of `event` to every webhook.
async fn queued(app: &TestApp, event: &str) -> usize {
    let hooks = app.get("/api/v1/webhooks", &app.admin).await.body;
    let mut count = 0;
    for hook in hooks.as_array().unwrap() {
        let log = app
            .get(
                &format!("/api/v1/webhooks/{}/deliveries", hook["id"]),
                &app.admin,
            )
            .await
            .body;
        count += log
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["event"] == event)
            .count();
    }
    count
}

async fn report_after_hours_sends_one_report_ready_in_every_format(backend: Backend) {
    let app = TestApp::on(backend).await;
    // The json webhook takes every event: `*` covers report_ready too.
    let mut hooks = a_webhook_per_format(&app, &["report_ready"]).await;
    let (url, everything) = webhook_receiver().await;
    app.post(
        "/api/v1/webhooks",
        &app.admin,
        json!({"url": url, "secret": SECRET, "events": ["*"]}),
    )
    .await;
    hooks.push(("json", everything));
    for metric in common::pricing_metrics() {
        app.post("/api/v1/metrics", &app.editor, metric).await;
    }
    let mut spec = common::pricing_spec();
    spec["report_after_hours"] = json!(1);
    let created = app.post("/api/v1/experiments", &app.editor, spec).await;
    assert_eq!(created.body["report_after_hours"], 1.0);
    app.start("pricing-q4").await;
    // Control converts 10%, premium 11%: a 10% lift, not significant yet.
    app.send_traffic((3000, 300), (3000, 330)).await;
    let control = app.server.control();

    backdate_start(&app, 30).await;
    check_all(control).await;
    assert_eq!(queued(&app, "report_ready").await, 0, "not before its time");

    backdate_start(&app, 61).await;
    tokio::join!(check_all(control), check_all(control));
    check_all(control).await;
    let formats = hooks.len();
    assert_eq!(
        queued(&app, "report_ready").await,
        formats,
        "one per webhook"
    );

    for (format, received) in &hooks {
        let hit = first_hit(received, "report_ready").await;
        if *format == "json" {
            let payload: Value = serde_json::from_slice(&hit.body).unwrap();
            assert_eq!(payload["actor"], "scheduler");
            let headline = &payload["evidence"];
            assert_eq!(headline["health"], "green");
            assert_eq!(headline["metric"], "purchase");
            let premium = &headline["comparisons"][0];
            assert_eq!(premium["variant"], "premium");
            assert!((premium["rel_effect"].as_f64().unwrap() - 0.1).abs() < 1e-9);
            assert_eq!(premium["rel_ci"].as_array().unwrap().len(), 2);
            assert!(premium["p_value"].as_f64().unwrap() > 0.05);
            assert_eq!(premium["significant"], false);
            continue;
        }
        let text = documented_text(format, &hit);
        let happened = if matches!(*format, "slack" | "feishu") {
            "Report ready: pricing-q4"
        } else {
            "实验报告已生成：pricing-q4"
        };
        let significance = if *format == "slack" {
            "not significant"
        } else {
            "不显著"
        };
        assert_mentions(
            format,
            &text,
            &[
                happened,
                "purchase",
                "premium",
                "+10.0%",
                "95%",
                "p = 0.",
                significance,
                "🟢",
            ],
        );
    }

    // A restarted server reads that the report went out.
    let restarted = Server::build(app.store.clone()).await.unwrap();
    check_all(restarted.control()).await;
    restarted.shutdown.send_replace(true);
    assert_eq!(queued(&app, "report_ready").await, formats);
    let experiment = app
        .get("/api/v1/experiments/pricing-q4", &app.analyst)
        .await
        .body;
    assert!(experiment["report_sent_at"].is_string(), "{experiment}");
    let audit = app
        .get("/api/v1/experiments/pricing-q4/audit", &app.analyst)
        .await
        .body;
    let reports: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["action"] == "report_ready")
        .collect();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["actor_kind"], "scheduler");
}

/// Regression (issue 12, found by `tests/fuzz.rs` on PostgreSQL, whose text cannot
/// hold U+0000): a webhook URL or secret with a NUL character was a 500. Both are
/// now refused with 400 on both backends.
async fn a_webhook_url_or_secret_with_a_nul_character_is_refused(backend: Backend) {
    let app = TestApp::on(backend).await;
    let hook =
        json!({"url": "http://x/\u{0}", "secret": format!("{SECRET}\u{0}"), "events": ["*"]});
    let reply = app.post("/api/v1/webhooks", &app.admin, hook).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    let fields = common::problem_fields(&reply.body);
    assert_eq!(fields, ["url", "secret"]);
}

on_both_backends!(
    a_webhook_url_or_secret_with_a_nul_character_is_refused,
    a_rollback_is_announced_signed_and_logged,
    webhooks_are_admin_only_and_validated,
    each_chat_format_tells_of_a_rollback_as_its_service_documents,
    report_after_hours_sends_one_report_ready_in_every_format,
);
