//! Test helpers: a server on a fresh database of either backend, keys for every
//! role, and requests sent without a socket.
//!
//! PostgreSQL comes from `SLUICE_TEST_PG` or `DATABASE_URL` (default: the local
//! server, `postgres://postgres@127.0.0.1:5432/test`); each test gets a schema of its
//! own. When PostgreSQL is unreachable the PostgreSQL tests fail: they never skip.

#![allow(dead_code, unreachable_pub)]

pub mod counting;
pub mod process;
pub mod routes;
pub mod shop;

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::routing::post;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sluice::app::{Server, ServerOptions};
use sluice::control::{KeyRequest, Keys};
use sluice::domain::{Actor, Role};
use sluice::store::Store;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Runs each named `async fn(Backend)` as two tests, `NAME::sqlite` and
/// `NAME::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$test($crate::common::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$test($crate::common::Backend::Postgres).await
                }
            }
        )+
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database: a SQLite file in a temporary directory, or a new
/// PostgreSQL schema.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// The same database reached through another address (`host:port`), such as a
    /// proxy; only for PostgreSQL URLs.
    pub fn through(&self, address: &str) -> Self {
        let url = self.url.replacen(self.address(), address, 1);
        Self { url, _dir: None }
    }

    /// The `host:port` of a PostgreSQL URL.
    pub fn address(&self) -> &str {
        let start = self.url.find('@').expect("a URL with a user") + 1;
        let end = start + self.url[start..].find('/').expect("a URL with a database");
        &self.url[start..end]
    }

    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("sluice.db").display());
                Self {
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => Self {
                url: postgres_schema().await,
                _dir: None,
            },
        }
    }
}

