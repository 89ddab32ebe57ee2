//! A shop with shaped metrics — a capped mean, a count, D7 retention and a ratio —
//! and a CUPED experiment on them whose data is ingested through the store, for
//! the dashboard and browser tests.

use axum::http::StatusCode;
use sluice::domain::{
    now_millis, Actor, AuditAction, Event, EventKind, Experiment, Millis, NewAuditEntry,
};

use super::TestApp;

/// A shop's shaped metrics over the API: `basket` (purchases, capped at 500 per
/// user), `orders`, D7 retention (`d7`) and, unless `with_ratio` is false,
/// `per_order` = basket ÷ orders.
pub async fn shop_metrics(app: &TestApp, with_ratio: bool) {
    let mut metrics = vec![
        serde_json::json!({"key": "basket", "kind": "mean", "event": "purchase", "cap": 500.0}),
        serde_json::json!({"key": "orders", "kind": "count", "event": "purchase"}),
        serde_json::json!({"key": "d7", "kind": "conversion", "event": "app_open",
            "window": {"delay_hours": 168, "hours": 24}}),
    ];
    if with_ratio {
        metrics.push(serde_json::json!({"key": "per_order", "kind": "ratio",
            "numerator": "basket", "denominator": "orders"}));
    }
    for metric in metrics {
        let reply = app.post("/api/v1/metrics", &app.editor, metric).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }
}

const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;

fn track(id: String, user: &str, event: &str, value: f64, ts: Millis) -> Event {
    Event {
        id,
        user: user.to_owned(),
        ts,
        kind: EventKind::Track {
            event: event.into(),
            value,
        },
    }
}

/// `checkout`, a CUPED experiment (14-day lookback) on the shop's metrics, created
/// through the store so that exposures in the past count, with 400 users ingested
/// through the store: three in four first exposed ten days ago (their D7 window
/// has closed), the others an hour ago (50 per variant still in it). Each buys
/// before exposure about what they buy after, so CUPED takes off most variance.
pub async fn a_cuped_experiment_with_data(app: &TestApp) {
    shop_metrics(app, true).await;
    let spec = serde_json::from_value(serde_json::json!({
        "key": "checkout",
        "variants": [{"key": "control", "weight": 0.5}, {"key": "premium", "weight": 0.5}],
        "primary_metric": "basket", "secondary_metrics": ["orders", "d7", "per_order"],
        "cuped": {"lookback_days": 14}
    }))
    .unwrap();
    let experiment = Experiment::new_draft(spec, 0);
    let audit =
        NewAuditEntry::for_experiment(&Actor::Cli, AuditAction::Create, None, &experiment, 0);
    app.store
        .insert_experiment(&experiment, &audit)
        .await
        .unwrap();
    let now = now_millis();
    let mut events = Vec::new();
    for i in 0..400_i64 {
        let user = format!("u{i}");
        let variant = if i % 2 == 0 { "control" } else { "premium" };
        let first_ts = if (i / 2) % 4 == 3 {
            now - HOUR
        } else {
            now - 10 * DAY
        };
        events.push(Event {
            id: format!("x-{user}"),
            user: user.clone(),
            ts: first_ts,
            kind: EventKind::Exposure {
                experiment: "checkout".into(),
                variant: variant.into(),
                dimensions: None,
            },
        });
        let habit = 20.0 + ((i * 37) % 100) as f64;
        let lift = if variant == "premium" { 5.0 } else { 0.0 };
        events.push(track(
            format!("b-{user}"),
            &user,
            "purchase",
            habit,
            first_ts - 3 * DAY,
        ));
        let spent = habit + ((i * 13) % 20) as f64 + lift;
        events.push(track(
            format!("a-{user}"),
            &user,
            "purchase",
            spent,
            first_ts + HOUR,
        ));
        if i % 5 == 0 {
            events.push(track(
                format!("c-{user}"),
                &user,
                "purchase",
                10.0,
                first_ts + 2 * HOUR,
            ));
        }
        if i % 3 == 0 {
            events.push(track(
                format!("o-{user}"),
                &user,
                "app_open",
                1.0,
                first_ts + 7 * DAY + HOUR,
            ));
        }
    }
    app.store.ingest(&[&events]).await.unwrap();
}
