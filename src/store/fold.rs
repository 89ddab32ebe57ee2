//! How a batch of new events changes the per-user aggregates and the per-variant
//! running totals. Pure logic shared by every backend: a backend reads the stored
//! state of the users a batch touches, asks this module what changes, and writes it.
//!
//! A user's contribution to a variant's totals for one event name is `(converted,
//! total, total², count, count²)` of that user's events at or after first exposure.
//! Users exposed to more than one variant contribute nothing (they are counted
//! apart). Replacing a user's old contribution by the new one keeps the totals exact
//! whatever order events arrive in.

use std::collections::{BTreeMap, HashMap};

use crate::domain::shaped::{Contribution, MetricRows, ShapedPlan, HOUR_MS};
use crate::domain::{Event, EventKind, Millis};

/// `(experiment, user)`.
pub(crate) type UserKey = (String, String);

/// A user's first exposure to an experiment.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FirstExposure {
    pub(crate) variant: String,
    pub(crate) first_ts: Millis,
    pub(crate) multiple: bool,
    /// The kept attributes of the first exposure (JSON object), if any.
    pub(crate) dimensions: Option<String>,
}

impl FirstExposure {
    /// Folds in another exposure of the same user to the same experiment.
    pub(crate) fn merge(&mut self, other: &FirstExposure) {
        self.multiple |= other.multiple || other.variant != self.variant;
        if other.first_ts < self.first_ts {
            self.first_ts = other.first_ts;
            self.variant.clone_from(&other.variant);
            if other.dimensions.is_some() {
                self.dimensions.clone_from(&other.dimensions);
            }
        } else if self.dimensions.is_none() {
            self.dimensions.clone_from(&other.dimensions);
        }
    }
}

/// Sum and count of one user's events of one name since first exposure.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct UserMetric {
    pub(crate) total: f64,
    pub(crate) count: i64,
}

/// Per event name, a user's aggregates in one experiment.
pub(crate) type UserMetrics = HashMap<String, UserMetric>;

/// Running totals of one (experiment, variant, event); may be a difference.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct TotalsDelta {
    pub(crate) converted: i64,
    pub(crate) value_sum: f64,
    pub(crate) value_sum_squares: f64,
    pub(crate) count_sum: i64,
    pub(crate) count_sum_squares: i64,
}

impl TotalsDelta {
    fn add(&mut self, metric: UserMetric, sign: i64) {
        let s = sign as f64;
        self.converted += sign * i64::from(metric.count > 0);
        self.value_sum += s * metric.total;
        self.value_sum_squares += s * metric.total * metric.total;
        self.count_sum += sign * metric.count;
        self.count_sum_squares += sign * metric.count * metric.count;
    }
}

/// Every change to running totals a batch makes. Ordered maps: concurrent writers
/// update these shared rows in one global order, so they never deadlock.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct TotalsChanges {
    /// `(experiment, variant)` → change in users.
    pub(crate) users: BTreeMap<(String, String), i64>,
    /// experiment → change in users exposed to more than one variant.
    pub(crate) multiple: BTreeMap<String, i64>,
    /// `(experiment, variant, event)` → change in totals.
    pub(crate) totals: BTreeMap<(String, String, String), TotalsDelta>,
}

impl TotalsChanges {
    /// Replaces a user's contribution: `before` (if they were exposed) by `after`.
    pub(crate) fn replace(
        &mut self,
        experiment: &str,
        before: Option<(&FirstExposure, &UserMetrics)>,
        after: (&FirstExposure, &UserMetrics),
    ) {
        if let Some((exposure, metrics)) = before {
            self.contribute(experiment, exposure, metrics, -1);
        }
        self.contribute(experiment, after.0, after.1, 1);
    }

    /// Takes a user's contribution out (the user is erased).
    pub(crate) fn remove(
        &mut self,
        experiment: &str,
        exposure: &FirstExposure,
        metrics: &UserMetrics,
    ) {
        self.contribute(experiment, exposure, metrics, -1);
    }

