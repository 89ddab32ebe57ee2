//! Inline SVG charts of the cumulative relative effect by day with its confidence
//! band: drawn on the server, so they need no script and read the same in every
//! browser. This module only places points; the numbers come from the report.

use super::text::Text;
use super::view;
use crate::domain::parse_rfc3339;
use crate::report::series::SeriesPoint;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;
/// About how many gridlines the y axis gets.
const Y_TICKS: usize = 5;

/// A label at a position along one axis.
pub(crate) struct Tick {
    pub(crate) at: String,
    pub(crate) label: String,
}

/// One chart: a metric's effect for one treatment, ready for the template.
pub(crate) struct Chart {
    pub(crate) title: String,
    pub(crate) view_box: String,
    /// `points` of the CI band polygon, upper edge then lower edge reversed.
    pub(crate) band: String,
    /// `points` of the effect polyline.
    pub(crate) line: String,
    /// Where the zero-effect line is, as a y coordinate.
    pub(crate) zero_y: String,
    pub(crate) x_from: String,
    pub(crate) x_to: String,
    pub(crate) y_ticks: Vec<Tick>,
    pub(crate) x_ticks: Vec<Tick>,
    /// A sentence for screen readers summing up the last day.
    pub(crate) summary: String,
}

/// The charts of one metric, one per treatment, from its series points.
pub(crate) fn charts(t: Text, metric: &str, points: &[SeriesPoint]) -> Vec<Chart> {
    let mut variants: Vec<&str> = Vec::new();
    for point in points.iter().filter(|p| p.metric == metric) {
        if !variants.contains(&point.variant.as_str()) {
            variants.push(&point.variant);
        }
    }
    variants
        .into_iter()
        .filter_map(|variant| {
            let series: Vec<&SeriesPoint> = points
                .iter()
                .filter(|p| p.metric == metric && p.variant == variant)
                .collect();
            chart(t, metric, variant, &series)
        })
        .collect()
}

/// Days with a defined effect and interval: (day label, effect, low, high).
fn defined(t: Text, series: &[&SeriesPoint]) -> Vec<(String, f64, f64, f64)> {
    series
        .iter()
        .filter_map(|p| {
            let effect = p.rel_effect?;
            let [low, high] = p.rel_ci?;
            Some((day_of(t, &p.through), effect, low, high))
        })
        .collect()
}

/// The calendar day a point covers: its cut-off is the next midnight, so the day
/// is the one ending a millisecond before.
fn day_of(t: Text, through: &str) -> String {
    parse_rfc3339(through).map_or_else(|| through.to_owned(), |end| view::date(t.lang, end - 1))
}

fn chart(t: Text, metric: &str, variant: &str, series: &[&SeriesPoint]) -> Option<Chart> {
    let days = defined(t, series);
    let (first, last) = (days.first()?, days.last()?);
    let baseline = &series.first()?.baseline;
    let scale = Scale::fit(&days);
    let upper = days.iter().enumerate().map(|(i, d)| scale.point(i, d.3));
    let lower = days
        .iter()
        .enumerate()
        .rev()
        .map(|(i, d)| scale.point(i, d.2));
    let band = upper.chain(lower).collect::<Vec<_>>().join(" ");
    let line = days
        .iter()
        .enumerate()
        .map(|(i, d)| scale.point(i, d.1))
        .collect::<Vec<_>>()
        .join(" ");
    let summary = t.chart_summary(
        variant,
        baseline,
        metric,
        view::signed_percent(last.1),
        &last.0,
        view::signed_percent(last.2),
        view::signed_percent(last.3),
        days.len(),
    );
    Some(Chart {
        title: t.chart_title(metric, variant, baseline),
        view_box: format!("0 0 {WIDTH} {HEIGHT}"),
        band,
        line,
        zero_y: format!("{:.1}", scale.y(0.0)),
        x_from: format!("{LEFT}"),
        x_to: format!("{}", WIDTH - RIGHT),
        y_ticks: scale.y_ticks(),
        x_ticks: vec![
            Tick {
                at: format!("{:.1}", scale.x(0)),
                label: first.0.clone(),
            },
            Tick {
                at: format!("{:.1}", scale.x(days.len() - 1)),
                label: last.0.clone(),
            },
        ],
        summary,
    })
}

