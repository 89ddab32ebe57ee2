//! HTTP benchmarks over loopback, each against a baseline measured in the same run:
//! - `assign`: `POST /sdk/v1/assign` (auth, evaluation, exposure logging) next to a
//!   bare axum JSON endpoint that parses the same body and answers a small object;
//! - `ingest`: `POST /sdk/v1/events` with batches of 1000 events into SQLite and
//!   into PostgreSQL (`SLUICE_TEST_PG`, default the local server, in a fresh
//!   schema), acknowledged after commit.
//!
//! Requests go over keep-alive HTTP/1.1 connections at once; the time per element is
//! the inverse of throughput. Client and server share this machine's cores, equally
//! for the baseline and the endpoint under test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use axum::{Json, Router};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sluice::app::Server;
use sluice::control::ExposureLog;
use sluice::domain::Role;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Backend, TestDb};

/// Concurrent connections for assignment (many app servers) and for ingestion
/// (a few SDK flushers sending large batches).
const ASSIGN_CONNECTIONS: usize = 32;
const INGEST_CONNECTIONS: usize = 4;

struct Target {
    addr: SocketAddr,
    key: String,
    exposures: Arc<ExposureLog>,
    _db: TestDb,
}

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// A sluice server on a fresh database with a running 3-clause experiment.
async fn sluice_server(backend: Backend) -> Target {
    let db = TestDb::new(backend).await;
    let store = sluice::store::open(&db.url).await.unwrap();
    let editor = common::mint_key(&store, Role::Editor, "bench-editor").await;
    let sdk = common::mint_key(&store, Role::Sdk, "bench-sdk").await;
    let server = Server::build(store).await.unwrap();
    let addr = serve(server.router.clone()).await;
    let mut admin = connect(addr).await;
    let experiment = json!({
        "key": "checkout-flow",
        "variants": [{"key": "control", "weight": 0.5, "value": {"flow": "classic"}},
                     {"key": "one-page", "weight": 0.5, "value": {"flow": "one-page"}}],
        "condition": {"country": {"$in": ["CN", "US", "DE"]}, "device": "ios", "age": {"$gte": 18}}
    });
    send(
        &mut admin,
        "/api/v1/experiments",
        &editor,
        experiment.to_string(),
    )
    .await;
    send(
        &mut admin,
        "/api/v1/experiments/checkout-flow/start",
        &editor,
        "{}".into(),
    )
    .await;
    let exposures = server.exposures.clone();
    std::mem::forget(server);
    Target {
        addr,
        key: sdk,
        exposures,
        _db: db,
    }
}

async fn bare_server() -> SocketAddr {
    async fn answer(Json(body): Json<Value>) -> Json<Value> {
        Json(json!({"version": 1, "ok": body.get("user").is_some()}))
    }
    serve(Router::new().route("/bare", post(answer))).await
}

async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

async fn send(sender: &mut SendRequest<Full<Bytes>>, path: &str, key: &str, body: String) -> u16 {
    sender.ready().await.unwrap();
    let request = Request::post(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .header("host", "localhost")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    response.into_body().collect().await.unwrap();
    assert!(status < 300, "status {status} from {path}");
    status
}

/// Sends `total` requests over `connections` connections; `body(i)` makes the i-th.
async fn blast(
    connections: usize,
    addr: SocketAddr,
    path: &'static str,
    key: &str,
    total: u64,
    body: Arc<dyn Fn(u64) -> String + Send + Sync>,
) -> Duration {
    let next = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for _ in 0..connections {
        senders.push(connect(addr).await);
    }
    let started = Instant::now();
    let workers: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let (next, key, body) = (next.clone(), key.to_owned(), body.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    send(&mut sender, path, &key, body(i)).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    started.elapsed()
}

fn assign_body(i: u64) -> String {
    json!({"user": {"id": format!("user-{i}"), "country": "US", "device": "ios", "age": 30},
           "experiments": ["checkout-flow"]})
    .to_string()
}

fn assign(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let (target, bare) =
        runtime.block_on(async { (sluice_server(Backend::Sqlite).await, bare_server().await) });
    let mut group = c.benchmark_group("http");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("bare_axum_json", |b| {
        b.to_async(&runtime).iter_custom(|n| {
            blast(
                ASSIGN_CONNECTIONS,
                bare,
                "/bare",
                "none",
                n,
                Arc::new(assign_body),
            )
        })
    });
    group.bench_function("sdk_v1_assign", |b| {
        b.to_async(&runtime).iter_custom(|n| {
            blast(
                ASSIGN_CONNECTIONS,
                target.addr,
                "/sdk/v1/assign",
                &target.key,
                n,
                Arc::new(assign_body),
            )
        })
    });
    group.bench_function("sdk_v1_assign_without_exposure_log", |b| {
        b.to_async(&runtime).iter_custom(|n| {
            let body = |i| {
                assign_body(i).replace(
                    "\"experiments\"",
                    "\"log_exposure\": false, \"experiments\"",
                )
            };
            blast(
                ASSIGN_CONNECTIONS,
                target.addr,
                "/sdk/v1/assign",
                &target.key,
                n,
                Arc::new(body),
            )
        })
    });
    group.finish();
    // Every iteration assigns users 0..n again: mostly repeats, some first
    // exposures. None may be lost at this load.
    let (dropped, repeats) = (target.exposures.dropped(), target.exposures.repeats());
    println!("server-side exposures: {dropped} dropped, {repeats} repeats kept out of the queue");
    assert_eq!(dropped, 0, "first exposures were lost");
}

fn events_batch(batch: u64) -> String {
    let events: Vec<Value> = (0..1000u64)
        .map(|j| {
            let n = batch * 1000 + j;
            let user = format!("user-{}", n / 4);
            if j % 4 == 0 {
                let variant = if (n / 4) % 2 == 0 { "control" } else { "one-page" };
                json!({"id": format!("e{n}"), "type": "exposure", "user": user,
                       "experiment": "checkout-flow", "variant": variant, "ts": "2026-11-24T10:00:00Z"})
            } else {
                json!({"id": format!("e{n}"), "type": "track", "user": user,
                       "event": "purchase", "value": 19.9, "ts": "2026-11-24T10:05:00Z"})
            }
        })
        .collect();
    json!({"events": events}).to_string()
}

fn ingest(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let batches = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(1000));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for (name, backend) in [
        ("sqlite_batch_1000", Backend::Sqlite),
        ("postgres_batch_1000", Backend::Postgres),
    ] {
        let target = runtime.block_on(sluice_server(backend));
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter_custom(|n| {
                // Fresh ids every batch (duplicates would be cheaper than real
                // traffic), serialised before the clock starts so the client's JSON
                // work is not charged to the server.
                let first = batches.fetch_add(n, Ordering::Relaxed);
                let bodies: Arc<Vec<String>> =
                    Arc::new((0..n).map(|i| events_batch(first + i)).collect());
                let body = Arc::new(move |i: u64| bodies[i as usize].clone());
                blast(
                    INGEST_CONNECTIONS,
                    target.addr,
                    "/sdk/v1/events",
                    &target.key,
                    n,
                    body,
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, assign, ingest);
criterion_main!(benches);
