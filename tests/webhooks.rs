//! Webhooks: signed deliveries of breaker actions, a delivery log, retries for a
//! dead receiver, and admin-only management.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{traffic, webhook_receiver, Backend, TestApp};
use serde_json::{json, Value};
use sluice::domain::webhook::signature;

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
            break first;
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
    let fields: Vec<&str> = bad.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["url", "secret", "events[0]"]);
    let created = app
        .post(
            "/api/v1/webhooks",
            &app.admin,
            json!({"url": "http://127.0.0.1:9", "secret": SECRET, "events": ["start"]}),
        )
        .await;
    let id = created.body["id"].as_i64().unwrap();
    let listed = app.get("/api/v1/webhooks", &app.admin).await.body;
    assert_eq!(listed.as_array().unwrap().len(), 1);
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

on_both_backends!(
    a_rollback_is_announced_signed_and_logged,
    webhooks_are_admin_only_and_validated,
);
