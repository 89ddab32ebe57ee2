//! The planning calculator: users needed for an effect, or the effect a number of
//! users can detect — [`crate::control::planning`], as `GET /api/v1/power` asks it.

use askama::Template;
use axum::extract::Query;
use axum::response::Response;

use super::error::WebError;
use super::fields::{Builder, Field, Fields};
use super::session::Session;
use super::view::{self, render, Chrome};
use crate::control::planning::{plan, PowerPlan, PowerQuery};
use crate::domain::FieldProblem;

#[derive(Template)]
#[template(path = "planning.html")]
struct PlanningPage {
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
fn optional_number(values: &Fields, name: &str, problems: &mut Vec<FieldProblem>) -> Option<f64> {
    let text = values.get(name).trim();
    if text.is_empty() {
        return None;
    }
    let parsed = text.parse::<f64>().ok().filter(|v| v.is_finite());
    if parsed.is_none() {
        problems.push(FieldProblem {
            field: name.to_owned(),
            problem: "must be a number".to_owned(),
        });
    }
    parsed
}

/// The calculator's question from the form, or the problems with it.
fn question(values: &Fields) -> Result<PowerQuery, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut number = |name: &str| optional_number(values, name, &mut problems);
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
fn sentence(answer: &PowerPlan) -> String {
    match answer.total_users {
        Some(total) => format!(
            "{} users per variant ({} in all) detect a relative effect of {} with power {} at significance level {}.",
            answer.users_per_variant,
            total,
            view::percent(answer.mde),
            view::number(answer.power),
            view::number(answer.alpha)
        ),
        None => format!(
            "With {} users per variant, the smallest relative effect detected with power {} at significance level {} is {}.",
            answer.users_per_variant,
            view::number(answer.power),
            view::number(answer.alpha),
            view::percent(answer.mde)
        ),
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
    let values = Fields::from_pairs(with_defaults(pairs));
    let asked = !values.get("baseline").trim().is_empty();
    let (answer, problems) = match asked.then(|| question(&values)) {
        None => (None, Vec::new()),
        Some(Err(problems)) => (None, problems),
        Some(Ok(query)) => match plan(&query) {
            Ok(answer) => (Some(sentence(&answer)), Vec::new()),
            Err(invalid) => (None, invalid.problems),
        },
    };
    let mut b = Builder {
        values: &values,
        problems: problems.clone(),
    };
    Ok(render(&PlanningPage {
        chrome: session.chrome(),
        baseline: b.field(
            "baseline",
            "Baseline",
            "The control's conversion rate (0.1 for 10%), or its mean when you give a variance.",
        ),
        variance: b.field(
            "variance",
            "Variance",
            "Only for mean metrics: the per-user variance.",
        ),
        mde: b.field(
            "mde",
            "Relative effect to detect",
            "e.g. 0.05 for 5%; leave empty to compute it from users.",
        ),
        users: b.field(
            "users",
            "Users per variant",
            "Leave empty to compute it from the effect.",
        ),
        alpha: b.field("alpha", "Significance level", ""),
        power: b.field("power", "Power", ""),
        variants: b.field("variants", "Variants", "Including the control."),
        answer,
        problems,
    }))
}
