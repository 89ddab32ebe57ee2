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

fn users(variant: &str, from: usize, to: usize) -> Vec<Value> {
    (from..to)
        .flat_map(|i| {
            let user = format!("{variant}-{i}");
            let at = format!("{}T10:00:00Z", common::day(0));
            let mut events = vec![json!({"id": format!("x-{user}"), "type": "exposure",
                "user": user, "experiment": "pricing-q4", "variant": variant, "ts": at})];
            if i % 10 == 0 {
                events.push(
                    json!({"id": format!("p-{user}"), "type": "track", "user": user,
                    "event": "purchase", "value": 10.0, "ts": at}),
                );
            }
            events
        })
        .collect()
}

/// Regression (issue 12): the ramp freeze was a one-way latch, so one transient
/// sample ratio mismatch held a staged rollout for ever. It thaws after three
/// consecutive clean checks (audited as `guard_unfreeze`), or when an editor
/// resumes it (audited as `resume`).
async fn a_frozen_ramp_thaws_when_its_cause_clears_or_an_editor_resumes(backend: Backend) {
    let app = TestApp::on(backend).await;
    staged(&app, 0).await;
    let mut lopsided = users("control", 0, 700);
    lopsided.extend(users("premium", 0, 400));
    app.post("/sdk/v1/events", &app.sdk, json!({"events": lopsided}))
        .await;
    let frozen = check(&app).await;
    assert_eq!(frozen["action"], "freeze", "{frozen}");

    let late = users("premium", 400, 700);
    app.post("/sdk/v1/events", &app.sdk, json!({"events": late}))
        .await;
    for round in 1..3 {
        let held = check(&app).await;
        assert_eq!(held["action"], "none", "clean check {round}: {held}");
        assert_eq!(held["stage"]["advance"], false);
    }
    let thawed = check(&app).await;
    assert_eq!(thawed["action"], "unfreeze", "{thawed}");
    let advanced = check(&app).await;
    assert_eq!(advanced["action"], "advance", "{advanced}");

    let audit = app
        .get("/api/v1/experiments/pricing-q4/audit", &app.analyst)
        .await
        .body;
    let unfreeze = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "guard_unfreeze")
        .unwrap()
        .clone();
    assert_eq!(unfreeze["actor"], "guard");
    assert_eq!(unfreeze["after"]["guard"]["ramp_frozen"], false);

    let imbalance = users("control", 700, 1400);
    app.post("/sdk/v1/events", &app.sdk, json!({"events": imbalance}))
        .await;
    assert_eq!(check(&app).await["action"], "freeze");
    let resumed = app
        .post(
            "/api/v1/experiments/pricing-q4/resume",
            &app.editor,
            json!({}),
        )
        .await;
    assert_eq!(resumed.status, StatusCode::OK, "{:?}", resumed.body);
    assert_eq!(resumed.body["guard"]["ramp_frozen"], false);
    assert_eq!(resumed.body["status"], "running");
    let again = app
        .post(
            "/api/v1/experiments/pricing-q4/resume",
            &app.editor,
            json!({}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "nothing left to resume");
}

on_both_backends!(
    a_frozen_ramp_thaws_when_its_cause_clears_or_an_editor_resumes,
    a_healthy_rollout_advances_stage_by_stage,
    a_rollout_holds_until_its_hold_passes_and_on_harm,
);
