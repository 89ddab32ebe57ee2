//! Reports (`GET /api/v1/experiments/{key}/report`) and the planning calculator
//! (`GET /api/v1/power`).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::auth::{AnalystRole, Authorized};
use super::error::ApiError;
use super::json::{AppJson, AppQuery};
use super::ApiState;
use crate::control::planning::{plan, PowerPlan, PowerQuery};
use crate::control::{ReportFormat, ReportQuery};
use crate::http::csv_attachment;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/experiments/{key}/report", get(report))
        .route("/api/v1/power", get(power))
}

async fn report(
    State(state): State<ApiState>,
    _caller: Authorized<AnalystRole>,
    Path(key): Path<String>,
    AppQuery(pairs): AppQuery<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let query = ReportQuery::parse(pairs)?;
    let format = query.format()?;
    let report = state.control.report(&key, query.options()?).await?;
    match format {
        ReportFormat::Csv => Ok(csv_attachment(&key, &report)),
        ReportFormat::Json => Ok(AppJson(report).into_response()),
    }
}

async fn power(
    _caller: Authorized<AnalystRole>,
    AppQuery(query): AppQuery<PowerQuery>,
) -> Result<AppJson<PowerPlan>, ApiError> {
    Ok(AppJson(plan(&query)?))
}
