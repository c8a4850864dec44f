//! A local operator's sign-in: name and password, then a TOTP code (at the first
//! sign-in, after setting up the authenticator app from the `otpauth://` URI shown
//! as text beside its QR code). The step between lives under its own short-lived
//! HttpOnly cookie; the session proper gets a new id (`Operators::code`).
//!
//! Every refusal of the password step is the same page with the same status,
//! whether the name exists or not (the core does the same Argon2 work either way).

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;

use super::pages::{self, layout};
use super::session::{cookie, redirect_with_session, set_cookie, Lang, Source};
use super::{bad_form, failure, html};
use crate::core::ports::Stage;
use crate::core::{CodeAnswer, PendingView, SESSION_MAX_MS};
use crate::http::state::AppState;

const STEP_COOKIE: &str = "otpgw_signin";
/// The step cookie's life; the core ends the step after as long.
const STEP_SECS: i64 = 5 * 60;
/// Longer names and passwords cannot be an operator's: refused before any work.
const MAX_NAME: usize = 64;
const MAX_PASSWORD: usize = 256;

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PasswordForm {
    name: String,
    password: String,
}

crate::telemetry::debug_only!(PasswordForm { name });

pub(super) async fn password(
    State(state): State<AppState>,
    lang: Lang,
    source: Source,
    headers: HeaderMap,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Result<Response, Response> {
    let Form(form) = form.map_err(|r| bad_form(lang, r))?;
    let refused = || {
        html(
            lang,
            StatusCode::UNAUTHORIZED,
            pages::sign_in(
                lang,
                state.core.oidc.is_some(),
                Some(lang.texts().bad_sign_in),
            ),
        )
    };
    let name = form.name.trim();
    if name.len() > MAX_NAME || form.password.len() > MAX_PASSWORD {
        return Err(refused());
    }
    let started = state
        .core
        .operators
        .password(name, &form.password, source.as_deref());
    let started = started.await;
    match started.map_err(|e| failure(lang, e))? {
        Some(started) => {
            let mut resp = Redirect::to("/console/signin/code").into_response();
            set_cookie(
                &mut resp,
                STEP_COOKIE,
                &started.pending_id,
                STEP_SECS,
                &headers,
            );
            Ok(resp)
        }
        None => Err(refused()),
    }
}

/// The step's id from its cookie, if it looks like one.
fn step_id(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, STEP_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The sign-in page again, saying the step ended, with the step cookie cleared.
fn ended(state: &AppState, lang: Lang, headers: &HeaderMap) -> Response {
    let sso = state.core.oidc.is_some();
    let page = pages::sign_in(lang, sso, Some(lang.texts().signin_step_ended));
    let mut resp = html(lang, StatusCode::UNAUTHORIZED, page);
    set_cookie(&mut resp, STEP_COOKIE, "", 0, headers);
    resp
}

pub(super) async fn code_page(
    State(state): State<AppState>,
    lang: Lang,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let Some(id) = step_id(&headers) else {
        return Err(ended(&state, lang, &headers));
    };
    let view = state.core.operators.pending(id).await;
    match view.map_err(|e| failure(lang, e))? {
        Some(view) => Ok(html(lang, StatusCode::OK, code_form(lang, &view, None))),
        None => Err(ended(&state, lang, &headers)),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CodeForm {
    code: String,
}

pub(super) async fn code(
    State(state): State<AppState>,
    lang: Lang,
    source: Source,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, Response> {
    let Form(form) = form.map_err(|r| bad_form(lang, r))?;
    let Some(id) = step_id(&headers) else {
        return Err(ended(&state, lang, &headers));
    };
    let code: String = form.code.chars().take(16).collect();
    let answer = state
        .core
        .operators
        .code(id, &code, source.as_deref())
        .await;
    match answer.map_err(|e| failure(lang, e))? {
        CodeAnswer::SignedIn(signed_in) => {
            let mut resp = redirect_with_session(
                "/console",
                &signed_in.session_id,
                SESSION_MAX_MS / 1000,
                &headers,
            );
            set_cookie(&mut resp, STEP_COOKIE, "", 0, &headers);
            Ok(resp)
        }
        CodeAnswer::Wrong(view) => {
            let page = code_form(lang, &view, Some(lang.texts().bad_code));
            Err(html(lang, StatusCode::UNAUTHORIZED, page))
        }
        CodeAnswer::Gone => Err(ended(&state, lang, &headers)),
    }
}

/// The code step's page: at enrolment the QR code (inline SVG: the console's CSP
/// allows no external image) and, beside it, the same URI as text to copy.
fn code_form(lang: Lang, view: &PendingView, error: Option<&str>) -> Markup {
    let t = lang.texts();
    let enrol = view.stage == Stage::Enrol;
    let title = if enrol { t.enrol_title } else { t.totp_title };
    layout(
        lang,
        None,
        "/console/signin/code",
        title,
        html! {
            h1 { (title) }
            p { bdi { (view.name) } }
            @if let Some(error) = error {
                p.error role="alert" id="error" { (error) }
            }
            @if let (true, Some(uri)) = (enrol, &view.otpauth) {
                p { (t.enrol_intro) }
                div.enrol {
                    figure id="qr" { (qr_svg(uri)) }
                    p {
                        label for="otpauth" { (t.otpauth_uri) }
                        output id="otpauth" dir="ltr" { code { (uri) } }
                    }
                }
            } @else {
                p { (t.totp_intro) }
            }
            form method="post" action="/console/signin/code" id="signin-code" {
                label for="code" { (t.totp_code) }
                input type="text" id="code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="8" dir="ltr" required;
                button type="submit" { (t.confirm) }
            }
        },
    )
}

/// The URI as an SVG QR code. An URI too long for a QR code (it is not: about
/// 120 bytes) would show the text alone.
fn qr_svg(uri: &str) -> Markup {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(qr) => {
            let svg = qr
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build();
            // Inline in HTML: the XML declaration before `<svg` has no place there.
            let start = svg.find("<svg").unwrap_or(0);
            PreEscaped(svg[start..].to_owned())
        }
        Err(_) => html! {},
    }
}
