//! Turning a wire [`Ruleset`] into a [`CompiledRuleset`], once per version.
//!
//! Compilation never fails. Each rule is validated; a rule that cannot be
//! evaluated safely (no variants, a condition that does not compile, an
//! unknown hash version…) is marked invalid and serves control to everyone,
//! and every problem is reported as an [`EvalWarning`] naming the
//! experiment. Everything evaluation can prepare ahead is prepared here:
//! conditions compiled (identical ones shared), bucket ranges computed, the
//! FNV state of each seed precomputed.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::bucket::{self, BucketRange};
use crate::condition::Condition;
use crate::hash;
use crate::hash::Fnv1a32;
use crate::js;
use crate::ruleset::{ExperimentRule, RuleStatus, Ruleset};

/// A problem found while compiling a ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalWarning {
    /// Key of the experiment the problem is in.
    pub experiment: String,
    /// What is wrong and what evaluation does about it.
    pub message: String,
}

impl fmt::Display for EvalWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "experiment {:?}: {}", self.experiment, self.message)
    }
}

/// Experiment key → index, an open-addressing table with linear probing.
///
/// Keys come from the server (no hash flooding concern), so a cheap
/// word-at-a-time hash does; `assign` looks a key up on every call, and this
/// costs a fraction of a `HashMap<String, _>` with SipHash.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyIndex {
    /// (hash, experiment index + 1); 0 marks an empty slot.
    slots: Box<[(u32, u32)]>,
    mask: usize,
}

/// Length, first 8 and last 8 bytes, one multiply: enough to tell the keys
/// of one ruleset apart (collisions only cost a probe).
fn key_hash(key: &str) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let b = key.as_bytes();
    let last = b
        .len()
        .checked_sub(8)
        .and_then(|i| b.get(i..))
        .and_then(|t| t.first_chunk::<8>())
        .map_or(0, |w| u64::from_le_bytes(*w));
    let h = (js::prefix8(key) ^ last.rotate_left(32) ^ b.len() as u64).wrapping_mul(K);
    h ^ (h >> 29)
}

impl KeyIndex {
    /// Indexes `keys` (position = experiment index); the first occurrence
    /// of a key wins. Returns the indices of later duplicates.
    pub(crate) fn build<'a>(
        keys: impl ExactSizeIterator<Item = &'a str>,
    ) -> (KeyIndex, Vec<usize>) {
        let capacity = (keys.len() * 2).next_power_of_two().max(8);
        let mut index = KeyIndex {
            slots: vec![(0, 0); capacity].into_boxed_slice(),
            mask: capacity - 1,
        };
        let mut duplicates = Vec::new();
        let all: Vec<&str> = keys.collect();
        for (i, key) in all.iter().enumerate() {
            let h = key_hash(key);
            #[allow(clippy::cast_possible_truncation)] // masked
            let mut pos = (h as usize) & index.mask;
            #[allow(clippy::cast_possible_truncation)] // low bits are the tag
            let tag = h as u32;
            loop {
                match index.slots.get(pos).copied() {
                    Some((_, 0)) => {
                        if let (Some(slot), Ok(n)) =
                            (index.slots.get_mut(pos), u32::try_from(i + 1))
                        {
                            *slot = (tag, n);
                        }
                        break;
                    }
                    Some((t, n)) if t == tag && all.get(n as usize - 1) == Some(key) => {
                        duplicates.push(i);
                        break;
                    }
                    Some(_) => pos = (pos + 1) & index.mask,
                    None => break,
                }
            }
        }
        (index, duplicates)
    }

    /// The index of `key`, comparing candidates with `key_of`.
    #[inline]
    pub(crate) fn get<'k>(
        &self,
        key: &str,
        key_of: impl Fn(usize) -> Option<&'k str>,
    ) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let h = key_hash(key);
        #[allow(clippy::cast_possible_truncation)]
        let mut pos = (h as usize) & self.mask;
        #[allow(clippy::cast_possible_truncation)]
        let tag = h as u32;
        loop {
            let (t, n) = *self.slots.get(pos)?;
            if n == 0 {
                return None;
            }
            let i = n as usize - 1;
            if t == tag && key_of(i).is_some_and(|k| js::eq_short(k, key)) {
                return Some(i);
            }
            pos = (pos + 1) & self.mask;
        }
    }
}

/// Everything evaluation needs about one rule that does not depend on the
/// other rules of its ruleset, prepared ahead.
#[derive(Debug, Clone)]
pub(crate) struct CompiledExperiment {
    pub(crate) status: RuleStatus,
    /// Set when the rule cannot be evaluated safely: control for everyone.
    pub(crate) invalid: bool,
    pub(crate) hash_attribute: Box<str>,
    pub(crate) seed: Box<str>,
    /// FNV state after the seed, for hash version 2 (`fnv(seed + id)`).
    pub(crate) seed_state: Fnv1a32,
    pub(crate) hash_version: u32,
    pub(crate) namespace: Option<(Box<str>, BucketRange)>,
    /// Bucket ranges in integer hash buckets (see `bucket::integer_range`).
    pub(crate) ranges: Box<[[u32; 2]]>,
    /// Variant served when shipped (control when unknown).
    pub(crate) shipped: usize,
}

