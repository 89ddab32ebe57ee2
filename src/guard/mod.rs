//! Circuit breakers. [`status`] judges a guardrail from the data (green, yellow,
//! red) with an always-valid one-sided test, so checking as often as we like does
//! not inflate false alarms.

pub mod status;

pub use status::{judge, GuardStatus, GuardrailVerdict};
