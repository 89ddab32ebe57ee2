//! End-to-end tests of the SDK endpoints: ruleset and ETag, the change stream,
//! server-side assignment with the shared core, and event ingestion.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use sluice::store::UserFilter;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{Backend, TestApp};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sluice_sdk::{Attributes, CompiledRuleset, Ruleset};
use tower::ServiceExt;

fn user(id: &str, country: &str) -> Value {
    json!({"id": id, "country": country})
}

async fn ruleset_serves_non_drafts_with_etag_and_304(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let draft = app.get("/sdk/v1/ruleset", &app.sdk).await;
    assert_eq!(draft.status, StatusCode::OK);
    assert_eq!(draft.body["experiments"], json!([]));

    app.start("pricing-q4").await;
    let live = app.get("/sdk/v1/ruleset", &app.sdk).await;
    let version = live.body["version"].as_u64().unwrap();
    assert!(version > draft.body["version"].as_u64().unwrap());
    assert_eq!(live.body["experiments"][0]["key"], "pricing-q4");
    assert_eq!(live.body["experiments"][0]["status"], "running");
    let etag = live.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_ne!(etag, draft.headers["etag"].to_str().unwrap());

    let request = Request::get("/sdk/v1/ruleset")
        .header("authorization", format!("Bearer {}", app.sdk))
        .header("if-none-match", &etag)
        .body(Body::empty())
        .unwrap();
    let cached = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    let analyst = app.get("/sdk/v1/ruleset", &app.analyst).await;
    assert_eq!(analyst.status, StatusCode::FORBIDDEN);
}

