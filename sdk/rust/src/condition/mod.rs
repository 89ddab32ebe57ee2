//! Targeting conditions: GrowthBook's MongoDB-style condition language.
//!
//! A condition is parsed once into a tree of nodes and value tests with
//! everything that can be prepared ahead prepared: regexes compiled, version
//! strings padded, `$in` lists turned into typed sets, saved groups resolved.
//! Evaluation then walks the tree against the user's attributes and does not
//! allocate for string, number and boolean attributes.
//!
//! Two compile modes:
//! - **strict** ([`Condition::compile`], [`Condition::compile_with_groups`]):
//!   anything GrowthBook would silently treat as "never matches" (unknown
//!   operator, invalid regex, wrong operand type, unknown saved group) is an
//!   error naming the JSON path of the offending part, e.g. `country.$regex`.
//!   Rulesets use this: a rule whose condition does not compile serves
//!   control to everyone.
//! - **lenient** ([`Condition::compile_lenient`]): mirrors GrowthBook's
//!   runtime exactly where GrowthBook defines a result (unknown operators and
//!   invalid regexes never match, `$in` with a non-array never matches);
//!   structurally malformed input that GrowthBook's own tests do not cover
//!   (e.g. `$and` given a number) never matches either.
//!
//! ```
//! use sluice_sdk::condition::Condition;
//! use serde_json::json;
//!
//! let cond = Condition::compile(&json!({"country": {"$in": ["CN", "US"]}, "age": {"$gte": 18}}))?;
//! let user = json!({"country": "CN", "age": 30});
//! assert!(cond.matches(user.as_object().unwrap_or(&Default::default())));
//! # Ok::<(), sluice_sdk::condition::ConditionError>(())
//! ```

mod compile;
pub(crate) mod eval;
mod version;

use serde_json::Value;

use crate::Attributes;

pub use version::padded_version_string;

/// Saved groups: group id → array of member values, for `$inGroup` and
/// `$notInGroup`.
pub type SavedGroups = serde_json::Map<String, Value>;

/// A compiled condition. Cheap to evaluate, `Send + Sync`, built once.
#[derive(Debug, Clone)]
pub struct Condition {
    root: eval::Node,
}

/// What kind of problem made a strict compile fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConditionErrorKind {
    /// An operator (`$…` key) that the language does not have.
    UnknownOperator,
    /// A `$regex`/`$regexi` pattern that does not compile.
    InvalidRegex,
    /// An operand of the wrong JSON type (e.g. `$in` given a string).
    WrongType,
    /// `$inGroup`/`$notInGroup` naming a group that is not defined.
    UnknownSavedGroup,
    /// An object mixing operators and plain field names.
    MixedKeys,
}

/// Why a condition failed to compile strictly, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", if path.is_empty() { "condition" } else { path.as_str() })]
pub struct ConditionError {
    /// JSON path of the offending part, e.g. `country.$regex` or
    /// `$and[1].age.$gt`; empty for the condition itself.
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
    /// The kind of problem, for callers that branch on it.
    pub kind: ConditionErrorKind,
}

impl ConditionError {
    /// The kind of problem.
    pub fn kind(&self) -> ConditionErrorKind {
        self.kind
    }
}

impl Condition {
    /// Compiles strictly, without saved groups: any unknown operator, invalid
    /// regex or wrong operand type is an error with its JSON path. `null`
    /// means "no condition" and matches everyone.
    pub fn compile(condition: &Value) -> Result<Condition, ConditionError> {
        compile::Compiler::strict(None).condition(condition)
    }

    /// Compiles strictly, resolving `$inGroup`/`$notInGroup` against
    /// `saved_groups` (an unknown group is an error).
    pub fn compile_with_groups(
        condition: &Value,
        saved_groups: &SavedGroups,
    ) -> Result<Condition, ConditionError> {
        compile::Compiler::strict(Some(saved_groups)).condition(condition)
    }

    /// Compiles with GrowthBook's runtime leniency: the parts GrowthBook
    /// would evaluate to "no match" compile to "no match". Never fails.
    pub fn compile_lenient(condition: &Value, saved_groups: &SavedGroups) -> Condition {
        match compile::Compiler::lenient(saved_groups).condition(condition) {
            Ok(c) => c,
            // Lenient compilation turns every problem into a `Never` node;
            // this arm is unreachable in practice but keeps the API total.
            Err(_) => Condition {
                root: eval::Node::Never,
            },
        }
    }

    /// A condition that matches everyone (the empty condition `{}`).
    pub fn always() -> Condition {
        Condition {
            root: eval::Node::True,
        }
    }

    /// Whether the user's attributes satisfy the condition.
    #[inline]
    pub fn matches(&self, attributes: &Attributes) -> bool {
        self.root.eval(eval::Root::Map(attributes))
    }

    /// The attributes the condition reads from the top level of the user's
    /// map (the first component of each path), in order of appearance,
    /// possibly repeated.
    pub(crate) fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.root.fields(&mut out);
        out
    }

    /// Binds top-level paths to pre-resolved slots (see `eval::Root::Slots`).
    pub(crate) fn bind(&mut self, slot_of: &impl Fn(&str) -> Option<u16>) {
        self.root.bind(slot_of);
    }

    /// Evaluates against attributes with pre-resolved slots and the
    /// per-user clause memo.
    #[inline]
    pub(crate) fn matches_slots(
        &self,
        attributes: &Attributes,
        slots: &[Option<&Value>],
        memo: Option<&eval::ClauseMemo>,
    ) -> bool {
        self.root.eval(eval::Root::Slots(attributes, slots, memo))
    }

    /// Gives the top-level field clauses ruleset-wide ids (see
    /// `eval::ClauseMemo`), one per entry of the condition object in order;
    /// ignored unless the condition is a plain object of field clauses.
    pub(crate) fn bind_clauses(&mut self, ids: &[u32]) {
        self.root.bind_clauses(ids);
    }

    /// Whether an arbitrary JSON value satisfies the condition (a non-object
    /// value has no fields, so every path in it is `null`).
    pub fn matches_value(&self, value: &Value) -> bool {
        match value {
            Value::Object(map) => self.matches(map),
            other => self.root.eval(eval::Root::Value(other)),
        }
    }
}

#[cfg(test)]
mod tests;
