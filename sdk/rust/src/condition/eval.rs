//! The compiled condition tree and its evaluation.
//!
//! Mirrors GrowthBook's `evalCondition` (a [`Node`]: logic and field paths),
//! `evalConditionValue` (a [`Test`]: what one value must satisfy) and
//! `evalOperatorCondition` (an [`Op`]). A missing attribute is passed around
//! as `None` and behaves exactly like `null`, as GrowthBook's `getPath`
//! returns `null` for both.

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::HashSet;

use regex::Regex;
use serde_json::Value;

use crate::js::{self, Primitive, Relation};
use crate::Attributes;

use super::version;

/// What a condition object (or one of its entries) evaluates.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// Always true (`{}`, empty `$or`/`$and`).
    True,
    /// Never true (malformed input in lenient mode).
    Never,
    /// Every child is true (the entries of one object, or `$and`).
    And(Box<[Node]>),
    /// Some child is true (non-empty `$or`).
    Or(Box<[Node]>),
    /// No child is true (`$nor`; an empty `$nor` is false, as in GrowthBook).
    Nor(Box<[Node]>),
    /// The child is false.
    Not(Box<Node>),
    /// The value at `path` satisfies `test`.
    Field { path: Path, test: Test },
    /// Every (path, test) holds: an object of plain field conditions, the
    /// common shape, evaluated in one loop. The `u32` is a clause id shared
    /// by identical clauses across a ruleset (`NO_CLAUSE` if none), whose
    /// result is memoised per user (see [`ClauseMemo`]).
    Fields(Box<[(Path, Test, u32)]>),
}

/// Marks a clause without an id.
pub(crate) const NO_CLAUSE: u32 = u32::MAX;

/// Results of clauses already evaluated for the current user: many
/// experiments target the same `country`/`platform` clauses, so a ruleset
/// evaluates each distinct clause once per user. The first 256 clause ids
/// are memoised.
#[derive(Debug, Default)]
pub(crate) struct ClauseMemo {
    known: [Cell<u64>; 4],
    value: [Cell<u64>; 4],
}

impl ClauseMemo {
    #[inline]
    fn get_or(&self, id: u32, eval: impl FnOnce() -> bool) -> bool {
        let (word, bit) = ((id / 64) as usize, 1u64 << (id % 64));
        match (self.known.get(word), self.value.get(word)) {
            (Some(k), Some(v)) => {
                if k.get() & bit != 0 {
                    return v.get() & bit != 0;
                }
                let r = eval();
                k.set(k.get() | bit);
                if r {
                    v.set(v.get() | bit);
                }
                r
            }
            _ => eval(),
        }
    }
}

/// A dotted path, split once at compile time.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    pub(crate) first: Box<str>,
    pub(crate) rest: Box<[Box<str>]>,
    /// Where a compiled ruleset pre-resolved the first component, if it did
    /// (see [`Root::Slots`]).
    pub(crate) slot: Option<u16>,
}

/// What a path is looked up in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Root<'a> {
    Map(&'a Attributes),
    /// The attributes plus the values of the ruleset's fields, resolved in
    /// one pass; a path without a slot (or beyond the array) falls back to
    /// a lookup in the map.
    Slots(
        &'a Attributes,
        &'a [Option<&'a Value>],
        Option<&'a ClauseMemo>,
    ),
    Value(&'a Value),
}

/// `parts[i] in current` then `current[parts[i]]`, for JSON containers.
#[inline]
fn step<'a>(current: &'a Value, key: &str) -> Option<&'a Value> {
    match current {
        Value::Object(map) => map.get(key),
        Value::Array(items) => array_index(key).and_then(|i| items.get(i)),
        _ => None,
    }
}

/// A canonical array index ("0", "12"; not "01", "-1" or "+1").
fn array_index(key: &str) -> Option<usize> {
    if key.is_empty() || (key.len() > 1 && key.starts_with('0')) {
        return None;
    }
    if !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse().ok()
}

impl Path {
    #[inline]
    fn lookup<'a>(&self, root: Root<'a>) -> Option<&'a Value> {
        let mut current = match root {
            Root::Map(map) => map.get(&*self.first)?,
            Root::Slots(map, slots, _) => match self.slot.and_then(|s| slots.get(usize::from(s))) {
                Some(v) => (*v)?,
                None => map.get(&*self.first)?,
            },
            Root::Value(v) => step(v, &self.first)?,
        };
        for part in self.rest.iter() {
            current = step(current, part)?;
        }
        Some(current)
    }
}

