//! Long lists in pages of [`PAGE_SIZE`], and links to each page that keep the
//! filters the list was asked with, so that any page of a filtered view can be
//! shared as a link.

use super::text::Text;
use super::view;
use crate::domain::ValidationError;

/// How many rows a page shows.
pub(crate) const PAGE_SIZE: usize = 50;

/// Where a page stands in a list, and the links to the others.
pub(crate) struct Pagination {
    /// The page shown, from 1.
    pub(crate) page: usize,
    pub(crate) pages: usize,
    /// The rows shown, from 1, and how many there are in all.
    pub(crate) first: usize,
    pub(crate) last: usize,
    pub(crate) total: usize,
    pub(crate) previous: Option<String>,
    pub(crate) next: Option<String>,
    pub(crate) links: Vec<PageLink>,
}

pub(crate) struct PageLink {
    pub(crate) number: usize,
    pub(crate) href: String,
    pub(crate) current: bool,
}

impl Pagination {
    /// Page `asked` of a list of `total` rows (the last page when `asked` is past
    /// it), with links to `path` that carry `filters`.
    pub(crate) fn new(path: &str, filters: &[(&str, String)], asked: usize, total: usize) -> Self {
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page = asked.clamp(1, pages);
        let href = |number: usize| {
            let mut pairs: Vec<(&str, String)> = filters
                .iter()
                .filter(|(_, value)| !value.is_empty())
                .cloned()
                .collect();
            if number > 1 {
                pairs.push(("page", number.to_string()));
            }
            let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            if query.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{query}")
            }
        };
        let first = (page - 1) * PAGE_SIZE;
        Pagination {
            page,
            pages,
            first: (first + 1).min(total),
            last: (first + PAGE_SIZE).min(total),
            total,
            previous: (page > 1).then(|| href(page - 1)),
            next: (page < pages).then(|| href(page + 1)),
            links: (1..=pages)
                .map(|number| PageLink {
                    number,
                    href: href(number),
                    current: number == page,
                })
                .collect(),
        }
    }

    /// Which rows are shown: "51–100 of 200".
    pub(crate) fn shown(&self, t: &Text) -> String {
        t.rows_shown(
            view::count(self.first as u64),
            view::count(self.last as u64),
            view::count(self.total as u64),
        )
    }

    /// The rows of this page.
    pub(crate) fn take<T>(&self, rows: Vec<T>) -> Vec<T> {
        rows.into_iter()
            .skip((self.page - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .collect()
    }
}

/// The `page` of a query string: 1 when absent.
pub(crate) fn page_number(text: &str) -> Result<usize, ValidationError> {
    if text.is_empty() {
        return Ok(1);
    }
    text.parse::<usize>()
        .ok()
        .filter(|page| *page >= 1)
        .ok_or_else(|| ValidationError::single("page", PAGE_RULE))
}

const PAGE_RULE: &str = "must be a whole number, at least 1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_link_with_their_filters_and_clamp_past_the_end() {
        let filters = [
            ("status", "paused".to_owned()),
            ("environment", String::new()),
        ];
        let pagination = Pagination::new("/overview", &filters, 9, 120);
        assert_eq!((pagination.page, pagination.pages), (3, 3));
        assert_eq!((pagination.first, pagination.last), (101, 120));
        assert_eq!(
            pagination.previous.as_deref(),
            Some("/overview?status=paused&page=2")
        );
        assert_eq!(pagination.next, None);
        assert_eq!(pagination.links[0].href, "/overview?status=paused");
        assert_eq!(
            pagination.take((0..120).collect()),
            (100..120).collect::<Vec<_>>()
        );
        let empty = Pagination::new("/", &[], 1, 0);
        assert_eq!((empty.pages, empty.first, empty.last), (1, 0, 0));
        assert!(page_number("0").is_err() && page_number("x").is_err());
        assert_eq!(page_number(""), Ok(1));
    }
}
