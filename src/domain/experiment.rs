//! Experiments: the definition a team writes, its validation, and the lifecycle.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_sdk::{condition::Condition, ExperimentRule, NamespaceRule, RuleStatus, VariantRule};

use super::validation::{check_text, is_valid_key, Problems, ValidationError, KEY_RULE};
use super::Millis;

const MAX_VARIANTS: usize = 20;
const MAX_STAGES: usize = 20;
const MAX_DIMENSIONS: usize = 10;
const WEIGHT_SUM_TOLERANCE: f64 = 1e-6;
/// Ten years: a report due later than that is a typo.
const MAX_REPORT_AFTER_HOURS: f64 = 87_600.0;
const MILLIS_PER_HOUR: f64 = 3_600_000.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    pub key: String,
    pub weight: f64,
    #[serde(default)]
    pub value: Value,
}

/// A mutually exclusive layer: users whose namespace hash falls in `range` may enter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    pub name: String,
    pub range: [f64; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailAction {
    Alert,
    Pause,
    Adjust,
    Rollback,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Guardrail {
    pub metric: String,
    /// The relative drop that is not tolerated, e.g. 0.2; 0 means any significant harm.
    pub max_drop: f64,
    #[serde(default)]
    pub min_users: u64,
    pub action: GuardrailAction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub coverage: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_seconds: Option<u64>,
}

/// What a definition may refer to: the metrics and environments that exist.
pub struct Known<'a> {
    pub metric: &'a dyn Fn(&str) -> bool,
    pub environment: &'a dyn Fn(&str) -> bool,
}

/// What a team writes: the body of `POST /api/v1/experiments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentSpec {
    pub key: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub hypothesis: String,
    pub variants: Vec<Variant>,
    #[serde(default = "full_coverage")]
    pub coverage: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    #[serde(default = "default_hash_attribute")]
    pub hash_attribute: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    #[serde(default = "default_hash_version")]
    pub hash_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Namespace>,
    /// The environments it is served in; empty means every environment.
    #[serde(default)]
    pub environments: Vec<String>,
    #[serde(default)]
    pub primary_metric: Option<String>,
    #[serde(default)]
    pub secondary_metrics: Vec<String>,
    #[serde(default)]
    pub guardrails: Vec<Guardrail>,
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// User attributes kept at first exposure, for breakdowns (`?dimension=country`).
    #[serde(default)]
    pub dimensions: Vec<String>,
    /// Significance level of reports and guardrails.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// N* of the sequential tests: the total sample size where the always-valid
    /// intervals are tightest.
    #[serde(default = "default_sequential_tuning")]
    pub sequential_tuning: f64,
    /// Hours after the start at which one `report_ready` notification carries the
    /// headline results to the webhooks (fractions allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_after_hours: Option<f64>,
    /// Variance reduction by each metric's value before first exposure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuped: Option<Cuped>,
}

/// CUPED: each metric's covariate is the same metric over `lookback_days` before a
/// user's first exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cuped {
    pub lookback_days: u32,
}

impl Cuped {
    /// The longest lookback: a year.
    pub const MAX_LOOKBACK_DAYS: u32 = 366;

    pub fn lookback_ms(self) -> Millis {
        Millis::from(self.lookback_days) * 24 * 3_600_000
    }
}

fn default_alpha() -> f64 {
    0.05
}

fn default_sequential_tuning() -> f64 {
    5000.0
}

fn full_coverage() -> f64 {
    1.0
}

fn default_hash_attribute() -> String {
    "id".to_owned()
}

fn default_hash_version() -> u32 {
    2
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Running,
    Paused,
    RolledBack,
    Shipped,
    Stopped,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 6] = [
        Status::Draft,
        Status::Running,
        Status::Paused,
        Status::RolledBack,
        Status::Shipped,
        Status::Stopped,
    ];

    /// The status the API names `name`.
    pub fn parse(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::RolledBack => "rolled_back",
            Status::Shipped => "shipped",
            Status::Stopped => "stopped",
        }
    }

    fn rule_status(self) -> RuleStatus {
        match self {
            Status::Draft => RuleStatus::Draft,
            Status::Running => RuleStatus::Running,
            Status::Paused => RuleStatus::Paused,
            Status::RolledBack => RuleStatus::RolledBack,
            Status::Shipped => RuleStatus::Shipped,
            Status::Stopped => RuleStatus::Stopped,
        }
    }
}

