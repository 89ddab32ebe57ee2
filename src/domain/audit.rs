//! The audit log: every change, to an experiment or to the settings (API keys,
//! webhooks, environments), by whom, before and after. Its actions are one enum, which is also
//! what webhooks subscribe to and what the guard reports it decided.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::experiment::{GuardrailAction, LifecycleAction};
use super::Millis;

/// What a change did. The audit log, webhook subscriptions and the guard's
/// decisions all name actions by [`AuditAction::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    Create,
    Update,
    Start,
    Pause,
    Resume,
    Rollback,
    Ship,
    Stop,
    /// The scheduler moved a staged rollout to its next stage.
    Advance,
    /// The guard acted on its own.
    Guard(GuardAction),
    /// The scheduler sent the report due `report_after_hours` after the start.
    ReportReady,
    KeyCreate,
    KeyRevoke,
    WebhookCreate,
    WebhookDelete,
    EnvironmentCreate,
    /// A user's data was erased (`DELETE /api/v1/users/{id}`).
    UserErase,
}

/// What the breakers may do to a running experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuardAction {
    /// Everyone gets control.
    Rollback,
    /// Coverage back one stage.
    Adjust,
    /// The ramp is frozen.
    Pause,
    /// Only tells: a webhook and an audit entry.
    Alert,
    /// A guardrail turned yellow.
    Warn,
    /// A sample ratio mismatch froze the ramp.
    Freeze,
    /// Every guardrail is green again.
    Clear,
    /// The cause of a frozen ramp cleared for enough consecutive checks.
    Unfreeze,
}

impl GuardAction {
    pub const ALL: [GuardAction; 8] = [
        GuardAction::Rollback,
        GuardAction::Adjust,
        GuardAction::Pause,
        GuardAction::Alert,
        GuardAction::Warn,
        GuardAction::Freeze,
        GuardAction::Clear,
        GuardAction::Unfreeze,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GuardAction::Rollback => "rollback",
            GuardAction::Adjust => "adjust",
            GuardAction::Pause => "pause",
            GuardAction::Alert => "alert",
            GuardAction::Warn => "warn",
            GuardAction::Freeze => "freeze",
            GuardAction::Clear => "clear",
            GuardAction::Unfreeze => "unfreeze",
        }
    }
}

impl From<GuardrailAction> for GuardAction {
    fn from(action: GuardrailAction) -> Self {
        match action {
            GuardrailAction::Rollback => GuardAction::Rollback,
            GuardrailAction::Adjust => GuardAction::Adjust,
            GuardrailAction::Pause => GuardAction::Pause,
            GuardrailAction::Alert => GuardAction::Alert,
        }
    }
}

impl From<&LifecycleAction> for AuditAction {
    fn from(action: &LifecycleAction) -> Self {
        match action {
            LifecycleAction::Start => AuditAction::Start,
            LifecycleAction::Pause => AuditAction::Pause,
            LifecycleAction::Resume => AuditAction::Resume,
            LifecycleAction::Rollback => AuditAction::Rollback,
            LifecycleAction::Ship { .. } => AuditAction::Ship,
            LifecycleAction::Stop => AuditAction::Stop,
        }
    }
}

impl AuditAction {
    /// Every action about an experiment: what a webhook may subscribe to.
    pub fn experiment_actions() -> impl Iterator<Item = AuditAction> {
        use AuditAction::*;
        [
            Create, Update, Start, Pause, Resume, Rollback, Ship, Stop, Advance,
        ]
        .into_iter()
        .chain(GuardAction::ALL.into_iter().map(Guard))
        .chain([ReportReady])
    }

    /// Every action, the settings' too.
    fn all() -> impl Iterator<Item = AuditAction> {
        use AuditAction::*;
        Self::experiment_actions().chain([
            KeyCreate,
            KeyRevoke,
            WebhookCreate,
            WebhookDelete,
            EnvironmentCreate,
            UserErase,
        ])
    }

    /// The action named `name` by [`AuditAction::as_str`].
    pub fn parse(name: &str) -> Option<AuditAction> {
        Self::all().find(|action| action.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "create",
            AuditAction::Update => "update",
            AuditAction::Start => "start",
            AuditAction::Pause => "pause",
            AuditAction::Resume => "resume",
            AuditAction::Rollback => "rollback",
            AuditAction::Ship => "ship",
            AuditAction::Stop => "stop",
            AuditAction::Advance => "advance",
            AuditAction::Guard(GuardAction::Rollback) => "guard_rollback",
            AuditAction::Guard(GuardAction::Adjust) => "guard_adjust",
            AuditAction::Guard(GuardAction::Pause) => "guard_pause",
            AuditAction::Guard(GuardAction::Alert) => "guard_alert",
            AuditAction::Guard(GuardAction::Warn) => "guard_warn",
            AuditAction::Guard(GuardAction::Freeze) => "guard_freeze",
            AuditAction::Guard(GuardAction::Clear) => "guard_clear",
            AuditAction::Guard(GuardAction::Unfreeze) => "guard_unfreeze",
            AuditAction::ReportReady => "report_ready",
            AuditAction::KeyCreate => "key_create",
            AuditAction::KeyRevoke => "key_revoke",
            AuditAction::WebhookCreate => "webhook_create",
            AuditAction::WebhookDelete => "webhook_delete",
            AuditAction::EnvironmentCreate => "environment_create",
            AuditAction::UserErase => "user_erase",
        }
    }

    /// Whether webhooks hear of it: changes to experiments, not to the settings.
    pub fn is_webhook_event(self) -> bool {
        !matches!(
            self,
            AuditAction::KeyCreate
                | AuditAction::KeyRevoke
                | AuditAction::WebhookCreate
                | AuditAction::WebhookDelete
                | AuditAction::EnvironmentCreate
                | AuditAction::UserErase
        )
    }
}