/// Maps day indexes and effects to SVG coordinates.
struct Scale {
    days: usize,
    low: f64,
    high: f64,
}

impl Scale {
    /// Fits every interval and the zero line, with a little room above and below.
    fn fit(days: &[(String, f64, f64, f64)]) -> Self {
        let low = days.iter().map(|d| d.2).fold(0.0, f64::min);
        let high = days.iter().map(|d| d.3).fold(0.0, f64::max);
        let pad = ((high - low) * 0.1).max(0.01);
        Self {
            days: days.len(),
            low: low - pad,
            high: high + pad,
        }
    }

    fn x(&self, day: usize) -> f64 {
        let width = WIDTH - LEFT - RIGHT;
        if self.days <= 1 {
            LEFT + width / 2.0
        } else {
            LEFT + width * day as f64 / (self.days - 1) as f64
        }
    }

    fn y(&self, effect: f64) -> f64 {
        let height = HEIGHT - TOP - BOTTOM;
        TOP + height * (self.high - effect) / (self.high - self.low)
    }

    fn point(&self, day: usize, effect: f64) -> String {
        format!("{:.1},{:.1}", self.x(day), self.y(effect))
    }

    /// Ticks at round steps (1, 2 or 5 times a power of ten) across the frame, so
    /// that zero is one of them whenever it is in view.
    fn y_ticks(&self) -> Vec<Tick> {
        let step = round_step((self.high - self.low) / Y_TICKS as f64);
        let first = (self.low / step).ceil() as i64;
        let last = (self.high / step).floor() as i64;
        (first..=last)
            .map(|i| {
                let effect = i as f64 * step;
                let label = if i == 0 {
                    "0%".to_owned()
                } else {
                    view::signed_percent(effect)
                };
                Tick {
                    at: format!("{:.1}", self.y(effect)),
                    label,
                }
            })
            .collect()
    }
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `raw`.
fn round_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(day: &str, effect: f64, ci: [f64; 2]) -> SeriesPoint {
        SeriesPoint {
            through: format!("{day}T00:00:00Z"),
            metric: "purchase".to_owned(),
            variant: "premium".to_owned(),
            baseline: "control".to_owned(),
            users: 100,
            baseline_users: 100,
            rel_effect: Some(effect),
            rel_ci: Some(ci),
            p_value: None,
            seq_rel_ci: None,
            seq_p_value: None,
        }
    }

    #[test]
    fn the_band_surrounds_the_line_and_zero_is_inside_the_frame() {
        let points = [
            point("2026-11-20", -0.1, [-0.3, 0.1]),
            point("2026-11-21", -0.2, [-0.3, -0.1]),
        ];
        let charts = charts(Text::default(), "purchase", &points);
        assert_eq!(charts.len(), 1);
        let chart = &charts[0];
        assert_eq!(chart.line.split(' ').count(), 2);
        assert_eq!(chart.band.split(' ').count(), 4);
        let zero: f64 = chart.zero_y.parse().unwrap();
        assert!(zero > TOP && zero < HEIGHT - BOTTOM);
        assert_eq!(chart.x_ticks[0].label, "19 Nov 2026");
        assert_eq!(chart.x_ticks[1].label, "20 Nov 2026");
        assert!(chart.summary.contains("-20.0%"));
        let labels: Vec<&str> = chart.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["-30.0%", "-20.0%", "-10.0%", "0%", "+10.0%"]);
    }

    #[test]
    fn a_series_without_defined_effects_draws_no_chart() {
        let mut empty = point("2026-11-20", 0.0, [0.0, 0.0]);
        empty.rel_effect = None;
        assert!(charts(Text::default(), "purchase", &[empty]).is_empty());
    }
}