/// A lifecycle move, `POST /api/v1/experiments/{key}/{action}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleAction {
    Start,
    Pause,
    Resume,
    Rollback,
    Ship { variant: String },
    Stop,
}

impl GuardrailAction {
    pub fn as_str(self) -> &'static str {
        match self {
            GuardrailAction::Alert => "alert",
            GuardrailAction::Pause => "pause",
            GuardrailAction::Adjust => "adjust",
            GuardrailAction::Rollback => "rollback",
        }
    }
}

impl LifecycleAction {
    /// The move named `name`; `ship` needs the variant to ship, the others ignore it.
    pub fn from_name(name: &str, variant: Option<String>) -> Option<Self> {
        Some(match name {
            "start" => LifecycleAction::Start,
            "pause" => LifecycleAction::Pause,
            "resume" => LifecycleAction::Resume,
            "rollback" => LifecycleAction::Rollback,
            "stop" => LifecycleAction::Stop,
            "ship" => LifecycleAction::Ship { variant: variant? },
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            LifecycleAction::Start => "start",
            LifecycleAction::Pause => "pause",
            LifecycleAction::Resume => "resume",
            LifecycleAction::Rollback => "rollback",
            LifecycleAction::Ship { .. } => "ship",
            LifecycleAction::Stop => "stop",
        }
    }
}

/// Why a change to an existing experiment is refused (HTTP 409).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChangeRefused {
    /// The lifecycle has no such move from the current status.
    #[error("cannot {action} an experiment that is {from}")]
    IllegalTransition {
        action: &'static str,
        from: &'static str,
    },
    /// These fields would reshuffle users and cannot change once the experiment started.
    #[error("cannot change {} once the experiment has started", FrozenField::names(.fields))]
    Frozen { fields: Vec<FrozenField> },
    /// The status moves only through lifecycle actions.
    #[error("status changes only through lifecycle actions (start, pause, resume, rollback, ship, stop)")]
    StatusViaPatch,
}

/// A part of the definition that decides which variant each user gets: changing it
/// once the experiment has started would move users between variants, so it is
/// frozen then (see [`Experiment::frozen_fields`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrozenField {
    /// The variants' keys, weights and number; their values may still change.
    Variants,
    HashAttribute,
    Seed,
    HashVersion,
    Namespace,
}

impl FrozenField {
    /// Every frozen field, in the order refusals name them.
    pub const ALL: [FrozenField; 5] = [
        FrozenField::Variants,
        FrozenField::HashAttribute,
        FrozenField::Seed,
        FrozenField::HashVersion,
        FrozenField::Namespace,
    ];

    /// The API's name of the field.
    pub fn as_str(self) -> &'static str {
        match self {
            FrozenField::Variants => "variants",
            FrozenField::HashAttribute => "hash_attribute",
            FrozenField::Seed => "seed",
            FrozenField::HashVersion => "hash_version",
            FrozenField::Namespace => "namespace",
        }
    }

    /// Whether going from `old` to `new` changes this field.
    fn changed(self, old: &ExperimentSpec, new: &ExperimentSpec) -> bool {
        match self {
            FrozenField::Variants => {
                old.variants.len() != new.variants.len()
                    || old
                        .variants
                        .iter()
                        .zip(&new.variants)
                        .any(|(a, b)| a.key != b.key || a.weight != b.weight)
            }
            FrozenField::HashAttribute => old.hash_attribute != new.hash_attribute,
            FrozenField::Seed => old.seed != new.seed,
            FrozenField::HashVersion => old.hash_version != new.hash_version,
            FrozenField::Namespace => old.namespace != new.namespace,
        }
    }

    fn names(fields: &[FrozenField]) -> String {
        let names: Vec<&str> = fields.iter().map(|f| f.as_str()).collect();
        names.join(", ")
    }
}

/// The breakers' memory, so that one breach is acted on once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardState {
    /// The breakers acted on a breach that has not cleared (every guardrail green)
    /// since.
    pub tripped: bool,
    /// Staged rollout must not advance (a `pause` action or a sample ratio mismatch).
    pub ramp_frozen: bool,
    /// A guardrail turned yellow and the warning went out (audit entry, webhooks);
    /// cleared with `tripped` when every guardrail is green again.
    #[serde(default)]
    pub warned: bool,
}

