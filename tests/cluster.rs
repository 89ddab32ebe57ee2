//! Two `sluice serve` processes on one PostgreSQL database: a change made through one
//! reaches SDK streams on the other within a second; exactly one leads the guard loop
//! and webhook delivery, and when it is killed the other takes over within two guard
//! intervals without acting or delivering twice.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice::domain::Role;
use sluice_sdk::client::Client;
use sluice_sdk::{Attributes, Reason};

use common::process::serve;
use common::{mint_key, pricing_metrics, pricing_spec, traffic, webhook_receiver, Backend, TestDb};

const GUARD_INTERVAL: Duration = Duration::from_secs(1);

struct Node {
    process: Child,
    base: String,
}

impl Node {
    fn start(db: &str) -> Self {
        Self::with_guard_interval(db, GUARD_INTERVAL)
    }

    fn with_guard_interval(db: &str, interval: Duration) -> Self {
        let interval = interval.as_secs().to_string();
        let (process, port) = serve(db, &["--guard-interval", &interval]);
        Self {
            process,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn send(&self, path: &str, key: &str, body: Option<Value>) -> Value {
        let client = reqwest::Client::new();
        let request = match body {
            Some(body) => client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body.to_string()),
            None => client.get(format!("{}{path}", self.base)),
        };
        let response = request.bearer_auth(key).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn health(&self) -> Value {
        self.send("/healthz", "", None).await
    }

    async fn leads(&self) -> bool {
        self.health().await["leader"] == true
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn wait_for<F: std::future::Future<Output = bool>>(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> F,
) -> Duration {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "{what} took over {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

async fn audit_actions(node: &Node, admin: &str) -> Vec<String> {
    let audit = node
        .send("/api/v1/experiments/pricing-q4/audit", admin, None)
        .await;
    audit
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_changes_leadership_and_deliveries() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = sluice::store::open(&db.url).await.unwrap();
    let admin = mint_key(&store, Role::Admin, "admin").await;
    let sdk = mint_key(&store, Role::Sdk, "sdk").await;
    let (hook_url, received) = webhook_receiver().await;

    let mut nodes = [Node::start(&db.url), Node::start(&db.url)];
    let hook = nodes[0]
        .send(
            "/api/v1/webhooks",
            &admin,
            Some(json!({"url": hook_url, "secret": "s3cret-s3cret-s3cret", "events": ["*"]})),
        )
        .await;

    // Exactly one leads.
    wait_for("a leader", 3 * GUARD_INTERVAL, || async {
        nodes[0].leads().await || nodes[1].leads().await
    })
    .await;
    let leader = usize::from(nodes[1].leads().await);
    assert!(nodes[leader].leads().await);
    assert!(!nodes[1 - leader].leads().await, "two leaders");

    // A change made through one server reaches a stream on the other within 1 s.
    let (through, streaming) = (&nodes[leader], &nodes[1 - leader]);
    for metric in pricing_metrics() {
        through.send("/api/v1/metrics", &admin, Some(metric)).await;
    }
    through
        .send("/api/v1/experiments", &admin, Some(pricing_spec()))
        .await;
    let client = Client::builder(streaming.base.clone(), sdk.clone())
        .poll_interval(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let user: Attributes = serde_json::from_value(json!({"id": "u-1", "country": "US"})).unwrap();
    through
        .send(
            "/api/v1/experiments/pricing-q4/start",
            &admin,
            Some(json!({})),
        )
        .await;
    let reached = wait_for(
        "the start to reach the other server's stream",
        Duration::from_secs(1),
        || async {
            client
                .assign("pricing-q4", &user)
                .is_some_and(|a| a.reason == Reason::Split)
        },
    )
    .await;
    let version = through.health().await["ruleset_version"].clone();
    assert_eq!(client.ruleset().version(), version.as_u64().unwrap());
    assert_eq!(streaming.health().await["ruleset_version"], version);
    client.close().await;
    eprintln!("a change reached the other server's stream in {reached:?}");

    // A harmful price: the leader's guard rolls it back once.
    let mut events = traffic("control", 3000, 300);
    events.extend(traffic("premium", 3000, 150));
    streaming
        .send("/sdk/v1/events", &sdk, Some(json!({"events": events})))
        .await;
    wait_for("the rollback", 3 * GUARD_INTERVAL, || async {
        audit_actions(streaming, &admin)
            .await
            .contains(&"guard_rollback".to_owned())
    })
    .await;

    // Kill the leader; the other takes over within two intervals.
    let killed = Instant::now();
    nodes[leader].process.kill().unwrap();
    nodes[leader].process.wait().unwrap();
    let survivor = &nodes[1 - leader];
    wait_for("the takeover", 2 * GUARD_INTERVAL, || survivor.leads()).await;
    eprintln!("the other server led {:?} after the kill", killed.elapsed());

    // Two more guard rounds on the new leader change nothing.
    tokio::time::sleep(2 * GUARD_INTERVAL + Duration::from_millis(200)).await;
    let actions = audit_actions(survivor, &admin).await;
    let rollbacks = actions.iter().filter(|a| *a == "guard_rollback").count();
    assert_eq!(rollbacks, 1, "{actions:?}");

    // Every queued delivery is delivered. Delivery is at least once: one whose
    // answer was slow or lost when the leader died is sent again with the same
    // id, for the receiver to ignore; none is lost and none is made up.
    let log_path = format!("/api/v1/webhooks/{}/deliveries", hook["id"]);
    wait_for("every delivery", Duration::from_secs(5), || async {
        let log = survivor.send(&log_path, &admin, None).await;
        log.as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered")
    })
    .await;
    let log = survivor.send(&log_path, &admin, None).await;
    let queued: BTreeSet<String> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].to_string())
        .collect();
    let delivered: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|hit| {
            hit.headers["x-sluice-delivery"]
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let distinct: BTreeSet<String> = delivered.iter().cloned().collect();
    if delivered.len() != distinct.len() {
        eprintln!("deliveries repeated with their id: {delivered:?}");
    }
    assert_eq!(distinct, queued);
    assert!(
        queued.len() >= 3,
        "create, start and guard_rollback: {queued:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_a_guard_loop_leaves_the_lead_to_one_with_it() {
    let db = TestDb::new(Backend::Postgres).await;
    sluice::store::open(&db.url).await.unwrap();
    let follower = Node::with_guard_interval(&db.url, Duration::ZERO);
    // Its webhook sender checks leadership every half second; it must not take it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!follower.leads().await);
    let leader = Node::start(&db.url);
    wait_for("the guarded server to lead", 2 * GUARD_INTERVAL, || {
        leader.leads()
    })
    .await;
    assert!(!follower.leads().await);
}
