//! Fuzzing every write endpoint (issue #12). Each is sent mostly valid requests
//! with a few things wrong (a field dropped, set to the wrong type, null, a huge
//! or negative number, an empty, very long or unusual string, wrapped in an
//! array; an unknown field added; garbage path parameters), and some arbitrary
//! JSON and bytes that are not JSON at all. Whatever it gets, the server must
//! not panic nor answer 5xx, and a request it refuses (4xx) must change nothing a
//! caller can see: the lists of experiments, metrics, webhooks, keys and
//! environments, the audit logs, the ruleset's ETag and the running experiment's
//! report. A request it accepts may change things; the next case compares
//! against the state after it.
//!
//! SQLite is enough for the run in CI: parsing, validation and refusal happen
//! above the storage trait, and the other tests hold both backends to the same
//! answers. `SLUICE_FUZZ_BACKEND=postgres` runs it on PostgreSQL, whose text
//! cannot hold what SQLite's can (U+0000). Rate limits are off, or most cases
//! would only meet the limiter.
//!
//! Each endpoint gets `PROPTEST_CASES` cases (64 by default); a long run:
//! `PROPTEST_CASES=5000 cargo test --release --test fuzz`. A failure is saved
//! to `fuzz.proptest-regressions` beside this file and tried first next time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::http::Method;
use common::routes::declared_routes;
use common::{test_options, Backend, TestApp, TestDb};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestRunner;
use serde_json::{json, Map, Value};
use sluice::api::{Limits, RateLimits};
use sluice::app::ServerOptions;
use sluice::domain::Role;

