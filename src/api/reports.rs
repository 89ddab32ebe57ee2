//! Reports (`GET /api/v1/experiments/{key}/report`) and the planning calculator
//! (`GET /api/v1/power`).

use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::auth::Caller;
use super::error::ApiError;
use super::json::{AppJson, AppQuery};
use super::AppState;
use crate::control::ReportOptions;
use crate::domain::{Role, ValidationError};
use crate::report::{to_csv, Correction, Report};
use crate::stats::{self, Baseline};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/experiments/{key}/report", get(report))
        .route("/api/v1/power", get(power))
}

#[derive(Deserialize)]
struct ReportQuery {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    correction: Option<String>,
    #[serde(default)]
    series: Option<String>,
    #[serde(default)]
    dimension: Option<String>,
}

async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    AppQuery(query): AppQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    caller.require(Role::Analyst)?;
    let correction = query
        .correction
        .as_deref()
        .map(|c| {
            Correction::parse(c)
                .ok_or_else(|| ValidationError::single("correction", "must be holm or bh"))
        })
        .transpose()?;
    let daily_series = match query.series.as_deref() {
        None => false,
        Some("daily") => true,
        Some(_) => return Err(ValidationError::single("series", "must be daily").into()),
    };
    let options = ReportOptions {
        correction,
        daily_series,
        dimension: query.dimension,
    };
    let report = state.control.report(&key, options).await?;
    match query.format.as_deref() {
        None | Some("json") => Ok(AppJson(report).into_response()),
        Some("csv") => Ok(csv_attachment(&key, &report)),
        Some(_) => Err(ValidationError::single("format", "must be json or csv").into()),
    }
}

/// A report as a CSV file download, for the API and the dashboard's export.
pub(crate) fn csv_attachment(key: &str, report: &Report) -> Response {
    (
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{key}-report.csv\""),
            ),
        ],
        to_csv(report),
    )
        .into_response()
}

/// `baseline` is a conversion rate, or a mean when `variance` is given; `mde` asks
/// for the users needed, `users` (per variant) for the smallest detectable effect.
#[derive(Deserialize)]
pub(crate) struct PowerQuery {
    pub(crate) baseline: f64,
    #[serde(default)]
    pub(crate) variance: Option<f64>,
    #[serde(default)]
    pub(crate) mde: Option<f64>,
    #[serde(default)]
    pub(crate) users: Option<f64>,
    #[serde(default = "default_alpha")]
    pub(crate) alpha: f64,
    #[serde(default = "default_power")]
    pub(crate) power: f64,
    #[serde(default = "default_variants")]
    pub(crate) variants: usize,
}

fn default_alpha() -> f64 {
    0.05
}
fn default_power() -> f64 {
    0.8
}
fn default_variants() -> usize {
    2
}

async fn power(
    caller: Caller,
    AppQuery(q): AppQuery<PowerQuery>,
) -> Result<AppJson<serde_json::Value>, ApiError> {
    caller.require(Role::Analyst)?;
    Ok(AppJson(plan(&q)?))
}

/// The sample size for an effect, or the effect a sample can detect: the answer of
/// `GET /api/v1/power` and of the dashboard's planning calculator.
pub(crate) fn plan(q: &PowerQuery) -> Result<serde_json::Value, ValidationError> {
    let baseline = match q.variance {
        Some(variance) => Baseline {
            mean: q.baseline,
            variance,
        },
        None => Baseline::proportion(q.baseline),
    };
    let invalid = |r: stats::Reason| ValidationError::single("query", r.to_string());
    let body = match (q.mde, q.users) {
        (Some(mde), None) => {
            let n = stats::sample_size_per_variant(baseline, mde, q.alpha, q.power, q.variants)
                .map_err(invalid)?
                .ceil();
            json!({"users_per_variant": n, "total_users": n * q.variants as f64,
                   "mde": mde, "alpha": q.alpha, "power": q.power, "variants": q.variants})
        }
        (None, Some(users)) => {
            let mde =
                stats::minimum_detectable_effect(users, baseline, q.alpha, q.power, q.variants)
                    .map_err(invalid)?;
            json!({"mde": mde, "users_per_variant": users,
                   "alpha": q.alpha, "power": q.power, "variants": q.variants})
        }
        _ => {
            return Err(ValidationError::single(
                "mde",
                "give exactly one of mde or users",
            ))
        }
    };
    Ok(body)
}
