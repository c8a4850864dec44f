//! A card's page: its state and why (a timed lock says when it ends, and offers no
//! button the policy would refuse), the actions this clerk may take, its recent
//! codes and verifications (each saying whether it counted toward the lock and the
//! attempts left after it), its tokens, and the way to its audit trail. Every state
//! and result is in the clerk's words (`terms.rs`), every time in the bank's zone.

use maud::{html, Markup};

use super::pages::layout;
use super::{csrf_input, life, terms, tokens, Clerk};
use crate::core::CardView;
use life::Standing;
use otpgw_rules::approvals::Guarded;
use otpgw_rules::vocab::CardStatus;

pub fn page(clerk: &Clerk, view: &CardView, standing: &Standing, done: Option<&str>) -> Markup {
    let (t, lang) = (clerk.lang.texts(), clerk.lang.lang);
    let card = &view.card;
    let title = format!("{} •••• {}", t.card, card.last4);
    let here = format!("/console/cards/{}", card.id);
    // What this clerk may do now; the core refuses anything else anyway. A timed
    // lock is lifted by nobody: it ends by itself.
    let admin = clerk.is_admin();
    let can_reactivate = (card.status == CardStatus::Locked && card.locked_until.is_none())
        || (admin && card.status == CardStatus::Suspended);
    let can_suspend = admin && !matches!(card.status, CardStatus::Suspended | CardStatus::Closed);
    let reactivate_label = if card.status == CardStatus::Suspended {
        t.lift_suspension
    } else {
        t.reactivate
    };
    let notice = done.and_then(|d| match d {
        "reactivated" => Some(t.done_reactivated),
        "suspended" => Some(t.done_suspended),
        other => life::notice(t, other).or_else(|| tokens::notice(lang, other)),
    });
    layout(
        clerk.lang,
        Some(clerk),
        &here,
        &title,
        html! {
            @if let Some(n) = notice { p.notice role="status" id="notice" { (n) } }
            h1 { (t.card) " •••• " bdi { (card.last4) } }
            dl.card {
                div { dt { (t.status) } dd id="status" data-status=(card.status.as_str()) { span class={ "badge " (card.status.as_str()) } { (terms::card_status(lang, card.status)) } } }
                div { dt { (t.why_locked) } dd id="why" { (why(clerk, view)) } }
                div { dt { (t.failures) } dd id="failures" { (number(clerk, card.failures)) } }
                div { dt { (t.msisdn) } dd { bdi { (card.msisdn) } } }
                div { dt { (t.enrolled) } dd { (clerk.dates.show(card.created_at)) } }
                div { dt { (t.updated) } dd { (clerk.dates.show(card.updated_at)) } }
                (life::rows(clerk, card, standing))
            }
            section aria-labelledby="actions-title" {
                h2 id="actions-title" { (t.actions) }
                @if can_reactivate {
                    form method="post" action={ "/console/cards/" (card.id) "/reactivate" } id="reactivate" {
                        (csrf_input(clerk))
                        label for="reactivate-reason" { (t.reason) }
                        textarea id="reactivate-reason" name="reason" required maxlength="500" aria-describedby="reactivate-hint" {}
                        small id="reactivate-hint" { (t.reason_hint) }
                        (super::marks::note(clerk, Guarded::LiftLock))
                        button type="submit" { (reactivate_label) }
                    }
                }
                @if can_suspend {
                    form method="post" action={ "/console/cards/" (card.id) "/suspend" } id="suspend" {
                        (csrf_input(clerk))
                        label for="suspend-reason" { (t.reason) }
                        textarea id="suspend-reason" name="reason" required maxlength="500" {}
                        button type="submit" class="danger" { (t.suspend) }
                    }
                }
                @if card.status == CardStatus::Pending { (tokens::resend_form(clerk, card.id)) }
                (life::forms(clerk, card))
                @if !can_reactivate && !can_suspend && card.status != CardStatus::Pending && !life::any_offered(clerk, card.status) { p { (t.no_actions) } }
            }
            (codes(clerk, view))
            @if !view.tokens.is_empty() { (tokens::section(clerk, &clerk.dates, &view.tokens)) }
            (verifications(clerk, view))
            p { a href={ "/console/audit?card=" (card.id) } id="card-audit" { (t.view_audit) } }
        },
    )
}

/// A count in the clerk's digits.
fn number(clerk: &Clerk, n: i64) -> String {
    match clerk.lang.lang {
        otpgw_rules::vocab::Language::Fa => super::dates::persian_digits(&n.to_string()),
        otpgw_rules::vocab::Language::En => n.to_string(),
    }
}

