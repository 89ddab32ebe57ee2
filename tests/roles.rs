//! Every route × every kind of caller: no key, an unknown key, a revoked key, and
//! each role. The routes are read from the API's router definitions in
//! `src/api/` ([`declared_routes`]), so a new route without a row in [`ACCESS`]
//! fails this test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::routes::declared_routes;
use common::{Backend, TestApp};
use serde_json::json;
use sluice::domain::Role;
use tower::ServiceExt;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Access {
    /// Anyone (operations endpoints).
    Public,
    /// A key granting this role, in the `Authorization` header.
    Role(Role),
    /// An SDK key in the path (GrowthBook's endpoints).
    SdkKeyInPath,
}

const ACCESS: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Public),
    ("GET", "/metrics", Access::Public),
    ("GET", "/api/v1/environments", Access::Role(Role::Analyst)),
    ("POST", "/api/v1/environments", Access::Role(Role::Admin)),
    ("GET", "/api/v1/experiments", Access::Role(Role::Analyst)),
    ("POST", "/api/v1/experiments", Access::Role(Role::Editor)),
    (
        "GET",
        "/api/v1/experiments/{key}",
        Access::Role(Role::Analyst),
    ),
    (
        "PATCH",
        "/api/v1/experiments/{key}",
        Access::Role(Role::Editor),
    ),
    (
        "GET",
        "/api/v1/experiments/{key}/audit",
        Access::Role(Role::Analyst),
    ),
    (
        "POST",
        "/api/v1/experiments/{key}/guard/check",
        Access::Role(Role::Editor),
    ),
    (
        "POST",
        "/api/v1/experiments/{key}/{action}",
        Access::Role(Role::Editor),
    ),
    (
        "GET",
        "/api/v1/experiments/{key}/report",
        Access::Role(Role::Analyst),
    ),
    ("GET", "/api/v1/power", Access::Role(Role::Analyst)),
    ("GET", "/api/v1/metrics", Access::Role(Role::Analyst)),
    ("POST", "/api/v1/metrics", Access::Role(Role::Editor)),
    ("GET", "/api/v1/metrics/{key}", Access::Role(Role::Analyst)),
    ("GET", "/api/v1/keys", Access::Role(Role::Admin)),
    ("POST", "/api/v1/keys", Access::Role(Role::Admin)),
    ("DELETE", "/api/v1/keys/{id}", Access::Role(Role::Admin)),
    ("GET", "/api/v1/audit", Access::Role(Role::Admin)),
    ("DELETE", "/api/v1/users/{id}", Access::Role(Role::Admin)),
    ("GET", "/api/v1/webhooks", Access::Role(Role::Admin)),
    ("POST", "/api/v1/webhooks", Access::Role(Role::Admin)),
    ("DELETE", "/api/v1/webhooks/{id}", Access::Role(Role::Admin)),
    (
        "GET",
        "/api/v1/webhooks/{id}/deliveries",
        Access::Role(Role::Admin),
    ),
    ("GET", "/sdk/v1/ruleset", Access::Role(Role::Sdk)),
    ("GET", "/sdk/v1/stream", Access::Role(Role::Sdk)),
    ("POST", "/sdk/v1/assign", Access::Role(Role::Sdk)),
    ("POST", "/sdk/v1/events", Access::Role(Role::Sdk)),
    ("GET", "/api/features/{key}", Access::SdkKeyInPath),
    ("GET", "/sub/{key}", Access::SdkKeyInPath),
    ("POST", "/ofrep/v1/evaluate/flags", Access::Role(Role::Sdk)),
    (
        "POST",
        "/ofrep/v1/evaluate/flags/{key}",
        Access::Role(Role::Sdk),
    ),
];

#[test]
fn every_declared_route_has_a_row() {
    let mut table: Vec<(String, String)> = ACCESS
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    table.sort();
    assert_eq!(declared_routes(), table);
}

async fn call(app: &TestApp, method: &str, path: &str, key: Option<&str>) -> StatusCode {
    let concrete = path
        .replace("{action}", "pause")
        .replace("{id}", "999999")
        .replace("{key}", "pricing-q4");
    let mut request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(concrete)
        .header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let body = Body::from(json!({}).to_string());
    let response = app
        .router
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    response.status()
}

async fn every_route_admits_exactly_the_roles_it_names(backend: Backend) {
    let app = TestApp::on(backend).await;
    app.pricing_experiment().await;
    let revoked = app
        .post(
            "/api/v1/keys",
            &app.admin,
            json!({"role": "admin", "name": "leaver"}),
        )
        .await;
    let revoked_secret = revoked.body["key"].as_str().unwrap().to_owned();
    let id = &revoked.body["id"];
    let gone = app
        .send(
            Method::DELETE,
            &format!("/api/v1/keys/{id}"),
            Some(&app.admin),
            Body::empty(),
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let roles = [
        (Role::Admin, app.admin.clone()),
        (Role::Editor, app.editor.clone()),
        (Role::Analyst, app.analyst.clone()),
        (Role::Sdk, app.sdk.clone()),
    ];
    for &(method, path, access) in ACCESS {
        let in_path = |key: &str| path.replace("{key}", key);
        match access {
            Access::Public => {
                assert_eq!(
                    call(&app, method, path, None).await,
                    StatusCode::OK,
                    "{method} {path}"
                );
            }
            Access::SdkKeyInPath => {
                for (role, key) in &roles {
                    let status = call(&app, method, &in_path(key), None).await;
                    let expected = if *role == Role::Sdk || *role == Role::Admin {
                        StatusCode::OK
                    } else {
                        StatusCode::FORBIDDEN
                    };
                    assert_eq!(status, expected, "{method} {path} as {role:?}");
                }
                for refused in ["no-such-key", revoked_secret.as_str()] {
                    let status = call(&app, method, &in_path(refused), None).await;
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
                }
            }
            Access::Role(needed) => {
                for key in [None, Some("no-such-key"), Some(revoked_secret.as_str())] {
                    let status = call(&app, method, path, key).await;
                    assert_eq!(
                        status,
                        StatusCode::UNAUTHORIZED,
                        "{method} {path} with {key:?}"
                    );
                }
                for (role, key) in &roles {
                    let status = call(&app, method, path, Some(key)).await;
                    if role.grants(needed) {
                        assert!(
                            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                            "{method} {path} as {role:?}: {status}"
                        );
                    } else {
                        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} as {role:?}");
                    }
                }
            }
        }
    }
}

on_both_backends!(every_route_admits_exactly_the_roles_it_names);
