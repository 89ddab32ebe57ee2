//! Privacy: `DELETE /api/v1/users/{id}` erases a user's raw events, aggregates and
//! their part of the running totals in one transaction; the reports afterwards are
//! exactly those of a fresh ingest without that user.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{day, Backend, TestApp};
use serde_json::{json, Value};

/// Exposures and purchases of three users per variant; `erin` bought twice and
/// `mallory` was seen in both variants.
fn traffic(without: Option<&str>) -> Vec<Value> {
    let users = [
        ("alice", "control", 1),
        ("bob", "control", 0),
        ("erin", "premium", 2),
        ("frank", "premium", 1),
        ("grace", "premium", 0),
    ];
    let at = |hour: u32| format!("{}T{hour:02}:00:00Z", day(0));
    let mut events = Vec::new();
    for (user, variant, purchases) in users {
        events.push(
            json!({"id": format!("x-{user}"), "type": "exposure", "user": user,
            "experiment": "pricing-q4", "variant": variant, "ts": at(10)}),
        );
        for n in 0..purchases {
            events.push(
                json!({"id": format!("p-{user}-{n}"), "type": "track", "user": user,
                "event": "purchase", "value": 249.0, "ts": at(11 + n)}),
            );
        }
    }
    for (id, variant) in [("m1", "control"), ("m2", "premium")] {
        events.push(json!({"id": id, "type": "exposure", "user": "mallory",
            "experiment": "pricing-q4", "variant": variant, "ts": at(10)}));
    }
    events.retain(|e| Some(e["user"].as_str().unwrap()) != without);
    events
}

async fn running(backend: Backend, events: Vec<Value>) -> TestApp {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let reply = app
        .post("/sdk/v1/events", &app.sdk, json!({ "events": events }))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    app
}

async fn state_of(app: &TestApp) -> (Value, Value) {
    let totals = app
        .store
        .variant_totals("pricing-q4", "purchase")
        .await
        .unwrap();
    let exposures = app.store.exposure_summary("pricing-q4").await.unwrap();
    (
        json!(format!("{totals:?}")),
        json!(format!("{exposures:?}")),
    )
}

async fn an_erased_user_leaves_no_trace_in_the_totals(backend: Backend) {
    for erased in ["erin", "mallory"] {
        let app = running(backend, traffic(None)).await;
        let path = format!("/api/v1/users/{erased}");
        let by_editor = app
            .send(Method::DELETE, &path, Some(&app.editor), Body::empty())
            .await;
        assert_eq!(by_editor.status, StatusCode::FORBIDDEN);
        let reply = app
            .send(Method::DELETE, &path, Some(&app.admin), Body::empty())
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let expected_events = traffic(None).len() - traffic(Some(erased)).len();
        assert_eq!(reply.body["events_erased"], expected_events);

        let fresh = running(backend, traffic(Some(erased))).await;
        assert_eq!(
            state_of(&app).await,
            state_of(&fresh).await,
            "erasing {erased}"
        );
        let report = app
            .get("/api/v1/experiments/pricing-q4/report", &app.analyst)
            .await;
        let fresh_report = fresh
            .get("/api/v1/experiments/pricing-q4/report", &fresh.analyst)
            .await;
        assert!(report.body["metrics"].as_array().is_some_and(|m| !m.is_empty()));
        assert_eq!(report.body["metrics"], fresh_report.body["metrics"]);

        let audit = app.get("/api/v1/audit", &app.admin).await;
        let entry = &audit.body[0];
        assert_eq!(entry["action"], "user_erase");
        assert_eq!(entry["subject_kind"], "user");
        assert!(
            !entry.to_string().contains(erased),
            "the audit log keeps no id: {entry}"
        );
        let again = app
            .send(Method::DELETE, &path, Some(&app.admin), Body::empty())
            .await;
        assert_eq!(again.body["events_erased"], 0);
    }
}

on_both_backends!(an_erased_user_leaves_no_trace_in_the_totals);
