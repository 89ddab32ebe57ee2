//! Shaped metrics: those whose per-user value is not simply the user's events since
//! first exposure — a window picks the events, a cap bounds the value, a ratio pairs
//! two metrics — and, with CUPED, every metric of the experiment, which also needs
//! each user's value before first exposure. Ingestion keeps a [`MetricRow`] per user
//! and base metric of such an experiment, and running totals of the pairs
//! [`ShapedPlan::contributions`] makes of them. Pure: the store and the reports share
//! these rules.

use std::collections::BTreeMap;

use super::experiment::ExperimentSpec;
use super::metric::{Metric, MetricKind};
use super::Millis;

pub const HOUR_MS: Millis = 3_600_000;

/// What an experiment's shaped metrics need, when it has any.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapedPlan {
    /// The metrics with rows of their own: the experiment's shaped non-ratio metrics,
    /// every part of its ratios, and with CUPED every non-ratio metric.
    pub bases: Vec<Metric>,
    /// `(ratio, numerator, denominator)` keys.
    pub ratios: Vec<(String, String, String)>,
    /// CUPED's lookback before first exposure.
    pub lookback: Option<Millis>,
}

/// One user's raw sums for one base metric: of the events in its window (from first
/// exposure on, without one), and of those in the CUPED lookback before first
/// exposure.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MetricRow {
    pub total: f64,
    pub count: i64,
    pub pre_total: f64,
    pub pre_count: i64,
}

impl MetricRow {
    pub fn is_empty(&self) -> bool {
        *self == MetricRow::default()
    }
}

/// Per base metric key, a user's row (absent: all zero).
pub type MetricRows = BTreeMap<String, MetricRow>;

/// One user's part of a metric's totals: the hour (since the epoch) from which their
/// window is closed (0 without a window) and the pair `(x, y)` — for a ratio its
/// numerator and denominator, otherwise the value and its covariate (0 without
/// CUPED).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contribution {
    pub closes_hour: i64,
    pub x: f64,
    pub y: f64,
}

impl ShapedPlan {
    /// The plan of an experiment, `None` when every metric it reports is a plain
    /// per-event one and it has no CUPED, or it reports none. Metrics it names that are not defined are
    /// left out, as reports leave them out.
    pub fn of(spec: &ExperimentSpec, defined: &[Metric]) -> Option<ShapedPlan> {
        let find = |key: &str| defined.iter().find(|m| m.key == key);
        let reported: Vec<&Metric> = spec.metric_keys().filter_map(find).collect();
        let cuped = spec.cuped.is_some();
        if !cuped && !reported.iter().any(|m| m.is_shaped()) {
            return None;
        }
        let mut plan = ShapedPlan {
            bases: Vec::new(),
            ratios: Vec::new(),
            lookback: spec.cuped.map(|c| c.lookback_ms()),
        };
        for metric in reported {
            if plan.covers(&metric.key) && metric.kind == MetricKind::Ratio {
                continue;
            }
            if metric.kind == MetricKind::Ratio {
                let (Some(numerator), Some(denominator)) = (&metric.numerator, &metric.denominator)
                else {
                    continue;
                };
                let (Some(n), Some(d)) = (find(numerator), find(denominator)) else {
                    continue;
                };
                plan.add_base(n);
                plan.add_base(d);
                plan.ratios
                    .push((metric.key.clone(), numerator.clone(), denominator.clone()));
            } else if cuped || metric.is_shaped() {
                plan.add_base(metric);
            }
        }
        // CUPED on an experiment that reports no metric keeps nothing.
        (!plan.bases.is_empty()).then_some(plan)
    }

    fn add_base(&mut self, metric: &Metric) {
        if !self.bases.iter().any(|b| b.key == metric.key) {
            self.bases.push(metric.clone());
        }
    }

    /// Whether the plan keeps totals for `metric`.
    pub fn covers(&self, metric: &str) -> bool {
        self.bases.iter().any(|b| b.key == metric) || self.ratios.iter().any(|r| r.0 == metric)
    }

    /// How long before first exposure the rows look (0 without CUPED): a rebuild
    /// reads the user's events from then on.
    pub fn lookback(&self) -> Millis {
        self.lookback.unwrap_or(0)
    }

