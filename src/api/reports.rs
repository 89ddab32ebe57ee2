//! Reports (`GET /api/v1/experiments/{key}/report`) and the planning calculator
//! (`GET /api/v1/power`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::auth::{AnalystRole, Authorized};
use super::error::ApiError;
use super::json::{AppJson, AppQuery};
use super::ApiState;
use crate::control::planning::{plan, PowerPlan, PowerQuery};
use crate::control::ReportOptions;
use crate::domain::ValidationError;
use crate::http::csv_attachment;
use crate::report::Correction;

pub(crate) fn router() -> Router<ApiState> {
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
    State(state): State<ApiState>,
    _caller: Authorized<AnalystRole>,
    Path(key): Path<String>,
    AppQuery(query): AppQuery<ReportQuery>,
) -> Result<Response, ApiError> {
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

async fn power(
    _caller: Authorized<AnalystRole>,
    AppQuery(query): AppQuery<PowerQuery>,
) -> Result<AppJson<PowerPlan>, ApiError> {
    Ok(AppJson(plan(&query)?))
}
