//! The back-office console at `/console`: server-rendered HTML (maud) for the bank's
//! help desk and administrators, on the HTTP listener, with its one stylesheet
//! compiled into the binary and no JavaScript.
//!
//! A transport like `http` and `smpp`: handlers read forms and call `Core`, never the
//! store. Sign-in takes a local operator's name, password and TOTP code
//! (`Operators::password`, `Operators::code`), or an API key of role `admin` or
//! `helpdesk` (`Access::sign_in`, for machines and legacy), or through the bank's
//! OpenID Connect identity provider (`SingleSignOn`, `oidc.rs`), and opens a
//! server-side session; the cookie holds a random id only
//! (HttpOnly, SameSite=Strict, Path=/console, Secure behind a TLS proxy that says
//! `X-Forwarded-Proto: https`). Every POST carries the session's CSRF token, compared
//! in constant time, and a cross-origin `Origin` is refused. Card numbers arrive in
//! POST bodies only and are never rendered, logged or put in a URL.
//!
//! * `session.rs` — the request's language and clerk, cookies, CSRF and origin
//!   checks, signing in (sign-out is in `oidc.rs`).
//! * `cards.rs`   — the home page and finding a card, and its status changes.
//! * `card.rs`    — a card's page: state and why, actions, codes, verifications.
//! * `health.rs`  — the health strip, a page of its own framed by the home page.
//! * `tokens.rs`  — a card's tokens (suspend, lift, revoke, resync) and resending
//!   a pending card's activation.
//! * `life.rs`    — a new phone number, a new card number, closure; the phone's
//!   hold and the last SIM-swap refusal on the card page.
//! * `audit.rs`   — the audit search and its CSV export.
//! * `keys.rs`    — API keys for administrators.
//! * `signin.rs`  — a local operator's sign-in: password, then TOTP (enrolment
//!   with the `otpauth://` URI and its QR code at the first sign-in).
//! * `operators.rs` — operators and console sessions for administrators.
//! * `oidc.rs`    — single sign-on: off to the identity provider, its callback,
//!   and on to its end-session endpoint at sign-out; `sso_texts.rs` its words in
//!   fa and en and the sign-in page's link.
//! * `account.rs` — an operator's own password change; an admin's role change.
//! * `marks.rs`   — what pages draw for those two: header links, the form's note,
//!   the role form.
//! * `approvals.rs` — two-person rules: proposals, their list, approve, refuse,
//!   withdraw (with its own fa/en words).
//! * `pages.rs`   — the layout and the simpler pages; `i18n.rs` — their words in
//!   fa and en; `terms.rs` — states, results, roles and event kinds in fa and en;
//!   `sentences.rs` — audit events as sentences; `dates.rs` — times in the bank's
//!   zone (Jalali with Persian digits in fa).

/// Extractors that cannot fail, read by their type's `from_parts` from the
/// request's head: what does not parse means the default, never an error page.
/// (A blanket impl over a trait of ours is not allowed for axum's trait.)
macro_rules! infallible_from_parts {
    ($ty:ty) => {
        impl axum::extract::FromRequestParts<AppState> for $ty {
            type Rejection = std::convert::Infallible;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                state: &AppState,
            ) -> Result<Self, Self::Rejection> {
                Ok(Self::from_parts(parts, state))
            }
        }
    };
}

mod account;
mod approvals;
mod audit;
mod card;
mod cards;
mod dates;
mod health;
mod i18n;
mod keys;
mod life;
mod marks;
mod oidc;
mod operators;
mod pages;
mod query;
mod sentences;
mod session;
mod signin;
mod sso_texts;
mod terms;
mod tokens;

