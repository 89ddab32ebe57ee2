//! Settings pages: metric definitions (everyone reads, editors add), webhooks and
//! API keys (admins only). Forms go through the same validation as the API.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use super::error::WebError;
use super::fields::{choices, Builder, Choice, Field, Fields};
use super::session::{Session, SignedForm};
use super::view::{render, Chrome};
use super::WebState;
use crate::control::{ControlError, KeyRequest};
use crate::domain::environment::PRODUCTION;
use crate::domain::validation::from_json;
use crate::domain::webhook::{event_types, Delivery, NewWebhook, Webhook, WebhookFormat};
use crate::domain::{format_millis, Environment, FieldProblem, Metric, Role};

/// The problems to show beside fields, or the error page for anything else.
fn problems_of(err: ControlError) -> Result<Vec<FieldProblem>, WebError> {
    match err {
        ControlError::Invalid(invalid) => Ok(invalid.problems),
        other => Err(other.into()),
    }
}

fn pairs(list: &[&str]) -> Vec<(String, String)> {
    list.iter()
        .map(|v| (v.to_string(), v.to_string()))
        .collect()
}

struct MetricRow {
    key: String,
    name: String,
    kind: String,
    event: String,
    direction: &'static str,
}

#[derive(Template)]
#[template(path = "metrics.html")]
struct MetricsPage {
    chrome: Chrome,
    metrics: Vec<MetricRow>,
    key: Field,
    name: Field,
    kind: Field,
    kind_choices: Vec<Choice>,
    event: Field,
    lower_is_better: bool,
    problems: Vec<FieldProblem>,
}

async fn metrics_page(
    state: &WebState,
    session: &Session,
    values: &Fields,
    problems: Vec<FieldProblem>,
) -> Result<MetricsPage, WebError> {
    let metrics = state.control.list_metrics().await?;
    let mut b = Builder {
        values,
        problems: problems.clone(),
    };
    let kind = b.field(
        "kind",
        "Kind",
        "conversion: did the user do it; mean: sum of values per user; count: events per user.",
    );
    Ok(MetricsPage {
        chrome: session.chrome(),
        metrics: metrics
            .iter()
            .map(|m| MetricRow {
                key: m.key.clone(),
                name: m.name.clone(),
                kind: format!("{:?}", m.kind).to_lowercase(),
                event: m.event.clone(),
                direction: if m.higher_is_better {
                    "higher"
                } else {
                    "lower"
                },
            })
            .collect(),
        key: b.field("key", "Key", ""),
        name: b.field("name", "Name", ""),
        kind_choices: choices(
            &pairs(&["conversion", "mean", "count"]),
            std::slice::from_ref(&kind.value),
            "kind",
        ),
        kind,
        event: b.field(
            "event",
            "Event",
            "The track event's name, as the app sends it.",
        ),
        lower_is_better: values.get("higher_is_better") == "false",
        problems,
    })
}

pub(crate) async fn metrics(
    State(state): State<WebState>,
    session: Session,
) -> Result<Response, WebError> {
    let page = metrics_page(&state, &session, &Fields::empty(), Vec::new()).await?;
    Ok(render(&page))
}

pub(crate) async fn create_metric(
    State(state): State<WebState>,
    form: SignedForm,
) -> Result<Response, WebError> {
    form.session.require(Role::Editor)?;
    let f = &form.fields;
    let document = json!({
        "key": f.get("key").trim(), "name": f.get("name").trim(), "kind": f.get("kind"),
        "event": f.get("event").trim(), "higher_is_better": f.get("higher_is_better") != "false",
    });
    let outcome = match from_json::<Metric>(document) {
        Ok(metric) => state.control.create_metric(metric).await,
        Err(invalid) => Err(invalid.into()),
    };
    let problems = match outcome {
        Ok(_) => return Ok(Redirect::to("/settings/metrics").into_response()),
        Err(err) => problems_of(err)?,
    };
    let page = metrics_page(&state, &form.session, f, problems).await?;
    Ok((StatusCode::BAD_REQUEST, render(&page)).into_response())
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    chrome: Chrome,
    webhooks: Vec<Webhook>,
    url: Field,
    format: Field,
    format_choices: Vec<Choice>,
    secret: Field,
    events: Vec<Choice>,
    events_error: Option<String>,
    problems: Vec<FieldProblem>,
}

