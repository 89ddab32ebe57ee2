//! The dashboard in a real browser: headless Chromium driven over WebDriver signs
//! in, creates an experiment through the form (after one rejected entry), starts
//! it, sees the report and chart of traffic sent over the API, filters and breaks
//! it down through the page's form, rolls it back and
//! finds the audit entry; an admin sets up the settings and switches the
//! language; an editor defines a windowed, capped count and a ratio metric, and
//! an analyst reads a CUPED experiment.
//! Screenshots of the main pages go to `$CARGO_TARGET_DIR/screenshots/BACKEND/`
//! (default `target/screenshots/…`).
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the test fails
//! and says so (`.ci/run` installs them).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;
#[path = "browser/webdriver.rs"]
mod webdriver;

use std::future::IntoFuture;
use std::path::PathBuf;

use axum::http::StatusCode;
use serde_json::{json, Value};

use common::{pricing_metrics, Backend, TestApp};
use sluice::domain::{Actor, LifecycleAction};
use webdriver::Browser;

/// Where screenshots are written, a folder per backend.
fn screenshot_dir(backend: Backend) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target
        .join("screenshots")
        .join(format!("{backend:?}").to_lowercase());
    std::fs::create_dir_all(&dir).expect("create the screenshot folder");
    dir
}

/// Three days of traffic: each day 300 new users per variant, half from CN and half
/// from US; 12% of control's users buy and 7% of premium's (9%, then 6.7% and 5.3%
/// by day), so premium is clearly worse.
fn three_days_of_traffic() -> Vec<Value> {
    let mut events = Vec::new();
    for day in 0..3 {
        for (variant, buyers) in [("control", 36), ("premium", [27, 20, 16][day])] {
            for i in 0..300 {
                let user = format!("{variant}-{day}-{i}");
                let date = common::day(day as i64);
                let country = if i % 2 == 0 { "CN" } else { "US" };
                events.push(json!({"id": format!("x-{user}"), "type": "exposure", "user": user,
                    "experiment": "pricing-q4", "variant": variant, "ts": format!("{date}T10:00:00Z"),
                    "attributes": {"country": country}}));
                if i < buyers {
                    events.push(
                        json!({"id": format!("p-{user}"), "type": "track", "user": user,
                        "event": "purchase", "value": 10.0, "ts": format!("{date}T11:00:00Z")}),
                    );
                }
            }
        }
    }
    events
}

/// The keys a person types into an en-US date field for `YYYY-MM-DD`.
fn typed_date(date: &str) -> String {
    let [year, month, day]: [&str; 3] = date.split('-').collect::<Vec<_>>().try_into().unwrap();
    format!("{month}{day}{year}")
}

async fn define_metrics(app: &TestApp) {
    for metric in pricing_metrics() {
        let reply = app.post("/api/v1/metrics", &app.editor, metric).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }
}