    /// Adds a user's track events `(event, value, ts)` to their rows, given their
    /// first exposure.
    pub fn add_tracks<'t>(
        &self,
        rows: &mut MetricRows,
        first_ts: Millis,
        tracks: impl IntoIterator<Item = (&'t str, f64, Millis)>,
    ) {
        for (event, value, ts) in tracks {
            let offset = ts - first_ts;
            for base in self.bases.iter().filter(|b| b.event == event) {
                let (start, end) = base.window.map_or((0, Millis::MAX), |w| w.bounds_ms());
                let in_window = (start..end).contains(&offset);
                let in_lookback = self.lookback.is_some_and(|l| (-l..0).contains(&offset));
                if !in_window && !in_lookback {
                    continue;
                }
                let row = rows.entry(base.key.clone()).or_default();
                if in_window {
                    row.total += value;
                    row.count += 1;
                }
                if in_lookback {
                    row.pre_total += value;
                    row.pre_count += 1;
                }
            }
        }
    }

    /// A user's contribution to each metric the plan covers, keyed by metric.
    pub fn contributions(&self, first_ts: Millis, rows: &MetricRows) -> Vec<(&str, Contribution)> {
        let empty = MetricRow::default();
        let row = |key: &str| rows.get(key).unwrap_or(&empty);
        let mut out = Vec::with_capacity(self.bases.len() + self.ratios.len());
        for base in &self.bases {
            let r = row(&base.key);
            let covariate = if self.lookback.is_some() {
                value(base, r.pre_total, r.pre_count)
            } else {
                0.0
            };
            let contribution = Contribution {
                closes_hour: closes_hour(base, first_ts),
                x: value(base, r.total, r.count),
                y: covariate,
            };
            out.push((base.key.as_str(), contribution));
        }
        for (ratio, numerator, denominator) in &self.ratios {
            let part = |key: &str| self.bases.iter().find(|b| b.key == key);
            let (Some(n), Some(d)) = (part(numerator), part(denominator)) else {
                continue;
            };
            let (rn, rd) = (row(numerator), row(denominator));
            let contribution = Contribution {
                closes_hour: closes_hour(n, first_ts).max(closes_hour(d, first_ts)),
                x: value(n, rn.total, rn.count),
                y: value(d, rd.total, rd.count),
            };
            out.push((ratio.as_str(), contribution));
        }
        out
    }
}

/// An experiment's shaped metrics being rebuilt from the raw events, after they (or
/// CUPED) changed once users were exposed. Users are rebuilt in the byte order of
/// their ids, a chunk at a time: the totals hold the users up to `after_user`,
/// whom ingestion folds as usual, and none of the others yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Backfill {
    pub experiment: String,
    /// The last user rebuilt; `None` before the first chunk.
    pub after_user: Option<String>,
    pub users_done: u64,
    /// The users exposed when the rebuild began.
    pub users_total: u64,
    pub started_at: Millis,
}

/// What one chunk of a rebuild did.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillStep {
    /// The rebuild after the chunk.
    pub backfill: Backfill,
    /// Users rebuilt in this chunk.
    pub users: u64,
    /// Whether it was the last: every user is in the totals again.
    pub finished: bool,
}

impl Backfill {
    /// Whether `user` is in the totals already (rebuilt, or folded since).
    pub fn has_rebuilt(&self, user: &str) -> bool {
        self.after_user
            .as_deref()
            .is_some_and(|after| user <= after)
    }
}

/// A user's value of a non-ratio metric from the sum and count of their events.
pub fn value(metric: &Metric, total: f64, count: i64) -> f64 {
    let raw = match metric.kind {
        MetricKind::Conversion => return f64::from(u8::from(count > 0)),
        MetricKind::Mean | MetricKind::Ratio => total,
        MetricKind::Count => count as f64,
    };
    metric.cap.map_or(raw, |cap| raw.min(cap))
}

