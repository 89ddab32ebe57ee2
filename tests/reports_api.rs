//! Reports over HTTP and from the CLI: the numbers the stats engine gives for the
//! stored totals, the SRM check, guardrails, corrections, CSV, and honest nulls.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use axum::http::StatusCode;
use common::{Backend, TestApp};
use serde_json::{json, Value};
use sluice::stats::{self, Arm, MetricType, Moments, Settings};

async fn running_with(app: &TestApp, control: (usize, usize), premium: (usize, usize)) {
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    app.send_traffic(control, premium).await;
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
}

async fn the_report_carries_the_engines_numbers_for_the_stored_totals(backend: Backend) {
    let app = TestApp::on(backend).await;
    running_with(&app, (1000, 100), (1000, 60)).await;
    let reply = app
        .get("/api/v1/experiments/pricing-q4/report", &app.analyst)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let report = reply.body;
    assert_eq!(report["experiment"], "pricing-q4");
    assert_eq!(
        report["srm"]["users"],
        json!({"control": 1000, "premium": 1000})
    );
    assert_eq!(report["srm"]["ok"], true);

    let purchase = &report["metrics"][0];
    assert_eq!(purchase["metric"], "purchase");
    assert_eq!(purchase["variants"][0]["users"], 1000);
    assert_eq!(purchase["variants"][0]["sum"], 100.0);
    assert_eq!(purchase["variants"][1]["sum_squares"], 60.0);
    let comparison = &purchase["comparisons"][0];
    assert_eq!(comparison["variant"], "premium");
    assert_eq!(comparison["baseline"], "control");
    let expected = stats::compare(
        Arm::new(MetricType::Proportion, Moments::conversions(1000, 100)),
        Arm::new(MetricType::Proportion, Moments::conversions(1000, 60)),
        &Settings::default(),
    );
    assert!(close(comparison["abs_effect"].as_f64().unwrap(), -0.04));
    assert!(close(comparison["rel_effect"].as_f64().unwrap(), -0.4));
    assert!(close(
        comparison["p_value"].as_f64().unwrap(),
        expected.p_value.unwrap()
    ));
    assert!(close(
        comparison["seq_p_value"].as_f64().unwrap(),
        expected.seq_p_value.unwrap()
    ));
    assert!(close(
        comparison["chance_to_win"].as_f64().unwrap(),
        expected.chance_to_win.unwrap()
    ));
    assert_eq!(comparison["significant"], true);

    let revenue = &report["metrics"][1];
    assert_eq!(revenue["metric"], "revenue");
    assert_eq!(revenue["variants"][0]["sum"], 1000.0);
    assert_eq!(revenue["variants"][0]["sum_squares"], 10000.0);

    let guardrail = &report["guardrails"][0];
    assert_eq!(guardrail["metric"], "purchase");
    assert_eq!(guardrail["variant"], "premium");
    assert_ne!(guardrail["status"], "green");
    assert!(guardrail["evidence"]
        .as_str()
        .unwrap()
        .contains("-40.0% vs control"));
    assert_ne!(report["health"], "green");
}

async fn a_sample_ratio_mismatch_is_flagged(backend: Backend) {
    let app = TestApp::on(backend).await;
    running_with(&app, (1000, 100), (800, 80)).await;
    let report = app
        .get("/api/v1/experiments/pricing-q4/report", &app.analyst)
        .await
        .body;
    assert_eq!(report["srm"]["ok"], false);
    assert!(report["srm"]["p_value"].as_f64().unwrap() < 0.001);
    assert_ne!(report["health"], "green");
}

async fn without_data_the_numbers_are_null_with_a_reason(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let report = app
        .get("/api/v1/experiments/pricing-q4/report", &app.analyst)
        .await
        .body;
    let comparison = &report["metrics"][0]["comparisons"][0];
    assert_eq!(comparison["p_value"], Value::Null);
    assert_eq!(comparison["significant"], false);
    assert_eq!(comparison["reason"], "TOO_FEW_UNITS");
    assert_eq!(report["srm"]["ok"], true);
    assert_eq!(report["health"], "green");
}