impl Node {
    /// Collects the first component of every top-level path (the attributes
    /// this node reads directly from the user's map).
    pub(crate) fn fields<'s>(&'s self, out: &mut Vec<&'s str>) {
        match self {
            Node::True | Node::Never => {}
            Node::And(c) | Node::Or(c) | Node::Nor(c) => c.iter().for_each(|n| n.fields(out)),
            Node::Not(n) => n.fields(out),
            Node::Field { path, .. } => out.push(&path.first),
            Node::Fields(fields) => out.extend(fields.iter().map(|(p, _, _)| &*p.first)),
        }
    }

    /// Sets clause ids on a root `Fields` node, in entry order.
    pub(crate) fn bind_clauses(&mut self, ids: &[u32]) {
        if let Node::Fields(fields) = self {
            if fields.len() == ids.len() {
                for ((_, _, id), new) in fields.iter_mut().zip(ids) {
                    *id = *new;
                }
            }
        }
    }

    /// Assigns slots to top-level paths.
    pub(crate) fn bind(&mut self, slot_of: &impl Fn(&str) -> Option<u16>) {
        match self {
            Node::True | Node::Never => {}
            Node::And(c) | Node::Or(c) | Node::Nor(c) => c.iter_mut().for_each(|n| n.bind(slot_of)),
            Node::Not(n) => n.bind(slot_of),
            Node::Field { path, .. } => path.slot = slot_of(&path.first),
            Node::Fields(fields) => {
                for (path, _, _) in fields.iter_mut() {
                    path.slot = slot_of(&path.first);
                }
            }
        }
    }

    pub(crate) fn eval(&self, root: Root<'_>) -> bool {
        match self {
            Node::True => true,
            Node::Never => false,
            Node::And(children) => children.iter().all(|c| c.eval(root)),
            Node::Or(children) => children.iter().any(|c| c.eval(root)),
            Node::Nor(children) => !children.iter().any(|c| c.eval(root)),
            Node::Not(child) => !child.eval(root),
            Node::Field { path, test } => test.eval(path.lookup(root)),
            Node::Fields(fields) => match root {
                Root::Slots(_, _, Some(memo)) => fields.iter().all(|(p, t, id)| {
                    if *id == NO_CLAUSE {
                        t.eval_inline(p.lookup(root))
                    } else {
                        memo.get_or(*id, || t.eval_inline(p.lookup(root)))
                    }
                }),
                _ => fields.iter().all(|(p, t, _)| t.eval_inline(p.lookup(root))),
            },
        }
    }
}

/// What a single value must satisfy (GrowthBook's `evalConditionValue`).
#[derive(Debug, Clone)]
pub(crate) enum Test {
    /// `String(value) === s`.
    StrEq(Box<str>),
    /// `String(value).toLowerCase() === s` (`s` already lower-cased; `$alli`).
    StrEqFold(Box<str>),
    /// `Number(value) === n`.
    NumEq(f64),
    /// `value !== null && !!value === b`.
    Bool(bool),
    /// `value === null` (or missing).
    IsNull,
    /// Deep equality with a literal array or plain object.
    DeepEq(Value),
    /// The single operator holds (the common case, without a loop).
    One(Op),
    /// Every operator holds.
    Ops(Box<[Op]>),
}

impl Test {
    /// [`Test::eval`] with the most common clause shapes (a string literal,
    /// a string `$in`, a numeric comparison on a number) handled in line,
    /// saving two dispatches per clause on the hot path.
    #[inline(always)]
    fn eval_inline(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Test::StrEq(s), Some(Value::String(v))) => js::eq_short(v, s),
            (Test::One(Op::InStr { strs, negate }), Some(Value::String(v))) => {
                strs.contains(v) != *negate
            }
            (Test::One(Op::RelNum(rel, expected)), Some(Value::Number(n))) => {
                let a = js::number_f64(n);
                match rel {
                    Relation::Lt => a < *expected,
                    Relation::Lte => a <= *expected,
                    Relation::Gt => a > *expected,
                    Relation::Gte => a >= *expected,
                }
            }
            _ => self.eval(value),
        }
    }

    #[inline]
    pub(crate) fn eval(&self, value: Option<&Value>) -> bool {
        match self {
            Test::StrEq(s) => js::js_string_eq(value, s),
            Test::StrEqFold(s) => str_eq_fold(value, s),
            Test::NumEq(n) => js::to_number(value) == *n,
            Test::Bool(b) => !matches!(value, None | Some(Value::Null)) && js::truthy(value) == *b,
            Test::IsNull => matches!(value, None | Some(Value::Null)),
            Test::DeepEq(expected) => js::deep_equals(value, expected),
            Test::One(op) => op.eval(value),
            Test::Ops(ops) => ops.iter().all(|op| op.eval(value)),
        }
    }
}

