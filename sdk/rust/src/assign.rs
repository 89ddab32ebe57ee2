//! Assigning a user to a variant: the evaluation order and its reasons.
//!
//! For one experiment, status decides first: `draft`, `paused`,
//! `rolled_back` and `stopped` serve control; `shipped` serves the shipped
//! variant; neither logs an exposure. A `running` experiment then checks, in
//! order: the rule is valid (`invalid_rule`), the targeting condition
//! (`condition`), the unit id is present (`no_hash_attribute`), the
//! namespace (`namespace`), and finally hashes the id into the bucket ranges
//! (`split`, or `coverage` when the hash falls outside every range). The
//! unit id is needed for the namespace check, so a missing id is reported
//! before a namespace miss.
//!
//! Nothing here allocates for string ids and string/number/bool attributes.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bucket;
use crate::compiled::CompiledRuleset;
use crate::hash::{self, Fnv1a32};
use crate::js::{self, StackStr};
use crate::ruleset::RuleStatus;
use crate::Attributes;

/// The payload served when a rule has no variants at all.
static NULL: Value = Value::Null;

/// Why a user got the variant they got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Bucketed by the hash into a variant of a running experiment.
    Split,
    /// The targeting condition did not match.
    Condition,
    /// The user is outside the experiment's slice of its namespace.
    Namespace,
    /// The user's hash fell outside the covered part of the ranges.
    Coverage,
    /// The hash attribute is missing, null, empty, false, 0 or not a scalar.
    NoHashAttribute,
    /// The experiment is a draft.
    Draft,
    /// The experiment is paused.
    Paused,
    /// The experiment was rolled back.
    RolledBack,
    /// The experiment shipped a variant to everyone.
    Shipped,
    /// The experiment was stopped.
    Stopped,
    /// The rule could not be evaluated safely (see the compile warnings).
    InvalidRule,
}

impl Reason {
    /// The wire name, e.g. `no_hash_attribute`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Split => "split",
            Reason::Condition => "condition",
            Reason::Namespace => "namespace",
            Reason::Coverage => "coverage",
            Reason::NoHashAttribute => "no_hash_attribute",
            Reason::Draft => "draft",
            Reason::Paused => "paused",
            Reason::RolledBack => "rolled_back",
            Reason::Shipped => "shipped",
            Reason::Stopped => "stopped",
            Reason::InvalidRule => "invalid_rule",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of evaluating one experiment for one user, borrowing from
/// the compiled ruleset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment<'r> {
    /// Experiment key.
    pub experiment: &'r str,
    /// Variant key; control's key when not in the experiment.
    pub variant: &'r str,
    /// The variant's payload.
    pub value: &'r Value,
    /// True only when a running experiment bucketed the user: the caller
    /// should log an exposure.
    pub in_experiment: bool,
    /// Why.
    pub reason: Reason,
}

/// An [`Assignment`] that owns its data, for keeping past the ruleset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnedAssignment {
    /// Experiment key.
    pub experiment: String,
    /// Variant key.
    pub variant: String,
    /// The variant's payload.
    pub value: Value,
    /// Whether an exposure should be logged.
    pub in_experiment: bool,
    /// Why.
    pub reason: Reason,
}

impl Assignment<'_> {
    /// Copies the borrowed parts.
    pub fn to_owned_assignment(&self) -> OwnedAssignment {
        OwnedAssignment {
            experiment: self.experiment.to_owned(),
            variant: self.variant.to_owned(),
            value: self.value.clone(),
            in_experiment: self.in_experiment,
            reason: self.reason,
        }
    }
}

impl From<Assignment<'_>> for OwnedAssignment {
    fn from(a: Assignment<'_>) -> Self {
        a.to_owned_assignment()
    }
}

/// A unit id as text, borrowed from the attribute or formatted on the stack.
pub(crate) enum UnitId<'a> {
    Borrowed(&'a str),
    Number(StackStr),
}

impl UnitId<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            UnitId::Borrowed(s) => s,
            UnitId::Number(buf) => buf.as_str(),
        }
    }
}

/// GrowthBook reads the hash attribute as `attributes[attr] || ""` and skips
/// the experiment when that is falsy; a number or `true` is then used as its
/// JavaScript string. Arrays and objects are rejected rather than turned
/// into `"1,2"` or `"[object Object]"`.
pub(crate) fn unit_id_of(value: Option<&Value>) -> Option<UnitId<'_>> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(UnitId::Borrowed(s)),
        Value::Number(n) => {
            let f = js::number_f64(n);
            if f == 0.0 || f.is_nan() {
                return None;
            }
            let mut buf = StackStr::new();
            js::write_js_number(n, &mut buf).ok()?;
            Some(UnitId::Number(buf))
        }
        Value::Bool(true) => Some(UnitId::Borrowed("true")),
        _ => None,
    }
}

