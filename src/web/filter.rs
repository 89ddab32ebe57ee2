//! The experiment page's view of its report: which users it counts (first exposed
//! from / before, a segment per kept dimension) and what it breaks results down
//! by. A GET form whose query string is the API's report query
//! ([`ReportQuery`]), so a view is a URL to share and its CSV export is the API's
//! CSV for the same query.

use crate::control::ReportQuery;
use crate::domain::totals::UserFilter;
use crate::domain::validation::FieldProblem;
use crate::domain::{Millis, ValidationError};

use super::fields::translated;
use super::text::Text;
use super::view;

/// One option of a select.
pub(crate) struct Pick {
    pub(crate) value: String,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

/// The select that picks the segment of one kept dimension; its options' values
/// are the query's `segment=DIMENSION:VALUE`.
pub(crate) struct SegmentSelect {
    pub(crate) dimension: String,
    pub(crate) id: String,
    pub(crate) size: usize,
    pub(crate) options: Vec<Pick>,
}

/// The filter form, as filled in, and what the page says about the filter.
pub(crate) struct FilterView {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) segments: Vec<SegmentSelect>,
    /// The first and second dimension to break down by.
    pub(crate) first_dimension: Vec<Pick>,
    pub(crate) second_dimension: Vec<Pick>,
    /// "Showing users first exposed …", while a filter applies.
    pub(crate) summary: Option<String>,
    /// The page without the filter (the breakdown stays).
    pub(crate) clear_href: String,
    /// The query string of the CSV export: what the page shows.
    pub(crate) csv_query: String,
    /// Why the query was not applied, in the page's language.
    pub(crate) problems: Vec<FieldProblem>,
}

/// What a request's query asked for, as given.
pub(crate) struct Asked<'a> {
    pub(crate) key: &'a str,
    /// The raw query string, `None` without one.
    pub(crate) raw: Option<&'a str>,
    /// The query read, `None` when it could not be.
    pub(crate) query: Option<&'a ReportQuery>,
}

/// Most options a segment select shows at once.
const SEGMENT_SELECT_ROWS: usize = 4;

/// Reads a page's query string with the API's parser.
pub(crate) fn read_query(raw: Option<&str>) -> Result<ReportQuery, ValidationError> {
    let pairs = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|err| ValidationError::single("query", err.to_string()))?;
    ReportQuery::parse(pairs)
}

/// The form and summary for a page that applied `filter` (everyone when the query
/// had `problems`), with `kept` the values each kept dimension has shown.
pub(crate) fn filter_view(
    t: Text,
    asked: &Asked<'_>,
    kept: &[(String, Vec<String>)],
    filter: &UserFilter,
    problems: Vec<FieldProblem>,
) -> FilterView {
    let empty = ReportQuery::default();
    let query = asked.query.unwrap_or(&empty);
    let breakdown = query.breakdown();
    let dimensions: Vec<&String> = kept.iter().map(|(dimension, _)| dimension).collect();
    let csv_query = match asked.raw {
        Some(raw) if problems.is_empty() && !raw.is_empty() => format!("?{raw}"),
        _ => String::new(),
    };
    FilterView {
        from: query.from.clone().unwrap_or_default(),
        to: query.to.clone().unwrap_or_default(),
        segments: kept
            .iter()
            .map(|(dimension, values)| segment_select(dimension, values, &query.segments))
            .collect(),
        first_dimension: dimension_picks(t, &dimensions, breakdown.first()),
        second_dimension: dimension_picks(t, &dimensions, breakdown.get(1)),
        summary: (!filter.is_everyone()).then(|| summary(t, filter)),
        clear_href: clear_href(asked.key, &breakdown),
        csv_query,
        problems: translated(t, problems),
    }
}

/// The values seen for a dimension, most common first, then any other value the
/// query picked, so that the form shows what the page counts.
fn segment_select(dimension: &str, seen: &[String], picked: &[String]) -> SegmentSelect {
    let prefix = format!("{dimension}:");
    let mut values: Vec<&str> = seen.iter().map(String::as_str).collect();
    for value in picked.iter().filter_map(|s| s.strip_prefix(&prefix)) {
        if !values.contains(&value) {
            values.push(value);
        }
    }
    SegmentSelect {
        dimension: dimension.to_owned(),
        id: format!("segment-{dimension}"),
        size: values.len().clamp(1, SEGMENT_SELECT_ROWS),
        options: values
            .into_iter()
            .map(|value| {
                let segment = format!("{prefix}{value}");
                Pick {
                    selected: picked.contains(&segment),
                    value: segment,
                    label: value.to_owned(),
                }
            })
            .collect(),
    }
}