/// Why the card stands as it does, in a sentence.
fn why(clerk: &Clerk, view: &CardView) -> Markup {
    let (t, dates) = (clerk.lang.texts(), &clerk.dates);
    let card = &view.card;
    let lock_until = |e: &otpgw_rules::records::Event| e.detail["locked_until"].as_i64();
    match card.status {
        CardStatus::Active => match view
            .last_lock
            .as_ref()
            .and_then(|e| Some((e, lock_until(e)?)))
        {
            // An active card whose last lock was timed: that lock ended by itself
            // (nobody lifts one early), whether or not a write has recorded that
            // yet (`Card::as_of`).
            Some((e, until)) => html! {
                (t.active_detail) " "
                span id="lock-ended" { (t.lock_ended.replace("{at}", &dates.show(e.at)).replace("{until}", &dates.show(until))) }
            },
            _ => html! { (t.active_detail) },
        },
        CardStatus::Pending => html! { (terms::card_status(clerk.lang.lang, card.status)) },
        CardStatus::Closed => html! { (terms::card_status(clerk.lang.lang, card.status)) },
        CardStatus::Locked => {
            let said = match &view.last_lock {
                Some(e) => t
                    .locked_detail
                    .replace(
                        "{n}",
                        &number(
                            clerk,
                            e.detail["failures"].as_i64().unwrap_or(card.failures),
                        ),
                    )
                    .replace("{at}", &dates.show(e.at))
                    .replace("{actor}", &format!("\u{2068}{}\u{2069}", e.actor)),
                None => terms::card_status(clerk.lang.lang, card.status).to_owned(),
            };
            html! {
                (said)
                @if let Some(until) = card.locked_until {
                    " " span id="lock-ends" { (t.lock_ends.replace("{until}", &dates.show(until))) }
                }
            }
        }
        CardStatus::Suspended => match &view.last_suspension {
            Some(e) => html! {
                (t.suspended_detail.replace("{at}", &dates.show(e.at)).replace("{actor}", &format!("\u{2068}{}\u{2069}", e.actor)))
                @if let Some(reason) = e.detail["reason"].as_str() { " — " q { bdi { (reason) } } }
            },
            None => html! { (terms::card_status(clerk.lang.lang, card.status)) },
        },
    }
}

fn codes(clerk: &Clerk, view: &CardView) -> Markup {
    let (t, lang) = (clerk.lang.texts(), clerk.lang.lang);
    html! {
        section aria-labelledby="codes-title" {
            h2 id="codes-title" { (t.recent_codes) }
            @if view.codes.is_empty() { p { (t.none_yet) } } @else {
                div.scroll tabindex="0" { table id="codes" {
                    thead { tr { th { (t.time) } th { (t.channel) } th { (t.route) } th { (t.connection) } th { (t.delivery) } th { (t.state) } } }
                    tbody {
                        @for c in &view.codes {
                            tr {
                                td { (clerk.dates.show(c.issued_at)) }
                                td { (terms::channel(lang, &c.channel)) }
                                td { @match c.route.as_deref() { Some("") => { (t.default_route) } Some(r) => { bdi { (r) } } None => { "–" } } }
                                td { bdi { (c.connection.as_deref().unwrap_or(&c.peer)) } }
                                td data-delivery=[c.delivery.map(|d| d.as_str())] { (terms::delivery(lang, c.delivery)) }
                                td data-state=(c.state.as_str()) { (terms::code_state(lang, c.state)) }
                            }
                        }
                    }
                } }
            }
        }
    }
}

fn verifications(clerk: &Clerk, view: &CardView) -> Markup {
    let (t, lang) = (clerk.lang.texts(), clerk.lang.lang);
    html! {
        section aria-labelledby="verifs-title" {
            h2 id="verifs-title" { (t.recent_verifications) }
            @if view.verifications.is_empty() { p { (t.none_yet) } } @else {
                div.scroll tabindex="0" { table id="verifications" {
                    thead { tr { th { (t.time) } th { (t.asked_by) } th { (t.request_id) } th { (t.result) } th { (t.counted) } th { (t.attempts_left) } } }
                    tbody {
                        @for v in &view.verifications {
                            tr {
                                td { (clerk.dates.show(v.at)) }
                                td { bdi { (v.actor) } }
                                td { bdi { (v.request_id) } }
                                td data-result=(match v.verdict { otpgw_rules::vocab::Verdict::Approved => "approved", otpgw_rules::vocab::Verdict::Rejected(r) => r.as_str() }) { (terms::verdict(lang, v.verdict)) }
                                td data-counted=[v.counted.map(|c| if c { "yes" } else { "no" })] {
                                    @match v.counted { Some(true) => { (t.yes) } Some(false) => { (t.no) } None => { "–" } }
                                }
                                td data-attempts=[v.attempts_left] { (v.attempts_left.map_or_else(|| "–".to_owned(), |n| number(clerk, n))) }
                            }
                        }
                    }
                } }
            }
        }
    }
}
