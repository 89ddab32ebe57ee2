//! The SDK client against a real server over loopback: it evaluates locally, follows
//! the change stream, and ships exposures and track events that end up folded in
//! the store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use sluice::store::UserFilter;
use std::time::{Duration, Instant};

use common::{Backend, TestApp};
use serde_json::json;
use sluice_sdk::client::Client;
use sluice_sdk::{Attributes, Reason};
use tokio::net::TcpListener;

async fn listen(app: &TestApp) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn attributes(id: &str) -> Attributes {
    serde_json::from_value(json!({"id": id, "country": "CN"})).unwrap()
}

async fn a_pause_reaches_a_streaming_client_within_a_second(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let client = Client::builder(listen(&app).await, app.sdk.clone())
        .poll_interval(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let user = attributes("u-42");
    let before = client.assign("pricing-q4", &user).unwrap();
    assert!(before.in_experiment);
    assert_eq!(before.reason, Reason::Split);

    // Give the stream a moment to connect, as a long-running app's would have.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let paused_at = Instant::now();
    app.post(
        "/api/v1/experiments/pricing-q4/pause",
        &app.editor,
        json!({}),
    )
    .await;
    loop {
        let now = client.assign("pricing-q4", &user).unwrap();
        if now.reason == Reason::Paused {
            assert_eq!(now.variant, "control");
            assert!(!now.in_experiment);
            break;
        }
        assert!(
            paused_at.elapsed() < Duration::from_secs(1),
            "the client still serves {now:?} a second after the pause"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    client.close().await;
}

async fn exposures_and_track_events_from_the_client_are_stored_once(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let keep_country = json!({"dimensions": ["country"]});
    app.patch("/api/v1/experiments/pricing-q4", &app.editor, keep_country)
        .await;
    app.start("pricing-q4").await;
    let client = Client::builder(listen(&app).await, app.sdk.clone())
        .build()
        .await
        .unwrap();
    let mut in_premium = 0;
    for i in 0..20 {
        let user = attributes(&format!("user-{i}"));
        // Asked twice, logged once.
        let assignment = client.assign("pricing-q4", &user).unwrap();
        client.assign("pricing-q4", &user).unwrap();
        if assignment.variant == "premium" {
            in_premium += 1;
        }
        client.track(&format!("user-{i}"), "purchase", Some(10.0));
    }
    client.close().await;

    let summary = app
        .store
        .exposure_summary("pricing-q4", &UserFilter::EVERYONE)
        .await
        .unwrap();
    let users: u64 = summary.users.iter().map(|(_, n)| n).sum();
    assert_eq!(users, 20);
    assert_eq!(
        summary
            .users
            .iter()
            .find(|(v, _)| v == "premium")
            .map_or(0, |(_, n)| *n),
        in_premium
    );
    let totals = app
        .store
        .variant_totals("pricing-q4", "purchase", &UserFilter::EVERYONE)
        .await
        .unwrap();
    assert_eq!(totals.iter().map(|t| t.converted).sum::<u64>(), 20);
    assert_eq!(totals.iter().map(|t| t.value_sum).sum::<f64>(), 200.0);
    // The client sent the kept dimension with each exposure.
    let segments = app
        .store
        .segment_totals(
            "pricing-q4",
            &["country".to_owned()],
            "purchase",
            &UserFilter::EVERYONE,
        )
        .await
        .unwrap();
    assert!(
        segments
            .iter()
            .all(|(values, _)| values == &[Some("CN".to_owned())]),
        "{segments:?}"
    );
    assert_eq!(segments.iter().map(|(_, t)| t.users).sum::<u64>(), 20);
}

/// Regression (issue 12): the client threw away a whole batch on any 4xx. Now an
/// exposure the server no longer serves to the key's environment is reported as
/// skipped, and a 400 costs only the event it names.
async fn one_bad_event_costs_the_client_only_that_event(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let staging = json!({"key": "staging", "name": "Staging"});
    app.post("/api/v1/environments", &app.admin, staging).await;
    let client = Client::builder(listen(&app).await, app.sdk.clone())
        .stream(false)
        .flush_interval(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    assert!(
        client
            .assign("pricing-q4", &attributes("u1"))
            .unwrap()
            .in_experiment
    );
    let moved = json!({"environments": ["staging"]});
    let reply = app
        .patch("/api/v1/experiments/pricing-q4", &app.editor, moved)
        .await;
    assert_eq!(reply.status, axum::http::StatusCode::OK);
    client.track(&"x".repeat(300), "purchase", Some(1.0));
    client.track("u1", "purchase", Some(249.0));
    let stats = client.close().await;
    assert_eq!(stats.events_queued, 3);
    assert_eq!(
        (
            stats.events_sent,
            stats.events_skipped,
            stats.events_rejected
        ),
        (1, 1, 1),
        "{stats:?}"
    );
    assert_eq!(stats.events_dropped, 0);
    let exposures = app
        .store
        .exposure_summary("pricing-q4", &UserFilter::EVERYONE)
        .await
        .unwrap();
    assert_eq!(exposures.users, vec![]);
}

on_both_backends!(
    one_bad_event_costs_the_client_only_that_event,
    a_pause_reaches_a_streaming_client_within_a_second,
    exposures_and_track_events_from_the_client_are_stored_once,
);
