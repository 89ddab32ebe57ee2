//! Metrics: what is measured per user after first exposure.

use serde::{Deserialize, Serialize};

use super::validation::{check_text, is_valid_key, Problems, ValidationError, KEY_RULE};
use super::Millis;

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
    /// Σ numerator ÷ Σ denominator over the users of a variant (revenue per order,
    /// ROI): the two are other, non-ratio metrics.
    Ratio,
}

impl MetricKind {
    /// The API's name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Conversion => "conversion",
            MetricKind::Mean => "mean",
            MetricKind::Count => "count",
            MetricKind::Ratio => "ratio",
        }
    }
}

/// Which events count, relative to a user's first exposure: those in
/// `[first exposure + delay, first exposure + delay + hours)`. D7 retention is a
/// conversion metric with `delay_hours` 168 and `hours` 24.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(default)]
    pub delay_hours: f64,
    pub hours: f64,
}

/// The longest a window (delay and length together) may be: a year.
const MAX_WINDOW_HOURS: f64 = 24.0 * 366.0;
const HOUR_MS: f64 = 3_600_000.0;

impl Window {
    /// Milliseconds from first exposure to the window's start and to its end.
    pub fn bounds_ms(&self) -> (Millis, Millis) {
        let start = (self.delay_hours * HOUR_MS).round() as Millis;
        let end = ((self.delay_hours + self.hours) * HOUR_MS).round() as Millis;
        (start, end)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub key: String,
    #[serde(default)]
    pub name: String,
    pub kind: MetricKind,
    /// The event measured; none for a ratio, whose parts name theirs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event: String,
    /// A ratio's numerator and denominator metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Each user's value is capped here (mean and count metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<f64>,
    #[serde(default = "higher_is_better_default")]
    pub higher_is_better: bool,
}

fn higher_is_better_default() -> bool {
    true
}

impl Metric {
    /// A metric of one event with no window and no cap.
    pub fn of_event(key: &str, kind: MetricKind, event: &str) -> Self {
        Metric {
            key: key.to_owned(),
            name: String::new(),
            kind,
            event: event.to_owned(),
            numerator: None,
            denominator: None,
            window: None,
            cap: None,
            higher_is_better: true,
        }
    }

    /// Whether each user's value must be kept apart from the per-event aggregates:
    /// a window or a cap shapes it, or it is a ratio of two.
    pub fn is_shaped(&self) -> bool {
        self.kind == MetricKind::Ratio || self.window.is_some() || self.cap.is_some()
    }

    /// The checks that need no other metric; a ratio's parts are checked by
    /// [`Metric::validate_parts`].
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut problems = Problems::default();
        problems.check(is_valid_key(&self.key), "key", KEY_RULE);
        check_text(&mut problems, "name", &self.name, 200);
        if self.kind == MetricKind::Ratio {
            self.validate_ratio(&mut problems);
        } else {
            self.validate_event_metric(&mut problems);
        }
        problems.into_result()
    }

    fn validate_ratio(&self, problems: &mut Problems) {
        for (field, part) in [
            ("numerator", &self.numerator),
            ("denominator", &self.denominator),
        ] {
            problems.check(part.is_some(), field, "is required for a ratio metric");
        }
        problems.check(
            self.event.is_empty(),
            "event",
            "must be left out of a ratio metric: its numerator and denominator name theirs",
        );
        problems.check(
            self.window.is_none(),
            "window",
            "belongs on the numerator and denominator metrics, not on the ratio",
        );
        problems.check(
            self.cap.is_none(),
            "cap",
            "belongs on the numerator and denominator metrics, not on the ratio",
        );
    }

    fn validate_event_metric(&self, problems: &mut Problems) {
        problems.check(
            !self.event.is_empty() && self.event.chars().count() <= 128,
            "event",
            "must be 1 to 128 characters",
        );
        for (field, part) in [
            ("numerator", &self.numerator),
            ("denominator", &self.denominator),
        ] {
            problems.check(part.is_none(), field, "is only for ratio metrics");
        }
        if let Some(window) = &self.window {
            let ok = |h: f64| h.is_finite() && (0.0..=MAX_WINDOW_HOURS).contains(&h);
            problems.check(
                ok(window.delay_hours),
                "window.delay_hours",
                "must be 0 to 8784",
            );
            problems.check(
                ok(window.hours) && window.hours > 0.0,
                "window.hours",
                "must be more than 0 and at most 8784",
            );
            problems.check(
                window.delay_hours + window.hours <= MAX_WINDOW_HOURS,
                "window",
                "must end within a year (8784 hours) of first exposure",
            );
        }
        if let Some(cap) = self.cap {
            problems.check(
                self.kind != MetricKind::Conversion,
                "cap",
                "applies to mean and count metrics (a conversion is 0 or 1)",
            );
            problems.check(
                cap.is_finite() && cap > 0.0,
                "cap",
                "must be a number above 0",
            );
        }
    }

    /// A ratio's numerator and denominator must be existing metrics that are not
    /// ratios themselves; `find` looks a metric up by key.
    pub fn validate_parts(
        &self,
        find: &dyn Fn(&str) -> Option<Metric>,
    ) -> Result<(), ValidationError> {
        let mut problems = Problems::default();
        for (field, part) in [
            ("numerator", &self.numerator),
            ("denominator", &self.denominator),
        ] {
            let Some(key) = part else { continue };
            match find(key) {
                None => problems.add(field, format!("names no metric ({key:?})")),
                Some(part) if part.kind == MetricKind::Ratio => {
                    problems.add(field, "must not be a ratio metric itself")
                }
                Some(_) => {}
            }
        }
        problems.into_result()
    }
}
