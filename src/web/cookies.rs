//! Reading and setting the dashboard's cookies, and whether they are `Secure`.

use axum::http::header::COOKIE;
use axum::http::HeaderMap;

/// The value of cookie `name` in the request, when it is there and not empty.
pub(crate) fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// Whether cookies get the `Secure` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieSecurity {
    /// Plain HTTP (localhost, or TLS ends somewhere that does not say so).
    #[default]
    Plain,
    /// Always `Secure`: the server is only reached over HTTPS.
    Always,
    /// `Secure` when a trusted proxy in front says `X-Forwarded-Proto: https`.
    ForwardedProto,
}

impl CookieSecurity {
    pub(crate) fn secure(self, headers: &HeaderMap) -> bool {
        match self {
            CookieSecurity::Plain => false,
            CookieSecurity::Always => true,
            CookieSecurity::ForwardedProto => headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https")),
        }
    }
}

/// Which cross-site requests carry a cookie.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SameSite {
    /// Never: the session and the sign-in token.
    Strict,
    /// Top-level links too: the language, so a shared link opens in it.
    Lax,
}

/// A `Set-Cookie` value for the whole site; scripts never need to read ours.
pub(crate) fn set(
    name: &str,
    value: &str,
    max_age_seconds: u32,
    same_site: SameSite,
    secure: bool,
) -> String {
    let same_site = match same_site {
        SameSite::Strict => "Strict",
        SameSite::Lax => "Lax",
    };
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; HttpOnly; SameSite={same_site}; Path=/; Max-Age={max_age_seconds}{secure}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_secure_over_https_as_configured() {
        let mut https = HeaderMap::new();
        https.insert("x-forwarded-proto", "https".parse().unwrap());
        let plain = HeaderMap::new();
        assert!(!CookieSecurity::Plain.secure(&https));
        assert!(CookieSecurity::Always.secure(&plain));
        assert!(CookieSecurity::ForwardedProto.secure(&https));
        assert!(!CookieSecurity::ForwardedProto.secure(&plain));
        assert!(set("s", "v", 60, SameSite::Strict, true).ends_with("; Secure"));
        assert!(!set("s", "v", 60, SameSite::Lax, false).contains("Secure"));
    }

    #[test]
    fn a_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, "a=1; lang=zh-CN; b=".parse().unwrap());
        assert_eq!(read(&headers, "lang").as_deref(), Some("zh-CN"));
        assert_eq!(read(&headers, "b"), None);
        assert_eq!(read(&headers, "c"), None);
    }
}