/// The current stage of a staged rollout and when it began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutState {
    /// Index into `stages`.
    pub stage: usize,
    #[serde(with = "super::rfc3339")]
    pub since: Millis,
    /// The earliest time the next stage may begin (the hold's end); the breakers,
    /// the sample and the guardrails must agree too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_until: Option<String>,
}

impl RolloutState {
    fn at(stages: &[Stage], stage: usize, now: Millis) -> Self {
        let hold_ms = stages
            .get(stage)
            .and_then(|s| s.hold_seconds)
            .map_or(0, |s| (s as i64).saturating_mul(1000));
        let last = stage + 1 >= stages.len();
        Self {
            stage,
            since: now,
            hold_until: (!last).then(|| super::format_millis(now.saturating_add(hold_ms))),
        }
    }
}

/// An experiment as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    #[serde(flatten)]
    pub spec: ExperimentSpec,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped_variant: Option<String>,
    /// What the circuit breakers have done about the current breach.
    #[serde(default)]
    pub guard: GuardState,
    /// Where a staged rollout stands (experiments with stages, once started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutState>,
    /// Bumped on every change; a write based on an older revision is refused.
    pub revision: u64,
    #[serde(with = "super::rfc3339")]
    pub created_at: Millis,
    /// When it was started: no exposure counts from before then.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::rfc3339_option"
    )]
    pub started_at: Option<Millis>,
    /// When the `report_ready` notification was queued: it is sent once.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "super::rfc3339_option"
    )]
    pub report_sent_at: Option<Millis>,
    #[serde(with = "super::rfc3339")]
    pub updated_at: Millis,
}

impl Experiment {
    /// The fields of an experiment beside its definition: set by the server, never
    /// by a patch.
    pub const READ_ONLY_FIELDS: &'static [&'static str] = &[
        "status",
        "shipped_variant",
        "guard",
        "rollout",
        "revision",
        "created_at",
        "started_at",
        "report_sent_at",
        "updated_at",
    ];
}

impl ExperimentSpec {
    /// Every metric key it names: primary, secondary, then guardrails (a key may
    /// come more than once).
    pub fn metric_keys(&self) -> impl Iterator<Item = &str> {
        self.primary_metric
            .iter()
            .chain(&self.secondary_metrics)
            .chain(self.guardrails.iter().map(|g| &g.metric))
            .map(String::as_str)
    }

    /// Checks everything a definition must satisfy. `known` answers whether the
    /// metrics and environments it names are defined.
    pub fn validate(&self, known: &Known<'_>) -> Result<(), ValidationError> {
        let mut problems = Problems::default();
        problems.check(is_valid_key(&self.key), "key", KEY_RULE);
        check_text(&mut problems, "name", &self.name, 200);
        check_text(&mut problems, "hypothesis", &self.hypothesis, 5000);
        self.validate_variants(&mut problems);
        check_fraction(&mut problems, "coverage", self.coverage);
        self.validate_condition(&mut problems);
        problems.check(
            !self.hash_attribute.is_empty() && self.hash_attribute.len() <= 64,
            "hash_attribute",
            "must be 1 to 64 characters",
        );
        if let Some(seed) = &self.seed {
            problems.check(
                !seed.is_empty() && seed.chars().count() <= 128,
                "seed",
                "must be 1 to 128 characters",
            );
        }
        problems.check(
            matches!(self.hash_version, 1 | 2),
            "hash_version",
            "must be 1 or 2",
        );
        self.validate_namespace(&mut problems);
        self.validate_metrics(&mut problems, known.metric);
        self.validate_environments(&mut problems, known.environment);
        self.validate_stages(&mut problems);
        self.validate_dimensions(&mut problems);
        problems.check(
            self.alpha > 0.0 && self.alpha <= 0.5,
            "alpha",
            "must be in (0, 0.5]",
        );
        problems.check(
            self.sequential_tuning.is_finite() && self.sequential_tuning >= 1.0,
            "sequential_tuning",
            "must be a number of users, at least 1",
        );
        if let Some(hours) = self.report_after_hours {
            problems.check(
                hours > 0.0 && hours <= MAX_REPORT_AFTER_HOURS,
                "report_after_hours",
                format!("must be a number of hours above 0, at most {MAX_REPORT_AFTER_HOURS}"),
            );
        }
        if let Some(cuped) = self.cuped {
            problems.check(
                (1..=Cuped::MAX_LOOKBACK_DAYS).contains(&cuped.lookback_days),
                "cuped.lookback_days",
                format!("must be 1 to {} days", Cuped::MAX_LOOKBACK_DAYS),
            );
        }
        problems.into_result()
    }

