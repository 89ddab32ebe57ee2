//! Settings pages: metric definitions (everyone reads, editors add), webhooks and
//! API keys (admins only). Forms go through the same validation as the API.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use super::definition::number;
use super::error::Problem;
use super::error::WebError;
use super::fields::{choices, translated, Builder, Choice, Field, Fields};
use super::session::{Session, SignedForm};
use super::text::Text;
use super::view::{self, render, Chrome};
use super::WebState;
use crate::control::{ControlError, KeyRequest};
use crate::domain::environment::PRODUCTION;
use crate::domain::metric::Window;
use crate::domain::validation::from_json;
use crate::domain::webhook::{event_types, Delivery, NewWebhook, Webhook, WebhookFormat};
use crate::domain::{Environment, FieldProblem, Metric, MetricKind, Role};

/// The problems to show beside fields, or the error page for anything else.
fn problems_of(err: ControlError) -> Result<Vec<FieldProblem>, WebError> {
    match err {
        ControlError::Invalid(invalid) => Ok(invalid.problems),
        other => Err(other.into()),
    }
}

/// Options whose values are the API's names and whose labels are in words.
fn labelled<T: Copy>(
    list: &[T],
    value: impl Fn(T) -> &'static str,
    label: impl Fn(T) -> String,
) -> Vec<(String, String)> {
    list.iter()
        .map(|&item| (value(item).to_owned(), label(item)))
        .collect()
}

struct MetricRow {
    key: String,
    name: String,
    kind: &'static str,
    /// The event measured; for a ratio, its parts ("revenue ÷ orders").
    measures: String,
    window: Option<String>,
    cap: Option<String>,
    direction: &'static str,
}

impl MetricRow {
    fn of(t: Text, m: &Metric) -> Self {
        let measures = match (&m.numerator, &m.denominator) {
            (Some(numerator), Some(denominator)) => t.ratio_of(numerator, denominator),
            _ => m.event.clone(),
        };
        MetricRow {
            key: m.key.clone(),
            name: m.name.clone(),
            kind: t.metric_kind(m.kind),
            measures,
            window: m.window.map(|w| window_text(t, w)),
            cap: m.cap.map(|cap| t.capped_at(view::number(cap))),
            direction: if m.higher_is_better {
                t.higher()
            } else {
                t.lower()
            },
        }
    }
}

/// A window in words: "day 7 after exposure, for 24 h" when it starts on a whole
/// day, else in hours.
fn window_text(t: Text, window: Window) -> String {
    let hours = view::number(window.hours);
    let days = window.delay_hours / 24.0;
    if window.delay_hours == 0.0 {
        t.window_first(hours)
    } else if days.fract() == 0.0 {
        t.window_day(view::number(days), hours)
    } else {
        t.window_after(view::number(window.delay_hours), hours)
    }
}

#[derive(Template)]
#[template(path = "metrics.html")]
struct MetricsPage {
    t: Text,
    chrome: Chrome,
    metrics: Vec<MetricRow>,
    key: Field,
    name: Field,
    kind: Field,
    kind_choices: Vec<Choice>,
    event: Field,
    numerator: Field,
    numerator_choices: Vec<Choice>,
    denominator: Field,
    denominator_choices: Vec<Choice>,
    delay_hours: Field,
    hours: Field,
    window_error: Option<String>,
    cap: Field,
    lower_is_better: bool,
    problems: Vec<FieldProblem>,
}

