//! The circuit breakers end to end: a harmful variant is rolled back (or stepped
//! back) by the guard with its evidence in the audit log, once per breach, and an
//! SDK following the stream serves control within a second.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{Backend, TestApp};
use serde_json::{json, Value};
use sluice_sdk::client::Client;
use sluice_sdk::{Attributes, Reason};
use tokio::net::TcpListener;

async fn check(app: &TestApp) -> Value {
    let reply = app
        .post(
            "/api/v1/experiments/pricing-q4/guard/check",
            &app.editor,
            json!({}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body
}

async fn a_harmful_price_is_rolled_back_and_sdks_serve_control_within_a_second(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = Client::builder(url, app.sdk.clone())
        .poll_interval(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let user: Attributes = serde_json::from_value(json!({"id": "u-7", "country": "US"})).unwrap();
    assert_eq!(
        client.assign("pricing-q4", &user).unwrap().reason,
        Reason::Split
    );
    tokio::time::sleep(Duration::from_millis(200)).await;

    app.send_traffic((3000, 300), (3000, 150)).await;
    let breach = Instant::now();
    let decision = check(&app).await;
    assert_eq!(decision["action"], "rollback", "{decision}");
    assert_eq!(decision["status"], "rolled_back");
    assert_eq!(decision["verdicts"][0]["status"], "red");
    loop {
        if client.assign("pricing-q4", &user).unwrap().reason == Reason::RolledBack {
            break;
        }
        assert!(
            breach.elapsed() < Duration::from_secs(1),
            "SDK still serves the variant"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    client.close().await;

    let audit = app
        .get("/api/v1/experiments/pricing-q4/audit", &app.analyst)
        .await
        .body;
    let last = audit.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"], "guard");
    assert_eq!(last["action"], "guard_rollback");
    assert_eq!(last["evidence"]["verdicts"][0]["metric"], "purchase");
    assert!(last["evidence"]["verdicts"][0]["evidence"]
        .as_str()
        .unwrap()
        .contains("-50.0% vs control"));

    let again = check(&app).await;
    assert_eq!(again["action"], "none");
    let entries = app
        .get("/api/v1/experiments/pricing-q4/audit", &app.analyst)
        .await
        .body;
    assert_eq!(
        entries.as_array().unwrap().len(),
        audit.as_array().unwrap().len()
    );
}

async fn adjust_steps_coverage_back_once_per_breach(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let patch = json!({
        "stages": [{"coverage": 0.05, "hold_seconds": 3600}, {"coverage": 0.5}, {"coverage": 1.0}],
        "guardrails": [{"metric": "purchase", "max_drop": 0.2, "min_users": 500, "action": "adjust"}]
    });
    let patched = app
        .patch("/api/v1/experiments/pricing-q4", &app.editor, patch)
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    app.start("pricing-q4").await;
    // A manual ramp to the second stage's coverage.
    let ramp = json!({"coverage": 0.5});
    let ramped = app
        .patch("/api/v1/experiments/pricing-q4", &app.editor, ramp)
        .await;
    assert_eq!(ramped.body["coverage"], 0.5);
    app.send_traffic((3000, 300), (3000, 150)).await;

    let decision = check(&app).await;
    assert_eq!(decision["action"], "adjust");
    assert_eq!(decision["coverage"], 0.05);
    assert_eq!(decision["status"], "running");
    let experiment = app
        .get("/api/v1/experiments/pricing-q4", &app.analyst)
        .await
        .body;
    assert_eq!(
        experiment["guard"],
        json!({"tripped": true, "ramp_frozen": true, "warned": false})
    );

    let again = check(&app).await;
    assert_eq!(again["action"], "none", "one breach, one action");
    assert_eq!(again["coverage"], 0.05);
}

async fn an_a_a_test_triggers_nothing(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    app.send_traffic((3000, 300), (3000, 302)).await;
    let decision = check(&app).await;
    assert_eq!(decision["action"], "none");
    assert_eq!(decision["health"], "green");
    assert_eq!(decision["verdicts"][0]["status"], "green");
    let forbidden = app
        .post(
            "/api/v1/experiments/pricing-q4/guard/check",
            &app.analyst,
            json!({}),
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
}

async fn a_yellow_guardrail_warns_once(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    app.send_traffic((300, 30), (300, 20)).await;
    let first = check(&app).await;
    assert_eq!(first["action"], "warn", "{first}");
    assert_eq!(first["status"], "running");
    assert_eq!(first["verdicts"][0]["status"], "yellow");
    let second = check(&app).await;
    assert_eq!(second["action"], "none");
    let audit = app
        .get("/api/v1/experiments/pricing-q4/audit", &app.analyst)
        .await
        .body;
    let warnings = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "guard_warn")
        .count();
    assert_eq!(warnings, 1);
}

/// Empties an experiment's variants in its stored definition, as a hand edit or a
/// bug might: its report can no longer be built.
async fn corrupt_variants(db: &common::TestDb, key: &str) {
    if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query("UPDATE experiments SET definition = json_set(definition, '$.variants', json('[]')) WHERE key = $1")
            .bind(key).execute(&pool).await.unwrap();
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query("UPDATE experiments SET definition = jsonb_set(definition::jsonb, '{variants}', '[]')::text WHERE key = $1")
            .bind(key).execute(&pool).await.unwrap();
    }
}

/// Regression (issue 10): one experiment whose check fails must not stop the
/// breakers of the others, and the failure is counted where on-call looks.
async fn a_failing_check_does_not_stop_the_other_breakers(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let mut broken = common::pricing_spec();
    broken["key"] = json!("broken-banner");
    let reply = app.post("/api/v1/experiments", &app.editor, broken).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    app.start("broken-banner").await;
    app.start("pricing-q4").await;
    corrupt_variants(&app.db, "broken-banner").await;
    let control = app.server.control();

    sluice::control::guard::check_all(control).await;
    let health = control.guard_health();
    assert_eq!((health.passes(), health.check_failures()), (1, 1));

    app.send_traffic((3000, 300), (3000, 150)).await;
    sluice::control::guard::check_all(control).await;
    assert_eq!((health.passes(), health.check_failures()), (2, 2));
    let pricing = app
        .get("/api/v1/experiments/pricing-q4", &app.analyst)
        .await;
    assert_eq!(pricing.body["status"], "rolled_back", "{:?}", pricing.body);

    let healthz = app.get("/healthz", &app.analyst).await.body;
    assert_eq!(healthz["guard"]["passes"], 2, "{healthz}");
    assert_eq!(healthz["guard"]["check_failures"], 2);
    assert!(healthz["guard"]["last_pass_at"].is_string(), "{healthz}");
    let metrics = app.get("/metrics", &app.analyst).await;
    let text = metrics.body.as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("sluice_guard_check_failures_total 2"),
        "{text}"
    );
}

on_both_backends!(
    a_failing_check_does_not_stop_the_other_breakers,
    a_harmful_price_is_rolled_back_and_sdks_serve_control_within_a_second,
    adjust_steps_coverage_back_once_per_breach,
    an_a_a_test_triggers_nothing,
    a_yellow_guardrail_warns_once,
);
