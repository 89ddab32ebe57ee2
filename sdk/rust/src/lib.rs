//! Sluice's evaluation core: which variant of which experiment a user gets.
//!
//! One crate serves both the in-app SDKs and the server's `/sdk/v1/assign`,
//! so the two can never disagree. It is pure (no I/O, no clocks, no
//! randomness), never panics, and evaluates without allocating for the
//! usual string/number attributes.
//!
//! The semantics are GrowthBook's, checked against GrowthBook's cross-SDK
//! conformance cases: FNV-1a hashing over UTF-16 code units ([`hash`]),
//! bucket ranges with in-place coverage and namespaces ([`bucket`]), and the
//! MongoDB-style targeting language ([`condition`]). `sdk/spec/SPEC.md`
//! states them in our own words.
//!
//! ```
//! use sluice_sdk::{CompiledRuleset, Reason, Ruleset};
//! use serde_json::json;
//!
//! let ruleset: Ruleset = serde_json::from_value(json!({
//!     "version": 7,
//!     "experiments": [{
//!         "key": "pricing-q4", "status": "running", "coverage": 1.0,
//!         "hash_attribute": "id", "seed": "pricing-q4", "hash_version": 2,
//!         "condition": {"country": {"$in": ["CN", "US"]}},
//!         "variants": [
//!             {"key": "control", "weight": 0.5, "value": {"price": 199}},
//!             {"key": "premium", "weight": 0.5, "value": {"price": 249}}
//!         ]
//!     }]
//! })).map_err(|e| e.to_string())?;
//! let (rules, warnings) = CompiledRuleset::compile(ruleset);
//! assert!(warnings.is_empty());
//!
//! let user = json!({"id": "u1", "country": "CN"});
//! let user = user.as_object().ok_or("not an object")?;
//! let a = rules.assign("pricing-q4", user).ok_or("unknown experiment")?;
//! assert!(a.in_experiment && a.reason == Reason::Split);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod assign;
pub mod bucket;
#[cfg(feature = "client")]
pub mod client;
mod compiled;
pub mod condition;
pub mod hash;
mod js;
#[cfg(feature = "openfeature")]
pub mod openfeature;
mod ruleset;
mod wire;

pub use serde_json::Value;

pub use assign::{unit_id, AssignAll, Assignment, OwnedAssignment, Reason};
pub use compiled::{CompiledRule, CompiledRuleset, EvalWarning};
pub use ruleset::{ExperimentRule, NamespaceRule, RuleStatus, Ruleset, VariantRule};

/// A user's attributes, e.g. `{"id": "u1", "country": "CN"}`.
pub type Attributes = serde_json::Map<String, Value>;

/// The library's version, for SDK identification headers.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests;
