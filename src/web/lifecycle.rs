//! Lifecycle buttons (start, pause, resume, roll back, ship, stop): which ones an
//! experiment offers, a confirmation page that says what happens to users and how
//! many of them change variant, and the form that makes the move through the
//! control layer.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::error::Problem;
use super::error::WebError;
use super::session::{Session, SignedForm};
use super::text::Text;
use super::view::{self, render, Chrome};
use super::WebState;
use crate::domain::totals::ExposureSummary;
use crate::domain::{now_millis, Experiment, LifecycleAction, Role, Status};

/// A button on the experiment page leading to the confirmation of one move.
pub(crate) struct ActionLink {
    pub(crate) label: String,
    pub(crate) href: String,
    pub(crate) danger: bool,
}

/// The moves the experiment's current status allows, one ship per variant; the
/// domain's state machine decides, by trying each move on a copy.
pub(crate) fn available_actions(t: Text, experiment: &Experiment) -> Vec<ActionLink> {
    let key = experiment.key();
    let mut moves = vec![
        LifecycleAction::Start,
        LifecycleAction::Pause,
        LifecycleAction::Resume,
        LifecycleAction::Rollback,
    ];
    moves.extend(
        experiment
            .spec
            .variants
            .iter()
            .map(|v| LifecycleAction::Ship {
                variant: v.key.clone(),
            }),
    );
    moves.push(LifecycleAction::Stop);
    moves
        .into_iter()
        .filter(|action| experiment.clone().apply(action, now_millis()).is_ok())
        .map(|action| ActionLink {
            label: label(t, &action),
            href: match &action {
                LifecycleAction::Ship { variant } => {
                    format!("/experiments/{key}/confirm?action=ship&variant={variant}")
                }
                other => format!("/experiments/{key}/confirm?action={}", other.name()),
            },
            danger: matches!(action, LifecycleAction::Rollback | LifecycleAction::Stop),
        })
        .collect()
}

fn label(t: Text, action: &LifecycleAction) -> String {
    match action {
        LifecycleAction::Start => t.start().to_owned(),
        LifecycleAction::Pause => t.pause().to_owned(),
        LifecycleAction::Resume => t.resume().to_owned(),
        LifecycleAction::Rollback => t.roll_back().to_owned(),
        LifecycleAction::Ship { variant } => t.ship(variant),
        LifecycleAction::Stop => t.stop().to_owned(),
    }
}

/// What the move does to the people in the experiment, in words.
fn consequence(t: Text, action: &LifecycleAction, experiment: &Experiment) -> String {
    let control = experiment
        .spec
        .variants
        .first()
        .map_or("control", |v| v.key.as_str());
    let coverage = view::percent(experiment.spec.coverage);
    match action {
        LifecycleAction::Start => t.consequence_start(coverage),
        LifecycleAction::Pause => t.consequence_pause(control),
        LifecycleAction::Resume => t.consequence_resume(coverage),
        LifecycleAction::Rollback => t.consequence_rollback(control),
        LifecycleAction::Ship { variant } => t.consequence_ship(variant),
        LifecycleAction::Stop => t.consequence_stop(control),
    }
}

/// How many users the move takes to another variant, from the exposures counted
/// so far; none for a start (a draft has counted nobody) and for resuming a ramp
/// that the breakers froze (nobody changes variant).
fn affected(
    t: Text,
    action: &LifecycleAction,
    experiment: &Experiment,
    exposures: &ExposureSummary,
) -> Option<String> {
    let users_in = |variant: &str| {
        exposures
            .users
            .iter()
            .find(|(v, _)| v == variant)
            .map_or(0, |(_, n)| *n)
    };
    let exposed: u64 = exposures.users.iter().map(|(_, n)| n).sum();
    let everyone_to = |to: &str| {
        let moving: Vec<(&str, u64)> = experiment
            .spec
            .variants
            .iter()
            .filter(|v| v.key != to)
            .map(|v| (v.key.as_str(), users_in(&v.key)))
            .filter(|(_, users)| *users > 0)
            .collect();
        let users: u64 = moving.iter().map(|(_, n)| n).sum();
        let names: Vec<&str> = moving.iter().map(|(v, _)| *v).collect();
        match (exposed, users) {
            (0, _) => t.affected_nobody().to_owned(),
            (_, 0) => t.affected_none_move(to),
            _ => t.affected_switch(view::count(users), names.join(t.list_separator()), to),
        }
    };
    let control = experiment.spec.variants.first()?.key.as_str();
    match action {
        LifecycleAction::Start => None,
        LifecycleAction::Resume if experiment.status != Status::Paused => None,
        LifecycleAction::Resume if exposed == 0 => Some(t.affected_nobody().to_owned()),
        LifecycleAction::Resume => Some(t.affected_return(view::count(exposed))),
        LifecycleAction::Pause | LifecycleAction::Rollback | LifecycleAction::Stop => {
            Some(everyone_to(control))
        }
        LifecycleAction::Ship { variant } => Some(everyone_to(variant)),
    }
}

/// Reads a move from its name and, for ship, the variant.
fn parse_action(name: &str, variant: &str) -> Result<LifecycleAction, WebError> {
    LifecycleAction::from_name(name, Some(variant.to_owned()))
        .ok_or_else(|| WebError::bad_request(Problem::NoSuchAction))
}

#[derive(Deserialize)]
pub(crate) struct ConfirmQuery {
    action: String,
    #[serde(default)]
    variant: String,
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    t: Text,
    chrome: Chrome,
    key: String,
    action: &'static str,
    variant: String,
    label: String,
    consequence: String,
    /// How many users change variant.
    affected: Option<String>,
    danger: bool,
}

pub(crate) async fn confirm(
    State(state): State<WebState>,
    session: Session,
    Path(key): Path<String>,
    Query(query): Query<ConfirmQuery>,
) -> Result<Response, WebError> {
    session.require(Role::Editor)?;
    let action = parse_action(&query.action, &query.variant)?;
    let experiment = state.control.get_experiment(&key).await?;
    let exposures = state.control.exposure_summary(&key).await?;
    let t = session.text();
    Ok(render(&ConfirmPage {
        t,
        chrome: session.chrome(),
        consequence: consequence(t, &action, &experiment),
        affected: affected(t, &action, &experiment, &exposures),
        label: label(t, &action),
        action: action.name(),
        danger: matches!(action, LifecycleAction::Rollback | LifecycleAction::Stop),
        variant: query.variant,
        key,
    }))
}

pub(crate) async fn act(
    State(state): State<WebState>,
    Path(key): Path<String>,
    form: SignedForm,
) -> Result<Response, WebError> {
    form.session.require(Role::Editor)?;
    let action = parse_action(form.fields.get("action"), form.fields.get("variant"))?;
    state
        .control
        .act(&key, action, &form.session.actor())
        .await?;
    Ok(Redirect::to(&format!("/experiments/{key}")).into_response())
}
