//! Acknowledged data survives crashes: `sluice serve` is killed with SIGKILL at
//! random moments, ten times, while clients send event batches and retry each
//! until it is acknowledged (202). Afterwards every event is counted exactly once:
//! nothing acknowledged was lost, nothing retried was counted twice.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use sluice::store::UserFilter;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sluice::domain::Role;

use common::process::serve;
use common::{day, mint_key, pricing_metrics, pricing_spec, Backend, TestDb};

const KILLS: usize = 10;
const CLIENTS: usize = 4;
const BATCHES_PER_CLIENT: usize = 150;
const USERS_PER_BATCH: usize = 50;

/// Where the server listens now; it moves to a new port after each restart.
type Address = Arc<RwLock<String>>;

/// One batch: an exposure for each of its users, and a purchase for every third.
fn batch(client: usize, number: usize) -> Value {
    let mut events = Vec::new();
    for i in 0..USERS_PER_BATCH {
        let user = format!("c{client}-b{number}-u{i}");
        let variant = if i % 2 == 0 { "control" } else { "premium" };
        events.push(
            json!({"id": format!("x-{user}"), "type": "exposure", "user": user,
            "experiment": "pricing-q4", "variant": variant, "ts": format!("{}T10:00:00Z", day(0))}),
        );
        if i % 3 == 0 {
            events.push(
                json!({"id": format!("p-{user}"), "type": "track", "user": user,
                "event": "purchase", "value": 1.0, "ts": format!("{}T11:00:00Z", day(0))}),
            );
        }
    }
    json!({ "events": events })
}

/// Sends a batch until the server acknowledges it, whatever happens in between;
/// counts the attempts that failed.
async fn send_until_acknowledged(
    http: &reqwest::Client,
    address: &Address,
    key: &str,
    body: &str,
    failed: &AtomicUsize,
) {
    loop {
        let base = address.read().unwrap().clone();
        let sent = http
            .post(format!("{base}/sdk/v1/events"))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().as_u16() == 202 => return,
            Ok(response) => assert!(
                response.status().is_server_error(),
                "a batch was refused: {}",
                response.status()
            ),
            Err(_) => {}
        }
        failed.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn setup(base: &str, admin: &str) {
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(admin)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    for metric in pricing_metrics() {
        assert!(post("/api/v1/metrics", metric)
            .await
            .unwrap()
            .status()
            .is_success());
    }
    let created = post("/api/v1/experiments", pricing_spec()).await.unwrap();
    assert!(created.status().is_success());
    let started = post("/api/v1/experiments/pricing-q4/start", json!({}))
        .await
        .unwrap();
    assert!(started.status().is_success());
}

fn start(db: &str) -> (std::process::Child, String) {
    let (process, port) = serve(db, &["--guard-interval", "0"]);
    (process, format!("http://127.0.0.1:{port}"))
}

async fn acknowledged_events_survive_repeated_sigkills(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = sluice::store::open(&db.url).await.unwrap();
    let admin = mint_key(&store, Role::Admin, "admin").await;
    let sdk = mint_key(&store, Role::Sdk, "app").await;
    drop(store);
    let (mut server, base) = start(&db.url);
    setup(&base, &admin).await;
    let address: Address = Arc::new(RwLock::new(base));
    let failed = Arc::new(AtomicUsize::new(0));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (address, sdk, failed) = (address.clone(), sdk.clone(), failed.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                for number in 0..BATCHES_PER_CLIENT {
                    let body = batch(client, number).to_string();
                    send_until_acknowledged(&http, &address, &sdk, &body, &failed).await;
                }
            })
        })
        .collect();

    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..300))).await;
        server.kill().unwrap();
        server.wait().unwrap();
        let (restarted, base) = start(&db.url);
        server = restarted;
        *address.write().unwrap() = base;
    }
    let still_sending = clients.iter().filter(|c| !c.is_finished()).count();
    assert!(
        still_sending > 0,
        "the clients were done before the last kill"
    );
    for client in clients {
        client.await.unwrap();
    }
    let failed = failed.load(Ordering::Relaxed);
    eprintln!("{KILLS} kills; {failed} attempts failed and were retried");
    assert!(failed >= KILLS, "the kills hit too few requests: {failed}");
    server.kill().unwrap();
    server.wait().unwrap();

    let store = sluice::store::open(&db.url).await.unwrap();
    let per_variant = (CLIENTS * BATCHES_PER_CLIENT * USERS_PER_BATCH / 2) as u64;
    let exposures = store
        .exposure_summary("pricing-q4", &UserFilter::EVERYONE)
        .await
        .unwrap();
    assert_eq!(
        exposures.users,
        vec![
            ("control".to_owned(), per_variant),
            ("premium".to_owned(), per_variant)
        ]
    );
    let totals = store
        .variant_totals("pricing-q4", "purchase", &UserFilter::EVERYONE)
        .await
        .unwrap();
    let buyers: u64 = totals.iter().map(|t| t.value_sum as u64).sum();
    let expected = CLIENTS * BATCHES_PER_CLIENT * USERS_PER_BATCH.div_ceil(3);
    assert_eq!(buyers, expected as u64, "{totals:?}");
}

on_both_backends!(acknowledged_events_survive_repeated_sigkills);