/// SQLite, or PostgreSQL with `SLUICE_FUZZ_BACKEND=postgres`.
fn backend() -> Backend {
    match std::env::var("SLUICE_FUZZ_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    }
}

/// Cases per endpoint: `PROPTEST_CASES`, or 64.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        source_file: Some(file!()),
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------ targets

/// Stands for a new key (or id) in a valid body, different in each request, so
/// that valid requests create something instead of meeting a conflict.
const FRESH: &str = "{fresh}";

/// What a path parameter names.
#[derive(Debug, Clone, Copy)]
enum Param {
    Experiment,
    Action,
    ApiKey,
    Webhook,
    User,
}

/// A write route, who calls it, and a valid request to it.
struct Target {
    method: &'static str,
    route: &'static str,
    caller: Role,
    /// What each `{…}` in the route names, in order.
    params: &'static [Param],
    valid: fn() -> Value,
    /// Whether the report is compared too: assignment writes its exposures in
    /// the background, so an accepted assignment may still be changing the
    /// report when the next case is checked.
    compares_report: bool,
}

const ENVIRONMENT: Target = Target {
    method: "POST",
    route: "/api/v1/environments",
    caller: Role::Admin,
    params: &[],
    valid: || json!({"key": FRESH, "name": "Staging 2"}),
    compares_report: true,
};

const EXPERIMENT: Target = Target {
    method: "POST",
    route: "/api/v1/experiments",
    caller: Role::Editor,
    params: &[],
    valid: new_experiment,
    compares_report: true,
};

const EXPERIMENT_PATCH: Target = Target {
    method: "PATCH",
    route: "/api/v1/experiments/{key}",
    caller: Role::Editor,
    params: &[Param::Experiment],
    valid: || {
        json!({"name": "Renamed", "coverage": 0.5, "environments": ["staging"],
               "condition": {"country": {"$nin": ["FR"]}},
               "stages": [{"coverage": 0.5, "hold_seconds": 60}, {"coverage": 1.0}]})
    },
    compares_report: true,
};

const LIFECYCLE: Target = Target {
    method: "POST",
    route: "/api/v1/experiments/{key}/{action}",
    caller: Role::Editor,
    params: &[Param::Experiment, Param::Action],
    valid: || json!({"variant": "premium"}),
    compares_report: true,
};

const GUARD_CHECK: Target = Target {
    method: "POST",
    route: "/api/v1/experiments/{key}/guard/check",
    caller: Role::Editor,
    params: &[Param::Experiment],
    valid: || json!({}),
    compares_report: true,
};

const METRIC: Target = Target {
    method: "POST",
    route: "/api/v1/metrics",
    caller: Role::Editor,
    params: &[],
    valid: || {
        json!({"key": FRESH, "name": "Checkout", "kind": "mean", "event": "checkout",
               "higher_is_better": false})
    },
    compares_report: true,
};

const API_KEY: Target = Target {
    method: "POST",
    route: "/api/v1/keys",
    caller: Role::Admin,
    params: &[],
    valid: || json!({"role": "sdk", "name": FRESH, "environment": "staging"}),
    compares_report: true,
};

const API_KEY_REVOKE: Target = Target {
    method: "DELETE",
    route: "/api/v1/keys/{id}",
    caller: Role::Admin,
    params: &[Param::ApiKey],
    valid: || json!({}),
    compares_report: true,
};

const USER_ERASE: Target = Target {
    method: "DELETE",
    route: "/api/v1/users/{id}",
    caller: Role::Admin,
    params: &[Param::User],
    valid: || json!({}),
    compares_report: true,
};

const WEBHOOK: Target = Target {
    method: "POST",
    route: "/api/v1/webhooks",
    caller: Role::Admin,
    params: &[],
    valid: || {
        json!({"url": UNREACHABLE_HOOK, "secret": HOOK_SECRET, "events": ["*"],
               "format": "json"})
    },
    compares_report: true,
};

const WEBHOOK_DELETE: Target = Target {
    method: "DELETE",
    route: "/api/v1/webhooks/{id}",
    caller: Role::Admin,
    params: &[Param::Webhook],
    valid: || json!({}),
    compares_report: true,
};

const ASSIGN: Target = Target {
    method: "POST",
    route: "/sdk/v1/assign",
    caller: Role::Sdk,
    params: &[],
    valid: || {
        json!({"user": {"id": FRESH, "country": "CN", "age": 30},
               "experiments": ["pricing-q4"], "log_exposure": true})
    },
    compares_report: false,
};

const EVENTS: Target = Target {
    method: "POST",
    route: "/sdk/v1/events",
    caller: Role::Sdk,
    params: &[],
    valid: || {
        let at = format!("{}T10:00:00Z", common::day(0));
        json!({"events": [
            {"id": FRESH, "type": "exposure", "user": "u-fuzz", "experiment": "pricing-q4",
             "variant": "premium", "ts": at, "attributes": {"country": "CN"}},
            {"id": FRESH, "type": "track", "user": "u-fuzz", "event": "purchase",
             "value": 249.0, "ts": at}]})
    },
    compares_report: true,
};

const OFREP_BULK: Target = Target {
    method: "POST",
    route: "/ofrep/v1/evaluate/flags",
    caller: Role::Sdk,
    params: &[],
    valid: ofrep_context,
    compares_report: false,
};

const OFREP_FLAG: Target = Target {
    method: "POST",
    route: "/ofrep/v1/evaluate/flags/{key}",
    caller: Role::Sdk,
    params: &[Param::Experiment],
    valid: ofrep_context,
    compares_report: false,
};

const TARGETS: &[&Target] = &[
    &ENVIRONMENT,
    &EXPERIMENT,
    &EXPERIMENT_PATCH,
    &LIFECYCLE,
    &GUARD_CHECK,
    &METRIC,
    &API_KEY,
    &API_KEY_REVOKE,
    &USER_ERASE,
    &WEBHOOK,
    &WEBHOOK_DELETE,
    &ASSIGN,
    &EVENTS,
    &OFREP_BULK,
    &OFREP_FLAG,
];

/// Nothing listens there: deliveries fail in the background and change nothing
/// the snapshot reads.
const UNREACHABLE_HOOK: &str = "http://127.0.0.1:9/hook";
const HOOK_SECRET: &str = "fuzz-secret-0123456789";

/// Every field an experiment definition has.
fn new_experiment() -> Value {
    let mut spec = common::pricing_spec();
    let extra = json!({
        "key": FRESH, "seed": "seed-1", "hash_attribute": "id", "hash_version": 2,
        "namespace": {"name": "pricing", "range": [0.0, 0.5]},
        "environments": ["staging"], "dimensions": ["country"],
        "stages": [{"coverage": 0.1, "hold_seconds": 3600}, {"coverage": 1.0}],
        "alpha": 0.05, "sequential_tuning": 5000.0, "report_after_hours": 48.0
    });
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    spec
}

fn ofrep_context() -> Value {
    json!({"context": {"targetingKey": FRESH, "country": "CN", "age": 30}})
}

// --------------------------------------------------------------- the server

/// A server with two experiments (pricing-q4 running with some traffic,
/// checkout-copy a draft), a second environment, a webhook and two keys to
/// revoke.
struct Fixture {
    app: TestApp,
    api_keys: Vec<String>,
    webhooks: Vec<String>,
    /// The ids of the keys the test itself calls with: never revoked.
    own_keys: Vec<i64>,
    fresh: AtomicU64,
}

const EXPERIMENTS: [&str; 2] = ["pricing-q4", "checkout-copy"];
const ACTIONS: [&str; 6] = ["start", "pause", "resume", "rollback", "ship", "stop"];
const USERS: [&str; 3] = ["control-0", "premium-1", "nobody"];

impl Fixture {
    async fn new() -> Self {
        let app = TestApp::on_db_with(TestDb::new(backend()).await, unlimited()).await;
        let own_keys = ids(&app.get("/api/v1/keys", &app.admin).await.body);
        app.pricing_experiment().await;
        app.start("pricing-q4").await;
        app.send_traffic((20, 4), (20, 6)).await;
        let mut draft = common::pricing_spec();
        draft["key"] = json!("checkout-copy");
        create(&app, "/api/v1/experiments", &app.editor, draft).await;
        let staging = json!({"key": "staging", "name": "Staging"});
        create(&app, "/api/v1/environments", &app.admin, staging).await;
        let mut api_keys = Vec::new();
        for name in ["leaver-1", "leaver-2"] {
            let key = json!({"role": "editor", "name": name});
            let created = create(&app, "/api/v1/keys", &app.admin, key).await;
            api_keys.push(created["id"].to_string());
        }
        let hook = json!({"url": UNREACHABLE_HOOK, "secret": HOOK_SECRET, "events": ["*"]});
        let created = create(&app, "/api/v1/webhooks", &app.admin, hook).await;
        Self {
            app,
            api_keys,
            webhooks: vec![created["id"].to_string()],
            own_keys,
            fresh: AtomicU64::new(0),
        }
    }

    /// The values the fixture has for a path parameter.
    fn known(&self, param: Param) -> Vec<String> {
        let names: &[&str] = match param {
            Param::Experiment => &EXPERIMENTS,
            Param::Action => &ACTIONS,
            Param::User => &USERS,
            Param::ApiKey => return self.api_keys.clone(),
            Param::Webhook => return self.webhooks.clone(),
        };
        names.iter().map(|name| name.to_string()).collect()
    }

    /// Replaces each [`FRESH`] in `body` with a key never used before.
    fn fill_fresh(&self, mut body: Value) -> Value {
        visit_strings(&mut body, &mut |text| {
            if text == FRESH {
                *text = format!("fuzz-{}", self.fresh.fetch_add(1, Ordering::Relaxed));
            }
        });
        body
    }

    fn key(&self, role: Role) -> &str {
        match role {
            Role::Admin => &self.app.admin,
            Role::Editor => &self.app.editor,
            Role::Analyst => &self.app.analyst,
            Role::Sdk => &self.app.sdk,
        }
    }
}

/// The test servers' options, without rate limits.
fn unlimited() -> ServerOptions {
    ServerOptions {
        limits: Limits {
            rates: RateLimits::OFF,
            ..Limits::default()
        },
        ..test_options()
    }
}

async fn create(app: &TestApp, path: &str, key: &str, body: Value) -> Value {
    let reply = app.post(path, key, body).await;
    assert!(reply.status.is_success(), "{path}: {:?}", reply.body);
    reply.body
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect()
}

fn visit_strings(value: &mut Value, visit: &mut impl FnMut(&mut String)) {
    match value {
        Value::String(text) => visit(text),
        Value::Array(items) => items.iter_mut().for_each(|v| visit_strings(v, visit)),
        Value::Object(fields) => fields.values_mut().for_each(|v| visit_strings(v, visit)),
        _ => {}
    }
}

// ---------------------------------------------------------------- snapshots

/// What a caller can see of the server's state, part by part.
struct Snapshot(Vec<(String, Value)>);

/// The lists and audit logs a snapshot reads (as admin).
const OBSERVED: &[&str] = &[
    "/api/v1/experiments",
    "/api/v1/metrics",
    "/api/v1/webhooks",
    "/api/v1/keys",
    "/api/v1/environments",
    "/api/v1/audit",
    "/api/v1/experiments/pricing-q4/audit",
    "/api/v1/experiments/checkout-copy/audit",
];

impl Snapshot {
    async fn take(app: &TestApp, report: bool) -> Self {
        let mut parts = Vec::new();
        for path in OBSERVED {
            parts.push((path.to_string(), read(app, path, &app.admin).await.body));
        }
        let ruleset = read(app, "/sdk/v1/ruleset", &app.sdk).await;
        let etag = ruleset.headers["etag"].to_str().unwrap();
        parts.push(("the ruleset's ETag".to_owned(), json!(etag)));
        if report {
            let path = "/api/v1/experiments/pricing-q4/report";
            let mut report = read(app, path, &app.admin).await.body;
            report.as_object_mut().unwrap().remove("generated_at");
            parts.push((path.to_owned(), report));
        }
        Self(parts)
    }

    /// The parts that differ from `earlier`, with both versions.
    fn changes_since(&self, earlier: &Snapshot) -> Vec<String> {
        self.0
            .iter()
            .zip(&earlier.0)
            .filter(|((_, now), (_, then))| now != then)
            .map(|((part, now), (_, then))| format!("{part}\n  before: {then}\n  after:  {now}"))
            .collect()
    }
}

async fn read(app: &TestApp, path: &str, key: &str) -> common::Reply {
    let reply = app.get(path, key).await;
    assert!(reply.status.is_success(), "GET {path}: {:?}", reply.body);
    reply
}

// ---------------------------------------------------------------- requests

/// One generated request: the path parameters (percent-encoded) and the body.
#[derive(Debug, Clone)]
struct Case {
    params: Vec<String>,
    body: Payload,
}

#[derive(Debug, Clone)]
enum Payload {
    Json(Value),
    Raw(Bytes),
}

/// Field names the bodies have, and some they do not.
const FIELDS: &[&str] = &[
    "key",
    "name",
    "kind",
    "event",
    "events",
    "variants",
    "weight",
    "value",
    "coverage",
    "condition",
    "stages",
    "status",
    "role",
    "environment",
    "environments",
    "user",
    "experiments",
    "context",
    "targetingKey",
    "variant",
    "id",
    "type",
    "ts",
    "url",
    "secret",
    "format",
    "unknown_field",
    "__proto__",
    "$where",
    "",
];

/// Values that break assumptions: wrong types, edge numbers, strings that are
/// empty, long, or unusual, and nesting deeper than a parser allows.
fn odd_value() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => prop::sample::select(vec![
            Value::Null,
            json!(true),
            json!(0),
            json!(-1),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1e308),
            json!(-1e308),
            json!(5e-324),
            json!(0.5),
            json!(""),
            json!(" "),
            json!([]),
            json!({}),
            json!([null]),
            json!({"$gt": 1}),
            json!("\u{0}"),
            json!("😀🎉"),
            json!("\u{202e}evil"),
            json!("ユーザー"),
            json!("e\u{301}"),
            json!("null"),
            json!("1"),
            json!("2024-13-45T99:99:99Z"),
            json!("9999-12-31T23:59:59Z"),
            json!("-0001-01-01T00:00:00Z"),
            json!("javascript:alert(1)"),
            json!("http://"),
            json!("'; DROP TABLE experiments; --"),
            json!("draft"),
            json!("running"),
            json!("admin"),
            json!("*"),
        ]),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(Value::from),
        2 => any::<String>().prop_map(Value::String),
        1 => (1usize..70_000).prop_map(|n| Value::String("x".repeat(n))),
        1 => (1usize..200).prop_map(|depth| (0..depth).fold(json!(1), |v, _| json!([v]))),
    ]
    .boxed()
}

