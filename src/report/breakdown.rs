//! Results per value of a dimension kept at exposure (`?dimension=country`). Values
//! with few users are folded into "other": their statistics would only be noise.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{metric_report, ordered_totals, settings, MetricReport};
use crate::domain::totals::VariantTotals;
use crate::domain::{Experiment, Metric};

/// Values with fewer users than this (all variants together) fold into "other".
pub const MIN_SEGMENT_USERS: u64 = 100;
/// At most this many values are shown on their own; the rest fold into "other".
const MAX_SEGMENTS: usize = 20;
const OTHER: &str = "other";
const NOT_CAPTURED: &str = "(not captured)";

#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    pub dimension: String,
    pub min_users: u64,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    pub value: String,
    pub users: u64,
    pub metrics: Vec<MetricReport>,
}

/// Per metric, the per-value per-variant totals the store returned.
pub type SegmentData = Vec<(Metric, Vec<(Option<String>, VariantTotals)>)>;

pub fn build(experiment: &Experiment, dimension: &str, data: &SegmentData) -> Breakdown {
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
    let labels: BTreeMap<Option<String>, String> = ranked.iter().cloned().collect();
    let segments = order
        .into_iter()
        .map(|label| segment(experiment, data, &labels, label))
        .collect();
    Breakdown {
        dimension: dimension.to_owned(),
        min_users: MIN_SEGMENT_USERS,
        segments,
    }
}

/// The label each raw value is reported under, largest segments first.
fn segment_labels(data: &SegmentData) -> Vec<(Option<String>, String)> {
    let mut users: BTreeMap<Option<String>, u64> = BTreeMap::new();
    if let Some((_, rows)) = data.first() {
        for (value, totals) in rows {
            *users.entry(value.clone()).or_default() += totals.users;
        }
    }
    let mut by_size: Vec<(Option<String>, u64)> = users.into_iter().collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    by_size
        .into_iter()
        .enumerate()
        .map(|(rank, (value, n))| {
            let label = if n < MIN_SEGMENT_USERS || rank >= MAX_SEGMENTS {
                OTHER.to_owned()
            } else {
                value.clone().unwrap_or_else(|| NOT_CAPTURED.to_owned())
            };
            (value, label)
        })
        .collect()
}

fn segment(
    experiment: &Experiment,
    data: &SegmentData,
    labels: &BTreeMap<Option<String>, String>,
    label: &str,
) -> Segment {
    let metrics: Vec<MetricReport> = data
        .iter()
        .map(|(metric, rows)| {
            let mut merged: Vec<VariantTotals> = Vec::new();
            for (_, totals) in rows.iter().filter(|(value, _)| labels[value] == label) {
                match merged.iter_mut().find(|m| m.variant == totals.variant) {
                    Some(into) => into.absorb(totals),
                    None => merged.push(totals.clone()),
                }
            }
            let ordered = ordered_totals(experiment, &merged);
            metric_report(metric, &ordered, &settings(experiment, metric))
        })
        .collect();
    let users = metrics
        .first()
        .map_or(0, |m| m.variants.iter().map(|v| v.users).sum());
    Segment {
        value: label.to_owned(),
        users,
        metrics,
    }
}
