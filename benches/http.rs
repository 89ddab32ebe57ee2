//! HTTP benchmarks over loopback, each next to a baseline measured in the same run:
//! - `poll`: `GET /sdk/v1/ruleset` answered 304 (`If-None-Match`) with 5, 100 and
//!   1,000 experiments defined (at 100 also from a browser, with an `Origin` the
//!   CORS layer answers), next to a bare axum `GET` answering a small body;
//! - `assign`: `POST /sdk/v1/assign` (auth, evaluation of every experiment, exposure
//!   logging on and off, once the users' first exposures are stored) with 5 and
//!   100 experiments, next to a bare axum `POST`
//!   that parses the same body and echoes a small object;
//! - `admin`: creating one experiment, and starting one, while 1,000 are
//!   defined (SQLite), one call after the other;
//! - `ingest`: `POST /sdk/v1/events` with batches of 1000 events into SQLite and
//!   into PostgreSQL (`SLUICE_TEST_PG`, default the local server, in a fresh
//!   schema), acknowledged after commit.
//!
//! Requests go over keep-alive HTTP/1.1 connections at once; the time per element is
//! the inverse of throughput. Client and server share this machine's cores, equally
//! for the baseline and the endpoint under test. The servers run without rate
//! limits: one key sends far more than a real app would.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::{get, post};
use axum::{Json, Router};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde_json::{json, Value};
use sluice::api::{Limits, RateLimits};
use sluice::app::{Server, ServerOptions};
use sluice::control::ExposureLog;
use sluice::domain::{
    now_millis, Actor, AuditAction, Experiment, ExperimentSpec, LifecycleAction, NewAuditEntry,
    Role,
};
use sluice::store::Store;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

mod client;
#[path = "../tests/common/mod.rs"]
mod common;

use client::{connect, Sender};
use common::{Backend, TestDb};

/// Concurrent connections for polls and assignment (many app servers) and for
/// ingestion (a few SDK flushers sending large batches).
const APP_CONNECTIONS: usize = 32;
const INGEST_CONNECTIONS: usize = 4;

struct Target {
    addr: SocketAddr,
    sdk: String,
    editor: String,
    exposures: Arc<ExposureLog>,
    store: Arc<dyn Store>,
    _db: TestDb,
}

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// The `i`-th benchmark experiment: a 3-clause condition every benchmark user
/// passes, two variants with payloads the size of a real copy test's.
fn experiment_spec(i: usize) -> ExperimentSpec {
    serde_json::from_value(json!({
        "key": format!("exp-{i:04}"),
        "variants": [
            {"key": "control", "weight": 0.5,
             "value": {"flow": "classic", "headline": "Free delivery over ¥99", "discount": 0}},
            {"key": "treatment", "weight": 0.5,
             "value": {"flow": "one-page", "headline": "满99元包邮，今日下单立减", "discount": 0.1}}],
        "condition": {"country": {"$in": ["CN", "US", "DE"]}, "device": "ios", "age": {"$gte": 18}}
    }))
    .unwrap()
}

/// Running experiments `0..count`, written straight to the store and published
/// once (the admin benchmark measures the API's own path).
async fn define_running(store: &Arc<dyn Store>, count: usize) {
    for i in 0..count {
        let now = now_millis();
        let mut experiment = Experiment::new_draft(experiment_spec(i), now);
        experiment.apply(&LifecycleAction::Start, now).unwrap();
        let audit =
            NewAuditEntry::for_experiment(&Actor::Cli, AuditAction::Start, None, &experiment, now);
        store.insert_experiment(&experiment, &audit).await.unwrap();
    }
}

/// A sluice server on a fresh database with `experiments` running experiments.
async fn sluice_server(backend: Backend, experiments: usize) -> Target {
    let db = TestDb::new(backend).await;
    let store = sluice::store::open(&db.url).await.unwrap();
    let editor = common::mint_key(&store, Role::Editor, "bench-editor").await;
    let sdk = common::mint_key(&store, Role::Sdk, "bench-sdk").await;
    define_running(&store, experiments).await;
    let kept = store.clone();
    let options = ServerOptions {
        limits: Limits {
            rates: RateLimits::OFF,
            ..Limits::default()
        },
        ..ServerOptions::default()
    };
    let server = Server::build_with(store, options).await.unwrap();
    let addr = serve(server.router.clone()).await;
    let exposures = server.exposures.clone();
    std::mem::forget(server);
    Target {
        addr,
        sdk,
        editor,
        exposures,
        store: kept,
        _db: db,
    }
}

async fn bare_server() -> SocketAddr {
    async fn echo(Json(body): Json<Value>) -> Json<Value> {
        Json(json!({"version": 1, "ok": body.get("user").is_some()}))
    }
    async fn hello() -> &'static str {
        "hello"
    }
    serve(
        Router::new()
            .route("/echo", post(echo))
            .route("/hello", get(hello)),
    )
    .await
}

