//! Single sign-on's pages: `/console/oidc/login` sends the browser to the identity
//! provider, `/console/oidc/callback` completes (`SingleSignOn`), and sign-out
//! goes on to the provider's end-session endpoint. Their words in fa and en are
//! here, beside the markup.
//!
//! The provider is another site, so the callback arrives by a cross-site top-level
//! navigation, on which the SameSite=Strict session cookie is not sent. The sign-in
//! waiting for it is named by its own cookie, `otpgw_oidc` (SameSite=Lax, which a
//! top-level GET does carry; HttpOnly; Path=/console/oidc; 10 minutes), and the
//! callback answers 200 with a page that moves on to `/console` by itself: that
//! next request starts on the console's own site, so the Strict cookie set here is
//! sent with it (after a 303 straight from the callback Chromium would not send it).

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::pages::layout;
use super::session::{
    cookie, redirect_with_session, set_cookie, Clerk, CsrfForm, Lang, SESSION_COOKIE,
};
use super::sso_texts::Words;
use super::{failure, html};
use crate::core::oidc::{Answer, Callback, Refusal, LOGIN_MAX_MS};
use crate::core::SESSION_MAX_MS;
use crate::http::state::AppState;
use otpgw_rules::records::Who;
use otpgw_rules::vocab::Language;

const LOGIN_COOKIE: &str = "otpgw_oidc";
/// The page language the sign-in began in: the console's own language cookie is
/// SameSite=Strict and does not come back with the provider's cross-site redirect.
const LANG_COOKIE: &str = "otpgw_oidc_lang";

/// Sends the browser to the identity provider, the sign-in kept under a cookie.
pub(super) async fn login(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let Some(sso) = &state.core.oidc else {
        return Err(page(
            lang,
            StatusCode::NOT_FOUND,
            words(lang).not_configured,
        ));
    };
    let begun = sso.begin().await.map_err(|e| failure(lang, e))?;
    let mut resp = Redirect::to(&begun.url).into_response();
    login_cookie(
        &mut resp,
        LOGIN_COOKIE,
        &begun.login_id,
        LOGIN_MAX_MS / 1000,
        &headers,
    );
    let code = match lang.lang {
        Language::Fa => "fa",
        Language::En => "en",
    };
    login_cookie(&mut resp, LANG_COOKIE, code, LOGIN_MAX_MS / 1000, &headers);
    Ok(resp)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

crate::telemetry::debug_only!(CallbackQuery { error });

/// Completes a sign-in: the session cookie and a page that moves on to the
/// console, or a page saying why not. The sign-in's cookie is cleared either way.
pub(super) async fn callback(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Result<Response, Response> {
    let lang = match cookie(&headers, LANG_COOKIE) {
        Some("fa") => Lang {
            lang: Language::Fa,
            ..lang
        },
        Some("en") => Lang {
            lang: Language::En,
            ..lang
        },
        _ => lang,
    };
    let w = words(lang);
    let Some(sso) = &state.core.oidc else {
        return Err(page(lang, StatusCode::NOT_FOUND, w.not_configured));
    };
    // A query that does not parse carries no state: refused as such below.
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let login_id = cookie(&headers, LOGIN_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()));
    let answer = sso
        .complete(Callback {
            login_id,
            state: q.state.as_deref(),
            code: q.code.as_deref(),
            error: q.error.as_deref(),
        })
        .await;
    let mut resp = match answer.map_err(|e| failure(lang, e))? {
        Answer::SignedIn(signed_in) => {
            let mut resp = html(lang, StatusCode::OK, moving_on(lang));
            set_cookie(
                &mut resp,
                SESSION_COOKIE,
                &signed_in.session_id,
                SESSION_MAX_MS / 1000,
                &headers,
            );
            resp
        }
        Answer::Refused(Refusal::Login) => page(lang, StatusCode::BAD_REQUEST, w.login_ended),
        Answer::Refused(Refusal::Provider) => {
            page(lang, StatusCode::UNAUTHORIZED, w.provider_refused)
        }
        Answer::Refused(Refusal::NoRole) => page(lang, StatusCode::FORBIDDEN, w.no_role),
    };
    login_cookie(&mut resp, LOGIN_COOKIE, "", 0, &headers);
    login_cookie(&mut resp, LANG_COOKIE, "", 0, &headers);
    Ok(resp)
}

/// Ends the console session (anyone's: the sign-out of every way in lives here,
/// beside single sign-on's, since only it may go on to the provider).
pub(super) async fn sign_out(
    State(state): State<AppState>,
    clerk: Clerk,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, Response> {
    clerk.posted(form, |f| &f.csrf)?;
    let ended = state.core.access.sign_out(&clerk.session_id).await;
    ended.map_err(|e| failure(clerk.lang, e))?;
    tracing::info!(actor = %clerk.who.actor(), "console sign-out");
    // A person from the identity provider is signed out there too, if it says how.
    let end_session = match (&clerk.who, &state.core.oidc) {
        (Who::Oidc { .. }, Some(sso)) => sso.end_session_url().await,
        _ => None,
    };
    if let Some(url) = end_session {
        let mut resp = signed_out(clerk.lang, &url);
        set_cookie(&mut resp, SESSION_COOKIE, "", 0, &headers);
        return Ok(resp);
    }
    Ok(redirect_with_session("/console/signin", "", 0, &headers))
}

/// After the local sign-out: on to the provider's end-session endpoint, by a page
/// (a redirect answering the sign-out form would be stopped by the console's
/// `form-action 'self'`).
fn signed_out(lang: Lang, end_session: &str) -> Response {
    let w = words(lang);
    let refresh = format!("0; url={end_session}");
    let body = html! {
        meta http-equiv="refresh" content=(refresh);
        h1 { (w.signed_out) }
        p { a href=(end_session) id="sso-signout" { (w.sign_out_there) } }
    };
    html(
        lang,
        StatusCode::OK,
        layout(lang, None, "/console/signin", w.signed_out, body),
    )
}

/// The signed-in page: a request from here on is same-site, so it carries the
/// Strict session cookie. `meta` refresh needs no script (the CSP allows none).
fn moving_on(lang: Lang) -> Markup {
    let w = words(lang);
    let body = html! {
        meta http-equiv="refresh" content="0; url=/console";
        h1 { (w.signed_in) }
        p { a href="/console" id="continue" { (w.go_on) } }
    };
    layout(lang, None, "/console", w.signed_in, body)
}

fn page(lang: Lang, status: StatusCode, text: &str) -> Response {
    let w = words(lang);
    let body = html! {
        h1 { (w.sso_title) }
        p.error role="alert" id="error" { (text) }
        p { a href="/console/signin" { (w.try_again) } }
    };
    html(
        lang,
        status,
        layout(lang, None, "/console/signin", w.sso_title, body),
    )
}

/// The waiting sign-in's cookies: Lax, so the provider's redirect back (a
/// cross-site top-level GET) carries them; only under `/console/oidc`.
fn login_cookie(
    resp: &mut Response,
    name: &str,
    value: &str,
    max_age_secs: i64,
    headers: &HeaderMap,
) {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let secure = if secure { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{name}={value}; Path=/console/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn words(lang: Lang) -> &'static Words {
    super::sso_texts::words(lang.lang)
}
