//! Two-person rules in the console (`[console] four_eyes`): a guarded action's
//! form says it needs a second person and, sent, makes a proposal (`propose`,
//! called by the card and key handlers) instead of the change; `/console/approvals`
//! lists the open proposals and the last decided ones, with Approve and Refuse
//! for those who may and Withdraw for the proposer (the form's note and the
//! header's count are `marks.rs`'s). The core decides everything (`Approvals`); this page only draws it.
//! Its words in fa and en are here (`Words`), beside the markup.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::pages::{self, layout};
use super::session::CsrfForm;
use super::{csrf_input, failure, html, Clerk, Lang};
use crate::core::ports::Proposal;
use crate::core::{ApprovalError, CoreError, DomainError, Missing, Proposed};
use crate::http::state::AppState;
use otpgw_rules::approvals::{Guarded, NotApprover, Outcome};
use otpgw_rules::vocab::{Language, Role};

/// The words of these pages and notes.
pub(super) struct Words {
    title: &'static str,
    proposed_title: &'static str,
    proposed_text: &'static str,
    see_list: &'static str,
    open: &'static str,
    decided: &'static str,
    none_open: &'static str,
    action: &'static str,
    card: &'static str,
    details: &'static str,
    reason: &'static str,
    proposer: &'static str,
    expires: &'static str,
    outcome: &'static str,
    decided_by: &'static str,
    approve: &'static str,
    refuse: &'static str,
    refusal_reason: &'static str,
    withdraw: &'static str,
    your_own: &'static str,
    key_once: &'static str,
    own_refused: &'static str,
    role_refused: &'static str,
    decided_already: &'static str,
    expired: &'static str,
    not_proposer: &'static str,
    action_refused: &'static str,
    approved_done: &'static str,
    actions: [&'static str; 4],
    outcomes: [&'static str; 5],
}

const EN: Words = Words {
    title: "Approvals (two-person rules)",
    proposed_title: "Proposed",
    proposed_text: "Your proposal waits for a second person. Nothing has changed yet.",
    see_list: "See the open proposals",
    open: "Open proposals",
    decided: "Recently decided",
    none_open: "No proposal waits for a decision.",
    action: "Action",
    card: "Card",
    details: "Details",
    reason: "Reason",
    proposer: "Proposed by",
    expires: "Expires",
    outcome: "Outcome",
    decided_by: "Decided by",
    approve: "Approve",
    refuse: "Refuse",
    refusal_reason: "Reason for refusing",
    withdraw: "Withdraw",
    your_own: "Your own proposal: another person decides it.",
    key_once: "Approving an API key creates it: the key is shown once, to you, the approver.",
    own_refused: "You proposed this: another person must approve it.",
    role_refused: "Your role may not approve this action.",
    decided_already: "This proposal was decided already.",
    expired: "This proposal has expired and can no longer be approved.",
    not_proposer: "Only the person who proposed it may withdraw it.",
    action_refused: "Approved, but the action was refused now (the card or number changed since): the proposal is marked failed.",
    approved_done: "Approved and done.",
    actions: ["Lift a lock", "Create an API key", "Change the phone number", "Close the card"],
    outcomes: ["approved", "refused", "withdrawn", "expired", "failed"],
};

const FA: Words = Words {
    title: "تأییدها (قاعدهٔ دو نفره)",
    proposed_title: "پیشنهاد ثبت شد",
    proposed_text: "پیشنهاد شما در انتظار تأیید نفر دوم است. هنوز چیزی تغییر نکرده است.",
    see_list: "دیدن پیشنهادهای باز",
    open: "پیشنهادهای باز",
    decided: "تصمیم‌های اخیر",
    none_open: "پیشنهادی در انتظار تصمیم نیست.",
    action: "کار",
    card: "کارت",
    details: "جزئیات",
    reason: "دلیل",
    proposer: "پیشنهاددهنده",
    expires: "انقضا",
    outcome: "نتیجه",
    decided_by: "تصمیم‌گیرنده",
    approve: "تأیید",
    refuse: "رد",
    refusal_reason: "دلیل رد",
    withdraw: "پس گرفتن",
    your_own: "پیشنهاد خود شما: فرد دیگری درباره‌اش تصمیم می‌گیرد.",
    key_once: "تأیید کلید API آن را می‌سازد: کلید فقط یک بار، به شما که تأیید می‌کنید، نشان داده می‌شود.",
    own_refused: "این را خودتان پیشنهاد داده‌اید: فرد دیگری باید تأیید کند.",
    role_refused: "نقش شما اجازهٔ تأیید این کار را ندارد.",
    decided_already: "دربارهٔ این پیشنهاد قبلاً تصمیم گرفته شده است.",
    expired: "این پیشنهاد منقضی شده و دیگر تأیید نمی‌شود.",
    not_proposer: "فقط پیشنهاددهنده می‌تواند آن را پس بگیرد.",
    action_refused: "تأیید شد، اما انجام کار اکنون رد شد (کارت یا شماره از آن زمان تغییر کرده است): پیشنهاد ناموفق ثبت شد.",
    approved_done: "تأیید و انجام شد.",
    actions: ["رفع قفل", "ساخت کلید API", "تغییر شمارهٔ تلفن", "بستن کارت"],
    outcomes: ["تأییدشده", "ردشده", "پس‌گرفته", "منقضی", "ناموفق"],
};

pub(super) fn words(lang: Lang) -> &'static Words {
    match lang.lang {
        Language::Fa => &FA,
        Language::En => &EN,
    }
}

fn action_name(w: &Words, a: Guarded) -> &'static str {
    let i = Guarded::ALL.iter().position(|g| *g == a).unwrap_or(0);
    w.actions[i]
}

