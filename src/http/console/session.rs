//! Who is asking and in which language: the console's session cookie (an opaque
//! id; the session lives in the database), its CSRF token, the language cookie,
//! the same-origin check on every form post, the security headers of every page,
//! and signing in and out.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::dates::Dates;
use super::{bad_form, failure, forbidden, html, i18n, message, pages, parse_id};
use crate::core::{CoreError, SESSION_MAX_MS};
use crate::http::state::AppState;
use otpgw_rules::approvals::Guarded;
use otpgw_rules::codes;
use otpgw_rules::records::Who;
use otpgw_rules::vocab::{Language, Role};

pub(super) const SESSION_COOKIE: &str = "otpgw_console";
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

infallible_from_parts!(Lang);

/// A signed-in clerk: whose session it is (an API key or an operator), its
/// CSRF token, where the request came from, and what the two-person rules guard.
pub struct Clerk {
    pub who: Who,
    pub csrf: String,
    pub(super) session_id: String,
    pub lang: Lang,
    /// The peer address of the request (`Source`), for the audit.
    pub(super) source: Option<String>,
    /// `[console] four_eyes` as this request found it.
    pub(super) guarded: Arc<Vec<Guarded>>,
    /// Open proposals, for the header; `None` when no action is guarded.
    pub(super) open_proposals: Option<i64>,
    /// How this clerk's pages write times (calendar, digits, the bank's zone).
    pub dates: Dates,
}

/// The address of the peer the HTTP listener accepted the request from. A
/// `X-Forwarded-For` header is not read: nothing vouches for it (otpgw has no
/// trusted-proxy setting), so behind a proxy this is the proxy's address.
#[derive(Clone)]
pub struct Source(pub Option<String>);

impl Source {
    fn from_parts(parts: &Parts, _state: &AppState) -> Self {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Self(peer.map(|ConnectInfo(p)| p.ip().to_string()))
    }

    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

infallible_from_parts!(Source);

// The checks' `Err` is the page that answers the request, built at most once per
// request: boxing it would buy nothing.
#[allow(clippy::result_large_err)]
impl Clerk {
    /// Whether `action` is under two-person rules (its form makes a proposal).
    pub(super) fn guards(&self, action: Guarded) -> bool {
        self.guarded.contains(&action)
    }

    pub(super) fn is_admin(&self) -> bool {
        self.who.role() == Role::Admin
    }

    /// A page of one message, with this clerk's header.
    pub(super) fn say(&self, status: StatusCode, text: &str) -> Response {
        message(self.lang, status, text, Some(self))
    }

    /// A posted form, once it parsed and carries this session's CSRF token (which
    /// `csrf` picks out of it); else the page that says why not.
    pub(super) fn posted<F>(
        &self,
        form: Result<Form<F>, FormRejection>,
        csrf: impl Fn(&F) -> &str,
    ) -> Result<F, Response> {
        let Form(form) = form.map_err(|r| bad_form(self.lang, r))?;
        if codes::hashes_equal(csrf(&form), &self.csrf) {
            return Ok(form);
        }
        tracing::warn!(
            actor = %self.who.actor(),
            "console form refused: bad CSRF token"
        );
        Err(self.say(StatusCode::FORBIDDEN, self.lang.texts().csrf_failed))
    }

    pub(super) fn admin_only(&self) -> Result<(), Response> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(forbidden(self))
        }
    }

    /// The id in a console path; one that is not a positive integer names nothing.
    pub(super) fn id(&self, raw: &str) -> Result<i64, Response> {
        parse_id(raw).ok_or_else(|| self.say(StatusCode::NOT_FOUND, self.lang.texts().not_found))
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
            (Some(s), Some(session_id)) => {
                let approvals = &state.core.approvals;
                let guarded = approvals.guarded();
                let open_proposals = if guarded.is_empty() {
                    None
                } else {
                    Some(approvals.open_count().await.map_err(|e| failure(lang, e))?)
                };
                Ok(Self {
                    who: s.who,
                    csrf: s.csrf,
                    session_id,
                    lang,
                    dates: Dates::new(lang.lang, state.zone.clone()),
                    source: Source::from_parts(parts, state).0,
                    guarded,
                    open_proposals,
                })
            }
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

pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
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

/// A redirect to `to` that sets the session cookie (or, with no age, clears it).
pub(super) fn redirect_with_session(
    to: &str,
    value: &str,
    max_age_secs: i64,
    headers: &HeaderMap,
) -> Response {
    let mut resp = Redirect::to(to).into_response();
    set_cookie(&mut resp, SESSION_COOKIE, value, max_age_secs, headers);
    resp
}

/// Sets (or, with no age, clears) one of the console's HttpOnly cookies.
pub(super) fn set_cookie(
    resp: &mut Response,
    name: &str,
    value: &str,
    max_age_secs: i64,
    headers: &HeaderMap,
) {
    let secure = if behind_tls(headers) { "; Secure" } else { "" };
    let cookie = HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""));
    resp.headers_mut().append(header::SET_COOKIE, cookie);
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
    // A page that set its own (the framed health strip) keeps it.
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ));
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
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

pub(super) async fn sign_in_page(State(state): State<AppState>, lang: Lang) -> Response {
    let sso = state.core.oidc.is_some();
    html(lang, StatusCode::OK, pages::sign_in(lang, sso, None))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct SignInForm {
    key: String,
}

pub(super) async fn sign_in(
    State(state): State<AppState>,
    lang: Lang,
    source: Source,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Result<Response, Response> {
    let Form(form) = form.map_err(|r| bad_form(lang, r))?;
    let t = lang.texts();
    let sso = state.core.oidc.is_some();
    let refused =
        |status: StatusCode, text: &str| html(lang, status, pages::sign_in(lang, sso, Some(text)));
    let key = form.key.trim();
    if key.is_empty() || key.len() > 256 {
        return Err(refused(StatusCode::UNAUTHORIZED, t.bad_key));
    }
    match state.core.access.sign_in(key, source.as_deref()).await {
        Ok(Some(signed_in)) => Ok(redirect_with_session(
            "/console",
            &signed_in.session_id,
            SESSION_MAX_MS / 1000,
            &headers,
        )),
        Ok(None) => {
            tracing::info!("console sign-in refused: unknown or revoked key");
            Err(refused(StatusCode::UNAUTHORIZED, t.bad_key))
        }
        Err(CoreError::Forbidden) => {
            tracing::info!("console sign-in refused: role");
            Err(refused(StatusCode::FORBIDDEN, t.role_not_allowed))
        }
        Err(e) => Err(failure(lang, e)),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CsrfForm {
    pub(super) csrf: String,
}
