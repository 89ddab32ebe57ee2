//! A soak: the release `sluice serve`, as its own process on a fresh database,
//! under a mixed load for ten minutes.
//!
//! `cargo bench --bench soak` (SQLite); `SLUICE_SOAK_BACKEND=postgres` for the
//! local PostgreSQL (`SLUICE_TEST_PG`); `SLUICE_SOAK_SECONDS` to change the length.
//!
//! 32 keep-alive connections each send, at random: assignments with exposure
//! logging (50%) for 100,000 users, batches of 10 tracked events (20%), ruleset
//! polls with the last `ETag` (25%) and reports (5%); one SSE client per 10
//! connections follows the stream; every 30 s an editor pauses or resumes an
//! experiment, so polls and streams see changes. It reports each endpoint's
//! latency percentiles and the server's resident memory, and fails on any error,
//! any lost exposure, a stream that missed the last version, or resident memory
//! growing more than 10% after the warm-up: the first 30%, in which SQLite's
//! page caches (64 MiB for the writer, 8 MiB per reader) and the set of logged
//! exposures fill up to their bounds.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed soak

use std::net::SocketAddr;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sluice::domain::{format_millis, now_millis, Role};
use tokio::time::timeout_at;

mod client;
#[path = "../tests/common/mod.rs"]
mod common;

use client::{connect, Sender};
use common::{Backend, TestDb};

const CONNECTIONS: u64 = 32;
const STREAM_CLIENTS: u64 = CONNECTIONS / 10;
const EXPERIMENTS: usize = 20;
const USERS: u64 = 100_000;
const EVENTS_PER_BATCH: u64 = 10;
const CHANGE_EVERY: Duration = Duration::from_secs(30);
const MEMORY_EVERY: Duration = Duration::from_secs(5);
const MAX_MEMORY_GROWTH: f64 = 0.10;
/// The share of the run before memory is expected to stay flat.
const WARM_UP: f64 = 0.3;
/// How long a stream may take to deliver the last version after the load ends.
const STREAM_GRACE: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug)]
enum Endpoint {
    Assign,
    Events,
    Poll,
    Report,
    Admin,
}

impl Endpoint {
    const ALL: [Endpoint; 5] = [
        Endpoint::Assign,
        Endpoint::Events,
        Endpoint::Poll,
        Endpoint::Report,
        Endpoint::Admin,
    ];

    fn name(self) -> &'static str {
        match self {
            Endpoint::Assign => "POST /sdk/v1/assign",
            Endpoint::Events => "POST /sdk/v1/events",
            Endpoint::Poll => "GET /sdk/v1/ruleset",
            Endpoint::Report => "GET …/report",
            Endpoint::Admin => "POST …/pause, …/resume",
        }
    }
}

/// Latencies (µs) and errors per endpoint.
#[derive(Default)]
struct Record {
    latencies: [Vec<u32>; 5],
    errors: [u64; 5],
    first_errors: Vec<String>,
}

impl Record {
    fn observe(&mut self, endpoint: Endpoint, started: Instant, outcome: Result<(), String>) {
        let i = endpoint as usize;
        match outcome {
            Ok(()) => {
                let micros = started.elapsed().as_micros();
                self.latencies[i].push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            Err(problem) => {
                self.errors[i] += 1;
                if self.first_errors.len() < 10 {
                    self.first_errors
                        .push(format!("{}: {problem}", endpoint.name()));
                }
            }
        }
    }

    fn merge(&mut self, other: Record) {
        for (mine, theirs) in self.latencies.iter_mut().zip(other.latencies) {
            mine.extend(theirs);
        }
        for (mine, theirs) in self.errors.iter_mut().zip(other.errors) {
            *mine += theirs;
        }
        self.first_errors.extend(other.first_errors);
        self.first_errors.truncate(10);
    }

    fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }
}

struct Reply {
    status: u16,
    etag: String,
    body: Bytes,
}

