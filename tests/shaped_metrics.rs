//! Windowed, capped and ratio metrics and CUPED, end to end: events ingested over
//! several batches (a late exposure among them), then the report's sufficient
//! statistics checked against values worked out here from the events sent, and the
//! comparisons against the stats engine on those values.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use axum::http::StatusCode;
use common::{Backend, TestApp, TestDb};
use serde_json::{json, Value};
use sluice::control::{experiment_report, ReportOptions};
use sluice::domain::{
    now_millis, Actor, AuditAction, AuditSubject, Event, EventKind, Experiment, Metric, Millis,
    NewAuditEntry,
};
use sluice::stats::{compare_cuped, compare_ratio, CupedArm, MetricType, PairedMoments};
use sluice::stats::{RatioArm, Settings};
use sluice::store::Store;

const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;
const CAP: f64 = 100.0;
const LOOKBACK_DAYS: i64 = 7;

/// One user's events: first exposure, purchases (value, ts) and app opens (ts).
#[derive(Clone)]
struct Shopper {
    id: String,
    variant: &'static str,
    /// Kept at exposure.
    country: &'static str,
    first_ts: Millis,
    purchases: Vec<(f64, Millis)>,
    opens: Vec<Millis>,
}

fn shoppers(now: Millis) -> Vec<Shopper> {
    (0..600)
        .map(|i: i64| {
            let variant = if i % 2 == 0 { "control" } else { "premium" };
            // Two thirds exposed five days ago (their D1 window has closed), a third
            // an hour ago (still open).
            let first_ts = if i % 3 == 2 {
                now - HOUR - i * 1000
            } else {
                now - 5 * DAY + i * 1000
            };
            let spend = ((i * 37) % 180) as f64 + if variant == "premium" { 5.0 } else { 0.0 };
            let mut purchases = vec![
                // Before exposure: inside the lookback, and before it.
                (((i * 13) % 90) as f64, first_ts - 2 * DAY),
                (50.0, first_ts - (LOOKBACK_DAYS + 1) * DAY),
            ];
            if i % 4 != 0 {
                purchases.push((spend, first_ts + HOUR));
            }
            if i % 5 == 0 {
                purchases.push((30.0, first_ts + 2 * HOUR));
            }
            // D1 (day two after exposure): just inside, just before and at its end.
            let opens = match i % 4 {
                0 => vec![first_ts + DAY],
                1 => vec![first_ts + DAY - 1],
                2 => vec![first_ts + 2 * DAY],
                _ => vec![first_ts + DAY + 5 * HOUR, first_ts + 3 * HOUR],
            };
            Shopper {
                id: format!("s{i}"),
                variant,
                country: if i % 3 == 0 { "CN" } else { "US" },
                first_ts,
                purchases,
                opens,
            }
        })
        .collect()
}

/// What one user contributes to each metric, worked out from their events.
struct Values {
    closed: bool,
    d1: (f64, f64),
    revenue: (f64, f64),
    orders: (f64, f64),
}

fn values(s: &Shopper, now: Millis) -> Values {
    let lookback = |ts: Millis| (s.first_ts - LOOKBACK_DAYS * DAY..s.first_ts).contains(&ts);
    let after = |ts: Millis| ts >= s.first_ts;
    let sum = |pick: &dyn Fn(Millis) -> bool| -> (f64, f64) {
        let picked: Vec<f64> = s
            .purchases
            .iter()
            .filter(|(_, ts)| pick(*ts))
            .map(|(v, _)| *v)
            .collect();
        (picked.iter().sum::<f64>().min(CAP), picked.len() as f64)
    };
    let (revenue, orders) = sum(&after);
    let (pre_revenue, pre_orders) = sum(&lookback);
    let d1_window = s.first_ts + DAY..s.first_ts + 2 * DAY;
    let opened = s.opens.iter().any(|ts| d1_window.contains(ts));
    Values {
        closed: s.first_ts + 2 * DAY <= now - now.rem_euclid(HOUR),
        d1: (f64::from(u8::from(opened)), 0.0),
        revenue: (revenue, pre_revenue),
        orders: (orders, pre_orders),
    }
}

fn moments(pairs: &[(f64, f64)]) -> PairedMoments {
    PairedMoments::from_pairs(pairs)
}