/// Arbitrary JSON: objects with the bodies' field names and others, odd leaves.
fn any_json() -> BoxedStrategy<Value> {
    let field = prop_oneof![
        3 => prop::sample::select(FIELDS).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    odd_value()
        .prop_recursive(4, 32, 5, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((field.clone(), inner), 0..5)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
        .boxed()
}

/// One change to a JSON value at a place in it.
#[derive(Debug, Clone)]
enum Mutation {
    /// Drops the field or element (the whole body, at the top).
    Drop,
    /// Replaces it.
    Set(Value),
    /// Wraps it in an array.
    Wrap,
    /// Adds a field to it, or makes it an object with only that field.
    Add(String, Value),
    /// Appends characters a parser or a database may choke on to a string,
    /// which stays otherwise valid, so that they reach the store.
    Taint(&'static str),
}

const TAINTS: &[&str] = &[
    "\u{0}",
    "\u{7f}",
    "\u{feff}",
    "\u{202e}",
    "\u{fffd}",
    "\u{10ffff}",
    "😀",
    "e\u{301}",
    "\r\n",
    "\\",
    "\"",
    "'",
    "%00",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    let field = prop_oneof![
        3 => prop::sample::select(FIELDS).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    prop_oneof![
        2 => Just(Mutation::Drop),
        4 => odd_value().prop_map(Mutation::Set),
        1 => any_json().prop_map(Mutation::Set),
        1 => Just(Mutation::Wrap),
        2 => (field, odd_value()).prop_map(|(f, v)| Mutation::Add(f, v)),
        3 => prop::sample::select(TAINTS).prop_map(Mutation::Taint),
    ]
}

/// The JSON pointers of every value in `value`, itself included.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                let token = name.replace('~', "~0").replace('/', "~1");
                pointers(item, format!("{at}/{token}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn apply(body: &mut Value, place: &Index, mutation: Mutation) {
    let mut all = Vec::new();
    pointers(body, String::new(), &mut all);
    if let Mutation::Taint(_) = mutation {
        all.retain(|p| body.pointer(p).is_some_and(Value::is_string));
    }
    if all.is_empty() {
        return;
    }
    let pointer = place.get(&all);
    if let Mutation::Drop = mutation {
        return remove(body, pointer);
    }
    let target = body.pointer_mut(pointer).unwrap();
    match mutation {
        Mutation::Drop => {}
        Mutation::Set(value) => *target = value,
        Mutation::Wrap => *target = json!([target.take()]),
        Mutation::Add(field, value) => match target {
            Value::Object(fields) => {
                fields.insert(field, value);
            }
            other => *other = Value::Object(Map::from_iter([(field, value)])),
        },
        Mutation::Taint(tail) => {
            if let Value::String(text) = target {
                text.push_str(tail);
            }
        }
    }
}

/// Removes the value at `pointer` from its object or array; the top-level
/// value becomes `null`.
fn remove(body: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        *body = Value::Null;
        return;
    };
    match body.pointer_mut(parent) {
        Some(Value::Object(fields)) => {
            fields.remove(&last.replace("~1", "/").replace("~0", "~"));
        }
        Some(Value::Array(items)) => {
            items.remove(last.parse::<usize>().unwrap());
        }
        _ => {}
    }
}

/// The valid body with up to four mutations.
fn mutated(valid: Value) -> impl Strategy<Value = Value> {
    prop::collection::vec((any::<Index>(), mutation()), 0..=4).prop_map(move |changes| {
        let mut body = valid.clone();
        for (place, change) in changes {
            apply(&mut body, &place, change);
        }
        body
    })
}

/// Bytes that are not JSON, or not only JSON: noise, the valid body cut short
/// or followed by more, bad escapes and encodings.
fn not_json(valid: Value) -> impl Strategy<Value = Bytes> {
    let text = valid.to_string();
    let whole = Bytes::from(text.clone());
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from),
        any::<Index>().prop_map(move |i| whole.slice(..i.index(whole.len()))),
        prop::sample::select(vec!["}", " x", ",{}", "\u{0}", "[]"])
            .prop_map(move |tail| Bytes::from(format!("{text}{tail}"))),
        prop::sample::select(vec![
            &b""[..],
            b"{",
            b"nul",
            b"NaN",
            b"1e999",
            b"{\"key\": 1e999}",
            b"\"\\ud800\"",
            b"{\"key\": \"\\ud800\"}",
            b"{\"key\": \"\xff\xfe\"}",
            b"\xef\xbb\xbf{}",
            b"{\"a\": 1,}",
            b"{\"key\": \"a\", \"key\": \"b\"}",
        ])
        .prop_map(Bytes::from_static),
    ]
}

fn payload(valid: Value) -> impl Strategy<Value = Payload> {
    prop_oneof![
        8 => mutated(valid.clone()).prop_map(Payload::Json),
        1 => any_json().prop_map(Payload::Json),
        1 => not_json(valid).prop_map(Payload::Raw),
    ]
}

const ODD_PARAMS: &[&str] = &[
    "",
    ".",
    "..",
    "%",
    "+5",
    "0",
    "-1",
    "9223372036854775808",
    "a\u{0}b",
];

/// A path parameter, percent-encoded: mostly one the fixture has, else
/// anything (but never the id of a key the test calls with), or an encoding
/// that is not UTF-8.
fn param(known: Vec<String>, own_keys: Vec<i64>) -> impl Strategy<Value = String> {
    let text = prop_oneof![
        4 => prop::sample::select(known),
        1 => any::<String>(),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => prop::sample::select(ODD_PARAMS).prop_map(str::to_owned),
    ]
    .prop_filter("a key the test calls with", move |text| {
        text.parse::<i64>()
            .map_or(true, |id| !own_keys.contains(&id))
    });
    prop_oneof![
        8 => text.prop_map(|text| encode(&text)),
        1 => prop::sample::select(vec!["%FF", "%C3%28", "%ED%A0%80"]).prop_map(str::to_owned),
    ]
}

fn cases(target: &Target, fixture: &Fixture) -> impl Strategy<Value = Case> {
    let params: Vec<_> = target
        .params
        .iter()
        .map(|p| param(fixture.known(*p), fixture.own_keys.clone()))
        .collect();
    (params, payload((target.valid)())).prop_map(|(params, body)| Case { params, body })
}

/// `route` with its `{…}` replaced by `params`.
fn path(route: &str, params: &[String]) -> String {
    let mut out = String::new();
    let mut rest = route;
    for param in params {
        let (head, tail) = rest.split_once('{').unwrap();
        out.push_str(head);
        out.push_str(param);
        rest = tail.split_once('}').unwrap().1;
    }
    out + rest
}

fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ------------------------------------------------------------------- the fuzz

/// Sends one case; fails on a 5xx, or on a 4xx after which the state differs.
/// `last` is the state after the previous case when nothing changed it since.
async fn check(
    fixture: &Fixture,
    target: &Target,
    case: Case,
    last: &RefCell<Option<Snapshot>>,
) -> Result<(), TestCaseError> {
    let app = &fixture.app;
    let before = match last.take() {
        Some(snapshot) => snapshot,
        None => Snapshot::take(app, target.compares_report).await,
    };
    let path = path(target.route, &case.params);
    let body = match case.body {
        Payload::Json(value) => Bytes::from(fixture.fill_fresh(value).to_string()),
        Payload::Raw(bytes) => bytes,
    };
    let method = Method::from_bytes(target.method.as_bytes()).unwrap();
    let key = Some(fixture.key(target.caller));
    let reply = app.send(method, &path, key, Body::from(body)).await;
    let status = reply.status;
    let request = format!("{} {path}", target.method);
    prop_assert!(
        !status.is_server_error(),
        "{request} answered {status}: {}",
        reply.body
    );
    if status.is_client_error() {
        let after = Snapshot::take(app, target.compares_report).await;
        let changes = after.changes_since(&before);
        prop_assert!(
            changes.is_empty(),
            "{request} answered {status} ({}) but changed:\n{}",
            reply.body,
            changes.join("\n")
        );
        last.replace(Some(after));
    }
    Ok(())
}

fn fuzz(target: &Target) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fixture = runtime.block_on(Fixture::new());
    let strategy = cases(target, &fixture);
    let last = RefCell::new(None);
    let mut runner = TestRunner::new(config());
    let outcome = runner.run(&strategy, |case| {
        runtime.block_on(check(&fixture, target, case, &last))
    });
    if let Err(failure) = outcome {
        panic!("{} {}: {failure}", target.method, target.route);
    }
}

#[test]
fn every_write_route_is_fuzzed() {
    let mut writes: Vec<_> = declared_routes()
        .into_iter()
        .filter(|(method, _)| method != "GET")
        .collect();
    writes.sort();
    let mut fuzzed: Vec<_> = TARGETS
        .iter()
        .map(|t| (t.method.to_owned(), t.route.to_owned()))
        .collect();
    fuzzed.sort();
    assert_eq!(writes, fuzzed);
}

#[test]
fn environment_create() {
    fuzz(&ENVIRONMENT);
}

#[test]
fn experiment_create() {
    fuzz(&EXPERIMENT);
}

#[test]
fn experiment_patch() {
    fuzz(&EXPERIMENT_PATCH);
}

#[test]
fn experiment_lifecycle_actions() {
    fuzz(&LIFECYCLE);
}

#[test]
fn experiment_guard_check() {
    fuzz(&GUARD_CHECK);
}

#[test]
fn metric_create() {
    fuzz(&METRIC);
}

#[test]
fn api_key_create() {
    fuzz(&API_KEY);
}

#[test]
fn api_key_revoke() {
    fuzz(&API_KEY_REVOKE);
}

#[test]
fn user_erase() {
    fuzz(&USER_ERASE);
}

#[test]
fn webhook_create() {
    fuzz(&WEBHOOK);
}

#[test]
fn webhook_delete() {
    fuzz(&WEBHOOK_DELETE);
}

#[test]
fn sdk_assign() {
    fuzz(&ASSIGN);
}

#[test]
fn sdk_events() {
    fuzz(&EVENTS);
}

#[test]
fn ofrep_bulk_evaluation() {
    fuzz(&OFREP_BULK);
}

#[test]
fn ofrep_flag_evaluation() {
    fuzz(&OFREP_FLAG);
}
