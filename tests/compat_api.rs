//! The compatibility surfaces for other projects' SDKs: GrowthBook's
//! `/api/features/{key}` and `/sub/{key}`, and OpenFeature's OFREP. Each gives
//! what `/sdk/v1/assign` gives; the published SDKs themselves are run against a
//! real server by `tests/interop/`.
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

/// Three experiments: `pricing-q4` running for CN and US, `banner` paused and
/// `copy` shipped with its `bold` variant.
async fn three_experiments(backend: Backend) -> TestApp {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    for key in ["banner", "copy"] {
        let spec = json!({"key": key, "variants": [
            {"key": "plain", "weight": 0.5, "value": "plain"},
            {"key": "bold", "weight": 0.5, "value": "bold"}]});
        let created = app.post("/api/v1/experiments", &app.editor, spec).await;
        assert_eq!(created.status, StatusCode::CREATED);
        app.start(key).await;
    }
    let path = |key: &str, action: &str| format!("/api/v1/experiments/{key}/{action}");
    let paused = app
        .post(&path("banner", "pause"), &app.editor, json!({}))
        .await;
    assert_eq!(paused.status, StatusCode::OK);
    let ship = json!({"variant": "bold"});
    let shipped = app.post(&path("copy", "ship"), &app.editor, ship).await;
    assert_eq!(shipped.status, StatusCode::OK);
    app
}