async fn metrics_page(
    state: &WebState,
    session: &Session,
    values: &Fields,
    problems: Vec<FieldProblem>,
) -> Result<MetricsPage, WebError> {
    let t = session.text();
    let problems = translated(t, problems);
    let metrics = state.control.list_metrics().await?;
    let mut b = Builder {
        values,
        problems: problems.clone(),
    };
    let kind = b.field("kind", t.kind(), t.kind_hint());
    let kinds = [
        MetricKind::Conversion,
        MetricKind::Mean,
        MetricKind::Count,
        MetricKind::Ratio,
    ];
    // A ratio's parts are metrics that are not ratios themselves.
    let mut parts = vec![(String::new(), t.none().to_owned())];
    parts.extend(
        metrics
            .iter()
            .filter(|m| m.kind != MetricKind::Ratio)
            .map(|m| (m.key.clone(), t.metric_choice(&m.key, &m.name))),
    );
    let numerator = b.field("numerator", t.numerator(), t.ratio_part_hint());
    let denominator = b.field("denominator", t.denominator(), "");
    Ok(MetricsPage {
        t,
        chrome: session.chrome(),
        metrics: metrics.iter().map(|m| MetricRow::of(t, m)).collect(),
        key: b.field("key", t.key(), ""),
        name: b.field("name", t.name(), ""),
        kind_choices: choices(
            &labelled(&kinds, MetricKind::as_str, |k| t.metric_kind(k).to_owned()),
            std::slice::from_ref(&kind.value),
            "kind",
        ),
        kind,
        event: b.field("event", t.event(), t.event_hint()),
        numerator_choices: choices(&parts, std::slice::from_ref(&numerator.value), "numerator"),
        numerator,
        denominator_choices: choices(
            &parts,
            std::slice::from_ref(&denominator.value),
            "denominator",
        ),
        denominator,
        delay_hours: b.field("window.delay_hours", t.window_delay(), t.window_hint()),
        hours: b.field("window.hours", t.window_hours(), ""),
        window_error: b.group("window"),
        cap: b.field("cap", t.cap(), t.cap_hint()),
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
    let document = metric_document(f);
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

/// The API's JSON body for the submitted metric form: what is left empty is absent.
fn metric_document(f: &Fields) -> serde_json::Value {
    let given = |name: &str| Some(f.get(name).trim()).filter(|value| !value.is_empty());
    let mut document = json!({
        "key": f.get("key").trim(), "name": f.get("name").trim(), "kind": f.get("kind"),
        "event": f.get("event").trim(), "higher_is_better": f.get("higher_is_better") != "false",
        "numerator": given("numerator"), "denominator": given("denominator"),
        "cap": given("cap").map(number),
    });
    let (delay, hours) = (given("window.delay_hours"), given("window.hours"));
    if delay.is_some() || hours.is_some() {
        let mut window = json!({"delay_hours": delay.map_or(0.into(), number)});
        if let Some(hours) = hours {
            window["hours"] = number(hours);
        }
        document["window"] = window;
    }
    document
}

/// A webhook as the webhooks page lists it.
struct WebhookRow {
    id: i64,
    url: String,
    format: &'static str,
    format_label: &'static str,
    events: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    t: Text,
    chrome: Chrome,
    webhooks: Vec<WebhookRow>,
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
    let t = session.text();
    let problems = translated(t, problems);
    let mut b = Builder {
        values,
        problems: problems.clone(),
    };
    let format = b.field("format", t.format(), t.format_hint());
    let webhooks = state.control.list_webhooks().await?;
    Ok(WebhooksPage {
        t,
        chrome: session.chrome(),
        webhooks: webhooks.iter().map(|hook| webhook_row(t, hook)).collect(),
        url: b.field("url", t.url(), t.url_hint()),
        format_choices: choices(
            &labelled(&WebhookFormat::ALL, WebhookFormat::as_str, |f| {
                t.webhook_format(f).to_owned()
            }),
            std::slice::from_ref(&format.value),
            &format.id,
        ),
        format,
        secret: b.field("secret", t.signing_secret(), t.secret_hint()),
        events: choices(
            &labelled(&event_types(), |e| e, |e| t.event_of(e)),
            &values.all("events"),
            "event",
        ),
        events_error: b.claim(|field| field.starts_with("events")),
        problems,
    })
}

fn webhook_row(t: Text, hook: &Webhook) -> WebhookRow {
    WebhookRow {
        id: hook.id,
        url: hook.url.clone(),
        format: hook.format.as_str(),
        format_label: t.webhook_format(hook.format),
        events: hook
            .events
            .iter()
            .map(|e| t.event_of(e))
            .collect::<Vec<_>>()
            .join(", "),
    }
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

impl DeliveryRow {
    fn of(t: Text, d: Delivery) -> Self {
        DeliveryRow {
            queued: view::date_time(t.lang, d.created_at),
            event: t.event_of(&d.event),
            status: t.delivery_status(&d.status),
            attempts: d.attempts,
            last_error: d.last_error,
        }
    }
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    t: Text,
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
    let t = session.text();
    Ok(render(&DeliveriesPage {
        t,
        chrome: session.chrome(),
        url: webhook.url,
        deliveries: state
            .control
            .webhook_deliveries(id)
            .await?
            .into_iter()
            .map(|d| DeliveryRow::of(t, d))
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
    t: Text,
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
    let t = session.text();
    let keys = state.control.keys().list().await?;
    let environments = state.control.list_environments().await?;
    let environment_pairs: Vec<(String, String)> = environments
        .iter()
        .map(|e| (e.key.clone(), t.environment_choice(&e.name, &e.key)))
        .collect();
    let roles = [Role::Analyst, Role::Editor, Role::Admin, Role::Sdk];
    Ok(KeysPage {
        t,
        chrome: session.chrome(),
        minted,
        keys: keys
            .into_iter()
            .map(|key| KeyRow {
                id: key.id,
                name: key.name,
                role: t.role_of(key.role),
                environment: key.environment.unwrap_or_default(),
                created: view::date_time(t.lang, key.created_at),
                revoked: key.revoked_at.map(|at| view::date_time(t.lang, at)),
            })
            .collect(),
        role_choices: choices(
            &labelled(&roles, Role::as_str, |r| t.role_of(r).to_owned()),
            &[],
            "role",
        ),
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
        .ok_or_else(|| WebError::bad_request(Problem::NoSuchRole))?;
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
        role: form.session.text().role_of(key.role),
    };
    Ok(render(
        &keys_page(&state, &form.session, Some(minted)).await?,
    ))
}
