//! Results per value of a dimension kept at exposure (`?dimension=country`), or per
//! pair of values of two (`?dimension=country,device`). Segments with few users are
//! folded into "other": their statistics would only be noise.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{metric_report, settings, variant_rows, Analysis, MetricReport, MetricTotals};
use crate::domain::totals::{PairedTotals, VariantTotals};
use crate::domain::{Experiment, Metric};

/// Values with fewer users than this (all variants together) fold into "other".
pub const MIN_SEGMENT_USERS: u64 = 100;
/// At most this many values are shown on their own; the rest fold into "other".
const MAX_SEGMENTS: usize = 20;
const OTHER: &str = "other";
const NOT_CAPTURED: &str = "(not captured)";

#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    /// The dimensions as asked for, comma-separated.
    pub dimension: String,
    pub dimensions: Vec<String>,
    pub min_users: u64,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    /// The segment's values joined by " / " (or "other").
    pub value: String,
    /// One value per dimension (just "other" for the folded rest).
    pub values: Vec<String>,
    pub users: u64,
    pub metrics: Vec<MetricReport>,
}

pub use crate::domain::totals::SegmentKey;

/// One metric's per-segment per-variant totals, as the store returned them.
pub enum SegmentRows {
    /// A per-event metric's running totals.
    Running(Vec<(SegmentKey, VariantTotals)>),
    /// A shaped metric's paired totals, analysed as the report analyses them.
    Paired(Analysis, Vec<(SegmentKey, PairedTotals)>),
}

impl SegmentRows {
    /// Users per segment (for a shaped metric, pending ones too).
    fn users(&self) -> Vec<(&SegmentKey, u64)> {
        match self {
            SegmentRows::Running(rows) => rows.iter().map(|(key, t)| (key, t.users)).collect(),
            SegmentRows::Paired(_, rows) => rows
                .iter()
                .map(|(key, t)| (key, t.users + t.users_pending))
                .collect(),
        }
    }

    /// The totals of the segments reported under `label`, merged per variant.
    fn merged(&self, labels: &BTreeMap<SegmentKey, String>, label: &str) -> MetricTotals {
        let picked = |key: &SegmentKey| labels[key] == label;
        match self {
            SegmentRows::Running(rows) => {
                let mut merged: Vec<VariantTotals> = Vec::new();
                for (_, totals) in rows.iter().filter(|(key, _)| picked(key)) {
                    match merged.iter_mut().find(|m| m.variant == totals.variant) {
                        Some(into) => into.absorb(totals),
                        None => merged.push(totals.clone()),
                    }
                }
                MetricTotals::Running(merged)
            }
            SegmentRows::Paired(analysis, rows) => {
                let mut merged: Vec<PairedTotals> = Vec::new();
                for (_, totals) in rows.iter().filter(|(key, _)| picked(key)) {
                    match merged.iter_mut().find(|m| m.variant == totals.variant) {
                        Some(into) => into.absorb(totals),
                        None => merged.push(totals.clone()),
                    }
                }
                MetricTotals::Paired(*analysis, merged)
            }
        }
    }
}

/// Per metric, its per-segment per-variant totals.
pub type SegmentData = Vec<(Metric, SegmentRows)>;

pub fn build(experiment: &Experiment, dimensions: &[String], data: &SegmentData) -> Breakdown {
    let ranked = segment_labels(data);
    // Largest segments first, "other" last.
    let mut order: Vec<&str> = Vec::new();
    for (_, label) in &ranked {
        if label != OTHER && !order.contains(&label.as_str()) {
            order.push(label);
        }
    }
    if ranked.iter().any(|(_, label)| label == OTHER) {
        order.push(OTHER);
    }
    let labels: BTreeMap<SegmentKey, String> = ranked.iter().cloned().collect();
    let segments = order
        .into_iter()
        .map(|label| segment(experiment, data, &labels, label))
        .collect();
    Breakdown {
        dimension: dimensions.join(","),
        dimensions: dimensions.to_vec(),
        min_users: MIN_SEGMENT_USERS,
        segments,
    }
}

/// The label each segment is reported under, largest segments first.
fn segment_labels(data: &SegmentData) -> Vec<(SegmentKey, String)> {
    let mut users: BTreeMap<SegmentKey, u64> = BTreeMap::new();
    if let Some((_, rows)) = data.first() {
        for (value, n) in rows.users() {
            *users.entry(value.clone()).or_default() += n;
        }
    }
    let mut by_size: Vec<(SegmentKey, u64)> = users.into_iter().collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    by_size
        .into_iter()
        .enumerate()
        .map(|(rank, (value, n))| {
            let label = if n < MIN_SEGMENT_USERS || rank >= MAX_SEGMENTS {
                OTHER.to_owned()
            } else {
                segment_values(&value).join(" / ")
            };
            (value, label)
        })
        .collect()
}

fn segment(
    experiment: &Experiment,
    data: &SegmentData,
    labels: &BTreeMap<SegmentKey, String>,
    label: &str,
) -> Segment {
    let metrics: Vec<MetricReport> = data
        .iter()
        .map(|(metric, rows)| {
            let rows = variant_rows(experiment, metric, &rows.merged(labels, label));
            metric_report(metric, &rows, &settings(experiment, metric))
        })
        .collect();
    let users = metrics
        .first()
        .map_or(0, |m| m.variants.iter().map(|v| v.users).sum());
    let values = labels
        .iter()
        .find(|(_, l)| *l == label)
        .filter(|_| label != OTHER)
        .map_or_else(|| vec![OTHER.to_owned()], |(key, _)| segment_values(key));
    Segment {
        value: label.to_owned(),
        values,
        users,
        metrics,
    }
}

fn segment_values(key: &SegmentKey) -> Vec<String> {
    key.iter()
        .map(|value| value.clone().unwrap_or_else(|| NOT_CAPTURED.to_owned()))
        .collect()
}
