//! Environments end to end: the API, an experiment's `environments`, and every
//! SDK-facing surface serving the key's environment only, with its own version,
//! ETag and stream.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use sluice::store::UserFilter;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Backend, TestApp};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// The app with a `staging` environment, a staging SDK key, and two running
/// experiments: `pricing-q4` everywhere and `checkout` in staging only.
async fn staged(backend: Backend) -> (TestApp, String) {
    let app = TestApp::on(backend).await;
    let created = app
        .post(
            "/api/v1/environments",
            &app.admin,
            json!({"key": "staging", "name": "Staging"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let minted = app
        .post(
            "/api/v1/keys",
            &app.admin,
            json!({"role": "sdk", "environment": "staging"}),
        )
        .await;
    let staging = minted.body["key"].as_str().unwrap().to_owned();
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let checkout = json!({
        "key": "checkout", "environments": ["staging"],
        "variants": [{"key": "old", "weight": 0.5, "value": "old"},
                     {"key": "new", "weight": 0.5, "value": "new"}]});
    let reply = app.post("/api/v1/experiments", &app.editor, checkout).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["environments"], json!(["staging"]));
    app.start("checkout").await;
    (app, staging)
}

fn served_keys(ruleset: &Value) -> Vec<&str> {
    let experiments = ruleset["experiments"].as_array().unwrap();
    experiments
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect()
}

async fn environments_are_listed_created_once_and_validated(backend: Backend) {
    let app = TestApp::on(backend).await;
    let listed = app.get("/api/v1/environments", &app.analyst).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(
        listed.body,
        json!([{"key": "production", "name": "Production"}])
    );
    let staging = json!({"key": "staging", "name": "Staging"});
    let by_editor = app
        .post("/api/v1/environments", &app.editor, staging.clone())
        .await;
    assert_eq!(by_editor.status, StatusCode::FORBIDDEN);
    let bad = app
        .post(
            "/api/v1/environments",
            &app.admin,
            json!({"key": "pre prod"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"]["details"][0]["field"], "key");
    let typo = app
        .post(
            "/api/v1/environments",
            &app.admin,
            json!({"key": "qa", "nmae": "QA"}),
        )
        .await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);
    assert_eq!(typo.body["error"]["details"][0]["field"], "nmae");
    let created = app
        .post("/api/v1/environments", &app.admin, staging.clone())
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let again = app.post("/api/v1/environments", &app.admin, staging).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let listed = app.get("/api/v1/environments", &app.analyst).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);
    let settings = app.get("/api/v1/audit", &app.admin).await;
    let entry = &settings.body[0];
    assert_eq!(entry["action"], "environment_create");
    assert_eq!(entry["subject_kind"], "environment");
    assert_eq!(entry["subject"], "staging");
}

async fn an_experiment_may_name_only_defined_environments(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let reply = app
        .patch(
            "/api/v1/experiments/pricing-q4",
            &app.editor,
            json!({"environments": ["staging"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply.body["error"]["details"][0]["field"],
        "environments[0]"
    );
    let unchanged = app
        .get("/api/v1/experiments/pricing-q4", &app.analyst)
        .await;
    assert_eq!(unchanged.body["environments"], json!([]));
}

async fn each_key_is_served_its_environment_only(backend: Backend) {
    let (app, staging) = staged(backend).await;
    let production = app.get("/sdk/v1/ruleset", &app.sdk).await;
    assert_eq!(served_keys(&production.body), ["pricing-q4"]);
    let staged = app.get("/sdk/v1/ruleset", &staging).await;
    assert_eq!(served_keys(&staged.body), ["checkout", "pricing-q4"]);

    let user = json!({"user": {"id": "u1", "country": "CN"}, "log_exposure": false});
    let assigned = app.post("/sdk/v1/assign", &app.sdk, user.clone()).await;
    assert_eq!(assigned.body["assignments"].as_array().unwrap().len(), 1);
    let named = json!({"user": {"id": "u1"}, "experiments": ["checkout"]});
    let hidden = app.post("/sdk/v1/assign", &app.sdk, named.clone()).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    let visible = app.post("/sdk/v1/assign", &staging, named).await;
    assert_eq!(visible.status, StatusCode::OK);

    let features = app
        .get(&format!("/api/features/{}", app.sdk), &app.sdk)
        .await;
    let features = features.body["features"].as_object().unwrap();
    assert!(features.contains_key("pricing-q4") && !features.contains_key("checkout"));
    let flag = app
        .post(
            "/ofrep/v1/evaluate/flags/checkout",
            &app.sdk,
            json!({"context": {"targetingKey": "u1"}}),
        )
        .await;
    assert_eq!(flag.status, StatusCode::NOT_FOUND);
    assert_eq!(flag.body["errorCode"], "FLAG_NOT_FOUND");
}

async fn a_change_elsewhere_keeps_an_environments_etag(backend: Backend) {
    let (app, staging) = staged(backend).await;
    let production = app.get("/sdk/v1/ruleset", &app.sdk).await;
    let staged_before = app.get("/sdk/v1/ruleset", &staging).await;
    let reply = app
        .patch(
            "/api/v1/experiments/checkout",
            &app.editor,
            json!({"coverage": 0.5}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    let production_after = app.get("/sdk/v1/ruleset", &app.sdk).await;
    assert_eq!(production_after.headers["etag"], production.headers["etag"]);
    assert_eq!(production_after.body, production.body);
    let staged_after = app.get("/sdk/v1/ruleset", &staging).await;
    assert_ne!(staged_after.headers["etag"], staged_before.headers["etag"]);
    assert!(
        staged_after.body["version"].as_u64() > staged_before.body["version"].as_u64(),
        "{:?}",
        staged_after.body["version"]
    );
}

async fn promoting_to_production_while_running_is_served_and_audited(backend: Backend) {
    let (app, staging) = staged(backend).await;
    let mut production_stream = stream(&app, &app.sdk).await;
    let first = next_event(&mut production_stream).await.unwrap();
    assert!(first.contains("event: ruleset"), "{first}");

    app.patch(
        "/api/v1/experiments/checkout",
        &app.editor,
        json!({"coverage": 0.5}),
    )
    .await;
    assert_eq!(
        next_event(&mut production_stream).await,
        None,
        "a staging-only change woke production's stream"
    );

    let promoted = app
        .patch(
            "/api/v1/experiments/checkout",
            &app.editor,
            json!({"environments": ["staging", "production"]}),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{:?}", promoted.body);
    assert_eq!(promoted.body["status"], "running");
    let woken = next_event(&mut production_stream).await.unwrap();
    assert!(woken.contains("event: ruleset"), "{woken}");
    let production = app.get("/sdk/v1/ruleset", &app.sdk).await;
    assert_eq!(served_keys(&production.body), ["checkout", "pricing-q4"]);
    let user = json!({"user": {"id": "u7"}, "experiments": ["checkout"], "log_exposure": false});
    let in_production = app.post("/sdk/v1/assign", &app.sdk, user.clone()).await;
    let in_staging = app.post("/sdk/v1/assign", &staging, user).await;
    assert_eq!(
        in_production.body["assignments"],
        in_staging.body["assignments"]
    );

    let audit = app
        .get("/api/v1/experiments/checkout/audit", &app.analyst)
        .await;
    let last = audit.body.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "update");
    assert_eq!(last["before"]["environments"], json!(["staging"]));
    assert_eq!(
        last["after"]["environments"],
        json!(["staging", "production"])
    );
}

async fn exposures_for_another_environment_are_skipped_not_counted(backend: Backend) {
    let (app, staging) = staged(backend).await;
    let batch = json!({"events": [
        {"id": "e1", "type": "exposure", "user": "u1", "experiment": "pricing-q4", "variant": "premium"},
        {"id": "e2", "type": "exposure", "user": "u1", "experiment": "checkout", "variant": "new"},
        {"id": "e3", "type": "exposure", "user": "u2", "experiment": "pricing-q4", "variant": "platinum"},
        {"id": "e4", "type": "exposure", "user": "u3", "experiment": "pricng-q4", "variant": "control"},
        {"id": "e5", "type": "track", "user": "u1", "event": "purchase", "value": 249.0}]});
    let reply = app.post("/sdk/v1/events", &app.sdk, batch.clone()).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(
        reply.body,
        json!({"accepted": 2, "duplicates": 0, "skipped": [
            {"index": 1, "problem": "unknown experiment"},
            {"index": 2, "problem": "unknown variant"},
            {"index": 3, "problem": "unknown experiment"}]})
    );
    let checkout = app
        .store
        .exposure_summary("checkout", &UserFilter::EVERYONE)
        .await
        .unwrap();
    assert_eq!(checkout.users, vec![]);

    let from_staging = app.post("/sdk/v1/events", &staging, batch).await;
    assert_eq!(from_staging.body["accepted"], 1, "{:?}", from_staging.body);
    assert_eq!(from_staging.body["duplicates"], 2);
    let checkout = app
        .store
        .exposure_summary("checkout", &UserFilter::EVERYONE)
        .await
        .unwrap();
    assert_eq!(checkout.users, vec![("new".to_owned(), 1)]);

    let metrics = app.send(Method::GET, "/metrics", None, Body::empty()).await;
    let text = metrics.body.as_str().unwrap();
    assert!(
        text.contains("sluice_events_total{outcome=\"skipped\"} 5"),
        "{text}"
    );
}

async fn stream(app: &TestApp, key: &str) -> Body {
    let request = Request::get("/sdk/v1/stream")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body()
}

/// The next event on a stream, or `None` when none came within a second
/// (keep-alive comments are skipped).
async fn next_event(body: &mut Body) -> Option<String> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(1), body.frame())
            .await
            .ok()?
            .unwrap()
            .unwrap();
        let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
        if text.contains("event:") {
            return Some(text);
        }
    }
}

/// Regression (issue 12, found by `tests/fuzz.rs` on PostgreSQL, whose text cannot
/// hold U+0000): an environment named with a NUL character was a 500. It is now
/// refused with 400 on both backends.
async fn an_environment_name_with_a_nul_character_is_refused(backend: Backend) {
    let app = TestApp::on(backend).await;
    let staging = json!({"key": "staging", "name": "Sta\u{0}ging"});
    let reply = app.post("/api/v1/environments", &app.admin, staging).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert_eq!(reply.body["error"]["details"][0]["field"], "name");
    let listed = app.get("/api/v1/environments", &app.analyst).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
}

on_both_backends!(
    an_environment_name_with_a_nul_character_is_refused,
    environments_are_listed_created_once_and_validated,
    an_experiment_may_name_only_defined_environments,
    each_key_is_served_its_environment_only,
    a_change_elsewhere_keeps_an_environments_etag,
    promoting_to_production_while_running_is_served_and_audited,
    exposures_for_another_environment_are_skipped_not_counted,
);