/// `String(value).toLowerCase() === lower`, allocation-free for ASCII.
fn str_eq_fold(value: Option<&Value>, lower: &str) -> bool {
    if let Some(Value::String(s)) = value {
        if s.is_ascii() {
            return s.len() == lower.len()
                && s.bytes()
                    .zip(lower.bytes())
                    .all(|(a, b)| a.to_ascii_lowercase() == b);
        }
    }
    js::js_string(value).to_lowercase() == lower
}

/// The comparison a version operator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

/// JavaScript `typeof`-like type names used by `$type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsType {
    String,
    Number,
    Boolean,
    Object,
    Array,
    Null,
}

impl JsType {
    pub(crate) fn parse(name: &str) -> Option<JsType> {
        Some(match name {
            "string" => JsType::String,
            "number" => JsType::Number,
            "boolean" => JsType::Boolean,
            "object" => JsType::Object,
            "array" => JsType::Array,
            "null" => JsType::Null,
            _ => return None,
        })
    }

    fn of(value: Option<&Value>) -> JsType {
        match value {
            None | Some(Value::Null) => JsType::Null,
            Some(Value::Bool(_)) => JsType::Boolean,
            Some(Value::Number(_)) => JsType::Number,
            Some(Value::String(_)) => JsType::String,
            Some(Value::Array(_)) => JsType::Array,
            Some(Value::Object(_)) => JsType::Object,
        }
    }
}

/// One operator of an operator object (GrowthBook's `evalOperatorCondition`).
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// `$veq`…`$vlte` against a pre-padded version string.
    Version(VersionOp, Box<str>),
    /// `$eq`: `actual === expected`.
    Eq(Value),
    /// `$ne`: `actual !== expected`.
    Ne(Value),
    /// `$lt`, `$lte`, `$gt`, `$gte` with JavaScript's mixed-type rules.
    Rel(Relation, Primitive<'static>),
    /// `Rel` against a number: number attributes compare directly.
    RelNum(Relation, f64),
    /// `$exists`.
    Exists(bool),
    /// `$in`/`$ini`/`$inGroup` (`negate == false`), `$nin`/`$nini`/`$notInGroup`.
    In { set: InSet, negate: bool },
    /// `In` whose members are all strings, compared case-sensitively.
    InStr { strs: StrSet, negate: bool },
    /// `$not`.
    Not(Box<Test>),
    /// `$size`: the array length satisfies the test.
    Size(Box<Test>),
    /// `$elemMatch`.
    ElemMatch(ElemMatch),
    /// `$all`/`$alli`: every test is met by some element.
    All(Box<[Test]>),
    /// `$regex`/`$regexi`.
    Regex(Regex),
    /// `$type`.
    Type(JsType),
    /// An operator GrowthBook evaluates to false (lenient mode only).
    Never,
}

/// The two forms of `$elemMatch`.
#[derive(Debug, Clone)]
pub(crate) enum ElemMatch {
    /// The operand is an operator object: each element is tested as a value.
    Value(Box<Test>),
    /// The operand is a plain condition: each element is a document.
    Condition(Box<Node>),
}

impl Op {
    #[inline(always)]
    fn eval(&self, actual: Option<&Value>) -> bool {
        match self {
            Op::Version(op, padded) => {
                let o = version::cmp_padded(actual, padded);
                match op {
                    VersionOp::Eq => o == Ordering::Equal,
                    VersionOp::Ne => o != Ordering::Equal,
                    VersionOp::Gt => o == Ordering::Greater,
                    VersionOp::Gte => o != Ordering::Less,
                    VersionOp::Lt => o == Ordering::Less,
                    VersionOp::Lte => o != Ordering::Greater,
                }
            }
            Op::Eq(expected) => js::strict_equals(actual, expected),
            Op::Ne(expected) => !js::strict_equals(actual, expected),
            Op::Rel(rel, expected) => js::relate(&Primitive::of(actual), *rel, expected),
            Op::RelNum(rel, expected) => match actual {
                Some(Value::Number(n)) => {
                    let a = js::number_f64(n);
                    match rel {
                        Relation::Lt => a < *expected,
                        Relation::Lte => a <= *expected,
                        Relation::Gt => a > *expected,
                        Relation::Gte => a >= *expected,
                    }
                }
                other => js::relate(&Primitive::of(other), *rel, &Primitive::Num(*expected)),
            },
            Op::Exists(want) => !matches!(actual, None | Some(Value::Null)) == *want,
            Op::In { set, negate } => set.is_in(actual) != *negate,
            Op::InStr { strs, negate } => {
                let found = match actual {
                    Some(Value::String(s)) => strs.contains(s),
                    Some(Value::Array(items)) => items
                        .iter()
                        .any(|v| matches!(v, Value::String(s) if strs.contains(s))),
                    _ => false,
                };
                found != *negate
            }
            Op::Not(test) => !test.eval(actual),
            Op::Size(test) => match actual {
                Some(Value::Array(items)) => test.eval(Some(&Value::from(items.len()))),
                _ => false,
            },
            Op::ElemMatch(m) => match actual {
                // GrowthBook skips falsy elements (`actual[i] && check(...)`).
                Some(Value::Array(items)) => items.iter().any(|item| {
                    js::truthy(Some(item))
                        && match m {
                            ElemMatch::Value(test) => test.eval(Some(item)),
                            ElemMatch::Condition(node) => node.eval(match item {
                                Value::Object(map) => Root::Map(map),
                                other => Root::Value(other),
                            }),
                        }
                }),
                _ => false,
            },
            Op::All(tests) => match actual {
                Some(Value::Array(items)) => tests
                    .iter()
                    .all(|t| items.iter().any(|item| t.eval(Some(item)))),
                _ => false,
            },
            Op::Regex(re) => match actual {
                Some(Value::String(s)) => re.is_match(s),
                // RegExp.test converts its argument with String().
                other => re.is_match(&js::js_string(other)),
            },
            Op::Type(t) => JsType::of(actual) == *t,
            Op::Never => false,
        }
    }
}

