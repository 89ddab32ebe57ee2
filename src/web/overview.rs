//! The KPI overview, `/overview`: every experiment that matches the filters in one
//! grid, red first, then yellow, then green, each with its stage and coverage, the
//! primary metric's lift and every guardrail's verdict with its evidence.
//!
//! The filters live in the query string (a GET form), so a view is shared as a
//! link: `status` (running unless asked otherwise; empty for every status),
//! `environment`, `page`, and the report filters of the contract, `from`, `to`
//! and `segment=DIM:VALUE`. A small script re-fetches the page every 30 seconds and
//! swaps the grid in; without it the page is the same, reloaded by hand.
//!
//! Every experiment that matches is summarised (health orders the whole list, not
//! one page) from the running totals of all of them read at once.

use std::cmp::Reverse;

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::Response;

use super::error::{Problem, WebError};
use super::experiments::{status_filter, status_options, StatusOption};
use super::fields::{choices, Choice, Fields};
use super::pages::{page_number, Pagination};
use super::session::Session;
use super::summary::SummaryRow;
use super::text::Text;
use super::view::{self, render, Chrome};
use super::WebState;
use crate::domain::environment::is_served_in;
use crate::domain::validation::Problems;
use crate::domain::{
    now_millis, parse_date_or_time, Environment, Experiment, Millis, Status, ValidationError,
};

/// The statuses the overview shows when the link names none.
const DEFAULT_STATUS: Status = Status::Running;

/// The users a view counts: first exposed in [`from`, `to`) and with these kept
/// dimension values (the contract's report filters). They are read and kept in
/// the view's links; the running totals the overview reads count every user, so
/// until the store can filter them the page says that they are not applied.
struct Cohort {
    from: Option<TimeBound>,
    to: Option<TimeBound>,
    segments: Vec<Segment>,
}

/// A time as the link gives it (a date or an RFC 3339 time) and the instant it
/// stands for.
struct TimeBound {
    text: String,
    at: Millis,
}

/// A kept dimension's value, `segment=country:CN`.
struct Segment {
    dimension: String,
    value: String,
}

impl Cohort {
    fn parse(query: &Fields, problems: &mut Problems) -> Self {
        let mut bound = |name: &str| {
            let text = query.get(name).trim();
            if text.is_empty() {
                return None;
            }
            let at = parse_date_or_time(text);
            problems.check(at.is_some(), name, TIME_RULE);
            at.map(|at| TimeBound {
                text: text.to_owned(),
                at,
            })
        };
        let (from, to) = (bound("from"), bound("to"));
        if let (Some(from), Some(to)) = (&from, &to) {
            problems.check(from.at < to.at, "to", "must be later than from");
        }
        let mut segments = Vec::new();
        for (i, text) in query.all("segment").iter().enumerate() {
            match text.split_once(':') {
                Some((dimension, value)) if !dimension.is_empty() => segments.push(Segment {
                    dimension: dimension.to_owned(),
                    value: value.to_owned(),
                }),
                _ => problems.add(format!("segment[{i}]"), SEGMENT_RULE),
            }
        }
        Cohort { from, to, segments }
    }

    /// Everyone: no report filter asked for.
    fn is_everyone(&self) -> bool {
        self.from.is_none() && self.to.is_none() && self.segments.is_empty()
    }

    /// The filters in words, for the notice that they are not applied.
    fn describe(&self, t: Text) -> String {
        let mut parts = Vec::new();
        if let Some(from) = &self.from {
            parts.push(t.cohort_from(view::date_time(t.lang, from.at)));
        }
        if let Some(to) = &self.to {
            parts.push(t.cohort_to(view::date_time(t.lang, to.at)));
        }
        for segment in &self.segments {
            parts.push(t.cohort_segment(&segment.dimension, &segment.value));
        }
        parts.join(t.list_separator())
    }

    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(from) = &self.from {
            pairs.push(("from", from.text.clone()));
        }
        if let Some(to) = &self.to {
            pairs.push(("to", to.text.clone()));
        }
        for segment in &self.segments {
            let text = format!("{}:{}", segment.dimension, segment.value);
            pairs.push(("segment", text));
        }
        pairs
    }
}

