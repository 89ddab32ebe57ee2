//! The `client` feature against an in-process mock of the SDK endpoints
//! (axum on 127.0.0.1:0): ruleset fetch with ETags, SSE push, exposure
//! de-duplication, batching, retries, 4xx give-up, and the bounded buffer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sluice_sdk::client::{Client, ClientErrorKind};
use sluice_sdk::{Attributes, Reason};
use tokio::sync::broadcast;

const KEY: &str = "test-sdk-key";

#[derive(Clone)]
struct Mock {
    ruleset: Arc<Mutex<Value>>,
    versions: broadcast::Sender<u64>,
    events: Arc<Mutex<Vec<Value>>>,
    posts: Arc<AtomicUsize>,
    fail_first: Arc<AtomicUsize>,
    reject: Arc<AtomicBool>,
    slow_ms: Arc<AtomicU64>,
    not_modified: Arc<AtomicUsize>,
}

fn ruleset(version: u64, status: &str) -> Value {
    json!({
        "version": version,
        "experiments": [{
            "key": "pricing", "status": status, "coverage": 1.0,
            "hash_attribute": "id", "seed": "pricing", "hash_version": 2,
            "variants": [
                {"key": "control", "weight": 0.5, "value": {"price": 199}},
                {"key": "premium", "weight": 0.5, "value": {"price": 249}}
            ]
        }]
    })
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {KEY}"))
}

async fn get_ruleset(State(m): State<Mock>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let body = m.ruleset.lock().unwrap().clone();
    let etag = format!("\"v{}\"", body["version"]);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        m.not_modified.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    ([(header::ETAG, etag)], Json(body)).into_response()
}

async fn stream(State(m): State<Mock>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let rx = m.versions.subscribe();
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(v) => {
                    let e = SseEvent::default()
                        .event("ruleset")
                        .data(json!({"version": v}).to_string());
                    return Some((Ok::<_, Infallible>(e), rx));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn post_events(
    State(m): State<Mock>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    m.posts.fetch_add(1, Ordering::SeqCst);
    let slow = m.slow_ms.load(Ordering::SeqCst);
    if slow > 0 {
        tokio::time::sleep(Duration::from_millis(slow)).await;
    }
    if m.fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if m.reject.load(Ordering::SeqCst) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid event", "details": [0]})),
        )
            .into_response();
    }
    let batch = body["events"].as_array().cloned().unwrap_or_default();
    let n = batch.len();
    m.events.lock().unwrap().extend(batch);
    (
        StatusCode::ACCEPTED,
        Json(json!({"accepted": n, "duplicates": 0})),
    )
        .into_response()
}

async fn start() -> (String, Mock) {
    let (versions, _) = broadcast::channel(16);
    let mock = Mock {
        ruleset: Arc::new(Mutex::new(ruleset(1, "running"))),
        versions,
        events: Arc::default(),
        posts: Arc::default(),
        fail_first: Arc::default(),
        reject: Arc::default(),
        slow_ms: Arc::default(),
        not_modified: Arc::default(),
    };
    let app = Router::new()
        .route("/sdk/v1/ruleset", get(get_ruleset))
        .route("/sdk/v1/stream", get(stream))
        .route("/sdk/v1/events", post(post_events))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), mock)
}