impl Serialize for AuditAction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        AuditAction::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown action {name:?}")))
    }
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Someone holding an API key (through the API or the dashboard), by its name.
    Key(String),
    /// The circuit breakers.
    Guard,
    /// The staged-rollout scheduler.
    Scheduler,
    /// The `sluice` command line, run by whoever can reach the database.
    Cli,
}

/// The kinds of [`Actor`], as the audit JSON's `actor_kind` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Key,
    Guard,
    Scheduler,
    Cli,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Key => "key",
            ActorKind::Guard => "guard",
            ActorKind::Scheduler => "scheduler",
            ActorKind::Cli => "cli",
        }
    }

    pub fn parse(text: &str) -> Option<ActorKind> {
        [
            ActorKind::Key,
            ActorKind::Guard,
            ActorKind::Scheduler,
            ActorKind::Cli,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }

    /// Whether a key may not carry this name: the server's own actors' names, in
    /// any case, so no key can make its changes look like the breaker's.
    pub fn is_reserved_name(name: &str) -> bool {
        Self::parse(&name.trim().to_ascii_lowercase()).is_some_and(|kind| kind != ActorKind::Key)
    }
}

impl Actor {
    /// The name the audit log records.
    pub fn name(&self) -> &str {
        match self {
            Actor::Key(name) => name,
            Actor::Guard => "guard",
            Actor::Scheduler => "scheduler",
            Actor::Cli => "cli",
        }
    }

    pub fn kind(&self) -> ActorKind {
        match self {
            Actor::Key(_) => ActorKind::Key,
            Actor::Guard => ActorKind::Guard,
            Actor::Scheduler => ActorKind::Scheduler,
            Actor::Cli => ActorKind::Cli,
        }
    }
}

/// What an audit entry is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSubject {
    Experiment(String),
    ApiKey(i64),
    Webhook(i64),
    Environment(String),
    /// An erased user, by the SHA-256 of their id: the log must not keep the id.
    User(String),
}

impl AuditSubject {
    /// The stored kind: `experiment`, `api_key`, `webhook`, `environment` or `user`.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditSubject::Experiment(_) => "experiment",
            AuditSubject::Environment(_) => "environment",
            AuditSubject::User(_) => "user",
            AuditSubject::ApiKey(_) => "api_key",
            AuditSubject::Webhook(_) => "webhook",
        }
    }

    /// The stored identifier: the experiment's key, or the key's or webhook's id.
    pub fn id(&self) -> String {
        match self {
            AuditSubject::Experiment(key)
            | AuditSubject::Environment(key)
            | AuditSubject::User(key) => key.clone(),
            AuditSubject::ApiKey(id) | AuditSubject::Webhook(id) => id.to_string(),
        }
    }

    /// The experiment's key, for entries about one.
    pub fn experiment(&self) -> Option<&str> {
        match self {
            AuditSubject::Experiment(key) => Some(key),
            _ => None,
        }
    }

    /// Reads the stored pair back; `None` for a kind this version does not know.
    pub fn parse(kind: &str, id: &str) -> Option<AuditSubject> {
        match kind {
            "experiment" => Some(AuditSubject::Experiment(id.to_owned())),
            "api_key" => id.parse().ok().map(AuditSubject::ApiKey),
            "webhook" => id.parse().ok().map(AuditSubject::Webhook),
            "environment" => Some(AuditSubject::Environment(id.to_owned())),
            "user" => Some(AuditSubject::User(id.to_owned())),
            _ => None,
        }
    }
}

/// An entry about to be written, in the same transaction as the change it records.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub subject: AuditSubject,
    pub actor: Actor,
    pub action: AuditAction,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// For automatic actions: the numbers the decision was made on.
    pub evidence: Option<Value>,
    pub at: Millis,
}

impl NewAuditEntry {
    /// An entry about a change to an experiment, with its state before and after.
    pub fn for_experiment(
        actor: &Actor,
        action: AuditAction,
        before: Option<&super::Experiment>,
        after: &super::Experiment,
        at: Millis,
    ) -> Self {
        Self {
            subject: AuditSubject::Experiment(after.key().to_owned()),
            actor: actor.clone(),
            action,
            before: before.and_then(|e| serde_json::to_value(e).ok()),
            after: serde_json::to_value(after).ok(),
            evidence: None,
            at,
        }
    }
}

/// An entry as read back: the audit JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// The experiment's key, on entries about an experiment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// `experiment`, `api_key` or `webhook`.
    pub subject_kind: String,
    /// The experiment's key, or the API key's or webhook's id.
    pub subject: String,
    pub actor: String,
    pub actor_kind: ActorKind,
    /// An action of [`AuditAction`], kept as text so entries written by a newer
    /// version still read.
    pub action: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Value>,
    pub at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_a_name_of_its_own() {
        let all: Vec<AuditAction> = AuditAction::all().collect();
        assert_eq!(all.len(), 24);
        let names: std::collections::HashSet<&str> = all.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), all.len(), "{names:?}");
        for action in all {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
    }

    #[test]
    fn the_servers_own_actor_names_are_reserved() {
        for name in ["guard", "scheduler", "cli", "Guard", " CLI "] {
            assert!(ActorKind::is_reserved_name(name), "{name}");
        }
        assert!(!ActorKind::is_reserved_name("key"));
        assert!(!ActorKind::is_reserved_name("alice"));
        assert!(!ActorKind::is_reserved_name("Guard2"));
    }
}
