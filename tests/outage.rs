//! PostgreSQL goes away and comes back, behind a TCP proxy the test controls: while
//! it is away, writes and event batches answer 503 and store nothing, SDKs keep
//! their ruleset; once it is back, the same server works again without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use common::{traffic, Backend, TestApp, TestDb};

/// Forwards connections to PostgreSQL until cut; while cut, refuses new ones.
struct Proxy {
    address: String,
    cut: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (cut_flag, link_list) = (cut.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if cut_flag.load(Ordering::SeqCst) {
                    continue;
                }
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                link_list.lock().unwrap().push(link);
            }
        });
        Self {
            address,
            cut,
            links,
        }
    }

    /// The database goes away: open connections drop, new ones are refused.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_goes_away_and_comes_back() {
    let db = TestDb::new(Backend::Postgres).await;
    let proxy = Proxy::start(db.address().to_owned()).await;
    let app = TestApp::on_db(db.through(&proxy.address)).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let batch = json!({"events": traffic("control", 10, 3)});
    let ruleset = app.get("/sdk/v1/ruleset", &app.sdk).await;
    assert_eq!(ruleset.status, StatusCode::OK);

    proxy.cut();
    let refused = app.post("/sdk/v1/events", &app.sdk, batch.clone()).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        refused.body
    );
    assert_eq!(refused.body["error"]["code"], "database_unavailable");
    let paused = app
        .post(
            "/api/v1/experiments/pricing-q4/pause",
            &app.editor,
            json!({}),
        )
        .await;
    assert_eq!(
        paused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        paused.body
    );
    let ruleset = app.get("/sdk/v1/ruleset", &app.sdk).await;
    assert_eq!(ruleset.status, StatusCode::OK, "SDKs keep their ruleset");
    let unknown = app.get("/sdk/v1/ruleset", "sk_sdk_never_seen").await;
    assert_eq!(unknown.status, StatusCode::SERVICE_UNAVAILABLE);

    // Back: the same server works again, and the retried batch is stored once.
    proxy.restore();
    let accepted = app.post("/sdk/v1/events", &app.sdk, batch.clone()).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{:?}", accepted.body);
    assert_eq!(accepted.body["accepted"], 13, "{:?}", accepted.body);
    let report = app
        .get("/api/v1/experiments/pricing-q4/report", &app.analyst)
        .await;
    assert_eq!(report.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/experiments/pricing-q4", &app.analyst)
            .await
            .body["status"],
        "running"
    );
}
