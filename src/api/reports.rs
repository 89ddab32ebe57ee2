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
use crate::control::ReportOptions;
use crate::domain::totals::UserFilter;
use crate::domain::ValidationError;
use crate::http::csv_attachment;
use crate::report::Correction;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/experiments/{key}/report", get(report))
        .route("/api/v1/power", get(power))
}

/// A report request's query string: `segment` may repeat, the rest may not.
#[derive(Default)]
struct ReportQuery {
    format: Option<String>,
    correction: Option<String>,
    series: Option<String>,
    dimension: Option<String>,
    from: Option<String>,
    to: Option<String>,
    segments: Vec<String>,
}

impl ReportQuery {
    fn parse(pairs: Vec<(String, String)>) -> Result<Self, ValidationError> {
        let mut query = ReportQuery::default();
        for (name, value) in pairs {
            let single = match name.as_str() {
                "segment" => {
                    query.segments.push(value);
                    continue;
                }
                "format" => &mut query.format,
                "correction" => &mut query.correction,
                "series" => &mut query.series,
                "dimension" => &mut query.dimension,
                "from" => &mut query.from,
                "to" => &mut query.to,
                _ => continue,
            };
            if single.replace(value).is_some() {
                return Err(ValidationError::single(name, "is given more than once"));
            }
        }
        Ok(query)
    }

    fn options(&self) -> Result<ReportOptions, ValidationError> {
        let correction = self
            .correction
            .as_deref()
            .map(|c| {
                Correction::parse(c)
                    .ok_or_else(|| ValidationError::single("correction", "must be holm or bh"))
            })
            .transpose()?;
        let daily_series = match self.series.as_deref() {
            None => false,
            Some("daily") => true,
            Some(_) => return Err(ValidationError::single("series", "must be daily")),
        };
        let dimensions = self
            .dimension
            .iter()
            .flat_map(|d| d.split(','))
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
            .collect();
        let filter = UserFilter::parse(self.from.as_deref(), self.to.as_deref(), &self.segments)?;
        Ok(ReportOptions {
            correction,
            filter,
            dimensions,
            daily_series,
        })
    }
}

async fn report(
    State(state): State<ApiState>,
    _caller: Authorized<AnalystRole>,
    Path(key): Path<String>,
    AppQuery(pairs): AppQuery<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let query = ReportQuery::parse(pairs)?;
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ValidationError::single("format", "must be json or csv").into()),
    };
    let report = state.control.report(&key, query.options()?).await?;
    if csv {
        Ok(csv_attachment(&key, &report))
    } else {
        Ok(AppJson(report).into_response())
    }
}

async fn power(
    _caller: Authorized<AnalystRole>,
    AppQuery(query): AppQuery<PowerQuery>,
) -> Result<AppJson<PowerPlan>, ApiError> {
    Ok(AppJson(plan(&query)?))
}
