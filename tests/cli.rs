//! The `sluice` binary: key creation, migration, serving and clean shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{http_get, serve, sluice};
use common::{Backend, TestDb};

async fn key_create_prints_the_key_alone_and_serve_accepts_it(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let db = test_db.url.clone();
    let migrated = sluice().args(["migrate", "--db", &db]).output().unwrap();
    assert!(migrated.status.success(), "{migrated:?}");

    let created = sluice()
        .args([
            "key", "create", "--role", "analyst", "--name", "ana", "--db", &db,
        ])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let stdout = String::from_utf8(created.stdout).unwrap();
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "only the key on stdout: {stdout:?}");
    let key = lines[0];
    assert!(key.starts_with("sk_analyst_"));

    let (mut server, port) = serve(&db, &[]);
    let listed = http_get(port, "/api/v1/experiments", key).unwrap();
    assert!(listed.starts_with("HTTP/1.1 200"), "{listed}");
    assert!(listed.ends_with("[]"), "{listed}");
    let refused = http_get(port, "/api/v1/experiments", "sk_analyst_wrong").unwrap();
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");

    let terminated = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

#[test]
fn bad_arguments_are_explained() {
    let output = sluice()
        .args(["key", "create", "--role", "root", "--db", "sqlite::memory:"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("expected admin, editor, analyst or sdk"),
        "{stderr}"
    );

    let output = sluice()
        .args([
            "key",
            "create",
            "--role",
            "admin",
            "--name",
            "guard",
            "--db",
            "sqlite::memory:",
        ])
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "a key may not pass for the breaker"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("reserved"), "{stderr}");

    let output = sluice()
        .args(["migrate", "--db", "mysql://x"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("unsupported database URL"), "{stderr}");
}

async fn report_prints_an_80_column_table_and_csv(backend: Backend) {
    use sluice::domain::{
        Actor, AuditAction, Event, EventKind, Experiment, Metric, MetricKind, NewAuditEntry,
    };

    let test_db = TestDb::new(backend).await;
    let db = test_db.url.clone();
    let store = sluice::store::open(&db).await.unwrap();
    let metric = Metric {
        name: "Purchase".into(),
        ..Metric::of_event("purchase", MetricKind::Conversion, "purchase")
    };
    store.insert_metric(&metric).await.unwrap();
    let spec = serde_json::from_value(serde_json::json!({
        "key": "checkout-redesign-with-a-long-key",
        "variants": [{"key": "control", "weight": 0.5}, {"key": "one-page-checkout-v2", "weight": 0.5}],
        "primary_metric": "purchase",
        "guardrails": [{"metric": "purchase", "max_drop": 0.1, "min_users": 100, "action": "rollback"}]
    }))
    .unwrap();
    let experiment = Experiment::new_draft(spec, 0);
    let audit =
        NewAuditEntry::for_experiment(&Actor::Cli, AuditAction::Create, None, &experiment, 0);
    store.insert_experiment(&experiment, &audit).await.unwrap();
    let mut events = Vec::new();
    for i in 0..400 {
        let variant = if i % 2 == 0 {
            "control"
        } else {
            "one-page-checkout-v2"
        };
        let user = format!("u{i}");
        events.push(Event {
            id: format!("x{i}"),
            user: user.clone(),
            ts: 1,
            kind: EventKind::Exposure {
                experiment: experiment.key().to_owned(),
                variant: variant.into(),
                dimensions: None,
            },
        });
        if i % 7 == 0 {
            events.push(Event {
                id: format!("p{i}"),
                user,
                ts: 2,
                kind: EventKind::Track {
                    event: "purchase".into(),
                    value: 1.0,
                },
            });
        }
    }
    store.ingest(&[events.as_slice()]).await.unwrap();

    let table = sluice()
        .args(["report", "checkout-redesign-with-a-long-key", "--db", &db])
        .output()
        .unwrap();
    assert!(table.status.success(), "{table:?}");
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("purchase (conversion)"), "{text}");
    assert!(
        text.contains("users: control 200, one-page-checkout-v2 200"),
        "{text}"
    );
    for line in text.lines() {
        assert!(
            line.chars().count() <= 80,
            "wider than 80 columns: {line:?}"
        );
    }
    let csv = sluice()
        .args([
            "report",
            "checkout-redesign-with-a-long-key",
            "--format",
            "csv",
            "--db",
            &db,
        ])
        .output()
        .unwrap();
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");

    // Filters as the API takes them: everyone was exposed on 1 Jan 1970.
    let key = "checkout-redesign-with-a-long-key";
    let later = sluice()
        .args(["report", key, "--from", "1970-01-02", "--db", &db])
        .output()
        .unwrap();
    assert!(later.status.success(), "{later:?}");
    let text = String::from_utf8(later.stdout).unwrap();
    assert!(
        text.contains("users: control 0, one-page-checkout-v2 0"),
        "{text}"
    );
    let bad = sluice()
        .args(["report", key, "--segment", "country", "--db", &db])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8(bad.stderr).unwrap();
    assert!(stderr.contains("segment[0]"), "{stderr}");

    let missing = sluice()
        .args(["report", "nope", "--db", &db])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8(missing.stderr)
        .unwrap()
        .contains("not found"));
}

#[test]
fn power_answers_in_words() {
    let output = sluice()
        .args(["power", "--baseline", "0.1", "--mde", "0.1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("users per variant: "), "{text}");
}

#[test]
fn demo_tells_the_story_of_a_rollback() {
    let output = sluice()
        .arg("demo")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("The breaker fired at hour"), "{text}");
    assert!(text.contains("pricing-q4 (rolled_back)"), "{text}");
    assert!(text.contains("guard_rollback by guard"), "{text}");
    let log = String::from_utf8(output.stderr).unwrap();
    assert!(
        !log.contains("INFO") && !log.contains("WARN"),
        "regression (issue 15): the demo's log lines interleaved with its story: {log}"
    );
}

on_both_backends!(
    key_create_prints_the_key_alone_and_serve_accepts_it,
    report_prints_an_80_column_table_and_csv,
);
