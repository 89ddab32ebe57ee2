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
use crate::domain::totals::UserFilter;
use crate::domain::validation::Problems;
use crate::domain::{now_millis, Environment, Experiment, Status, ValidationError};

/// The status the overview shows when the link names none.
const DEFAULT_STATUS: Status = Status::Running;

/// The report filters the link carries (the contract's `from`, `to` and
/// `segment=DIM:VALUE`), read as a report reads them, applied to every row and
/// kept in the view's links.
struct Cohort {
    filter: UserFilter,
    /// The filters as the link gives them, for the form and the page links.
    pairs: Vec<(&'static str, String)>,
}

impl Cohort {
    fn parse(query: &Fields) -> Result<Self, ValidationError> {
        let text = |name: &str| Some(query.get(name).trim()).filter(|t| !t.is_empty());
        let segments: Vec<String> = query
            .all("segment")
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        let filter = UserFilter::parse(text("from"), text("to"), &segments)?;
        let mut pairs = Vec::new();
        for name in ["from", "to"] {
            if let Some(text) = text(name) {
                pairs.push((name, text.to_owned()));
            }
        }
        pairs.extend(segments.into_iter().map(|s| ("segment", s)));
        Ok(Cohort { filter, pairs })
    }

    /// The value the link gives for `name` (`from` or `to`), empty without one.
    fn given(&self, name: &str) -> String {
        self.pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    }

    /// The segments the link gives, then an empty one for the form to add.
    fn segments_and_one_more(&self) -> Vec<String> {
        let given = self.pairs.iter().filter(|(n, _)| *n == "segment");
        given
            .map(|(_, value)| value.clone())
            .chain([String::new()])
            .collect()
    }

    /// The filters in words, for the notice that says whom the numbers count.
    fn describe(&self, t: Text) -> String {
        let mut parts = Vec::new();
        if let Some(from) = self.filter.from {
            parts.push(t.cohort_from(view::date_time(t.lang, from)));
        }
        if let Some(to) = self.filter.to {
            parts.push(t.cohort_to(view::date_time(t.lang, to)));
        }
        for (dimension, values) in &self.filter.segments {
            parts.extend(values.iter().map(|v| t.cohort_segment(dimension, v)));
        }
        parts.join(t.list_separator())
    }
}

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
        let cohort = Cohort::parse(query);
        let page = page_number(query.get("page"));
        for invalid in [
            status.as_ref().err(),
            cohort.as_ref().err(),
            page.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        {
            for p in &invalid.problems {
                problems.add(p.field.clone(), p.problem.clone());
            }
        }
        problems.into_result()?;
        Ok(OverviewFilter {
            status: status?,
            environment,
            cohort: cohort?,
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
        pairs.extend(self.cohort.pairs.iter().cloned());
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
    /// The report filters the link carries, for the form: dates as given, and each
    /// segment then an empty field for one more.
    from: String,
    to: String,
    segments: Vec<String>,
    /// The report filters in words, when some apply.
    applied: Option<String>,
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
    let mut summaries = state
        .control
        .summaries(matching, &filter.cohort.filter)
        .await?;
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
        applied: (!filter.cohort.filter.is_everyone()).then(|| filter.cohort.describe(t)),
        from: filter.cohort.given("from"),
        to: filter.cohort.given("to"),
        segments: filter.cohort.segments_and_one_more(),
        rows,
        pagination,
        updated: view::date_time(t.lang, now),
        updated_at: crate::domain::format_millis(now),
    }))
}
