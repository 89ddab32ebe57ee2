//! What the statistics are computed from, as the store reads it back: per-variant
//! sufficient statistics, who was exposed, and (for time series) users and their
//! events. Reports take these; the store produces them.

use std::collections::BTreeMap;

use super::shaped::{Backfill, HOUR_MS};
use super::validation::{Problems, ValidationError};
use super::{parse_rfc3339, Millis};

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

impl ExposureSummary {
    /// Whether anyone has been exposed, in one variant or several.
    pub fn anyone(&self) -> bool {
        self.users.iter().any(|(_, n)| *n > 0) || self.multiple_exposures > 0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExposedUser {
    pub user: String,
    pub variant: String,
    pub first_ts: Millis,
}

/// A track event of a user, with its name: what shaped metrics' series read.
#[derive(Debug, Clone, PartialEq)]
pub struct UserTrack {
    pub user: String,
    pub event: String,
    pub value: f64,
    pub ts: Millis,
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
    /// Its shaped metrics' paired totals as of now.
    pub paired: ShapedTotals,
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

    /// The paired totals of shaped `metric`; none when nobody contributed yet.
    pub fn of_shaped(&self, metric: &str) -> Vec<PairedTotals> {
        self.paired
            .metrics
            .iter()
            .find(|(m, _)| m == metric)
            .map(|(_, totals)| totals.clone())
            .unwrap_or_default()
    }
}

/// Whole hours since the epoch, `[from, to)`; unbounded where `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourRange {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl HourRange {
    /// Every hour: everyone exposed.
    pub const ALL: HourRange = HourRange {
        from: None,
        to: None,
    };
}

/// Which exposed users a report counts: those first exposed in `[from, to)` whose
/// kept dimensions have one of the listed values (every listed dimension applies).
/// Their later events all count: the filter picks users, it does not cut events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserFilter {
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    /// Per kept dimension, the values a user may have; sorted by dimension.
    pub segments: Vec<(String, Vec<String>)>,
}

impl UserFilter {
    /// Every exposed user: what the running totals hold.
    pub const EVERYONE: UserFilter = UserFilter {
        from: None,
        to: None,
        segments: Vec::new(),
    };

    pub fn is_everyone(&self) -> bool {
        self.from.is_none() && self.to.is_none() && self.segments.is_empty()
    }

    /// The hours of first exposure `[from, to)` (since the epoch) of the users the
    /// filter picks, when it picks them by first exposure alone between whole hours
    /// (any date range): totals kept per hour of first exposure answer it.
    pub fn first_exposure_hours(&self) -> Option<HourRange> {
        if !self.segments.is_empty() {
            return None;
        }
        let hour = |at: Option<Millis>| match at {
            None => Some(None),
            Some(at) if at.rem_euclid(HOUR_MS) == 0 => Some(Some(at.div_euclid(HOUR_MS))),
            Some(_) => None,
        };
        Some(HourRange {
            from: hour(self.from)?,
            to: hour(self.to)?,
        })
    }

    /// The filter of a report request: `from` and `to` are dates (midnight UTC) or
    /// RFC 3339 times, each segment is `DIMENSION:VALUE` (one dimension repeated
    /// means any of its values).
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        segments: &[String],
    ) -> Result<UserFilter, ValidationError> {
        let mut problems = Problems::default();
        let from = from.and_then(|text| instant(&mut problems, "from", text));
        let to = to.and_then(|text| instant(&mut problems, "to", text));
        if let (Some(from), Some(to)) = (from, to) {
            problems.check(from < to, "to", "must be after from");
        }
        let mut by_dimension: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, segment) in segments.iter().enumerate() {
            match segment.split_once(':') {
                Some((dimension, value)) if !dimension.is_empty() => {
                    let values = by_dimension.entry(dimension.to_owned()).or_default();
                    if !values.iter().any(|v| v == value) {
                        values.push(value.to_owned());
                    }
                }
                _ => problems.add(
                    format!("segment[{i}]"),
                    "must be DIMENSION:VALUE, e.g. country:CN",
                ),
            }
        }
        problems.into_result()?;
        Ok(UserFilter {
            from,
            to,
            segments: by_dimension.into_iter().collect(),
        })
    }
}

/// A date (its midnight UTC) or an RFC 3339 time.
fn instant(problems: &mut Problems, field: &str, text: &str) -> Option<Millis> {
    const DATE: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]");
    let parsed = time::Date::parse(text, DATE)
        .ok()
        .map(|date| date.midnight().assume_utc().unix_timestamp() * 1000)
        .or_else(|| parse_rfc3339(text));
    if parsed.is_none() {
        problems.add(
            field,
            "must be a date (2026-12-01) or an RFC 3339 time (2026-12-01T08:00:00Z)",
        );
    }
    parsed
}

/// Sufficient statistics of a shaped metric in one variant (see
/// [`super::shaped`]): over the users whose window has closed, the sums of their
/// pairs `(x, y)`; users whose window is still open are only counted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PairedTotals {
    pub variant: String,
    pub users: u64,
    pub sum_x: f64,
    pub sum_squares_x: f64,
    pub sum_y: f64,
    pub sum_squares_y: f64,
    pub sum_products: f64,
    /// Users whose window has not closed yet: left out until it has.
    pub users_pending: u64,
}

/// An experiment's shaped metrics as of now: per metric its paired totals, and the
/// rebuild in progress, if any, whose users not yet reached they leave out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShapedTotals {
    pub metrics: Vec<(String, Vec<PairedTotals>)>,
    pub backfill: Option<Backfill>,
}

impl PairedTotals {
    pub fn empty(variant: &str) -> Self {
        PairedTotals {
            variant: variant.to_owned(),
            ..PairedTotals::default()
        }
    }

    /// Adds another group of users of the same variant.
    pub fn absorb(&mut self, other: &PairedTotals) {
        self.users += other.users;
        self.sum_x += other.sum_x;
        self.sum_squares_x += other.sum_squares_x;
        self.sum_y += other.sum_y;
        self.sum_squares_y += other.sum_squares_y;
        self.sum_products += other.sum_products;
        self.users_pending += other.users_pending;
    }
}

/// The values of a segment, one per dimension broken down by (`None`: not
/// captured).
pub type SegmentKey = Vec<Option<String>>;

/// A segment's values and, per shaped metric, its per-variant paired totals.
pub type SegmentMetrics = (SegmentKey, Vec<(String, Vec<PairedTotals>)>);