async fn send(
    sender: &mut Sender,
    method: Method,
    path: &str,
    key: &str,
    if_none_match: Option<&str>,
    body: String,
) -> Result<Reply, String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json");
    if let Some(etag) = if_none_match {
        request = request.header("if-none-match", etag);
    }
    let request = request.body(Full::new(Bytes::from(body))).unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let etag = response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status >= 400 {
        return Err(format!("{status} {}", String::from_utf8_lossy(&body)));
    }
    Ok(Reply { status, etag, body })
}

struct Keys {
    sdk: String,
    editor: String,
}

fn experiment(key: &str) -> Value {
    json!({
        "key": key,
        "variants": [
            {"key": "control", "weight": 0.5, "value": {"headline": "Free delivery over ¥99"}},
            {"key": "treatment", "weight": 0.5, "value": {"headline": "满99元包邮，今日下单立减"}}],
        "condition": {"country": {"$in": ["CN", "US", "DE"]}, "device": "ios", "age": {"$gte": 18}},
        "primary_metric": "purchase"
    })
}

async fn define(sender: &mut Sender, editor: &str, key: &str) -> Result<(), String> {
    let body = experiment(key).to_string();
    send(
        sender,
        Method::POST,
        "/api/v1/experiments",
        editor,
        None,
        body,
    )
    .await?;
    let start = format!("/api/v1/experiments/{key}/start");
    send(sender, Method::POST, &start, editor, None, "{}".into()).await?;
    Ok(())
}

fn assign_body(rng: &mut StdRng) -> String {
    let user = rng.random_range(0..USERS);
    let country = ["CN", "US", "DE"][rng.random_range(0..3)];
    json!({"user": {"id": format!("user-{user}"), "country": country, "device": "ios", "age": 30}})
        .to_string()
}

fn events_body(rng: &mut StdRng, connection: u64, batch: u64) -> String {
    let ts = format_millis(now_millis());
    let events: Vec<Value> = (0..EVENTS_PER_BATCH)
        .map(|j| {
            json!({"id": format!("soak-{connection}-{batch}-{j}"), "type": "track",
                   "user": format!("user-{}", rng.random_range(0..USERS)),
                   "event": "purchase", "value": 19.9, "ts": ts})
        })
        .collect();
    json!({"events": events}).to_string()
}

/// One connection's share of the load until `deadline`.
async fn load(connection: u64, addr: SocketAddr, keys: Arc<Keys>, deadline: Instant) -> Record {
    let mut record = Record::default();
    let mut rng = StdRng::seed_from_u64(connection);
    let mut sender = connect(addr).await;
    let mut etag = "-".to_owned();
    let mut batch = 0;
    while Instant::now() < deadline {
        let started = Instant::now();
        let (endpoint, outcome) = match rng.random_range(0..100) {
            0..50 => {
                let body = assign_body(&mut rng);
                let path = "/sdk/v1/assign";
                let outcome = send(&mut sender, Method::POST, path, &keys.sdk, None, body).await;
                (Endpoint::Assign, outcome.map(drop))
            }
            50..70 => {
                batch += 1;
                let body = events_body(&mut rng, connection, batch);
                let path = "/sdk/v1/events";
                let outcome = send(&mut sender, Method::POST, path, &keys.sdk, None, body).await;
                (Endpoint::Events, outcome.map(drop))
            }
            70..95 => {
                let path = "/sdk/v1/ruleset";
                let tag = Some(etag.as_str());
                let outcome = send(
                    &mut sender,
                    Method::GET,
                    path,
                    &keys.sdk,
                    tag,
                    String::new(),
                )
                .await
                .map(|reply| {
                    if reply.status == 200 {
                        etag = reply.etag;
                    }
                });
                (Endpoint::Poll, outcome)
            }
            _ => {
                let experiment = rng.random_range(0..EXPERIMENTS);
                let path = format!("/api/v1/experiments/soak-{experiment:02}/report");
                let outcome = send(
                    &mut sender,
                    Method::GET,
                    &path,
                    &keys.editor,
                    None,
                    String::new(),
                )
                .await;
                (Endpoint::Report, outcome.map(drop))
            }
        };
        let broken = outcome.is_err();
        record.observe(endpoint, started, outcome);
        if broken && sender.is_closed() {
            sender = connect(addr).await;
        }
    }
    record
}

