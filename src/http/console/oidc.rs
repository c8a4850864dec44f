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

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::pages::layout;
use super::session::{cookie, set_cookie, Lang, SESSION_COOKIE};
use super::{failure, html};
use crate::core::oidc::{Answer, Callback, Refusal, LOGIN_MAX_MS};
use crate::core::SESSION_MAX_MS;
use crate::http::state::AppState;
use otpgw_rules::vocab::Language;

const LOGIN_COOKIE: &str = "otpgw_oidc";
/// The page language the sign-in began in: the console's own language cookie is
/// SameSite=Strict and does not come back with the provider's cross-site redirect.
const LANG_COOKIE: &str = "otpgw_oidc_lang";

struct Words {
    sign_in_with: &'static str,
    sso_title: &'static str,
    sso_intro: &'static str,
    signed_in: &'static str,
    go_on: &'static str,
    login_ended: &'static str,
    provider_refused: &'static str,
    no_role: &'static str,
    try_again: &'static str,
    signed_out: &'static str,
    sign_out_there: &'static str,
    not_configured: &'static str,
}

const EN: Words = Words {
    sign_in_with: "Sign in with the bank's single sign-on",
    sso_title: "Single sign-on",
    sso_intro: "Staff with an account in the bank's directory sign in there.",
    signed_in: "Signed in",
    go_on: "Continue to the console",
    login_ended: "This sign-in has ended or was not started in this browser. Sign in again.",
    provider_refused: "The identity provider's answer was refused. Sign in again, or ask the administrators.",
    no_role: "Your account has no role in this console. Ask the administrators to add you to a group that has one.",
    try_again: "Back to sign-in",
    signed_out: "Signed out of the console",
    sign_out_there: "Sign out of the bank's single sign-on too",
    not_configured: "Single sign-on is not configured.",
};

const FA: Words = Words {
    sign_in_with: "ورود با ورود یکپارچهٔ بانک",
    sso_title: "ورود یکپارچه",
    sso_intro: "کارکنانی که در فهرست کاربران بانک حساب دارند از آنجا وارد می‌شوند.",
    signed_in: "وارد شدید",
    go_on: "ادامه به کنسول",
    login_ended: "این ورود به پایان رسیده یا در این مرورگر آغاز نشده است. دوباره وارد شوید.",
    provider_refused: "پاسخ سامانهٔ هویت پذیرفته نشد. دوباره وارد شوید یا از مدیران بپرسید.",
    no_role: "حساب شما در این کنسول نقشی ندارد. از مدیران بخواهید شما را به گروهی با نقش بیفزایند.",
    try_again: "بازگشت به ورود",
    signed_out: "از کنسول خارج شدید",
    sign_out_there: "از ورود یکپارچهٔ بانک هم خارج شوید",
    not_configured: "ورود یکپارچه پیکربندی نشده است.",
};

fn words(lang: Lang) -> &'static Words {
    match lang.lang {
        Language::Fa => &FA,
        Language::En => &EN,
    }
}

/// The sign-in page's section that links to single sign-on.
pub(super) fn sign_in_link(lang: Lang) -> Markup {
    let w = words(lang);
    html! {
        section aria-labelledby="sso-title" {
            h2 id="sso-title" { (w.sso_title) }
            p { (w.sso_intro) }
            p { a href="/console/oidc/login" id="sso" { (w.sign_in_with) } }
        }
    }
}

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

/// After the local sign-out: on to the provider's end-session endpoint, by a page
/// (a redirect answering the sign-out form would be stopped by the console's
/// `form-action 'self'`).
pub(super) fn signed_out(lang: Lang, end_session: &str) -> Response {
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
