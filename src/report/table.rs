//! The report as a plain-text table that reads in an 80-column terminal.

use std::fmt::Write;

use super::Report;

fn percent(value: Option<f64>) -> String {
    value.map_or("-".to_owned(), |v| format!("{:+.1}%", v * 100.0))
}

fn ci(value: Option<[f64; 2]>) -> String {
    value.map_or(String::new(), |[lo, hi]| {
        format!("[{}, {}]", percent(Some(lo)), percent(Some(hi)))
    })
}

fn plain(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".to_owned(), |v| format!("{v:.decimals$}"))
}

pub fn to_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({}) - health {}",
        report.experiment,
        report.status,
        report.health.as_str().to_uppercase()
    );
    let users: Vec<String> = report
        .srm
        .users
        .iter()
        .map(|(variant, n)| format!("{variant} {n}"))
        .collect();
    let _ = writeln!(out, "users: {}", users.join(", "));
    let _ = writeln!(
        out,
        "sample ratio: p = {} {}; in several variants: {}",
        plain(report.srm.p_value, 4),
        if report.srm.ok { "ok" } else { "MISMATCH" },
        report.multiple_exposures
    );
    for metric in &report.metrics {
        let _ = writeln!(out);
        let kind = serde_json::to_value(metric.kind).unwrap_or_default();
        let _ = writeln!(out, "{} ({})", metric.metric, kind.as_str().unwrap_or(""));
        let _ = writeln!(
            out,
            "  {:<14} {:>9} {:>9} {:>24} {:>7} {:>5}",
            "variant", "users", "mean", "lift [95% CI]", "p", "win"
        );
        for variant in &metric.variants {
            let comparison = metric
                .comparisons
                .iter()
                .find(|c| c.variant == variant.variant);
            let (lift, p, win) = comparison.map_or_else(
                || (String::new(), String::new(), String::new()),
                |c| {
                    let mark = if c.significant { "*" } else { "" };
                    (
                        format!("{} {}", percent(c.rel_effect), ci(c.rel_ci)),
                        format!("{}{mark}", plain(c.adjusted_p_value.or(c.p_value), 4)),
                        c.chance_to_win
                            .map_or("-".to_owned(), |w| format!("{:.0}%", w * 100.0)),
                    )
                },
            );
            let _ = writeln!(
                out,
                "  {:<14} {:>9} {:>9} {:>24} {:>7} {:>5}",
                truncate(&variant.variant, 14),
                variant.users,
                plain(variant.mean, 4),
                lift,
                p,
                win
            );
        }
    }
    if !report.guardrails.is_empty() {
        let _ = writeln!(out, "\nguardrails");
        for g in &report.guardrails {
            let drop = g
                .observed_drop
                .map_or("-".to_owned(), |d| format!("{:.1}%", d * 100.0));
            let _ = writeln!(
                out,
                "  {:<6} {} / {}: drop {drop}, always-valid p = {}",
                g.status.as_str().to_uppercase(),
                g.metric,
                g.variant,
                plain(g.p_value, 4)
            );
        }
    }
    let _ = writeln!(out, "\n* significant at alpha = {}", report.alpha);
    out
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let kept: String = text.chars().take(width - 1).collect();
        format!("{kept}~")
    }
}