/// An editor pausing or resuming the first experiment every [`CHANGE_EVERY`]:
/// a new ruleset version each time, the experiments served staying the same.
async fn change(addr: SocketAddr, keys: Arc<Keys>, deadline: Instant) -> Record {
    let mut record = Record::default();
    let mut sender = connect(addr).await;
    let mut actions = ["pause", "resume"].into_iter().cycle();
    while timeout_at(deadline.into(), tokio::time::sleep(CHANGE_EVERY))
        .await
        .is_ok()
    {
        let started = Instant::now();
        let path = format!("/api/v1/experiments/soak-00/{}", actions.next().unwrap());
        let outcome = send(
            &mut sender,
            Method::POST,
            &path,
            &keys.editor,
            None,
            "{}".into(),
        )
        .await;
        record.observe(Endpoint::Admin, started, outcome.map(drop));
    }
    record
}

/// What one stream client saw: the last version announced, or why it stopped.
async fn follow(addr: SocketAddr, keys: Arc<Keys>, until: Instant) -> Result<u64, String> {
    let mut sender = connect(addr).await;
    sender.ready().await.map_err(|e| e.to_string())?;
    let request = Request::get("/sdk/v1/stream")
        .header("host", "localhost")
        .header("authorization", format!("Bearer {}", keys.sdk))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let mut body = response.into_body();
    let mut last = 0;
    loop {
        let frame = match timeout_at(until.into(), body.frame()).await {
            Err(_) => return Ok(last),
            Ok(None) => return Err("the stream ended".into()),
            Ok(Some(frame)) => frame.map_err(|e| e.to_string())?,
        };
        let Some(data) = frame.data_ref() else {
            continue;
        };
        let text = String::from_utf8_lossy(data);
        for line in text.lines() {
            if let Some(version) = line.strip_prefix("id:") {
                last = version
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad id {line:?}"))?;
            }
        }
    }
}

