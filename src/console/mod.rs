//! The back-office console at `/console`: server-rendered HTML (maud) for the bank's
//! help desk and administrators, on the HTTP listener, with its one stylesheet
//! compiled into the binary and no JavaScript.
//!
//! A transport like `http` and `smpp`: handlers read forms and call `Core`, never the
//! store. Sign-in takes an API key of role `admin` or `helpdesk` once and opens a
//! server-side session (`Core::console_sign_in`); the cookie holds a random id only
//! (HttpOnly, SameSite=Strict, Path=/console, Secure behind a TLS proxy that says
//! `X-Forwarded-Proto: https`). Every POST carries the session's CSRF token, compared
//! in constant time, and a cross-origin `Origin` is refused. Card numbers arrive in
//! POST bodies only and are never rendered, logged or put in a URL.
//!
//! * `i18n`  — the words, in Persian and English.
//! * `pages` — the HTML of every page.

mod i18n;
mod pages;

use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::core::{CoreError, SESSION_MAX_MS};
use crate::http::AppState;
use crate::store::{ApiKey, AuditFilter, StatusChange, StoreError};
use otpgw_rules::codes::{self, Pan};
use otpgw_rules::vocab::Language;
use otpgw_rules::vocab::Role;

const SESSION_COOKIE: &str = "otpgw_console";
const LANG_COOKIE: &str = "otpgw_lang";
/// Audit rows per page, and the most rows one CSV export holds.
const PAGE_SIZE: i64 = 50;
const CSV_MAX_ROWS: i64 = 10_000;
const CSS: &str = include_str!("console.css");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/console.css", get(stylesheet))
        .route("/signin", get(sign_in_page).post(sign_in))
        .route("/signout", post(sign_out))
        .route("/find", post(find))
        .route("/cards/{id}", get(card_page))
        .route("/cards/{id}/reactivate", post(reactivate))
        .route("/cards/{id}/suspend", post(suspend))
        .route("/audit", get(audit))
        .route("/audit.csv", get(audit_csv))
        .route("/keys", get(keys_page).post(create_key))
        .route("/keys/{id}/revoke", post(revoke_key))
        .layer(axum::middleware::from_fn(same_origin))
        .layer(axum::middleware::map_response(security_headers))
}

// ---- request context -------------------------------------------------------------

/// The page language: `?lang=` (remembered in a cookie), else the cookie, else
/// `service.language`.
#[derive(Clone, Copy)]
pub struct Lang {
    pub lang: Language,
    /// Set when `?lang=` chose it: the response remembers it.
    remember: bool,
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
            .unwrap_or(state.core.service().language);
        Self {
            lang,
            remember: false,
        }
    }

    fn texts(self) -> &'static i18n::Texts {
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
    session_id: String,
    pub lang: Lang,
}

impl Clerk {
    fn is_admin(&self) -> bool {
        self.key.role == Role::Admin
    }