async fn corrections_and_csv_are_on_request(backend: Backend) {
    let app = TestApp::on(backend).await;
    running_with(&app, (500, 50), (500, 45)).await;
    let holm = app
        .get(
            "/api/v1/experiments/pricing-q4/report?correction=holm",
            &app.analyst,
        )
        .await
        .body;
    let adjusted = holm["metrics"][0]["comparisons"][0]["adjusted_p_value"]
        .as_f64()
        .unwrap();
    let raw = holm["metrics"][0]["comparisons"][0]["p_value"]
        .as_f64()
        .unwrap();
    assert!(adjusted >= raw);
    let bad = app
        .get(
            "/api/v1/experiments/pricing-q4/report?correction=bonferroni",
            &app.analyst,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let csv = app
        .get(
            "/api/v1/experiments/pricing-q4/report?format=csv",
            &app.analyst,
        )
        .await;
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let text = csv.body.as_str().unwrap().to_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].starts_with("metric,kind,variant,users,sum"));
    assert!(lines[1].starts_with("purchase,conversion,control,500,50,50,"));
    assert_eq!(lines[2].split(',').count(), lines[0].split(',').count());

    let sdk = app
        .get("/api/v1/experiments/pricing-q4/report", &app.sdk)
        .await;
    assert_eq!(sdk.status, StatusCode::FORBIDDEN);
    let missing = app
        .get("/api/v1/experiments/nope/report", &app.analyst)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn the_planning_calculator_answers_both_ways(backend: Backend) {
    let app = TestApp::on(backend).await;
    let plan = app
        .get("/api/v1/power?baseline=0.1&mde=0.1", &app.analyst)
        .await
        .body;
    let expected =
        stats::sample_size_per_variant(stats::Baseline::proportion(0.1), 0.1, 0.05, 0.8, 2)
            .unwrap()
            .ceil();
    assert_eq!(plan["users_per_variant"].as_f64().unwrap(), expected);
    let mde = app
        .get(
            &format!("/api/v1/power?baseline=0.1&users={expected}"),
            &app.analyst,
        )
        .await
        .body;
    assert!((mde["mde"].as_f64().unwrap() - 0.1).abs() < 1e-3);
    let both = app
        .get("/api/v1/power?baseline=0.1&mde=0.1&users=10", &app.analyst)
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    let garbage = app.get("/api/v1/power?baseline=abc", &app.analyst).await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert_eq!(garbage.body["error"]["code"], "validation_failed");
}

