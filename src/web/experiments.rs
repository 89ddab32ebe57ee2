//! The experiments page: every experiment with its status, coverage or stage,
//! health and the primary metric's lift; filtered by status, searched by key, in
//! pages of fifty. Only the page's experiments are summarised, from their running
//! totals read at once.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::Response;

use super::error::{Problem, WebError};
use super::fields::Fields;
use super::pages::{page_number, Pagination};
use super::session::Session;
use super::summary::SummaryRow;
use super::text::Text;
use super::view::{render, Chrome};
use super::WebState;
use crate::domain::totals::UserFilter;
use crate::domain::{Status, ValidationError};

pub(crate) struct StatusOption {
    pub(crate) value: &'static str,
    pub(crate) label: &'static str,
    pub(crate) selected: bool,
}

/// The status filter's options, with `selected` chosen.
pub(crate) fn status_options(t: Text, selected: Option<Status>) -> Vec<StatusOption> {
    Status::ALL
        .iter()
        .map(|s| StatusOption {
            value: s.as_str(),
            label: t.status_of(*s),
            selected: Some(*s) == selected,
        })
        .collect()
}

/// A `status` filter: none for every status.
pub(crate) fn status_filter(text: &str) -> Result<Option<Status>, ValidationError> {
    if text.is_empty() {
        return Ok(None);
    }
    Status::parse(text).map(Some).ok_or_else(|| {
        let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        ValidationError::single("status", format!("must be one of {}", names.join(", ")))
    })
}

/// The list's filters, as the query string gives them.
struct ListFilter {
    status: Option<Status>,
    /// As typed, for the search box.
    search: String,
    page: usize,
}

impl ListFilter {
    fn parse(query: &Fields) -> Result<Self, ValidationError> {
        Ok(ListFilter {
            status: status_filter(query.get("status"))?,
            search: query.get("q").to_owned(),
            page: page_number(query.get("page"))?,
        })
    }

    /// The filters as query pairs, for the page links.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("q", self.search.clone()),
            (
                "status",
                self.status
                    .map(Status::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
        ]
    }
}

#[derive(Template)]
#[template(path = "experiments.html")]
struct ExperimentsPage {
    t: Text,
    chrome: Chrome,
    search: String,
    statuses: Vec<StatusOption>,
    rows: Vec<SummaryRow>,
    /// How many experiments exist, filtered or not.
    total: usize,
    pagination: Pagination,
}

pub(crate) async fn list(
    State(state): State<WebState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let t = session.text();
    let query = Fields::parse(query.unwrap_or_default().as_bytes())?;
    let filter =
        ListFilter::parse(&query).map_err(|e| WebError::bad_request(Problem::Invalid(e)))?;
    let experiments = state.control.list_experiments().await?;
    let total = experiments.len();
    let search = filter.search.trim().to_lowercase();
    let matching: Vec<_> = experiments
        .into_iter()
        .filter(|e| {
            filter.status.is_none_or(|s| e.status == s) && e.key().to_lowercase().contains(&search)
        })
        .collect();
    let pagination = Pagination::new("/", &filter.pairs(), filter.page, matching.len());
    let summaries = state
        .control
        .summaries(pagination.take(matching), &UserFilter::EVERYONE)
        .await?;
    Ok(render(&ExperimentsPage {
        t,
        chrome: session.chrome(),
        statuses: status_options(t, filter.status),
        search: filter.search,
        rows: summaries.iter().map(|s| SummaryRow::of(t, s)).collect(),
        total,
        pagination,
    }))
}