use axum::extract::rejection::FormRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::state::AppState;
use crate::core::ports::{StatusChange, TokenChange};
use crate::core::{CoreError, DomainError, Missing};
pub use session::{Clerk, Lang};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(cards::home))
        .route("/console.css", get(session::stylesheet))
        .route("/signin", get(session::sign_in_page).post(session::sign_in))
        .route("/signin/operator", post(signin::password))
        .route("/signin/code", get(signin::code_page).post(signin::code))
        .route("/signout", post(oidc::sign_out))
        .route("/oidc/login", get(oidc::login))
        .route("/oidc/callback", get(oidc::callback))
        .route("/health", get(health::strip))
        .route("/find", post(cards::find))
        .route("/cards/{id}", get(cards::card_page))
        .route(
            "/cards/{id}/reactivate",
            cards::change(StatusChange::Reactivate),
        )
        .route("/cards/{id}/suspend", cards::change(StatusChange::Suspend))
        .route("/cards/{id}/phone", post(life::change_phone))
        .route("/cards/{id}/reissue", post(life::reissue))
        .route("/cards/{id}/close", post(life::close))
        .route("/cards/{id}/activation", post(tokens::resend_activation))
        .route("/tokens/{id}/suspend", tokens::change(TokenChange::Suspend))
        .route(
            "/tokens/{id}/reactivate",
            tokens::change(TokenChange::Reactivate),
        )
        .route("/tokens/{id}/revoke", tokens::change(TokenChange::Revoke))
        .route("/tokens/{id}/resync", post(tokens::resync))
        .route("/audit", audit::search(audit::Answer::Page))
        .route("/audit.csv", audit::search(audit::Answer::Csv))
        .route("/keys", get(keys::keys_page).post(keys::create_key))
        .route("/keys/{id}/revoke", post(keys::revoke_key))
        .route("/operators", get(operators::page).post(operators::add))
        .route("/operators/{name}/disable", operators::set_disabled(true))
        .route("/operators/{name}/enable", operators::set_disabled(false))
        .route("/operators/{name}/reset", post(operators::reset))
        .route("/sessions/revoke", post(operators::revoke_session))
        .route("/operators/{name}/role", post(account::set_role))
        .route(
            "/password",
            get(account::password_page).post(account::change_password),
        )
        .route("/approvals", get(approvals::page))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/refuse", post(approvals::refuse))
        .route("/approvals/{id}/withdraw", post(approvals::withdraw))
        .layer(axum::middleware::from_fn(session::same_origin))
        .layer(axum::middleware::map_response(session::security_headers))
}

/// A guarded action's form, sent: a proposal instead of the change, and the page
/// that says so (`approvals.rs`; here, so that the card forms' rooms, which
/// `pages.rs` draws from, need not import a room that draws with `pages.rs`).
pub(super) async fn propose(
    state: &AppState,
    clerk: &Clerk,
    proposed: crate::core::Proposed,
    reason: &str,
) -> Response {
    approvals::propose(state, clerk, proposed, reason).await
}

/// The hidden field every form of a signed-in page carries (checked by `Clerk`).
pub(super) fn csrf_input(clerk: &Clerk) -> maud::Markup {
    maud::html! { input type="hidden" name="csrf" value=(clerk.csrf); }
}

pub(super) fn html(lang: Lang, status: StatusCode, markup: maud::Markup) -> Response {
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response();
    if lang.remember {
        let code = i18n::texts(lang.lang).code;
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{}={code}; Path=/console; SameSite=Strict; Max-Age=31536000",
            session::LANG_COOKIE
        )) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

pub(super) fn message(
    lang: Lang,
    status: StatusCode,
    text: &str,
    clerk: Option<&Clerk>,
) -> Response {
    html(lang, status, pages::message(lang, clerk, status, text))
}

pub(super) fn forbidden(clerk: &Clerk) -> Response {
    tracing::warn!(actor = %clerk.who.actor(), "console action refused: role");
    message(
        clerk.lang,
        StatusCode::FORBIDDEN,
        clerk.lang.texts().forbidden,
        Some(clerk),
    )
}

/// A core error as a page; the detail goes to the log only.
pub(super) fn failure(lang: Lang, e: CoreError) -> Response {
    let t = lang.texts();
    match e {
        CoreError::Forbidden | CoreError::Domain(DomainError::NotAllowed(_)) => {
            message(lang, StatusCode::FORBIDDEN, t.forbidden, None)
        }
        CoreError::Domain(DomainError::NotFound(Missing::Card | Missing::ApiKey)) => {
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
pub(super) fn bad_form(lang: Lang, _rejection: FormRejection) -> Response {
    message(lang, StatusCode::BAD_REQUEST, lang.texts().bad_form, None)
}

pub(super) fn parse_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}
