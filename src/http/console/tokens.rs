//! A card's tokens and activation from the console: suspend, lift a suspension or
//! revoke a token with a reason, resynchronise a TOTP token from two codes the
//! customer reads out, and send a pending card's activation code again. Which role
//! may do what is the core's `console_may_token`, read by the page (which forms it
//! draws) and by the use cases (which refuse the rest).

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{post, MethodRouter};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::dates::Dates;
use super::{csrf_input, failure, forbidden, terms, Clerk};
use crate::core::ports::TokenChange;
use crate::core::{
    console_may_token, Conflict, ConsoleTokenAct, CoreError, DomainError, TokenError,
};
use crate::http::state::AppState;
use otpgw_rules::records::Token;
use otpgw_rules::tokens::{TokenKind, TokenState};
use otpgw_rules::vocab::{Language, Role};

struct Words {
    tokens: &'static str,
    kind: &'static str,
    serial: &'static str,
    state: &'static str,
    last_used: &'static str,
    suspend: &'static str,
    reactivate: &'static str,
    revoke: &'static str,
    reason: &'static str,
    resync: &'static str,
    first: &'static str,
    second: &'static str,
    resync_hint: &'static str,
    done: &'static str,
    wrong_state: &'static str,
    no_resync: &'static str,
    resend: &'static str,
    resent: &'static str,
}

static EN: Words = Words {
    tokens: "Tokens",
    kind: "Kind",
    serial: "Serial",
    state: "State",
    last_used: "Last used",
    suspend: "Suspend token",
    reactivate: "Lift the token's suspension",
    revoke: "Revoke token",
    reason: "Reason",
    resync: "Resynchronise",
    first: "First code",
    second: "Next code",
    resync_hint: "Ask the customer for two codes in a row from the app.",
    done: "The token was changed.",
    wrong_state: "The token's state does not allow this change.",
    no_resync: "Those two codes do not follow each other for this token. Ask again.",
    resend: "Send the activation code again",
    resent: "A new activation code went to the card's phone.",
};

static FA: Words = Words {
    tokens: "توکن‌ها",
    kind: "نوع",
    serial: "شماره سریال",
    state: "وضعیت",
    last_used: "آخرین استفاده",
    suspend: "تعلیق توکن",
    reactivate: "برداشتن تعلیق توکن",
    revoke: "ابطال توکن",
    reason: "دلیل",
    resync: "همگام‌سازی",
    first: "رمز نخست",
    second: "رمز بعدی",
    resync_hint: "از مشتری دو رمز پشت‌سرهم از برنامه بپرسید.",
    done: "توکن تغییر کرد.",
    wrong_state: "وضعیت توکن این تغییر را نمی‌پذیرد.",
    no_resync: "این دو رمز برای این توکن پشت‌سرهم نیستند. دوباره بپرسید.",
    resend: "فرستادن دوبارهٔ کد فعال‌سازی",
    resent: "کد فعال‌سازی تازه به تلفن کارت فرستاده شد.",
};

fn words(lang: Language) -> &'static Words {
    match lang {
        Language::En => &EN,
        Language::Fa => &FA,
    }
}

/// The card page's notice after one of these actions, if `done` names one.
pub(super) fn notice(lang: Language, done: &str) -> Option<&'static str> {
    let w = words(lang);
    match done {
        "token" => Some(w.done),
        "activation" => Some(w.resent),
        _ => None,
    }
}

/// The changes a token in `state` can take, each with its form's id and label.
fn changes(state: TokenState, w: &Words) -> Vec<(TokenChange, &'static str, &'static str)> {
    let mut out = Vec::new();
    if state == TokenState::Active {
        out.push((TokenChange::Suspend, "suspend", w.suspend));
    }
    if state == TokenState::Suspended {
        out.push((TokenChange::Reactivate, "reactivate", w.reactivate));
    }
    if state != TokenState::Revoked {
        out.push((TokenChange::Revoke, "revoke", w.revoke));
    }
    out
}

/// The card page's section on its tokens: state in words, and the actions this
/// clerk may take on each.
pub(super) fn section(clerk: &Clerk, dates: &Dates, tokens: &[Token]) -> Markup {
    let lang = clerk.lang.lang;
    let w = words(lang);
    let role = clerk.who.role();
    html! {
        section aria-labelledby="tokens-title" {
            h2 id="tokens-title" { (w.tokens) }
            // Kind, serial, state and last use only: a token's secret never leaves
            // the core.
            div.scroll tabindex="0" { table id="tokens" {
                thead { tr { th { (w.kind) } th { (w.serial) } th { (w.state) } th { (w.last_used) } } }
                tbody {
                    @for tk in tokens {
                        tr data-token=(tk.id) {
                            td { bdi { (tk.kind.as_str().to_uppercase()) } " · " (terms::token_source(lang, tk.source)) }
                            td { bdi { (tk.serial.as_deref().unwrap_or("–")) } }
                            td data-state=(tk.state.as_str()) { (terms::token_state(lang, tk.state)) }
                            td { (tk.last_used_at.map_or_else(|| "–".to_owned(), |ms| dates.show(ms))) }
                        }
                    }
                }
            } }
            @for tk in tokens {
                (actions(clerk, w, role, tk))
            }
        }
    }
}

