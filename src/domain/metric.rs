//! Metrics: what is measured per user after first exposure.

use serde::{Deserialize, Serialize};

use super::validation::{check_text, is_valid_key, Problems, ValidationError, KEY_RULE};

/// How a user's events turn into that user's value for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// 1 if the user sent the event at or after first exposure, else 0.
    Conversion,
    /// The sum of the event's values per user, 0 without events (e.g. revenue per user).
    Mean,
    /// The number of events per user.
    Count,
}

impl MetricKind {
    /// The API's name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Conversion => "conversion",
            MetricKind::Mean => "mean",
            MetricKind::Count => "count",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub key: String,
    #[serde(default)]
    pub name: String,
    pub kind: MetricKind,
    pub event: String,
    #[serde(default = "higher_is_better_default")]
    pub higher_is_better: bool,
}

fn higher_is_better_default() -> bool {
    true
}

impl Metric {
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut problems = Problems::default();
        problems.check(is_valid_key(&self.key), "key", KEY_RULE);
        check_text(&mut problems, "name", &self.name, 200);
        problems.check(
            !self.event.is_empty() && self.event.chars().count() <= 128,
            "event",
            "must be 1 to 128 characters",
        );
        problems.into_result()
    }
}