fn resident_kib(server: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.id())).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The server's resident memory every [`MEMORY_EVERY`] until `deadline`.
async fn watch_memory(server: &Child, deadline: Instant) -> Vec<(Duration, u64)> {
    let started = Instant::now();
    let mut samples = Vec::new();
    while Instant::now() < deadline {
        samples.push((started.elapsed(), resident_kib(server)));
        let elapsed = started.elapsed();
        if elapsed.as_secs() % 60 < MEMORY_EVERY.as_secs() {
            eprintln!(
                "{:>4} s  {} MiB resident",
                elapsed.as_secs(),
                resident_kib(server) / 1024
            );
        }
        tokio::time::sleep(MEMORY_EVERY).await;
    }
    samples
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

fn print_latencies(record: &mut Record, length: Duration) {
    println!(
        "{:<26} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "endpoint", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"
    );
    for endpoint in Endpoint::ALL {
        let latencies = &mut record.latencies[endpoint as usize];
        latencies.sort_unstable();
        println!(
            "{:<26} {:>9} {:>8.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7}",
            endpoint.name(),
            latencies.len(),
            latencies.len() as f64 / length.as_secs_f64(),
            percentile(latencies, 0.50),
            percentile(latencies, 0.90),
            percentile(latencies, 0.99),
            percentile(latencies, 1.0),
            record.errors[endpoint as usize],
        );
    }
}

/// The growth of resident memory after the warm-up, relative to its end.
fn memory_growth(samples: &[(Duration, u64)], warm_up: Duration) -> f64 {
    let mut after = samples.iter().filter(|(at, _)| *at >= warm_up).map(|s| s.1);
    let Some(baseline) = after.next() else {
        return f64::NAN;
    };
    let peak = after.max().unwrap_or(baseline);
    peak as f64 / baseline as f64 - 1.0
}

async fn healthz_dropped(addr: SocketAddr) -> u64 {
    let mut sender = connect(addr).await;
    let reply = send(
        &mut sender,
        Method::GET,
        "/healthz",
        "",
        None,
        String::new(),
    )
    .await
    .unwrap();
    let health: Value = serde_json::from_slice(&reply.body).unwrap();
    health["exposures"]["dropped"].as_u64().unwrap()
}

async fn served_version(addr: SocketAddr, keys: &Keys) -> u64 {
    let mut sender = connect(addr).await;
    let reply = send(
        &mut sender,
        Method::GET,
        "/sdk/v1/ruleset",
        &keys.sdk,
        None,
        String::new(),
    )
    .await
    .unwrap();
    let ruleset: Value = serde_json::from_slice(&reply.body).unwrap();
    ruleset["version"].as_u64().unwrap()
}

async fn prepare(backend: Backend) -> (TestDb, Keys) {
    let db = TestDb::new(backend).await;
    let store = sluice::store::open(&db.url).await.unwrap();
    let keys = Keys {
        sdk: common::mint_key(&store, Role::Sdk, "soak-sdk").await,
        editor: common::mint_key(&store, Role::Editor, "soak-editor").await,
    };
    (db, keys)
}

async fn define_all(addr: SocketAddr, keys: &Keys) {
    let mut sender = connect(addr).await;
    let metric =
        json!({"key": "purchase", "name": "Purchase", "kind": "conversion", "event": "purchase"});
    send(
        &mut sender,
        Method::POST,
        "/api/v1/metrics",
        &keys.editor,
        None,
        metric.to_string(),
    )
    .await
    .unwrap();
    for i in 0..EXPERIMENTS {
        define(&mut sender, &keys.editor, &format!("soak-{i:02}"))
            .await
            .unwrap();
    }
}

fn soak_length() -> Duration {
    let seconds = std::env::var("SLUICE_SOAK_SECONDS").map_or(600, |s| s.parse().unwrap());
    Duration::from_secs(seconds)
}

#[tokio::main]
async fn main() {
    let backend = match std::env::var("SLUICE_SOAK_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let length = soak_length();
    let (db, keys) = prepare(backend).await;
    let (mut server, port) =
        common::process::serve(&db.url, &["--sdk-rate-limit", "0", "--api-rate-limit", "0"]);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let keys = Arc::new(keys);
    define_all(addr, &keys).await;
    println!(
        "soak: {backend:?}, {} s, {CONNECTIONS} connections",
        length.as_secs()
    );

    let deadline = Instant::now() + length;
    let streams: Vec<_> = (0..STREAM_CLIENTS)
        .map(|_| tokio::spawn(follow(addr, keys.clone(), deadline + STREAM_GRACE)))
        .collect();
    let mut workers: Vec<_> = (0..CONNECTIONS)
        .map(|c| tokio::spawn(load(c, addr, keys.clone(), deadline)))
        .collect();
    workers.push(tokio::spawn(change(addr, keys.clone(), deadline)));
    let memory = watch_memory(&server, deadline).await;
    let mut record = Record::default();
    for worker in workers {
        record.merge(worker.await.unwrap());
    }
    let mut streamed = Vec::new();
    for stream in streams {
        streamed.push(stream.await.unwrap());
    }
    let version = served_version(addr, &keys).await;
    let dropped = healthz_dropped(addr).await;
    server.kill().unwrap();
    let _ = server.wait();

    print_latencies(&mut record, length);
    let warm_up = length.mul_f64(WARM_UP);
    let growth = memory_growth(&memory, warm_up);
    let resident: Vec<u64> = memory.iter().map(|s| s.1 / 1024).collect();
    println!(
        "resident MiB every {} s: {resident:?}",
        MEMORY_EVERY.as_secs()
    );
    println!(
        "resident memory after the {} s warm-up: {:+.1}% at its peak",
        warm_up.as_secs(),
        growth * 100.0
    );
    println!("streams (last version seen, served {version}): {streamed:?}");
    println!("exposures dropped by the server: {dropped}");
    for problem in &record.first_errors {
        println!("error: {problem}");
    }
    assert_eq!(record.total_errors(), 0, "requests failed");
    assert_eq!(dropped, 0, "exposures were lost");
    assert!(
        streamed
            .iter()
            .all(|s| s.as_ref().is_ok_and(|v| *v == version)),
        "a stream did not follow to version {version}"
    );
    assert!(
        growth <= MAX_MEMORY_GROWTH,
        "resident memory grew {:.1}% after the warm-up",
        growth * 100.0
    );
    println!("soak passed");
}