/// Fills the new-experiment form with a valid pricing test, except that the
/// second variant's weight is `premium_weight`.
async fn fill_pricing_form(browser: &Browser, premium_weight: &str) {
    browser.fill("#key", "pricing-q4").await;
    browser.fill("#name", "Premium price").await;
    browser
        .fill("#hypothesis", "A higher price keeps buyers")
        .await;
    browser.fill("#variants-0--key", "control").await;
    browser.fill("#variants-0--weight", "0.5").await;
    browser
        .fill("#variants-0--value", r#"{"price": 199}"#)
        .await;
    browser.fill("#variants-1--key", "premium").await;
    browser.fill("#variants-1--weight", premium_weight).await;
    browser
        .fill("#variants-1--value", r#"{"price": 249}"#)
        .await;
    browser
        .fill("#condition", r#"{"country": {"$in": ["CN", "US"]}}"#)
        .await;
    browser
        .click("#primary_metric option[value=purchase]")
        .await;
    browser
        .click("#guardrails-0--metric option[value=purchase]")
        .await;
    browser.fill("#guardrails-0--max_drop", "0.2").await;
    browser.fill("#guardrails-0--min_users", "500").await;
    browser
        .click("#guardrails-0--action option[value=rollback]")
        .await;
    browser
        .click("input[name=secondary_metrics][value=revenue]")
        .await;
    browser.fill("#dimensions", "country").await;
}

/// Serves the app on a free local port; returns its base URL.
async fn serve(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app.router.clone()).into_future());
    base
}

async fn sign_in(browser: &Browser, base: &str, key: &str) {
    browser.goto(&format!("{base}/signin")).await;
    browser.fill("#key", key).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url(&format!("{base}/")).await;
}

async fn a_team_runs_and_rolls_back_an_experiment_in_the_browser(backend: Backend) {
    let app = TestApp::on(backend).await;
    define_metrics(&app).await;
    let base = serve(&app).await;
    let shots = screenshot_dir(backend);
    let browser = Browser::start().await;

    // Without a session every page leads to sign-in.
    browser.goto(&format!("{base}/")).await;
    browser.wait_for_url(&format!("{base}/signin")).await;
    browser.screenshot(&shots.join("signin.png")).await;
    sign_in(&browser, &base, &app.editor).await;
    assert!(browser.text("header.top").await.contains("editor-tester"));

    // A rejected entry shows the API's message beside its field, then a fix passes.
    browser.click("a[href='/experiments/new']").await;
    fill_pricing_form(&browser, "1.5").await;
    browser.click("#save").await;
    let problem = browser.text("#variants-1--weight-error").await;
    assert_eq!(problem, "must be a number from 0 to 1");
    assert!(browser
        .text("#problems")
        .await
        .contains("weights must sum to 1"));
    browser.screenshot(&shots.join("form-rejected.png")).await;
    browser.fill("#variants-1--weight", "0.5").await;
    browser.click("#save").await;
    browser
        .wait_for_url(&format!("{base}/experiments/pricing-q4"))
        .await;
    assert_eq!(browser.text("#status").await, "draft");

    // Starting asks first and says what happens to users.
    browser.click("#lifecycle a[href$='action=start']").await;
    assert!(browser
        .text("#consequence")
        .await
        .contains("100.0% of them enter the experiment"));
    browser.click("#confirm").await;
    assert_eq!(browser.text("#status").await, "running");

    // Traffic over the API shows up in the report and its chart.
    let reply = app
        .post(
            "/sdk/v1/events",
            &app.sdk,
            json!({"events": three_days_of_traffic()}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    browser
        .goto(&format!("{base}/experiments/pricing-q4"))
        .await;
    let table = browser.text("#metric-purchase table.stats").await;
    assert!(table.contains("premium 900"), "{table}");
    assert!(table.contains("-41.7%"), "{table}");
    assert_eq!(
        browser.count("#metric-purchase svg polyline.effect").await,
        1
    );
    assert_eq!(browser.count("#metric-purchase svg polygon.band").await, 1);
    assert_eq!(
        browser.count("#metric-revenue svg polyline.effect").await,
        1
    );
    browser.click("#dimension option[value=country]").await;
    browser.click("#apply-filter").await;
    let page = format!("{base}/experiments/pricing-q4");
    browser
        .wait_for_url(&format!("{page}?from=&to=&dimension=country&dimension="))
        .await;
    let segments = browser.text("#breakdown").await;
    assert!(segments.contains("CN 900 users"), "{segments}");
    assert!(segments.contains("US 900 users"), "{segments}");
    browser.resize(1280, 3600).await;
    browser.screenshot(&shots.join("experiment.png")).await;
    browser.resize(390, 1800).await;
    browser
        .screenshot(&shots.join("experiment-phone.png"))
        .await;
    browser.resize(1280, 900).await;

    // A filter set in the form is in the URL, and every table follows it.
    let since = common::day(1);
    browser.fill("#from", &typed_date(&since)).await;
    browser
        .click("#segment-country option[value='country:CN']")
        .await;
    browser.click("#apply-filter").await;
    browser
        .wait_for_url(&format!(
            "{page}?from={since}&to=&segment=country%3ACN&dimension=country&dimension="
        ))
        .await;
    let table = browser.text("#metric-purchase table.stats").await;
    assert!(table.contains("premium 300"), "{table}");
    let summary = browser.text("#filter-summary").await;
    assert!(summary.contains("with country CN"), "{summary}");
    let segments = browser.text("#breakdown").await;
    assert!(segments.contains("CN 600 users"), "{segments}");
    assert_eq!(browser.count("#breakdown h3").await, 1, "{segments}");
    // The CSV link exports exactly this view: what the API gives for the same query.
    let exported = browser
        .execute(
            "const r = new XMLHttpRequest(); \
             r.open('GET', document.getElementById('export-csv').href, false); \
             r.send(); return r.responseText;",
        )
        .await;
    let exported = exported.as_str().unwrap_or_default().to_owned();
    let query = format!("format=csv&from={since}&segment=country%3ACN&dimension=country");
    let api = app
        .get(
            &format!("/api/v1/experiments/pricing-q4/report?{query}"),
            &app.analyst,
        )
        .await;
    let api_csv = api.body.as_str().unwrap_or_default().to_owned();
    assert!(exported.contains("country:CN"), "{exported}");
    assert_eq!(exported, api_csv);
    browser.resize(1280, 3600).await;
    browser
        .screenshot(&shots.join("experiment-filtered.png"))
        .await;
    browser.resize(1280, 900).await;
    browser.click("#clear-filter").await;
    browser
        .wait_for_url(&format!("{page}?dimension=country"))
        .await;
    let table = browser.text("#metric-purchase table.stats").await;
    assert!(table.contains("premium 900"), "{table}");

    // Rolling back names its effect, happens, and is in the audit timeline.
    browser.click("#lifecycle a[href$='action=rollback']").await;
    assert!(browser
        .text("#consequence")
        .await
        .contains("Everyone gets control"));
    browser
        .screenshot(&shots.join("confirm-rollback.png"))
        .await;
    browser.click("#confirm").await;
    assert_eq!(browser.text("#status").await, "rolled back");
    let audit = browser.text("#audit li:first-child").await;
    assert!(audit.contains("roll back by editor-tester"), "{audit}");
    assert!(audit.contains("running → rolled back"), "{audit}");

    browser.goto(&format!("{base}/")).await;
    assert!(browser.text("#experiments").await.contains("rolled back"));
    browser.screenshot(&shots.join("experiments.png")).await;
}

async fn an_admin_sets_up_metrics_webhooks_keys_and_plans_in_the_browser(backend: Backend) {
    let app = TestApp::on(backend).await;
    let base = serve(&app).await;
    let shots = screenshot_dir(backend);
    let browser = Browser::start().await;
    sign_in(&browser, &base, &app.admin).await;

    browser.goto(&format!("{base}/settings/metrics")).await;
    browser.fill("#key", "bad key").await;
    browser.fill("#event", "purchase").await;
    browser.click("#define-metric").await;
    assert!(browser
        .text("#key-error")
        .await
        .starts_with("must be 1 to 64"));
    browser.fill("#key", "purchase").await;
    browser.fill("#name", "Purchase").await;
    browser.click("#define-metric").await;
    assert!(browser.text("#metrics").await.contains("purchase"));
    browser.screenshot(&shots.join("metrics.png")).await;

    browser.goto(&format!("{base}/settings/webhooks")).await;
    browser
        .fill("#url", "http://127.0.0.1:9/hooks/sluice")
        .await;
    browser.fill("#secret", "short").await;
    browser.click("input[name=events][value=rollback]").await;
    browser.click("#add-webhook").await;
    assert_eq!(
        browser.text("#secret-error").await,
        "must be 16 to 256 characters"
    );
    browser
        .fill("#secret", "a-signing-secret-of-some-length")
        .await;
    browser.click("#add-webhook").await;
    assert!(browser.text("#webhooks").await.contains("roll back"));
    browser.screenshot(&shots.join("webhooks.png")).await;

    browser.goto(&format!("{base}/planning")).await;
    browser.fill("#baseline", "0.1").await;
    browser.fill("#mde", "0.05").await;
    browser.click("#calculate").await;
    let answer = browser.text("#answer").await;
    assert!(answer.contains("users per variant"), "{answer}");
    browser.screenshot(&shots.join("planning.png")).await;

    // The switch shows the same page in Chinese, and the choice is remembered.
    let asked = "planning?baseline=0.1&variance=&mde=0.05&users=&alpha=0.05&power=0.8&variants=2";
    browser.click("#language").await;
    browser.wait_for_url(&format!("{base}/{asked}")).await;
    assert_eq!(browser.text("h1").await, "样本量计算器");
    assert!(browser.text("#answer").await.contains("每个变体"));
    browser.screenshot(&shots.join("planning-zh.png")).await;
    browser.goto(&format!("{base}/settings/webhooks")).await;
    assert!(browser.source().await.contains(r#"<html lang="zh-CN">"#));
    assert_eq!(browser.text("h1").await, "Webhook 通知");
    browser.screenshot(&shots.join("webhooks-zh.png")).await;
    browser.click("#language").await;
    browser
        .wait_for_url(&format!("{base}/settings/webhooks"))
        .await;
    assert_eq!(browser.text("h1").await, "Webhooks");

    // A key minted on the keys page signs in, with what its role allows.
    browser.goto(&format!("{base}/settings/keys")).await;
    browser.click("#role option[value=analyst]").await;
    browser.fill("#key-name", "ana").await;
    browser.click("#create-key").await;
    let secret = browser.text("#minted code.secret").await;
    assert!(secret.starts_with("sk_analyst_"), "{secret}");
    browser.click("form.signout button").await;
    browser.wait_for_url(&format!("{base}/signin")).await;
    sign_in(&browser, &base, &secret).await;
    assert!(browser.text("header.top").await.contains("ana"));
    let home = browser.source().await;
    assert!(!home.contains("/experiments/new"));
    assert!(!home.contains("/settings/keys"));
    browser.goto(&format!("{base}/settings/keys")).await;
    assert_eq!(browser.text("h1").await, "403 Forbidden");
}

/// Creates `key` like the pricing experiment, with `changes` merged in, and takes
/// it through `actions`, straight through the control layer (many experiments
/// would pass the API's rate limit).
async fn experiment_like_pricing(app: &TestApp, key: &str, changes: Value, actions: &[&str]) {
    let mut spec = common::pricing_spec();
    spec["key"] = key.into();
    if let (Some(spec), Some(changes)) = (spec.as_object_mut(), changes.as_object()) {
        spec.extend(changes.clone());
    }
    let control = app.server.control();
    let spec = serde_json::from_value(spec).unwrap();
    control.create_experiment(spec, &Actor::Cli).await.unwrap();
    for action in actions {
        let action = LifecycleAction::from_name(action, None).unwrap();
        control.act(key, action, &Actor::Cli).await.unwrap();
    }
}

/// The keys of the experiments the overview's grid shows, in order.
async fn overview_rows(browser: &Browser) -> Vec<String> {
    let source = browser.source().await;
    let Some(start) = source.find(r#"id="overview-grid""#) else {
        return Vec::new();
    };
    source[start..]
        .split(r#"<td><a href="/experiments/"#)
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

/// Issue #15: the KPI overview in a browser, with each filter, its pages, the
/// refresh, and in Chinese; then the edit form of a running experiment.
async fn a_team_watches_the_overview_and_edits_a_running_experiment(backend: Backend) {
    let app = TestApp::on(backend).await;
    define_metrics(&app).await;
    let env = json!({"key": "staging", "name": "Staging"});
    let reply = app.post("/api/v1/environments", &app.admin, env).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    experiment_like_pricing(&app, "pricing-q4", json!({}), &["start"]).await;
    experiment_like_pricing(&app, "paused-q4", json!({}), &["start", "pause"]).await;
    let staged = json!({"environments": ["staging"],
        "stages": [{"coverage": 0.05, "hold_seconds": 86400}, {"coverage": 1.0}]});
    experiment_like_pricing(&app, "staging-q4", staged, &["start"]).await;
    for i in 0..52 {
        experiment_like_pricing(&app, &format!("calm-{i:02}"), json!({}), &["start"]).await;
    }
    let reply = app
        .post(
            "/sdk/v1/events",
            &app.sdk,
            json!({"events": three_days_of_traffic()}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    let base = serve(&app).await;
    let shots = screenshot_dir(backend);
    let browser = Browser::start().await;
    sign_in(&browser, &base, &app.analyst).await;

    // Red first, with the guardrail's evidence; the script says it refreshes.
    browser.click("header.top a[href='/overview']").await;
    browser.wait_for_url(&format!("{base}/overview")).await;
    let rows = overview_rows(&browser).await;
    assert_eq!(rows.len(), 50, "a page of fifty");
    assert_eq!(rows[0], "pricing-q4");
    let first = browser.text("#overview tbody tr:first-child").await;
    assert!(first.contains("red"), "{first}");
    assert!(
        first.contains("premium: purchase -41.7% vs control"),
        "{first}"
    );
    assert_eq!(
        browser.text("#refresh-note").await,
        "Refreshes itself every 30 seconds."
    );
    browser.resize(1280, 1400).await;
    browser.screenshot(&shots.join("overview.png")).await;

    // Pages keep the filters.
    browser.click("#page-next").await;
    browser
        .wait_for_url(&format!("{base}/overview?status=running&page=2"))
        .await;
    assert_eq!(overview_rows(&browser).await.len(), 54 - 50);
    browser.click("#page-previous").await;
    browser
        .wait_for_url(&format!("{base}/overview?status=running"))
        .await;

    // The status filter.
    browser.click("#status option[value=paused]").await;
    browser.click("#apply-filters").await;
    browser
        .wait_for_url(&format!(
            "{base}/overview?status=paused&environment=&from=&to=&segment="
        ))
        .await;
    assert_eq!(overview_rows(&browser).await, ["paused-q4"]);

    // The environment filter: staging serves staging-q4 and what is served everywhere.
    browser.click("#status option[value=running]").await;
    browser.click("#environment option[value=production]").await;
    browser.click("#apply-filters").await;
    browser
        .wait_for_url(&format!(
            "{base}/overview?status=running&environment=production&from=&to=&segment="
        ))
        .await;
    assert_eq!(browser.text("nav.pages .sub").await, "1–50 of 53");
    browser.click("#environment option[value=staging]").await;
    browser.click("#apply-filters").await;
    browser
        .wait_for_url(&format!(
            "{base}/overview?status=running&environment=staging&from=&to=&segment="
        ))
        .await;
    assert_eq!(browser.text("nav.pages .sub").await, "1–50 of 54");
    browser.click("#page-next").await;
    browser
        .wait_for_url(&format!(
            "{base}/overview?status=running&environment=staging&page=2"
        ))
        .await;
    assert!(overview_rows(&browser)
        .await
        .contains(&"staging-q4".to_owned()));

    // A kept dimension's value: nobody was exposed with it, so no row is red, and
    // the page says whom it counts; the link carries the segment.
    browser
        .goto(&format!("{base}/overview?status=running"))
        .await;
    assert!(browser.count("#overview tr[data-health=red]").await > 0);
    browser.fill("#segment-1", "country:XX").await;
    browser.click("#apply-filters").await;
    browser
        .wait_for_url(&format!(
            "{base}/overview?status=running&environment=&from=&to=&segment=country%3AXX"
        ))
        .await;
    assert!(browser
        .text("#cohort-applied")
        .await
        .contains("country = XX"));
    assert_eq!(browser.count("#overview tr[data-health=red]").await, 0);
    // A time range: users first exposed from 2999 on are nobody yet.
    browser
        .goto(&format!("{base}/overview?status=running"))
        .await;
    browser.fill("#from", &typed_date("2999-01-01")).await;
    browser.click("#apply-filters").await;
    browser
        .wait_for_url(&format!(
            "{base}/overview?status=running&environment=&from=2999-01-01&to=&segment="
        ))
        .await;
    assert_eq!(browser.count("#overview tr[data-health=red]").await, 0);
    assert_eq!(browser.count("#cohort-applied").await, 1);

    // The grid refreshes itself: rolling back pricing-q4 takes it off the grid.
    browser
        .goto(&format!("{base}/overview?status=running"))
        .await;
    browser
        .execute("document.getElementById('overview-grid').dataset.stale = 'yes';")
        .await;
    let reply = app
        .post(
            "/api/v1/experiments/pricing-q4/rollback",
            &app.editor,
            json!({}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    browser
        .execute("document.dispatchEvent(new Event('visibilitychange'));")
        .await;
    let started = std::time::Instant::now();
    while browser.count("#overview-grid[data-stale]").await > 0 {
        assert!(
            started.elapsed().as_secs() < 10,
            "the grid was not refreshed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_ne!(overview_rows(&browser).await[0], "pricing-q4");

    // In Chinese.
    browser.click("#language").await;
    browser
        .wait_for_url(&format!("{base}/overview?status=running"))
        .await;
    assert_eq!(browser.text("h1").await, "关键指标总览");
    assert_eq!(browser.text("#refresh-note").await, "每 30 秒自动刷新。");
    browser.screenshot(&shots.join("overview-zh.png")).await;
    browser.click("#language").await;
    browser
        .wait_for_url(&format!("{base}/overview?status=running"))
        .await;

    // The edit form of a running experiment: what would reshuffle users is
    // read-only and the form says why; the rest still changes.
    browser.click("form.signout button").await;
    browser.wait_for_url(&format!("{base}/signin")).await;
    sign_in(&browser, &base, &app.editor).await;
    browser
        .goto(&format!("{base}/experiments/calm-00/edit"))
        .await;
    for locked in [
        "#variants-0--key",
        "#variants-1--weight",
        "#variants-2--key",
        "#hash_attribute",
        "#namespace-name",
    ] {
        assert!(
            browser.attribute(locked, "readonly").await.is_some(),
            "{locked} is read-only"
        );
    }
    assert!(browser
        .attribute("#variants-1--value", "readonly")
        .await
        .is_none());
    assert!(browser
        .text("#frozen-note")
        .await
        .contains("Once the experiment has started, the variants' keys and weights"));
    browser.resize(1280, 1800).await;
    browser.screenshot(&shots.join("form-frozen.png")).await;
    browser.resize(1280, 900).await;
    browser.fill("#coverage", "0.5").await;
    browser.click("#save").await;
    browser
        .wait_for_url(&format!("{base}/experiments/calm-00"))
        .await;
    let now = app.get("/api/v1/experiments/calm-00", &app.analyst).await;
    assert_eq!(now.body["coverage"], 0.5);
}

/// An editor defines a windowed, capped count (after the form refused a window
/// that ends too late) and then a ratio of two metrics through the form.
async fn an_editor_defines_a_ratio_metric_in_the_browser(backend: Backend) {
    let app = TestApp::on(backend).await;
    define_metrics(&app).await;
    let base = serve(&app).await;
    let shots = screenshot_dir(backend);
    let browser = Browser::start().await;
    sign_in(&browser, &base, &app.editor).await;

    browser.goto(&format!("{base}/settings/metrics")).await;
    browser.fill("#key", "orders").await;
    browser.click("#kind option[value=count]").await;
    browser.fill("#event", "purchase").await;
    browser.fill("#window-delay_hours", "9000").await;
    browser.fill("#window-hours", "24").await;
    browser.fill("#cap", "20").await;
    browser.click("#define-metric").await;
    assert_eq!(
        browser.text("#window-delay_hours-error").await,
        "must be 0 to 8784"
    );
    assert_eq!(
        browser
            .attribute("#window-delay_hours", "aria-invalid")
            .await
            .as_deref(),
        Some("true")
    );
    browser.fill("#window-delay_hours", "168").await;
    browser.click("#define-metric").await;
    browser
        .wait_for_url(&format!("{base}/settings/metrics"))
        .await;
    let orders = browser.text("#metric-orders").await;
    assert!(
        orders.contains("day 7 after exposure, for 24 h"),
        "{orders}"
    );
    assert!(orders.contains("at most 20 per user"), "{orders}");

    browser.fill("#key", "per_order").await;
    browser.fill("#name", "Revenue per order").await;
    browser.click("#kind option[value=ratio]").await;
    browser.click("#numerator option[value=revenue]").await;
    browser.click("#denominator option[value=orders]").await;
    browser.click("#define-metric").await;
    let ratio = browser.text("#metric-per_order").await;
    assert!(ratio.contains("ratio"), "{ratio}");
    assert!(ratio.contains("revenue ÷ orders"), "{ratio}");
    let stored = app.get("/api/v1/metrics/per_order", &app.analyst).await;
    assert_eq!(stored.body["denominator"], "orders", "{:?}", stored.body);
    browser.resize(1280, 1400).await;
    browser.screenshot(&shots.join("metric-ratio.png")).await;
}

/// A CUPED experiment's page: its badge, the variance each comparison lost, θ in
/// a title, the users still in D7's window, and the CUPED metric's daily chart.
async fn a_cuped_experiment_reads_in_the_browser(backend: Backend) {
    let app = TestApp::on(backend).await;
    common::shop::a_cuped_experiment_with_data(&app).await;
    let base = serve(&app).await;
    let shots = screenshot_dir(backend);
    let browser = Browser::start().await;
    sign_in(&browser, &base, &app.analyst).await;
    browser.goto(&format!("{base}/experiments/checkout")).await;
    assert_eq!(browser.text("#cuped").await, "CUPED · 14-day lookback");
    let basket = browser.text("#metric-basket table.stats").await;
    assert!(basket.contains("variance −"), "{basket}");
    let theta = browser
        .attribute("#metric-basket .cuped", "title")
        .await
        .unwrap_or_default();
    assert!(theta.starts_with("CUPED θ = "), "{theta}");
    let d7 = browser.text("#metric-d7").await;
    assert!(d7.contains("50 users still in their window"), "{d7}");
    let chart = browser.text("#metric-basket figure.chart figcaption").await;
    assert!(!chart.is_empty(), "the CUPED metric has its daily chart");
    browser.resize(1280, 2400).await;
    browser
        .screenshot(&shots.join("experiment-cuped.png"))
        .await;
}

on_both_backends!(
    a_cuped_experiment_reads_in_the_browser,
    an_editor_defines_a_ratio_metric_in_the_browser,
    a_team_watches_the_overview_and_edits_a_running_experiment,
    a_team_runs_and_rolls_back_an_experiment_in_the_browser,
    an_admin_sets_up_metrics_webhooks_keys_and_plans_in_the_browser,
);
