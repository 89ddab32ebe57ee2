//! Report reads at scale: 1,000,000 exposed users in 3 variants with 3 metrics,
//! built once through the real ingestion path and kept between runs: on SQLite under
//! `target/bench-data/`, on PostgreSQL (`SLUICE_TEST_PG`, default the local server)
//! in a schema of its own. A second SQLite database has ten times the events for the
//! same users, to show the cost is flat in events. A third SQLite database holds 1M
//! users of an experiment whose metrics are all shaped (a D1 window, a cap, a ratio)
//! under CUPED, with a report of everyone and two filtered by first exposure (from a
//! time between whole hours, and from a date).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sluice::control::{experiment_report, ReportOptions};
use sluice::domain::{
    Actor, AuditAction, Event, EventKind, Experiment, Metric, MetricKind, NewAuditEntry,
};
use sluice::store::Store;
use tokio::runtime::Runtime;

#[path = "../tests/common/mod.rs"]
mod common;

const USERS: u64 = 1_000_000;
const VARIANTS: [&str; 3] = ["control", "cheaper", "pricier"];
const METRIC_EVENTS: [&str; 3] = ["purchase", "add_to_cart", "page_view"];

/// Deterministic events for `user`: one exposure and `events_per_user` tracks.
fn user_events(user: u64, events_per_user: u64, out: &mut Vec<Event>) {
    let name = format!("user-{user}");
    out.push(Event {
        id: format!("x{user}"),
        user: name.clone(),
        ts: 1_000,
        kind: EventKind::Exposure {
            experiment: "pricing".into(),
            variant: VARIANTS[(user % 3) as usize].into(),
            dimensions: None,
        },
    });
    // Roughly a third of users act at all; those who do, act `events_per_user` times.
    if user % 3 != 0 {
        return;
    }
    for k in 0..events_per_user {
        out.push(Event {
            id: format!("t{user}-{k}"),
            user: name.clone(),
            ts: 2_000 + k as i64,
            kind: EventKind::Track {
                event: METRIC_EVENTS[(k % 3) as usize].into(),
                value: ((user * 7 + k) % 100) as f64,
            },
        });
    }
}

/// Ingests every user's events into an empty store.
async fn fill(store: &dyn Store, events_per_user: u64) {
    let mut batch = Vec::new();
    for user in 0..USERS {
        user_events(user, events_per_user, &mut batch);
        if batch.len() >= 20_000 {
            store.ingest(&[batch.as_slice()]).await.unwrap();
            batch.clear();
        }
    }
    store.ingest(&[batch.as_slice()]).await.unwrap();
}

/// The SQLite database `name` under `target/bench-data/`, built by `build` the first
/// time and kept between runs.
async fn built_once<F: std::future::Future<Output = ()>>(
    name: &str,
    build: impl FnOnce(Arc<dyn Store>) -> F,
) -> Arc<dyn Store> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    let ready = dir.join(format!("{name}.ready"));
    if !ready.exists() {
        let _ = std::fs::remove_file(&path);
    }
    let store = sluice::store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    if !ready.exists() {
        eprintln!("building {} (once)…", path.display());
        build(store.clone()).await;
        std::fs::write(&ready, "").unwrap();
    }
    store
}

async fn sqlite_database(events_per_user: u64) -> Arc<dyn Store> {
    built_once(
        &format!("report-{USERS}-x{events_per_user}"),
        |store| async move { fill(store.as_ref(), events_per_user).await },
    )
    .await
}

async fn postgres_database(events_per_user: u64) -> Arc<dyn Store> {
    use sqlx::Connection;
    let schema = format!("sluice_bench_report_{USERS}_x{events_per_user}");
    let mut admin = sqlx::PgConnection::connect(&common::postgres_url())
        .await
        .unwrap();
    let ready: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1 || '_ready')",
    )
    .bind(&schema)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    if !ready {
        for statement in [
            format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            format!("CREATE SCHEMA {schema}"),
        ] {
            sqlx::query(&statement).execute(&mut admin).await.unwrap();
        }
    }
    let store = sluice::store::open(&common::url_in_schema(&schema))
        .await
        .unwrap();
    if !ready {
        eprintln!("building PostgreSQL schema {schema} (once)…");
        fill(store.as_ref(), events_per_user).await;
        sqlx::query(&format!("CREATE SCHEMA {schema}_ready"))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    store
}

/// Defines the experiment and its three metrics (once per database).
async fn define(store: &dyn Store) {
    if store.get_experiment("pricing").await.unwrap().is_some() {
        return;
    }
    for (event, kind) in
        METRIC_EVENTS
            .iter()
            .zip([MetricKind::Conversion, MetricKind::Mean, MetricKind::Count])
    {
        let metric = Metric::of_event(event, kind, event);
        store.insert_metric(&metric).await.unwrap();
    }
    let spec = serde_json::from_value(serde_json::json!({
        "key": "pricing",
        "variants": VARIANTS.iter().map(|v| serde_json::json!({"key": v, "weight": 1.0 / 3.0})).collect::<Vec<_>>(),
        "primary_metric": "purchase",
        "secondary_metrics": ["add_to_cart", "page_view"],
        "guardrails": [{"metric": "purchase", "max_drop": 0.1, "min_users": 1000, "action": "rollback"}]
    }))
    .unwrap();
    let experiment = Experiment::new_draft(spec, 0);
    let audit =
        NewAuditEntry::for_experiment(&Actor::Cli, AuditAction::Create, None, &experiment, 0);
    store.insert_experiment(&experiment, &audit).await.unwrap();
}