async fn webhooks_page(
    state: &WebState,
    session: &Session,
    values: &Fields,
    problems: Vec<FieldProblem>,
) -> Result<WebhooksPage, WebError> {
    let mut b = Builder {
        values,
        problems: problems.clone(),
    };
    let format = b.field(
        "format",
        "Format",
        "json: Sluice's own signed JSON. slack, feishu, dingtalk, wecom: a readable message \
         for that service's incoming webhook (Feishu, DingTalk and WeCom in Chinese).",
    );
    let formats: Vec<&str> = WebhookFormat::ALL.map(WebhookFormat::as_str).to_vec();
    Ok(WebhooksPage {
        chrome: session.chrome(),
        webhooks: state.control.list_webhooks().await?,
        url: b.field("url", "URL", "Where the POST requests go."),
        format_choices: choices(
            &pairs(&formats),
            std::slice::from_ref(&format.value),
            &format.id,
        ),
        format,
        secret: b.field(
            "secret",
            "Signing secret",
            "16 to 256 characters. json: required, requests carry an HMAC-SHA256 signature \
             made with it. feishu, dingtalk: the bot's signing secret, if its \"sign\" security \
             is on. slack, wecom: leave empty.",
        ),
        events: choices(&pairs(&event_types()), &values.all("events"), "event"),
        events_error: b.claim(|field| field.starts_with("events")),
        problems,
    })
}

pub(crate) async fn webhooks(
    State(state): State<WebState>,
    session: Session,
) -> Result<Response, WebError> {
    session.require(Role::Admin)?;
    let page = webhooks_page(&state, &session, &Fields::empty(), Vec::new()).await?;
    Ok(render(&page))
}

pub(crate) async fn create_webhook(
    State(state): State<WebState>,
    form: SignedForm,
) -> Result<Response, WebError> {
    form.session.require(Role::Admin)?;
    let f = &form.fields;
    // Left empty, each is absent: no secret, the default format.
    let given = |name: &str| Some(f.get(name)).filter(|value| !value.is_empty());
    let document = json!({"url": f.get("url").trim(), "secret": given("secret"),
                          "events": f.all("events"), "format": given("format")});
    let outcome = match from_json::<NewWebhook>(document) {
        Ok(hook) => {
            state
                .control
                .create_webhook(hook, &form.session.actor())
                .await
        }
        Err(invalid) => Err(invalid.into()),
    };
    let problems = match outcome {
        Ok(_) => return Ok(Redirect::to("/settings/webhooks").into_response()),
        Err(err) => problems_of(err)?,
    };
    let page = webhooks_page(&state, &form.session, f, problems).await?;
    Ok((StatusCode::BAD_REQUEST, render(&page)).into_response())
}

pub(crate) async fn delete_webhook(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    form: SignedForm,
) -> Result<Response, WebError> {
    form.session.require(Role::Admin)?;
    state
        .control
        .delete_webhook(id, &form.session.actor())
        .await?;
    Ok(Redirect::to("/settings/webhooks").into_response())
}

struct DeliveryRow {
    queued: String,
    event: String,
    status: String,
    attempts: i64,
    last_error: Option<String>,
}

impl From<Delivery> for DeliveryRow {
    fn from(d: Delivery) -> Self {
        DeliveryRow {
            queued: format_millis(d.created_at),
            event: d.event,
            status: d.status,
            attempts: d.attempts,
            last_error: d.last_error,
        }
    }
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    chrome: Chrome,
    url: String,
    deliveries: Vec<DeliveryRow>,
}