/// The hash attribute's value as a unit id string, as GrowthBook does:
/// strings as they are, numbers formatted like JavaScript (`1.0` → `"1"`,
/// `1e21` → `"1e+21"`), `true` → `"true"`; `None` when missing, null, empty,
/// `false`, `0` (falsy in JavaScript) or not a scalar.
pub fn unit_id(value: &Value) -> Option<Cow<'_, str>> {
    match unit_id_of(Some(value))? {
        UnitId::Borrowed(s) => Some(Cow::Borrowed(s)),
        UnitId::Number(buf) => Some(Cow::Owned(buf.as_str().to_owned())),
    }
}

/// Condition results already computed for the current user, so experiments
/// sharing a condition evaluate it once (`assign_all`). Fixed-size: the
/// first 256 distinct conditions are memoised, later ones just evaluated.
#[derive(Default)]
struct Memo {
    known: [u64; 4],
    value: [u64; 4],
}

impl Memo {
    #[inline]
    fn get_or(&mut self, id: usize, eval: impl FnOnce() -> bool) -> bool {
        let (word, bit) = (id / 64, 1u64 << (id % 64));
        match (self.known.get(word), self.value.get(word)) {
            (Some(k), Some(v)) if k & bit != 0 => v & bit != 0,
            (Some(_), Some(_)) => {
                let r = eval();
                self.known[word] |= bit;
                if r {
                    self.value[word] |= bit;
                }
                r
            }
            _ => eval(),
        }
    }
}

impl CompiledRuleset {
    /// Evaluates one experiment for a user; `None` when the key is unknown.
    pub fn assign(&self, experiment: &str, user: &Attributes) -> Option<Assignment<'_>> {
        let i = *self.index.get(experiment)?;
        Some(self.evaluate(i, user, &mut Memo::default()))
    }

    /// Evaluates every experiment for a user, in ruleset order. Experiments
    /// sharing a condition evaluate it once.
    pub fn assign_all<'a>(&'a self, user: &'a Attributes) -> AssignAll<'a> {
        AssignAll {
            ruleset: self,
            user,
            next: 0,
            memo: Memo::default(),
        }
    }

    fn evaluate<'a>(&'a self, i: usize, user: &Attributes, memo: &mut Memo) -> Assignment<'a> {
        let (Some(rule), Some(exp)) = (self.ruleset.experiments.get(i), self.experiments.get(i))
        else {
            // Indices come from our own index; unreachable, but never panic.
            return Assignment {
                experiment: "",
                variant: "",
                value: &NULL,
                in_experiment: false,
                reason: Reason::InvalidRule,
            };
        };
        let pick = |v: usize, in_experiment: bool, reason: Reason| {
            let variant = rule.variants.get(v);
            Assignment {
                experiment: &rule.key,
                variant: variant.map_or("", |v| v.key.as_str()),
                value: variant.map_or(&NULL, |v| &v.value),
                in_experiment,
                reason,
            }
        };
        let control = |reason| pick(0, false, reason);

        match exp.status {
            RuleStatus::Draft => return control(Reason::Draft),
            RuleStatus::Paused => return control(Reason::Paused),
            RuleStatus::RolledBack => return control(Reason::RolledBack),
            RuleStatus::Stopped => return control(Reason::Stopped),
            RuleStatus::Shipped if exp.invalid => return control(Reason::InvalidRule),
            RuleStatus::Shipped => return pick(exp.shipped, false, Reason::Shipped),
            RuleStatus::Running if exp.invalid => return control(Reason::InvalidRule),
            RuleStatus::Running => {}
        }

        if let Some(c) = exp.condition {
            let passes = memo.get_or(c, || {
                self.conditions.get(c).is_some_and(|c| c.matches(user))
            });
            if !passes {
                return control(Reason::Condition);
            }
        }

        let Some(id) = unit_id_of(user.get(&*exp.hash_attribute)) else {
            return control(Reason::NoHashAttribute);
        };
        let id = id.as_str();

        if let Some((name, range)) = &exp.namespace {
            if !bucket::in_namespace(id, name, *range) {
                return control(Reason::Namespace);
            }
        }

        let n = if exp.hash_version == 2 {
            hash::finish_v2(exp.seed_state.str(id))
        } else {
            hash::finish_v1(Fnv1a32::new().str(id).str(&exp.seed))
        };
        match bucket::choose_variation(n, &exp.ranges) {
            Some(v) => pick(v, true, Reason::Split),
            None => control(Reason::Coverage),
        }
    }
}

/// Iterator over every experiment's assignment for one user
/// (see [`CompiledRuleset::assign_all`]).
pub struct AssignAll<'a> {
    ruleset: &'a CompiledRuleset,
    user: &'a Attributes,
    next: usize,
    memo: Memo,
}

impl<'a> Iterator for AssignAll<'a> {
    type Item = Assignment<'a>;

    fn next(&mut self) -> Option<Assignment<'a>> {
        let i = *self.ruleset.order.get(self.next)?;
        self.next += 1;
        Some(self.ruleset.evaluate(i, self.user, &mut self.memo))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.ruleset.order.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for AssignAll<'_> {}