/// "No breakdown", then every kept dimension.
fn dimension_picks(t: Text, dimensions: &[&String], chosen: Option<&String>) -> Vec<Pick> {
    let none = Pick {
        value: String::new(),
        label: t.no_breakdown().to_owned(),
        selected: chosen.is_none(),
    };
    let kept = dimensions.iter().map(|dimension| Pick {
        value: (*dimension).clone(),
        label: (*dimension).clone(),
        selected: chosen == Some(*dimension),
    });
    std::iter::once(none).chain(kept).collect()
}

fn clear_href(key: &str, breakdown: &[String]) -> String {
    let pairs: Vec<(&str, &str)> = breakdown
        .iter()
        .map(|d| ("dimension", d.as_str()))
        .collect();
    match serde_urlencoded::to_string(pairs) {
        Ok(query) if !query.is_empty() => format!("/experiments/{key}?{query}"),
        _ => format!("/experiments/{key}"),
    }
}

/// The users a filter counts, in words.
fn summary(t: Text, filter: &UserFilter) -> String {
    let moment = |ms: Millis| moment(t, ms);
    let exposed = match (filter.from, filter.to) {
        (Some(from), Some(to)) => Some(t.exposed_between(moment(from), moment(to))),
        (Some(from), None) => Some(t.exposed_from(moment(from))),
        (None, Some(to)) => Some(t.exposed_before(moment(to))),
        (None, None) => None,
    };
    let segments = filter
        .segments
        .iter()
        .map(|(dimension, values)| t.segment_condition(dimension, values.join(t.or_values())));
    let conditions: Vec<String> = exposed.into_iter().chain(segments).collect();
    t.filter_active(conditions.join(t.condition_separator()))
}

/// A day when the time is midnight UTC (as a date in the query gives), else the
/// time to the minute.
fn moment(t: Text, ms: Millis) -> String {
    const DAY: Millis = 86_400_000;
    if ms % DAY == 0 {
        view::date(t.lang, ms)
    } else {
        view::date_time(t.lang, ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::lang::Lang;

    fn filter(query: &str) -> UserFilter {
        read_query(Some(query)).unwrap().options().unwrap().filter
    }

    #[test]
    fn a_filter_reads_as_a_sentence_in_each_language() {
        let en = Text { lang: Lang::En };
        let zh = Text { lang: Lang::ZhCn };
        let both = filter("from=2026-12-01&to=2026-12-08&segment=country:CN&segment=country:US");
        assert_eq!(
            summary(en, &both),
            "Showing users first exposed from 1 Dec 2026, before 8 Dec 2026, with country CN or US."
        );
        assert_eq!(
            summary(zh, &both),
            "仅显示在 2026年12月1日 起、2026年12月8日 之前首次曝光，country 为 CN 或 US的用户。"
        );
        let since = filter("from=2026-12-01T08:30:00Z");
        assert_eq!(
            summary(en, &since),
            "Showing users first exposed from 1 Dec 2026, 08:30 UTC."
        );
    }

    #[test]
    fn the_form_shows_what_the_query_picked() {
        let query = read_query(Some("segment=country:DE&dimension=country,device")).unwrap();
        let asked = Asked {
            key: "pricing-q4",
            raw: Some("segment=country:DE&dimension=country,device"),
            query: Some(&query),
        };
        let kept = [
            ("country".to_owned(), vec!["CN".to_owned(), "US".to_owned()]),
            ("device".to_owned(), vec![]),
        ];
        let t = Text { lang: Lang::En };
        let options = query.options().unwrap();
        let view = filter_view(t, &asked, &kept, &options.filter, Vec::new());
        let country = &view.segments[0];
        let picked: Vec<(&str, bool)> = country
            .options
            .iter()
            .map(|p| (p.value.as_str(), p.selected))
            .collect();
        assert_eq!(
            picked,
            [
                ("country:CN", false),
                ("country:US", false),
                ("country:DE", true)
            ]
        );
        assert!(view.first_dimension[1].selected && view.second_dimension[2].selected);
        assert_eq!(
            view.clear_href,
            "/experiments/pricing-q4?dimension=country&dimension=device"
        );
        assert_eq!(
            view.csv_query,
            "?segment=country:DE&dimension=country,device"
        );
    }
}
