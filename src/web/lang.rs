//! The dashboard's two languages: which one a request gets, and the switch on every
//! page that changes it.
//!
//! A choice made with the switch is kept in the `lang` cookie and wins; otherwise
//! `Accept-Language` decides, by its q-values. Every Chinese tag for Simplified
//! script (`zh`, `zh-CN`, `zh-Hans`, `zh-SG`) gets Simplified Chinese; Traditional
//! (`zh-TW`, `zh-HK`, `zh-Hant`) and everything else get English. Pages vary on both
//! headers, so a shared cache never hands one language to a reader of the other.

use axum::extract::{Query, State};
use axum::http::header::{ACCEPT_LANGUAGE, SET_COOKIE, VARY};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::cookies::{self, SameSite};
use super::error::{Problem, WebError};
use super::WebState;

const LANG_COOKIE: &str = "lang";
const A_YEAR_IN_SECONDS: u32 = 365 * 24 * 3600;

/// A language the dashboard is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    /// Simplified Chinese, as written in mainland China.
    ZhCn,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhCn];

    /// The BCP 47 tag: `<html lang>`, the cookie's value, the switch's query.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The language a tag asks for, if it is one of ours.
    fn of_tag(tag: &str) -> Option<Lang> {
        let tag = tag.trim().to_ascii_lowercase();
        let mut subtags = tag.split(['-', '_']);
        match subtags.next()? {
            "en" => Some(Lang::En),
            "zh" => {
                let rest: Vec<&str> = subtags.collect();
                let traditional = ["hant", "tw", "hk", "mo"];
                let simplified = rest.contains(&"hans")
                    || !rest.iter().any(|subtag| traditional.contains(subtag));
                simplified.then_some(Lang::ZhCn)
            }
            _ => None,
        }
    }

    /// The other language: where the switch leads.
    fn other(self) -> Lang {
        match self {
            Lang::En => Lang::ZhCn,
            Lang::ZhCn => Lang::En,
        }
    }

    /// Its name in itself, as the switch offers it.
    fn endonym(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::ZhCn => "简体中文",
        }
    }
}

/// The language of a request: the cookie's if it names one of ours, else the best
/// of `Accept-Language` by q-value (the first on a tie), else English.
pub(crate) fn negotiate(headers: &HeaderMap) -> Lang {
    if let Some(lang) = cookies::read(headers, LANG_COOKIE).and_then(|tag| Lang::of_tag(&tag)) {
        return lang;
    }
    let accepted = headers
        .get_all(ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|item| {
            let mut parts = item.split(';');
            let lang = Lang::of_tag(parts.next()?)?;
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            (quality > 0.0).then_some((lang, quality))
        });
    let mut best: Option<(Lang, f32)> = None;
    for (lang, quality) in accepted {
        if best.is_none_or(|(_, q)| quality > q) {
            best = Some((lang, quality));
        }
    }
    best.map_or(Lang::En, |(lang, _)| lang)
}

/// A request's language and where it was, so that a page can link to itself in
/// the other language.
#[derive(Debug, Clone)]
pub(crate) struct Locale {
    pub(crate) lang: Lang,
    /// The path and query of the page.
    here: String,
}

impl Locale {
    pub(crate) fn of(parts: &Parts) -> Self {
        Locale {
            lang: negotiate(&parts.headers),
            here: parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
        }
    }

    /// The link every page carries to read it in the other language.
    pub(crate) fn switch(&self) -> LangSwitch {
        let other = self.lang.other();
        let query = serde_urlencoded::to_string([("to", other.tag()), ("back", &self.here)])
            .unwrap_or_default();
        LangSwitch {
            href: format!("/language?{query}"),
            label: other.endonym(),
            tag: other.tag(),
        }
    }
}

/// The switch as a page shows it: a plain link, so it works without script.
pub(crate) struct LangSwitch {
    pub(crate) href: String,
    /// The other language's name, in that language.
    pub(crate) label: &'static str,
    pub(crate) tag: &'static str,
}