    fn validate_variants(&self, problems: &mut Problems) {
        let count = self.variants.len();
        problems.check(
            (2..=MAX_VARIANTS).contains(&count),
            "variants",
            format!("must have 2 to {MAX_VARIANTS} variants (the first is the control)"),
        );
        for (i, variant) in self.variants.iter().enumerate() {
            problems.check(
                is_valid_key(&variant.key),
                format!("variants[{i}].key"),
                KEY_RULE,
            );
            if self.variants[..i].iter().any(|v| v.key == variant.key) {
                problems.add(
                    format!("variants[{i}].key"),
                    "duplicates another variant's key",
                );
            }
            check_fraction(problems, &format!("variants[{i}].weight"), variant.weight);
        }
        let sum: f64 = self.variants.iter().map(|v| v.weight).sum();
        if count >= 2 && sum.is_finite() && (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
            problems.add(
                "variants",
                format!("weights must sum to 1 (they sum to {sum})"),
            );
        }
    }

    fn validate_condition(&self, problems: &mut Problems) {
        let Some(condition) = &self.condition else {
            return;
        };
        if !condition.is_object() {
            problems.add("condition", "must be a JSON object");
        } else if let Err(err) = Condition::compile(condition) {
            problems.add(join_path("condition", &err.path), err.message);
        }
    }

    fn validate_namespace(&self, problems: &mut Problems) {
        let Some(namespace) = &self.namespace else {
            return;
        };
        problems.check(
            !namespace.name.is_empty() && namespace.name.chars().count() <= 64,
            "namespace.name",
            "must be 1 to 64 characters",
        );
        let [low, high] = namespace.range;
        problems.check(
            (0.0..=1.0).contains(&low) && (0.0..=1.0).contains(&high) && low < high,
            "namespace.range",
            "must be [start, end] with 0 <= start < end <= 1",
        );
    }

    fn validate_environments(&self, problems: &mut Problems, exists: &dyn Fn(&str) -> bool) {
        for (i, environment) in self.environments.iter().enumerate() {
            let field = format!("environments[{i}]");
            if !exists(environment) {
                problems.add(
                    field,
                    "is not a defined environment (POST /api/v1/environments)",
                );
            } else if self.environments[..i].contains(environment) {
                problems.add(field, "is listed twice");
            }
        }
    }

    fn validate_metrics(&self, problems: &mut Problems, metric_exists: &dyn Fn(&str) -> bool) {
        let unknown = "is not a defined metric";
        if let Some(primary) = &self.primary_metric {
            problems.check(metric_exists(primary), "primary_metric", unknown);
        }
        for (i, metric) in self.secondary_metrics.iter().enumerate() {
            problems.check(
                metric_exists(metric),
                format!("secondary_metrics[{i}]"),
                unknown,
            );
        }
        for (i, guardrail) in self.guardrails.iter().enumerate() {
            problems.check(
                metric_exists(&guardrail.metric),
                format!("guardrails[{i}].metric"),
                unknown,
            );
            check_fraction(
                problems,
                &format!("guardrails[{i}].max_drop"),
                guardrail.max_drop,
            );
        }
    }

    fn validate_dimensions(&self, problems: &mut Problems) {
        problems.check(
            self.dimensions.len() <= MAX_DIMENSIONS,
            "dimensions",
            format!("must name at most {MAX_DIMENSIONS} attributes"),
        );
        for (i, name) in self.dimensions.iter().enumerate() {
            let plain = !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            problems.check(
                plain,
                format!("dimensions[{i}]"),
                "must be 1 to 64 ASCII letters, digits or '_'",
            );
        }
    }

    fn validate_stages(&self, problems: &mut Problems) {
        problems.check(
            self.stages.len() <= MAX_STAGES,
            "stages",
            format!("must have at most {MAX_STAGES} stages"),
        );
        for (i, stage) in self.stages.iter().enumerate() {
            let field = format!("stages[{i}].coverage");
            problems.check(
                stage.coverage.is_finite() && stage.coverage > 0.0 && stage.coverage <= 1.0,
                &field,
                "must be in (0, 1]",
            );
            if i > 0 && stage.coverage < self.stages[i - 1].coverage {
                problems.add(&field, "stages must not decrease coverage");
            }
        }
    }
}

