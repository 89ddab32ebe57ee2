//! Privacy: `DELETE /api/v1/users/{id}` erases a user's raw events, aggregates and
//! their part of the running totals in one transaction; the reports afterwards are
//! exactly those of a fresh ingest without that user.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::{day, Backend, TestApp};
use serde_json::{json, Value};
use sluice::store::UserFilter;

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
        .variant_totals("pricing-q4", "purchase", &UserFilter::EVERYONE)
        .await
        .unwrap();
    let exposures = app
        .store
        .exposure_summary("pricing-q4", &UserFilter::EVERYONE)
        .await
        .unwrap();
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
        assert!(report.body["metrics"]
            .as_array()
            .is_some_and(|m| !m.is_empty()));
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

/// Regression (issue 12, found by `tests/fuzz.rs` on PostgreSQL, whose text cannot
/// hold U+0000): erasing an id with a NUL character was a 500. No stored id holds
/// one, so it is refused with 400 on both backends, and nothing is audited.
async fn erasing_an_id_with_a_nul_character_is_refused_not_a_500(backend: Backend) {
    let app = running(backend, traffic(None)).await;
    let before = state_of(&app).await;
    let path = "/api/v1/users/erin%00";
    let reply = app
        .send(Method::DELETE, path, Some(&app.admin), Body::empty())
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert_eq!(state_of(&app).await, before);
    let audit = app.get("/api/v1/audit", &app.admin).await;
    assert!(audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["action"] != "user_erase"));
}

on_both_backends!(erasing_an_id_with_a_nul_character_is_refused_not_a_500);

/// With `--pseudonymize-users`, the database holds keyed hashes, never the ids
/// apps send (from `/sdk/v1/events` and from server-side exposures alike); the
/// report counts the same users, and erasing by the raw id still works.
async fn pseudonymized_servers_store_no_user_id(backend: Backend) {
    use sluice::app::ServerOptions;
    let db = common::TestDb::new(backend).await;
    let store = sluice::store::open(&db.url).await.unwrap();
    let options = || ServerOptions {
        pseudonymize_users: true,
        max_event_skew: common::TEST_EVENT_SKEW,
        ..ServerOptions::default()
    };
    let app = TestApp::on_db_with(db, options()).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let reply = app
        .post("/sdk/v1/events", &app.sdk, json!({"events": traffic(None)}))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let assign = json!({"user": {"id": "zoe", "country": "CN"}, "experiments": ["pricing-q4"]});
    app.post("/sdk/v1/assign", &app.sdk, assign).await;

    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = app
            .store
            .exposed_users("pricing-q4", &UserFilter::EVERYONE)
            .await
            .unwrap();
        if stored.len() == 6 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        stored.len(),
        6,
        "five users in one variant and zoe: {stored:?}"
    );
    for user in &stored {
        assert_eq!(user.user.len(), 64, "{user:?}");
        assert!(["alice", "erin", "zoe"]
            .iter()
            .all(|id| !user.user.contains(id)));
    }
    let key = store
        .server_secret("pseudonym_key", "another")
        .await
        .unwrap();
    assert_ne!(
        key, "another",
        "the first key made is kept, for every server"
    );
    let path = "/api/v1/users/erin";
    let erased = app
        .send(Method::DELETE, path, Some(&app.admin), Body::empty())
        .await;
    assert_eq!(erased.body["events_erased"], 3, "{:?}", erased.body);
}

on_both_backends!(pseudonymized_servers_store_no_user_id);

