//! Pieces every page shares: the header's session details, rendering a template
//! into a response, and the number and date formats the pages use.
//!
//! Both languages write numbers alike (12,345 and 5.1%, as CLDR has them for `en`
//! and `zh-Hans`); dates differ: `3 Dec 2026, 10:00 UTC` and `2026年12月3日 10:00 UTC`.

use askama::Template;
use axum::http::header::{self, HeaderName};
use axum::response::{Html, IntoResponse, Response};
use time::OffsetDateTime;

use super::lang::{Lang, LangSwitch};
use crate::domain::{parse_rfc3339, Millis};

/// The page header: who is signed in, what they may do, their CSRF token, and
/// the link to the page in the other language.
pub(crate) struct Chrome {
    pub(crate) user: String,
    pub(crate) role: &'static str,
    pub(crate) csrf: String,
    pub(crate) is_admin: bool,
    pub(crate) can_edit: bool,
    pub(crate) switch: LangSwitch,
}

/// Pages load only this server's own assets and may not be framed, so another site
/// cannot overlay the lifecycle buttons (clickjacking) or inject a script.
const PAGE_HEADERS: [(HeaderName, &str); 3] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    ),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "same-origin"),
];

/// Renders a page; a template that fails to render is a bug, logged and shown as 500.
pub(crate) fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (PAGE_HEADERS, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "rendering a page failed");
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be shown; the server log has the details",
            )
                .into_response()
        }
    }
}

/// A share as a percentage with one decimal: 0.0512 → "5.1%".
pub(crate) fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// A relative effect with its sign: 0.042 → "+4.2%".
pub(crate) fn signed_percent(effect: f64) -> String {
    format!("{:+.1}%", effect * 100.0)
}

/// An optional number, or an em dash when the statistics are undefined.
pub(crate) fn or_dash(value: Option<f64>, format: fn(f64) -> String) -> String {
    value.map_or_else(|| "—".to_owned(), format)
}

/// An interval of relative effects: "[-3.1%, +5.0%]".
pub(crate) fn interval(ci: Option<[f64; 2]>) -> String {
    ci.map_or_else(
        || "—".to_owned(),
        |[low, high]| format!("[{}, {}]", signed_percent(low), signed_percent(high)),
    )
}

/// A p-value with three decimals, small ones as "< 0.001".
pub(crate) fn p_value(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".to_owned()
    } else {
        format!("{p:.3}")
    }
}

/// A plain number without trailing zeros: 0.5 → "0.5", 3 → "3".
pub(crate) fn number(value: f64) -> String {
    let text = format!("{value}");
    text.strip_suffix(".0").map_or(text.clone(), str::to_owned)
}

/// A whole number with thousands separators: 12345 → "12,345".
pub(crate) fn count(value: impl Into<u64>) -> String {
    let digits = value.into().to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn utc(ms: Millis) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// A calendar day: "3 Dec 2026", "2026年12月3日".
pub(crate) fn date(lang: Lang, ms: Millis) -> String {
    let Some(t) = utc(ms) else {
        return String::new();
    };
    let (year, month, day) = (t.year(), u8::from(t.month()), t.day());
    match lang {
        Lang::En => format!("{day} {} {year}", MONTHS[usize::from(month) - 1]),
        Lang::ZhCn => format!("{year}年{month}月{day}日"),
    }
}

/// A moment to the minute, in UTC: "3 Dec 2026, 10:00 UTC", "2026年12月3日 10:00 UTC".
pub(crate) fn date_time(lang: Lang, ms: Millis) -> String {
    let Some(t) = utc(ms) else {
        return String::new();
    };
    let clock = format!("{:02}:{:02} UTC", t.hour(), t.minute());
    match lang {
        Lang::En => format!("{}, {clock}", date(lang, ms)),
        Lang::ZhCn => format!("{} {clock}", date(lang, ms)),
    }
}

/// [`date_time`] of an RFC 3339 time; a text that is not one is shown as it is.
pub(crate) fn date_time_text(lang: Lang, text: &str) -> String {
    parse_rfc3339(text).map_or_else(|| text.to_owned(), |ms| date_time(lang, ms))
}

/// Pretty JSON for definitions shown to people.
pub(crate) fn json(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(percent(0.0512), "5.1%");
        assert_eq!(signed_percent(0.042), "+4.2%");
        assert_eq!(signed_percent(-0.2), "-20.0%");
        assert_eq!(interval(Some([-0.031, 0.05])), "[-3.1%, +5.0%]");
        assert_eq!(interval(None), "—");
        assert_eq!(p_value(0.0001), "< 0.001");
        assert_eq!(p_value(0.51), "0.510");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(3.0), "3");
        assert_eq!(count(0u64), "0");
        assert_eq!(count(999u64), "999");
        assert_eq!(count(1000u64), "1,000");
        assert_eq!(count(1234567u64), "1,234,567");
    }

    #[test]
    fn dates_read_as_each_language_writes_them() {
        let ms = parse_rfc3339("2026-12-03T10:00:59Z").unwrap();
        assert_eq!(date_time(Lang::En, ms), "3 Dec 2026, 10:00 UTC");
        assert_eq!(date_time(Lang::ZhCn, ms), "2026年12月3日 10:00 UTC");
        assert_eq!(date(Lang::En, ms), "3 Dec 2026");
        assert_eq!(date(Lang::ZhCn, ms), "2026年12月3日");
        assert_eq!(date_time_text(Lang::En, "soon"), "soon");
    }
}