fn check_fraction(problems: &mut Problems, field: &str, value: f64) {
    problems.check(
        value.is_finite() && (0.0..=1.0).contains(&value),
        field,
        "must be a number from 0 to 1",
    );
}

fn join_path(prefix: &str, path: &str) -> String {
    if path.is_empty() {
        prefix.to_owned()
    } else {
        format!("{prefix}.{path}")
    }
}

impl Experiment {
    /// A new draft from a validated spec; the seed defaults to the key.
    pub fn new_draft(mut spec: ExperimentSpec, now: Millis) -> Self {
        spec.seed.get_or_insert_with(|| spec.key.clone());
        Self {
            spec,
            status: Status::Draft,
            shipped_variant: None,
            guard: GuardState::default(),
            rollout: None,
            revision: 1,
            created_at: now,
            started_at: None,
            report_sent_at: None,
            updated_at: now,
        }
    }

    /// Whether the `report_ready` notification is due at `now`: the experiment is
    /// live (running or paused), asked for one, has not had it, and started at
    /// least `report_after_hours` ago.
    pub fn report_due(&self, now: Millis) -> bool {
        let (Some(started), Some(hours)) = (self.started_at, self.spec.report_after_hours) else {
            return false;
        };
        let live = matches!(self.status, Status::Running | Status::Paused);
        let due_at = started.saturating_add((hours * MILLIS_PER_HOUR) as Millis);
        live && self.report_sent_at.is_none() && now >= due_at
    }

    /// Records that the `report_ready` notification was queued.
    pub fn mark_report_sent(&mut self, now: Millis) {
        self.report_sent_at = Some(now);
        self.touch(now);
    }

    /// The earliest time an exposure counts from: the start (the creation, for
    /// experiments started before the start was recorded).
    pub fn exposed_from(&self) -> Millis {
        self.started_at.unwrap_or(self.created_at)
    }

    pub fn key(&self) -> &str {
        &self.spec.key
    }

    /// Applies a lifecycle move, or says why it is illegal from the current status.
    pub fn apply(&mut self, action: &LifecycleAction, now: Millis) -> Result<(), ChangeRefused> {
        use Status::*;
        let next = match (action, self.status) {
            (LifecycleAction::Start, Draft) => Running,
            (LifecycleAction::Pause, Running) => Paused,
            (LifecycleAction::Resume, Paused) => Running,
            // A running experiment whose ramp is frozen resumes its ramp.
            (LifecycleAction::Resume, Running) if self.guard.ramp_frozen => Running,
            (LifecycleAction::Rollback, Running | Paused) => RolledBack,
            (LifecycleAction::Ship { .. }, Running | Paused) => Shipped,
            (LifecycleAction::Stop, Running | Paused) => Stopped,
            _ => {
                return Err(ChangeRefused::IllegalTransition {
                    action: action.name(),
                    from: self.status.as_str(),
                })
            }
        };
        if let LifecycleAction::Ship { variant } = action {
            self.shipped_variant = Some(variant.clone());
        }
        match action {
            LifecycleAction::Start => self.started_at = Some(now),
            LifecycleAction::Resume => self.guard.ramp_frozen = false,
            _ => {}
        }
        if let (LifecycleAction::Start, Some(first)) = (action, self.spec.stages.first()) {
            self.spec.coverage = first.coverage;
            self.rollout = Some(RolloutState::at(&self.spec.stages, 0, now));
        }
        self.status = next;
        self.touch(now);
        Ok(())
    }

    /// Whether `variant` may be shipped: it must be one of the experiment's variants.
    pub fn has_variant(&self, variant: &str) -> bool {
        self.spec.variants.iter().any(|v| v.key == variant)
    }

