//! End-to-end HTTP tests of definitions, lifecycle, audit, auth and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{pricing_spec, Backend, TestApp};
use serde_json::{json, Value};

use common::problem_fields as fields;

async fn an_experiment_is_created_as_a_draft_with_defaults(backend: Backend) {
    let app = TestApp::on(backend).await;
    let created = app.pricing_experiment().await;
    assert_eq!(created["status"], "draft");
    assert_eq!(created["seed"], "pricing-q4");
    assert_eq!(created["hash_attribute"], "id");
    assert_eq!(created["hash_version"], 2);
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

    let fetched = app
        .get("/api/v1/experiments/pricing-q4", &app.analyst)
        .await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, created);
    let listed = app.get("/api/v1/experiments", &app.analyst).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);

    let again = app
        .post("/api/v1/experiments", &app.editor, pricing_spec())
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["error"]["code"], "already_exists");
}

async fn invalid_definitions_name_every_bad_field_and_store_nothing(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let reply = app
        .post(
            "/api/v1/experiments",
            &app.editor,
            json!({
                "key": "checkout",
                "variants": [{"key": "a", "weight": 0.6}, {"key": "b", "weight": 0.6}],
                "coverage": -0.1,
                "condition": {"age": {"$gte": 18}, "email": {"$regex": "[unclosed"}},
                "primary_metric": "ghost",
                "stages": [{"coverage": 0.5}, {"coverage": 0.05}]
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["error"]["code"], "validation_failed");
    assert_eq!(
        fields(&reply.body),
        [
            "variants",
            "coverage",
            "condition.email.$regex",
            "primary_metric",
            "stages[1].coverage"
        ]
    );
    let missing = app.get("/api/v1/experiments/checkout", &app.analyst).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn malformed_and_mistyped_bodies_get_clear_errors(backend: Backend) {
    let app = TestApp::on(backend).await;
    let malformed = app
        .send(
            Method::POST,
            "/api/v1/experiments",
            Some(&app.editor),
            Body::from("{\"key\": "),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.body["error"]["code"], "malformed_json");

    let mut spec = pricing_spec();
    spec["variants"][1]["weight"] = json!("half");
    let mistyped = app.post("/api/v1/experiments", &app.editor, spec).await;
    assert_eq!(mistyped.status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&mistyped.body), ["variants[1].weight"]);

    let unknown_operator = app
        .post(
            "/api/v1/experiments",
            &app.editor,
            json!({"key": "x", "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
                   "condition": {"age": {"$between": [1, 5]}}}),
        )
        .await;
    assert_eq!(unknown_operator.status, StatusCode::BAD_REQUEST);
    assert!(fields(&unknown_operator.body)[0].starts_with("condition"));

    let too_big = app
        .send(
            Method::POST,
            "/api/v1/experiments",
            Some(&app.editor),
            Body::from(format!("{{\"key\": \"{}\"}}", "x".repeat(2 * 1024 * 1024))),
        )
        .await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
}

async fn odd_keys_are_refused_and_odd_text_is_stored_verbatim(backend: Backend) {
    let app = TestApp::on(backend).await;
    let mut spec = pricing_spec();
    spec["key"] = json!("'; DROP TABLE experiments; --");
    spec["primary_metric"] = json!(null);
    spec["secondary_metrics"] = json!([]);
    spec["guardrails"] = json!([]);
    let reply = app
        .post("/api/v1/experiments", &app.editor, spec.clone())
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&reply.body), ["key"]);

    spec["key"] = json!("prix-2026");
    let name = "Prix « premium » — 价格 '; DROP TABLE experiments; -- 🚀";
    spec["name"] = json!(name);
    spec["variants"][1]["value"] = json!({"label": "Ünïcödé \"quoted\""});
    let reply = app.post("/api/v1/experiments", &app.editor, spec).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let fetched = app.get("/api/v1/experiments/prix-2026", &app.analyst).await;
    assert_eq!(fetched.body["name"], name);
    assert_eq!(
        fetched.body["variants"][1]["value"]["label"],
        "Ünïcödé \"quoted\""
    );
    let listed = app.get("/api/v1/experiments", &app.analyst).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
}