fn outcome_name(w: &Words, o: Outcome) -> &'static str {
    let i = Outcome::ALL.iter().position(|x| *x == o).unwrap_or(0);
    w.outcomes[i]
}

/// Makes a proposal instead of the change, and answers with the page that says so.
pub(super) async fn propose(
    state: &AppState,
    clerk: &Clerk,
    proposed: Proposed,
    reason: &str,
) -> Response {
    let made = state
        .core
        .approvals
        .propose(&clerk.who, proposed, reason, clerk.source.as_deref())
        .await;
    match made {
        Ok(p) => {
            let w = words(clerk.lang);
            let page = layout(
                clerk.lang,
                Some(clerk),
                "/console/approvals",
                w.proposed_title,
                html! {
                    h1 { (w.proposed_title) }
                    p.notice role="status" id="proposed" data-proposal=(p.id) { (w.proposed_text) }
                    p { a href="/console/approvals" id="see-approvals" { (w.see_list) } }
                },
            );
            html(clerk.lang, StatusCode::ACCEPTED, page)
        }
        Err(e) => refused(clerk, e),
    }
}

/// A refusal of a two-person step as a page.
fn refused(clerk: &Clerk, e: CoreError) -> Response {
    let (w, t) = (words(clerk.lang), clerk.lang.texts());
    let (status, text) = match &e {
        CoreError::Approval(ApprovalError::NotApprover(NotApprover::Proposer)) => {
            (StatusCode::FORBIDDEN, w.own_refused)
        }
        CoreError::Approval(ApprovalError::NotApprover(NotApprover::Role))
        | CoreError::Forbidden => (StatusCode::FORBIDDEN, w.role_refused),
        CoreError::Approval(ApprovalError::NotProposer) => (StatusCode::FORBIDDEN, w.not_proposer),
        CoreError::Approval(ApprovalError::Decided) => (StatusCode::CONFLICT, w.decided_already),
        CoreError::Approval(ApprovalError::Expired) => (StatusCode::CONFLICT, w.expired),
        CoreError::Approval(ApprovalError::ActionRefused(_)) => {
            (StatusCode::CONFLICT, w.action_refused)
        }
        CoreError::Domain(DomainError::NotFound(Missing::Proposal | Missing::Card)) => {
            (StatusCode::NOT_FOUND, t.not_found)
        }
        CoreError::ReasonRequired => (StatusCode::BAD_REQUEST, t.reason_required),
        CoreError::Msisdn(_) => (StatusCode::BAD_REQUEST, t.invalid_msisdn),
        _ => return failure(clerk.lang, e),
    };
    tracing::info!(actor = %clerk.who.actor(), error = %e, "console two-person step refused");
    clerk.say(status, text)
}

pub(super) async fn page(State(state): State<AppState>, clerk: Clerk) -> Response {
    match state.core.approvals.list().await {
        Ok(all) => html(clerk.lang, StatusCode::OK, list(&clerk, &all, None)),
        Err(e) => failure(clerk.lang, e),
    }
}

fn list(clerk: &Clerk, all: &[Proposal], notice: Option<Markup>) -> Markup {
    let w = words(clerk.lang);
    let (open, decided): (Vec<_>, Vec<_>) = all.iter().partition(|p| p.decided_at.is_none());
    layout(
        clerk.lang,
        Some(clerk),
        "/console/approvals",
        w.title,
        html! {
            @if let Some(n) = notice { (n) }
            h1 { (w.title) }
            section aria-labelledby="open-title" {
                h2 id="open-title" { (w.open) }
                @if open.is_empty() { p id="none-open" { (w.none_open) } }
                @for p in &open { (proposal(clerk, p)) }
            }
            @if !decided.is_empty() {
                section aria-labelledby="decided-title" {
                    h2 id="decided-title" { (w.decided) }
                    div.scroll { table id="decided" {
                        thead { tr { th { "#" } th { (w.action) } th { (w.card) } th { (w.proposer) } th { (w.outcome) } th { (w.decided_by) } } }
                        tbody {
                            @for p in &decided {
                                tr id={ "decided-" (p.id) } data-outcome=[p.outcome.map(Outcome::as_str)] {
                                    td { (p.id) }
                                    td { (action_name(w, p.action)) }
                                    td { @if let Some(id) = p.card_id { a href={ "/console/cards/" (id) } { "#" (id) } } }
                                    td { bdi { (p.proposer_name) } }
                                    td { @if let Some(o) = p.outcome { (outcome_name(w, o)) } }
                                    td { bdi { (p.decided_by.as_deref().unwrap_or("–")) } @if let Some(at) = p.decided_at { br; small { (clerk.dates.show(at)) } } }
                                }
                            }
                        }
                    } }
                }
            }
        },
    )
}

