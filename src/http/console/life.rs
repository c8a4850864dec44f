//! A card's life from the console: a new phone number (admin and help desk), a new
//! card number and closure (admin only), each with a reason, through the same core
//! use cases as `/v1/cards/{id}/…`; and what the card page says about the phone:
//! when it changed, the hold on pushed codes, the last SIM-swap refusal.
//!
//! The JSON API keeps these changes for `admin` keys; the help desk changes a
//! phone here, signed in, where the change is audited with its clerk's key. Which
//! role may do what is decided by `may`, read both by the page (which forms it
//! draws) and by the handlers (which refuse the rest), so the two cannot drift.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::i18n::Texts;
use super::{csrf_input, failure, forbidden, Clerk};
use crate::core::{CardView, Conflict, CoreError, DomainError, Existing, Proposed};
use crate::http::state::AppState;
use otpgw_rules::approvals::Guarded;
use otpgw_rules::codes::Pan;
use otpgw_rules::records::{Card, Event};
use otpgw_rules::vocab::{CardStatus, Role};

/// The changes of a card's life the console offers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    Phone,
    Reissue,
    Close,
}

/// Whether `role` may make this change from the console.
fn may(role: Role, act: Act) -> bool {
    match act {
        Act::Phone => matches!(role, Role::Admin | Role::Helpdesk),
        Act::Reissue | Act::Close => role == Role::Admin,
    }
}

/// Whether the page offers `act` on a card in `status`: what the role may do and
/// the core would not refuse (a closed card takes no change; a pending card's
/// activation code is keyed by its number, so it is enrolled anew, not reissued).
fn offered(clerk: &Clerk, act: Act, status: CardStatus) -> bool {
    let open = status != CardStatus::Closed;
    may(clerk.who.role(), act) && open && !(act == Act::Reissue && status == CardStatus::Pending)
}

/// What the card page adds about the phone, gathered by `standing`.
pub(super) struct Standing {
    /// Until when pushed codes are held back after a phone change, if they are.
    pub held_until: Option<i64>,
    /// The latest `sim_swapped` event: only refusals are audited.
    pub sim_swap: Option<Event>,
}

pub(super) fn standing(state: &AppState, view: &CardView) -> Standing {
    Standing {
        held_until: state.core.issue.pushed_held_until(&view.card),
        sim_swap: view.last_sim_swap.clone(),
    }
}

/// The card page's rows about the phone and its SIM.
pub(super) fn rows(clerk: &Clerk, card: &Card, standing: &Standing) -> Markup {
    let (t, dates) = (clerk.lang.texts(), &clerk.dates);
    let changed = card.phone_changed_at.map(|ms| dates.show(ms));
    html! {
        div { dt { (t.phone_changed_at) } dd id="phone-changed" { (changed.as_deref().unwrap_or(t.never)) } }
        @if let Some(until) = standing.held_until {
            div { dt { (t.held_until) } dd id="phone-hold" { (dates.show(until)) br; small { (t.held_note) } } }
        }
        div { dt { (t.sim_swap) } dd id="sim-swap" {
            @match &standing.sim_swap {
                Some(e) => {
                    (t.sim_swap_detail
                        .replace("{at}", &dates.show(e.at))
                        .replace("{msisdn}", e.detail["msisdn"].as_str().unwrap_or("–"))
                        .replace("{channel}", e.detail["channel"].as_str().unwrap_or("–")))
                }
                None => { (t.no_sim_swap) }
            }
        } }
        @if let Some(by) = card.replaced_by {
            div { dt { (t.reissue) } dd id="replaced-by" {
                a href={ "/console/cards/" (by) } { (t.replaced_by.replace("{id}", &by.to_string())) }
            } }
        }
    }
}

/// Whether the page has any of these forms for this clerk and card.
pub(super) fn any_offered(clerk: &Clerk, status: CardStatus) -> bool {
    [Act::Phone, Act::Reissue, Act::Close]
        .into_iter()
        .any(|act| offered(clerk, act, status))
}

/// The forms this clerk may send for this card. The new card number's field is
/// never filled in: the page does not hold a card number, even the one just typed.
pub(super) fn forms(clerk: &Clerk, card: &Card) -> Markup {
    let t = clerk.lang.texts();
    let to = |what: &str| format!("/console/cards/{}/{what}", card.id);
    html! {
        @if offered(clerk, Act::Phone, card.status) {
            form method="post" action=(to("phone")) id="phone" {
                h3 { (t.change_phone) }
                (csrf_input(clerk))
                label for="phone-msisdn" { (t.new_msisdn) }
                input type="tel" id="phone-msisdn" name="msisdn" autocomplete="off" required maxlength="32" aria-describedby="phone-hint";
                small id="phone-hint" { (t.change_phone_hint) }
                label for="phone-reason" { (t.reason) }
                textarea id="phone-reason" name="reason" required maxlength="500" {}
                (super::marks::note(clerk, Guarded::PhoneChange))
                button type="submit" { (t.change_phone) }
            }
        }
        @if offered(clerk, Act::Reissue, card.status) {
            form method="post" action=(to("reissue")) id="reissue" {
                h3 { (t.reissue) }
                (csrf_input(clerk))
                label for="reissue-pan" { (t.new_pan) }
                input type="text" id="reissue-pan" name="pan" inputmode="numeric" autocomplete="off" required maxlength="32" aria-describedby="reissue-hint";
                small id="reissue-hint" { (t.new_pan_hint) }
                label for="reissue-reason" { (t.reason) }
                textarea id="reissue-reason" name="reason" required maxlength="500" {}
                button type="submit" { (t.reissue) }
            }
        }
        @if offered(clerk, Act::Close, card.status) {
            form method="post" action=(to("close")) id="close" {
                h3 { (t.close) }
                (csrf_input(clerk))
                small id="close-hint" { (t.close_hint) }
                label for="close-reason" { (t.reason) }
                textarea id="close-reason" name="reason" required maxlength="500" aria-describedby="close-hint" {}
                (super::marks::note(clerk, Guarded::CardClose))
                button type="submit" class="danger" { (t.close) }
            }
        }
    }
}