async fn lifecycle_follows_the_state_machine_and_is_audited(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let base = "/api/v1/experiments/pricing-q4";
    let illegal = app
        .post(&format!("{base}/pause"), &app.editor, json!({}))
        .await;
    assert_eq!(illegal.status, StatusCode::CONFLICT);
    assert_eq!(illegal.body["error"]["code"], "conflict");

    for (action, status) in [
        ("start", "running"),
        ("pause", "paused"),
        ("resume", "running"),
    ] {
        let reply = app
            .post(&format!("{base}/{action}"), &app.editor, json!({}))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{action}: {:?}", reply.body);
        assert_eq!(reply.body["status"], status);
    }
    let bad_ship = app
        .post(
            &format!("{base}/ship"),
            &app.editor,
            json!({"variant": "platinum"}),
        )
        .await;
    assert_eq!(bad_ship.status, StatusCode::BAD_REQUEST);
    let shipped = app
        .post(
            &format!("{base}/ship"),
            &app.editor,
            json!({"variant": "premium"}),
        )
        .await;
    assert_eq!(shipped.body["status"], "shipped");
    assert_eq!(shipped.body["shipped_variant"], "premium");
    let after_ship = app
        .post(&format!("{base}/start"), &app.editor, json!({}))
        .await;
    assert_eq!(after_ship.status, StatusCode::CONFLICT);
    let unknown = app
        .post(&format!("{base}/explode"), &app.editor, json!({}))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let audit = app.get(&format!("{base}/audit"), &app.analyst).await;
    let entries = audit.body.as_array().unwrap();
    let actions: Vec<_> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "start", "pause", "resume", "ship"]);
    assert!(entries.iter().all(|e| e["actor"] == "editor-tester"));
    assert_eq!(entries[0]["before"], serde_json::Value::Null);
    assert_eq!(entries[1]["before"]["status"], "draft");
    assert_eq!(entries[1]["after"]["status"], "running");
}

async fn a_running_experiment_may_ramp_but_not_reshuffle(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let path = "/api/v1/experiments/pricing-q4";
    let ramped = app.patch(path, &app.editor, json!({"coverage": 0.2})).await;
    assert_eq!(ramped.status, StatusCode::OK, "{:?}", ramped.body);
    assert_eq!(ramped.body["coverage"], 0.2);
    assert_eq!(ramped.body["name"], "Premium price");

    let reweighted = app
        .patch(
            path,
            &app.editor,
            json!({"variants": [{"key": "control", "weight": 0.9}, {"key": "premium", "weight": 0.1}]}),
        )
        .await;
    assert_eq!(reweighted.status, StatusCode::CONFLICT);
    let via_patch = app
        .patch(path, &app.editor, json!({"status": "shipped"}))
        .await;
    assert_eq!(via_patch.status, StatusCode::CONFLICT);
    let invalid = app.patch(path, &app.editor, json!({"coverage": 7})).await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&invalid.body), ["coverage"]);

    let now = app.get(path, &app.analyst).await;
    assert_eq!(now.body["coverage"], 0.2);
    let audit = app.get(&format!("{path}/audit"), &app.analyst).await;
    assert_eq!(audit.body.as_array().unwrap().len(), 3);
}

async fn keys_and_roles_guard_every_endpoint(backend: Backend) {
    let app = TestApp::on(backend).await;
    let none = app
        .send(Method::GET, "/api/v1/experiments", None, Body::empty())
        .await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.body["error"]["code"], "unauthorized");
    let unknown = app.get("/api/v1/experiments", "sk_admin_forged").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let analyst_writes = app
        .post("/api/v1/experiments", &app.analyst, pricing_spec())
        .await;
    assert_eq!(analyst_writes.status, StatusCode::FORBIDDEN);
    let sdk_reads = app.get("/api/v1/experiments", &app.sdk).await;
    assert_eq!(sdk_reads.status, StatusCode::FORBIDDEN);
    let editor_keys = app
        .post("/api/v1/keys", &app.editor, json!({"role": "sdk"}))
        .await;
    assert_eq!(editor_keys.status, StatusCode::FORBIDDEN);

    let staging_key = json!({"role": "sdk", "environment": "staging", "name": "ios-app"});
    let before_staging_exists = app
        .post("/api/v1/keys", &app.admin, staging_key.clone())
        .await;
    assert_eq!(before_staging_exists.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        before_staging_exists.body["error"]["details"][0]["field"],
        "environment"
    );
    let staging = json!({"key": "staging", "name": "Staging"});
    let created = app.post("/api/v1/environments", &app.admin, staging).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let minted = app.post("/api/v1/keys", &app.admin, staging_key).await;
    assert_eq!(minted.status, StatusCode::CREATED);
    assert_eq!(minted.body["environment"], "staging");
    let secret = minted.body["key"].as_str().unwrap();
    let ruleset = app.get("/sdk/v1/ruleset", secret).await;
    assert_eq!(ruleset.status, StatusCode::OK);
}

/// The key with this id in the admin's key list.
async fn listed_key(app: &TestApp, id: &Value) -> Value {
    let listed = app.get("/api/v1/keys", &app.admin).await;
    assert_eq!(listed.status, StatusCode::OK);
    let keys = listed.body.as_array().unwrap().clone();
    keys.into_iter().find(|k| &k["id"] == id).unwrap()
}

