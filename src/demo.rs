//! `sluice demo`: a one-minute tour on a temporary database. A pricing experiment
//! starts at 5% of users; simulated traffic (assigned by the real evaluation core,
//! ingested through the real event path) shows the premium price hurting
//! conversion; the breaker rolls it back on its own; the report and the audit
//! trail tell the story.

use std::sync::Arc;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::app::Server;
use crate::control::{experiment_report, Control, ReportOptions};
use crate::domain::environment::PRODUCTION;
use crate::domain::event::EventInput;
use crate::domain::validation::from_json;
use crate::domain::{
    format_millis, now_millis, Actor, LifecycleAction, Metric, MetricKind, Status,
};

const KEY: &str = "pricing-q4";
const VISITORS_PER_HOUR: usize = 6_000;
const CONVERSION: [f64; 2] = [0.10, 0.065];

pub async fn run() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("sluice-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("demo.db").display());
    let outcome = tour(&url).await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

async fn tour(url: &str) -> anyhow::Result<()> {
    let store = crate::store::open(url).await?;
    let server = Server::build(store.clone()).await?;
    let control = server.control().clone();
    say("Sluice demo — a price test that goes wrong, and the breaker that saves it.\n");
    define(&control).await?;
    let mut rng = StdRng::seed_from_u64(2026);
    for hour in 1..=48 {
        let in_test = simulate_hour(&control, &mut rng, hour).await?;
        let decision = control.guard_check(KEY).await?;
        let verdict = decision.verdicts.first();
        let drop = verdict
            .and_then(|v| v.observed_drop)
            .map_or("-".to_owned(), |d| format!("{:+.0}%", -d * 100.0));
        let p = verdict
            .and_then(|v| v.p_value)
            .map_or("-".to_owned(), |p| format!("{p:.3}"));
        let status = verdict.map_or("-", |v| v.status.as_str());
        say(&format!(
            "hour {hour:>2}: {in_test:>4} new users in the test | purchase {drop:>5} | always-valid p {p:>5} | guardrail {status}"
        ));
        if decision.status == Status::RolledBack {
            say(&format!(
                "\nThe breaker fired at hour {hour}: {}.",
                decision.reason
            ));
            say("premium is rolled back: every user gets control ($199) from now on, and SDKs");
            say("following the stream switched within a second. Nobody had to be awake.\n");
            break;
        }
    }
    let report = experiment_report(store.as_ref(), KEY, ReportOptions::default()).await?;
    say("The report an analyst reads (sluice report pricing-q4):\n");
    say(&crate::report::to_table(&report));
    say("The audit trail (GET /api/v1/experiments/pricing-q4/audit):");
    for entry in control.audit_log(KEY).await? {
        say(&format!(
            "  {}  {:<14} by {}",
            entry.at, entry.action, entry.actor
        ));
    }
    drop(control);
    server.finish().await;
    Ok(())
}

async fn define(control: &Arc<Control>) -> anyhow::Result<()> {
    control
        .create_metric(Metric {
            name: "Purchase".into(),
            ..Metric::of_event("purchase", MetricKind::Conversion, "purchase")
        })
        .await?;
    let spec = from_json(json!({
        "key": KEY, "name": "Premium price",
        "hypothesis": "Buyers accept $249 instead of $199",
        "variants": [{"key": "control", "weight": 0.5, "value": {"price": 199}},
                     {"key": "premium", "weight": 0.5, "value": {"price": 249}}],
        "primary_metric": "purchase",
        "guardrails": [{"metric": "purchase", "max_drop": 0.1, "min_users": 300, "action": "rollback"}],
        "stages": [{"coverage": 0.05, "hold_seconds": 259200}, {"coverage": 0.5, "hold_seconds": 172800}, {"coverage": 1.0}]
    }))
    .context("the demo's experiment")?;
    control.create_experiment(spec, &Actor::Cli).await?;
    control
        .act(KEY, LifecycleAction::Start, &Actor::Cli)
        .await?;
    say("Defined metric 'purchase' and experiment 'pricing-q4': control $199 vs premium $249,");
    say("staged 5% -> 50% -> 100%, guardrail: roll back if purchases drop 10% or more.");
    say(&format!(
        "Started at 5% of users. Simulating {VISITORS_PER_HOUR} visitors an hour; premium truly converts at {:.1}% vs {:.0}%.\n",
        CONVERSION[1] * 100.0,
        CONVERSION[0] * 100.0
    ));
    Ok(())
}

/// One hour of visitors: each is assigned by the evaluation core; those in the test
/// send an exposure and, with their variant's probability, a purchase.
async fn simulate_hour(control: &Control, rng: &mut StdRng, hour: usize) -> anyhow::Result<usize> {
    let rulesets = control.rulesets().current();
    let snapshot = rulesets.environment(PRODUCTION);
    let ts = format_millis(now_millis());
    let mut events = Vec::new();
    for visitor in 0..VISITORS_PER_HOUR {
        let id = format!("visitor-{hour}-{visitor}");
        let user = json!({"id": id}).as_object().cloned().unwrap_or_default();
        let Some(assignment) = snapshot.compiled.assign(KEY, &user) else {
            continue;
        };
        if !assignment.in_experiment {
            continue;
        }
        let arm = usize::from(assignment.variant == "premium");
        events.push(event(
            json!({"id": format!("x-{id}"), "type": "exposure", "user": id,
            "experiment": KEY, "variant": assignment.variant, "ts": ts}),
        )?);
        if rng.random::<f64>() < CONVERSION[arm] {
            events.push(event(
                json!({"id": format!("p-{id}"), "type": "track", "user": id,
                "event": "purchase", "value": 1.0, "ts": ts}),
            )?);
        }
    }
    let exposures = events.iter().filter(|e| e.kind == "exposure").count();
    control.ingest(PRODUCTION, events).await?;
    Ok(exposures)
}

fn event(value: serde_json::Value) -> anyhow::Result<EventInput> {
    Ok(serde_json::from_value(value)?)
}

fn say(line: &str) {
    println!("{line}");
}