/// One open proposal with the buttons this clerk may use.
fn proposal(clerk: &Clerk, p: &Proposal) -> Markup {
    let w = words(clerk.lang);
    let own = p.proposer == clerk.who.actor();
    let may = p.action.may(clerk.who.role());
    let base = format!("/console/approvals/{}", p.id);
    html! {
        article.proposal id={ "proposal-" (p.id) } data-action=(p.action.as_str()) {
            h3 { "#" (p.id) " · " (action_name(w, p.action)) }
            dl {
                @if let Some(id) = p.card_id {
                    div { dt { (w.card) } dd { a href={ "/console/cards/" (id) } { "#" (id) } } }
                }
                @if let Some(m) = p.params.get("msisdn").and_then(|v| v.as_str()) {
                    div { dt { (w.details) } dd { bdi dir="ltr" { (m) } } }
                }
                @if let Some(r) = p.params.get("role").and_then(|v| v.as_str()).and_then(Role::parse) {
                    div { dt { (w.details) } dd { (super::terms::role(clerk.lang.lang, r)) @if let Some(l) = p.params.get("label").and_then(|v| v.as_str()) { " · " bdi { (l) } } } }
                }
                div { dt { (w.reason) } dd { bdi { (p.reason) } } }
                div { dt { (w.proposer) } dd.proposer { bdi { (p.proposer_name) } " (" bdi { (p.proposer) } ")" br; small { (clerk.dates.show(p.created_at)) } } }
                div { dt { (w.expires) } dd { (clerk.dates.show(p.expires_at)) } }
            }
            @if own {
                p { (w.your_own) }
                form method="post" action={ (base) "/withdraw" } {
                    (csrf_input(clerk))
                    button type="submit" id={ "withdraw-" (p.id) } { (w.withdraw) }
                }
            }
            // The proposer sees no Approve button; a direct post is refused and
            // audited by the core all the same.
            @if may && !own {
                @if p.action == Guarded::ApikeyCreate { p { (w.key_once) } }
                form method="post" action={ (base) "/approve" } {
                    (csrf_input(clerk))
                    button type="submit" id={ "approve-" (p.id) } { (w.approve) }
                }
                form method="post" action={ (base) "/refuse" } {
                    (csrf_input(clerk))
                    label for={ "refuse-reason-" (p.id) } { (w.refusal_reason) }
                    textarea id={ "refuse-reason-" (p.id) } name="reason" required maxlength="500" {}
                    button type="submit" class="danger" id={ "refuse-" (p.id) } { (w.refuse) }
                }
            }
        }
    }
}

pub(super) async fn approve(
    State(state): State<AppState>,
    mut clerk: Clerk,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, Response> {
    clerk.posted(form, |f| &f.csrf)?;
    let id = clerk.id(&id)?;
    let source = clerk.source.clone();
    let approved = state
        .core
        .approvals
        .approve(&clerk.who, id, source.as_deref())
        .await;
    let approved = approved.map_err(|e| refused(&clerk, e))?;
    if let (Some((key_id, key)), Some(role)) = (
        &approved.new_key,
        approved.proposal.params["role"]
            .as_str()
            .and_then(Role::parse),
    ) {
        // Shown once, to this approver, on a page never cached.
        let page = pages::new_key(&clerk, *key_id, role, key);
        return Ok(html(clerk.lang, StatusCode::CREATED, page));
    }
    let all = state.core.approvals.list().await;
    let all = all.map_err(|e| failure(clerk.lang, e))?;
    // The header's count was read before this approval.
    let open = all.iter().filter(|p| p.decided_at.is_none()).count();
    clerk.open_proposals = Some(i64::try_from(open).unwrap_or(i64::MAX));
    let notice = html! { p.notice role="status" id="notice" { (words(clerk.lang).approved_done) } };
    Ok(html(
        clerk.lang,
        StatusCode::OK,
        list(&clerk, &all, Some(notice)),
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RefuseForm {
    csrf: String,
    reason: String,
}

pub(super) async fn refuse(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(id): Path<String>,
    form: Result<Form<RefuseForm>, FormRejection>,
) -> Result<Response, Response> {
    let form = clerk.posted(form, |f| &f.csrf)?;
    let id = clerk.id(&id)?;
    let done = state
        .core
        .approvals
        .refuse(&clerk.who, id, &form.reason, clerk.source.as_deref())
        .await;
    done.map_err(|e| refused(&clerk, e))?;
    Ok(Redirect::to("/console/approvals").into_response())
}

pub(super) async fn withdraw(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, Response> {
    clerk.posted(form, |f| &f.csrf)?;
    let id = clerk.id(&id)?;
    let done = state
        .core
        .approvals
        .withdraw(&clerk.who, id, clerk.source.as_deref())
        .await;
    done.map_err(|e| refused(&clerk, e))?;
    Ok(Redirect::to("/console/approvals").into_response())
}