async fn revoked_keys_stop_working_and_stay_listed(backend: Backend) {
    let app = TestApp::on(backend).await;
    let minted = app
        .post(
            "/api/v1/keys",
            &app.admin,
            json!({"role": "analyst", "name": "contractor"}),
        )
        .await;
    assert_eq!(minted.status, StatusCode::CREATED, "{:?}", minted.body);
    let (id, secret) = (minted.body["id"].clone(), minted.body["key"].clone());
    let secret = secret.as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/experiments", secret).await.status,
        StatusCode::OK
    );

    let entry = listed_key(&app, &id).await;
    assert_eq!(entry["name"], "contractor");
    assert!(
        entry["revoked_at"].is_null() && entry.get("key_hash").is_none(),
        "{entry}"
    );
    assert_eq!(
        app.get("/api/v1/keys", secret).await.status,
        StatusCode::FORBIDDEN
    );

    let path = format!("/api/v1/keys/{id}");
    let by_analyst = app
        .send(Method::DELETE, &path, Some(secret), Body::empty())
        .await;
    assert_eq!(by_analyst.status, StatusCode::FORBIDDEN);
    let revoked = app
        .send(Method::DELETE, &path, Some(&app.admin), Body::empty())
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{:?}", revoked.body);
    // Refused at once on this server, and still listed with the time it ended.
    assert_eq!(
        app.get("/api/v1/experiments", secret).await.status,
        StatusCode::UNAUTHORIZED
    );
    let entry = listed_key(&app, &id).await;
    assert!(entry["revoked_at"].is_string(), "{entry}");
    let again = app
        .send(Method::DELETE, &path, Some(&app.admin), Body::empty())
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let unknown = app
        .send(
            Method::DELETE,
            "/api/v1/keys/987654",
            Some(&app.admin),
            Body::empty(),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

/// Regression (issue 10): a key named like the server's own actors could make its
/// changes look like the breaker's in the audit log.
async fn keys_named_guard_scheduler_or_cli_are_refused(backend: Backend) {
    let app = TestApp::on(backend).await;
    for name in ["guard", "scheduler", "cli", "Guard"] {
        let reply = app
            .post(
                "/api/v1/keys",
                &app.admin,
                json!({"role": "editor", "name": name}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{name}: {:?}",
            reply.body
        );
        assert_eq!(fields(&reply.body), ["name"], "{name}");
    }
    let keys = app.get("/api/v1/keys", &app.admin).await.body;
    assert_eq!(
        keys.as_array().unwrap().len(),
        4,
        "nothing was stored: {keys}"
    );
}

async fn audit_entries_say_what_kind_of_actor_acted(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    app.send_traffic((3000, 300), (3000, 150)).await;
    let check = app
        .post(
            "/api/v1/experiments/pricing-q4/guard/check",
            &app.editor,
            json!({}),
        )
        .await;
    assert_eq!(check.body["action"], "rollback", "{:?}", check.body);
    let audit = app
        .get("/api/v1/experiments/pricing-q4/audit", &app.analyst)
        .await
        .body;
    let actors: Vec<(&str, &str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["actor"].as_str().unwrap(),
                e["actor_kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actors,
        [
            ("create", "editor-tester", "key"),
            ("start", "editor-tester", "key"),
            ("guard_rollback", "guard", "guard"),
        ]
    );
    assert_eq!(audit[0]["experiment"], "pricing-q4");
    assert_eq!(audit[0]["subject_kind"], "experiment");

    let minted = app
        .post(
            "/api/v1/keys",
            &app.admin,
            json!({"role": "sdk", "name": "ios-app"}),
        )
        .await;
    let id = minted.body["id"].clone();
    let path = format!("/api/v1/keys/{id}");
    app.send(Method::DELETE, &path, Some(&app.admin), Body::empty())
        .await;
    let hook = app
        .post(
            "/api/v1/webhooks",
            &app.admin,
            json!({"url": "http://127.0.0.1:9/hook", "secret": "0123456789abcdef", "events": ["*"]}),
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{:?}", hook.body);
    let settings = app.get("/api/v1/audit", &app.admin).await;
    assert_eq!(settings.status, StatusCode::OK);
    let entries: Vec<(&str, &str, &str)> = settings
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["subject_kind"].as_str().unwrap(),
                e["actor_kind"].as_str().unwrap(),
            )
        })
        .collect();
    // Newest first; the four test keys were minted by the CLI's path.
    assert_eq!(
        entries[..3],
        [
            ("webhook_create", "webhook", "key"),
            ("key_revoke", "api_key", "key"),
            ("key_create", "api_key", "key"),
        ]
    );
    assert_eq!(settings.body[1]["subject"], id.to_string());
    assert_eq!(settings.body[2]["after"]["name"], "ios-app");
    assert!(
        entries[3..]
            .iter()
            .all(|e| *e == ("key_create", "api_key", "cli")),
        "{entries:?}"
    );
    assert_eq!(
        app.get("/api/v1/audit", &app.editor).await.status,
        StatusCode::FORBIDDEN
    );
}

/// Regression (issue 12): unknown fields were ignored, so a typo in an optional
/// field created something other than what the team meant, with a 201.
async fn unknown_fields_in_definitions_are_refused_by_name(backend: Backend) {
    let app = TestApp::on(backend).await;
    let mut spec = pricing_spec();
    spec["cupd"] = json!({"lookback_days": 14});
    spec["variants"][0]["wieght"] = json!(0.5);
    let metrics = [
        (
            "/api/v1/metrics",
            json!({"key": "m", "name": "M", "kind": "count", "event": "e", "formt": 1}),
            "formt",
        ),
        (
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/", "secret": "0123456789abcdef", "events": ["*"], "fromat": "slack"}),
            "fromat",
        ),
        (
            "/api/v1/keys",
            json!({"role": "sdk", "nmae": "ios"}),
            "nmae",
        ),
    ];
    let reply = app.post("/api/v1/experiments", &app.admin, spec).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert_eq!(fields(&reply.body), ["cupd", "variants[0].wieght"]);
    for (path, body, field) in metrics {
        let reply = app.post(path, &app.admin, body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {:?}",
            reply.body
        );
        assert_eq!(fields(&reply.body), [field], "{path}");
    }
    assert_eq!(
        app.get("/api/v1/experiments", &app.analyst).await.body,
        json!([])
    );
    assert_eq!(
        app.get("/api/v1/metrics", &app.analyst).await.body,
        json!([])
    );
    assert_eq!(
        app.get("/api/v1/webhooks", &app.admin).await.body,
        json!([])
    );

    app.pricing_experiment().await;
    let typo = app
        .patch(
            "/api/v1/experiments/pricing-q4",
            &app.editor,
            json!({"coverag": 0.5}),
        )
        .await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST, "{:?}", typo.body);
    assert_eq!(fields(&typo.body), ["coverag"]);
    let mut whole = app
        .get("/api/v1/experiments/pricing-q4", &app.analyst)
        .await
        .body;
    whole["coverage"] = json!(0.5);
    let round_trip = app
        .patch("/api/v1/experiments/pricing-q4", &app.editor, whole)
        .await;
    assert_eq!(
        round_trip.status,
        StatusCode::OK,
        "GET, edit, PATCH still works: {:?}",
        round_trip.body
    );
    assert_eq!(round_trip.body["coverage"], 0.5);
}