async fn the_daily_series_accumulates_day_by_day(backend: Backend) {
    let app = TestApp::on(backend).await;
    running_with(&app, (300, 30), (300, 20)).await;
    let day_two: Vec<Value> = (0..100)
        .flat_map(|i| {
            let user = format!("late-{i}");
            let variant = if i % 2 == 0 { "control" } else { "premium" };
            [
                json!({"id": format!("x-{user}"), "type": "exposure", "user": user,
                       "experiment": "pricing-q4", "variant": variant, "ts": format!("{}T08:00:00Z", common::day(1))}),
                json!({"id": format!("p-{user}"), "type": "track", "user": user,
                       "event": "purchase", "value": 10.0, "ts": format!("{}T09:00:00Z", common::day(1))}),
            ]
        })
        .collect();
    app.post("/sdk/v1/events", &app.sdk, json!({"events": day_two}))
        .await;
    let report = app
        .get(
            "/api/v1/experiments/pricing-q4/report?series=daily",
            &app.analyst,
        )
        .await
        .body;
    let series = report["series"].as_array().unwrap();
    let purchase: Vec<&Value> = series
        .iter()
        .filter(|p| p["metric"] == "purchase")
        .collect();
    assert_eq!(purchase.len(), 2, "{series:?}");
    assert_eq!(
        purchase[0]["through"],
        format!("{}T00:00:00Z", common::day(1))
    );
    assert_eq!(
        (
            purchase[0]["baseline_users"].as_u64(),
            purchase[0]["users"].as_u64()
        ),
        (Some(300), Some(300))
    );
    assert_eq!(
        (
            purchase[1]["baseline_users"].as_u64(),
            purchase[1]["users"].as_u64()
        ),
        (Some(350), Some(350))
    );
    // Day one: 10% vs 6.7%; day two: (30+50)/350 vs (20+50)/350.
    assert!((purchase[0]["rel_effect"].as_f64().unwrap() - (20.0 / 30.0 - 1.0)).abs() < 1e-12);
    assert!((purchase[1]["rel_effect"].as_f64().unwrap() - (70.0 / 80.0 - 1.0)).abs() < 1e-12);
    // The last day agrees with the report itself.
    assert_eq!(
        purchase[1]["p_value"],
        report["metrics"][0]["comparisons"][0]["p_value"]
    );
    let bad = app
        .get(
            "/api/v1/experiments/pricing-q4/report?series=hourly",
            &app.analyst,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

async fn results_break_down_by_a_kept_dimension(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let patched = app
        .patch(
            "/api/v1/experiments/pricing-q4",
            &app.editor,
            json!({"dimensions": ["country"]}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    app.start("pricing-q4").await;
    let mut events = Vec::new();
    for (country, users) in [
        (Some("CN"), 300),
        (Some("US"), 200),
        (Some("DE"), 20),
        (None, 150),
    ] {
        for i in 0..users {
            let user = format!("{}-{i}", country.unwrap_or("none"));
            let variant = if i % 2 == 0 { "control" } else { "premium" };
            let mut exposure = json!({"id": format!("x-{user}"), "type": "exposure", "user": user,
                "experiment": "pricing-q4", "variant": variant, "ts": format!("{}T10:00:00Z", common::day(0))});
            if let Some(country) = country {
                exposure["attributes"] = json!({"country": country, "email": "not@kept.example"});
            }
            events.push(exposure);
            if i % 5 == 0 {
                events.push(
                    json!({"id": format!("p-{user}"), "type": "track", "user": user,
                    "event": "purchase", "value": 10.0, "ts": format!("{}T11:00:00Z", common::day(0))}),
                );
            }
        }
    }
    let stored = app
        .post("/sdk/v1/events", &app.sdk, json!({"events": events}))
        .await;
    assert_eq!(stored.status, StatusCode::ACCEPTED);
    // Server-side assignment keeps the dimension too.
    app.post(
        "/sdk/v1/assign",
        &app.sdk,
        json!({"user": {"id": "fresh", "country": "CN"}}),
    )
    .await;

    let mut segments = Value::Null;
    for _ in 0..100 {
        let report = app
            .get(
                "/api/v1/experiments/pricing-q4/report?dimension=country",
                &app.analyst,
            )
            .await
            .body;
        segments = report["breakdown"]["segments"].clone();
        if segments[0]["users"] == 301 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let summary: Vec<(String, u64)> = segments
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["value"].as_str().unwrap().to_owned(),
                s["users"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("CN".to_owned(), 301),
            ("US".to_owned(), 200),
            ("(not captured)".to_owned(), 150),
            ("other".to_owned(), 20)
        ]
    );
    let cn = &segments[0]["metrics"][0];
    assert_eq!(cn["metric"], "purchase");
    let users = |v: usize| cn["variants"][v]["users"].as_u64().unwrap();
    assert_eq!(users(0) + users(1), 301);
    assert_eq!(cn["variants"][0]["sum"], 30.0);
    assert_eq!(cn["variants"][1]["sum"], 30.0);

    let unknown = app
        .get(
            "/api/v1/experiments/pricing-q4/report?dimension=email",
            &app.analyst,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["error"]["details"][0]["field"], "dimension");
}

/// One user of the filter test: who they are, when first exposed, and what they bought.
struct Shopper {
    id: String,
    country: &'static str,
    device: &'static str,
    day: i64,
    variant: &'static str,
    spent: Option<f64>,
}

fn shoppers() -> Vec<Shopper> {
    (0..1200)
        .map(|i: i64| Shopper {
            id: format!("s{i}"),
            country: ["CN", "US", "DE"][(i % 3) as usize],
            device: ["ios", "android"][((i / 3) % 2) as usize],
            day: (i / 6) % 2,
            variant: if i % 4 < 2 { "control" } else { "premium" },
            spent: (i % 5 == 0).then(|| ((i % 7) + 1) as f64 * 10.0),
        })
        .collect()
}

/// `(users, buyers, revenue)` per variant of the shoppers `pick` keeps, worked out
/// from what was sent.
fn expected(pick: impl Fn(&Shopper) -> bool) -> Vec<(u64, u64, f64)> {
    let everyone = shoppers();
    ["control", "premium"]
        .iter()
        .map(|variant| {
            let kept: Vec<&Shopper> = everyone
                .iter()
                .filter(|s| s.variant == *variant && pick(s))
                .collect();
            let buyers = kept.iter().filter(|s| s.spent.is_some()).count() as u64;
            let revenue = kept.iter().filter_map(|s| s.spent).sum();
            (kept.len() as u64, buyers, revenue)
        })
        .collect()
}

/// `(users, buyers, revenue)` per variant, from the report's purchase (conversion)
/// and revenue (mean) rows.
fn reported(report: &Value) -> Vec<(u64, u64, f64)> {
    let rows = |metric: usize| {
        report["metrics"][metric]["variants"]
            .as_array()
            .unwrap()
            .clone()
    };
    rows(0)
        .iter()
        .zip(rows(1))
        .map(|(purchase, revenue)| {
            (
                purchase["users"].as_u64().unwrap(),
                purchase["sum"].as_f64().unwrap() as u64,
                revenue["sum"].as_f64().unwrap(),
            )
        })
        .collect()
}

async fn report_filters_pick_users_by_first_exposure_and_kept_dimensions(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let patched = app
        .patch(
            "/api/v1/experiments/pricing-q4",
            &app.editor,
            json!({"dimensions": ["country", "device"]}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    app.start("pricing-q4").await;
    let mut events = Vec::new();
    for s in shoppers() {
        events.push(
            json!({"id": format!("x-{}", s.id), "type": "exposure", "user": s.id,
            "experiment": "pricing-q4", "variant": s.variant,
            "attributes": {"country": s.country, "device": s.device},
            "ts": format!("{}T10:00:00Z", common::day(s.day))}),
        );
        if let Some(spent) = s.spent {
            // Every purchase is on the second day, after both days' exposures.
            events.push(json!({"id": format!("p-{}", s.id), "type": "track", "user": s.id,
                "event": "purchase", "value": spent, "ts": format!("{}T20:00:00Z", common::day(1))}));
        }
    }
    let stored = app
        .post("/sdk/v1/events", &app.sdk, json!({"events": events}))
        .await;
    assert_eq!(stored.status, StatusCode::ACCEPTED, "{:?}", stored.body);
    let report = |query: String| {
        let app = &app;
        async move {
            let url = format!("/api/v1/experiments/pricing-q4/report?{query}");
            let reply = app.get(&url, &app.analyst).await;
            assert_eq!(reply.status, StatusCode::OK, "{url}: {:?}", reply.body);
            reply.body
        }
    };
    // A filter that picks everyone reads per-user rows and agrees with the running totals.
    let everyone = report(String::new()).await;
    let wide = report(format!("from={}", common::day(-3))).await;
    assert_eq!(reported(&everyone), expected(|_| true));
    assert_eq!(reported(&wide), reported(&everyone));
    assert_eq!(
        wide["metrics"][0]["comparisons"],
        everyone["metrics"][0]["comparisons"]
    );
    assert!(everyone.get("filter").is_none());

    // Users first exposed on the first day; their purchases on the second day count.
    let first_day = report(format!("from={}&to={}", common::day(0), common::day(1))).await;
    assert_eq!(reported(&first_day), expected(|s| s.day == 0));
    assert_eq!(
        first_day["srm"]["users"]["control"],
        expected(|s| s.day == 0)[0].0
    );
    assert_eq!(
        first_day["filter"]["from"],
        format!("{}T00:00:00Z", common::day(0))
    );
    let second_day = report(format!("from={}T00:00:00Z", common::day(1))).await;
    assert_eq!(reported(&second_day), expected(|s| s.day == 1));

    // Segments: one value, two values of one dimension, two dimensions at once.
    let cn = report("segment=country:CN".into()).await;
    assert_eq!(reported(&cn), expected(|s| s.country == "CN"));
    assert_eq!(cn["filter"]["segments"], json!(["country:CN"]));
    let cn_us = report("segment=country:CN&segment=country:US".into()).await;
    assert_eq!(reported(&cn_us), expected(|s| s.country != "DE"));
    let cn_ios = report(format!(
        "segment=country:CN&segment=device:ios&to={}",
        common::day(1)
    ))
    .await;
    assert_eq!(
        reported(&cn_ios),
        expected(|s| s.country == "CN" && s.device == "ios" && s.day == 0)
    );

    // A breakdown by two dimensions, under a filter, and the daily series under it too.
    let crossed = report(format!(
        "dimension=country,device&series=daily&from={}",
        common::day(1)
    ))
    .await;
    let breakdown = &crossed["breakdown"];
    assert_eq!(breakdown["dimension"], "country,device");
    let cells: Vec<(Vec<String>, u64)> = breakdown["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cell| {
            let values = cell["values"].as_array().unwrap();
            let values = values
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            (values, cell["users"].as_u64().unwrap())
        })
        .collect();
    // 600 second-day users, 100 in each country × device cell: enough for each.
    let mut expected_cells: Vec<(Vec<String>, u64)> = ["CN", "US", "DE"]
        .iter()
        .flat_map(|country| {
            ["ios", "android"].map(|device| (vec![country.to_string(), device.to_owned()], 100))
        })
        .collect();
    expected_cells.sort();
    let mut cells = cells;
    cells.sort();
    assert_eq!(cells, expected_cells);
    let cn_ios_cell = breakdown["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|cell| cell["value"] == "CN / ios")
        .unwrap();
    let cn_ios_day_two = expected(|s| s.country == "CN" && s.device == "ios" && s.day == 1);
    assert_eq!(
        cn_ios_cell["metrics"][0]["variants"][0]["users"],
        cn_ios_day_two[0].0
    );
    assert_eq!(
        cn_ios_cell["metrics"][1]["variants"][1]["sum"],
        cn_ios_day_two[1].2
    );
    let last_day: Vec<&Value> = crossed["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metric"] == "purchase")
        .collect();
    let day_two = expected(|s| s.day == 1);
    assert_eq!(last_day.last().unwrap()["baseline_users"], day_two[0].0);
    let everyone_crossed = report("dimension=country,device".into()).await;
    let cells = everyone_crossed["breakdown"]["segments"]
        .as_array()
        .unwrap();
    assert_eq!(cells.len(), 6);
    assert!(cells.iter().all(|c| c["users"] == 200), "{cells:?}");

    // Bad filters are refused, each with its field.
    for (query, field) in [
        ("from=yesterday", "from"),
        (
            &*format!("from={}&to={}", common::day(1), common::day(0)),
            "to",
        ),
        ("segment=CN", "segment[0]"),
        ("segment=email:a@b.example", "segment"),
        ("dimension=country,device,email", "dimension"),
        ("dimension=country,country", "dimension"),
        ("from=2026-01-01&from=2026-02-01", "from"),
    ] {
        let reply = app
            .get(
                &format!("/api/v1/experiments/pricing-q4/report?{query}"),
                &app.analyst,
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {:?}",
            reply.body
        );
        assert_eq!(reply.body["error"]["details"][0]["field"], field, "{query}");
    }

    // The CSV states the filter on every row, then carries the breakdown's rows.
    let csv = app
        .get(
            "/api/v1/experiments/pricing-q4/report?format=csv&segment=country:CN&dimension=device",
            &app.analyst,
        )
        .await;
    let text = csv.body.as_str().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with(",significant,from,to,segments,breakdown,segment"));
    // Two metrics × two variants for the report, then for each of two devices.
    assert_eq!(lines.len(), 1 + 4 + 2 * 4, "{text}");
    assert!(
        lines[1..5].iter().all(|l| l.ends_with(",,,country:CN,,")),
        "{text}"
    );
    for device in ["ios", "android"] {
        let rows = lines[5..]
            .iter()
            .filter(|l| l.ends_with(&format!(",,,country:CN,device,{device}")))
            .count();
        assert_eq!(rows, 4, "{text}");
    }
}

on_both_backends!(
    the_report_carries_the_engines_numbers_for_the_stored_totals,
    a_sample_ratio_mismatch_is_flagged,
    without_data_the_numbers_are_null_with_a_reason,
    corrections_and_csv_are_on_request,
    the_planning_calculator_answers_both_ways,
    the_daily_series_accumulates_day_by_day,
    results_break_down_by_a_kept_dimension,
    report_filters_pick_users_by_first_exposure_and_kept_dimensions,
);
