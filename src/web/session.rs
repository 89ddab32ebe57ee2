//! Signing in and out, the session cookie and CSRF tokens.
//!
//! Signing in with a key opens a server-side session ([`crate::control::Sessions`]):
//! the cookie (HttpOnly, SameSite=Strict, `Secure` over HTTPS) carries the
//! session's random id, never the key, and the database keeps only its hash, so
//! every server of a cluster accepts it and signing out or revoking the key ends it
//! everywhere. Each form carries a CSRF token, HMAC-SHA256 of a fixed label under
//! the session's id: only a page that could read the cookie can have it. The
//! sign-in form, before any session, uses a double-submit cookie instead.

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use rand::Rng;

use super::cookies::{self, SameSite};
use super::error::WebError;
use super::fields::Fields;
use super::lang::{LangSwitch, Locale};
use super::text::Text;
use super::view::{render, Chrome};
use super::WebState;
use crate::control::sessions::SESSION_LIFETIME_SECONDS;
use crate::control::ControlErrorKind;
use crate::domain::webhook::signature;
use crate::domain::{hex, Actor, ApiKey, Role};

const SESSION_COOKIE: &str = "sluice_session";
const SIGN_IN_COOKIE: &str = "sluice_signin";
const CSRF_LABEL: &[u8] = b"sluice dashboard csrf v1";
/// The form field every POST form carries its token in.
pub(crate) const CSRF_FIELD: &str = "csrf";

/// The signed-in key and the CSRF token its forms carry.
pub(crate) struct Session {
    pub(crate) key: ApiKey,
    pub(crate) csrf: String,
    /// The session's id, as the cookie carries it.
    secret: String,
    locale: Locale,
}

impl Session {
    /// Fails with a 403 page unless the key's role grants `role`.
    pub(crate) fn require(&self, role: Role) -> Result<(), WebError> {
        Ok(self.key.require(role)?)
    }

    /// Who the audit log records.
    pub(crate) fn actor(&self) -> Actor {
        Actor::Key(self.key.name.clone())
    }

    /// Whether the key may do what `role` allows; decides which controls a page shows.
    pub(crate) fn may(&self, role: Role) -> bool {
        self.key.role.grants(role)
    }

    /// The messages of the language this request is read in.
    pub(crate) fn text(&self) -> Text {
        Text {
            lang: self.locale.lang,
        }
    }

    /// What every page's header shows about the session.
    pub(crate) fn chrome(&self) -> Chrome {
        Chrome {
            user: self.key.name.clone(),
            role: self.text().role_of(self.key.role),
            csrf: self.csrf.clone(),
            is_admin: self.may(Role::Admin),
            can_edit: self.may(Role::Editor),
            switch: self.locale.switch(),
        }
    }
}

impl FromRequestParts<WebState> for Session {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, WebError> {
        let secret = cookies::read(&parts.headers, SESSION_COOKIE).ok_or(WebError::SignIn)?;
        let key = match state.control.sessions().find(&secret).await {
            Ok(key) => key,
            Err(err) if err.kind() == ControlErrorKind::NoSession => return Err(WebError::SignIn),
            Err(err) => return Err(err.into()),
        };
        Ok(Session {
            key,
            csrf: csrf_token(&secret),
            secret,
            locale: Locale::of(parts),
        })
    }
}

/// A POST form from a signed-in page whose CSRF token matched: nothing reaches a
/// handler taking this unless the token is right.
pub(crate) struct SignedForm {
    pub(crate) session: Session,
    pub(crate) fields: Fields,
}

impl FromRequest<WebState> for SignedForm {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &WebState) -> Result<Self, WebError> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let request = Request::from_parts(parts, body);
        let fields = Fields::from_request(request, state).await?;
        if !tokens_match(fields.get(CSRF_FIELD), &session.csrf) {
            return Err(WebError::BadCsrf);
        }
        Ok(SignedForm { session, fields })
    }
}

/// The CSRF token of a session: HMAC-SHA256 of a fixed label keyed by its id,
/// computed as webhooks sign their bodies.
fn csrf_token(secret: &str) -> String {
    signature(secret, CSRF_LABEL)
}

/// Compares in time independent of where the strings differ.
fn tokens_match(given: &str, expected: &str) -> bool {
    !expected.is_empty()
        && given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    t: Text,
    switch: LangSwitch,
    csrf: String,
    error: Option<&'static str>,
}

pub(crate) async fn sign_in_page(State(state): State<WebState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let secure = state.cookies.secure(&parts.headers);
    sign_in_form(&Locale::of(&parts), None, StatusCode::OK, secure)
}

fn sign_in_form(
    locale: &Locale,
    error: Option<fn(Text) -> &'static str>,
    status: StatusCode,
    secure: bool,
) -> Response {
    let mut random = [0u8; 16];
    rand::rng().fill(&mut random);
    let csrf = hex(&random);
    let cookie = cookies::set(SIGN_IN_COOKIE, &csrf, 600, SameSite::Strict, secure);
    let t = Text { lang: locale.lang };
    let page = render(&SignInPage {
        t,
        switch: locale.switch(),
        csrf,
        error: error.map(|message| message(t)),
    });
    (status, [(SET_COOKIE, cookie)], page).into_response()
}

pub(crate) async fn sign_in(State(state): State<WebState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let expected = cookies::read(&parts.headers, SIGN_IN_COOKIE).unwrap_or_default();
    let secure = state.cookies.secure(&parts.headers);
    let locale = Locale::of(&parts);
    let request = Request::from_parts(parts, body);
    let fields = match Fields::from_request(request, &state).await {
        Ok(fields) => fields,
        Err(err) => return err.into_response(),
    };
    if !tokens_match(fields.get(CSRF_FIELD), &expected) {
        return WebError::BadCsrf.into_response();
    }
    let unusable = |message: fn(Text) -> &'static str| {
        sign_in_form(&locale, Some(message), StatusCode::UNAUTHORIZED, secure)
    };
    match state.control.open_session(fields.get("key").trim()).await {
        Ok((session, _)) => {
            let cookie = cookies::set(
                SESSION_COOKIE,
                &session,
                SESSION_LIFETIME_SECONDS,
                SameSite::Strict,
                secure,
            );
            ([(SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Err(err) => match err.kind() {
            ControlErrorKind::Forbidden => unusable(Text::sdk_keys_cannot_sign_in),
            ControlErrorKind::UnknownKey => unusable(Text::unknown_key),
            _ => WebError::from(err).into_response(),
        },
    }
}

/// Ends the session on every server and clears its cookie; the form's token
/// proves the request came from a page.
pub(crate) async fn sign_out(State(state): State<WebState>, form: SignedForm) -> Response {
    if let Err(err) = state.control.sessions().close(&form.session.secret).await {
        return WebError::from(err).into_response();
    }
    let cookie = cookies::set(SESSION_COOKIE, "", 0, SameSite::Strict, false);
    ([(SET_COOKIE, cookie)], Redirect::to("/signin")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_differ_by_key_and_compare_exactly() {
        let a = csrf_token("sk_admin_a");
        assert_eq!(a, csrf_token("sk_admin_a"));
        assert_ne!(a, csrf_token("sk_admin_b"));
        assert!(tokens_match(&a, &a));
        assert!(!tokens_match("", &a));
        assert!(!tokens_match(&a[1..], &a));
        assert!(!tokens_match("", ""));
    }
}
