//! The dashboard over plain HTTP: sessions, CSRF and roles. A request without a
//! session goes to sign-in; a form without the right CSRF token, or from a role
//! that may not act, is refused and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::header::{ACCEPT_LANGUAGE, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE, VARY};
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use common::counting::calls_made_by;
use common::shop::{a_cuped_experiment_with_data, shop_metrics};
use common::{Backend, TestApp};
use sluice::domain::{Actor, LifecycleAction};

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    html: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
    }

    /// The CSRF token the page's forms carry.
    fn csrf(&self) -> String {
        let start = self
            .html
            .find(r#"name="csrf" value=""#)
            .expect("a CSRF field")
            + 19;
        self.html[start..start + self.html[start..].find('"').unwrap()].to_owned()
    }

    fn set_cookie(&self) -> String {
        self.headers
            .get(SET_COOKIE)
            .and_then(|c| c.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

async fn request(app: &TestApp, method: Method, path: &str, cookie: &str, form: &str) -> Page {
    request_in(app, method, path, cookie, form, "").await
}

/// [`request`] with an `Accept-Language` header.
async fn request_in(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    form: &str,
    accept_language: &str,
) -> Page {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(COOKIE, cookie)
        .header(ACCEPT_LANGUAGE, accept_language)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        html: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Signs in with `key` through the form; the session cookie to send back.
async fn signed_in(app: &TestApp, key: &str) -> String {
    let form = request(app, Method::GET, "/signin", "", "").await;
    let csrf = form.csrf();
    let body = format!("csrf={csrf}&key={key}");
    let page = request(
        app,
        Method::POST,
        "/signin",
        &format!("sluice_signin={csrf}"),
        &body,
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let cookie = page.set_cookie();
    cookie.split(';').next().unwrap().to_owned()
}

/// One session per key (keys are fresh in every test), so that a page's CSRF
/// token fits the next form posted with the same key.
async fn session(app: &TestApp, key: &str) -> String {
    static SESSIONS: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());
    if let Some(cookie) = SESSIONS.lock().unwrap().get(key) {
        return cookie.clone();
    }
    let cookie = signed_in(app, key).await;
    SESSIONS
        .lock()
        .unwrap()
        .insert(key.to_owned(), cookie.clone());
    cookie
}

async fn get(app: &TestApp, path: &str, key: &str) -> Page {
    request(app, Method::GET, path, &session(app, key).await, "").await
}

async fn post(app: &TestApp, path: &str, key: &str, form: &str) -> Page {
    request(app, Method::POST, path, &session(app, key).await, form).await
}

async fn status_of(app: &TestApp, key: &str) -> String {
    let reply = app
        .get(&format!("/api/v1/experiments/{key}"), &app.analyst)
        .await;
    reply.body["status"].as_str().unwrap_or_default().to_owned()
}

async fn pages_without_a_session_lead_to_sign_in(backend: Backend) {
    let app = TestApp::on(backend).await;
    for path in [
        "/",
        "/overview",
        "/overview?status=asleep",
        "/experiments/new",
        "/experiments/pricing-q4",
        "/planning",
    ] {
        let page = request(&app, Method::GET, path, "", "").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location(), "/signin", "{path}");
    }
    let page = request(
        &app,
        Method::GET,
        "/",
        "sluice_session=sk_editor_unknown",
        "",
    )
    .await;
    assert_eq!(page.location(), "/signin");
}

/// Regression (issue 12): the cookie was the API key itself, a permanent Bearer
/// credential that signing out could not end.
async fn the_session_cookie_is_not_the_key_and_ends_on_the_server(backend: Backend) {
    let app = TestApp::on(backend).await;
    let by_key = format!("sluice_session={}", app.editor);
    let page = request(&app, Method::GET, "/", &by_key, "").await;
    assert_eq!(
        page.location(),
        "/signin",
        "a key in the cookie signs nobody in"
    );

    let cookie = signed_in(&app, &app.editor).await;
    let id = cookie.trim_start_matches("sluice_session=");
    assert!(!id.contains(&app.editor) && id.len() == 64, "{cookie}");
    let home = request(&app, Method::GET, "/", &cookie, "").await;
    assert_eq!(home.status, StatusCode::OK);
    let form = format!("csrf={}", home.csrf());
    let out = request(&app, Method::POST, "/signout", &cookie, &form).await;
    assert_eq!(out.location(), "/signin");
    let replayed = request(&app, Method::GET, "/", &cookie, "").await;
    assert_eq!(
        replayed.location(),
        "/signin",
        "signing out ends the session"
    );

    let admin = signed_in(&app, &app.admin).await;
    let keys = app.get("/api/v1/keys", &app.admin).await.body;
    let admin_id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "admin-tester")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let expired = "e".repeat(64);
    let hash = sluice::domain::key::hash_secret(&expired);
    let past = sluice::domain::now_millis() - 1000;
    app.store
        .insert_session(&hash, admin_id, past - 1000, past)
        .await
        .unwrap();
    let stale = request(
        &app,
        Method::GET,
        "/",
        &format!("sluice_session={expired}"),
        "",
    )
    .await;
    assert_eq!(
        stale.location(),
        "/signin",
        "expiry is enforced by the server"
    );
    assert_eq!(
        request(&app, Method::GET, "/", &admin, "").await.status,
        StatusCode::OK
    );
}

async fn signing_in_sets_a_strict_http_only_cookie_and_signing_out_clears_it(backend: Backend) {
    let app = TestApp::on(backend).await;
    let form = request(&app, Method::GET, "/signin", "", "").await;
    let csrf = form.csrf();
    let pre = format!("sluice_signin={csrf}");
    let body = format!("csrf={csrf}&key={}", app.editor);

    let forged = request(&app, Method::POST, "/signin", "sluice_signin=other", &body).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let sdk = format!("csrf={csrf}&key={}", app.sdk);
    let refused = request(&app, Method::POST, "/signin", &pre, &sdk).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.html.contains("SDK keys cannot sign in"));

    let signed_in = request(&app, Method::POST, "/signin", &pre, &body).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let cookie = signed_in.set_cookie();
    assert!(cookie.starts_with("sluice_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP by default: {cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();

    let home = request(&app, Method::GET, "/", &session, "").await;
    assert_eq!(home.status, StatusCode::OK);
    let policy = home.headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let out = request(
        &app,
        Method::POST,
        "/signout",
        &session,
        &format!("csrf={}", home.csrf()),
    )
    .await;
    assert_eq!(out.location(), "/signin");
    assert!(out.set_cookie().starts_with("sluice_session=;"));
    assert!(out.set_cookie().contains("Max-Age=0"));
}

async fn a_form_without_the_right_csrf_token_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let path = "/experiments/pricing-q4/act";
    let missing = post(&app, path, &app.editor, "action=start").await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let wrong = post(&app, path, &app.editor, "action=start&csrf=0123abcd").await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    // Another key's token is no good either.
    let analyst_page = get(&app, "/", &app.analyst).await;
    let borrowed = format!("action=start&csrf={}", analyst_page.csrf());
    let borrowed = post(&app, path, &app.editor, &borrowed).await;
    assert_eq!(borrowed.status, StatusCode::FORBIDDEN);
    assert_eq!(status_of(&app, "pricing-q4").await, "draft");

    let page = get(&app, "/experiments/pricing-q4", &app.editor).await;
    let started = post(
        &app,
        path,
        &app.editor,
        &format!("action=start&csrf={}", page.csrf()),
    )
    .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER);
    assert_eq!(started.location(), "/experiments/pricing-q4");
    assert_eq!(status_of(&app, "pricing-q4").await, "running");
}

async fn an_analyst_sees_no_lifecycle_buttons_and_may_not_act(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    app.send_traffic((600, 60), (600, 30)).await;

    let page = get(&app, "/experiments/pricing-q4", &app.analyst).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("Export CSV"));
    assert!(!page.html.contains("/confirm?action="));
    assert!(!page.html.contains("/edit\""));
    let form = format!("action=rollback&csrf={}", page.csrf());
    let refused = post(&app, "/experiments/pricing-q4/act", &app.analyst, &form).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(status_of(&app, "pricing-q4").await, "running");
    let confirm = get(
        &app,
        "/experiments/pricing-q4/confirm?action=rollback",
        &app.analyst,
    )
    .await;
    assert_eq!(confirm.status, StatusCode::FORBIDDEN);

    let editor_page = get(&app, "/experiments/pricing-q4", &app.editor).await;
    assert!(editor_page
        .html
        .contains("/experiments/pricing-q4/confirm?action=rollback"));
    assert!(!editor_page.html.contains("confirm?action=start"));
}

