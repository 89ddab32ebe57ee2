//! Staged rollouts: start at the first stage, advance only when the hold has passed
//! and every guardrail has its sample and is green; every step audited.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use axum::http::StatusCode;
use common::{traffic, Backend, TestApp};
use serde_json::{json, Value};

async fn staged(app: &TestApp, first_hold_seconds: u64) {
    app.pricing_experiment().await;
    let patch = json!({
        "stages": [{"coverage": 0.05, "hold_seconds": first_hold_seconds},
                   {"coverage": 0.5, "hold_seconds": 0}, {"coverage": 1.0}],
        "guardrails": [{"metric": "purchase", "max_drop": 0.2, "min_users": 100, "action": "rollback"}]
    });
    let reply = app
        .patch("/api/v1/experiments/pricing-q4", &app.editor, patch)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    app.start("pricing-q4").await;
}

async fn check(app: &TestApp) -> Value {
    app.post(
        "/api/v1/experiments/pricing-q4/guard/check",
        &app.editor,
        json!({}),
    )
    .await
    .body
}

async fn a_healthy_rollout_advances_stage_by_stage(backend: Backend) {
    let app = TestApp::on(backend).await;
    staged(&app, 0).await;
    let started = app
        .get("/api/v1/experiments/pricing-q4", &app.analyst)
        .await
        .body;
    assert_eq!(started["coverage"], 0.05);
    assert_eq!(started["rollout"]["stage"], 0);
    assert_eq!(
        started["rollout"]["hold_until"],
        started["rollout"]["since"]
    );

    let waiting = check(&app).await;
    assert_eq!(waiting["action"], "none");
    assert_eq!(waiting["stage"]["advance"], false);
    assert_eq!(
        waiting["stage"]["reason"],
        "a guardrail lacks its minimum users"
    );

    let mut events = traffic("control", 600, 60);
    events.extend(traffic("premium", 600, 61));
    app.post("/sdk/v1/events", &app.sdk, json!({"events": events}))
        .await;
    let first = check(&app).await;
    assert_eq!(first["action"], "advance", "{first}");
    assert_eq!(first["coverage"], 0.5);
    let second = check(&app).await;
    assert_eq!(second["coverage"], 1.0);
    let last = check(&app).await;
    assert_eq!(last["action"], "none");
    assert_eq!(last["stage"]["reason"], "at the last stage");

    let audit = app
        .get("/api/v1/experiments/pricing-q4/audit", &app.analyst)
        .await
        .body;
    let steps: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "advance")
        .collect();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["actor"], "scheduler");
    assert_eq!(steps[0]["after"]["rollout"]["stage"], 1);
    assert_eq!(steps[0]["evidence"]["verdicts"][0]["status"], "green");
}

async fn a_rollout_holds_until_its_hold_passes_and_on_harm(backend: Backend) {
    let app = TestApp::on(backend).await;
    staged(&app, 3600).await;
    let mut events = traffic("control", 600, 60);
    events.extend(traffic("premium", 600, 61));
    app.post("/sdk/v1/events", &app.sdk, json!({"events": events}))
        .await;
    let held = check(&app).await;
    assert_eq!(held["action"], "none");
    assert_eq!(held["stage"]["reason"], "the stage's hold has not passed");
    assert!(held["stage"]["hold_until"].as_str().unwrap().ends_with('Z'));
    let experiment = app
        .get("/api/v1/experiments/pricing-q4", &app.analyst)
        .await
        .body;
    assert_eq!(
        experiment["rollout"]["hold_until"],
        held["stage"]["hold_until"]
    );
    assert_eq!(held["coverage"], 0.05);
}

on_both_backends!(
    a_healthy_rollout_advances_stage_by_stage,
    a_rollout_holds_until_its_hold_passes_and_on_harm,
);