/// The hour from which a user's window for `metric` is closed: the first whole hour
/// at or after its end (0 for a metric without a window, always closed).
pub fn closes_hour(metric: &Metric, first_ts: Millis) -> i64 {
    metric.window.map_or(0, |w| {
        let end = first_ts + w.bounds_ms().1;
        end.div_euclid(HOUR_MS) + i64::from(end.rem_euclid(HOUR_MS) != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metric::Window;

    fn metric(key: &str, kind: MetricKind, event: &str) -> Metric {
        Metric::of_event(key, kind, event)
    }

    fn plan(bases: Vec<Metric>, lookback: Option<Millis>) -> ShapedPlan {
        ShapedPlan {
            bases,
            ratios: Vec::new(),
            lookback,
        }
    }

    #[test]
    fn a_backfill_has_rebuilt_the_users_up_to_its_cursor_in_byte_order() {
        let mut backfill = Backfill {
            experiment: "e".into(),
            after_user: None,
            users_done: 0,
            users_total: 3,
            started_at: 0,
        };
        assert!(!backfill.has_rebuilt(""));
        backfill.after_user = Some("u2".into());
        assert!(backfill.has_rebuilt("u10") && backfill.has_rebuilt("u2"));
        assert!(!backfill.has_rebuilt("u3") && !backfill.has_rebuilt("u2\u{e9}"));
        assert!(
            backfill.has_rebuilt("U9"),
            "upper case sorts first in byte order"
        );
    }

    /// Regression: CUPED on an experiment without metrics made a plan with no
    /// bases, and a filtered report's statement had no columns to sum.
    #[test]
    fn cuped_without_metrics_keeps_nothing() {
        let spec: ExperimentSpec = serde_json::from_value(serde_json::json!({
            "key": "e",
            "variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.5}],
            "cuped": {"lookback_days": 7}
        }))
        .unwrap();
        assert_eq!(ShapedPlan::of(&spec, &[]), None);
    }

    #[test]
    fn only_events_inside_the_window_count() {
        let d1 = Metric {
            window: Some(Window {
                delay_hours: 24.0,
                hours: 24.0,
            }),
            ..metric("d1", MetricKind::Conversion, "open")
        };
        let p = plan(vec![d1.clone()], None);
        let first = 10 * HOUR_MS;
        let just_before = first + 24 * HOUR_MS - 1;
        let at_end = first + 48 * HOUR_MS;
        let mut rows = MetricRows::new();
        p.add_tracks(
            &mut rows,
            first,
            [("open", 1.0, just_before), ("open", 1.0, at_end)],
        );
        assert!(rows.is_empty(), "{rows:?}");
        p.add_tracks(&mut rows, first, [("open", 1.0, first + 24 * HOUR_MS)]);
        assert_eq!(rows["d1"].count, 1);
        let c = p.contributions(first, &rows);
        assert_eq!(c[0].1.x, 1.0);
        assert_eq!(c[0].1.closes_hour, 10 + 48);
        assert_eq!(closes_hour(&d1, first + 1), 10 + 48 + 1);
    }

    #[test]
    fn a_cap_bounds_each_users_value_and_the_covariate_too() {
        let revenue = Metric {
            cap: Some(100.0),
            ..metric("revenue", MetricKind::Mean, "buy")
        };
        let p = plan(vec![revenue], Some(24 * HOUR_MS));
        let first = 100 * HOUR_MS;
        let mut rows = MetricRows::new();
        let tracks = [
            ("buy", 80.0, first - HOUR_MS),
            ("buy", 70.0, first - 2 * HOUR_MS),
            ("buy", 30.0, first - 25 * HOUR_MS),
            ("buy", 60.0, first),
        ];
        p.add_tracks(&mut rows, first, tracks);
        let c = p.contributions(first, &rows)[0].1;
        assert_eq!((c.x, c.y), (60.0, 100.0));
    }

    #[test]
    fn a_ratio_pairs_its_parts_and_closes_with_the_later_one() {
        let revenue = metric("revenue", MetricKind::Mean, "buy");
        let orders = Metric {
            window: Some(Window {
                delay_hours: 0.0,
                hours: 2.0,
            }),
            ..metric("orders", MetricKind::Count, "buy")
        };
        let p = ShapedPlan {
            bases: vec![revenue, orders],
            ratios: vec![("per_order".into(), "revenue".into(), "orders".into())],
            lookback: None,
        };
        let mut rows = MetricRows::new();
        p.add_tracks(
            &mut rows,
            0,
            [("buy", 30.0, 10), ("buy", 50.0, 3 * HOUR_MS)],
        );
        let c = p.contributions(0, &rows);
        let ratio = c.iter().find(|(k, _)| *k == "per_order").unwrap().1;
        assert_eq!((ratio.x, ratio.y, ratio.closes_hour), (80.0, 1.0, 2));
    }
}