fn actions(clerk: &Clerk, w: &Words, role: Role, tk: &Token) -> Markup {
    let changes: Vec<_> = changes(tk.state, w)
        .into_iter()
        .filter(|(c, ..)| console_may_token(role, ConsoleTokenAct::Change(*c)))
        .collect();
    let resync = tk.kind == TokenKind::Totp
        && tk.state == TokenState::Active
        && console_may_token(role, ConsoleTokenAct::Resync);
    html! {
        @for (_, id, label) in &changes {
            form method="post" action={ "/console/tokens/" (tk.id) "/" (id) } id={ "token-" (tk.id) "-" (id) } class="inline" {
                (csrf_input(clerk))
                label for={ "token-" (tk.id) "-" (id) "-reason" } { (w.reason) }
                input type="text" id={ "token-" (tk.id) "-" (id) "-reason" } name="reason" required maxlength="500";
                button type="submit" class=[(*id == "revoke").then_some("danger")] { (label) " " bdi { "#" (tk.id) } }
            }
        }
        @if resync {
            form method="post" action={ "/console/tokens/" (tk.id) "/resync" } id={ "token-" (tk.id) "-resync" } class="inline" {
                (csrf_input(clerk))
                label for={ "token-" (tk.id) "-first" } { (w.first) }
                input type="text" id={ "token-" (tk.id) "-first" } name="first" required inputmode="numeric" autocomplete="off" maxlength="10" dir="ltr";
                label for={ "token-" (tk.id) "-second" } { (w.second) }
                input type="text" id={ "token-" (tk.id) "-second" } name="second" required inputmode="numeric" autocomplete="off" maxlength="10" dir="ltr";
                small { (w.resync_hint) }
                button type="submit" { (w.resync) " " bdi { "#" (tk.id) } }
            }
        }
    }
}

/// The form that sends a pending card's activation code again.
pub(super) fn resend_form(clerk: &Clerk, card_id: i64) -> Markup {
    let w = words(clerk.lang.lang);
    html! {
        form method="post" action={ "/console/cards/" (card_id) "/activation" } id="resend-activation" {
            (csrf_input(clerk))
            button type="submit" { (w.resend) }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ChangeForm {
    csrf: String,
    reason: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ResyncForm {
    csrf: String,
    first: String,
    second: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CsrfForm {
    csrf: String,
}

/// The route of one token change: the same form and checks for each.
pub(super) fn change(to: TokenChange) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>,
              clerk: Clerk,
              Path(id): Path<String>,
              form: Result<Form<ChangeForm>, FormRejection>| async move {
            let form = clerk.posted(form, |f| &f.csrf)?;
            let id = clerk.id(&id)?;
            let done = state
                .core
                .tokens
                .console_change(&clerk.who, id, to, &form.reason)
                .await;
            answer(&clerk, done)
        },
    )
}

pub(super) async fn resync(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(id): Path<String>,
    form: Result<Form<ResyncForm>, FormRejection>,
) -> Result<Response, Response> {
    let form = clerk.posted(form, |f| &f.csrf)?;
    let id = clerk.id(&id)?;
    let done = state
        .core
        .tokens
        .console_resync(&clerk.who, id, &form.first, &form.second)
        .await;
    answer(&clerk, done)
}

pub(super) async fn resend_activation(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, Response> {
    clerk.posted(form, |f| &f.csrf)?;
    let id = clerk.id(&id)?;
    let sent = state
        .core
        .enroll
        .resend_activation(id, &clerk.who.actor())
        .await;
    match sent {
        Ok(_) => Ok(Redirect::to(&format!("/console/cards/{id}?done=activation")).into_response()),
        Err(e) => Err(refusal(&clerk, e)),
    }
}

// The `Err` is the page that answers the request, as elsewhere in the console.
#[allow(clippy::result_large_err)]
fn answer(clerk: &Clerk, done: Result<Token, CoreError>) -> Result<Response, Response> {
    match done {
        Ok(token) => {
            let to = format!("/console/cards/{}?done=token", token.card_id);
            Ok(Redirect::to(&to).into_response())
        }
        Err(e) => Err(refusal(clerk, e)),
    }
}

fn refusal(clerk: &Clerk, e: CoreError) -> Response {
    let w = words(clerk.lang.lang);
    match e {
        CoreError::Forbidden => forbidden(clerk),
        CoreError::Domain(DomainError::WrongState(Conflict::Token(_) | Conflict::Card(_))) => {
            clerk.say(StatusCode::CONFLICT, w.wrong_state)
        }
        CoreError::Token(TokenError::NoResync) => clerk.say(StatusCode::BAD_REQUEST, w.no_resync),
        e => failure(clerk.lang, e),
    }
}