/// The PostgreSQL server the tests use.
pub fn postgres_url() -> String {
    std::env::var("SLUICE_TEST_PG")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Creates a schema of its own for one test and returns a URL that selects it.
/// Schemas of earlier runs older than an hour are dropped on the way.
async fn postgres_schema() -> String {
    use sqlx::Connection;
    let server = postgres_url();
    let mut conn = sqlx::PgConnection::connect(&server)
        .await
        .unwrap_or_else(|err| {
            panic!("PostgreSQL tests need a server at {server} (set SLUICE_TEST_PG): {err}")
        });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let stale: Vec<String> = sqlx::query_scalar(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'sluice_t_%' \
         AND split_part(nspname, '_', 3)::bigint < $1",
    )
    .bind((now - 3600) as i64)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for schema in stale {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut conn)
            .await;
    }
    let schema = format!("sluice_t_{now}_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap();
    url_in_schema(&schema)
}

/// The URL of the test PostgreSQL server, with `schema` first on the search path.
pub fn url_in_schema(schema: &str) -> String {
    let server = postgres_url();
    let separator = if server.contains('?') { '&' } else { '?' };
    format!("{server}{separator}options[search_path]={schema}")
}

pub struct TestApp {
    pub router: Router,
    pub store: Arc<dyn Store>,
    pub server: Server,
    pub admin: String,
    pub editor: String,
    pub analyst: String,
    pub sdk: String,
    pub db: TestDb,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn on(backend: Backend) -> Self {
        Self::on_db(TestDb::new(backend).await).await
    }

    /// A server on a database prepared by the caller.
    pub async fn on_db(db: TestDb) -> Self {
        Self::on_db_with(db, test_options()).await
    }

    /// A server whose calls to the store are counted (see [`counting`]).
    pub async fn counted(backend: Backend) -> Self {
        let db = TestDb::new(backend).await;
        let inner = sluice::store::open(&db.url).await.expect("open store");
        let counted = counting::CountingStore::new(inner);
        Self::on_store(db, counted, test_options()).await
    }

    /// A server with these options on a database prepared by the caller.
    pub async fn on_db_with(db: TestDb, options: ServerOptions) -> Self {
        let store = sluice::store::open(&db.url).await.expect("open store");
        Self::on_store(db, store, options).await
    }

    /// A server with these options on `store`, opened on `db`.
    async fn on_store(db: TestDb, store: Arc<dyn Store>, options: ServerOptions) -> Self {
        let mut keys = Vec::new();
        for role in [Role::Admin, Role::Editor, Role::Analyst, Role::Sdk] {
            keys.push(mint_key(&store, role, &format!("{}-tester", role.as_str())).await);
        }
        let server = Server::build_with(store.clone(), options)
            .await
            .expect("build server");
        let [admin, editor, analyst, sdk] = <[String; 4]>::try_from(keys).unwrap();
        Self {
            router: server.router.clone(),
            store,
            server,
            admin,
            editor,
            analyst,
            sdk,
            db,
        }
    }

    pub async fn send(&self, method: Method, path: &str, key: Option<&str>, body: Body) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let request = request
            .header("content-type", "application/json")
            .body(body)
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.send(Method::GET, path, Some(key), Body::empty()).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(key), Body::from(body.to_string()))
            .await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(key), Body::from(body.to_string()))
            .await
    }

    /// Defines the `purchase` and `revenue` metrics and a 50/50 pricing experiment.
    pub async fn pricing_experiment(&self) -> Value {
        for metric in pricing_metrics() {
            let reply = self.post("/api/v1/metrics", &self.editor, metric).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        }
        let reply = self
            .post("/api/v1/experiments", &self.editor, pricing_spec())
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body
    }

    pub async fn start(&self, key: &str) {
        let reply = self
            .post(
                &format!("/api/v1/experiments/{key}/start"),
                &self.editor,
                json!({}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
}

/// The date `n` days after tomorrow (UTC), `YYYY-MM-DD`: traffic in tests is
/// stamped after the experiment started (an exposure counts from the start), a
/// few days ahead, within the skew test servers allow.
pub fn day(n: i64) -> String {
    let date = time::OffsetDateTime::now_utc().date() + time::Duration::days(1 + n);
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The options of test servers: events may be stamped a few days ahead, and chat
/// messages link to [`PUBLIC_URL`].
pub fn test_options() -> ServerOptions {
    ServerOptions {
        max_event_skew: TEST_EVENT_SKEW,
        public_url: sluice::control::PublicUrl::parse(PUBLIC_URL).unwrap(),
        ..ServerOptions::default()
    }
}

/// The `field` of each problem in an API error's `details`, in order.
pub fn problem_fields(body: &Value) -> Vec<String> {
    body["error"]["details"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|p| p["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Where test servers say their dashboard is, for links in chat messages.
pub const PUBLIC_URL: &str = "https://sluice.test";

/// How far ahead test servers let events be stamped.
pub const TEST_EVENT_SKEW: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Events for `users` users exposed to `variant` of pricing-q4, the first `buyers`
/// of whom buy for 10 an hour later.
pub fn traffic(variant: &str, users: usize, buyers: usize) -> Vec<Value> {
    let exposed_at = format!("{}T10:00:00Z", day(0));
    let bought_at = format!("{}T11:00:00Z", day(0));
    let mut events = Vec::new();
    for i in 0..users {
        let user = format!("{variant}-{i}");
        events.push(
            json!({"id": format!("x-{user}"), "type": "exposure", "user": user,
            "experiment": "pricing-q4", "variant": variant, "ts": exposed_at}),
        );
        if i < buyers {
            events.push(
                json!({"id": format!("p-{user}"), "type": "track", "user": user,
                "event": "purchase", "value": 10.0, "ts": bought_at}),
            );
        }
    }
    events
}

impl TestApp {
    /// Sends `(users, buyers)` of traffic to control and premium.
    pub async fn send_traffic(&self, control: (usize, usize), premium: (usize, usize)) {
        let mut events = traffic("control", control.0, control.1);
        events.extend(traffic("premium", premium.0, premium.1));
        let reply = self
            .post("/sdk/v1/events", &self.sdk, json!({"events": events}))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    }
}

/// The metrics [`pricing_spec`] uses.
pub fn pricing_metrics() -> [Value; 2] {
    [
        json!({"key": "purchase", "name": "Purchase", "kind": "conversion", "event": "purchase"}),
        json!({"key": "revenue", "name": "Revenue", "kind": "mean", "event": "purchase"}),
    ]
}

pub fn pricing_spec() -> Value {
    json!({
        "key": "pricing-q4", "name": "Premium price", "hypothesis": "A higher price keeps buyers",
        "variants": [{"key": "control", "weight": 0.5, "value": {"price": 199}},
                     {"key": "premium", "weight": 0.5, "value": {"price": 249}}],
        "coverage": 1.0,
        "condition": {"country": {"$in": ["CN", "US"]}},
        "primary_metric": "purchase", "secondary_metrics": ["revenue"],
        "guardrails": [{"metric": "purchase", "max_drop": 0.2, "min_users": 500, "action": "rollback"}],
        "status": "draft"
    })
}

/// One request a webhook receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The query string of the URL it was sent to.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub type Received = Arc<Mutex<Vec<Hit>>>;

/// A webhook receiver on a free port: its URL and what it received.
pub async fn webhook_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let sink = received.clone();
    let router = Router::new().route(
        "/hook",
        post(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let sink = sink.clone();
                async move {
                    let query = uri.query().map(str::to_owned);
                    sink.lock().unwrap().push(Hit {
                        query,
                        headers,
                        body,
                    });
                    StatusCode::OK
                }
            },
        ),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, received)
}

/// Mints a key the way `sluice key create` does; returns its secret.
pub async fn mint_key(store: &Arc<dyn Store>, role: Role, name: &str) -> String {
    let request = KeyRequest {
        role,
        name: Some(name.to_owned()),
        environment: None,
    };
    let (secret, _) = Keys::new(store.clone())
        .create(request, &Actor::Cli)
        .await
        .expect("create key");
    secret
}
