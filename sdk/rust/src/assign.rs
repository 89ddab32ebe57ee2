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
use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bucket;
use crate::compiled::{CompiledExperiment, CompiledRuleset, Field, MAX_SLOTS};
use crate::condition::eval::ClauseMemo;
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
    /// Where in the ruleset the experiment and the variant are, for writing the
    /// assignment from bytes prepared once ([`CompiledRuleset::write_assignments`]).
    #[serde(skip)]
    pub(crate) at: Position,
}

/// An experiment's index in its ruleset and the served variant's in the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Position {
    pub(crate) rule: usize,
    pub(crate) variant: usize,
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

/// Calls `f` with the unit id of `value` (see [`unit_id`]), formatting a
/// number on the stack; `None` when there is no unit id.
#[inline]
pub(crate) fn with_unit_id<R>(value: Option<&Value>, f: impl FnOnce(&str) -> R) -> Option<R> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(f(s)),
        Value::Number(_) | Value::Bool(true) => unit_id_of(value).map(|id| f(id.as_str())),
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

/// Per-user state shared by the experiments of one `assign_all` call:
/// condition results already computed (experiments with identical
/// targeting evaluate it once) and the last unit id looked up. Fixed-size:
/// the first 256 distinct conditions are memoised, later ones evaluated
/// each time.
struct Ctx<'u> {
    memo: Memo,
    clauses: Option<ClauseMemo>,
    /// Set for a single assign: resolve the experiment's attributes in
    /// `evaluate`, after the status checks (`assign_all` resolves all of
    /// them up front).
    resolve_lazily: bool,
    /// Values of the ruleset's fields (`CompiledRuleset::fields`) for this
    /// user; only the slots the current evaluation needs are filled.
    slots: [Option<&'u Value>; MAX_SLOTS],
}

impl Default for Ctx<'_> {
    fn default() -> Self {
        Ctx {
            memo: Memo::default(),
            clauses: None,
            resolve_lazily: false,
            slots: [None; MAX_SLOTS],
        }
    }
}

/// Looks up the `wanted` fields (sorted by name) in the user's map and
/// stores their values in `slots`; the slots of missing fields are left
/// untouched (empty). When the map is small relative to the number of
/// fields, one merge pass over its sorted entries beats a tree lookup per
/// name (each of which compares strings through `memcmp`).
fn resolve<'u>(user: &'u Attributes, wanted: &[Field], slots: &mut [Option<&'u Value>]) {
    let mut set = |f: &Field, v: Option<&'u Value>| {
        if let Some(s) = slots.get_mut(usize::from(f.slot)) {
            *s = v;
        }
    };
    if user.len() > 2 * wanted.len() + 8 {
        for f in wanted {
            set(f, user.get(&*f.name));
        }
        return;
    }
    let mut rest = wanted;
    for (k, v) in user {
        if rest.is_empty() {
            break;
        }
        let pk = js::prefix8(k);
        // Fields sorting before `k` are missing from the map.
        while let Some((f, tail)) = rest.split_first() {
            let order = f.prefix.cmp(&pk).then_with(|| {
                if f.name.len() == k.len() && k.len() <= 8 {
                    // The prefixes cover both names.
                    Ordering::Equal
                } else {
                    js::cmp_short(&f.name, k)
                }
            });
            match order {
                Ordering::Less => rest = tail,
                Ordering::Equal => {
                    set(f, Some(v));
                    rest = tail;
                    break;
                }
                Ordering::Greater => break,
            }
        }
    }
}

/// Condition results by condition id: `known` and `value` bitmaps.
#[derive(Default)]
struct Memo {
    known: [u64; 4],
    value: [u64; 4],
}

