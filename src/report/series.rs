//! Daily time series: for each day, the cumulative effect and its intervals over the
//! users exposed by the end of that day and their events up to then — what a chart
//! of "how the result evolved" needs. Computed by one sweep over the users' events.

use std::collections::HashMap;

use serde::Serialize;

use super::arms::{Analysis, VariantArm};
use crate::domain::shaped::{MetricRows, ShapedPlan, HOUR_MS};
use crate::domain::totals::{ExposedUser, PairedTotals, TrackFact, UserTrack, VariantTotals};
use crate::domain::{format_millis, Metric, Millis};
use crate::stats::Settings;

const DAY_MS: Millis = 24 * 3600 * 1000;

#[derive(Debug, Clone, Serialize)]
pub struct SeriesPoint {
    /// The day's end (UTC), RFC 3339: the data cut-off of this point.
    pub through: String,
    pub metric: String,
    pub variant: String,
    pub baseline: String,
    pub users: u64,
    pub baseline_users: u64,
    pub rel_effect: Option<f64>,
    pub rel_ci: Option<[f64; 2]>,
    pub p_value: Option<f64>,
    pub seq_rel_ci: Option<[f64; 2]>,
    pub seq_p_value: Option<f64>,
}

/// Running per-user values and per-variant totals of one metric.
struct Sweep<'a> {
    variants: &'a [String],
    totals: Vec<VariantTotals>,
    variant_of: HashMap<&'a str, usize>,
    per_user: HashMap<&'a str, (f64, f64)>,
}

impl<'a> Sweep<'a> {
    fn new(variants: &'a [String]) -> Self {
        let totals = variants
            .iter()
            .map(|v| VariantTotals {
                variant: v.clone(),
                ..VariantTotals::default()
            })
            .collect();
        Self {
            variants,
            totals,
            variant_of: HashMap::new(),
            per_user: HashMap::new(),
        }
    }

    fn expose(&mut self, user: &'a ExposedUser) {
        if let Some(i) = self.variants.iter().position(|v| *v == user.variant) {
            self.variant_of.insert(user.user.as_str(), i);
            self.totals[i].users += 1;
        }
    }

    fn track(&mut self, fact: &'a TrackFact) {
        let Some(&i) = self.variant_of.get(fact.user.as_str()) else {
            return;
        };
        let (total, count) = self.per_user.entry(fact.user.as_str()).or_default();
        let t = &mut self.totals[i];
        if *count == 0.0 {
            t.converted += 1;
        }
        t.value_sum += fact.value;
        t.value_sum_squares += (*total + fact.value).powi(2) - total.powi(2);
        t.count_sum += 1.0;
        t.count_sum_squares += (*count + 1.0).powi(2) - count.powi(2);
        *total += fact.value;
        *count += 1.0;
    }
}

/// The daily series of one metric. `users` are ordered by first exposure and
/// `tracks` by time, as the store returns them.
pub fn daily(
    metric: &Metric,
    variants: &[String],
    users: &[ExposedUser],
    tracks: &[TrackFact],
    settings: &Settings,
) -> Vec<SeriesPoint> {
    let mut sweep = Sweep::new(variants);
    let (mut next_user, mut next_track) = (0, 0);
    let mut points = Vec::new();
    for day_end in day_ends(users, tracks.last().map(|t| t.ts)) {
        while next_user < users.len() && users[next_user].first_ts < day_end {
            sweep.expose(&users[next_user]);
            next_user += 1;
        }
        while next_track < tracks.len() && tracks[next_track].ts < day_end {
            sweep.track(&tracks[next_track]);
            next_track += 1;
        }
        points.extend(day_points(metric, &sweep.totals, day_end, settings));
    }
    points
}

/// The end of each day (UTC) from the first user's first exposure through the last
/// event: the cut-offs of a series' points. `users` are ordered by first exposure.
fn day_ends(users: &[ExposedUser], last_track: Option<Millis>) -> impl Iterator<Item = Millis> {
    let first_day = users.first().map(|u| u.first_ts.div_euclid(DAY_MS));
    let last_ts = last_track
        .unwrap_or(0)
        .max(users.last().map_or(0, |u| u.first_ts));
    let last_day = last_ts.div_euclid(DAY_MS);
    first_day
        .into_iter()
        .flat_map(move |first| (first..=last_day).map(|day| (day + 1) * DAY_MS))
}

fn day_points(
    metric: &Metric,
    totals: &[VariantTotals],
    day_end: Millis,
    settings: &Settings,
) -> Vec<SeriesPoint> {
    let arms: Vec<(&str, VariantArm)> = totals
        .iter()
        .map(|t| (t.variant.as_str(), VariantArm::running(metric.kind, t)))
        .collect();
    compare_arms(&metric.key, &arms, day_end, settings)
}

/// Each treatment against the control (the first arm), as of `day_end`.
fn compare_arms(
    metric: &str,
    arms: &[(&str, VariantArm)],
    day_end: Millis,
    settings: &Settings,
) -> Vec<SeriesPoint> {
    let Some(((baseline, control), treatments)) = arms.split_first() else {
        return Vec::new();
    };
    treatments
        .iter()
        .map(|(variant, treatment)| {
            let (c, _) = control.compare(*treatment, settings);
            SeriesPoint {
                through: format_millis(day_end),
                metric: metric.to_owned(),
                variant: (*variant).to_owned(),
                baseline: (*baseline).to_owned(),
                users: treatment.users(),
                baseline_users: control.users(),
                rel_effect: c.rel_effect,
                rel_ci: c.rel_ci,
                p_value: c.p_value,
                seq_rel_ci: c.seq_rel_ci,
                seq_p_value: c.seq_p_value,
            }
        })
        .collect()
}