#[derive(Deserialize)]
pub(crate) struct SwitchQuery {
    to: String,
    #[serde(default)]
    back: String,
}

/// Remembers the chosen language for a year and goes back to the page. Only a
/// path on this site is followed back, so the link cannot send anyone elsewhere.
pub(crate) async fn switch(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(query): Query<SwitchQuery>,
) -> Result<Response, WebError> {
    let lang =
        Lang::of_tag(&query.to).ok_or_else(|| WebError::bad_request(Problem::UnknownLanguage))?;
    let local = query.back.starts_with('/') && !query.back.starts_with("//");
    let back = if local && !query.back.contains('\\') {
        query.back.as_str()
    } else {
        "/"
    };
    let cookie = cookies::set(
        LANG_COOKIE,
        lang.tag(),
        A_YEAR_IN_SECONDS,
        SameSite::Lax,
        state.cookies.secure(&headers),
    );
    Ok(([(SET_COOKIE, cookie)], Redirect::to(back)).into_response())
}

/// Every dashboard response says that it depends on the language headers.
pub(crate) async fn vary(mut response: Response) -> Response {
    response
        .headers_mut()
        .append(VARY, HeaderValue::from_static("Accept-Language, Cookie"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str, cookie: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_LANGUAGE, accept.parse().unwrap());
        if let Some(cookie) = cookie {
            headers.insert(axum::http::header::COOKIE, cookie.parse().unwrap());
        }
        headers
    }

    #[test]
    fn simplified_chinese_tags_get_chinese_and_the_rest_english() {
        for tag in [
            "zh",
            "zh-CN",
            "zh-Hans",
            "zh-SG",
            "zh-hans-cn",
            "ZH_cn",
            "zh-Hans-TW",
        ] {
            assert_eq!(negotiate(&headers(tag, None)), Lang::ZhCn, "{tag}");
        }
        for tag in ["en", "en-GB", "zh-TW", "zh-Hant", "zh-HK", "fr", "", "*"] {
            assert_eq!(negotiate(&headers(tag, None)), Lang::En, "{tag}");
        }
    }

    #[test]
    fn the_highest_q_value_wins_and_zero_refuses() {
        let cases = [
            ("en;q=0.5, zh-CN;q=0.9", Lang::ZhCn),
            ("zh-CN;q=0.4, en-US;q=0.8", Lang::En),
            ("fr, zh;q=0.7, en;q=0.3", Lang::ZhCn),
            ("zh-CN, en", Lang::ZhCn),
            ("en, zh-CN", Lang::En),
            ("zh-CN;q=0, fr", Lang::En),
            ("zh-CN;q=oops, en;q=0.1", Lang::En),
            ("zh-TW, zh-CN;q=0.5", Lang::ZhCn),
        ];
        for (accept, lang) in cases {
            assert_eq!(negotiate(&headers(accept, None)), lang, "{accept}");
        }
    }

    #[test]
    fn the_cookie_beats_the_header_unless_it_names_no_language_of_ours() {
        assert_eq!(negotiate(&headers("zh-CN", Some("lang=en"))), Lang::En);
        assert_eq!(negotiate(&headers("en", Some("lang=zh-CN"))), Lang::ZhCn);
        assert_eq!(
            negotiate(&headers("zh-CN", Some("lang=klingon"))),
            Lang::ZhCn
        );
    }

    #[test]
    fn the_switch_links_back_to_the_page_in_the_other_language() {
        let locale = Locale {
            lang: Lang::En,
            here: "/experiments/a?dimension=country".to_owned(),
        };
        let switch = locale.switch();
        assert_eq!(
            switch.href,
            "/language?to=zh-CN&back=%2Fexperiments%2Fa%3Fdimension%3Dcountry"
        );
        assert_eq!((switch.label, switch.tag), ("简体中文", "zh-CN"));
    }
}