/// One request.
#[derive(Clone)]
enum Call {
    Post {
        path: String,
        body: String,
    },
    Get {
        path: &'static str,
        etag: String,
        /// A browser's `Origin`, for the CORS layer to answer.
        origin: Option<&'static str>,
    },
}

fn poll_call(etag: &str, origin: Option<&'static str>) -> Call {
    Call::Get {
        path: "/sdk/v1/ruleset",
        etag: etag.to_owned(),
        origin,
    }
}

/// Sends a call and reads the answer to its end; returns its status and `ETag`.
async fn send(sender: &mut Sender, key: &str, call: Call) -> (u16, String) {
    sender.ready().await.unwrap();
    let builder = match &call {
        Call::Post { path, .. } => {
            Request::post(path.as_str()).header("content-type", "application/json")
        }
        Call::Get { path, etag, origin } => {
            let get = Request::get(*path).header("if-none-match", etag.as_str());
            match origin {
                Some(origin) => get.header("origin", *origin),
                None => get,
            }
        }
    };
    let body = match call {
        Call::Post { body, .. } => Bytes::from(body),
        Call::Get { .. } => Bytes::new(),
    };
    let request = builder
        .header("authorization", format!("Bearer {key}"))
        .header("host", "localhost")
        .body(Full::new(body))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    response.into_body().collect().await.unwrap();
    assert!(status < 400, "status {status}");
    (status, etag)
}