fn user(id: &str) -> Attributes {
    json!({"id": id}).as_object().cloned().unwrap()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn assigns_locally_logs_one_exposure_and_flushes_on_close() {
    let (url, mock) = start().await;
    let client = Client::builder(&url, KEY)
        .flush_interval(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    assert_eq!(client.ruleset().version(), 1);

    let a = client.assign("pricing", &user("u1")).unwrap();
    assert!(a.in_experiment);
    assert_eq!(a.reason, Reason::Split);
    let again = client.assign("pricing", &user("u1")).unwrap();
    assert_eq!(a, again);
    client.assign("pricing", &user("u2")).unwrap();
    assert!(client.assign("unknown", &user("u1")).is_none());
    // No id: not in the experiment, so no exposure.
    assert!(
        !client
            .assign("pricing", &Attributes::new())
            .unwrap()
            .in_experiment
    );
    client.track("u1", "purchase", Some(249.0));
    client.track("u2", "signup", None);

    let stats = client.stats();
    assert_eq!(stats.events_queued, 4);
    assert_eq!(stats.exposures_deduplicated, 1);
    client.close().await;

    let events = mock.events.lock().unwrap().clone();
    assert_eq!(events.len(), 4, "{events:?}");
    let exposures: Vec<_> = events.iter().filter(|e| e["type"] == "exposure").collect();
    assert_eq!(exposures.len(), 2);
    assert_eq!(exposures[0]["user"], "u1");
    assert_eq!(exposures[0]["experiment"], "pricing");
    assert_eq!(exposures[0]["variant"], a.variant);
    let purchase = events.iter().find(|e| e["event"] == "purchase").unwrap();
    assert_eq!(purchase["type"], "track");
    assert_eq!(purchase["value"], 249.0);
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(ids.len(), 4, "event ids must be unique");
    for e in &events {
        let ts = e["ts"].as_str().unwrap();
        assert!(
            ts.len() == 24 && ts.ends_with('Z') && &ts[10..11] == "T",
            "{ts}"
        );
    }
}

#[tokio::test]
async fn stream_push_swaps_the_ruleset() {
    let (url, mock) = start().await;
    let client = Client::builder(&url, KEY)
        .poll_interval(Duration::from_secs(600))
        .build()
        .await
        .unwrap();
    wait_for("stream connection", || client.stats().stream_connects >= 1).await;
    wait_for("subscriber", || mock.versions.receiver_count() >= 1).await;

    *mock.ruleset.lock().unwrap() = ruleset(2, "paused");
    mock.versions.send(2).unwrap();
    wait_for("version 2", || client.ruleset().version() == 2).await;
    let a = client.assign("pricing", &user("u1")).unwrap();
    assert_eq!(
        (a.variant.as_str(), a.in_experiment, a.reason),
        ("control", false, Reason::Paused)
    );
    client.close().await;
}

#[tokio::test]
async fn polling_uses_etags() {
    let (url, mock) = start().await;
    let client = Client::builder(&url, KEY)
        .stream(false)
        .poll_interval(Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    wait_for("304s", || client.stats().ruleset_not_modified >= 2).await;
    assert!(mock.not_modified.load(Ordering::SeqCst) >= 2);
    assert_eq!(client.stats().ruleset_updates, 1);

    *mock.ruleset.lock().unwrap() = ruleset(3, "running");
    wait_for("version 3", || client.ruleset().version() == 3).await;
    client.close().await;
}

/// Regression (issue 12): any version other than the client's own was taken, so a
/// poll answered by a lagging server could undo a rollback.
#[tokio::test]
async fn an_older_ruleset_from_a_lagging_server_is_refused() {
    let (url, mock) = start().await;
    *mock.ruleset.lock().unwrap() = ruleset(5, "rolled_back");
    let client = Client::builder(&url, KEY)
        .stream(false)
        .poll_interval(Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    assert_eq!(client.ruleset().version(), 5);
    *mock.ruleset.lock().unwrap() = ruleset(4, "running");
    wait_for("a stale poll", || client.stats().ruleset_stale >= 2).await;
    assert_eq!(client.ruleset().version(), 5);
    let assignment = client.assign("pricing", &user("u1")).unwrap();
    assert_eq!(assignment.variant, "control", "the rollback stands");
    *mock.ruleset.lock().unwrap() = ruleset(6, "running");
    wait_for("version 6", || client.ruleset().version() == 6).await;
    client.close().await;
}

#[tokio::test]
async fn retries_server_errors_then_delivers() {
    let (url, mock) = start().await;
    mock.fail_first.store(2, Ordering::SeqCst);
    let client = Client::builder(&url, KEY)
        .stream(false)
        .flush_interval(Duration::from_millis(10))
        .retry_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    for i in 0..3 {
        client.track(&format!("u{i}"), "click", Some(1.0));
    }
    wait_for("delivery", || client.stats().events_sent == 3).await;
    let stats = client.stats();
    assert!(stats.send_retries >= 2, "{stats:?}");
    assert_eq!(stats.events_rejected, 0);
    client.close().await;
    assert_eq!(mock.events.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn gives_up_a_batch_on_client_errors() {
    let (url, mock) = start().await;
    mock.reject.store(true, Ordering::SeqCst);
    let client = Client::builder(&url, KEY)
        .stream(false)
        .build()
        .await
        .unwrap();
    client.track("u1", "click", None);
    client.track("u2", "click", None);
    client.close().await;
    assert_eq!(mock.posts.load(Ordering::SeqCst), 1, "a 400 is not retried");
    assert!(mock.events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn rejected_batches_are_counted() {
    let (url, mock) = start().await;
    mock.reject.store(true, Ordering::SeqCst);
    let client = Client::builder(&url, KEY)
        .stream(false)
        .flush_interval(Duration::from_millis(5))
        .build()
        .await
        .unwrap();
    client.track("u1", "click", None);
    wait_for("rejection", || client.stats().batches_rejected == 1).await;
    let stats = client.stats();
    assert_eq!(
        (stats.events_rejected, stats.events_sent, stats.send_retries),
        (1, 0, 0)
    );
    client.close().await;
}

#[tokio::test]
async fn full_buffer_drops_instead_of_blocking() {
    let (url, mock) = start().await;
    mock.slow_ms.store(2_000, Ordering::SeqCst);
    let client = Client::builder(&url, KEY)
        .stream(false)
        .buffer_capacity(5)
        .batch_size(1)
        .flush_interval(Duration::from_millis(1))
        .close_timeout(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let started = Instant::now();
    for i in 0..100 {
        client.track(&format!("u{i}"), "click", None);
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "track must not block"
    );
    let stats = client.stats();
    assert_eq!(stats.events_queued + stats.events_dropped, 100);
    assert!(stats.events_dropped >= 90, "{stats:?}");
    client.close().await;
}

/// Regression (issue 12): an exposure was marked as logged before it was queued,
/// so one a full buffer dropped was never logged again.
#[tokio::test]
async fn an_exposure_a_full_buffer_dropped_is_logged_again() {
    let (url, mock) = start().await;
    mock.slow_ms.store(300, Ordering::SeqCst);
    let client = Client::builder(&url, KEY)
        .stream(false)
        .buffer_capacity(2)
        .batch_size(1)
        .flush_interval(Duration::from_millis(1))
        .build()
        .await
        .unwrap();
    for i in 0..20 {
        client.track(&format!("filler-{i}"), "click", None);
    }
    let dropped = client.stats().events_dropped;
    assert!(dropped > 0, "the buffer is full");
    client.assign("pricing", &user("late")).unwrap();
    assert_eq!(
        client.stats().events_dropped,
        dropped + 1,
        "counted, not silent"
    );
    assert_eq!(client.stats().exposures_deduplicated, 0);
    mock.slow_ms.store(0, Ordering::SeqCst);
    wait_for("the buffer to drain", || {
        let s = client.stats();
        s.events_sent + s.events_dropped >= 20
    })
    .await;
    client.assign("pricing", &user("late")).unwrap();
    client.close().await;
    let events = mock.events.lock().unwrap().clone();
    let late: Vec<_> = events.iter().filter(|e| e["user"] == "late").collect();
    assert_eq!(
        late.len(),
        1,
        "logged once, on the next assignment: {late:?}"
    );
}

#[tokio::test]
async fn wrong_key_fails_to_build() {
    let (url, _mock) = start().await;
    let err = match Client::builder(&url, "wrong").build().await {
        Ok(_) => panic!("built with a wrong key"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), ClientErrorKind::Status);
    assert_eq!(err.to_string(), "ruleset request returned HTTP 401");
}

#[test]
fn client_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Client>();
}