impl Memo {
    #[inline]
    fn condition(&mut self, id: usize, eval: impl FnOnce() -> bool) -> bool {
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

impl<'u> Ctx<'u> {
    /// The value of a top-level attribute, from its slot when it has one.
    #[inline]
    fn attribute(&self, user: &'u Attributes, name: &str, slot: Option<u16>) -> Option<&'u Value> {
        match slot.and_then(|s| self.slots.get(usize::from(s))) {
            Some(v) => *v,
            None => user.get(name),
        }
    }
}

impl CompiledRuleset {
    /// Evaluates one experiment for a user; `None` when the key is unknown.
    pub fn assign(&self, experiment: &str, user: &Attributes) -> Option<Assignment<'_>> {
        let i = self.index_of(experiment)?;
        let mut ctx = Ctx {
            resolve_lazily: true,
            ..Ctx::default()
        };
        Some(self.evaluate(i, user, &mut ctx, None))
    }

    /// Evaluates every experiment for a user, in ruleset order. Experiments
    /// sharing a condition evaluate it once.
    pub fn assign_all<'a>(&'a self, user: &'a Attributes) -> AssignAll<'a> {
        let mut ctx = Ctx {
            clauses: Some(ClauseMemo::default()),
            ..Ctx::default()
        };
        resolve(user, &self.fields, &mut ctx.slots);
        AssignAll {
            ruleset: self,
            user,
            next: 0,
            ctx,
            pre: [0; hash::LANES],
            pre_valid: 0,
        }
    }

    fn evaluate<'a, 'u>(
        &'a self,
        i: usize,
        user: &'u Attributes,
        ctx: &mut Ctx<'u>,
        precomputed_bucket: Option<u32>,
    ) -> Assignment<'a>
    where
        'a: 'u,
    {
        let (Some(compiled), Some(place)) = (self.rules.get(i), self.placements.get(i)) else {
            // Indices come from our own index; unreachable, but never panic.
            return Assignment {
                experiment: "",
                variant: "",
                value: &NULL,
                in_experiment: false,
                reason: Reason::InvalidRule,
                at: Position {
                    rule: usize::MAX,
                    variant: 0,
                },
            };
        };
        let (rule, exp) = (&compiled.rule, &compiled.experiment);
        let pick = |v: usize, in_experiment: bool, reason: Reason| {
            let variant = rule.variants.get(v);
            Assignment {
                experiment: &rule.key,
                variant: variant.map_or("", |v| v.key.as_str()),
                value: variant.map_or(&NULL, |v| &v.value),
                in_experiment,
                reason,
                at: Position {
                    rule: i,
                    variant: v,
                },
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

        // A single assign reads the user's attributes only once it knows
        // the experiment runs.
        if ctx.resolve_lazily {
            resolve(user, &place.needed, &mut ctx.slots);
        }

        let value = ctx.attribute(user, &exp.hash_attribute, place.hash_slot);
        // Hash before checking the condition (unless `assign_all` hashed
        // ahead): hashing is pure, and issuing its long chain of dependent
        // multiplies first lets the CPU evaluate the condition meanwhile
        // (~10% of a single assign). A failed condition wastes the hash.
        let hashed = match precomputed_bucket {
            None => with_unit_id(value, |id| bucket_of(exp, id)),
            some => some,
        };

        if let Some(c) = place.condition {
            // Clause memoisation pays off only across experiments.
            let (slots, clauses) = (&ctx.slots, ctx.clauses.as_ref());
            let passes = ctx.memo.condition(c, || {
                self.conditions
                    .get(c)
                    .is_some_and(|c| c.matches_slots(user, slots, clauses))
            });
            if !passes {
                return control(Reason::Condition);
            }
        }

        let Some(b) = hashed else {
            return control(Reason::NoHashAttribute);
        };
        if let Some((name, range)) = &exp.namespace {
            if with_unit_id(value, |id| bucket::in_namespace(id, name, *range)) != Some(true) {
                return control(Reason::Namespace);
            }
        }
        match bucket::choose_bucket(b, &exp.ranges) {
            Some(v) => pick(v, true, Reason::Split),
            None => control(Reason::Coverage),
        }
    }
}

/// The hash bucket of unit id `id` in experiment `exp`.
#[inline]
fn bucket_of(exp: &CompiledExperiment, id: &str) -> u32 {
    if exp.hash_version == 2 {
        hash::bucket_v2(exp.seed_state.str(id))
    } else {
        hash::bucket_v1(Fnv1a32::new().str(id).str(&exp.seed))
    }
}

/// Iterator over every experiment's assignment for one user
/// (see [`CompiledRuleset::assign_all`]).
pub struct AssignAll<'a> {
    ruleset: &'a CompiledRuleset,
    user: &'a Attributes,
    next: usize,
    ctx: Ctx<'a>,
    /// Version 2 buckets hashed ahead for the current chunk of `LANES`
    /// experiments (see `hash::buckets_v2_lanes`); bit `l` of `pre_valid`
    /// says whether lane `l` holds one.
    pre: [u32; hash::LANES],
    pre_valid: u32,
}

impl AssignAll<'_> {
    /// Hashes the unit id for the running v2 experiments of the chunk that
    /// starts at `pos`, all at once. Done before their conditions are known:
    /// hashing is pure, and a wasted lane is cheaper than a serial hash.
    fn hash_ahead(&mut self, pos: usize) {
        self.pre_valid = 0;
        let rs = self.ruleset;
        let end = (pos + hash::LANES).min(rs.order.len());
        let Some(chunk) = rs.order.get(pos..end) else {
            return;
        };
        let mut seeds = [Fnv1a32::new(); hash::LANES];
        let mut mask = 0u32;
        let mut attribute: Option<(&str, Option<u16>)> = None;
        for (lane, &i) in chunk.iter().enumerate() {
            let (Some(rule), Some(place)) = (rs.rules.get(i), rs.placements.get(i)) else {
                continue;
            };
            let e = &rule.experiment;
            if e.status != RuleStatus::Running || e.invalid || e.hash_version != 2 {
                continue;
            }
            match attribute {
                None => attribute = Some((&e.hash_attribute, place.hash_slot)),
                Some((a, _)) if js::eq_short(a, &e.hash_attribute) => {}
                Some(_) => continue,
            }
            if let Some(seed) = seeds.get_mut(lane) {
                *seed = e.seed_state;
                mask |= 1 << lane;
            }
        }
        if mask.count_ones() < 2 {
            return;
        }
        let Some((attribute, slot)) = attribute else {
            return;
        };
        let value = self.ctx.attribute(self.user, attribute, slot);
        if let Some(pre) = with_unit_id(value, |id| hash::buckets_v2_lanes(&seeds, id)) {
            self.pre = pre;
            self.pre_valid = mask;
        }
    }
}

impl<'a> Iterator for AssignAll<'a> {
    type Item = Assignment<'a>;

    fn next(&mut self) -> Option<Assignment<'a>> {
        let pos = self.next;
        let i = *self.ruleset.order.get(pos)?;
        self.next += 1;
        let lane = pos % hash::LANES;
        if lane == 0 {
            self.hash_ahead(pos);
        }
        let pre = (self.pre_valid & (1 << lane) != 0)
            .then(|| self.pre.get(lane).copied())
            .flatten();
        Some(self.ruleset.evaluate(i, self.user, &mut self.ctx, pre))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.ruleset.order.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for AssignAll<'_> {}