    /// The fields that may no longer change: none in a draft, every
    /// [`FrozenField`] once the experiment has started (whatever its status since).
    pub fn frozen_fields(&self) -> &'static [FrozenField] {
        if self.status == Status::Draft {
            &[]
        } else {
            &FrozenField::ALL
        }
    }

    /// Replaces the definition, refusing changes that would reshuffle running users.
    pub fn redefine(&mut self, spec: ExperimentSpec, now: Millis) -> Result<(), ChangeRefused> {
        let frozen: Vec<FrozenField> = self
            .frozen_fields()
            .iter()
            .copied()
            .filter(|field| field.changed(&self.spec, &spec))
            .collect();
        if !frozen.is_empty() {
            return Err(ChangeRefused::Frozen { fields: frozen });
        }
        self.spec = spec;
        self.touch(now);
        Ok(())
    }

    /// Steps coverage back to the stage below the current coverage (0 below the
    /// first stage); returns the new coverage.
    pub fn step_back_coverage(&mut self, now: Millis) -> f64 {
        let current = self.spec.coverage;
        let previous = self
            .spec
            .stages
            .iter()
            .map(|s| s.coverage)
            .filter(|c| *c < current)
            .fold(0.0, f64::max);
        self.spec.coverage = previous;
        if let Some(rollout) = &self.rollout {
            let stage = rollout.stage.saturating_sub(1);
            self.rollout = Some(RolloutState::at(&self.spec.stages, stage, now));
        }
        self.touch(now);
        previous
    }

    /// Moves a staged rollout to its next stage; false when at the last one.
    pub fn advance_stage(&mut self, now: Millis) -> bool {
        let next = self.rollout.as_ref().map_or(0, |r| r.stage + 1);
        let Some(stage) = self.spec.stages.get(next) else {
            return false;
        };
        self.spec.coverage = stage.coverage;
        self.rollout = Some(RolloutState::at(&self.spec.stages, next, now));
        self.touch(now);
        true
    }

    /// Records a breakers' decision (always a new revision).
    pub fn set_guard(&mut self, guard: GuardState, now: Millis) {
        self.guard = guard;
        self.touch(now);
    }

    fn touch(&mut self, now: Millis) {
        self.revision += 1;
        self.updated_at = now;
    }

    /// The form evaluation needs, served to SDKs.
    pub fn to_rule(&self) -> ExperimentRule {
        let spec = &self.spec;
        ExperimentRule {
            key: spec.key.clone(),
            status: self.status.rule_status(),
            variants: spec
                .variants
                .iter()
                .map(|v| VariantRule {
                    key: v.key.clone(),
                    weight: v.weight,
                    value: v.value.clone(),
                })
                .collect(),
            coverage: spec.coverage,
            condition: spec.condition.clone(),
            hash_attribute: spec.hash_attribute.clone(),
            seed: spec.seed.clone().unwrap_or_else(|| spec.key.clone()),
            hash_version: spec.hash_version,
            namespace: spec.namespace.as_ref().map(|n| NamespaceRule {
                name: n.name.clone(),
                range: n.range,
            }),
            shipped_variant: self.shipped_variant.clone(),
            dimensions: spec.dimensions.clone(),
        }
    }
}