fn events_of(shoppers: &[Shopper]) -> Vec<Event> {
    let mut events = Vec::new();
    for s in shoppers {
        events.push(Event {
            id: format!("x-{}", s.id),
            user: s.id.clone(),
            ts: s.first_ts,
            kind: EventKind::Exposure {
                experiment: "checkout".into(),
                variant: s.variant.into(),
                dimensions: Some(json!({"country": s.country}).to_string()),
            },
        });
        for (n, (value, ts)) in s.purchases.iter().enumerate() {
            events.push(track(
                &format!("p{n}-{}", s.id),
                &s.id,
                "purchase",
                *value,
                *ts,
            ));
        }
        for (n, ts) in s.opens.iter().enumerate() {
            events.push(track(
                &format!("o{n}-{}", s.id),
                &s.id,
                "app_open",
                1.0,
                *ts,
            ));
        }
    }
    events
}

fn track(id: &str, user: &str, event: &str, value: f64, ts: Millis) -> Event {
    Event {
        id: id.into(),
        user: user.into(),
        ts,
        kind: EventKind::Track {
            event: event.into(),
            value,
        },
    }
}

/// The checkout experiment as [`define`] makes it: every shaped metric, CUPED.
fn checkout_spec() -> sluice::domain::ExperimentSpec {
    serde_json::from_value(json!({
        "key": "checkout",
        "variants": [{"key": "control", "weight": 0.5}, {"key": "premium", "weight": 0.5}],
        "primary_metric": "d1",
        "secondary_metrics": ["revenue", "orders", "per_order"],
        "guardrails": [{"metric": "revenue", "max_drop": 0.1, "min_users": 10, "action": "alert"}],
        "cuped": {"lookback_days": LOOKBACK_DAYS},
        "dimensions": ["country"]
    }))
    .unwrap()
}

async fn define(store: &dyn Store) {
    define_metrics(store).await;
    insert(store, checkout_spec()).await;
}

async fn insert(store: &dyn Store, spec: sluice::domain::ExperimentSpec) {
    let experiment = Experiment::new_draft(spec, 0);
    let audit =
        NewAuditEntry::for_experiment(&Actor::Cli, AuditAction::Create, None, &experiment, 0);
    store.insert_experiment(&experiment, &audit).await.unwrap();
}

async fn define_metrics(store: &dyn Store) {
    let window = json!({"delay_hours": 24, "hours": 24});
    for metric in [
        json!({"key": "d1", "kind": "conversion", "event": "app_open", "window": window}),
        json!({"key": "revenue", "kind": "mean", "event": "purchase", "cap": CAP}),
        json!({"key": "orders", "kind": "count", "event": "purchase"}),
        json!({"key": "per_order", "kind": "ratio", "numerator": "revenue", "denominator": "orders"}),
    ] {
        let metric: Metric = serde_json::from_value(metric).unwrap();
        metric.validate().unwrap();
        store.insert_metric(&metric).await.unwrap();
    }
}

fn metric<'r>(report: &'r Value, key: &str) -> &'r Value {
    report["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == key)
        .unwrap()
}

fn close(label: &str, got: &Value, want: Option<f64>) {
    let want = want.unwrap();
    let got = got.as_f64().unwrap_or_else(|| panic!("{label}: {got}"));
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1e-9),
        "{label}: {got} vs {want}"
    );
}

/// Per variant, the closed users' pairs and the number pending, of one metric.
fn expected(
    shoppers: &[Shopper],
    now: Millis,
    pick: impl Fn(&Values) -> (f64, f64),
    windowed: bool,
) -> [(Vec<(f64, f64)>, u64); 2] {
    ["control", "premium"].map(|variant| {
        let mut pairs = Vec::new();
        let mut pending = 0;
        for s in shoppers.iter().filter(|s| s.variant == variant) {
            let v = values(s, now);
            if windowed && !v.closed {
                pending += 1;
            } else {
                pairs.push(pick(&v));
            }
        }
        (pairs, pending)
    })
}

fn check_rows(report: &Value, key: &str, want: &[(Vec<(f64, f64)>, u64); 2]) {
    let rows = metric(report, key)["variants"].as_array().unwrap();
    for (row, (pairs, pending)) in rows.iter().zip(want) {
        let m = moments(pairs);
        assert_eq!(row["users"], m.n, "{key} users");
        assert_eq!(row["users_pending"], *pending, "{key} pending");
        close(&format!("{key} sum"), &row["sum"], Some(m.sum_x));
        close(
            &format!("{key} sum_squares"),
            &row["sum_squares"],
            Some(m.sum_squares_x),
        );
    }
}