/// With `--retain-events-days`, raw events of a finished experiment older than the
/// window are deleted; the report, read from aggregates, does not change, and an
/// event older than the window is not counted.
async fn expired_raw_events_go_and_reports_stay(backend: Backend) {
    use sluice::app::ServerOptions;
    use sluice::control::Retention;
    use sluice::domain::{now_millis, Event, EventKind};
    let options = ServerOptions {
        retention: Retention::days(7),
        max_event_skew: common::TEST_EVENT_SKEW,
        ..ServerOptions::default()
    };
    let app = TestApp::on_db_with(common::TestDb::new(backend).await, options).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let month_ago = now_millis() - 30 * 86_400_000;
    let old: Vec<Event> = (0..40)
        .flat_map(|i| {
            let user = format!("u{i}");
            let variant = if i % 2 == 0 { "control" } else { "premium" };
            let exposure = Event {
                id: format!("x{i}"),
                user: user.clone(),
                ts: month_ago,
                kind: EventKind::Exposure {
                    experiment: "pricing-q4".into(),
                    variant: variant.into(),
                    dimensions: None,
                },
            };
            let purchase = Event {
                id: format!("p{i}"),
                user,
                ts: month_ago + 3_600_000,
                kind: EventKind::Track {
                    event: "purchase".into(),
                    value: 10.0,
                },
            };
            [exposure, purchase]
        })
        .collect();
    app.store.ingest(&[old.as_slice()]).await.unwrap();
    let stop = app
        .post(
            "/api/v1/experiments/pricing-q4/stop",
            &app.editor,
            json!({}),
        )
        .await;
    assert_eq!(stop.status, StatusCode::OK);
    let report = || async {
        let body = app
            .get("/api/v1/experiments/pricing-q4/report", &app.analyst)
            .await
            .body;
        body["metrics"].clone()
    };
    let before = report().await;
    assert_eq!(
        app.store
            .tracks_since_exposure("pricing-q4", "purchase", &UserFilter::EVERYONE)
            .await
            .unwrap()
            .len(),
        40
    );

    app.server
        .control()
        .expire_events(now_millis())
        .await
        .unwrap();
    assert_eq!(report().await, before, "reports read aggregates");
    assert_eq!(
        app.store
            .tracks_since_exposure("pricing-q4", "purchase", &UserFilter::EVERYONE)
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        app.store
            .exposure_summary("pricing-q4", &UserFilter::EVERYONE)
            .await
            .unwrap()
            .users
            .len(),
        2
    );

    let late = json!({"events": [{"id": "p-late", "type": "track", "user": "u1",
        "event": "purchase", "ts": sluice::domain::format_millis(month_ago)}]});
    let reply = app.post("/sdk/v1/events", &app.sdk, late).await;
    assert_eq!(
        reply.body["skipped"][0]["problem"],
        "older than the raw events kept"
    );
}

on_both_backends!(expired_raw_events_go_and_reports_stay);

/// Regression: retention kept tracks only from the start of the experiments still
/// running, but CUPED reads each user's tracks over its lookback before their first
/// exposure, which may come before the start: users exposed later lost their
/// covariate.
async fn retention_keeps_the_tracks_a_running_cuped_lookback_reads(backend: Backend) {
    use sluice::app::ServerOptions;
    use sluice::control::Retention;
    use sluice::domain::now_millis;
    let options = ServerOptions {
        retention: Retention::days(7),
        max_event_skew: common::TEST_EVENT_SKEW,
        ..ServerOptions::default()
    };
    let app = TestApp::on_db_with(common::TestDb::new(backend).await, options).await;
    app.pricing_experiment().await;
    let cuped = app
        .patch(
            "/api/v1/experiments/pricing-q4",
            &app.editor,
            json!({"cuped": {"lookback_days": 14}}),
        )
        .await;
    assert_eq!(cuped.status, StatusCode::OK, "{:?}", cuped.body);
    app.start("pricing-q4").await;
    let now = now_millis();
    let before_start = json!({"events": [{"id": "p-early", "type": "track", "user": "u1",
        "event": "purchase", "value": 10.0, "ts": sluice::domain::format_millis(now - 5 * 86_400_000)}]});
    let reply = app.post("/sdk/v1/events", &app.sdk, before_start).await;
    assert_eq!(reply.body["accepted"], 1, "{:?}", reply.body);

    // Five days on, that track is older than the window but inside the lookback.
    app.server
        .control()
        .expire_events(now + 5 * 86_400_000)
        .await
        .unwrap();
    let exposure = json!({"events": [{"id": "x-u1", "type": "exposure", "user": "u1",
        "experiment": "pricing-q4", "variant": "control"}]});
    let reply = app.post("/sdk/v1/events", &app.sdk, exposure).await;
    assert_eq!(reply.body["accepted"], 1, "{:?}", reply.body);
    let shaped = app
        .store
        .paired_totals("pricing-q4", &UserFilter::EVERYONE)
        .await
        .unwrap();
    let revenue = &shaped
        .metrics
        .iter()
        .find(|(m, _)| m == "revenue")
        .unwrap()
        .1;
    assert_eq!((revenue[0].users, revenue[0].sum_y), (1, 10.0));
}

on_both_backends!(retention_keeps_the_tracks_a_running_cuped_lookback_reads);
