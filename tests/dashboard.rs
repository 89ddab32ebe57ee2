//! The dashboard over plain HTTP: sessions, CSRF and roles. A request without a
//! session goes to sign-in; a form without the right CSRF token, or from a role
//! that may not act, is refused and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use common::{Backend, TestApp};

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
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(COOKIE, cookie)
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
    assert!(page.html.contains("rollback"), "the guardrail's action");
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
    assert!(audit
        .html
        .contains(r#"<strong class="action">update</strong>"#));
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
    assert!(list.html.contains("<td>json</td>"), "the format is listed");
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
    assert!(page.html.contains("revoked 20"), "{}", page.html);
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

on_both_backends!(
    environments_are_added_and_chosen_in_the_dashboard,
    the_session_cookie_is_not_the_key_and_ends_on_the_server,
    admins_list_and_revoke_keys,
    pages_without_a_session_lead_to_sign_in,
    signing_in_sets_a_strict_http_only_cookie_and_signing_out_clears_it,
    a_form_without_the_right_csrf_token_is_refused_and_changes_nothing,
    an_analyst_sees_no_lifecycle_buttons_and_may_not_act,
    the_experiment_page_shows_the_report_chart_and_csv,
    the_form_shows_the_api_validation_beside_each_field,
    a_sample_ratio_mismatch_is_shown_as_a_warning,
    editing_a_running_experiment_ramps_it_but_may_not_reshuffle_users,
    a_staged_rollout_shows_its_stage_and_when_it_may_advance,
    admins_read_a_webhook_delivery_log,
);