async fn server_assignment_matches_local_evaluation_of_the_served_ruleset(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let served: Ruleset =
        serde_json::from_value(app.get("/sdk/v1/ruleset", &app.sdk).await.body).unwrap();
    let (local, warnings) = CompiledRuleset::compile(served);
    assert!(warnings.is_empty());
    let mut variants = std::collections::HashSet::new();
    for i in 0..200 {
        let attributes = user(&format!("user-{i}"), if i % 3 == 0 { "DE" } else { "CN" });
        let reply = app
            .post(
                "/sdk/v1/assign",
                &app.sdk,
                json!({"user": attributes, "experiments": ["pricing-q4"], "log_exposure": false}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        let attributes: Attributes = serde_json::from_value(attributes).unwrap();
        let expected = local.assign("pricing-q4", &attributes).unwrap();
        let got = &reply.body["assignments"][0];
        assert_eq!(got["variant"], expected.variant);
        assert_eq!(got["in_experiment"], expected.in_experiment);
        assert_eq!(got["reason"], expected.reason.as_str());
        assert_eq!(got["value"], *expected.value);
        if i % 3 == 0 {
            assert_eq!(got["reason"], "condition");
        } else {
            variants.insert(got["variant"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(variants.len(), 2, "both variants are served");
}

async fn paused_experiments_serve_control_and_resume_restores_assignments(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let ask = |id: String| json!({"user": {"id": id, "country": "US"}, "experiments": ["pricing-q4"], "log_exposure": false});
    let mut before = Vec::new();
    for i in 0..40 {
        before.push(
            app.post("/sdk/v1/assign", &app.sdk, ask(format!("u{i}")))
                .await
                .body["assignments"][0]
                .clone(),
        );
    }
    app.post(
        "/api/v1/experiments/pricing-q4/pause",
        &app.editor,
        json!({}),
    )
    .await;
    for i in 0..40 {
        let paused = &app
            .post("/sdk/v1/assign", &app.sdk, ask(format!("u{i}")))
            .await
            .body["assignments"][0];
        assert_eq!(paused["variant"], "control");
        assert_eq!(paused["in_experiment"], false);
        assert_eq!(paused["reason"], "paused");
    }
    app.post(
        "/api/v1/experiments/pricing-q4/resume",
        &app.editor,
        json!({}),
    )
    .await;
    for (i, earlier) in before.iter().enumerate() {
        let resumed = &app
            .post("/sdk/v1/assign", &app.sdk, ask(format!("u{i}")))
            .await
            .body["assignments"][0];
        assert_eq!(resumed, earlier);
    }
}

async fn unknown_experiments_and_bad_users_are_rejected(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let unknown = app
        .post(
            "/sdk/v1/assign",
            &app.sdk,
            json!({"user": {"id": "u"}, "experiments": ["pricing-q4", "nope"]}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.body["error"]["details"][0]["field"],
        "experiments[1]"
    );
    let not_object = app
        .post("/sdk/v1/assign", &app.sdk, json!({"user": "u1"}))
        .await;
    assert_eq!(not_object.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_object.body["error"]["details"][0]["field"], "user");
    let all = app
        .post(
            "/sdk/v1/assign",
            &app.sdk,
            json!({"user": {"id": "u", "country": "CN"}}),
        )
        .await;
    assert_eq!(all.body["assignments"].as_array().unwrap().len(), 1);
}

async fn assignment_logs_one_exposure_per_user_in_the_background(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    for round in 0..2 {
        for i in 0..50 {
            let reply = app
                .post(
                    "/sdk/v1/assign",
                    &app.sdk,
                    json!({"user": user(&format!("u{i}"), "CN")}),
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "round {round}");
        }
    }
    let mut users = 0;
    for _ in 0..100 {
        let summary = app
            .store
            .exposure_summary("pricing-q4", &UserFilter::EVERYONE)
            .await
            .unwrap();
        users = summary.users.iter().map(|(_, n)| n).sum::<u64>();
        if users == 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(users, 50);
}

fn exposure(id: &str, user: &str, variant: &str, ts: &str) -> Value {
    json!({"id": id, "type": "exposure", "user": user, "experiment": "pricing-q4", "variant": variant, "ts": ts})
}

fn purchase(id: &str, user: &str, value: f64, ts: &str) -> Value {
    json!({"id": id, "type": "track", "user": user, "event": "purchase", "value": value, "ts": ts})
}

async fn events_are_stored_once_and_folded_from_first_exposure(backend: Backend) {
    let (d0, d1, d2) = (common::day(0), common::day(1), common::day(2));
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let alice = "アリス'; DROP TABLE events; --";
    let batch = json!({"events": [
        // bought before being exposed: not counted
        purchase("p0", alice, 99.0, &format!("{d0}T09:00:00Z")),
        exposure("x1", alice, "premium", &format!("{d0}T10:00:00Z")),
        purchase("p1", alice, 249.0, &format!("{d0}T11:00:00Z")),
        purchase("p2", alice, 249.0, &format!("{d1}T11:00:00Z")),
        exposure("x2", "bob", "control", &format!("{d0}T10:00:00Z")),
        exposure("x3", "carol", "control", &format!("{d0}T10:00:00Z")),
        purchase("p3", "carol", 199.0, &format!("{d0}T12:00:00Z")),
    ]});
    let reply = app.post("/sdk/v1/events", &app.sdk, batch.clone()).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(
        reply.body,
        json!({"accepted": 7, "duplicates": 0, "skipped": []})
    );
    let again = app.post("/sdk/v1/events", &app.sdk, batch).await;
    assert_eq!(
        again.body,
        json!({"accepted": 0, "duplicates": 7, "skipped": []})
    );

    // A late exposure of dave arrives after his purchase was stored.
    app.post(
        "/sdk/v1/events",
        &app.sdk,
        json!({"events": [purchase("p4", "dave", 199.0, &format!("{d2}T12:00:00Z"))]}),
    )
    .await;
    app.post(
        "/sdk/v1/events",
        &app.sdk,
        json!({"events": [exposure("x4", "dave", "control", &format!("{d2}T10:00:00Z"))]}),
    )
    .await;

    let totals = app
        .store
        .variant_totals("pricing-q4", "purchase", &UserFilter::EVERYONE)
        .await
        .unwrap();
    let control = totals.iter().find(|t| t.variant == "control").unwrap();
    let premium = totals.iter().find(|t| t.variant == "premium").unwrap();
    assert_eq!((control.users, control.converted), (3, 2));
    assert_eq!(control.value_sum, 398.0);
    assert_eq!(control.value_sum_squares, 2.0 * 199.0 * 199.0);
    assert_eq!((premium.users, premium.converted), (1, 1));
    assert_eq!(premium.value_sum, 498.0);
    assert_eq!(premium.count_sum, 2.0);
    assert_eq!(premium.count_sum_squares, 4.0);
}

async fn users_seen_in_two_variants_are_set_apart(backend: Backend) {
    let d0 = common::day(0);
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    app.post(
        "/sdk/v1/events",
        &app.sdk,
        json!({"events": [
            exposure("a", "eve", "control", &format!("{d0}T10:00:00Z")),
            exposure("b", "frank", "premium", &format!("{d0}T10:00:00Z")),
        ]}),
    )
    .await;
    app.post(
        "/sdk/v1/events",
        &app.sdk,
        json!({"events": [
            exposure("c", "eve", "premium", &format!("{d0}T11:00:00Z")),
        ]}),
    )
    .await;
    let summary = app
        .store
        .exposure_summary("pricing-q4", &UserFilter::EVERYONE)
        .await
        .unwrap();
    assert_eq!(summary.users, vec![("premium".to_owned(), 1)]);
    assert_eq!(summary.multiple_exposures, 1);
}

async fn one_bad_event_rejects_the_whole_batch(backend: Backend) {
    let d0 = common::day(0);
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let mut events = vec![
        exposure("ok1", "u1", "control", &format!("{d0}T10:00:00Z")),
        exposure("bad", "u2", "premium", "last tuesday"),
        purchase("ok2", "u1", 1.0, &format!("{d0}T10:00:00Z")),
    ];
    let reply = app
        .post("/sdk/v1/events", &app.sdk, json!({"events": events}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["error"]["details"][0]["field"], "events[1].ts");
    assert_eq!(
        app.store
            .exposure_summary("pricing-q4", &UserFilter::EVERYONE)
            .await
            .unwrap()
            .users,
        vec![]
    );

    let mistyped = app
        .post("/sdk/v1/events", &app.sdk, json!({"events": [{"id": "z", "type": "track", "user": "u", "event": "e", "value": "ten"}]}))
        .await;
    assert_eq!(mistyped.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        mistyped.body["error"]["details"][0]["field"],
        "events[0].value"
    );

    events[1] = exposure("bad", "u2", "premium", &format!("{d0}T10:00:00Z"));
    let fixed = app
        .post("/sdk/v1/events", &app.sdk, json!({"events": events}))
        .await;
    assert_eq!(
        fixed.body,
        json!({"accepted": 3, "duplicates": 0, "skipped": []})
    );
}

async fn oversized_batches_are_refused_with_413(backend: Backend) {
    let app = TestApp::on(backend).await;
    let events: Vec<Value> = (0..10_001)
        .map(|i| json!({"id": i.to_string(), "type": "track", "user": "u", "event": "e"}))
        .collect();
    let reply = app
        .post("/sdk/v1/events", &app.sdk, json!({"events": events}))
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    let huge = format!(
        "{{\"events\": [], \"pad\": \"{}\"}}",
        "x".repeat(17 * 1024 * 1024)
    );
    let reply = app
        .send(
            Method::POST,
            "/sdk/v1/events",
            Some(&app.sdk),
            Body::from(huge),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}

async fn the_stream_pushes_each_new_ruleset_version(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let request = Request::get("/sdk/v1/stream")
        .header("authorization", format!("Bearer {}", app.sdk))
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let first = next_event(&mut body).await;
    assert!(first.contains("event: ruleset"), "{first}");
    let version: u64 = app.get("/sdk/v1/ruleset", &app.sdk).await.body["version"]
        .as_u64()
        .unwrap();
    assert!(
        first.contains(&format!("data: {{\"version\":{version}}}")),
        "{first}"
    );

    app.start("pricing-q4").await;
    let second = next_event(&mut body).await;
    let started: u64 = app.get("/sdk/v1/ruleset", &app.sdk).await.body["version"]
        .as_u64()
        .unwrap();
    assert!(started > version);
    assert!(
        second.contains(&format!("data: {{\"version\":{started}}}")),
        "{second}"
    );
}

async fn next_event(body: &mut Body) -> String {
    let frame = tokio::time::timeout(Duration::from_secs(1), body.frame())
        .await
        .expect("an event within a second")
        .unwrap()
        .unwrap();
    String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
}

async fn operations_endpoints_report_health_and_counters(backend: Backend) {
    let app = TestApp::on(backend).await;
    let health = app.send(Method::GET, "/healthz", None, Body::empty()).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "ok");
    app.post(
        "/sdk/v1/events",
        &app.sdk,
        json!({"events": [{"id": "1", "type": "track", "user": "u", "event": "e"}]}),
    )
    .await;
    app.post(
        "/sdk/v1/events",
        &app.sdk,
        json!({"events": [{"id": "1", "type": "track", "user": "u", "event": "e"}]}),
    )
    .await;
    let metrics = app.send(Method::GET, "/metrics", None, Body::empty()).await;
    let text = metrics.body.as_str().unwrap();
    assert!(
        text.contains("sluice_events_total{outcome=\"accepted\"} 1"),
        "{text}"
    );
    assert!(text.contains("sluice_events_total{outcome=\"duplicate\"} 1"));
    assert!(text.contains(
        "sluice_http_requests_total{method=\"POST\",route=\"/sdk/v1/events\",status=\"202\"} 2"
    ));
    assert!(text.contains("sluice_ruleset_version 0"));
}

/// What a browser cannot send with a header: `EventSource` opens the stream and
/// `navigator.sendBeacon` posts a last batch (as `text/plain`) with the key in the
/// query. The management API still takes the header alone.
async fn the_key_may_ride_in_the_query_where_a_browser_cannot_set_headers(backend: Backend) {
    let app = TestApp::on(backend).await;
    let stream = Request::get(format!("/sdk/v1/stream?key={}", app.sdk))
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(stream).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let beacon = Request::post(format!("/sdk/v1/events?key={}", app.sdk))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Body::from(
            json!({"events": [{"id": "b1", "type": "track", "user": "u1", "event": "leave"}]})
                .to_string(),
        ))
        .unwrap();
    let response = app.router.clone().oneshot(beacon).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let by_header = Request::get("/sdk/v1/ruleset")
        .header("x-api-key", &app.sdk)
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(by_header).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let wrong = Request::get("/sdk/v1/ruleset?key=not-a-key")
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(wrong).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let management = Request::get(format!("/api/v1/experiments?key={}", app.admin))
        .body(Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(management).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// A server re-reads only what changed after the version it holds: the
/// experiments written since, never the others; a draft, which no SDK sees,
/// leaves the version alone.
async fn the_ruleset_reread_reads_only_what_changed(backend: Backend) {
    use sluice::domain::{Actor, AuditAction, Experiment, LifecycleAction, NewAuditEntry};
    let db = common::TestDb::new(backend).await;
    let store = sluice::store::open(&db.url).await.unwrap();
    let experiment = |key: &str| {
        let mut spec = common::pricing_spec();
        spec["key"] = json!(key);
        spec.as_object_mut().unwrap().remove("status");
        Experiment::new_draft(serde_json::from_value(spec).unwrap(), 1_000)
    };
    let audit = |e: &Experiment| {
        NewAuditEntry::for_experiment(&Actor::Cli, AuditAction::Create, None, e, 1_000)
    };
    let mut started = Vec::new();
    for key in ["b-copy", "a-price"] {
        let mut e = experiment(key);
        e.apply(&LifecycleAction::Start, 2_000).unwrap();
        store.insert_experiment(&e, &audit(&e)).await.unwrap();
        started.push(e);
    }
    let all = store.ruleset_changes(None).await.unwrap();
    let mut keys: Vec<&str> = all.changed.iter().map(|e| e.key()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["a-price", "b-copy"]);
    let draft = experiment("c-draft");
    let after_draft = store
        .insert_experiment(&draft, &audit(&draft))
        .await
        .unwrap();
    assert_eq!(after_draft, all.version, "a draft is not served");
    let nothing = store.ruleset_changes(Some(all.version)).await.unwrap();
    assert!(nothing.changed.is_empty(), "{:?}", nothing.changed);

    let before = started[0].clone();
    let mut paused = before.clone();
    paused.apply(&LifecycleAction::Pause, 3_000).unwrap();
    let version = store
        .update_experiment(&paused, before.revision, &audit(&paused))
        .await
        .unwrap();
    let changes = store.ruleset_changes(Some(all.version)).await.unwrap();
    assert_eq!(changes.version, version);
    let keys: Vec<&str> = changes.changed.iter().map(|e| e.key()).collect();
    assert_eq!(keys, ["b-copy"], "only the experiment written since");
    assert_eq!(changes.changed[0].status, paused.status);
}

on_both_backends!(
    the_ruleset_reread_reads_only_what_changed,
    the_key_may_ride_in_the_query_where_a_browser_cannot_set_headers,
    sdk_endpoints_answer_browsers_on_other_origins,
    ruleset_serves_non_drafts_with_etag_and_304,
    server_assignment_matches_local_evaluation_of_the_served_ruleset,
    paused_experiments_serve_control_and_resume_restores_assignments,
    unknown_experiments_and_bad_users_are_rejected,
    assignment_logs_one_exposure_per_user_in_the_background,
    events_are_stored_once_and_folded_from_first_exposure,
    users_seen_in_two_variants_are_set_apart,
    one_bad_event_rejects_the_whole_batch,
    oversized_batches_are_refused_with_413,
    the_stream_pushes_each_new_ruleset_version,
    operations_endpoints_report_health_and_counters,
);

/// Regression (issue 12): on SQLite nothing re-read the ruleset, so a change whose
/// republish failed (or one committed by another handle on the file) was never
/// served until the next change. The version check now runs on every backend.
#[tokio::test]
async fn a_change_the_server_did_not_publish_reaches_its_sdks() {
    use sluice::domain::{Actor, AuditAction, Experiment, NewAuditEntry};
    let app = TestApp::on(Backend::Sqlite).await;
    let before = app.get("/sdk/v1/ruleset", &app.sdk).await.body["version"]
        .as_u64()
        .unwrap();
    let other = sluice::store::open(&app.db.url).await.unwrap();
    let mut spec = common::pricing_spec();
    spec.as_object_mut().unwrap().remove("status");
    let mut experiment = Experiment::new_draft(serde_json::from_value(spec).unwrap(), 0);
    experiment.status = sluice::domain::Status::Running;
    let audit =
        NewAuditEntry::for_experiment(&Actor::Cli, AuditAction::Create, None, &experiment, 0);
    let committed = other.insert_experiment(&experiment, &audit).await.unwrap();
    assert!(committed > before);
    let deadline =
        std::time::Instant::now() + sluice::control::ruleset::REREAD_EVERY + Duration::from_secs(5);
    loop {
        let served = app.get("/sdk/v1/ruleset", &app.sdk).await.body;
        if served["version"].as_u64() == Some(committed) {
            assert_eq!(served["experiments"][0]["key"], "pricing-q4");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still serving {}",
            served["version"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Browsers on another origin may call the SDK endpoints (API.md, "Browsers"), with
/// `Authorization` named in the preflight's answer; the management API sends no
/// CORS headers.
async fn sdk_endpoints_answer_browsers_on_other_origins(backend: Backend) {
    let app = TestApp::on(backend).await;
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("/sdk/v1/events")
        .header("origin", "https://shop.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .body(Body::empty())
        .unwrap();
    let answer = app.router.clone().oneshot(preflight).await.unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    assert_eq!(header("access-control-allow-origin"), "*");
    let allowed = header("access-control-allow-headers");
    for name in [
        "authorization",
        "content-type",
        "if-none-match",
        "x-api-key",
    ] {
        assert!(allowed.contains(name), "{allowed}");
    }

    let get = |path: &str, key: &str| {
        Request::builder()
            .uri(path)
            .header("origin", "https://shop.example.com")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap()
    };
    let ruleset = app
        .router
        .clone()
        .oneshot(get("/sdk/v1/ruleset", &app.sdk))
        .await
        .unwrap();
    assert_eq!(ruleset.status(), StatusCode::OK);
    assert_eq!(ruleset.headers()["access-control-allow-origin"], "*");
    let exposed = ruleset.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("etag"), "{exposed}");

    let management = app
        .router
        .clone()
        .oneshot(get("/api/v1/experiments", &app.analyst))
        .await
        .unwrap();
    assert_eq!(management.status(), StatusCode::OK);
    assert!(management
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

/// A runaway loop gets 429 with Retry-After once its key is past its burst; other
/// keys and the other surface are not slowed down.
#[tokio::test]
async fn a_key_past_its_rate_limit_gets_429_with_retry_after() {
    use sluice::api::{Limits, RateLimits};
    use sluice::app::{Server, ServerOptions};
    let db = common::TestDb::new(Backend::Sqlite).await;
    let store = sluice::store::open(&db.url).await.unwrap();
    let sdk = common::mint_key(&store, sluice::domain::Role::Sdk, "runaway").await;
    let admin = common::mint_key(&store, sluice::domain::Role::Admin, "admin").await;
    let options = ServerOptions {
        limits: Limits {
            rates: RateLimits {
                sdk: 10,
                management: 5,
            },
            ..Limits::default()
        },
        ..ServerOptions::default()
    };
    let server = Server::build_with(store, options).await.unwrap();
    let call = |path: &'static str, key: String| {
        let router = server.router.clone();
        async move {
            let request = Request::get(path)
                .header("authorization", format!("Bearer {key}"))
                .body(Body::empty())
                .unwrap();
            router.oneshot(request).await.unwrap()
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(call("/sdk/v1/ruleset", sdk.clone()).await.status());
    }
    let admitted = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(admitted, 20, "two seconds' worth of burst: {statuses:?}");
    let limited = call("/sdk/v1/ruleset", sdk.clone()).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "1");
    let features = call("/api/features/x", sdk.clone()).await;
    assert_eq!(
        features.status(),
        StatusCode::UNAUTHORIZED,
        "a bad key is not counted"
    );
    let management = call("/api/v1/experiments", admin.clone()).await;
    assert_eq!(management.status(), StatusCode::OK);
}

/// Regression (issue 12): an exposure stamped before the experiment started
/// counted the user's earlier conversions. It now counts from the start.
async fn a_back_dated_exposure_cannot_claim_conversions_from_before_the_start(backend: Backend) {
    use sluice::domain::{format_millis, now_millis};
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let days_ago = |days: i64| format_millis(now_millis() - days * 86_400_000);
    let batch = json!({"events": [
        purchase("before", "mallory", 249.0, &days_ago(2)),
        exposure("back-dated", "mallory", "premium", &days_ago(3)),
        purchase("after", "trent", 249.0, &format!("{}T11:00:00Z", common::day(0))),
        exposure("on-time", "trent", "premium", &format!("{}T10:00:00Z", common::day(0))),
    ]});
    let reply = app.post("/sdk/v1/events", &app.sdk, batch).await;
    assert_eq!(reply.body["accepted"], 4, "{:?}", reply.body);
    let totals = app
        .store
        .variant_totals("pricing-q4", "purchase", &UserFilter::EVERYONE)
        .await
        .unwrap();
    let premium = totals.iter().find(|t| t.variant == "premium").unwrap();
    assert_eq!((premium.users, premium.value_sum), (2, 249.0), "{totals:?}");
}

on_both_backends!(a_back_dated_exposure_cannot_claim_conversions_from_before_the_start);

/// Regression (issue 12, found by `tests/fuzz.rs` on PostgreSQL, whose text cannot
/// hold U+0000): an event with a NUL character in its id, user or event name was a
/// 500. It is now refused with 400 on both backends.
async fn an_event_with_a_nul_character_is_refused_not_a_500(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let at = format!("{}T11:00:00Z", common::day(0));
    let batch = json!({"events": [
        purchase("p\u{0}1", "u1", 1.0, &at),
        purchase("p2", "u\u{0}2", 1.0, &at),
        {"id": "p3", "type": "track", "user": "u3", "event": "purchase\u{0}", "ts": at},
    ]});
    let reply = app.post("/sdk/v1/events", &app.sdk, batch).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    let fields = common::problem_fields(&reply.body);
    assert_eq!(
        fields,
        ["events[0].id", "events[1].user", "events[2].event"]
    );
}

/// Regression (issue 12, found by `tests/fuzz.rs` on PostgreSQL): an exposure that
/// `/sdk/v1/assign` logged for an id with a NUL character failed, on PostgreSQL,
/// the whole batch of exposures written with it. It is now dropped alone, on both
/// backends, and counted as dropped.
async fn an_assigned_id_with_a_nul_character_is_dropped_alone(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    for id in ["u\u{0}1", "u2", "u3"] {
        let reply = app
            .post("/sdk/v1/assign", &app.sdk, json!({"user": user(id, "CN")}))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{id:?}");
    }
    let health = app.send(Method::GET, "/healthz", None, Body::empty()).await;
    assert_eq!(health.body["exposures"]["dropped"], 1);
    let mut users = 0;
    for _ in 0..100 {
        let summary = app
            .store
            .exposure_summary("pricing-q4", &UserFilter::EVERYONE)
            .await
            .unwrap();
        users = summary.users.iter().map(|(_, n)| n).sum::<u64>();
        if users == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(users, 2);
}

/// Regression (issue 12, found by `tests/fuzz.rs` in a long run): a track value of
/// 1e308 was accepted; its square made the variant's sum of squares infinite, and
/// on SQLite every later batch for that variant then failed with 500 (inf − inf is
/// NaN, which SQLite stores as NULL). Values beyond ±1e15 are now refused.
async fn a_value_too_large_to_square_is_refused_and_ingestion_goes_on(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let at = format!("{}T11:00:00Z", common::day(0));
    let huge = json!({"events": [
        exposure("x1", "u1", "premium", &at),
        purchase("p1", "u1", 1e308, &at),
    ]});
    let reply = app.post("/sdk/v1/events", &app.sdk, huge).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert_eq!(
        reply.body["error"]["details"][0]["field"],
        "events[1].value"
    );
    let fine = json!({"events": [
        exposure("x1", "u1", "premium", &at),
        purchase("p1", "u1", 1e15, &at),
        purchase("p2", "u1", -1e15, &at),
    ]});
    let reply = app.post("/sdk/v1/events", &app.sdk, fine).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    let reply = app
        .post(
            "/sdk/v1/events",
            &app.sdk,
            json!({"events": [purchase("p3", "u1", 1.0, &at)]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
}

on_both_backends!(
    a_value_too_large_to_square_is_refused_and_ingestion_goes_on,
    an_event_with_a_nul_character_is_refused_not_a_500,
    an_assigned_id_with_a_nul_character_is_dropped_alone,
);

/// Regression (issue 12): event batches in flight were bounded in number, not in
/// bytes, so sixteen 16 MiB batches at once grew the process without limit. Room
/// is now reserved by the body's size before it is read and held until the batch
/// is committed; a batch that finds no room within a second gets 503.
#[tokio::test]
async fn event_batches_beyond_the_byte_budget_wait_then_get_503() {
    use sluice::api::Limits;
    use sluice::app::{Server, ServerOptions};
    let db = common::TestDb::new(Backend::Sqlite).await;
    let store = sluice::store::open(&db.url).await.unwrap();
    let sdk = common::mint_key(&store, sluice::domain::Role::Sdk, "app").await;
    let options = ServerOptions {
        limits: Limits {
            event_bytes_in_flight: 64 * 1024,
            ..Limits::default()
        },
        ..ServerOptions::default()
    };
    let server = Server::build_with(store, options).await.unwrap();
    let batch = |id: &str, padding: usize| {
        json!({"events": [{"id": id, "type": "track", "user": "u1", "event": "e",
            "attributes": {"padding": "x".repeat(padding)}}]})
        .to_string()
    };
    let post = |body: Body, length: usize| {
        Request::post("/sdk/v1/events")
            .header("authorization", format!("Bearer {sdk}"))
            .header("content-type", "application/json")
            .header("content-length", length.to_string())
            .body(body)
            .unwrap()
    };

    let slow = batch("slow", 63 * 1024);
    let (feed, chunks) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let streamed = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(chunks));
    let pending = tokio::spawn(server.router.clone().oneshot(post(streamed, slow.len())));
    tokio::time::sleep(Duration::from_millis(100)).await;

    let small = batch("small", 10);
    let turned_away = server
        .router
        .clone()
        .oneshot(post(Body::from(small.clone()), small.len()))
        .await
        .unwrap();
    assert_eq!(turned_away.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(turned_away.headers()["retry-after"], "1");

    feed.send(Ok(slow.into_bytes())).await.unwrap();
    drop(feed);
    assert_eq!(
        pending.await.unwrap().unwrap().status(),
        StatusCode::ACCEPTED
    );
    let admitted = server
        .router
        .clone()
        .oneshot(post(Body::from(small.clone()), small.len()))
        .await
        .unwrap();
    assert_eq!(admitted.status(), StatusCode::ACCEPTED);
}
