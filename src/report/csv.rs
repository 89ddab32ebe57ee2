//! The report as CSV: one row per metric and variant; comparison columns are empty
//! on the control's rows and wherever a number is undefined. Every row states the
//! filter the report counts users by (`from`, `to`, `segments`: empty for everyone);
//! a breakdown follows the whole report's rows, one row per segment, metric and
//! variant, named in `breakdown` (the dimensions) and `segment` (their values).

use std::fmt::Write;

use super::{ComparisonReport, FilterEcho, MetricReport, Report};

const HEADER: &str = "metric,kind,variant,users,sum,sum_squares,mean,stddev,\
abs_effect,abs_ci_low,abs_ci_high,abs_p_value,rel_effect,rel_ci_low,rel_ci_high,p_value,\
adjusted_p_value,seq_rel_ci_low,seq_rel_ci_high,seq_p_value,chance_to_win,risk,significant,\
from,to,segments,breakdown,segment";

fn number(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn interval(value: Option<[f64; 2]>) -> [String; 2] {
    value.map_or([String::new(), String::new()], |[lo, hi]| {
        [lo.to_string(), hi.to_string()]
    })
}

/// Quotes a field when CSV needs it (RFC 4180).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn comparison_columns(c: &ComparisonReport) -> Vec<String> {
    let [abs_lo, abs_hi] = interval(c.abs_ci);
    let [rel_lo, rel_hi] = interval(c.rel_ci);
    let [seq_lo, seq_hi] = interval(c.seq_rel_ci);
    vec![
        number(c.abs_effect),
        abs_lo,
        abs_hi,
        number(c.abs_p_value),
        number(c.rel_effect),
        rel_lo,
        rel_hi,
        number(c.p_value),
        number(c.adjusted_p_value),
        seq_lo,
        seq_hi,
        number(c.seq_p_value),
        number(c.chance_to_win),
        number(c.risk),
        c.significant.to_string(),
    ]
}

pub fn to_csv(report: &Report) -> String {
    let filter = filter_columns(report.filter.as_ref());
    let mut out = String::from(HEADER);
    out.push('\n');
    for metric in &report.metrics {
        metric_rows(&mut out, metric, &filter, [""; 2]);
    }
    if let Some(breakdown) = &report.breakdown {
        for segment in &breakdown.segments {
            for metric in &segment.metrics {
                let place = [breakdown.dimension.as_str(), segment.value.as_str()];
                metric_rows(&mut out, metric, &filter, place);
            }
        }
    }
    out
}

/// `from`, `to` and the segments (`DIMENSION:VALUE` joined by `;`) of a filter.
fn filter_columns(filter: Option<&FilterEcho>) -> [String; 3] {
    let Some(filter) = filter else {
        return Default::default();
    };
    [
        filter.from.clone().unwrap_or_default(),
        filter.to.clone().unwrap_or_default(),
        field(&filter.segments.join(";")),
    ]
}

/// A metric's rows, one per variant; `place` is the breakdown and segment they
/// belong to (empty for the whole report).
fn metric_rows(out: &mut String, metric: &MetricReport, filter: &[String; 3], place: [&str; 2]) {
    let kind = serde_json::to_value(metric.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    for variant in &metric.variants {
        let mut columns = vec![
            field(&metric.metric),
            kind.clone(),
            field(&variant.variant),
            variant.users.to_string(),
            variant.sum.to_string(),
            variant.sum_squares.to_string(),
            number(variant.mean),
            number(variant.stddev),
        ];
        match metric
            .comparisons
            .iter()
            .find(|c| c.variant == variant.variant)
        {
            Some(c) => columns.extend(comparison_columns(c)),
            None => columns.extend(std::iter::repeat_n(String::new(), 15)),
        }
        columns.extend(filter.iter().cloned());
        columns.extend(place.map(field));
        let _ = writeln!(out, "{}", columns.join(","));
    }
}