/// Regression (issue 12, found by `tests/fuzz.rs` on PostgreSQL, whose text cannot
/// hold U+0000): a key with a NUL character in the path was a 500 wherever it was
/// looked up, and so was a key named with one. The lookups now find nothing, and
/// names with NUL are refused on both backends.
async fn a_key_with_a_nul_character_is_not_found_and_such_names_are_refused(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    for (method, path) in [
        (Method::GET, "/api/v1/experiments/a%00b"),
        (Method::PATCH, "/api/v1/experiments/a%00b"),
        (Method::POST, "/api/v1/experiments/a%00b/start"),
        (Method::POST, "/api/v1/experiments/a%00b/guard/check"),
        (Method::GET, "/api/v1/experiments/a%00b/audit"),
        (Method::GET, "/api/v1/experiments/a%00b/report"),
        (Method::GET, "/api/v1/metrics/a%00b"),
    ] {
        let body = Body::from(json!({"name": "x"}).to_string());
        let reply = app.send(method.clone(), path, Some(&app.admin), body).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let mut spec = pricing_spec();
    spec["key"] = json!("pricing-q5");
    spec["name"] = json!("Premium\u{0}price");
    let reply = app.post("/api/v1/experiments", &app.editor, spec).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&reply.body), ["name"]);
    let key = json!({"role": "editor", "name": "ci\u{0}bot"});
    let reply = app.post("/api/v1/keys", &app.admin, key).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&reply.body), ["name"]);
}

on_both_backends!(
    a_key_with_a_nul_character_is_not_found_and_such_names_are_refused,
    unknown_fields_in_definitions_are_refused_by_name,
    keys_named_guard_scheduler_or_cli_are_refused,
    audit_entries_say_what_kind_of_actor_acted,
    revoked_keys_stop_working_and_stay_listed,
    an_experiment_is_created_as_a_draft_with_defaults,
    invalid_definitions_name_every_bad_field_and_store_nothing,
    malformed_and_mistyped_bodies_get_clear_errors,
    odd_keys_are_refused_and_odd_text_is_stored_verbatim,
    lifecycle_follows_the_state_machine_and_is_audited,
    a_running_experiment_may_ramp_but_not_reshuffle,
    keys_and_roles_guard_every_endpoint,
);
