//! The wire form of a ruleset, as served at `GET /sdk/v1/ruleset`.
//!
//! These types are plain data: they carry what evaluation needs and nothing
//! is checked here. [`crate::CompiledRuleset::compile`] validates them and
//! reports problems as [`crate::EvalWarning`]s.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A versioned snapshot of every experiment an SDK evaluates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ruleset {
    /// Bumped on every change; SDKs compare it to know they are current.
    pub version: u64,
    /// The experiments, in the order the server lists them.
    pub experiments: Vec<ExperimentRule>,
}

/// One experiment (or gradual rollout) as evaluation sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentRule {
    /// Unique key, e.g. `pricing-q4`.
    pub key: String,
    /// Lifecycle status; decides whether the split runs at all.
    pub status: RuleStatus,
    /// The variants; the first one is control.
    pub variants: Vec<VariantRule>,
    /// Share of eligible users included, 0..=1 (the rollout percentage).
    pub coverage: f64,
    /// Targeting condition in GrowthBook's MongoDB-style language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    /// The attribute whose value identifies the unit (default `id`).
    pub hash_attribute: String,
    /// Hash seed; the experiment key when unset (empty counts as unset).
    pub seed: String,
    /// Hashing scheme: 1 (GrowthBook's original) or 2.
    pub hash_version: u32,
    /// Mutual-exclusion layer and the slice of it this experiment owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<NamespaceRule>,
    /// Key of the winning variant, served to everyone once `Shipped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped_variant: Option<String>,
    /// User attributes the server keeps with an exposure, for breakdowns; a
    /// client sends these (and only these) with each exposure it logs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<String>,
}

/// One variant of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantRule {
    /// Variant key, e.g. `control`, `premium`.
    pub key: String,
    /// Share of included users, the weights of a rule summing to 1.
    pub weight: f64,
    /// Payload handed to the app (e.g. `{"price": 249}`); `null` if absent.
    #[serde(default)]
    pub value: Value,
}

/// A namespace (layer) and the half-open slice `[range[0], range[1])` of it
/// that an experiment owns; experiments with disjoint slices of the same
/// namespace never share a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamespaceRule {
    /// Namespace name, hashed with the unit id.
    pub name: String,
    /// `[lo, hi)` within 0..=1.
    pub range: [f64; 2],
}

/// Lifecycle status of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleStatus {
    /// Being set up; not served (everyone gets control).
    Draft,
    /// Splitting users between variants.
    Running,
    /// Temporarily frozen; everyone gets control.
    Paused,
    /// Rolled back (by hand or by a circuit breaker); everyone gets control.
    RolledBack,
    /// Finished with a winner; everyone gets the shipped variant.
    Shipped,
    /// Finished without shipping; everyone gets control.
    Stopped,
}

impl RuleStatus {
    /// The wire name, e.g. `rolled_back`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleStatus::Draft => "draft",
            RuleStatus::Running => "running",
            RuleStatus::Paused => "paused",
            RuleStatus::RolledBack => "rolled_back",
            RuleStatus::Shipped => "shipped",
            RuleStatus::Stopped => "stopped",
        }
    }
}