async fn send(app: &TestApp, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

async fn growthbook_features_are_served_with_etag_and_sse_support(backend: Backend) {
    let app = three_experiments(backend).await;
    let path = format!("/api/features/{}", app.sdk);
    let (status, headers, payload) = send(&app, get(&path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-sse-support"], "enabled");
    assert_eq!(payload["status"], 200);
    let features = &payload["features"];
    assert_eq!(features["banner"], json!({"defaultValue": "plain"}));
    assert_eq!(features["copy"], json!({"defaultValue": "bold"}));
    let rule = &features["pricing-q4"]["rules"][0];
    assert_eq!(
        features["pricing-q4"]["defaultValue"],
        json!({"price": 199})
    );
    assert_eq!(rule["seed"], "pricing-q4");
    assert_eq!(rule["hashVersion"], 2);
    assert_eq!(rule["hashAttribute"], "id");
    assert_eq!(rule["condition"], json!({"country": {"$in": ["CN", "US"]}}));
    assert!(rule.get("force").is_none());
    assert!(payload.get("experiments").is_none());
    let date = payload["dateUpdated"].as_str().unwrap();
    assert!(sluice::domain::parse_rfc3339(date).is_some(), "{date}");

    let etag = headers["etag"].to_str().unwrap();
    let cached = Request::get(&path)
        .header("if-none-match", etag)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, cached).await.0, StatusCode::NOT_MODIFIED);

    let ramp = json!({"coverage": 0.5});
    app.patch("/api/v1/experiments/pricing-q4", &app.editor, ramp)
        .await;
    let (_, changed_headers, changed) = send(&app, get(&path)).await;
    assert_ne!(changed_headers["etag"], headers["etag"]);
    let later = changed["dateUpdated"].as_str().unwrap();
    assert!(later > date, "{later} is not after {date}");
    assert_eq!(
        changed["features"]["pricing-q4"]["rules"][0]["coverage"],
        0.5
    );
}

async fn growthbook_refuses_unknown_and_non_sdk_keys_in_its_own_shape(backend: Backend) {
    let app = TestApp::on(backend).await;
    let (status, _, body) = send(&app, get("/api/features/not-a-key")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["status"], 401);
    assert!(
        body["error"].as_str().unwrap().contains("unknown"),
        "{body}"
    );
    let (status, _, body) = send(&app, get(&format!("/sub/{}", "nope"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["status"], 401);
    let (status, _, body) = send(&app, get(&format!("/api/features/{}", app.analyst))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["status"], 403);
}

async fn the_growthbook_stream_sends_the_payload_and_each_change(backend: Backend) {
    let app = three_experiments(backend).await;
    let response = app
        .router
        .clone()
        .oneshot(get(&format!("/sub/{}", app.sdk)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let first = next_data(&mut body, "features").await;
    let fetched = send(&app, get(&format!("/api/features/{}", app.sdk)))
        .await
        .2;
    assert_eq!(first, fetched);

    app.post(
        "/api/v1/experiments/pricing-q4/rollback",
        &app.editor,
        json!({}),
    )
    .await;
    let second = next_data(&mut body, "features").await;
    assert_eq!(
        second["features"]["pricing-q4"],
        json!({"defaultValue": {"price": 199}})
    );
}

/// The data of the next event named `name`, as JSON.
async fn next_data(body: &mut Body, name: &str) -> Value {
    let mut text = String::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(2), body.frame())
            .await
            .expect("an event within 2 s")
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&frame.into_data().unwrap()).unwrap());
        if let Some(event) = text
            .split("\n\n")
            .find(|e| e.contains(&format!("event: {name}")))
        {
            let data: String = event
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            return serde_json::from_str(&data).unwrap();
        }
    }
}

fn ofrep(path: &str, key: &str, body: Value) -> Request<Body> {
    Request::post(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn ofrep_gives_assigns_value_variant_and_reason(backend: Backend) {
    let app = three_experiments(backend).await;
    let flag = "/ofrep/v1/evaluate/flags/pricing-q4";
    for i in 0..100 {
        let id = format!("ユーザー{i}");
        let context = json!({"context": {"targetingKey": id, "country": "CN"}});
        let (status, headers, answer) = send(&app, ofrep(flag, &app.sdk, context)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/json");
        let user = json!({"user": {"id": id, "country": "CN"}, "experiments": ["pricing-q4"], "log_exposure": false});
        let assigned = app.post("/sdk/v1/assign", &app.sdk, user).await;
        let expected = &assigned.body["assignments"][0];
        assert_eq!(answer["key"], "pricing-q4");
        assert_eq!(answer["value"], expected["value"], "user {id}");
        assert_eq!(answer["variant"], expected["variant"], "user {id}");
        assert_eq!(answer["reason"], "SPLIT");
        assert_eq!(answer["metadata"], json!({"in_experiment": true}));
    }
    let elsewhere = json!({"context": {"targetingKey": "u1", "country": "DE"}});
    let (_, _, answer) = send(&app, ofrep(flag, &app.sdk, elsewhere)).await;
    assert_eq!(answer["reason"], "DEFAULT");
    assert_eq!(answer["variant"], "control");
    assert_eq!(answer["metadata"], json!({"in_experiment": false}));
    let anyone = json!({"context": {"targetingKey": "u1"}});
    let banner = "/ofrep/v1/evaluate/flags/banner";
    let (_, _, answer) = send(&app, ofrep(banner, &app.sdk, anyone.clone())).await;
    assert_eq!(
        (&answer["reason"], &answer["value"]),
        (&json!("DISABLED"), &json!("plain"))
    );
    let copy = "/ofrep/v1/evaluate/flags/copy";
    let (_, _, answer) = send(&app, ofrep(copy, &app.sdk, anyone)).await;
    assert_eq!(
        (&answer["reason"], &answer["variant"]),
        (&json!("STATIC"), &json!("bold"))
    );
}

async fn ofrep_errors_name_the_flag_and_their_code(backend: Backend) {
    let app = three_experiments(backend).await;
    let flag = "/ofrep/v1/evaluate/flags/pricing-q4";
    let cases = [
        (
            "/ofrep/v1/evaluate/flags/nope",
            json!({"context": {"targetingKey": "u"}}),
            StatusCode::NOT_FOUND,
            "FLAG_NOT_FOUND",
        ),
        (
            flag,
            json!({"context": {"country": "CN"}}),
            StatusCode::BAD_REQUEST,
            "TARGETING_KEY_MISSING",
        ),
        (
            flag,
            json!({"context": ["u1"]}),
            StatusCode::BAD_REQUEST,
            "INVALID_CONTEXT",
        ),
    ];
    for (path, body, status, code) in cases {
        let (got, headers, answer) = send(&app, ofrep(path, &app.sdk, body)).await;
        assert_eq!(
            (got, answer["errorCode"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
        assert_eq!(headers["content-type"], "application/json");
        assert!(
            answer["key"].is_string() && answer["metadata"].is_object(),
            "{answer}"
        );
        assert!(answer["errorDetails"].is_string());
    }
    let garbled = Request::post(flag)
        .header("authorization", format!("Bearer {}", app.sdk))
        .body(Body::from("{context"))
        .unwrap();
    let (status, _, answer) = send(&app, garbled).await;
    assert_eq!(
        (status, answer["errorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("PARSE_ERROR"))
    );
    assert_eq!(answer["key"], "pricing-q4");

    let (status, _, _) = send(&app, ofrep(flag, "not-a-key", json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let by_header = Request::post(flag)
        .header("x-api-key", &app.sdk)
        .body(Body::from(
            json!({"context": {"targetingKey": "u1", "country": "US"}}).to_string(),
        ))
        .unwrap();
    assert_eq!(send(&app, by_header).await.0, StatusCode::OK);
}

async fn ofrep_bulk_evaluates_every_flag_with_an_etag(backend: Backend) {
    let app = three_experiments(backend).await;
    let bulk = "/ofrep/v1/evaluate/flags";
    let context = json!({"context": {"targetingKey": "u1", "country": "US"}});
    let (status, headers, answer) = send(&app, ofrep(bulk, &app.sdk, context.clone())).await;
    assert_eq!(status, StatusCode::OK);
    let flags = answer["flags"].as_array().unwrap();
    let keys: Vec<&str> = flags.iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["banner", "copy", "pricing-q4"]);
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let mut cached = ofrep(bulk, &app.sdk, context.clone());
    cached
        .headers_mut()
        .insert("if-none-match", etag.parse().unwrap());
    assert_eq!(send(&app, cached).await.0, StatusCode::NOT_MODIFIED);
    let other = json!({"context": {"targetingKey": "u2", "country": "US"}});
    let (_, other_headers, _) = send(&app, ofrep(bulk, &app.sdk, other)).await;
    let (_, again, _) = send(&app, ofrep(bulk, &app.sdk, context)).await;
    assert_eq!(again["etag"], etag.as_str());
    assert!(other_headers.contains_key("etag"));

    let missing = json!({"context": {"country": "US"}});
    let (status, _, answer) = send(&app, ofrep(bulk, &app.sdk, missing)).await;
    assert_eq!(status, StatusCode::OK);
    let pricing = answer["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "pricing-q4")
        .unwrap()
        .clone();
    assert_eq!(pricing["errorCode"], "TARGETING_KEY_MISSING");
}

async fn ofrep_logs_exposures_as_assign_does(backend: Backend) {
    let app = three_experiments(backend).await;
    let flag = "/ofrep/v1/evaluate/flags/pricing-q4";
    for round in 0..2 {
        for i in 0..20 {
            let context = json!({"context": {"targetingKey": format!("u{i}"), "country": "CN"}});
            let (status, _, _) = send(&app, ofrep(flag, &app.sdk, context)).await;
            assert_eq!(status, StatusCode::OK, "round {round}");
        }
    }
    let mut users = 0;
    for _ in 0..200 {
        let summary = app
            .store
            .exposure_summary("pricing-q4", &UserFilter::EVERYONE)
            .await
            .unwrap();
        users = summary.users.iter().map(|(_, n)| n).sum::<u64>();
        if users == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(users, 20);
}

async fn compatibility_endpoints_answer_browser_preflights(backend: Backend) {
    let app = TestApp::on(backend).await;
    for (path, method) in [
        ("/api/features/k", "GET"),
        ("/sub/k", "GET"),
        ("/ofrep/v1/evaluate/flags", "POST"),
        ("/ofrep/v1/evaluate/flags/f", "POST"),
    ] {
        let preflight = Request::builder()
            .method(Method::OPTIONS)
            .uri(path)
            .header("origin", "https://shop.example.com")
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .body(Body::empty())
            .unwrap();
        let (status, headers, _) = send(&app, preflight).await;
        assert!(status.is_success(), "{path}: {status}");
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
        let allowed = headers["access-control-allow-headers"].to_str().unwrap();
        assert!(
            allowed.to_ascii_lowercase().contains("authorization"),
            "{path}: {allowed}"
        );
    }
}

on_both_backends!(
    growthbook_features_are_served_with_etag_and_sse_support,
    growthbook_refuses_unknown_and_non_sdk_keys_in_its_own_shape,
    the_growthbook_stream_sends_the_payload_and_each_change,
    ofrep_gives_assigns_value_variant_and_reason,
    ofrep_errors_name_the_flag_and_their_code,
    ofrep_bulk_evaluates_every_flag_with_an_etag,
    ofrep_logs_exposures_as_assign_does,
    compatibility_endpoints_answer_browser_preflights,
);