/// Where a rule sits in its ruleset: its shared condition and its slots.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    /// Index into `CompiledRuleset::conditions`.
    pub(crate) condition: Option<usize>,
    /// Slot of the hash attribute in `CompiledRuleset::fields`, if it has one.
    pub(crate) hash_slot: Option<u16>,
    /// The slotted fields this experiment reads (condition fields, hash
    /// attribute), sorted by name.
    pub(crate) needed: Box<[Field]>,
}

/// A top-level attribute with a slot, prepared for the merge pass over the
/// user's map (`assign::resolve`).
#[derive(Debug, Clone)]
pub(crate) struct Field {
    /// Index into the per-user slot array.
    pub(crate) slot: u16,
    /// `js::prefix8` of the name: settles most comparisons in one go.
    pub(crate) prefix: u64,
    /// Shared: each experiment's `needed` holds copies.
    pub(crate) name: Arc<str>,
}

/// How many top-level attributes get a pre-resolved slot. Attributes past
/// this (in sorted order) are looked up in the map directly.
pub(crate) const MAX_SLOTS: usize = 64;

/// A rule's condition compiled, before it is shared and given slots.
#[derive(Debug)]
struct RuleCondition {
    compiled: Condition,
    /// serde_json's maps are sorted, so equal conditions serialize identically.
    canonical: String,
    /// `name\0value` of each top-level clause: identical clauses share an id,
    /// memoised per user.
    clauses: Vec<String>,
}

/// One rule compiled on its own: everything about it that does not depend on
/// the rest of its ruleset. A server that keeps one per experiment revision
/// assembles each new ruleset from them ([`CompiledRuleset::assemble`])
/// without compiling the unchanged rules again.
#[derive(Debug)]
pub struct CompiledRule {
    pub(crate) rule: ExperimentRule,
    pub(crate) experiment: CompiledExperiment,
    condition: Option<RuleCondition>,
    /// What is wrong with the rule, found compiling it.
    problems: Vec<String>,
    /// Each variant's assignment as JSON up to its `in_experiment` value, made
    /// the first time assignments are written ([`crate::wire`]).
    pub(crate) assignment_prefixes: OnceLock<Box<[Box<[u8]>]>>,
}

/// Collects the problems of one rule.
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    invalid: bool,
}

impl Findings {
    fn warn(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    fn invalid(&mut self, message: impl fmt::Display) {
        self.invalid = true;
        self.warn(format!("{message}; serving control to everyone"));
    }
}

impl CompiledRule {
    /// Compiles one rule. Never fails: a broken rule compiles to a safe
    /// default (everyone gets control, `in_experiment` false, reason
    /// `invalid_rule`), and its problems become warnings of the ruleset it is
    /// assembled into.
    pub fn compile(rule: ExperimentRule) -> CompiledRule {
        let mut f = Findings::default();
        let n = rule.variants.len();
        if n < 2 {
            f.invalid(format_args!("needs at least two variants, has {n}"));
        }
        for (j, v) in rule.variants.iter().enumerate() {
            if rule.variants[..j].iter().any(|w| w.key == v.key) {
                f.invalid(format_args!("variant key {:?} appears twice", v.key));
            }
        }
        if rule.hash_version != 1 && rule.hash_version != 2 {
            f.invalid(format_args!(
                "unknown hash_version {} (expected 1 or 2)",
                rule.hash_version
            ));
        }
        let condition = compile_condition(&rule, &mut f);
        let ranges = ranges(&rule, &mut f);
        let hash_attribute: Box<str> = if rule.hash_attribute.is_empty() {
            f.warn("empty hash_attribute; using \"id\"");
            "id".into()
        } else {
            rule.hash_attribute.as_str().into()
        };
        // GrowthBook: `experiment.seed || key`.
        let seed: Box<str> = if rule.seed.is_empty() {
            rule.key.as_str().into()
        } else {
            rule.seed.as_str().into()
        };
        let namespace = namespace(&rule, &mut f);
        let shipped = shipped(&rule, &mut f);
        let experiment = CompiledExperiment {
            status: rule.status,
            invalid: f.invalid,
            seed_state: Fnv1a32::new().str(&seed),
            hash_attribute,
            seed,
            hash_version: rule.hash_version,
            namespace,
            ranges,
            shipped,
        };
        CompiledRule {
            rule,
            experiment,
            condition,
            problems: f.problems,
            assignment_prefixes: OnceLock::new(),
        }
    }