async fn the_experiment_page_shows_the_report_chart_and_csv(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    app.send_traffic((600, 60), (600, 30)).await;

    let page = get(&app, "/experiments/pricing-q4", &app.analyst).await;
    assert!(page.html.contains("-50.0%"), "the lift of premium");
    assert!(page.html.contains(r#"<polyline class="effect""#));
    assert!(
        page.html.contains("triggers roll back"),
        "the guardrail's action"
    );
    let csv = get(&app, "/experiments/pricing-q4/report.csv", &app.analyst).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv.html.contains("premium"));
    let list = get(&app, "/?status=running&q=pricing", &app.analyst).await;
    assert!(list.html.contains("premium -50.0%"));
    let none = get(&app, "/?status=draft", &app.analyst).await;
    assert!(none.html.contains("No experiment matches this filter."));
}

/// 800 users over two days, from CN and US on iOS and Android, half in each
/// variant; every fifth buys.
async fn shoppers_in_two_countries_on_two_devices(app: &TestApp) {
    app.pricing_experiment().await;
    let dimensions = serde_json::json!({"dimensions": ["country", "device"]});
    let patched = app
        .patch("/api/v1/experiments/pricing-q4", &app.editor, dimensions)
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    app.start("pricing-q4").await;
    let mut events = Vec::new();
    for i in 0..800 {
        let user = format!("s{i}");
        let variant = if i % 8 < 4 { "control" } else { "premium" };
        let (country, device) = (["CN", "US"][i % 2], ["ios", "android"][(i / 2) % 2]);
        let attributes = serde_json::json!({"country": country, "device": device});
        let day = common::day((i / 4 % 2) as i64);
        events.push(
            serde_json::json!({"id": format!("x-{user}"), "type": "exposure",
            "user": user, "experiment": "pricing-q4", "variant": variant,
            "attributes": attributes, "ts": format!("{day}T10:00:00Z")}),
        );
        if i % 5 == 0 {
            events.push(
                serde_json::json!({"id": format!("p-{user}"), "type": "track",
                "user": user, "event": "purchase", "value": (i % 7 + 1) as f64 * 10.0,
                "ts": format!("{}T20:00:00Z", common::day(1))}),
            );
        }
    }
    let stored = app
        .post(
            "/sdk/v1/events",
            &app.sdk,
            serde_json::json!({"events": events}),
        )
        .await;
    assert_eq!(stored.status, StatusCode::ACCEPTED, "{:?}", stored.body);
}

/// What the page must show of an API report: each variant's row of each metric's
/// table (users and mean) and each breakdown segment's heading.
fn shown_numbers(report: &serde_json::Value) -> Vec<String> {
    let rows = |metrics: &serde_json::Value| -> Vec<String> {
        let metrics = metrics.as_array().unwrap();
        metrics
            .iter()
            .flat_map(|m| m["variants"].as_array().unwrap().clone())
            .map(|v| {
                let mean = v["mean"]
                    .as_f64()
                    .map_or("—".to_owned(), |m| format!("{m:.4}"));
                format!(
                    r#"<th scope="row">{}</th><td>{}</td><td>{mean}</td>"#,
                    v["variant"].as_str().unwrap(),
                    v["users"]
                )
            })
            .collect()
    };
    let mut shown = rows(&report["metrics"]);
    for segment in report["breakdown"]["segments"]
        .as_array()
        .into_iter()
        .flatten()
    {
        shown.push(format!(
            r#"<h3>{} <span class="sub">{} users</span></h3>"#,
            segment["value"].as_str().unwrap(),
            segment["users"]
        ));
        shown.extend(rows(&segment["metrics"]));
    }
    shown
}

/// Issue 15: the page takes the API's report query, shows what the API reports
/// for it, says which users it counts, and exports the same CSV as the API.
async fn the_experiment_page_follows_the_report_filters(backend: Backend) {
    let app = TestApp::on(backend).await;
    shoppers_in_two_countries_on_two_devices(&app).await;
    let page_of = |query: String| {
        let app = &app;
        async move {
            let page = get(
                app,
                &format!("/experiments/pricing-q4?{query}"),
                &app.analyst,
            )
            .await;
            let api = app
                .get(
                    &format!("/api/v1/experiments/pricing-q4/report?{query}"),
                    &app.analyst,
                )
                .await;
            assert_eq!(api.status, StatusCode::OK, "{query}: {:?}", api.body);
            (page, api.body)
        }
    };
    let (everyone, everyone_report) = page_of(String::new()).await;
    assert!(!everyone.html.contains("filter-summary"));
    let (day0, day1) = (common::day(0), common::day(1));
    let queries = [
        format!("from={day0}&to={day1}"),
        "segment=country:CN".to_owned(),
        "dimension=country&dimension=device".to_owned(),
        // As the form sends it: blank inputs, a segment, the second select unset.
        format!("from={day1}&to=&segment=device:ios&dimension=country&dimension="),
    ];
    for query in queries {
        let (page, report) = page_of(query.clone()).await;
        assert_eq!(page.status, StatusCode::OK, "{query}: {}", page.html);
        for shown in shown_numbers(&report) {
            assert!(page.html.contains(&shown), "{query}: {shown}");
        }
        if !query.starts_with("dimension") {
            assert_ne!(shown_numbers(&report), shown_numbers(&everyone_report));
        }
        let export = format!("/experiments/pricing-q4/report.csv?{query}");
        assert!(
            page.html.contains(&export.replace('&', "&#38;")),
            "{query}: the CSV link carries the query"
        );
        let csv = get(&app, &export, &app.analyst).await;
        let api_csv = app
            .get(
                &format!("/api/v1/experiments/pricing-q4/report?format=csv&{query}"),
                &app.analyst,
            )
            .await;
        assert_eq!(csv.status, StatusCode::OK, "{}", csv.html);
        assert_eq!(csv.html, api_csv.body.as_str().unwrap(), "{query}");
    }

    let (cn, _) = page_of("segment=country:CN&segment=country:US".to_owned()).await;
    assert!(
        cn.html.contains("Showing users with country CN or US."),
        "{}",
        cn.html
    );
    assert!(cn
        .html
        .contains(r#"<a href="/experiments/pricing-q4" id="clear-filter">"#));
    assert!(cn
        .html
        .contains(r#"<option value="country:US" selected>US</option>"#));
    let (ranged, _) = page_of(format!("from={day0}&to={day1}&dimension=device")).await;
    assert!(ranged.html.contains("Showing users first exposed from "));
    assert!(ranged
        .html
        .contains(&format!(r#"name="from" value="{day0}""#)));
    assert!(ranged
        .html
        .contains(r#"href="/experiments/pricing-q4?dimension=device" id="clear-filter""#));

    let crossed = get(
        &app,
        "/experiments/pricing-q4/report.csv?segment=country:CN&dimension=country,device",
        &app.analyst,
    )
    .await;
    let lines: Vec<&str> = crossed.html.lines().collect();
    assert!(lines[0].ends_with(",from,to,segments,breakdown,segment"));
    assert!(lines[1].ends_with(",,,country:CN,,"), "{}", lines[1]);
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(r#",country:CN,"country,device",CN / ios"#)),
        "{}",
        crossed.html
    );

    for (query, problem) in [
        ("from=yesterday", "must be a date (2026-12-01)"),
        ("segment=email:x", "is not kept by this experiment"),
        (
            "dimension=country&dimension=device&dimension=country",
            "names at most 2 dimensions",
        ),
    ] {
        let page = get(
            &app,
            &format!("/experiments/pricing-q4?{query}"),
            &app.analyst,
        )
        .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(page.html.contains(r#"id="filter-problems""#), "{query}");
        assert!(page.html.contains(problem), "{query}: {}", page.html);
        for shown in shown_numbers(&everyone_report) {
            assert!(page.html.contains(&shown), "{query}: everyone's {shown}");
        }
        let csv = get(
            &app,
            &format!("/experiments/pricing-q4/report.csv?{query}"),
            &app.analyst,
        )
        .await;
        assert_eq!(csv.status, StatusCode::BAD_REQUEST, "{query}");
    }
    let cookie = session(&app, &app.analyst).await;
    let chinese = request_in(
        &app,
        Method::GET,
        "/experiments/pricing-q4?from=yesterday",
        &cookie,
        "",
        "zh-CN",
    )
    .await;
    assert!(
        chinese.html.contains("必须是日期（2026-12-01）"),
        "{}",
        chinese.html
    );
}

async fn the_form_shows_the_api_validation_beside_each_field(backend: Backend) {
    let app = TestApp::on(backend).await;
    let page = get(&app, "/experiments/new", &app.editor).await;
    let form = format!(
        "csrf={}&key=bad%20key&variants%5B0%5D.key=control&variants%5B0%5D.weight=0.5\
         &variants%5B1%5D.key=b&variants%5B1%5D.weight=abc&condition=%7Bnot+json",
        page.csrf()
    );
    let rejected = post(&app, "/experiments/new", &app.editor, &form).await;
    assert_eq!(rejected.status, StatusCode::BAD_REQUEST);
    assert!(rejected
        .html
        .contains(r#"<p class="error" id="condition-error">is not valid JSON"#));

    let form = form.replace("&condition=%7Bnot+json", "");
    let rejected = post(&app, "/experiments/new", &app.editor, &form).await;
    assert!(rejected
        .html
        .contains(r#"id="variants-1--weight-error">invalid type: string"#));

    let form = form.replace("weight=abc", "weight=0.5");
    let rejected = post(&app, "/experiments/new", &app.editor, &form).await;
    assert!(rejected
        .html
        .contains(r#"id="key-error">must be 1 to 64 characters"#));
    let listed = app.get("/api/v1/experiments", &app.editor).await;
    assert_eq!(listed.body, serde_json::json!([]));

    let analyst_csrf = get(&app, "/", &app.analyst).await.csrf();
    let form = form.replace(&page.csrf(), &analyst_csrf);
    let analyst = post(&app, "/experiments/new", &app.analyst, &form).await;
    assert_eq!(analyst.status, StatusCode::FORBIDDEN);
    let listed = app.get("/api/v1/experiments", &app.editor).await;
    assert_eq!(listed.body, serde_json::json!([]));
}

/// The metrics page lists kinds, windows, caps and ratios in words; the form
/// defines a ratio of two metrics and answers a bad window beside its fields, in
/// either language.
async fn shaped_metrics_are_listed_and_defined_through_the_form(backend: Backend) {
    let app = TestApp::on(backend).await;
    shop_metrics(&app, false).await;
    let csrf = get(&app, "/settings/metrics", &app.editor).await.csrf();
    let form = format!(
        "csrf={csrf}&key=per_order&kind=ratio&event=&numerator=basket&denominator=orders\
         &window.delay_hours=&window.hours=&cap=&higher_is_better=true"
    );
    let created = post(&app, "/settings/metrics", &app.editor, &form).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    let stored = app
        .get("/api/v1/metrics/per_order", &app.analyst)
        .await
        .body;
    assert_eq!(stored["numerator"], "basket");
    assert_eq!(stored["denominator"], "orders");

    let page = get(&app, "/settings/metrics", &app.editor).await;
    for shown in [
        "<td>day 7 after exposure, for 24 h</td>",
        "<td>at most 500 per user</td>",
        "<code>basket ÷ orders</code>",
        "<td>ratio</td>",
        "<td>conversion</td>",
    ] {
        assert!(page.html.contains(shown), "{shown}: {}", page.html);
    }
    // A ratio is no part of another ratio.
    assert!(page.html.contains(r#"<option value="basket">"#));
    assert!(!page.html.contains(r#"<option value="per_order">"#));

    let bad = format!(
        "csrf={csrf}&key=late&kind=conversion&event=app_open&numerator=&denominator=\
         &window.delay_hours=9000&window.hours=0&cap=&higher_is_better=true"
    );
    let refused = post(&app, "/settings/metrics", &app.editor, &bad).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    for shown in [
        r#"id="window-delay_hours-error">must be 0 to 8784</p>"#,
        r#"id="window-hours-error">must be more than 0 and at most 8784</p>"#,
        r#"<p class="error" role="alert">must end within a year (8784 hours) of first exposure</p>"#,
        r#"name="window.delay_hours" type="text" value="9000""#,
    ] {
        assert!(refused.html.contains(shown), "{shown}: {}", refused.html);
    }
    let chinese = request(
        &app,
        Method::POST,
        "/settings/metrics",
        &format!("{}; lang=zh-CN", session(&app, &app.editor).await),
        &bad,
    )
    .await;
    assert_eq!(chinese.status, StatusCode::BAD_REQUEST);
    assert!(
        chinese
            .html
            .contains(r#"id="window-hours-error">必须大于 0 且最多为 8784</p>"#),
        "{}",
        chinese.html
    );
    let listed = app.get("/api/v1/metrics", &app.analyst).await.body;
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");
}

/// A CUPED experiment's page names its lookback, each comparison's variance
/// reduction, a ratio's mean and the users still in their window, and charts its
/// shaped metrics; once users were exposed, its
/// edit form says that a change to the lookback rebuilds their values, and takes it.
async fn a_cuped_experiment_shows_its_lookback_variance_reduction_and_pending_users(
    backend: Backend,
) {
    let app = TestApp::on(backend).await;
    a_cuped_experiment_with_data(&app).await;
    let report = app
        .get("/api/v1/experiments/checkout/report", &app.analyst)
        .await
        .body;
    let metric = |key: &str| {
        report["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["metric"] == key)
            .unwrap()
            .clone()
    };
    let reduction = metric("basket")["comparisons"][0]["cuped"]["variance_reduction"]
        .as_f64()
        .unwrap();
    assert!(reduction > 0.5, "{report}");
    let ratio_mean = metric("per_order")["variants"][0]["mean"].as_f64().unwrap();

    let page = get(&app, "/experiments/checkout", &app.analyst).await;
    assert_eq!(page.status, StatusCode::OK);
    for shown in [
        ">CUPED · 14-day lookback</span>".to_owned(),
        format!(">variance −{:.0}%</span>", reduction * 100.0),
        r#"title="CUPED θ = "#.to_owned(),
        format!("<td>{ratio_mean:.4}</td>"),
        ">50 users still in their window</span>".to_owned(),
    ] {
        assert!(page.html.contains(&shown), "{shown}: {}", page.html);
    }
    // Only D7 has a window still open: no pending users under basket.
    let basket = &page.html[page.html.find(r#"id="metric-basket""#).unwrap()..];
    let basket = &basket[..basket.find(r#"id="metric-orders""#).unwrap()];
    assert!(!basket.contains("still in their window"), "{basket}");
    // Shaped metrics have their daily charts, CUPED-adjusted like the table.
    assert!(basket.contains(r#"<figure class="chart">"#), "{basket}");

    let edit = get(&app, "/experiments/checkout/edit", &app.editor).await;
    assert!(
        edit.html.contains(
            r#"name="cuped.lookback_days" type="text" value="14" aria-describedby="cuped-lookback_days-hint">"#
        ),
        "{}",
        edit.html
    );
    assert!(edit
        .html
        .contains(r#"id="cuped-note">Users have been exposed: changing CUPED"#));
    let form = format!(
        "csrf={}&key=checkout&variants%5B0%5D.key=control&variants%5B0%5D.weight=0.5\
         &variants%5B1%5D.key=premium&variants%5B1%5D.weight=0.5&coverage=1&hash_attribute=id\
         &alpha=0.05&primary_metric=basket&secondary_metrics=orders&secondary_metrics=d7\
         &secondary_metrics=per_order&cuped.lookback_days=7",
        edit.csrf()
    );
    let changed = post(&app, "/experiments/checkout/edit", &app.editor, &form).await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.html);
    let kept = app.get("/api/v1/experiments/checkout", &app.analyst).await;
    assert_eq!(kept.body["cuped"]["lookback_days"], 7);

    // Before anyone is exposed the lookback may change.
    let draft = get(&app, "/experiments/new", &app.editor).await;
    assert!(draft
        .html
        .contains(r#"name="cuped.lookback_days" type="text" value="" aria-describedby="cuped-lookback_days-hint">"#));
}

async fn a_sample_ratio_mismatch_is_shown_as_a_warning(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let balanced = get(&app, "/experiments/pricing-q4", &app.analyst).await;
    assert!(!balanced.html.contains("srm-warning"));
    app.send_traffic((700, 70), (500, 50)).await;
    let page = get(&app, "/experiments/pricing-q4", &app.analyst).await;
    assert!(page
        .html
        .contains(r#"id="srm-warning">Sample ratio mismatch"#));
    assert!(page.html.contains("control 700, premium 500"));
    let overview = get(&app, "/overview", &app.analyst).await;
    assert!(overview
        .html
        .contains(r#"<div class="sub srm">Sample ratio mismatch (p = "#));
}

async fn editing_a_running_experiment_ramps_it_but_may_not_reshuffle_users(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let edit = get(&app, "/experiments/pricing-q4/edit", &app.editor).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit
        .html
        .contains(r#"name="variants[1].weight" type="text" value="0.5""#));
    // What the domain refuses to change is read-only, and the form says why.
    for locked in [
        r#"name="variants[1].weight" type="text" value="0.5" aria-describedby="frozen-note" readonly>"#,
        r#"name="variants[3].key" type="text" value="" aria-describedby="frozen-note" readonly>"#,
        r#"name="hash_attribute" type="text" value="id" aria-describedby="hash_attribute-hint frozen-note" readonly>"#,
        r#"name="namespace.name" type="text" value="" aria-describedby="namespace-name-hint frozen-note" readonly>"#,
    ] {
        assert!(edit.html.contains(locked), "{locked}: {}", edit.html);
    }
    assert!(edit
        .html
        .contains(r#"name="variants[1].value" type="text""#));
    assert!(!edit.html.contains(
        r#"name="variants[1].value" type="text" value="{&quot;price&quot;:249}" readonly"#
    ));
    assert!(edit
        .html
        .contains(r#"name="coverage" type="text" value="1" aria-describedby="coverage-hint">"#));
    assert!(edit.html.contains(
        "Once the experiment has started, the variants&#39; keys and weights, the hash attribute, \
         the seed, the hash version, the namespace cannot change: they decide which variant each user gets"
    ));
    experiment_like_pricing(&app, "draft-q4", serde_json::json!({}), &[]).await;
    let draft = get(&app, "/experiments/draft-q4/edit", &app.editor).await;
    assert_eq!(draft.html.matches("readonly").count(), 1, "only the key");
    assert!(!draft.html.contains("frozen-note"));
    let form = |coverage: &str, weights: [&str; 2]| {
        format!(
            "csrf={}&key=pricing-q4&name=Premium+price&variants%5B0%5D.key=control\
             &variants%5B0%5D.weight={}&variants%5B0%5D.value=%7B%22price%22%3A199%7D\
             &variants%5B1%5D.key=premium&variants%5B1%5D.weight={}\
             &variants%5B1%5D.value=%7B%22price%22%3A249%7D&coverage={coverage}\
             &condition=%7B%22country%22%3A%7B%22%24in%22%3A%5B%22CN%22%2C%22US%22%5D%7D%7D\
             &primary_metric=purchase&secondary_metrics=revenue&guardrails%5B0%5D.metric=purchase\
             &guardrails%5B0%5D.max_drop=0.2&guardrails%5B0%5D.min_users=500\
             &guardrails%5B0%5D.action=rollback",
            edit.csrf(),
            weights[0],
            weights[1]
        )
    };
    let path = "/experiments/pricing-q4/edit";
    let refused = post(&app, path, &app.editor, &form("1", ["0.4", "0.6"])).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.html.contains("once the experiment has started"));
    let ramped = post(&app, path, &app.editor, &form("0.25", ["0.5", "0.5"])).await;
    assert_eq!(ramped.status, StatusCode::SEE_OTHER, "{}", ramped.html);
    let now = app
        .get("/api/v1/experiments/pricing-q4", &app.analyst)
        .await;
    assert_eq!(now.body["coverage"], 0.25);
    assert_eq!(
        now.body["secondary_metrics"],
        serde_json::json!(["revenue"])
    );
    let audit = get(&app, "/experiments/pricing-q4", &app.analyst).await;
    assert!(audit.html.contains(r#"data-action="update">update by"#));
}

async fn a_staged_rollout_shows_its_stage_and_when_it_may_advance(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let stages = serde_json::json!({"stages": [
        {"coverage": 0.05, "hold_seconds": 259200}, {"coverage": 0.5, "hold_seconds": 172800},
        {"coverage": 1.0}]});
    let patched = app
        .patch("/api/v1/experiments/pricing-q4", &app.editor, stages)
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    app.start("pricing-q4").await;
    let page = get(&app, "/experiments/pricing-q4", &app.analyst).await;
    assert!(page.html.contains("5.0% · stage 1 of 3"));
    assert!(page
        .html
        .contains(r#"<li class="current" aria-current="step">5.0%, at least 3 days</li>"#));
    assert!(page.html.contains("The next stage begins no earlier than"));
    let list = get(&app, "/", &app.analyst).await;
    assert!(list.html.contains("5.0% · stage 1 of 3"));
}

async fn admins_read_a_webhook_delivery_log(backend: Backend) {
    let app = TestApp::on(backend).await;
    let hook = serde_json::json!({"url": "http://127.0.0.1:9/hook",
        "secret": "a-signing-secret-of-some-length", "events": ["*"]});
    let created = app.post("/api/v1/webhooks", &app.admin, hook).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    app.pricing_experiment().await;

    let list = get(&app, "/settings/webhooks", &app.admin).await;
    assert!(list
        .html
        .contains(&format!(r#"href="/settings/webhooks/{id}""#)));
    assert!(
        list.html.contains(r#"<td data-format="json">"#),
        "the format is listed"
    );
    let log = get(&app, &format!("/settings/webhooks/{id}"), &app.admin).await;
    assert_eq!(log.status, StatusCode::OK);
    assert!(log.html.contains("<td>create</td>"), "{}", log.html);
    let editor = get(&app, &format!("/settings/webhooks/{id}"), &app.editor).await;
    assert_eq!(editor.status, StatusCode::FORBIDDEN);
    let missing = get(&app, "/settings/webhooks/999", &app.admin).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn admins_list_and_revoke_keys(backend: Backend) {
    let app = TestApp::on(backend).await;
    let keys = app.get("/api/v1/keys", &app.admin).await.body;
    let analyst = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "analyst-tester")
        .unwrap()["id"]
        .clone();
    let page = get(&app, "/settings/keys", &app.admin).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("analyst-tester"), "{}", page.html);
    let path = format!("/settings/keys/{analyst}/revoke");
    let forged = post(&app, &path, &app.admin, "csrf=0123abcd").await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let analyst = signed_in(&app, &app.analyst).await;
    let home = request(&app, Method::GET, "/", &analyst, "").await;
    assert_eq!(home.status, StatusCode::OK);

    let admin = signed_in(&app, &app.admin).await;
    let form = format!(
        "csrf={}",
        request(&app, Method::GET, "/settings/keys", &admin, "")
            .await
            .csrf()
    );
    let revoked = request(&app, Method::POST, &path, &admin, &form).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let ended = request(&app, Method::GET, "/", &analyst, "").await;
    assert_eq!(
        ended.location(),
        "/signin",
        "revoking the key ends its session"
    );
    let page = get(&app, "/settings/keys", &app.admin).await;
    assert!(page.html.contains("<td>revoked "), "{}", page.html);
}

/// An admin adds an environment on the keys page; an editor ticks it on a
/// running experiment (promoting it), and the experiment page says where it is
/// served.
async fn environments_are_added_and_chosen_in_the_dashboard(backend: Backend) {
    let app = TestApp::on(backend).await;
    let keys = get(&app, "/settings/keys", &app.admin).await;
    assert!(
        keys.html.contains("<code>production</code>"),
        "{}",
        keys.html
    );
    let form = format!("csrf={}&key=staging&name=Staging", keys.csrf());
    let added = post(&app, "/settings/environments", &app.admin, &form).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.html);
    let keys = get(&app, "/settings/keys", &app.admin).await;
    assert!(keys.html.contains("<code>staging</code>"));
    assert!(keys
        .html
        .contains(r#"<option value="staging">Staging (staging)</option>"#));

    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    let edit = get(&app, "/experiments/pricing-q4/edit", &app.editor).await;
    assert!(
        edit.html
            .contains(r#"name="environments" value="staging">"#),
        "{}",
        edit.html
    );
    let form = format!(
        "csrf={}&key=pricing-q4&name=Premium+price&variants%5B0%5D.key=control\
         &variants%5B0%5D.weight=0.5&variants%5B0%5D.value=%7B%22price%22%3A199%7D\
         &variants%5B1%5D.key=premium&variants%5B1%5D.weight=0.5\
         &variants%5B1%5D.value=%7B%22price%22%3A249%7D&coverage=1\
         &environments=staging&environments=production",
        edit.csrf()
    );
    let saved = post(&app, "/experiments/pricing-q4/edit", &app.editor, &form).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let now = app
        .get("/api/v1/experiments/pricing-q4", &app.analyst)
        .await;
    assert_eq!(
        now.body["environments"],
        serde_json::json!(["staging", "production"])
    );
    let page = get(&app, "/experiments/pricing-q4", &app.analyst).await;
    assert!(
        page.html.contains("<dd>staging, production</dd>"),
        "{}",
        page.html
    );
    let edit = get(&app, "/experiments/pricing-q4/edit", &app.editor).await;
    assert!(edit
        .html
        .contains(r#"name="environments" value="staging" checked>"#));
}

/// A copy of the pricing experiment under another key, with `changes` merged in,
/// created and taken through `actions`.
async fn experiment_like_pricing(
    app: &TestApp,
    key: &str,
    changes: serde_json::Value,
    actions: &[&str],
) {
    let mut spec = common::pricing_spec();
    spec["key"] = key.into();
    if let (Some(spec), Some(changes)) = (spec.as_object_mut(), changes.as_object()) {
        spec.extend(changes.clone());
    }
    let created = app.post("/api/v1/experiments", &app.editor, spec).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    for action in actions {
        let path = format!("/api/v1/experiments/{key}/{action}");
        let reply = app.post(&path, &app.editor, serde_json::json!({})).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{action} {key}: {:?}",
            reply.body
        );
    }
}

/// The keys of the experiments a page's grid or list shows, in order.
fn listed(html: &str) -> Vec<String> {
    html.split(r#"<td><a href="/experiments/"#)
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

/// Issue #15: the overview shows the running experiments, red first, each with
/// its stage, lift and every guardrail's evidence; its filters are in the URL.
async fn the_overview_shows_running_experiments_red_first_with_their_filters(backend: Backend) {
    let app = TestApp::on(backend).await;
    let env = serde_json::json!({"key": "staging", "name": "Staging"});
    let reply = app.post("/api/v1/environments", &app.admin, env).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    experiment_like_pricing(&app, "calm-q4", serde_json::json!({}), &["start"]).await;
    experiment_like_pricing(
        &app,
        "paused-q4",
        serde_json::json!({}),
        &["start", "pause"],
    )
    .await;
    let staging = serde_json::json!({"environments": ["staging"],
        "stages": [{"coverage": 0.05, "hold_seconds": 3600}, {"coverage": 1.0}]});
    experiment_like_pricing(&app, "staging-q4", staging, &["start"]).await;
    experiment_like_pricing(&app, "draft-q4", serde_json::json!({}), &[]).await;
    app.send_traffic((1400, 140), (1000, 50)).await;

    let page = get(&app, "/overview", &app.analyst).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert_eq!(listed(&page.html), ["pricing-q4", "staging-q4", "calm-q4"]);
    assert!(page
        .html
        .contains(r#"<tr class="health-red" data-health="red">"#));
    assert!(page.html.contains("premium -50.0%"), "the primary lift");
    assert!(page.html.contains("5.0% · stage 1 of 2"), "the stage");
    assert!(
        page.html
            .contains("premium: purchase -50.0% vs control (max drop 20.0%)"),
        "the guardrail's evidence: {}",
        page.html
    );
    assert!(
        page.html.contains(r#"<a href="/overview">Overview</a>"#),
        "in the nav"
    );
    assert!(page
        .html
        .contains(r#"<script src="/assets/overview-1.js" defer>"#));
    let script = get(&app, "/assets/overview-1.js", &app.analyst).await;
    assert!(script.html.contains("overview-grid"));

    let paused = get(&app, "/overview?status=paused", &app.analyst).await;
    assert_eq!(listed(&paused.html), ["paused-q4"]);
    let every = get(&app, "/overview?status=&environment=", &app.analyst).await;
    assert_eq!(listed(&every.html).len(), 5);
    let production = get(&app, "/overview?environment=production", &app.analyst).await;
    assert_eq!(listed(&production.html), ["pricing-q4", "calm-q4"]);
    let staged = get(
        &app,
        "/overview?status=running&environment=staging",
        &app.analyst,
    )
    .await;
    assert_eq!(
        listed(&staged.html),
        ["pricing-q4", "staging-q4", "calm-q4"]
    );
    assert!(staged
        .html
        .contains(r#"<option value="staging" selected>Staging (staging)</option>"#));

    // The report filters apply to every row, are kept in the form and say whom
    // the numbers count.
    let cohort = get(
        &app,
        "/overview?from=2026-12-01&to=2026-12-08T00:00:00Z&segment=country%3ACN",
        &app.analyst,
    )
    .await;
    assert_eq!(cohort.status, StatusCode::OK, "{}", cohort.html);
    assert!(cohort
        .html
        .contains(r#"<input type="date" id="from" name="from" value="2026-12-01">"#));
    assert!(cohort.html.contains(r#"name="segment" value="country:CN""#));
    assert!(cohort.html.contains(r#"id="cohort-applied""#));
    assert!(cohort.html.contains("country = CN"));
    let everyone_since = get(&app, "/overview?from=2000-01-01", &app.analyst).await;
    assert!(
        everyone_since.html.contains("premium -50.0%"),
        "{}",
        everyone_since.html
    );
    assert!(everyone_since
        .html
        .contains(r#"<tr class="health-red" data-health="red">"#));
    let nobody_yet = get(&app, "/overview?from=2999-01-01", &app.analyst).await;
    assert!(
        !nobody_yet.html.contains("premium -50.0%"),
        "{}",
        nobody_yet.html
    );
    assert!(!nobody_yet.html.contains(r#"data-health="red""#));

    for bad in [
        "/overview?environment=nowhere",
        "/overview?status=asleep",
        "/overview?from=yesterday",
        "/overview?from=2026-12-08&to=2026-12-01",
        "/overview?segment=CN",
        "/overview?page=0",
    ] {
        assert_eq!(
            get(&app, bad, &app.analyst).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}

/// Issue #15: a confirmation says how many users change variant, from the
/// exposures counted so far.
async fn confirmations_name_how_many_users_change_variant(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let start = get(
        &app,
        "/experiments/pricing-q4/confirm?action=start",
        &app.editor,
    )
    .await;
    assert!(
        !start.html.contains(r#"id="affected""#),
        "a draft has counted nobody"
    );
    app.start("pricing-q4").await;
    let nobody = get(
        &app,
        "/experiments/pricing-q4/confirm?action=rollback",
        &app.editor,
    )
    .await;
    assert!(nobody.html.contains("Nobody has been exposed yet"));
    app.send_traffic((10, 0), (0, 0)).await;
    let path = "/experiments/pricing-q4/confirm?action=ship&variant=control";
    let stay = get(&app, path, &app.editor).await;
    assert!(stay
        .html
        .contains("Every user seen so far is in control already: nobody changes variant."));
    app.send_traffic((1400, 140), (1000, 50)).await;
    for (action, affected) in [
        (
            "rollback",
            "1,000 users seen so far in premium will get control.",
        ),
        (
            "pause",
            "1,000 users seen so far in premium will get control.",
        ),
        (
            "stop",
            "1,000 users seen so far in premium will get control.",
        ),
        (
            "ship&variant=premium",
            "1,400 users seen so far in control will get premium.",
        ),
    ] {
        let path = format!("/experiments/pricing-q4/confirm?action={action}");
        let page = get(&app, &path, &app.editor).await;
        assert!(page.html.contains(affected), "{action}: {}", page.html);
    }
    let reply = app
        .post(
            "/api/v1/experiments/pricing-q4/pause",
            &app.editor,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let resume = get(
        &app,
        "/experiments/pricing-q4/confirm?action=resume",
        &app.editor,
    )
    .await;
    assert!(resume
        .html
        .contains("The 2,400 users seen so far get their variants back."));
}

/// Issue #15: the experiments list and the overview read the running totals of
/// all their experiments at once: the calls they make to the store are the same
/// for 2 experiments as for 200 (each of those calls is a fixed number of
/// statements; `Store::running_totals` is three).
async fn the_list_and_the_overview_reach_the_store_a_fixed_number_of_times(backend: Backend) {
    const MOST_CALLS: usize = 8;
    let app = TestApp::counted(backend).await;
    app.pricing_experiment().await;
    app.start("pricing-q4").await;
    experiment_like_pricing(&app, "more-0", serde_json::json!({}), &["start"]).await;
    app.send_traffic((1400, 140), (1000, 50)).await;
    let cookie = session(&app, &app.analyst).await;
    let pages = [
        "/",
        "/overview",
        "/?page=2",
        "/overview?status=&page=2",
        "/overview?from=2000-01-01&segment=country%3ACN",
    ];
    let mut calls = Vec::new();
    for path in pages {
        let (page, made) = calls_made_by(request(&app, Method::GET, path, &cookie, "")).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        calls.push(made);
    }
    // Past the API's rate limit: straight through the control layer, as `sluice` would.
    let control = app.server.control();
    for i in 1..199 {
        let mut spec = common::pricing_spec();
        spec["key"] = format!("more-{i}").into();
        let spec = serde_json::from_value(spec).unwrap();
        let created = control.create_experiment(spec, &Actor::Cli).await.unwrap();
        control
            .act(created.key(), LifecycleAction::Start, &Actor::Cli)
            .await
            .unwrap();
    }
    let mut events = Vec::new();
    for i in 0..199 {
        for (n, variant) in ["control", "premium"].iter().enumerate() {
            events.push(
                serde_json::json!({"id": format!("x-{i}-{n}"), "type": "exposure",
                "user": format!("u-{i}-{n}"), "experiment": format!("more-{i}"),
                "variant": variant, "ts": format!("{}T10:00:00Z", common::day(0))}),
            );
        }
    }
    let reply = app
        .post(
            "/sdk/v1/events",
            &app.sdk,
            serde_json::json!({"events": events}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{:?}", reply.body);
    for (path, at_two) in pages.iter().zip(&calls) {
        let (page, at_200) = calls_made_by(request(&app, Method::GET, path, &cookie, "")).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        eprintln!("{backend:?} {path}: {at_two:?} for 2 experiments, {at_200:?} for 200");
        assert_eq!(&at_200, at_two, "{path}");
        assert!(
            at_200.values().sum::<usize>() <= MOST_CALLS,
            "{path}: {at_200:?}"
        );
        assert!(
            at_200.get("running_totals") == Some(&1),
            "{path}: {at_200:?}"
        );
    }
    let list = request(&app, Method::GET, "/", &cookie, "").await;
    assert_eq!(listed(&list.html).len(), 50, "a page of fifty");
    assert!(list.html.contains(r#"href="/?page=2""#));
    let overview = request(&app, Method::GET, "/overview", &cookie, "").await;
    assert_eq!(listed(&overview.html)[0], "pricing-q4", "red first");
    let next = overview
        .html
        .find(r#"rel="next""#)
        .map(|at| &overview.html[at - 60..at]);
    assert!(
        next.is_some_and(|link| link.contains("/overview?status=running&#38;page=2")),
        "{next:?}"
    );
    let last = request(&app, Method::GET, "/overview?page=4", &cookie, "").await;
    assert_eq!(listed(&last.html).len(), 50);
    assert!(!last.html.contains(r#"rel="next""#));
    let past = request(&app, Method::GET, "/overview?page=9", &cookie, "").await;
    assert_eq!(
        listed(&past.html),
        listed(&last.html),
        "past the end: the last page"
    );

    // The totals read at once are what the store says of each experiment alone.
    let keys = ["pricing-q4", "more-7", "unknown"];
    let everyone = sluice::domain::totals::UserFilter::EVERYONE;
    let all = app
        .store
        .running_totals(&keys, &["purchase"], &everyone)
        .await
        .unwrap();
    for (key, totals) in keys.iter().zip(&all) {
        assert_eq!(totals.experiment, *key);
        assert_eq!(
            totals.exposures,
            app.store.exposure_summary(key, &everyone).await.unwrap()
        );
        let alone = app
            .store
            .variant_totals(key, "purchase", &everyone)
            .await
            .unwrap();
        assert_eq!(totals.of_event("purchase"), alone, "{key}");
    }
}

/// The visible text of a page: its text nodes and the attributes people read
/// (`title`, `placeholder`, `aria-label`, `alt`, a button's `value`), without
/// `<pre>`, `<code>` and `<textarea>`, which show definitions, keys and
/// technical errors as they are.
fn visible_text(html: &str) -> Vec<String> {
    fn decode(text: &str) -> String {
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&#39;", "'")
            .replace("&#34;", "\"")
            .replace("&amp;", "&")
    }
    let mut texts = Vec::new();
    let mut verbatim = 0usize;
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        if verbatim == 0 {
            texts.push(decode(&rest[..open]));
        }
        let close = open + rest[open..].find('>').expect("a tag ends");
        let tag = &rest[open + 1..close];
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if ["pre", "code", "textarea"].contains(&name.as_str()) {
            if tag.starts_with('/') {
                verbatim = verbatim.saturating_sub(1);
            } else {
                verbatim += 1;
            }
        }
        let readable = ["title=\"", "placeholder=\"", "aria-label=\"", "alt=\""];
        let button = name == "button" || tag.contains("type=\"submit\"");
        for attribute in readable.iter().chain(button.then_some(&"value=\"")) {
            let Some(at) = tag.find(&format!(" {attribute}")) else {
                continue;
            };
            let value = &tag[at + attribute.len() + 1..];
            texts.push(decode(&value[..value.find('"').unwrap_or(value.len())]));
        }
        rest = &rest[close + 1..];
    }
    texts.push(decode(rest));
    texts
        .into_iter()
        .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty())
        .collect()
}

/// What the test data enters (keys, names, URLs) and what reads the same in both
/// languages (names of products and formats, units): not untranslated text.
const AS_ENTERED: &[&str] = &[
    "pricing-q4",
    "Premium price",
    "A higher price keeps buyers",
    "draft-q4",
    "paused-q4",
    "rolled-back-q4",
    "shipped-q4",
    "stopped-q4",
    "staged-q4",
    "control",
    "premium",
    "purchase",
    "Purchase",
    "revenue",
    "Revenue",
    "admin-tester",
    "editor-tester",
    "analyst-tester",
    "sdk-tester",
    "production",
    "Production",
    "staging",
    "Staging",
    "http://127.0.0.1:9/hook",
    "ana",
    "bad key",
    "country",
    "device",
    "ios",
    "CN",
    "US",
    "price",
    "nowhere",
    "checkout",
    "basket",
    "per_order",
    "orders",
    "d7",
    "app_open",
    "late",
    "cli",
];
const SAME_IN_BOTH: &[&str] = &[
    "Sluice",
    "SDK",
    "API",
    "JSON",
    "CSV",
    "UTC",
    "RFC",
    "URL",
    "HMAC",
    "SHA",
    "POST",
    "Slack",
    "Webhook",
    "English",
    "NUL",
    "ASCII",
    "track",
    "http",
    "https",
    "sluice key create --role editor",
    "$in",
    "（en）",
    "zh-CN",
    "CUPED",
];

/// The English phrases of the catalogue, the parts between placeholders.
fn english_phrases() -> Vec<String> {
    let messages = sluice::web::MESSAGES
        .iter()
        .filter(|m| m.en != m.zh)
        .map(|m| m.en);
    let domain = sluice::web::DOMAIN_TEXTS.iter().map(|(en, _)| *en);
    let mut phrases: Vec<String> = messages
        .chain(domain)
        .flat_map(|text| {
            text.split(['{', '}'])
                .step_by(2)
                .map(|piece| piece.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|piece| piece.chars().filter(char::is_ascii_alphabetic).count() >= 3)
        .filter(|piece| !SAME_IN_BOTH.contains(&piece.as_str()))
        .collect();
    phrases.sort();
    phrases.dedup();
    phrases
}

/// The untranslated text on a Chinese page: English phrases of the catalogue, and
/// any English word that is neither data as entered nor the same in both languages.
fn untranslated(html: &str) -> Vec<String> {
    let phrases = english_phrases();
    let mut found = Vec::new();
    for text in visible_text(html) {
        let mut rest = text.clone();
        for entered in SAME_IN_BOTH.iter().chain(AS_ENTERED) {
            rest = rest.replace(entered, " ");
        }
        for phrase in &phrases {
            let words = |s: &str| {
                s.split(|c: char| !c.is_ascii_alphabetic())
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            };
            let (text_words, phrase_words) = (words(&rest), words(phrase));
            if text_words
                .windows(phrase_words.len())
                .any(|w| w == phrase_words.as_slice())
            {
                found.push(format!("{phrase:?} in {text:?}"));
            }
        }
        for word in rest.split(|c: char| !c.is_ascii_alphabetic()) {
            if word.len() >= 2 {
                found.push(format!("{word:?} in {text:?}"));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Experiments in every state, metrics, a webhook with a delivery, keys, and a
/// running experiment with results, an SRM warning and a staged rollout.
async fn everything_a_dashboard_shows(app: &TestApp) {
    app.pricing_experiment().await;
    let hook = serde_json::json!({"url": "http://127.0.0.1:9/hook",
        "secret": "a-signing-secret-of-some-length", "events": ["*"]});
    assert_eq!(
        app.post("/api/v1/webhooks", &app.admin, hook).await.status,
        StatusCode::CREATED
    );
    let moves: [(&str, &[&str]); 6] = [
        ("draft-q4", &[]),
        ("paused-q4", &["start", "pause"]),
        ("rolled-back-q4", &["start", "rollback"]),
        ("shipped-q4", &["start", "ship"]),
        ("stopped-q4", &["start", "stop"]),
        ("staged-q4", &["start"]),
    ];
    for (key, actions) in moves {
        let mut spec = common::pricing_spec();
        spec["key"] = key.into();
        spec["dimensions"] = serde_json::json!(["country"]);
        if key == "staged-q4" {
            spec["stages"] = serde_json::json!([{"coverage": 0.05, "hold_seconds": 259200},
                {"coverage": 0.5, "hold_seconds": 7200}, {"coverage": 1.0}]);
        }
        let created = app.post("/api/v1/experiments", &app.editor, spec).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        for action in actions {
            let path = format!("/api/v1/experiments/{key}/{action}");
            let body = serde_json::json!({"variant": "premium"});
            let reply = app.post(&path, &app.editor, body).await;
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{action} {key}: {:?}",
                reply.body
            );
        }
    }
    app.start("pricing-q4").await;
    app.send_traffic((1400, 140), (1000, 50)).await;
    a_cuped_experiment_with_data(app).await;
}

/// Every page of the dashboard in Chinese, with realistic data, validation
/// problems and refusals, confirmations, an error page and sign-in: none shows
/// English that is not data as entered.
async fn every_page_reads_in_chinese(backend: Backend) {
    let app = TestApp::on(backend).await;
    everything_a_dashboard_shows(&app).await;
    let hook = app.get("/api/v1/webhooks", &app.admin).await.body[0]["id"]
        .as_i64()
        .unwrap();
    let admin = format!("{}; lang=zh-CN", session(&app, &app.admin).await);
    let csrf = request(&app, Method::GET, "/", &admin, "").await.csrf();
    let deliveries = format!("/settings/webhooks/{hook}");
    let mut pages: Vec<(Method, String, String, StatusCode)> = [
        "/",
        "/?status=draft&q=nothing",
        "/overview",
        "/overview?status=paused&environment=production",
        "/overview?status=&from=2026-12-01&segment=country%3ACN",
        "/experiments/new",
        "/experiments/pricing-q4",
        "/experiments/staged-q4?dimension=country",
        "/experiments/paused-q4",
        "/experiments/shipped-q4",
        "/experiments/draft-q4",
        "/experiments/pricing-q4/edit",
        "/experiments/checkout",
        "/experiments/checkout/edit",
        "/planning",
        "/planning?baseline=0.1&mde=0.05",
        "/planning?baseline=0.1&users=5000",
        "/settings/metrics",
        "/settings/webhooks",
        &deliveries,
        "/settings/keys",
    ]
    .into_iter()
    .map(|path| (Method::GET, path.to_owned(), String::new(), StatusCode::OK))
    .collect();
    for action in [
        "start&variant=",
        "pause",
        "resume",
        "rollback",
        "stop",
        "ship&variant=premium",
    ] {
        let path = format!("/experiments/pricing-q4/confirm?action={action}");
        pages.push((Method::GET, path, String::new(), StatusCode::OK));
    }
    let filtered = format!(
        "/experiments/staged-q4?from={}&to={}&segment=country:CN&dimension=country",
        common::day(0),
        common::day(1)
    );
    pages.push((Method::GET, filtered, String::new(), StatusCode::OK));
    let refusals = [
        (
            "/experiments/staged-q4?from=yesterday&segment=CN",
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/experiments/staged-q4?segment=device:ios&dimension=country,device,country",
            "",
            StatusCode::BAD_REQUEST,
        ),
        ("/planning?baseline=abc&power=2", "", StatusCode::OK),
        ("/experiments/nowhere", "", StatusCode::NOT_FOUND),
        ("/language?to=klingon", "", StatusCode::BAD_REQUEST),
    ];
    for (path, form, status) in refusals {
        pages.push((Method::GET, path.to_owned(), form.to_owned(), status));
    }
    let posts = [
        ("/experiments/new", format!("csrf={csrf}&key=bad%20key&variants%5B0%5D.key=control&variants%5B0%5D.weight=0.5&variants%5B1%5D.key=premium&variants%5B1%5D.weight=1.5&condition=%7Bnot+json&coverage=2"), StatusCode::BAD_REQUEST),
        ("/experiments/pricing-q4/edit", format!("csrf={csrf}&key=pricing-q4&variants%5B0%5D.key=control&variants%5B0%5D.weight=0.4&variants%5B1%5D.key=premium&variants%5B1%5D.weight=0.6"), StatusCode::CONFLICT),
        ("/settings/metrics", format!("csrf={csrf}&key=bad+key&kind=mean&event="), StatusCode::BAD_REQUEST),
        ("/settings/metrics", format!("csrf={csrf}&key=late&kind=conversion&event=app_open&window.delay_hours=9000&window.hours=0&cap=5"), StatusCode::BAD_REQUEST),
        ("/settings/metrics", format!("csrf={csrf}&key=late&kind=ratio&event=app_open&numerator=per_order&denominator=nowhere&window.hours=24&cap=5"), StatusCode::BAD_REQUEST),
        ("/experiments/new", format!("csrf={csrf}&key=k&variants%5B0%5D.key=control&variants%5B0%5D.weight=0.5&variants%5B1%5D.key=premium&variants%5B1%5D.weight=0.5&cuped.lookback_days=400"), StatusCode::BAD_REQUEST),
        ("/settings/webhooks", format!("csrf={csrf}&url=ftp%3A%2F%2Fx&secret=short&format=json"), StatusCode::BAD_REQUEST),
        ("/settings/keys", format!("csrf={csrf}&role=analyst&name=ana"), StatusCode::OK),
        ("/experiments/draft-q4/act", format!("csrf={csrf}&action=resume"), StatusCode::CONFLICT),
        ("/experiments/pricing-q4/act", "action=stop".to_owned(), StatusCode::FORBIDDEN),
    ];
    for (path, form, status) in posts {
        pages.push((Method::POST, path.to_owned(), form, status));
    }
    let mut problems = Vec::new();
    for (method, path, form, status) in pages {
        let page = request(&app, method.clone(), &path, &admin, &form).await;
        assert_eq!(page.status, status, "{method} {path}: {}", page.html);
        assert!(page.html.contains(r#"<html lang="zh-CN">"#), "{path}");
        problems.extend(
            untranslated(&page.html)
                .into_iter()
                .map(|p| format!("{method} {path}: {p}")),
        );
    }
    let sign_in = request(&app, Method::GET, "/signin", "lang=zh-CN", "").await;
    let csrf = sign_in.csrf();
    let refused = request(
        &app,
        Method::POST,
        "/signin",
        &format!("sluice_signin={csrf}; lang=zh-CN"),
        &format!("csrf={csrf}&key={}", app.sdk),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    for (path, page) in [("/signin", sign_in), ("POST /signin", refused)] {
        problems.extend(
            untranslated(&page.html)
                .into_iter()
                .map(|p| format!("{path}: {p}")),
        );
    }
    assert!(
        problems.is_empty(),
        "untranslated:\n{}",
        problems.join("\n")
    );
}

/// The same pages in English are in English: the check above is not vacuous.
async fn the_untranslated_check_finds_english(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let page = get(&app, "/experiments/pricing-q4", &app.editor).await;
    assert!(page.html.contains(r#"<html lang="en">"#));
    let found = untranslated(&page.html);
    assert!(
        found.iter().any(|p| p.contains("Audit timeline")),
        "{found:?}"
    );
}

/// Accept-Language picks the language by q-value, the switch's cookie beats it
/// and is remembered, and every page says it varies on both.
async fn the_language_follows_the_browser_and_the_switch(backend: Backend) {
    let app = TestApp::on(backend).await;
    let cookie = session(&app, &app.analyst).await;
    let chinese = request_in(&app, Method::GET, "/", &cookie, "", "en;q=0.5, zh-CN;q=0.9").await;
    assert!(chinese.html.contains(r#"<html lang="zh-CN">"#));
    assert!(chinese.html.contains("还没有实验。"));
    let vary = chinese
        .headers
        .get_all(VARY)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(", ");
    assert!(
        vary.contains("Accept-Language") && vary.contains("Cookie"),
        "{vary}"
    );
    let english = request_in(&app, Method::GET, "/", &cookie, "", "zh-TW, en;q=0.8").await;
    assert!(english.html.contains(r#"<html lang="en">"#));
    assert!(english.html.contains("No experiments yet."));

    // The switch on the Chinese page leads back to the same page in English.
    let start = chinese.html.find(r#"id="language" href=""#).unwrap() + 20;
    let href =
        chinese.html[start..start + chinese.html[start..].find('"').unwrap()].replace("&#38;", "&");
    assert_eq!(href, "/language?to=en&back=%2F");
    let switched = request_in(&app, Method::GET, &href, &cookie, "", "zh-CN").await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    assert_eq!(switched.location(), "/");
    let lang = switched.set_cookie();
    for attribute in ["lang=en", "SameSite=Lax", "Path=/", "Max-Age=31536000"] {
        assert!(lang.contains(attribute), "{lang}");
    }
    let remembered = format!("{cookie}; {}", lang.split(';').next().unwrap());
    let page = request_in(&app, Method::GET, "/", &remembered, "", "zh-CN").await;
    assert!(
        page.html.contains(r#"<html lang="en">"#),
        "the cookie beats the header"
    );
    let sign_in = request_in(&app, Method::GET, "/signin", "", "", "zh").await;
    assert!(sign_in.html.contains("登录 Sluice"));
    let away = request(
        &app,
        Method::GET,
        "/language?to=zh-CN&back=//evil.example",
        "",
        "",
    )
    .await;
    assert_eq!(
        away.location(),
        "/",
        "the switch only leads back to this site"
    );
}

on_both_backends!(
    shaped_metrics_are_listed_and_defined_through_the_form,
    a_cuped_experiment_shows_its_lookback_variance_reduction_and_pending_users,
    the_overview_shows_running_experiments_red_first_with_their_filters,
    confirmations_name_how_many_users_change_variant,
    the_list_and_the_overview_reach_the_store_a_fixed_number_of_times,
    every_page_reads_in_chinese,
    the_untranslated_check_finds_english,
    the_language_follows_the_browser_and_the_switch,
    environments_are_added_and_chosen_in_the_dashboard,
    the_session_cookie_is_not_the_key_and_ends_on_the_server,
    admins_list_and_revoke_keys,
    pages_without_a_session_lead_to_sign_in,
    signing_in_sets_a_strict_http_only_cookie_and_signing_out_clears_it,
    a_form_without_the_right_csrf_token_is_refused_and_changes_nothing,
    an_analyst_sees_no_lifecycle_buttons_and_may_not_act,
    the_experiment_page_shows_the_report_chart_and_csv,
    the_experiment_page_follows_the_report_filters,
    the_form_shows_the_api_validation_beside_each_field,
    a_sample_ratio_mismatch_is_shown_as_a_warning,
    editing_a_running_experiment_ramps_it_but_may_not_reshuffle_users,
    a_staged_rollout_shows_its_stage_and_when_it_may_advance,
    admins_read_a_webhook_delivery_log,
);
