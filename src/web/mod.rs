//! The dashboard: server-rendered pages for product teams and analysts, served at
//! `/` by `sluice serve`. Handlers parse a form or query, authorize the signed-in
//! key, call [`crate::control::Control`] and turn the answer into a view model that
//! an askama template renders; templates hold no logic and assets are compiled in.
//!
//! Sessions live in the database (the cookie carries a random id, never the key),
//! so any server behind a load balancer can answer any page. Every page is written
//! in English and Simplified Chinese ([`lang`] picks one per request, [`text`]
//! holds both). The dashboard is a sibling of [`crate::api`]:
//! it shares the control layer and [`crate::http`], never the API's handlers.

mod admin;
mod assets;
mod chart;
mod cookies;
mod definition;
mod error;
mod experiment;
mod experiments;
mod fields;
mod filter;
mod form;
mod lang;
mod lifecycle;
mod overview;
mod pages;
mod planning;
mod session;
mod summary;
mod text;
mod view;

use std::sync::Arc;

use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

use crate::control::Control;

pub use cookies::CookieSecurity;
pub use lang::Lang;
pub use text::{Message, DOMAIN_TEXTS, MESSAGES};

/// What the dashboard's handlers share.
#[derive(Clone)]
pub(crate) struct WebState {
    pub(crate) control: Arc<Control>,
    cookies: CookieSecurity,
}

/// Every dashboard route; [`crate::app`] merges them with the API's.
pub fn router(control: Arc<Control>, cookies: CookieSecurity) -> Router {
    Router::new()
        .route("/", get(experiments::list))
        .route("/overview", get(overview::page))
        .route("/signin", get(session::sign_in_page).post(session::sign_in))
        .route("/signout", post(session::sign_out))
        .route("/experiments/new", get(form::new).post(form::create))
        .route("/experiments/{key}", get(experiment::show))
        .route(
            "/experiments/{key}/edit",
            get(form::edit).post(form::update),
        )
        .route("/experiments/{key}/confirm", get(lifecycle::confirm))
        .route("/experiments/{key}/act", post(lifecycle::act))
        .route("/experiments/{key}/report.csv", get(experiment::csv))
        .route("/planning", get(planning::page))
        .route(
            "/settings/metrics",
            get(admin::metrics).post(admin::create_metric),
        )
        .route(
            "/settings/webhooks",
            get(admin::webhooks).post(admin::create_webhook),
        )
        .route("/settings/webhooks/{id}", get(admin::deliveries))
        .route(
            "/settings/webhooks/{id}/delete",
            post(admin::delete_webhook),
        )
        .route("/settings/keys", get(admin::keys).post(admin::create_key))
        .route("/settings/keys/{id}/revoke", post(admin::revoke_key))
        .route("/settings/environments", post(admin::create_environment))
        .route("/language", get(lang::switch))
        .layer(middleware::from_fn(error::localize))
        .layer(middleware::map_response(lang::vary))
        .route("/assets/{name}", get(assets::serve))
        .with_state(WebState { control, cookies })
}