/// Below this many strings a linear scan beats hashing.
const SMALL_SET: usize = 8;

/// String members of an `$in` list.
#[derive(Debug, Clone)]
pub(crate) enum StrSet {
    /// (8-byte prefix, length, string): a member of at most 8 bytes is
    /// matched from the first two without touching the string.
    Small(Box<[(u64, usize, Box<str>)]>),
    Hashed(HashSet<Box<str>>),
}

impl StrSet {
    pub(crate) fn new(items: Vec<Box<str>>) -> StrSet {
        if items.len() <= SMALL_SET {
            StrSet::Small(
                items
                    .into_iter()
                    .map(|s| (js::prefix8(&s), s.len(), s))
                    .collect(),
            )
        } else {
            StrSet::Hashed(items.into_iter().collect())
        }
    }

    #[inline(always)]
    fn contains(&self, s: &str) -> bool {
        match self {
            StrSet::Small(items) => {
                let (p, n) = (js::prefix8(s), s.len());
                items
                    .iter()
                    .any(|(ip, il, i)| *ip == p && *il == n && (n <= 8 || js::eq_short(i, s)))
            }
            StrSet::Hashed(set) => set.contains(s),
        }
    }
}

/// An `$in` list split by type, with JavaScript's `includes` semantics
/// (strict equality: `1` does not match `"1"`; arrays and objects in the list
/// never match anything). With `fold`, strings compare lower-cased (`$ini`).
#[derive(Debug, Clone)]
pub(crate) struct InSet {
    pub(crate) strs: StrSet,
    pub(crate) nums: Box<[f64]>,
    pub(crate) null: bool,
    pub(crate) truth: bool,
    pub(crate) falsity: bool,
    pub(crate) fold: bool,
}

impl InSet {
    /// GrowthBook's `isIn`: an array attribute matches when any element is
    /// in the list.
    #[inline]
    fn is_in(&self, actual: Option<&Value>) -> bool {
        match actual {
            Some(Value::Array(items)) => items.iter().any(|v| self.contains(Some(v))),
            other => self.contains(other),
        }
    }

    #[inline]
    fn contains(&self, value: Option<&Value>) -> bool {
        match value {
            None | Some(Value::Null) => self.null,
            Some(Value::Bool(true)) => self.truth,
            Some(Value::Bool(false)) => self.falsity,
            Some(Value::Number(n)) => {
                let f = js::number_f64(n);
                self.nums.contains(&f)
            }
            Some(Value::String(s)) => {
                if !self.fold {
                    self.strs.contains(s)
                } else {
                    self.contains_folded(s)
                }
            }
            Some(Value::Array(_)) | Some(Value::Object(_)) => false,
        }
    }

    fn contains_folded(&self, s: &str) -> bool {
        const STACK: usize = 64;
        if s.is_ascii() && s.len() <= STACK {
            let mut buf = [0u8; STACK];
            let lower = &mut buf[..s.len()];
            lower.copy_from_slice(s.as_bytes());
            lower.make_ascii_lowercase();
            // ASCII stays valid UTF-8 after lower-casing.
            match std::str::from_utf8(lower) {
                Ok(l) => self.strs.contains(l),
                Err(_) => false,
            }
        } else {
            self.strs.contains(&s.to_lowercase())
        }
    }
}