/// Sends `total` calls over `connections` connections; `call(i)` makes the i-th.
async fn blast(
    connections: usize,
    addr: SocketAddr,
    key: &str,
    total: u64,
    call: Arc<dyn Fn(u64) -> Call + Send + Sync>,
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
            let (next, key, call) = (next.clone(), key.to_owned(), call.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    send(&mut sender, &key, call(i)).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    started.elapsed()
}

/// The users an app serves in the benchmark's span: after the first pass every
/// assignment is a repeat, whose exposure the server already logged.
const ACTIVE_USERS: u64 = 5_000;

fn assign_body(i: u64, log_exposure: bool) -> String {
    let user = i % ACTIVE_USERS;
    json!({"user": {"id": format!("user-{user}"), "country": "US", "device": "ios", "age": 30},
           "log_exposure": log_exposure})
    .to_string()
}

fn poll(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let bare = runtime.block_on(bare_server());
    let mut group = c.benchmark_group("poll");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("bare_axum_get", |b| {
        b.to_async(&runtime).iter_custom(|n| {
            blast(
                APP_CONNECTIONS,
                bare,
                "none",
                n,
                Arc::new(|_| Call::Get {
                    path: "/hello",
                    etag: "-".to_owned(),
                    origin: None,
                }),
            )
        })
    });
    for experiments in [5, 100, 1000] {
        let target = runtime.block_on(sluice_server(Backend::Sqlite, experiments));
        let etag = runtime.block_on(async {
            let mut sender = connect(target.addr).await;
            let (status, etag) = send(&mut sender, &target.sdk, poll_call("-", None)).await;
            assert_eq!(status, 200);
            etag
        });
        // A browser's poll goes through the CORS layer too (at 100 experiments).
        let origins: &[(&str, Option<&'static str>)] = if experiments == 100 {
            &[
                ("ruleset_304", None),
                ("ruleset_304_cors", Some("https://shop.example")),
            ]
        } else {
            &[("ruleset_304", None)]
        };
        for &(name, origin) in origins {
            group.bench_function(BenchmarkId::new(name, experiments), |b| {
                b.to_async(&runtime).iter_custom(|n| {
                    let etag = etag.clone();
                    blast(
                        APP_CONNECTIONS,
                        target.addr,
                        &target.sdk,
                        n,
                        Arc::new(move |_| poll_call(&etag, origin)),
                    )
                })
            });
        }
    }
    group.finish();
}

fn assign(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let bare = runtime.block_on(bare_server());
    let mut group = c.benchmark_group("assign");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    let post = |log_exposure: bool, path: &'static str| -> Arc<dyn Fn(u64) -> Call + Send + Sync> {
        Arc::new(move |i| Call::Post {
            path: path.to_owned(),
            body: assign_body(i, log_exposure),
        })
    };
    group.bench_function("bare_axum_echo", |b| {
        b.to_async(&runtime)
            .iter_custom(|n| blast(APP_CONNECTIONS, bare, "none", n, post(false, "/echo")))
    });
    for experiments in [5, 100] {
        let target = runtime.block_on(sluice_server(Backend::Sqlite, experiments));
        runtime.block_on(log_first_exposures(
            &target,
            experiments,
            &post(true, "/sdk/v1/assign"),
        ));
        for (name, log_exposure) in [("logged", true), ("not_logged", false)] {
            group.bench_function(BenchmarkId::new(name, experiments), |b| {
                b.to_async(&runtime).iter_custom(|n| {
                    blast(
                        APP_CONNECTIONS,
                        target.addr,
                        &target.sdk,
                        n,
                        post(log_exposure, "/sdk/v1/assign"),
                    )
                })
            });
        }
        // First exposures wait for room in the queue rather than being lost.
        let (dropped, repeats) = (target.exposures.dropped(), target.exposures.repeats());
        println!(
            "{experiments} experiments: server-side exposures {dropped} dropped, \
             {repeats} repeats kept out of the queue"
        );
        assert_eq!(dropped, 0, "first exposures were lost");
    }
    group.finish();
}

/// One pass over the active users, logging their first exposures, and the wait
/// until all are stored: the measurements then compare assignment with and without
/// logging in the steady state, where the users' exposures are repeats. (Storing
/// first exposures is ingestion's work, measured by `ingest`.)
async fn log_first_exposures(
    target: &Target,
    experiments: usize,
    call: &Arc<dyn Fn(u64) -> Call + Send + Sync>,
) {
    blast(
        APP_CONNECTIONS,
        target.addr,
        &target.sdk,
        ACTIVE_USERS,
        call.clone(),
    )
    .await;
    let last = format!("exp-{:04}", experiments - 1);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let summary = target
            .store
            .exposure_summary(&last, &sluice::store::UserFilter::EVERYONE)
            .await
            .unwrap();
        if summary.users.iter().map(|(_, n)| n).sum::<u64>() == ACTIVE_USERS {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "first exposures not stored in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates the next benchmark experiment as a draft; returns its key.
async fn create_draft(sender: &mut Sender, target: &Target, created: &AtomicU64) -> String {
    let i = created.fetch_add(1, Ordering::Relaxed) as usize;
    let create = Call::Post {
        path: "/api/v1/experiments".to_owned(),
        body: serde_json::to_string(&experiment_spec(i)).unwrap(),
    };
    send(sender, &target.editor, create).await;
    format!("exp-{i:04}")
}

/// Each call on its own, one after the other: creating a draft, then starting
/// one (drafts made before the clock starts).
fn admin(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let target = runtime.block_on(sluice_server(Backend::Sqlite, 1000));
    let created = Arc::new(AtomicU64::new(1000));
    let mut group = c.benchmark_group("admin");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("create_at_1000", |b| {
        b.to_async(&runtime).iter_custom(|n| {
            let (created, target) = (created.clone(), &target);
            async move {
                let mut sender = connect(target.addr).await;
                let started = Instant::now();
                for _ in 0..n {
                    create_draft(&mut sender, target, &created).await;
                }
                started.elapsed()
            }
        })
    });
    group.bench_function("start_at_1000", |b| {
        b.to_async(&runtime).iter_custom(|n| {
            let (created, target) = (created.clone(), &target);
            async move {
                let mut sender = connect(target.addr).await;
                let mut drafts = Vec::new();
                for _ in 0..n {
                    drafts.push(create_draft(&mut sender, target, &created).await);
                }
                let started = Instant::now();
                for key in drafts {
                    let start = Call::Post {
                        path: format!("/api/v1/experiments/{key}/start"),
                        body: "{}".to_owned(),
                    };
                    send(&mut sender, &target.editor, start).await;
                }
                started.elapsed()
            }
        })
    });
    group.finish();
}

fn events_batch(batch: u64) -> String {
    let events: Vec<Value> = (0..1000u64)
        .map(|j| {
            let n = batch * 1000 + j;
            let user = format!("user-{}", n / 4);
            if j % 4 == 0 {
                let variant = if (n / 4) % 2 == 0 {
                    "control"
                } else {
                    "treatment"
                };
                json!({"id": format!("e{n}"), "type": "exposure", "user": user,
                       "experiment": "exp-0000", "variant": variant, "ts": "2026-11-24T10:00:00Z"})
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
        let target = runtime.block_on(sluice_server(backend, 1));
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter_custom(|n| {
                // Fresh ids every batch (duplicates would be cheaper than real
                // traffic), serialised before the clock starts so the client's JSON
                // work is not charged to the server.
                let first = batches.fetch_add(n, Ordering::Relaxed);
                let bodies: Arc<Vec<String>> =
                    Arc::new((0..n).map(|i| events_batch(first + i)).collect());
                let call = Arc::new(move |i: u64| Call::Post {
                    path: "/sdk/v1/events".to_owned(),
                    body: bodies[i as usize].clone(),
                });
                blast(INGEST_CONNECTIONS, target.addr, &target.sdk, n, call)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, poll, assign, admin, ingest);
criterion_main!(benches);