    fn contribute(
        &mut self,
        experiment: &str,
        exposure: &FirstExposure,
        metrics: &UserMetrics,
        sign: i64,
    ) {
        if exposure.multiple {
            *self.multiple.entry(experiment.to_owned()).or_default() += sign;
            return;
        }
        let variant = &exposure.variant;
        *self
            .users
            .entry((experiment.to_owned(), variant.clone()))
            .or_default() += sign;
        for (event, metric) in metrics {
            self.totals
                .entry((experiment.to_owned(), variant.clone(), event.clone()))
                .or_default()
                .add(*metric, sign);
        }
    }
}

/// Running totals of one `(experiment, variant, metric, closes_hour, first_hour)`
/// of a shaped metric; may be a difference.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct PairedDelta {
    pub(crate) users: i64,
    pub(crate) sum_x: f64,
    pub(crate) sum_squares_x: f64,
    pub(crate) sum_y: f64,
    pub(crate) sum_squares_y: f64,
    pub(crate) sum_products: f64,
}

impl PairedDelta {
    fn add(&mut self, c: Contribution, sign: i64) {
        let s = sign as f64;
        self.users += sign;
        self.sum_x += s * c.x;
        self.sum_squares_x += s * c.x * c.x;
        self.sum_y += s * c.y;
        self.sum_squares_y += s * c.y * c.y;
        self.sum_products += s * c.x * c.y;
    }
}

/// Every change a batch makes to shaped metrics' totals, in one global order (see
/// [`TotalsChanges`]).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct PairedChanges(pub(crate) BTreeMap<PairedKey, PairedDelta>);

/// `(experiment, variant, metric, closes_hour, first_hour)`: the users' totals are
/// kept per hour their window closes and per hour of their first exposure, so
/// that a report over users first exposed between two whole hours reads totals.
pub(crate) type PairedKey = (String, String, String, i64, i64);

impl PairedChanges {
    /// Replaces a user's contribution: `before` (if they were exposed) by `after`.
    pub(crate) fn replace(
        &mut self,
        experiment: &str,
        plan: &ShapedPlan,
        before: Option<(&FirstExposure, &MetricRows)>,
        after: (&FirstExposure, &MetricRows),
    ) {
        if let Some((exposure, rows)) = before {
            self.contribute(experiment, plan, exposure, rows, -1);
        }
        self.contribute(experiment, plan, after.0, after.1, 1);
    }

    /// Takes a user's contribution out (the user is erased).
    pub(crate) fn remove(
        &mut self,
        experiment: &str,
        plan: &ShapedPlan,
        exposure: &FirstExposure,
        rows: &MetricRows,
    ) {
        self.contribute(experiment, plan, exposure, rows, -1);
    }

    fn contribute(
        &mut self,
        experiment: &str,
        plan: &ShapedPlan,
        exposure: &FirstExposure,
        rows: &MetricRows,
        sign: i64,
    ) {
        if exposure.multiple {
            return;
        }
        for (metric, contribution) in plan.contributions(exposure.first_ts, rows) {
            let key = (
                experiment.to_owned(),
                exposure.variant.clone(),
                metric.to_owned(),
                contribution.closes_hour,
                exposure.first_ts.div_euclid(HOUR_MS),
            );
            self.0.entry(key).or_default().add(contribution, sign);
        }
    }
}

/// The batch's exposures folded per user and experiment.
pub(crate) fn fold_exposures(fresh: &[&Event]) -> HashMap<UserKey, FirstExposure> {
    let mut firsts: HashMap<UserKey, FirstExposure> = HashMap::new();
    for event in fresh {
        let EventKind::Exposure {
            experiment,
            variant,
            dimensions,
        } = &event.kind
        else {
            continue;
        };
        let seen = FirstExposure {
            variant: variant.clone(),
            first_ts: event.ts,
            multiple: false,
            dimensions: dimensions.clone(),
        };
        firsts
            .entry((experiment.clone(), event.user.clone()))
            .and_modify(|first| first.merge(&seen))
            .or_insert(seen);
    }
    firsts
}

/// A user touched by the batch: how their exposure was, and is now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Touched {
    pub(crate) before: Option<FirstExposure>,
    pub(crate) after: FirstExposure,
}

impl Touched {
    /// Whether the aggregates must be recomputed from raw events: the user is new to
    /// the experiment or their first exposure moved earlier.
    pub(crate) fn needs_rebuild(&self) -> bool {
        self.before
            .as_ref()
            .is_none_or(|before| before.first_ts != self.after.first_ts)
    }
}