    /// The wire form this was compiled from.
    pub fn rule(&self) -> &ExperimentRule {
        &self.rule
    }
}

fn compile_condition(rule: &ExperimentRule, f: &mut Findings) -> Option<RuleCondition> {
    let c = match &rule.condition {
        None | Some(Value::Null) => return None,
        Some(c) => c,
    };
    match Condition::compile(c) {
        Ok(compiled) => {
            let clauses = match c {
                Value::Object(map) => map.iter().map(|(k, v)| format!("{k}\u{0}{v}")).collect(),
                _ => Vec::new(),
            };
            Some(RuleCondition {
                compiled,
                canonical: c.to_string(),
                clauses,
            })
        }
        Err(e) => {
            f.invalid(format_args!("condition {e}"));
            None
        }
    }
}

/// The variants' bucket ranges in integer hash buckets.
fn ranges(rule: &ExperimentRule, f: &mut Findings) -> Box<[[u32; 2]]> {
    let n = rule.variants.len();
    let coverage = bucket::clamp_coverage(rule.coverage);
    if coverage != rule.coverage {
        f.warn(format!(
            "coverage {} is outside 0..=1; using {coverage}",
            rule.coverage
        ));
    }
    let weights: Vec<f64> = rule.variants.iter().map(|v| v.weight).collect();
    if let Err(problem) = bucket::check_weights(n, &weights) {
        if n >= 2 {
            f.warn(format!("{}; using equal weights", problem.as_str()));
        }
    }
    let scale = if rule.hash_version == 2 {
        hash::V2_SCALE
    } else {
        hash::V1_SCALE
    };
    bucket::get_bucket_ranges(n, coverage, Some(&weights))
        .iter()
        .map(|r| bucket::integer_range(*r, scale))
        .collect()
}

fn namespace(rule: &ExperimentRule, f: &mut Findings) -> Option<(Box<str>, BucketRange)> {
    let ns = rule.namespace.as_ref()?;
    let [lo, hi] = ns.range;
    if !lo.is_finite() || !hi.is_finite() {
        f.invalid("namespace range must be finite numbers");
    } else if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) || lo >= hi {
        f.warn(format!(
            "namespace range [{lo}, {hi}) is empty or outside 0..=1"
        ));
    }
    Some((ns.name.as_str().into(), ns.range))
}

/// The index of the variant served when shipped.
fn shipped(rule: &ExperimentRule, f: &mut Findings) -> usize {
    match (&rule.shipped_variant, rule.status) {
        (Some(k), _) => rule
            .variants
            .iter()
            .position(|v| &v.key == k)
            .unwrap_or_else(|| {
                f.warn(format!(
                    "shipped_variant {k:?} is not one of the variants; shipping control"
                ));
                0
            }),
        (None, RuleStatus::Shipped) => {
            f.warn("status is shipped but shipped_variant is missing; shipping control");
            0
        }
        (None, _) => 0,
    }
}

/// A ruleset ready for evaluation. Build it once per ruleset version and
/// share it (`Send + Sync`); evaluation borrows from it.
#[derive(Debug, Clone)]
pub struct CompiledRuleset {
    version: u64,
    pub(crate) rules: Box<[Arc<CompiledRule>]>,
    /// By rule, like `rules`.
    pub(crate) placements: Box<[Placement]>,
    /// Distinct conditions; experiments with identical targeting share one,
    /// so `assign_all` evaluates it once per user.
    pub(crate) conditions: Vec<Condition>,
    /// Indices of the experiments that are evaluated, in ruleset order
    /// (a duplicated key is evaluated only at its first occurrence).
    pub(crate) order: Vec<usize>,
    /// The top-level attributes the rules read, sorted like the user's map
    /// (byte order) so they can be resolved in one merge pass; only the
    /// first `MAX_SLOTS` (which have slots) are kept.
    pub(crate) fields: Box<[Field]>,
    pub(crate) index: KeyIndex,
}

impl CompiledRuleset {
    /// Compiles a ruleset. Never fails: a broken rule compiles to a safe
    /// default (everyone gets control, `in_experiment` false, reason
    /// `invalid_rule`) plus an [`EvalWarning`] naming the experiment and the
    /// problem.
    pub fn compile(ruleset: Ruleset) -> (CompiledRuleset, Vec<EvalWarning>) {
        let rules = ruleset
            .experiments
            .into_iter()
            .map(|rule| Arc::new(CompiledRule::compile(rule)))
            .collect();
        CompiledRuleset::assemble(ruleset.version, rules)
    }