/// A webhook's delivery log: what was sent, whether it arrived, the last error.
pub(crate) async fn deliveries(
    State(state): State<WebState>,
    session: Session,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    session.require(Role::Admin)?;
    let webhook = state.control.get_webhook(id).await?;
    Ok(render(&DeliveriesPage {
        chrome: session.chrome(),
        url: webhook.url,
        deliveries: state
            .control
            .webhook_deliveries(id)
            .await?
            .into_iter()
            .map(DeliveryRow::from)
            .collect(),
    }))
}

/// A key minted a moment ago: the only time its secret is shown.
struct MintedKey {
    secret: String,
    name: String,
    role: &'static str,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    chrome: Chrome,
    minted: Option<MintedKey>,
    keys: Vec<KeyRow>,
    role_choices: Vec<Choice>,
    environments: Vec<Environment>,
    environment_choices: Vec<Choice>,
}

/// A key as the keys page lists it.
struct KeyRow {
    id: i64,
    name: String,
    role: &'static str,
    environment: String,
    created: String,
    revoked: Option<String>,
}

async fn keys_page(
    state: &WebState,
    session: &Session,
    minted: Option<MintedKey>,
) -> Result<KeysPage, WebError> {
    let keys = state.control.keys().list().await?;
    let environments = state.control.list_environments().await?;
    let environment_pairs: Vec<(String, String)> = environments
        .iter()
        .map(|e| (e.key.clone(), format!("{} ({})", e.name, e.key)))
        .collect();
    Ok(KeysPage {
        chrome: session.chrome(),
        minted,
        keys: keys
            .into_iter()
            .map(|key| KeyRow {
                id: key.id,
                name: key.name,
                role: key.role.as_str(),
                environment: key.environment.unwrap_or_default(),
                created: format_millis(key.created_at),
                revoked: key.revoked_at.map(format_millis),
            })
            .collect(),
        role_choices: choices(&pairs(&["analyst", "editor", "admin", "sdk"]), &[], "role"),
        environment_choices: choices(&environment_pairs, &[PRODUCTION.to_owned()], "environment"),
        environments,
    })
}

pub(crate) async fn create_environment(
    State(state): State<WebState>,
    form: SignedForm,
) -> Result<Response, WebError> {
    form.session.require(Role::Admin)?;
    let environment = Environment {
        key: form.fields.get("key").trim().to_owned(),
        name: form.fields.get("name").trim().to_owned(),
    };
    state
        .control
        .create_environment(environment, &form.session.actor())
        .await?;
    Ok(Redirect::to("/settings/keys#environments").into_response())
}

pub(crate) async fn keys(
    State(state): State<WebState>,
    session: Session,
) -> Result<Response, WebError> {
    session.require(Role::Admin)?;
    Ok(render(&keys_page(&state, &session, None).await?))
}

pub(crate) async fn revoke_key(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    form: SignedForm,
) -> Result<Response, WebError> {
    form.session.require(Role::Admin)?;
    state
        .control
        .keys()
        .revoke(id, &form.session.actor())
        .await?;
    Ok(Redirect::to("/settings/keys").into_response())
}

pub(crate) async fn create_key(
    State(state): State<WebState>,
    form: SignedForm,
) -> Result<Response, WebError> {
    form.session.require(Role::Admin)?;
    let role = Role::parse(form.fields.get("role"))
        .ok_or_else(|| WebError::bad_request("role must be admin, editor, analyst or sdk"))?;
    let optional =
        |name: &str| Some(form.fields.get(name).trim().to_owned()).filter(|v| !v.is_empty());
    let request = KeyRequest {
        role,
        name: optional("name"),
        environment: optional("environment").filter(|_| role == Role::Sdk),
    };
    let (secret, key) = state
        .control
        .keys()
        .create(request, &form.session.actor())
        .await?;
    let minted = MintedKey {
        secret,
        name: key.name,
        role: key.role.as_str(),
    };
    Ok(render(
        &keys_page(&state, &form.session, Some(minted)).await?,
    ))
}