/// Merges the batch's exposures into the stored ones. `stored` holds every stored
/// exposure of the batch's exposure keys and of its track events' users.
pub(crate) fn touched_users(
    batch: HashMap<UserKey, FirstExposure>,
    stored: HashMap<UserKey, FirstExposure>,
) -> HashMap<UserKey, Touched> {
    let mut touched: HashMap<UserKey, Touched> = stored
        .into_iter()
        .map(|(key, exposure)| {
            let touched = Touched {
                before: Some(exposure.clone()),
                after: exposure,
            };
            (key, touched)
        })
        .collect();
    for (key, seen) in batch {
        touched
            .entry(key)
            .and_modify(|t| t.after.merge(&seen))
            .or_insert(Touched {
                before: None,
                after: seen,
            });
    }
    touched
}

/// A user's aggregates after the batch's track events, for users not rebuilt.
pub(crate) fn add_tracks<'t>(
    metrics: &mut UserMetrics,
    first_ts: Millis,
    tracks: impl IntoIterator<Item = (&'t str, f64, Millis)>,
) {
    for (event, value, ts) in tracks {
        if ts >= first_ts {
            let metric = metrics.entry(event.to_owned()).or_default();
            metric.total += value;
            metric.count += 1;
        }
    }
}

/// The batch's track events per user: `(event, value, ts)`.
pub(crate) fn tracks_by_user<'e>(
    fresh: &[&'e Event],
) -> HashMap<&'e str, Vec<(&'e str, f64, Millis)>> {
    let mut tracks: HashMap<&str, Vec<_>> = HashMap::new();
    for event in fresh {
        if let EventKind::Track { event: name, value } = &event.kind {
            tracks
                .entry(event.user.as_str())
                .or_default()
                .push((name.as_str(), *value, event.ts));
        }
    }
    tracks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposure(variant: &str, first_ts: Millis) -> FirstExposure {
        FirstExposure {
            variant: variant.into(),
            first_ts,
            multiple: false,
            dimensions: None,
        }
    }

    #[test]
    fn an_earlier_exposure_in_another_variant_wins_and_marks_multiple() {
        let mut first = exposure("a", 10);
        first.merge(&exposure("b", 5));
        assert_eq!(first.variant, "b");
        assert_eq!(first.first_ts, 5);
        assert!(first.multiple);
    }

    #[test]
    fn replacing_a_contribution_moves_only_the_difference() {
        let mut changes = TotalsChanges::default();
        let exposed = exposure("a", 0);
        let before: UserMetrics = [(
            "buy".to_owned(),
            UserMetric {
                total: 3.0,
                count: 1,
            },
        )]
        .into();
        let after: UserMetrics = [(
            "buy".to_owned(),
            UserMetric {
                total: 5.0,
                count: 2,
            },
        )]
        .into();
        changes.replace("exp", Some((&exposed, &before)), (&exposed, &after));
        assert_eq!(changes.users[&("exp".to_owned(), "a".to_owned())], 0);
        let delta = changes.totals[&("exp".to_owned(), "a".to_owned(), "buy".to_owned())];
        assert_eq!(
            delta,
            TotalsDelta {
                converted: 0,
                value_sum: 2.0,
                value_sum_squares: 16.0,
                count_sum: 1,
                count_sum_squares: 3
            }
        );
    }

    #[test]
    fn a_user_seen_in_two_variants_leaves_the_totals() {
        let mut changes = TotalsChanges::default();
        let before = exposure("a", 0);
        let mut after = before.clone();
        after.merge(&exposure("b", 1));
        let metrics: UserMetrics = [(
            "buy".to_owned(),
            UserMetric {
                total: 3.0,
                count: 1,
            },
        )]
        .into();
        changes.replace("exp", Some((&before, &metrics)), (&after, &metrics));
        assert_eq!(changes.users[&("exp".to_owned(), "a".to_owned())], -1);
        assert_eq!(changes.multiple["exp"], 1);
        assert_eq!(
            changes.totals[&("exp".to_owned(), "a".to_owned(), "buy".to_owned())].converted,
            -1
        );
    }
}