    /// The refusal of a form whose CSRF token is not this session's, if it is not.
    fn refuse_csrf(&self, token: &str) -> Option<Response> {
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

    fn refuse_non_admin(&self) -> Option<Response> {
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
                .console_session(id)
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
async fn same_origin(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
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
async fn security_headers(mut resp: Response) -> Response {
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

// ---- responses -------------------------------------------------------------------

fn html(lang: Lang, status: StatusCode, markup: maud::Markup) -> Response {
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response();
    if lang.remember {
        let code = i18n::texts(lang.lang).code;
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{LANG_COOKIE}={code}; Path=/console; SameSite=Strict; Max-Age=31536000"
        )) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

fn message(lang: Lang, status: StatusCode, text: &str, clerk: Option<&Clerk>) -> Response {
    html(lang, status, pages::message(lang, clerk, status, text))
}

fn forbidden(clerk: &Clerk) -> Response {
    tracing::warn!(api_key_id = clerk.key.id, "console action refused: role");
    message(
        clerk.lang,
        StatusCode::FORBIDDEN,
        clerk.lang.texts().forbidden,
        Some(clerk),
    )
}

/// A core error as a page; the detail goes to the log only.
fn failure(lang: Lang, e: CoreError) -> Response {
    let t = lang.texts();
    match e {
        CoreError::Forbidden | CoreError::Store(StoreError::StatusNotAllowed(_)) => {
            message(lang, StatusCode::FORBIDDEN, t.forbidden, None)
        }
        CoreError::Store(StoreError::NoSuchCard | StoreError::NoSuchApiKey) => {
            message(lang, StatusCode::NOT_FOUND, t.not_found, None)
        }
        CoreError::ReasonRequired => {
            message(lang, StatusCode::BAD_REQUEST, t.reason_required, None)
        }
        CoreError::Msisdn(_) => message(lang, StatusCode::BAD_REQUEST, t.invalid_msisdn, None),
        e => {
            tracing::error!(error = %e, "console request failed");
            message(lang, StatusCode::INTERNAL_SERVER_ERROR, t.error, None)
        }
    }
}

/// A form that does not parse. axum's message could quote a submitted value (a
/// card number), so it is dropped.
fn bad_form(lang: Lang, _rejection: FormRejection) -> Response {
    message(lang, StatusCode::BAD_REQUEST, lang.texts().bad_form, None)
}

fn parse_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

// ---- sign-in ---------------------------------------------------------------------

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

async fn sign_in_page(lang: Lang) -> Response {
    html(lang, StatusCode::OK, pages::sign_in(lang, None))
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    key: String,
}

async fn sign_in(
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
    match state.core.console_sign_in(key).await {
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
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
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
    if let Err(e) = state.core.console_sign_out(&clerk.session_id).await {
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

// ---- home: health and find -------------------------------------------------------

async fn home(State(state): State<AppState>, clerk: Clerk) -> Response {
    let health = match state.core.health().await {
        Ok(h) => h,
        Err(e) => return failure(clerk.lang, e),
    };
    let strip = pages::HealthStrip {
        numbers: health,
        smpp_sessions: state
            .smpp_sessions
            .load(std::sync::atomic::Ordering::Relaxed),
        connections: state.operators.as_ref().map(|ops| {
            ops.status()
                .into_iter()
                .map(|c| (c.name, c.state))
                .collect()
        }),
    };
    html(
        clerk.lang,
        StatusCode::OK,
        pages::home(&clerk, &strip, None),
    )
}

#[derive(Deserialize)]
struct FindForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pan: String,
    #[serde(default)]
    msisdn: String,
}

async fn find(
    State(state): State<AppState>,
    clerk: Clerk,
    form: Result<Form<FindForm>, FormRejection>,
) -> Response {
    let lang = clerk.lang;
    let t = lang.texts();
    let Form(form) = match form {
        Ok(f) => f,
        Err(r) => return bad_form(lang, r),
    };
    if let Some(resp) = clerk.refuse_csrf(&form.csrf) {
        return resp;
    }
    let cards = if !form.pan.trim().is_empty() {
        // The number is parsed and hashed, then dropped; an error never quotes it.
        let Ok(pan) = Pan::parse(&form.pan) else {
            return html(
                lang,
                StatusCode::BAD_REQUEST,
                pages::find_result(&clerk, Some(t.invalid_pan), &[]),
            );
        };
        match state.core.lookup(&pan).await {
            Ok(card) => card.into_iter().collect::<Vec<_>>(),
            Err(e) => return failure(lang, e),
        }
    } else if !form.msisdn.trim().is_empty() {
        match state.core.cards_by_msisdn(&form.msisdn).await {
            Ok(cards) => cards,
            Err(CoreError::Msisdn(_)) => {
                return html(
                    lang,
                    StatusCode::BAD_REQUEST,
                    pages::find_result(&clerk, Some(t.invalid_msisdn), &[]),
                )
            }
            Err(e) => return failure(lang, e),
        }
    } else {
        return html(
            lang,
            StatusCode::BAD_REQUEST,
            pages::find_result(&clerk, Some(t.give_one), &[]),
        );
    };
    match cards.as_slice() {
        [card] => Redirect::to(&format!("/console/cards/{}", card.id)).into_response(),
        [] => html(
            lang,
            StatusCode::NOT_FOUND,
            pages::find_result(&clerk, Some(t.no_card), &[]),
        ),
        many => html(lang, StatusCode::OK, pages::find_result(&clerk, None, many)),
    }
}

// ---- a card ----------------------------------------------------------------------

#[derive(Deserialize)]
struct CardQuery {
    done: Option<String>,
}

async fn card_page(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(id): Path<String>,
    Query(query): Query<CardQuery>,
) -> Response {
    let lang = clerk.lang;
    let Some(id) = parse_id(&id) else {
        return message(
            lang,
            StatusCode::NOT_FOUND,
            lang.texts().not_found,
            Some(&clerk),
        );
    };
    match state.core.card_view(id).await {
        Ok(Some(view)) => html(
            lang,
            StatusCode::OK,
            pages::card(&clerk, &view, query.done.as_deref()),
        ),
        Ok(None) => message(
            lang,
            StatusCode::NOT_FOUND,
            lang.texts().not_found,
            Some(&clerk),
        ),
        Err(e) => failure(lang, e),
    }
}

#[derive(Deserialize)]
struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

async fn reactivate(
    state: State<AppState>,
    clerk: Clerk,
    id: Path<String>,
    form: Result<Form<ChangeForm>, FormRejection>,
) -> Response {
    change(state, clerk, id, form, StatusChange::Reactivate).await
}

async fn suspend(
    state: State<AppState>,
    clerk: Clerk,
    id: Path<String>,
    form: Result<Form<ChangeForm>, FormRejection>,
) -> Response {
    change(state, clerk, id, form, StatusChange::Suspend).await
}

async fn change(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(id): Path<String>,
    form: Result<Form<ChangeForm>, FormRejection>,
    change: StatusChange,
) -> Response {
    let lang = clerk.lang;
    let Form(form) = match form {
        Ok(f) => f,
        Err(r) => return bad_form(lang, r),
    };
    if let Some(resp) = clerk.refuse_csrf(&form.csrf) {
        return resp;
    }
    let Some(id) = parse_id(&id) else {
        return message(
            lang,
            StatusCode::NOT_FOUND,
            lang.texts().not_found,
            Some(&clerk),
        );
    };
    match state
        .core
        .console_change(clerk.key, id, change, &form.reason)
        .await
    {
        Ok(_) => {
            let done = match change {
                StatusChange::Reactivate => "reactivated",
                StatusChange::Suspend => "suspended",
            };
            Redirect::to(&format!("/console/cards/{id}?done={done}")).into_response()
        }
        Err(CoreError::Forbidden | CoreError::Store(StoreError::StatusNotAllowed(_))) => {
            forbidden(&clerk)
        }
        Err(CoreError::ReasonRequired) => message(
            lang,
            StatusCode::BAD_REQUEST,
            lang.texts().reason_required,
            Some(&clerk),
        ),
        Err(e) => failure(lang, e),
    }
}

// ---- audit -----------------------------------------------------------------------

/// The audit search form, as query parameters (nothing in it is secret).
#[derive(Deserialize, Default, Clone)]
pub struct AuditQuery {
    #[serde(default)]
    pub card: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub kind: String,
    /// `YYYY-MM-DD`, UTC, inclusive.
    #[serde(default)]
    pub from: String,
    /// `YYYY-MM-DD`, UTC, inclusive.
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub before: String,
}

impl AuditQuery {
    fn filter(&self) -> AuditFilter {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        AuditFilter {
            card_id: parse_id(self.card.trim()),
            actor: text(&self.actor),
            kind: text(&self.kind),
            from: pages::parse_date(self.from.trim()),
            to: pages::parse_date(self.to.trim()).map(|d| d + 24 * 3600 * 1000),
            before_id: parse_id(self.before.trim()),
        }
    }

    /// The query string of these filters, without the page.
    pub fn to_query(&self) -> String {
        [
            ("card", &self.card),
            ("actor", &self.actor),
            ("kind", &self.kind),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn audit(
    State(state): State<AppState>,
    clerk: Clerk,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = query.unwrap_or_default();
    match state.core.search_audit(&query.filter(), PAGE_SIZE).await {
        Ok(events) => {
            let next = (events.len() as i64 == PAGE_SIZE)
                .then(|| events.last().map(|e| e.id))
                .flatten();
            html(
                clerk.lang,
                StatusCode::OK,
                pages::audit(&clerk, &query, &events, next),
            )
        }
        Err(e) => failure(clerk.lang, e),
    }
}

async fn audit_csv(
    State(state): State<AppState>,
    clerk: Clerk,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = query.unwrap_or_default();
    let events = match state.core.search_audit(&query.filter(), CSV_MAX_ROWS).await {
        Ok(events) => events,
        Err(e) => return failure(clerk.lang, e),
    };
    let mut out = String::from("id,at,card_id,kind,actor,detail\r\n");
    for e in &events {
        let row = [
            e.id.to_string(),
            pages::format_time(e.at),
            e.card_id.map(|c| c.to_string()).unwrap_or_default(),
            e.kind.clone(),
            e.actor.clone(),
            e.detail.to_string(),
        ];
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    tracing::info!(
        api_key_id = clerk.key.id,
        rows = events.len(),
        "audit exported"
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"otpgw-audit.csv\"",
            ),
        ],
        out,
    )
        .into_response()
}

/// One CSV field, quoted. A field a spreadsheet would run as a formula (a clerk's
/// reason starting with `=`) is prefixed with `'`.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

// ---- API keys --------------------------------------------------------------------

async fn keys_page(State(state): State<AppState>, clerk: Clerk) -> Response {
    if let Some(resp) = clerk.refuse_non_admin() {
        return resp;
    }
    match state.core.api_keys().await {
        Ok(keys) => html(clerk.lang, StatusCode::OK, pages::keys(&clerk, &keys)),
        Err(e) => failure(clerk.lang, e),
    }
}

#[derive(Deserialize)]
struct CreateKeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    label: String,
    /// The newest key id when the form was drawn (see `pages::keys`).
    #[serde(default)]
    after: String,
}

async fn create_key(
    State(state): State<AppState>,
    clerk: Clerk,
    form: Result<Form<CreateKeyForm>, FormRejection>,
) -> Response {
    let lang = clerk.lang;
    let Form(form) = match form {
        Ok(f) => f,
        Err(r) => return bad_form(lang, r),
    };
    if let Some(resp) = clerk.refuse_csrf(&form.csrf) {
        return resp;
    }
    if let Some(resp) = clerk.refuse_non_admin() {
        return resp;
    }
    let Some(role) = Role::parse(&form.role) else {
        return message(
            lang,
            StatusCode::BAD_REQUEST,
            lang.texts().bad_form,
            Some(&clerk),
        );
    };
    // A form sent again (a reload of the page showing the new key re-posts it)
    // makes no second key: the newest key is no longer the one it was drawn after.
    let newest = match state.core.api_keys().await {
        Ok(keys) => keys.iter().map(|k| k.id).max().unwrap_or(0),
        Err(e) => return failure(lang, e),
    };
    if form.after.trim().parse::<i64>().ok() != Some(newest) {
        tracing::info!(
            api_key_id = clerk.key.id,
            "console key form refused: used or stale"
        );
        return message(
            lang,
            StatusCode::CONFLICT,
            lang.texts().key_form_used,
            Some(&clerk),
        );
    }
    let label: String = form.label.trim().chars().take(100).collect();
    let label = Some(label).filter(|l| !l.is_empty());
    match state
        .core
        .create_api_key(role, label.as_deref(), &format!("apikey:{}", clerk.key.id))
        .await
    {
        // Shown once, on a page that is never cached (see `security_headers`).
        Ok((id, key)) => html(
            lang,
            StatusCode::CREATED,
            pages::new_key(&clerk, id, role, &key),
        ),
        Err(e) => failure(lang, e),
    }
}

async fn revoke_key(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let lang = clerk.lang;
    let Form(form) = match form {
        Ok(f) => f,
        Err(r) => return bad_form(lang, r),
    };
    if let Some(resp) = clerk.refuse_csrf(&form.csrf) {
        return resp;
    }
    if let Some(resp) = clerk.refuse_non_admin() {
        return resp;
    }
    let Some(id) = parse_id(&id) else {
        return message(
            lang,
            StatusCode::NOT_FOUND,
            lang.texts().not_found,
            Some(&clerk),
        );
    };
    match state
        .core
        .revoke_api_key(id, &format!("apikey:{}", clerk.key.id))
        .await
    {
        Ok(_) => Redirect::to("/console/keys").into_response(),
        Err(e) => failure(lang, e),
    }
}