/// Applies an RFC 7386 JSON merge patch: objects merge, `null` removes, the rest replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validation::from_json_exact;
    use serde_json::json;

    fn spec(json: Value) -> ExperimentSpec {
        serde_json::from_value(json).unwrap()
    }

    fn pricing() -> ExperimentSpec {
        spec(json!({
            "key": "pricing-q4",
            "variants": [{"key": "control", "weight": 0.5, "value": {"price": 199}},
                         {"key": "premium", "weight": 0.5, "value": {"price": 249}}],
            "coverage": 0.05,
            "condition": {"country": {"$in": ["CN", "US"]}},
            "primary_metric": "purchase"
        }))
    }

    fn problems_of(spec: &ExperimentSpec) -> Vec<String> {
        let known = Known {
            metric: &|m| m == "purchase",
            environment: &|e| e == "production" || e == "staging",
        };
        match spec.validate(&known) {
            Ok(()) => vec![],
            Err(e) => e.problems.into_iter().map(|p| p.field).collect(),
        }
    }

    #[test]
    fn environments_must_exist_and_appear_once() {
        let mut s = pricing();
        s.environments = vec!["staging".into(), "qa".into(), "staging".into()];
        assert_eq!(problems_of(&s), ["environments[1]", "environments[2]"]);
    }

    #[test]
    fn a_sound_definition_passes_with_defaults() {
        let s = pricing();
        assert_eq!(problems_of(&s), Vec::<String>::new());
        assert_eq!(s.hash_attribute, "id");
        assert_eq!(s.hash_version, 2);
        let e = Experiment::new_draft(s, 0);
        assert_eq!(e.spec.seed.as_deref(), Some("pricing-q4"));
        assert_eq!(e.to_rule().seed, "pricing-q4");
    }

    #[test]
    fn every_broken_field_is_reported() {
        let s = spec(json!({
            "key": "bad key",
            "variants": [{"key": "a", "weight": 0.7}, {"key": "a", "weight": 0.7}],
            "coverage": 1.5,
            "condition": {"country": {"$regex": "("}},
            "hash_version": 3,
            "namespace": {"name": "ns", "range": [0.6, 0.2]},
            "primary_metric": "nope",
            "guardrails": [{"metric": "purchase", "max_drop": 2, "action": "rollback"}],
            "stages": [{"coverage": 0.5}, {"coverage": 0.1}]
        }));
        assert_eq!(
            problems_of(&s),
            [
                "key",
                "variants[1].key",
                "variants",
                "coverage",
                "condition.country.$regex",
                "hash_version",
                "namespace.range",
                "primary_metric",
                "guardrails[0].max_drop",
                "stages[1].coverage"
            ]
        );
    }

    #[test]
    fn unknown_condition_operator_is_rejected() {
        let mut s = pricing();
        s.condition = Some(json!({"age": {"$between": [1, 2]}}));
        assert_eq!(problems_of(&s).len(), 1);
        assert!(problems_of(&s)[0].starts_with("condition"));
    }

    #[test]
    fn lifecycle_moves_follow_the_state_machine() {
        let mut e = Experiment::new_draft(pricing(), 0);
        assert!(e.apply(&LifecycleAction::Pause, 1).is_err());
        e.apply(&LifecycleAction::Start, 1).unwrap();
        e.apply(&LifecycleAction::Pause, 2).unwrap();
        e.apply(&LifecycleAction::Resume, 3).unwrap();
        e.apply(
            &LifecycleAction::Ship {
                variant: "premium".into(),
            },
            4,
        )
        .unwrap();
        assert_eq!(e.status, Status::Shipped);
        assert_eq!(e.revision, 5);
        assert_eq!(
            e.apply(&LifecycleAction::Start, 5),
            Err(ChangeRefused::IllegalTransition {
                action: "start",
                from: "shipped"
            })
        );
    }

    #[test]
    fn running_experiments_keep_their_split_but_may_ramp() {
        let mut e = Experiment::new_draft(pricing(), 0);
        e.apply(&LifecycleAction::Start, 1).unwrap();
        let mut ramped = e.spec.clone();
        ramped.coverage = 0.5;
        e.redefine(ramped, 2).unwrap();
        assert_eq!(e.spec.coverage, 0.5);
        let mut reweighted = e.spec.clone();
        reweighted.variants[0].weight = 0.4;
        reweighted.variants[1].weight = 0.6;
        reweighted.seed = Some("other".into());
        assert_eq!(
            e.redefine(reweighted, 3),
            Err(ChangeRefused::Frozen {
                fields: vec![FrozenField::Variants, FrozenField::Seed]
            })
        );
    }

    #[test]
    fn report_after_hours_must_be_positive_hours() {
        for (hours, problems) in [(48.0, 0), (0.5, 0), (0.0, 1), (-1.0, 1), (f64::NAN, 1)] {
            let mut s = pricing();
            s.report_after_hours = Some(hours);
            assert_eq!(problems_of(&s).len(), problems, "{hours}");
        }
        let exact = from_json_exact::<ExperimentSpec>(json!({
            "key": "k", "variants": [], "report_after_hours": 48
        }));
        assert_eq!(exact.unwrap().report_after_hours, Some(48.0));
    }

    #[test]
    fn the_report_is_due_once_that_long_after_the_start_while_live() {
        const HOUR: Millis = 3_600_000;
        let mut s = pricing();
        s.report_after_hours = Some(1.5);
        let mut e = Experiment::new_draft(s, 0);
        assert!(!e.report_due(10 * HOUR), "a draft has not started");
        e.apply(&LifecycleAction::Start, HOUR).unwrap();
        assert!(!e.report_due(HOUR + HOUR));
        assert!(e.report_due(HOUR + 3 * HOUR / 2));
        e.mark_report_sent(3 * HOUR);
        assert!(!e.report_due(4 * HOUR), "sent once");

        let mut stopped = Experiment::new_draft(e.spec.clone(), 0);
        stopped.apply(&LifecycleAction::Start, 0).unwrap();
        stopped.apply(&LifecycleAction::Stop, HOUR).unwrap();
        assert!(
            !stopped.report_due(2 * HOUR),
            "the team has decided already"
        );
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
    }
}
