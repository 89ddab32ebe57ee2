//! The planning calculator: users needed for an effect, or the effect a number of
//! users can detect — [`crate::control::planning`], as `GET /api/v1/power` asks it.

use askama::Template;
use axum::extract::Query;
use axum::response::Response;

use super::error::WebError;
use super::fields::{translated, Builder, Field, Fields};
use super::session::Session;
use super::text::Text;
use super::view::{self, render, Chrome};
use crate::control::planning::{plan, PowerPlan, PowerQuery};
use crate::domain::FieldProblem;

#[derive(Template)]
#[template(path = "planning.html")]
struct PlanningPage {
    t: Text,
    chrome: Chrome,
    baseline: Field,
    variance: Field,
    mde: Field,
    users: Field,
    alpha: Field,
    power: Field,
    variants: Field,
    answer: Option<String>,
    problems: Vec<FieldProblem>,
}

/// Reads the optional number in `name`, noting a problem when it is not one.
fn optional_number(
    t: Text,
    values: &Fields,
    name: &str,
    problems: &mut Vec<FieldProblem>,
) -> Option<f64> {
    let text = values.get(name).trim();
    if text.is_empty() {
        return None;
    }
    let parsed = text.parse::<f64>().ok().filter(|v| v.is_finite());
    if parsed.is_none() {
        problems.push(FieldProblem {
            field: name.to_owned(),
            problem: t.must_be_a_number().to_owned(),
        });
    }
    parsed
}

/// The calculator's question from the form, or the problems with it.
fn question(t: Text, values: &Fields) -> Result<PowerQuery, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut number = |name: &str| optional_number(t, values, name, &mut problems);
    let query = PowerQuery {
        baseline: number("baseline").unwrap_or(f64::NAN),
        variance: number("variance"),
        mde: number("mde"),
        users: number("users"),
        alpha: number("alpha").unwrap_or(f64::NAN),
        power: number("power").unwrap_or(f64::NAN),
        variants: number("variants").map_or(0, |v| v.max(0.0) as usize),
    };
    if problems.is_empty() {
        Ok(query)
    } else {
        Err(problems)
    }
}

/// The answer in a sentence.
fn sentence(t: Text, answer: &PowerPlan) -> String {
    // Users are counted whole; the calculator rounds its answers up already.
    let whole = |users: f64| view::count(users.round() as u64);
    let users = whole(answer.users_per_variant);
    let (power, alpha) = (view::number(answer.power), view::number(answer.alpha));
    let mde = view::percent(answer.mde);
    match answer.total_users {
        Some(total) => t.sample_size(users, whole(total), mde, power, alpha),
        None => t.detectable_effect(users, power, alpha, mde),
    }
}

/// The usual significance level, power and number of variants, unless the form
/// says otherwise.
fn with_defaults(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    for (name, usual) in [("alpha", "0.05"), ("power", "0.8"), ("variants", "2")] {
        if !pairs.iter().any(|(n, v)| n == name && !v.trim().is_empty()) {
            pairs.retain(|(n, _)| n != name);
            pairs.push((name.to_owned(), usual.to_owned()));
        }
    }
    pairs
}

pub(crate) async fn page(
    session: Session,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let t = session.text();
    let values = Fields::from_pairs(with_defaults(pairs));
    let asked = !values.get("baseline").trim().is_empty();
    let (answer, problems) = match asked.then(|| question(t, &values)) {
        None => (None, Vec::new()),
        Some(Err(problems)) => (None, problems),
        Some(Ok(query)) => match plan(&query) {
            Ok(answer) => (Some(sentence(t, &answer)), Vec::new()),
            Err(invalid) => (None, translated(t, invalid.problems)),
        },
    };
    let mut b = Builder {
        values: &values,
        problems: problems.clone(),
    };
    Ok(render(&PlanningPage {
        t,
        chrome: session.chrome(),
        baseline: b.field("baseline", t.baseline_field(), t.baseline_hint()),
        variance: b.field("variance", t.variance(), t.variance_hint()),
        mde: b.field("mde", t.effect_to_detect(), t.effect_hint()),
        users: b.field("users", t.users_per_variant(), t.users_hint()),
        alpha: b.field("alpha", t.significance_level(), ""),
        power: b.field("power", t.power(), ""),
        variants: b.field("variants", t.variants_field(), t.variants_hint()),
        answer,
        problems,
    }))
}