/// The notice after one of these changes (`?done=`), if `done` names one.
pub(super) fn notice(t: &Texts, done: &str) -> Option<&'static str> {
    match done {
        "phone_changed" => Some(t.done_phone_changed),
        "reissued" => Some(t.done_reissued),
        "closed" => Some(t.done_closed),
        _ => None,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PhoneForm {
    csrf: String,
    msisdn: String,
    reason: String,
}

pub(super) async fn change_phone(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(id): Path<String>,
    form: Result<Form<PhoneForm>, FormRejection>,
) -> Result<Response, Response> {
    let form = clerk.posted(form, |f| &f.csrf)?;
    let id = allowed(&clerk, Act::Phone, &id)?;
    if form.msisdn.chars().count() > 32 {
        return Err(clerk.say(StatusCode::BAD_REQUEST, clerk.lang.texts().invalid_msisdn));
    }
    if clerk.guards(Guarded::PhoneChange) {
        let proposed = Proposed::PhoneChange {
            card_id: id,
            msisdn: form.msisdn,
        };
        return Ok(super::propose(&state, &clerk, proposed, &form.reason).await);
    }
    let actor = clerk.who.actor();
    let changed = state
        .core
        .backoffice
        .change_phone(
            id,
            &form.msisdn,
            &form.reason,
            &actor,
            clerk.source.as_deref(),
        )
        .await;
    answer(&clerk, id, changed.map(drop), "phone_changed")
}

/// The new number is parsed into a `Pan` and then only its hashes travel on; the
/// form's text is never quoted back, whatever goes wrong.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ReissueForm {
    csrf: String,
    pan: String,
    reason: String,
}

pub(super) async fn reissue(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(id): Path<String>,
    form: Result<Form<ReissueForm>, FormRejection>,
) -> Result<Response, Response> {
    let form = clerk.posted(form, |f| &f.csrf)?;
    let id = allowed(&clerk, Act::Reissue, &id)?;
    let Ok(pan) = Pan::parse(&form.pan) else {
        return Err(clerk.say(StatusCode::BAD_REQUEST, clerk.lang.texts().invalid_pan));
    };
    let actor = clerk.who.actor();
    let reissued = state
        .core
        .backoffice
        .reissue(id, &pan, &form.reason, &actor)
        .await;
    answer(&clerk, id, reissued.map(drop), "reissued")
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CloseForm {
    csrf: String,
    reason: String,
}

pub(super) async fn close(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(id): Path<String>,
    form: Result<Form<CloseForm>, FormRejection>,
) -> Result<Response, Response> {
    let form = clerk.posted(form, |f| &f.csrf)?;
    let id = allowed(&clerk, Act::Close, &id)?;
    if clerk.guards(Guarded::CardClose) {
        let proposed = Proposed::CardClose { card_id: id };
        return Ok(super::propose(&state, &clerk, proposed, &form.reason).await);
    }
    let actor = clerk.who.actor();
    let source = clerk.source.as_deref();
    let closed = state
        .core
        .backoffice
        .close(id, &form.reason, &actor, source);
    let closed = closed.await;
    answer(&clerk, id, closed.map(drop), "closed")
}

/// The card id of a change this clerk's role may make; else the page that says no.
#[allow(clippy::result_large_err)] // the page that answers, built once per request
fn allowed(clerk: &Clerk, act: Act, raw_id: &str) -> Result<i64, Response> {
    if !may(clerk.who.role(), act) {
        return Err(forbidden(clerk));
    }
    clerk.id(raw_id)
}

/// Back to the card with a notice, or the page that says why not.
#[allow(clippy::result_large_err)]
fn answer(
    clerk: &Clerk,
    id: i64,
    result: Result<(), CoreError>,
    done: &str,
) -> Result<Response, Response> {
    let t = clerk.lang.texts();
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/console/cards/{id}?done={done}")).into_response()),
        Err(CoreError::ReasonRequired) => {
            Err(clerk.say(StatusCode::BAD_REQUEST, t.reason_required))
        }
        Err(CoreError::Msisdn(_)) => Err(clerk.say(StatusCode::BAD_REQUEST, t.invalid_msisdn)),
        Err(CoreError::Domain(DomainError::WrongState(Conflict::Card(status)))) => {
            let text = t.wrong_status.replace("{status}", status.as_str());
            Err(clerk.say(StatusCode::CONFLICT, &text))
        }
        Err(CoreError::Domain(DomainError::Exists(Existing::Card(_)))) => {
            Err(clerk.say(StatusCode::CONFLICT, t.pan_taken))
        }
        Err(e) => Err(failure(clerk.lang, e)),
    }
}
