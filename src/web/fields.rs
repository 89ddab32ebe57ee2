//! Form bodies (`application/x-www-form-urlencoded`) as ordered name/value pairs:
//! names repeat for checkboxes and follow the API's field paths (`variants[1].weight`).
//! Also the form controls pages build from them, each with the problem the API's
//! validation found with it.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};

use super::error::{Problem, WebError};
use super::text::Text;
use crate::domain::FieldProblem;

pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(crate) fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Fields(pairs)
    }

    /// A form nobody has filled in yet.
    pub(crate) fn empty() -> Self {
        Fields(Vec::new())
    }

    /// The first value of `name`, or "" when the form has none.
    pub(crate) fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`, in form order (checkbox groups).
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, WebError> {
        serde_urlencoded::from_bytes(bytes)
            .map(Fields)
            .map_err(|_| WebError::bad_request(Problem::UnreadableForm))
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &S) -> Result<Self, WebError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| WebError::bad_request(Problem::FormTooLarge))?;
        Fields::parse(&bytes)
    }
}

/// One form control with its current value and the problem found with it.
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) label: String,
    pub(crate) hint: &'static str,
    pub(crate) value: String,
    pub(crate) error: Option<String>,
    /// Shown but read-only, because the domain refuses to change it now: the id of
    /// the note on the page that says why.
    pub(crate) locked: Option<&'static str>,
}

pub(crate) struct Choice {
    pub(crate) value: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
    pub(crate) id: String,
}

/// The problems the domain found, each in the page's language.
pub(crate) fn translated(t: Text, problems: Vec<FieldProblem>) -> Vec<FieldProblem> {
    problems
        .into_iter()
        .map(|p| FieldProblem {
            problem: t.domain(&p.problem),
            field: p.field,
        })
        .collect()
}

/// Builds fields from submitted values, handing each problem to the field it names
/// (or the field whose path it is inside, such as `condition.country.$in`).
pub(crate) struct Builder<'a> {
    pub(crate) values: &'a Fields,
    pub(crate) problems: Vec<FieldProblem>,
}

impl Builder<'_> {
    pub(crate) fn field(&mut self, name: &str, label: &str, hint: &'static str) -> Field {
        Field {
            id: name.replace(['[', ']', '.'], "-"),
            name: name.to_owned(),
            label: label.to_owned(),
            hint,
            value: self.values.get(name).to_owned(),
            error: self.claim(|field| {
                field == name
                    || field
                        .strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with(['.', '[']))
            }),
            locked: None,
        }
    }

    /// A field of row `i` of a repeated group: `variants[1].weight`.
    pub(crate) fn row(&mut self, group: &str, i: usize, part: &str, label: &str) -> Field {
        self.field(&format!("{group}[{i}].{part}"), label, "")
    }

    /// Problems about a group of fields as a whole, such as `variants`.
    pub(crate) fn group(&mut self, name: &str) -> Option<String> {
        self.claim(|field| field == name)
    }

    pub(crate) fn claim(&mut self, matches: impl Fn(&str) -> bool) -> Option<String> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.problems)
            .into_iter()
            .partition(|p| matches(&p.field));
        self.problems = rest;
        let text: Vec<String> = mine.into_iter().map(|p| p.problem).collect();
        (!text.is_empty()).then(|| text.join("; "))
    }
}

pub(crate) fn choices(
    values: &[(String, String)],
    selected: &[String],
    group: &str,
) -> Vec<Choice> {
    values
        .iter()
        .enumerate()
        .map(|(i, (value, label))| Choice {
            selected: selected.contains(value),
            id: format!("{group}-{i}"),
            value: value.clone(),
            label: label.clone(),
        })
        .collect()
}
