//! `/sdk/v1`: what apps call. The ruleset (with ETag), its change stream (SSE),
//! server-side assignment with the SDK's own evaluation core, and event ingestion.

use std::borrow::Cow;
use std::convert::Infallible;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use sluice_sdk::{unit_id, Assignment, Attributes};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::auth::SdkCaller;
use super::error::ApiError;
use super::json::AppJson;
use super::limits::BatchRoom;
use super::ApiState;
use crate::domain::event::{keep_dimensions, EventInput};
use crate::domain::FieldProblem;

/// Events per batch; larger batches are refused with 413.
pub const MAX_EVENTS_PER_BATCH: usize = 10_000;
pub(super) const MAX_EVENTS_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The SDK routes. Each also takes `OPTIONS`, so that a browser's preflight
/// reaches the CORS layer instead of the "method not allowed" answer.
pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/sdk/v1/ruleset", get(ruleset).options(preflight))
        .route("/sdk/v1/stream", get(stream).options(preflight))
        .route("/sdk/v1/assign", post(assign).options(preflight))
        .route(
            "/sdk/v1/events",
            post(events)
                .options(preflight)
                .layer(DefaultBodyLimit::max(MAX_EVENTS_BODY_BYTES)),
        )
}

/// What an `OPTIONS` request that is not a CORS preflight gets.
pub(super) async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// CORS for browsers calling the SDK endpoints from another origin. The request
/// headers are named one by one: a `*` does not cover `Authorization`.
pub(super) fn cors(origins: &super::CorsOrigins) -> CorsLayer {
    let allow_origin = match origins {
        super::CorsOrigins::Any => AllowOrigin::any(),
        super::CorsOrigins::List(list) => {
            AllowOrigin::list(list.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
        }
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            AUTHORIZATION,
            CONTENT_TYPE,
            IF_NONE_MATCH,
            HeaderName::from_static("x-api-key"),
        ])
        .expose_headers([ETAG, HeaderName::from_static("x-sse-support")])
        .max_age(Duration::from_secs(3600))
}

async fn ruleset(
    State(state): State<ApiState>,
    SdkCaller(key): SdkCaller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let rulesets = state.control.rulesets().current();
    let snapshot = rulesets.environment(key.served_environment());
    let headers_out = [
        (ETAG, snapshot.etag.clone()),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (CONTENT_TYPE, HeaderValue::from_static("application/json")),
    ];
    Ok(if matches_etag(&headers, &snapshot.etag) {
        (StatusCode::NOT_MODIFIED, headers_out).into_response()
    } else {
        (headers_out, snapshot.body.clone()).into_response()
    })
}

/// Whether `If-None-Match` names `etag` (or `*`).
pub(super) fn matches_etag(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let etag = etag.as_bytes();
    headers.get(IF_NONE_MATCH).is_some_and(|tags| {
        tags.as_bytes()
            .split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .any(|tag| tag == etag || tag == b"*")
    })
}