const TIME_RULE: &str = "must be a date (YYYY-MM-DD) or an RFC 3339 time";
const SEGMENT_RULE: &str = "must be DIMENSION:VALUE";

/// The overview's filters, as the link gives them.
struct OverviewFilter {
    /// None: every status.
    status: Option<Status>,
    environment: Option<String>,
    cohort: Cohort,
    page: usize,
}

impl OverviewFilter {
    fn parse(query: &Fields, environments: &[Environment]) -> Result<Self, ValidationError> {
        let mut problems = Problems::default();
        // A form sends `status=` for "every status"; a link without it means running.
        let status = match query.all("status").first() {
            None => Ok(Some(DEFAULT_STATUS)),
            Some(text) => status_filter(text),
        };
        let environment = Some(query.get("environment").to_owned()).filter(|e| !e.is_empty());
        if let Some(environment) = &environment {
            problems.check(
                environments.iter().any(|e| &e.key == environment),
                "environment",
                "is not a defined environment (POST /api/v1/environments)",
            );
        }
        let cohort = Cohort::parse(query, &mut problems);
        let page = page_number(query.get("page"));
        problems.into_result()?;
        Ok(OverviewFilter {
            status: status?,
            environment,
            cohort,
            page: page?,
        })
    }

    fn admits(&self, experiment: &Experiment) -> bool {
        self.status.is_none_or(|s| experiment.status == s)
            && self
                .environment
                .as_deref()
                .is_none_or(|env| is_served_in(&experiment.spec.environments, env))
    }

    /// The filters as query pairs, for the page links.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let status = self.status.map(Status::as_str).unwrap_or_default();
        let mut pairs = vec![
            ("status", status.to_owned()),
            ("environment", self.environment.clone().unwrap_or_default()),
        ];
        pairs.extend(self.cohort.pairs());
        pairs
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    t: Text,
    chrome: Chrome,
    statuses: Vec<StatusOption>,
    /// "Every status" is chosen.
    every_status: bool,
    environments: Vec<Choice>,
    /// The report filters the link carries, kept by the form.
    kept: Vec<(&'static str, String)>,
    /// The report filters in words, when some are asked for but not applied.
    not_applied: Option<String>,
    rows: Vec<SummaryRow>,
    pagination: Pagination,
    /// When the numbers were read, in words and RFC 3339.
    updated: String,
    updated_at: String,
}

pub(crate) async fn page(
    State(state): State<WebState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let t = session.text();
    let query = Fields::parse(query.unwrap_or_default().as_bytes())?;
    let environments = state.control.list_environments().await?;
    let filter = OverviewFilter::parse(&query, &environments)
        .map_err(|e| WebError::bad_request(Problem::Invalid(e)))?;
    let matching: Vec<Experiment> = state
        .control
        .list_experiments()
        .await?
        .into_iter()
        .filter(|e| filter.admits(e))
        .collect();
    // The cohort is not passed on: the running totals count every user (see Cohort).
    let mut summaries = state.control.summaries(matching).await?;
    // Stable: within one health, the experiments keep the list's order (newest first).
    summaries.sort_by_key(|s| Reverse(s.report.health));
    let pagination = Pagination::new("/overview", &filter.pairs(), filter.page, summaries.len());
    let rows = pagination
        .take(summaries)
        .iter()
        .map(|s| SummaryRow::of(t, s))
        .collect();
    let environment_options: Vec<(String, String)> = environments
        .iter()
        .map(|e| (e.key.clone(), t.environment_choice(&e.name, &e.key)))
        .collect();
    let selected: Vec<String> = filter.environment.iter().cloned().collect();
    let now = now_millis();
    Ok(render(&OverviewPage {
        t,
        chrome: session.chrome(),
        statuses: status_options(t, filter.status),
        every_status: filter.status.is_none(),
        environments: choices(&environment_options, &selected, "environment"),
        kept: filter.cohort.pairs(),
        not_applied: (!filter.cohort.is_everyone()).then(|| filter.cohort.describe(t)),
        rows,
        pagination,
        updated: view::date_time(t.lang, now),
        updated_at: crate::domain::format_millis(now),
    }))
}
