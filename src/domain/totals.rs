//! What the statistics are computed from, as the store reads it back: per-variant
//! sufficient statistics, who was exposed, and (for time series) users and their
//! events. Reports take these; the store produces them.

use super::Millis;

/// Sufficient statistics of one event's per-user values in one variant, over the
/// users exposed to exactly that variant (users seen in several are left out).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VariantTotals {
    pub variant: String,
    /// Users whose first exposure was to this variant.
    pub users: u64,
    /// Users with at least one event at or after first exposure.
    pub converted: u64,
    /// Sum and sum of squares of the per-user sums of the event's values.
    pub value_sum: f64,
    pub value_sum_squares: f64,
    /// Sum and sum of squares of the per-user event counts.
    pub count_sum: f64,
    pub count_sum_squares: f64,
}

impl VariantTotals {
    /// Adds another group's totals (they are sums, so groups merge exactly).
    pub fn absorb(&mut self, other: &VariantTotals) {
        self.users += other.users;
        self.converted += other.converted;
        self.value_sum += other.value_sum;
        self.value_sum_squares += other.value_sum_squares;
        self.count_sum += other.count_sum;
        self.count_sum_squares += other.count_sum_squares;
    }
}

/// Who was exposed to an experiment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExposureSummary {
    /// Users per variant, excluding those exposed to more than one.
    pub users: Vec<(String, u64)>,
    /// Users exposed to more than one variant.
    pub multiple_exposures: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExposedUser {
    pub user: String,
    pub variant: String,
    pub first_ts: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrackFact {
    pub user: String,
    pub ts: Millis,
    pub value: f64,
}

/// One experiment's running totals: who was exposed and, per event asked for, the
/// per-variant totals ([`VariantTotals`] for every variant with users, in variant
/// key order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunningTotals {
    pub experiment: String,
    pub exposures: ExposureSummary,
    pub events: Vec<(String, Vec<VariantTotals>)>,
}

impl RunningTotals {
    /// The per-variant totals of `event`; none when it was not asked for.
    pub fn of_event(&self, event: &str) -> Vec<VariantTotals> {
        self.events
            .iter()
            .find(|(e, _)| e == event)
            .map(|(_, totals)| totals.clone())
            .unwrap_or_default()
    }
}