/// Sends the current version at once, then one `ruleset` event each time the
/// key's environment is served something new.
async fn stream(
    State(state): State<ApiState>,
    SdkCaller(key): SdkCaller,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let mut shutdown = state.shutdown.clone();
    let environment = key.served_environment().to_owned();
    let versions = state
        .control
        .rulesets()
        .follow(environment)
        .map(|snapshot| {
            Ok(SseEvent::default()
                .event("ruleset")
                .id(snapshot.version().to_string())
                .data(json!({"version": snapshot.version()}).to_string()))
        })
        .take_until(async move {
            let _ = shutdown.wait_for(|stopping| *stopping).await;
        });
    Ok(Sse::new(versions).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[derive(Deserialize)]
struct AssignRequest {
    user: Attributes,
    #[serde(default)]
    experiments: Option<Vec<String>>,
    #[serde(default = "log_exposure_default")]
    log_exposure: bool,
}

fn log_exposure_default() -> bool {
    true
}

async fn assign(
    State(state): State<ApiState>,
    SdkCaller(key): SdkCaller,
    AppJson(request): AppJson<AssignRequest>,
) -> Result<Response, ApiError> {
    let rulesets = state.control.rulesets().current();
    let snapshot = rulesets.environment(key.served_environment());
    let compiled = &snapshot.compiled;
    let assignments: Vec<Assignment> = match &request.experiments {
        None => compiled.assign_all(&request.user).collect(),
        Some(keys) => {
            let found: Vec<_> = keys
                .iter()
                .map(|key| compiled.assign(key, &request.user))
                .collect();
            let unknown: Vec<FieldProblem> = found
                .iter()
                .zip(keys)
                .enumerate()
                .filter(|(_, (found, _))| found.is_none())
                .map(|(i, (_, key))| FieldProblem {
                    field: format!("experiments[{i}]"),
                    problem: format!("no experiment {key:?} is being served"),
                })
                .collect();
            if !unknown.is_empty() {
                return Err(ApiError::not_found("unknown experiment").with_details(unknown));
            }
            found.into_iter().flatten().collect()
        }
    };
    if request.log_exposure {
        log_exposures(&state, snapshot, &request.user, &assignments).await;
    }
    let mut body = Vec::with_capacity(64 + 160 * assignments.len());
    // Writing into a Vec cannot fail.
    let _ = write!(
        body,
        "{{\"version\":{},\"assignments\":",
        compiled.version()
    );
    compiled.write_assignments(&assignments, &mut body);
    body.push(b'}');
    Ok((
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response())
}

pub(super) async fn log_exposures(
    state: &ApiState,
    snapshot: &crate::control::RulesetSnapshot,
    user: &Attributes,
    assignments: &[Assignment<'_>],
) {
    // Per hash attribute the experiments use (usually one), the user's id in it and
    // the exposures to log: the log looks each user's set up at once.
    let mut units: Vec<Unit> = Vec::new();
    for assignment in assignments.iter().filter(|a| a.in_experiment) {
        let Some(served) = snapshot.served.get(assignment.experiment) else {
            continue;
        };
        let attribute = served.hash_attribute.as_str();
        let at = match units.iter().position(|u| u.attribute == attribute) {
            Some(at) => at,
            None => {
                let id = user.get(attribute).and_then(unit_id);
                units.push(Unit {
                    attribute,
                    id,
                    exposures: Vec::new(),
                    dimensions: Vec::new(),
                });
                units.len() - 1
            }
        };
        let unit = &mut units[at];
        unit.exposures
            .push((assignment.experiment, assignment.variant));
        unit.dimensions.push(&served.dimensions);
    }
    for unit in units {
        let Some(id) = unit.id else {
            continue;
        };
        let kept = |i: usize| keep_dimensions(user, unit.dimensions[i]);
        state
            .control
            .exposures()
            .record(&id, &unit.exposures, kept)
            .await;
    }
}

/// The exposures of one request's user under one hash attribute.
struct Unit<'a> {
    attribute: &'a str,
    id: Option<Cow<'a, str>>,
    /// `(experiment, variant)`.
    exposures: Vec<(&'a str, &'a str)>,
    /// Each exposure's experiment's kept dimensions.
    dimensions: Vec<&'a [String]>,
}

#[derive(Deserialize)]
struct EventBatch {
    events: Vec<EventInput>,
}

async fn events(
    State(state): State<ApiState>,
    SdkCaller(key): SdkCaller,
    _room: BatchRoom,
    AppJson(batch): AppJson<EventBatch>,
) -> Result<(StatusCode, AppJson<serde_json::Value>), ApiError> {
    if batch.events.len() > MAX_EVENTS_PER_BATCH {
        return Err(ApiError::too_large(format!(
            "a batch holds at most {MAX_EVENTS_PER_BATCH} events; this one has {}",
            batch.events.len()
        )));
    }
    let ingested = state
        .control
        .ingest(key.served_environment(), batch.events)
        .await?;
    let outcome = ingested.stored;
    let telemetry = &state.telemetry;
    telemetry
        .events_accepted
        .fetch_add(outcome.accepted, Ordering::Relaxed);
    telemetry
        .events_duplicate
        .fetch_add(outcome.duplicates, Ordering::Relaxed);
    telemetry
        .events_skipped
        .fetch_add(ingested.skipped.len() as u64, Ordering::Relaxed);
    let body = json!({
        "accepted": outcome.accepted,
        "duplicates": outcome.duplicates,
        "skipped": ingested.skipped,
    });
    Ok((StatusCode::ACCEPTED, AppJson(body)))
}
