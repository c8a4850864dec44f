//! Who is asking and in which language: the console's session cookie (an opaque
//! id; the session lives in the database), its CSRF token, the language cookie,
//! the same-origin check on every form post, the security headers of every page,
//! and signing in and out.

use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::{bad_form, failure, forbidden, html, i18n, message, pages};
use crate::core::{CoreError, SESSION_MAX_MS};
use crate::http::state::AppState;
use otpgw_rules::codes;
use otpgw_rules::records::ApiKey;
use otpgw_rules::vocab::{Language, Role};

const SESSION_COOKIE: &str = "otpgw_console";
pub(super) const LANG_COOKIE: &str = "otpgw_lang";
const CSS: &str = include_str!("console.css");

/// The page language: `?lang=` (remembered in a cookie), else the cookie, else
/// `service.language`.
#[derive(Clone, Copy)]
pub struct Lang {
    pub lang: Language,
    /// Set when `?lang=` chose it: the response remembers it.
    pub(super) remember: bool,
}

impl Lang {
    fn from_parts(parts: &Parts, state: &AppState) -> Self {
        let parse = |v: &str| match v {
            "fa" => Some(Language::Fa),
            "en" => Some(Language::En),
            _ => None,
        };
        let query = parts.uri.query().unwrap_or("");
        let from_query = query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("lang="))
            .find_map(parse);
        if let Some(lang) = from_query {
            return Self {
                lang,
                remember: true,
            };
        }
        let lang = cookie(&parts.headers, LANG_COOKIE)
            .and_then(parse)
            .unwrap_or(state.core.language());
        Self {
            lang,
            remember: false,
        }
    }

    pub(super) fn texts(self) -> &'static i18n::Texts {
        i18n::texts(self.lang)
    }
}

impl FromRequestParts<AppState> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts, state))
    }
}

/// A signed-in clerk: the session's API key and CSRF token.
pub struct Clerk {
    pub key: ApiKey,
    pub csrf: String,
    pub(super) session_id: String,
    pub lang: Lang,
}

impl Clerk {
    pub(super) fn is_admin(&self) -> bool {
        self.key.role == Role::Admin
    }

    /// The refusal of a form whose CSRF token is not this session's, if it is not.
    pub(super) fn refuse_csrf(&self, token: &str) -> Option<Response> {
        if codes::hashes_equal(token, &self.csrf) {
            return None;
        }
        tracing::warn!(
            api_key_id = self.key.id,
            "console form refused: bad CSRF token"
        );
        Some(message(
            self.lang,
            StatusCode::FORBIDDEN,
            self.lang.texts().csrf_failed,
            Some(self),
        ))
    }

    pub(super) fn refuse_non_admin(&self) -> Option<Response> {
        (!self.is_admin()).then(|| forbidden(self))
    }
}

impl FromRequestParts<AppState> for Clerk {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let lang = Lang::from_parts(parts, state);
        let session_id = cookie(&parts.headers, SESSION_COOKIE)
            .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned);
        let session = match &session_id {
            Some(id) => state
                .core
                .access
                .session(id)
                .await
                .map_err(|e| failure(lang, e))?,
            None => None,
        };
        match (session, session_id) {
            (Some(s), Some(session_id)) => Ok(Self {
                key: s.key,
                csrf: s.csrf,
                session_id,
                lang,
            }),
            // A page view goes to the sign-in form; a form post is told why it failed.
            // (keeping a language chosen in the URL).
            _ if parts.method == Method::GET => Err(Redirect::to(if lang.remember {
                match lang.lang {
                    Language::Fa => "/console/signin?lang=fa",
                    Language::En => "/console/signin?lang=en",
                }
            } else {
                "/console/signin"
            })
            .into_response()),
            _ => Err(message(
                lang,
                StatusCode::UNAUTHORIZED,
                lang.texts().session_ended,
                None,
            )),
        }
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Behind a TLS-terminating proxy the session cookie is marked `Secure`; otpgw's own
/// listener speaks plain HTTP, where a `Secure` cookie would never come back.
fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn session_cookie(value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A cross-site form post carries the other site's `Origin`: refuse it before any
/// handler runs (SameSite=Strict already keeps the cookie off it; this also covers
/// the sign-in form, which has no session yet).
pub(super) async fn same_origin(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.method() == Method::POST {
        let headers = req.headers();
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let allowed = [format!("http://{host}"), format!("https://{host}")];
            if !allowed.iter().any(|a| a == origin) {
                tracing::warn!("console post refused: cross-origin");
                return (StatusCode::FORBIDDEN, "cross-origin request refused").into_response();
            }
        }
    }
    next.run(req).await
}

/// Console pages hold personal data: never cached, never framed, no referrer to
/// other sites, no script, no third-party anything.
pub(super) async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin`, not `no-referrer`: with no-referrer Chromium sends `Origin: null`
    // on form posts, which `same_origin` must refuse. Console URLs hold no secrets.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

pub(super) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

pub(super) async fn sign_in_page(lang: Lang) -> Response {
    html(lang, StatusCode::OK, pages::sign_in(lang, None))
}

#[derive(Deserialize)]
pub(super) struct SignInForm {
    #[serde(default)]
    key: String,
}

pub(super) async fn sign_in(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(f) => f,
        Err(r) => return bad_form(lang, r),
    };
    let t = lang.texts();
    let key = form.key.trim();
    if key.is_empty() || key.len() > 256 {
        return html(
            lang,
            StatusCode::UNAUTHORIZED,
            pages::sign_in(lang, Some(t.bad_key)),
        );
    }
    match state.core.access.sign_in(key).await {
        Ok(Some(signed_in)) => {
            let mut resp = Redirect::to("/console").into_response();
            resp.headers_mut().append(
                header::SET_COOKIE,
                session_cookie(
                    &signed_in.session_id,
                    SESSION_MAX_MS / 1000,
                    behind_tls(&headers),
                ),
            );
            resp
        }
        Ok(None) => {
            tracing::info!("console sign-in refused: unknown or revoked key");
            html(
                lang,
                StatusCode::UNAUTHORIZED,
                pages::sign_in(lang, Some(t.bad_key)),
            )
        }
        Err(CoreError::Forbidden) => {
            tracing::info!("console sign-in refused: role");
            html(
                lang,
                StatusCode::FORBIDDEN,
                pages::sign_in(lang, Some(t.role_not_allowed)),
            )
        }
        Err(e) => failure(lang, e),
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub(super) csrf: String,
}

pub(super) async fn sign_out(
    State(state): State<AppState>,
    clerk: Clerk,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(f) => f,
        Err(r) => return bad_form(clerk.lang, r),
    };
    if let Some(resp) = clerk.refuse_csrf(&form.csrf) {
        return resp;
    }
    if let Err(e) = state.core.access.sign_out(&clerk.session_id).await {
        return failure(clerk.lang, e);
    }
    tracing::info!(api_key_id = clerk.key.id, "console sign-out");
    let mut resp = Redirect::to("/console/signin").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        session_cookie("", 0, behind_tls(&headers)),
    );
    resp
}