fn report(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let mut group = c.benchmark_group("report_1m_users");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    let databases: [(&str, u64); 3] = [("sqlite", 3), ("sqlite", 30), ("postgres", 3)];
    for (backend, events_per_user) in databases {
        let store = runtime.block_on(async {
            match backend {
                "sqlite" => sqlite_database(events_per_user).await,
                _ => postgres_database(events_per_user).await,
            }
        });
        runtime.block_on(define(store.as_ref()));
        let name = format!("{backend}_full_report_{events_per_user}_events_per_active_user");
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let report = experiment_report(store.as_ref(), "pricing", ReportOptions::default())
                    .await
                    .unwrap();
                assert_eq!(report.srm.users.len(), 3);
            })
        });
    }
    group.finish();
}

/// The shaped experiment's users: exposed over the ten days before `now`, each with
/// a purchase in the CUPED lookback, and (a third of them) a purchase and a visit on
/// the next day.
fn shaped_user_events(user: u64, now: i64, out: &mut Vec<Event>) {
    const HOUR: i64 = 3_600_000;
    let name = format!("user-{user}");
    let first = now - 240 * HOUR + (user as i64 % 200) * HOUR;
    out.push(Event {
        id: format!("x{user}"),
        user: name.clone(),
        ts: first,
        kind: EventKind::Exposure {
            experiment: "shaped".into(),
            variant: VARIANTS[(user % 3) as usize].into(),
            dimensions: None,
        },
    });
    let mut track = |id: &str, event: &str, value: f64, ts: i64| {
        out.push(Event {
            id: format!("{id}{user}"),
            user: name.clone(),
            ts,
            kind: EventKind::Track {
                event: event.into(),
                value,
            },
        });
    };
    track("pre", "purchase", (user % 120) as f64, first - 48 * HOUR);
    if user % 3 == 0 {
        track("buy", "purchase", ((user * 7) % 150) as f64, first + HOUR);
        track("open", "app_open", 1.0, first + 30 * HOUR);
    }
}

/// The shaped experiment and its metrics, defined before its users arrive (values
/// are kept per user from first exposure on).
async fn define_shaped(store: &dyn Store) {
    for metric in [
        serde_json::json!({"key": "d1", "kind": "conversion", "event": "app_open",
                           "window": {"delay_hours": 24, "hours": 24}}),
        serde_json::json!({"key": "revenue", "kind": "mean", "event": "purchase", "cap": 100}),
        serde_json::json!({"key": "orders", "kind": "count", "event": "purchase"}),
        serde_json::json!({"key": "per_order", "kind": "ratio",
                           "numerator": "revenue", "denominator": "orders"}),
    ] {
        let metric: Metric = serde_json::from_value(metric).unwrap();
        store.insert_metric(&metric).await.unwrap();
    }
    let spec = serde_json::from_value(serde_json::json!({
        "key": "shaped",
        "variants": VARIANTS.iter().map(|v| serde_json::json!({"key": v, "weight": 1.0 / 3.0})).collect::<Vec<_>>(),
        "primary_metric": "d1",
        "secondary_metrics": ["revenue", "orders", "per_order"],
        "guardrails": [{"metric": "revenue", "max_drop": 0.1, "min_users": 1000, "action": "alert"}],
        "cuped": {"lookback_days": 7}
    }))
    .unwrap();
    let experiment = Experiment::new_draft(spec, 0);
    let audit =
        NewAuditEntry::for_experiment(&Actor::Cli, AuditAction::Create, None, &experiment, 0);
    store.insert_experiment(&experiment, &audit).await.unwrap();
}

async fn shaped_database() -> Arc<dyn Store> {
    built_once(&format!("report-shaped-{USERS}"), |store| async move {
        define_shaped(store.as_ref()).await;
        let now = sluice::domain::now_millis();
        let started = std::time::Instant::now();
        let (mut batch, mut events) = (Vec::new(), 0);
        for user in 0..USERS {
            shaped_user_events(user, now, &mut batch);
            if batch.len() >= 20_000 {
                events += batch.len();
                store.ingest(&[batch.as_slice()]).await.unwrap();
                batch.clear();
            }
        }
        events += batch.len();
        store.ingest(&[batch.as_slice()]).await.unwrap();
        let seconds = started.elapsed().as_secs_f64();
        let rate = events as f64 / seconds;
        eprintln!("ingested {events} events in {seconds:.0} s ({rate:.0} events/s)");
    })
    .await
}

fn shaped_report(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let mut group = c.benchmark_group("shaped_report_1m_users");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    let store = runtime.block_on(shaped_database());
    group.bench_function("sqlite_full_report", |b| {
        b.to_async(&runtime).iter(|| async {
            let report = experiment_report(store.as_ref(), "shaped", ReportOptions::default())
                .await
                .unwrap();
            assert_eq!(report.metrics.len(), 4);
        })
    });
    // Users first exposed in the last five days, about half of them: from a time
    // between whole hours (read from per-user rows), and from a date (read from
    // the totals kept per hour of first exposure).
    let now = sluice::domain::now_millis();
    let since_time = sluice::domain::format_millis(now - 120 * 3_600_000 + 1_000);
    let since_date = sluice::domain::format_millis(now - 120 * 3_600_000 - now % 86_400_000);
    for (name, since) in [
        ("sqlite_filtered_report", since_time),
        ("sqlite_filtered_by_date_report", since_date),
    ] {
        let filter = sluice::store::UserFilter::parse(Some(&since), None, &[]).unwrap();
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let options = ReportOptions {
                    filter: filter.clone(),
                    ..ReportOptions::default()
                };
                let report = experiment_report(store.as_ref(), "shaped", options)
                    .await
                    .unwrap();
                assert_eq!(report.metrics.len(), 4);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, report, shaped_report);
criterion_main!(benches);