async fn shaped_metrics_count_what_their_definitions_say(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = sluice::store::open(&db.url).await.unwrap();
    define(store.as_ref()).await;
    let now = now_millis();
    let mut people = shoppers(now);
    let events = events_of(&people);
    for batch in events.chunks(700) {
        store.ingest(&[batch]).await.unwrap();
    }
    // A late exposure: s0's first exposure turns out a day earlier, which moves its
    // D1 window and its lookback (a rebuild from the stored events).
    let late = Event {
        id: "x-late-s0".into(),
        user: "s0".into(),
        ts: people[0].first_ts - DAY,
        kind: EventKind::Exposure {
            experiment: "checkout".into(),
            variant: "control".into(),
            dimensions: None,
        },
    };
    store.ingest(&[&[late]]).await.unwrap();
    people[0].first_ts -= DAY;

    let report = experiment_report(store.as_ref(), "checkout", ReportOptions::default())
        .await
        .unwrap();
    let report = serde_json::to_value(&report).unwrap();

    let d1 = expected(&people, now, |v| v.d1, true);
    let revenue = expected(&people, now, |v| v.revenue, false);
    let orders = expected(&people, now, |v| v.orders, false);
    check_rows(&report, "d1", &d1);
    check_rows(&report, "revenue", &revenue);
    check_rows(&report, "orders", &orders);
    assert!(d1[0].1 > 0 && d1[0].0.iter().any(|p| p.0 == 1.0));

    // CUPED on revenue: the headline figures are the engine's adjusted ones.
    let arm = |pairs: &[(f64, f64)]| CupedArm::new(MetricType::Mean, moments(pairs));
    let want = compare_cuped(arm(&revenue[0].0), arm(&revenue[1].0), &Settings::default());
    let comparison = &metric(&report, "revenue")["comparisons"][0];
    close(
        "revenue rel_effect",
        &comparison["rel_effect"],
        want.comparison.rel_effect,
    );
    close(
        "revenue p_value",
        &comparison["p_value"],
        want.comparison.p_value,
    );
    close(
        "revenue seq_p_value",
        &comparison["seq_p_value"],
        want.comparison.seq_p_value,
    );
    close("revenue theta", &comparison["cuped"]["theta"], want.theta);
    close(
        "revenue variance_reduction",
        &comparison["cuped"]["variance_reduction"],
        want.variance_reduction,
    );
    assert!(want.variance_reduction.unwrap() > 0.0);

    // The ratio pairs each user's capped revenue with their orders.
    let per_user = |v: usize| -> Vec<(f64, f64)> {
        revenue[v]
            .0
            .iter()
            .zip(&orders[v].0)
            .map(|(r, o)| (r.0, o.0))
            .collect()
    };
    let ratio = |v: usize| RatioArm::new(MetricType::Mean, MetricType::Mean, moments(&per_user(v)));
    let want = compare_ratio(ratio(0), ratio(1), &Settings::default());
    let per_order = metric(&report, "per_order");
    assert_eq!(per_order["kind"], "ratio");
    close(
        "per_order mean",
        &per_order["variants"][0]["mean"],
        ratio(0).mean(),
    );
    close(
        "per_order rel_effect",
        &per_order["comparisons"][0]["rel_effect"],
        want.rel_effect,
    );
    close(
        "per_order p_value",
        &per_order["comparisons"][0]["p_value"],
        want.p_value,
    );
    assert!(per_order["comparisons"][0].get("cuped").is_none());

    // The guard judged revenue on the adjusted test.
    let verdict = &report["guardrails"][0];
    assert!(
        verdict["evidence"]
            .as_str()
            .unwrap()
            .contains("CUPED-adjusted"),
        "{verdict}"
    );

    // A breakdown by country: each segment's shaped metrics over its users alone.
    let by_country = ReportOptions {
        dimensions: vec!["country".into()],
        daily_series: true,
        ..ReportOptions::default()
    };
    let broken = experiment_report(store.as_ref(), "checkout", by_country)
        .await
        .unwrap();
    let broken = serde_json::to_value(&broken).unwrap();
    let segments = broken["breakdown"]["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 2, "{}", broken["breakdown"]);
    for segment in segments {
        let country = segment["value"].as_str().unwrap();
        let of_country: Vec<Shopper> = people
            .iter()
            .filter(|s| s.country == country)
            .cloned()
            .collect();
        check_rows(segment, "d1", &expected(&of_country, now, |v| v.d1, true));
        check_rows(
            segment,
            "revenue",
            &expected(&of_country, now, |v| v.revenue, false),
        );
        let ratio = &metric(segment, "per_order")["comparisons"][0];
        assert!(ratio["rel_effect"].is_number(), "{country}: {ratio}");
    }

    // The daily series of shaped metrics ends where the report is, and a window
    // counts no one before it closes.
    let series = broken["series"].as_array().unwrap();
    for key in ["d1", "revenue", "orders", "per_order"] {
        let points: Vec<&Value> = series.iter().filter(|p| p["metric"] == key).collect();
        assert!(points.len() >= 6, "{key}: {} points", points.len());
        let last = points.last().unwrap();
        let comparison = &metric(&report, key)["comparisons"][0];
        close(
            &format!("{key} series rel_effect"),
            &last["rel_effect"],
            comparison["rel_effect"].as_f64(),
        );
        close(
            &format!("{key} series p_value"),
            &last["p_value"],
            comparison["p_value"].as_f64(),
        );
        assert_eq!(
            last["users"],
            metric(&report, key)["variants"][1]["users"],
            "{key}"
        );
    }
    let first_d1 = series.iter().find(|p| p["metric"] == "d1").unwrap();
    assert_eq!(first_d1["users"], 0, "{first_d1}");

    // A filter reads per-user rows and agrees with the running totals.
    let wide = ReportOptions {
        filter: sluice::store::UserFilter::parse(Some("2000-01-01"), None, &[]).unwrap(),
        ..ReportOptions::default()
    };
    let filtered = experiment_report(store.as_ref(), "checkout", wide)
        .await
        .unwrap();
    let filtered = serde_json::to_value(&filtered).unwrap();
    for key in ["d1", "revenue", "orders", "per_order"] {
        assert_eq!(
            metric(&filtered, key)["variants"],
            metric(&report, key)["variants"],
            "{key}"
        );
    }
    // A filter that picks the users exposed five days ago: the sums over them alone.
    let cutoff = now - 2 * DAY;
    let early = ReportOptions {
        filter: sluice::store::UserFilter::parse(
            None,
            Some(&sluice::domain::format_millis(cutoff)),
            &[],
        )
        .unwrap(),
        ..ReportOptions::default()
    };
    let early = experiment_report(store.as_ref(), "checkout", early)
        .await
        .unwrap();
    let early = serde_json::to_value(&early).unwrap();
    let exposed_early: Vec<Shopper> = shoppers(now)
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            if i == 0 {
                s.first_ts -= DAY;
            }
            s
        })
        .filter(|s| s.first_ts < cutoff)
        .collect();
    check_rows(&early, "d1", &expected(&exposed_early, now, |v| v.d1, true));
    check_rows(
        &early,
        "revenue",
        &expected(&exposed_early, now, |v| v.revenue, false),
    );
    check_rows(
        &early,
        "orders",
        &expected(&exposed_early, now, |v| v.orders, false),
    );
    // Between whole hours (any date range) the totals kept per hour of first
    // exposure answer it: the same sums as per-user rows give.
    let on_the_hour = cutoff - cutoff.rem_euclid(HOUR);
    let hourly = ReportOptions {
        filter: sluice::store::UserFilter::parse(
            None,
            Some(&sluice::domain::format_millis(on_the_hour)),
            &[],
        )
        .unwrap(),
        ..ReportOptions::default()
    };
    assert!(hourly.filter.first_exposure_hours().is_some());
    let hourly = experiment_report(store.as_ref(), "checkout", hourly)
        .await
        .unwrap();
    let hourly = serde_json::to_value(&hourly).unwrap();
    let before_the_hour: Vec<Shopper> = people
        .iter()
        .filter(|s| s.first_ts < on_the_hour)
        .cloned()
        .collect();
    for (key, pick, windowed) in [
        ("d1", (|v: &Values| v.d1) as fn(&Values) -> (f64, f64), true),
        ("revenue", |v: &Values| v.revenue, false),
        ("orders", |v: &Values| v.orders, false),
    ] {
        check_rows(
            &hourly,
            key,
            &expected(&before_the_hour, now, pick, windowed),
        );
    }

    // The pages that list experiments read the same paired totals, in bulk.
    let app = TestApp::on_db(db).await;
    let experiment = store.get_experiment("checkout").await.unwrap().unwrap();
    let summaries = app
        .server
        .control()
        .summaries(vec![experiment], &sluice::store::UserFilter::EVERYONE)
        .await
        .unwrap();
    let listed = serde_json::to_value(&summaries[0].report).unwrap();
    for key in ["d1", "revenue", "orders", "per_order"] {
        assert_eq!(
            metric(&listed, key)["variants"],
            metric(&report, key)["variants"],
            "{key}"
        );
        assert_eq!(
            metric(&listed, key)["comparisons"],
            metric(&report, key)["comparisons"],
            "{key}"
        );
    }

    // Erasing a user takes them out of every shaped total.
    let audit = NewAuditEntry {
        subject: AuditSubject::User("s1-hash".into()),
        actor: Actor::Cli,
        action: AuditAction::UserErase,
        before: None,
        after: None,
        evidence: None,
        at: now,
    };
    store.erase_user("s1", &audit).await.unwrap();
    people.remove(1);
    let report = experiment_report(store.as_ref(), "checkout", ReportOptions::default())
        .await
        .unwrap();
    let report = serde_json::to_value(&report).unwrap();
    check_rows(
        &report,
        "revenue",
        &expected(&people, now, |v| v.revenue, false),
    );
    check_rows(&report, "d1", &expected(&people, now, |v| v.d1, true));
}