/// A shaped metric of the series: how it is analysed, with its settings.
pub struct ShapedSeries<'a> {
    pub metric: &'a Metric,
    pub analysis: Analysis,
    pub settings: Settings,
}

/// An exposed user of the shaped series: their variant, first exposure, rows so
/// far and how many of their tracks are in them.
struct ShapedUser<'a> {
    variant: usize,
    first_ts: Millis,
    rows: MetricRows,
    tracks: &'a [UserTrack],
    applied: usize,
}

/// The daily series of an experiment's shaped metrics, by the rules of its `plan`:
/// each day, over the users exposed by its end, their values from the events up to
/// then, counting (as a report on that day would) only those whose window had
/// closed — by then, and never later than `now`. `users` are ordered by first
/// exposure; `tracks` are every base metric's events of theirs from the CUPED
/// lookback on, ordered by time.
pub fn shaped_daily(
    plan: &ShapedPlan,
    metrics: &[ShapedSeries<'_>],
    variants: &[String],
    users: &[ExposedUser],
    tracks: &[UserTrack],
    now: Millis,
) -> Vec<SeriesPoint> {
    let mut of_user: HashMap<&str, Vec<UserTrack>> = HashMap::new();
    for track in tracks {
        of_user.entry(&track.user).or_default().push(track.clone());
    }
    let mut exposed: Vec<ShapedUser> = Vec::with_capacity(users.len());
    let mut next_user = 0;
    let mut points = Vec::new();
    for day_end in day_ends(users, tracks.last().map(|t| t.ts)) {
        while next_user < users.len() && users[next_user].first_ts < day_end {
            let user = &users[next_user];
            if let Some(variant) = variants.iter().position(|v| *v == user.variant) {
                exposed.push(ShapedUser {
                    variant,
                    first_ts: user.first_ts,
                    rows: MetricRows::new(),
                    tracks: of_user.get(user.user.as_str()).map_or(&[], Vec::as_slice),
                    applied: 0,
                });
            }
            next_user += 1;
        }
        let mut totals: Vec<Vec<PairedTotals>> = metrics
            .iter()
            .map(|_| variants.iter().map(|v| PairedTotals::empty(v)).collect())
            .collect();
        for user in &mut exposed {
            let due = user.tracks[user.applied..]
                .iter()
                .take_while(|t| t.ts < day_end);
            let due: Vec<(&str, f64, Millis)> =
                due.map(|t| (t.event.as_str(), t.value, t.ts)).collect();
            user.applied += due.len();
            plan.add_tracks(&mut user.rows, user.first_ts, due);
            add_contributions(plan, metrics, user, day_end.min(now), &mut totals);
        }
        for (series, totals) in metrics.iter().zip(&totals) {
            let arms: Vec<(&str, VariantArm)> = totals
                .iter()
                .map(|t| (t.variant.as_str(), VariantArm::paired(series.analysis, t)))
                .collect();
            points.extend(compare_arms(
                &series.metric.key,
                &arms,
                day_end,
                &series.settings,
            ));
        }
    }
    points
}

/// Adds a user's contribution to each metric's totals as of `at`: counted once
/// their window has closed, pending until then.
fn add_contributions(
    plan: &ShapedPlan,
    metrics: &[ShapedSeries<'_>],
    user: &ShapedUser<'_>,
    at: Millis,
    totals: &mut [Vec<PairedTotals>],
) {
    let closed_through = at.div_euclid(HOUR_MS);
    for (key, c) in plan.contributions(user.first_ts, &user.rows) {
        let Some(m) = metrics.iter().position(|s| s.metric.key == key) else {
            continue;
        };
        let t = &mut totals[m][user.variant];
        if c.closes_hour > closed_through {
            t.users_pending += 1;
            continue;
        }
        t.users += 1;
        t.sum_x += c.x;
        t.sum_squares_x += c.x * c.x;
        t.sum_y += c.y;
        t.sum_squares_y += c.y * c.y;
        t.sum_products += c.x * c.y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MetricKind;

    fn user(name: &str, variant: &str, day: i64) -> ExposedUser {
        ExposedUser {
            user: name.into(),
            variant: variant.into(),
            first_ts: day * DAY_MS + 1,
        }
    }

    fn fact(name: &str, day: i64, value: f64) -> TrackFact {
        TrackFact {
            user: name.into(),
            ts: day * DAY_MS + 2,
            value,
        }
    }

    #[test]
    fn each_day_accumulates_users_and_their_values_so_far() {
        let metric = Metric::of_event("revenue", MetricKind::Mean, "purchase");
        let variants = vec!["a".to_owned(), "b".to_owned()];
        let users = [
            user("u1", "a", 0),
            user("u2", "b", 0),
            user("u3", "a", 1),
            user("u4", "b", 1),
        ];
        let tracks = [
            fact("u1", 0, 2.0),
            fact("u2", 1, 3.0),
            fact("u1", 2, 2.0),
            fact("u4", 2, 5.0),
        ];
        let points = daily(&metric, &variants, &users, &tracks, &Settings::default());
        let days: Vec<_> = points.iter().map(|p| (p.baseline_users, p.users)).collect();
        assert_eq!(days, [(1, 1), (2, 2), (2, 2)]);
        assert_eq!(points[0].through, "1970-01-02T00:00:00Z");
        // Day 2: a = {u1: 4, u3: 0} -> mean 2; b = {u2: 3, u4: 5} -> mean 4: +100%.
        assert!((points[2].rel_effect.unwrap() - 1.0).abs() < 1e-12);
    }
}