    /// The ruleset of `version` made of rules compiled one by one, in order:
    /// identical conditions and clauses shared, attributes given slots. The
    /// warnings are those of every rule, plus duplicated keys.
    pub fn assemble(
        version: u64,
        rules: Vec<Arc<CompiledRule>>,
    ) -> (CompiledRuleset, Vec<EvalWarning>) {
        let mut warnings = Vec::new();
        let (index, duplicates) = KeyIndex::build(rules.iter().map(|r| r.rule.key.as_str()));
        let mut order = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            let warn = |message: &str| EvalWarning {
                experiment: rule.rule.key.clone(),
                message: message.to_owned(),
            };
            if duplicates.contains(&i) {
                warnings.push(warn(
                    "duplicate experiment key; only the first one is evaluated",
                ));
            } else {
                order.push(i);
            }
            warnings.extend(rule.problems.iter().map(|p| warn(p)));
        }
        let (mut conditions, condition_of) = share_conditions(&rules);
        let fields = slot_table(&conditions, &rules);
        let slot_of = |name: &str| -> Option<u16> {
            let i = fields.binary_search_by(|f| (*f.name).cmp(name)).ok()?;
            fields.get(i).map(|f| f.slot)
        };
        let placements = rules
            .iter()
            .zip(condition_of)
            .map(|(rule, condition)| {
                let hash_slot = slot_of(&rule.experiment.hash_attribute);
                let mut needed: Vec<u16> = condition
                    .and_then(|c| conditions.get(c))
                    .map(|c| c.fields().into_iter().filter_map(slot_of).collect())
                    .unwrap_or_default();
                needed.extend(hash_slot);
                needed.sort_unstable();
                needed.dedup();
                Placement {
                    condition,
                    hash_slot,
                    needed: needed
                        .iter()
                        .filter_map(|&s| fields.get(usize::from(s)).cloned())
                        .collect(),
                }
            })
            .collect();
        for c in &mut conditions {
            c.bind(&slot_of);
        }
        (
            CompiledRuleset {
                version,
                rules: rules.into_boxed_slice(),
                placements,
                conditions,
                order,
                fields,
                index,
            },
            warnings,
        )
    }

    /// The ruleset version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The wire form of every rule, in ruleset order.
    pub fn rules(&self) -> impl ExactSizeIterator<Item = &ExperimentRule> {
        self.rules.iter().map(|r| &r.rule)
    }

    /// The wire form of one experiment, by key (the first with that key).
    pub fn rule(&self, experiment: &str) -> Option<&ExperimentRule> {
        let i = self.index_of(experiment)?;
        self.rules.get(i).map(|r| &r.rule)
    }

    /// Index of the experiment with this key.
    #[inline]
    pub(crate) fn index_of(&self, experiment: &str) -> Option<usize> {
        self.index.get(experiment, |i| {
            self.rules.get(i).map(|r| r.rule.key.as_str())
        })
    }

    /// An empty ruleset (version 0): every `assign` returns `None`.
    pub fn empty() -> CompiledRuleset {
        CompiledRuleset::assemble(0, Vec::new()).0
    }

    /// Number of distinct compiled conditions (identical conditions are
    /// shared between experiments).
    pub fn distinct_conditions(&self) -> usize {
        self.conditions.len()
    }
}

/// One copy of each distinct condition, its top-level clauses given ids
/// (identical clauses share one), and each rule's index into them.
fn share_conditions(rules: &[Arc<CompiledRule>]) -> (Vec<Condition>, Vec<Option<usize>>) {
    let mut conditions: Vec<Condition> = Vec::new();
    let mut condition_ids: HashMap<&str, usize> = HashMap::new();
    let mut clause_ids: HashMap<&str, u32> = HashMap::new();
    let condition_of = rules
        .iter()
        .map(|rule| {
            let c = rule.condition.as_ref()?;
            let id = *condition_ids.entry(&c.canonical).or_insert_with(|| {
                let ids: Vec<u32> = c
                    .clauses
                    .iter()
                    .map(|clause| {
                        let next = u32::try_from(clause_ids.len()).unwrap_or(u32::MAX);
                        *clause_ids.entry(clause).or_insert(next)
                    })
                    .collect();
                let mut shared = c.compiled.clone();
                shared.bind_clauses(&ids);
                conditions.push(shared);
                conditions.len() - 1
            });
            Some(id)
        })
        .collect();
    (conditions, condition_of)
}

/// The attributes the rules read, sorted, the first [`MAX_SLOTS`] with slots.
fn slot_table(conditions: &[Condition], rules: &[Arc<CompiledRule>]) -> Box<[Field]> {
    let mut names: Vec<&str> = conditions.iter().flat_map(|c| c.fields()).collect();
    names.extend(rules.iter().map(|r| &*r.experiment.hash_attribute));
    names.sort_unstable();
    names.dedup();
    names.truncate(MAX_SLOTS);
    (0u16..)
        .zip(names)
        .map(|(slot, name)| Field {
            slot,
            prefix: js::prefix8(name),
            name: name.into(),
        })
        .collect()
}
