//! The audit log: every change to an experiment, by whom, before and after.

use serde::Serialize;
use serde_json::Value;

use super::Millis;

/// An entry about to be written, in the same transaction as the change it records.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub experiment: String,
    pub actor: String,
    pub action: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// For automatic actions: the numbers the decision was made on.
    pub evidence: Option<Value>,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub experiment: String,
    pub actor: String,
    pub action: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Value>,
    pub at: String,
}