/// Shaped metrics and CUPED added once users were exposed: the rows kept so far
/// are dropped and rebuilt from the raw events in chunks, while ingestion goes on
/// for users on both sides of the rebuild's cursor. Reports meanwhile count only
/// the users rebuilt, and say so; afterwards they agree with the events sent, as
/// if the metrics had been there from the start.
async fn shaped_metrics_added_after_exposure_are_rebuilt_from_the_raw_events(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = sluice::store::open(&db.url).await.unwrap();
    define_metrics(store.as_ref()).await;
    let plain = serde_json::from_value(json!({
        "key": "checkout",
        "variants": [{"key": "control", "weight": 0.5}, {"key": "premium", "weight": 0.5}],
        "primary_metric": "orders"
    }))
    .unwrap();
    insert(store.as_ref(), plain).await;
    let now = now_millis();
    let mut people = shoppers(now);
    let events = events_of(&people);
    let (before, after) = events.split_at(events.len() / 2);
    for batch in before.chunks(700) {
        store.ingest(&[batch]).await.unwrap();
    }
    assert!(store.shaped_backfill("checkout").await.unwrap().is_none());

    let mut experiment = store.get_experiment("checkout").await.unwrap().unwrap();
    let revision = experiment.revision;
    experiment.redefine(checkout_spec(), now).unwrap();
    let audit =
        NewAuditEntry::for_experiment(&Actor::Cli, AuditAction::Update, None, &experiment, now);
    store
        .update_experiment(&experiment, revision, &audit)
        .await
        .unwrap();
    let exposed_so_far = people.len() as u64 / 2;
    let started = store.shaped_backfill("checkout").await.unwrap().unwrap();
    assert_eq!((started.users_done, started.after_user), (0, None));
    assert!(started.users_total > 0 && started.users_total <= exposed_so_far);

    let report = experiment_report(store.as_ref(), "checkout", ReportOptions::default())
        .await
        .unwrap();
    let backfill = report.backfill.clone().unwrap();
    assert_eq!(backfill.metrics, ["d1", "revenue", "orders", "per_order"]);
    let report = serde_json::to_value(&report).unwrap();
    assert_eq!(metric(&report, "revenue")["variants"][0]["users"], 0);

    // A first chunk, then the rest of the events (new users, purchases and a late
    // exposure for users on both sides of the cursor), then the other chunks.
    let first = store.backfill_shaped(100).await.unwrap().unwrap();
    assert_eq!((first.users, first.finished), (100, false));
    let cursor = first.backfill.after_user.clone().unwrap();
    let mid = experiment_report(store.as_ref(), "checkout", ReportOptions::default())
        .await
        .unwrap();
    assert_eq!(mid.backfill.as_ref().unwrap().users_done, 100);
    let mid = serde_json::to_value(&mid).unwrap();
    let revenue_users = |report: &Value| -> u64 {
        metric(report, "revenue")["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["users"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(revenue_users(&mid), 100);
    let wide = ReportOptions {
        filter: sluice::store::UserFilter::parse(Some("2000-01-01"), None, &[]).unwrap(),
        ..ReportOptions::default()
    };
    let mid_filtered = experiment_report(store.as_ref(), "checkout", wide.clone())
        .await
        .unwrap();
    let mid_filtered = serde_json::to_value(&mid_filtered).unwrap();
    for key in ["d1", "revenue", "orders", "per_order"] {
        assert_eq!(
            metric(&mid_filtered, key)["variants"],
            metric(&mid, key)["variants"],
            "{key}"
        );
    }

    for batch in after.chunks(700) {
        store.ingest(&[batch]).await.unwrap();
    }
    let rebuilt = people.iter().position(|s| s.id <= cursor).unwrap();
    let waiting = people.iter().position(|s| s.id > cursor).unwrap();
    let mut extra = Vec::new();
    for at in [rebuilt, waiting] {
        let s = &mut people[at];
        s.purchases.push((20.0, s.first_ts + 3 * HOUR));
        let (value, ts) = *s.purchases.last().unwrap();
        extra.push(track(
            &format!("extra-{}", s.id),
            &s.id,
            "purchase",
            value,
            ts,
        ));
        s.first_ts -= DAY;
        extra.push(Event {
            id: format!("x-late-{}", s.id),
            user: s.id.clone(),
            ts: s.first_ts,
            kind: EventKind::Exposure {
                experiment: "checkout".into(),
                variant: s.variant.into(),
                dimensions: None,
            },
        });
    }
    store.ingest(&[&extra]).await.unwrap();
    let mut steps = 1;
    while let Some(step) = store.backfill_shaped(100).await.unwrap() {
        steps += 1;
        if step.finished {
            break;
        }
    }
    assert!(steps >= 2, "{steps}");
    assert!(store.shaped_backfill("checkout").await.unwrap().is_none());
    assert!(store.backfill_shaped(100).await.unwrap().is_none());

    let report = experiment_report(store.as_ref(), "checkout", ReportOptions::default())
        .await
        .unwrap();
    assert!(report.backfill.is_none());
    let report = serde_json::to_value(&report).unwrap();
    check_rows(&report, "d1", &expected(&people, now, |v| v.d1, true));
    check_rows(
        &report,
        "revenue",
        &expected(&people, now, |v| v.revenue, false),
    );
    check_rows(
        &report,
        "orders",
        &expected(&people, now, |v| v.orders, false),
    );
    let covariates = expected(&people, now, |v| v.revenue, false);
    let arm = |pairs: &[(f64, f64)]| CupedArm::new(MetricType::Mean, moments(pairs));
    let want = compare_cuped(
        arm(&covariates[0].0),
        arm(&covariates[1].0),
        &Settings::default(),
    );
    let comparison = &metric(&report, "revenue")["comparisons"][0];
    close("revenue theta", &comparison["cuped"]["theta"], want.theta);
    close(
        "revenue p_value",
        &comparison["p_value"],
        want.comparison.p_value,
    );
    let filtered = experiment_report(store.as_ref(), "checkout", wide)
        .await
        .unwrap();
    let filtered = serde_json::to_value(&filtered).unwrap();
    for key in ["d1", "revenue", "orders", "per_order"] {
        assert_eq!(
            metric(&filtered, key)["variants"],
            metric(&report, key)["variants"],
            "{key}"
        );
    }

    // Taking the shaped metrics and CUPED away again drops what was kept for them.
    let mut experiment = store.get_experiment("checkout").await.unwrap().unwrap();
    let revision = experiment.revision;
    let mut spec = experiment.spec.clone();
    spec.cuped = None;
    spec.primary_metric = Some("orders".into());
    spec.secondary_metrics = Vec::new();
    spec.guardrails = Vec::new();
    experiment.redefine(spec, now).unwrap();
    store
        .update_experiment(&experiment, revision, &audit)
        .await
        .unwrap();
    assert!(store.shaped_backfill("checkout").await.unwrap().is_none());
    let plain = experiment_report(store.as_ref(), "checkout", ReportOptions::default())
        .await
        .unwrap();
    let plain = serde_json::to_value(&plain).unwrap();
    assert!(metric(&plain, "orders")["variants"][0]
        .get("users_pending")
        .is_none());
}

async fn shaped_metric_definitions_are_checked(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let post = |body: Value| {
        let app = &app;
        async move { app.post("/api/v1/metrics", &app.editor, body).await }
    };
    for (body, field) in [
        (
            json!({"key": "r", "kind": "ratio", "numerator": "revenue"}),
            "denominator",
        ),
        (
            json!({"key": "r", "kind": "ratio", "numerator": "revenue", "denominator": "nope"}),
            "denominator",
        ),
        (
            json!({"key": "r", "kind": "ratio", "event": "x", "numerator": "revenue", "denominator": "purchase"}),
            "event",
        ),
        (
            json!({"key": "w", "kind": "conversion", "event": "open", "window": {"hours": 0}}),
            "window.hours",
        ),
        (
            json!({"key": "w", "kind": "conversion", "event": "open", "window": {"delay_hours": -1, "hours": 2}}),
            "window.delay_hours",
        ),
        (
            json!({"key": "c", "kind": "conversion", "event": "buy", "cap": 5}),
            "cap",
        ),
        (
            json!({"key": "c", "kind": "mean", "event": "buy", "cap": 0}),
            "cap",
        ),
        (
            json!({"key": "c", "kind": "mean", "event": "buy", "numerator": "revenue"}),
            "numerator",
        ),
    ] {
        let reply = post(body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {:?}",
            reply.body
        );
        assert_eq!(common::problem_fields(&reply.body)[0], field, "{body}");
    }
    let ratio = json!({"key": "per_purchase", "kind": "ratio", "numerator": "revenue", "denominator": "purchase"});
    assert_eq!(post(ratio.clone()).await.status, StatusCode::CREATED);
    let of_ratio = json!({"key": "rr", "kind": "ratio", "numerator": "per_purchase", "denominator": "purchase"});
    let reply = post(of_ratio).await;
    assert_eq!(common::problem_fields(&reply.body), ["numerator"]);
    let d7 = json!({"key": "d7", "kind": "conversion", "event": "app_open",
                    "window": {"delay_hours": 168, "hours": 24}});
    assert_eq!(post(d7.clone()).await.status, StatusCode::CREATED);
    let stored = app.get("/api/v1/metrics/d7", &app.analyst).await.body;
    assert_eq!(
        stored["window"],
        json!({"delay_hours": 168.0, "hours": 24.0})
    );

    // Once users are exposed, a change to what the fold keeps per user rebuilds it
    // in the background from the raw events.
    app.start("pricing-q4").await;
    app.send_traffic((10, 1), (10, 1)).await;
    for patch in [
        json!({"secondary_metrics": ["revenue", "d7"]}),
        json!({"cuped": {"lookback_days": 14}}),
    ] {
        let changed = app
            .patch("/api/v1/experiments/pricing-q4", &app.editor, patch.clone())
            .await;
        assert_eq!(
            changed.status,
            StatusCode::OK,
            "{patch}: {:?}",
            changed.body
        );
        let report = rebuilt_report(&app, "pricing-q4").await;
        let d7 = metric(&report, "d7");
        let users: Vec<u64> = d7["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["users"].as_u64().unwrap() + v["users_pending"].as_u64().unwrap())
            .collect();
        assert_eq!(users, [10, 10], "{patch}: {d7}");
    }
    let report = rebuilt_report(&app, "pricing-q4").await;
    assert!(
        metric(&report, "revenue")["comparisons"][0]["cuped"].is_object(),
        "{report}"
    );
    let bad = app
        .post(
            "/api/v1/experiments",
            &app.editor,
            json!({"key": "b", "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
                   "cuped": {"lookback_days": 0}}),
        )
        .await;
    assert_eq!(common::problem_fields(&bad.body), ["cuped.lookback_days"]);
}

/// The experiment's report once no rebuild of its shaped metrics is in progress
/// (the server's rebuilder runs in the background).
async fn rebuilt_report(app: &TestApp, key: &str) -> Value {
    let path = format!("/api/v1/experiments/{key}/report");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let report = app.get(&path, &app.analyst).await.body;
        if report.get("backfill").is_none() {
            return report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still rebuilding: {report}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

on_both_backends!(
    shaped_metrics_count_what_their_definitions_say,
    shaped_metrics_added_after_exposure_are_rebuilt_from_the_raw_events,
    shaped_metric_definitions_are_checked,
);
