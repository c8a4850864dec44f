//! The console's HTML, one function per page, written with maud: markup checked at
//! compile time and every interpolated value escaped. Pages show a card's last 4
//! digits at most, never a code or an API key (except a new key, once, to the admin
//! who created it).

use maud::{html, Markup, DOCTYPE};

use super::dates::format_time;
use super::i18n::Texts;
use super::life::{self, Standing};
use super::query::AuditQuery;
use super::{csrf_input, Clerk, Lang};
use crate::core::links::Phase;
use crate::core::{CardView, Health};
use otpgw_rules::approvals::Guarded;
use otpgw_rules::records::{ApiKeyInfo, Card, Event, Who};
use otpgw_rules::vocab::{CardStatus, Role, Verdict};

/// What the health strip shows, gathered by the handler from the core and from
/// this node's SMPP listener and operator connections.
pub struct HealthStrip {
    pub numbers: Health,
    pub smpp_sessions: usize,
    /// Operator connections and their state; `None` when client mode is off.
    pub connections: Option<Vec<(String, Phase)>>,
}

pub(super) fn layout(
    lang: Lang,
    clerk: Option<&Clerk>,
    here: &str,
    title: &str,
    body: Markup,
) -> Markup {
    let t = lang.texts();
    html! {
        (DOCTYPE)
        html lang=(t.code) dir=(t.dir) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (t.title) }
                link rel="stylesheet" href="/console/console.css";
            }
            body {
                header {
                    nav aria-label=(t.title) {
                        strong { (t.title) }
                        @if let Some(clerk) = clerk {
                            a href="/console" { (t.nav_home) }
                            a href="/console/audit" { (t.nav_audit) }
                            (super::marks::nav(clerk))
                            @if clerk.is_admin() {
                                a href="/console/keys" { (t.nav_keys) }
                                a href="/console/operators" { (t.nav_operators) }
                            }
                        }
                        a href={ (here) "?lang=" (t.other_lang_code) } lang=(t.other_lang_code) id="switch-lang" { (t.other_lang) }
                        @if let Some(clerk) = clerk {
                            span.who {
                                (t.signed_in_as) " "
                                @match &clerk.who {
                                    Who::Key(key) => { "#" (key.id) }
                                    Who::Operator { name, .. } => bdi { (name) }
                                }
                                " (" (clerk.who.role().as_str()) ")"
                            }
                            form method="post" action="/console/signout" id="signout" {
                                input type="hidden" name="csrf" value=(clerk.csrf);
                                button type="submit" { (t.sign_out) }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn sign_in(lang: Lang, error: Option<&str>) -> Markup {
    let t = lang.texts();
    layout(
        lang,
        None,
        "/console/signin",
        t.sign_in,
        html! {
            h1 { (t.sign_in) }
            p { (t.sign_in_intro) }
            @if let Some(error) = error {
                p.error role="alert" id="error" { (error) }
            }
            section aria-labelledby="operator-title" {
                h2 id="operator-title" { (t.operator_sign_in) }
                form method="post" action="/console/signin/operator" id="signin-operator" {
                    label for="name" { (t.operator_name) }
                    input type="text" id="name" name="name" autocomplete="username" maxlength="64" dir="ltr" required;
                    label for="password" { (t.password) }
                    input type="password" id="password" name="password" autocomplete="current-password" maxlength="256" required;
                    button type="submit" { (t.sign_in) }
                }
            }
            section aria-labelledby="key-title" {
                h2 id="key-title" { (t.key_sign_in) }
                p { (t.key_sign_in_note) }
                form method="post" action="/console/signin" id="signin" {
                    label for="key" { (t.api_key) }
                    input type="password" id="key" name="key" autocomplete="off" required;
                    button type="submit" { (t.sign_in) }
                }
            }
        },
    )
}

pub fn message(
    lang: Lang,
    clerk: Option<&Clerk>,
    status: axum::http::StatusCode,
    text: &str,
) -> Markup {
    let t = lang.texts();
    layout(
        lang,
        clerk,
        "/console",
        text,
        html! {
            h1 { (status.as_u16()) }
            p.error role="alert" id="error" { (text) }
            @if clerk.is_none() && status == axum::http::StatusCode::UNAUTHORIZED {
                p { a href="/console/signin" { (t.sign_in) } }
            }
        },
    )
}

pub fn home(clerk: &Clerk, strip: &HealthStrip, notice: Option<&str>) -> Markup {
    let t = clerk.lang.texts();
    layout(
        clerk.lang,
        Some(clerk),
        "/console",
        t.nav_home,
        html! {
            @if let Some(notice) = notice { p.notice role="status" { (notice) } }
            (health_strip(t, strip))
            (find_forms(clerk))
        },
    )
}

fn health_strip(t: &Texts, strip: &HealthStrip) -> Markup {
    let hour = strip.numbers.last_hour;
    let ratio = if hour.codes_issued > 0 {
        format!(
            "{:.2}",
            hour.verifications as f64 / hour.codes_issued as f64
        )
    } else {
        "–".to_owned()
    };
    // The share of code messages (replies and pushes) that never reached the
    // customer: refused by the peer or the SMSC, or given up on.
    let failed = if hour.codes_issued > 0 {
        format!(
            "{:.0}%",
            100.0 * hour.undelivered as f64 / hour.codes_issued as f64
        )
    } else {
        "–".to_owned()
    };
    html! {
        section aria-labelledby="health-title" id="health" {
            h2 id="health-title" { (t.health) }
            dl.strip {
                div { dt { (t.smpp_sessions) } dd id="smpp-sessions" { (strip.smpp_sessions) } }
                div {
                    dt { (t.connections) }
                    dd id="connections" {
                        @match &strip.connections {
                            None => { (t.no_connections) }
                            Some(conns) => {
                                @for (name, phase) in conns {
                                    span class={ "conn " (if matches!(phase, Phase::Bound) { "up" } else { "down" }) } {
                                        (name) ": " (Phase::as_str(*phase))
                                    }
                                    " "
                                }
                            }
                        }
                    }
                }
                div { dt { (t.issued_hour) } dd id="issued" { (hour.codes_issued) } }
                div { dt { (t.verified_hour) } dd id="verified" { (hour.verifications) } }
                div { dt { (t.ratio) } dd id="ratio" { (ratio) } }
                div { dt { (t.locks_today) } dd id="locks" { (strip.numbers.locks_today) } }
                div { dt { (t.failed_share) } dd id="failed-share" { (failed) } }
            }
        }
    }
}

fn find_forms(clerk: &Clerk) -> Markup {
    let t = clerk.lang.texts();
    html! {
        section aria-labelledby="find-title" {
            h2 id="find-title" { (t.find_card) }
            div.forms {
                form method="post" action="/console/find" id="find-pan" {
                    (csrf_input(clerk))
                    label for="pan" { (t.by_pan) }
                    input type="text" id="pan" name="pan" inputmode="numeric" autocomplete="off" aria-describedby="pan-hint" required;
                    small id="pan-hint" { (t.pan_hint) }
                    button type="submit" { (t.find) }
                }
                form method="post" action="/console/find" id="find-msisdn" {
                    (csrf_input(clerk))
                    label for="msisdn" { (t.by_msisdn) }
                    input type="tel" id="msisdn" name="msisdn" autocomplete="off" required;
                    button type="submit" { (t.find) }
                }
            }
        }
    }
}

pub fn find_result(clerk: &Clerk, error: Option<&str>, cards: &[Card]) -> Markup {
    let t = clerk.lang.texts();
    layout(
        clerk.lang,
        Some(clerk),
        "/console",
        t.find_card,
        html! {
            @if let Some(error) = error { p.error role="alert" id="error" { (error) } }
            @if !cards.is_empty() {
                h2 { (t.cards_of_number) }
                ul id="cards" {
                    @for card in cards {
                        li { a href={ "/console/cards/" (card.id) } { (t.card) " •••• " (card.last4) } " — " (status_name(t, card.status)) }
                    }
                }
            }
            (find_forms(clerk))
        },
    )
}

fn status_name(t: &Texts, s: CardStatus) -> &'static str {
    match s {
        CardStatus::Active => t.active,
        CardStatus::Locked => t.locked,
        CardStatus::Suspended => t.suspended,
        CardStatus::Pending => t.pending,
        CardStatus::Closed => t.closed,
    }
}

pub fn card(clerk: &Clerk, view: &CardView, standing: &Standing, done: Option<&str>) -> Markup {
    let t = clerk.lang.texts();
    let card = &view.card;
    let here = format!("/console/cards/{}", card.id);
    let why = match card.status {
        CardStatus::Active => t.active_detail.to_owned(),
        CardStatus::Pending => t.pending.to_owned(),
        CardStatus::Closed => t.closed.to_owned(),
        CardStatus::Locked => match &view.last_lock {
            Some(e) => t
                .locked_detail
                .replace(
                    "{n}",
                    &e.detail["failures"]
                        .as_i64()
                        .unwrap_or(card.failures)
                        .to_string(),
                )
                .replace("{at}", &format_time(e.at))
                .replace("{actor}", &e.actor),
            None => t.locked.to_owned(),
        },
        CardStatus::Suspended => match &view.last_suspension {
            Some(e) => {
                let mut s = t
                    .suspended_detail
                    .replace("{at}", &format_time(e.at))
                    .replace("{actor}", &e.actor);
                if let Some(reason) = e.detail["reason"].as_str() {
                    s.push_str(" — ");
                    s.push_str(reason);
                }
                s
            }
            None => t.suspended.to_owned(),
        },
    };
    // What this clerk may do now; the core refuses anything else anyway.
    let admin = clerk.is_admin();
    let can_reactivate =
        card.status == CardStatus::Locked || (admin && card.status == CardStatus::Suspended);
    let can_suspend = admin && !matches!(card.status, CardStatus::Suspended | CardStatus::Closed);
    let reactivate_label = if card.status == CardStatus::Suspended {
        t.lift_suspension
    } else {
        t.reactivate
    };
    html_card(
        clerk,
        &here,
        t,
        (view, standing),
        done,
        &why,
        (can_reactivate, reactivate_label),
        can_suspend,
    )
}

#[allow(clippy::too_many_arguments)]
fn html_card(
    clerk: &Clerk,
    here: &str,
    t: &Texts,
    (view, standing): (&CardView, &Standing),
    done: Option<&str>,
    why: &str,
    (can_reactivate, reactivate_label): (bool, &str),
    can_suspend: bool,
) -> Markup {
    let card = &view.card;
    let title = format!("{} •••• {}", t.card, card.last4);
    layout(
        clerk.lang,
        Some(clerk),
        here,
        &title,
        html! {
            @match done {
                Some("reactivated") => { p.notice role="status" id="notice" { (t.done_reactivated) } }
                Some("suspended") => { p.notice role="status" id="notice" { (t.done_suspended) } }
                Some(other) => { @if let Some(n) = life::notice(t, other) { p.notice role="status" id="notice" { (n) } } }
                None => {}
            }
            h1 { (title) }
            dl.card {
                div { dt { (t.status) } dd id="status" data-status=(card.status.as_str()) { span class={ "badge " (card.status.as_str()) } { (status_name(t, card.status)) } } }
                div { dt { (t.why_locked) } dd id="why" { (why) } }
                div { dt { (t.failures) } dd id="failures" { (card.failures) } }
                div { dt { (t.msisdn) } dd { (card.msisdn) } }
                div { dt { (t.enrolled) } dd { (format_time(card.created_at)) } }
                div { dt { (t.updated) } dd { (format_time(card.updated_at)) } }
                (life::rows(t, card, standing))
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
                (life::forms(clerk, card))
                @if !can_reactivate && !can_suspend && !life::any_offered(clerk, card.status) { p { (t.no_actions) } }
            }
            section aria-labelledby="codes-title" {
                h2 id="codes-title" { (t.recent_codes) }
                @if view.codes.is_empty() { p { (t.none_yet) } } @else {
                    div.scroll { table id="codes" {
                        thead { tr { th { (t.time) } th { (t.channel) } th { (t.route) } th { (t.connection) } th { (t.delivery) } th { (t.state) } } }
                        tbody {
                            @for c in &view.codes {
                                tr {
                                    td { (format_time(c.issued_at)) }
                                    td { (c.channel) }
                                    td { (c.route.as_deref().map(|r| if r.is_empty() { "default" } else { r }).unwrap_or("–")) }
                                    td { (c.connection.as_deref().unwrap_or(&c.peer)) }
                                    td { (c.delivery.map_or("–", |d| d.as_str())) }
                                    td { (c.state.as_str()) }
                                }
                            }
                        }
                    } }
                }
            }
            @if !view.tokens.is_empty() {
                section aria-labelledby="tokens-title" {
                    h2 id="tokens-title" { (t.tokens) }
                    // Kind, serial, state and last use only: a token's secret never
                    // leaves the core.
                    div.scroll { table id="tokens" {
                        thead { tr { th { (t.token_kind) } th { (t.serial) } th { (t.state) } th { (t.last_used) } } }
                        tbody {
                            @for tk in &view.tokens {
                                tr {
                                    td { (tk.kind.as_str()) " / " (tk.source.as_str()) }
                                    td { (tk.serial.as_deref().unwrap_or("–")) }
                                    td { (tk.state.as_str()) }
                                    td { (tk.last_used_at.map_or_else(|| "–".to_owned(), format_time)) }
                                }
                            }
                        }
                    } }
                }
            }
            section aria-labelledby="verifs-title" {
                h2 id="verifs-title" { (t.recent_verifications) }
                @if view.verifications.is_empty() { p { (t.none_yet) } } @else {
                    div.scroll { table id="verifications" {
                        thead { tr { th { (t.time) } th { (t.key) } th { (t.request_id) } th { (t.result) } } }
                        tbody {
                            @for v in &view.verifications {
                                tr {
                                    td { (format_time(v.at)) }
                                    td { "apikey:" (v.api_key_id) }
                                    td { (v.request_id) }
                                    td {
                                        @match v.verdict {
                                            Verdict::Approved => { "approved" }
                                            Verdict::Rejected(r) => { "rejected: " (r.as_str()) }
                                        }
                                    }
                                }
                            }
                        }
                    } }
                }
            }
            p { a href={ "/console/audit?card=" (card.id) } id="card-audit" { (t.view_audit) } }
        },
    )
}

pub fn audit(clerk: &Clerk, query: &AuditQuery, events: &[Event], next: Option<i64>) -> Markup {
    let t = clerk.lang.texts();
    let filters = query.to_query();
    let sep = if filters.is_empty() { "" } else { "&" };
    layout(
        clerk.lang,
        Some(clerk),
        "/console/audit",
        t.audit,
        html! {
            h1 { (t.audit) }
            form method="get" action="/console/audit" id="audit-search" class="filters" {
                div { label for="f-card" { (t.card_id) } input type="number" id="f-card" name="card" min="1" value=(query.card); }
                div { label for="f-actor" { (t.actor) } input type="text" id="f-actor" name="actor" placeholder="apikey:1" value=(query.actor); }
                div { label for="f-kind" { (t.kind) } input type="text" id="f-kind" name="kind" list="kinds" value=(query.kind); }
                datalist id="kinds" {
                    @for k in ["enrolled", "code_issued", "verified", "locked", "reactivated", "suspended", "phone_changed", "reissued", "closed", "sim_swapped", "api_key_created", "api_key_revoked", "console_signed_in", "verify_guard_tripped"] {
                        option value=(k) {}
                    }
                }
                div { label for="f-from" { (t.from) } input type="date" id="f-from" name="from" value=(query.from); }
                div { label for="f-to" { (t.to) } input type="date" id="f-to" name="to" value=(query.to); }
                button type="submit" { (t.search) }
            }
            p {
                a href={ "/console/audit.csv?" (filters) } id="export" download { (t.export_csv) }
                " · " (t.times_utc)
            }
            @if events.is_empty() { p id="no-events" { (t.no_events) } } @else {
                div.scroll { table id="events" {
                    thead { tr { th { "#" } th { (t.time) } th { (t.card_id) } th { (t.kind) } th { (t.actor) } th { (t.detail) } } }
                    tbody {
                        @for e in events {
                            tr {
                                td { (e.id) }
                                td { (format_time(e.at)) }
                                td { @if let Some(c) = e.card_id { a href={ "/console/cards/" (c) } { (c) } } }
                                td { (e.kind) }
                                td { (e.actor) }
                                td { code { (e.detail.to_string()) } }
                            }
                        }
                    }
                } }
            }
            nav.pager aria-label=(t.audit) {
                @if !query.before.is_empty() { a href={ "/console/audit?" (filters) } { (t.newest) } }
                @if let Some(next) = next { a href={ "/console/audit?" (filters) (sep) "before=" (next) } id="older" { (t.older) } }
            }
        },
    )
}

pub fn keys(clerk: &Clerk, keys: &[ApiKeyInfo]) -> Markup {
    let t = clerk.lang.texts();
    layout(
        clerk.lang,
        Some(clerk),
        "/console/keys",
        t.keys,
        html! {
            h1 { (t.keys) }
            div.scroll { table id="keys" {
                thead { tr { th { (t.id) } th { (t.role) } th { (t.label) } th { (t.created) } th { (t.revoked) } th { span.sr { (t.actions) } } } }
                tbody {
                    @for k in keys {
                        tr id={ "key-" (k.id) } {
                            td { (k.id) }
                            td { (k.role.as_str()) }
                            td { (k.label.as_deref().unwrap_or("")) }
                            td { (format_time(k.created_at)) }
                            td { @if let Some(at) = k.revoked_at { (format_time(at)) } }
                            td {
                                @if k.revoked_at.is_none() {
                                    form method="post" action={ "/console/keys/" (k.id) "/revoke" } {
                                        (csrf_input(clerk))
                                        button type="submit" class="danger" aria-label={ (t.revoke) " #" (k.id) } { (t.revoke) }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
            section aria-labelledby="create-title" {
                h2 id="create-title" { (t.create_key) }
                form method="post" action="/console/keys" id="create-key" {
                    (csrf_input(clerk))
                    // The newest key when this form was drawn: the server refuses
                    // the form once a key exists after it, so reloading the page
                    // that shows a new key does not make (and show) another.
                    input type="hidden" name="after" value=(keys.iter().map(|k| k.id).max().unwrap_or(0));
                    label for="role" { (t.role) }
                    select id="role" name="role" {
                        @for r in [Role::Helpdesk, Role::Admin, Role::Verifier, Role::Ussd] {
                            option value=(r.as_str()) { (r.as_str()) }
                        }
                    }
                    label for="label" { (t.label) }
                    input type="text" id="label" name="label" maxlength="100";
                    @if clerk.guards(Guarded::ApikeyCreate) {
                        label for="key-reason" { (t.reason) }
                        textarea id="key-reason" name="reason" required maxlength="500" {}
                        (super::marks::note(clerk, Guarded::ApikeyCreate))
                    }
                    button type="submit" { (t.create) }
                }
            }
        },
    )
}

pub fn new_key(clerk: &Clerk, id: i64, role: Role, key: &str) -> Markup {
    let t = clerk.lang.texts();
    layout(
        clerk.lang,
        Some(clerk),
        "/console/keys",
        t.new_key,
        html! {
            h1 { (t.new_key) " #" (id) " (" (role.as_str()) ")" }
            p.notice role="status" { (t.new_key_once) }
            p { output id="new-key" { code { (key) } } }
            p { a href="/console/keys" { (t.back_to_keys) } }
        },
    )
}

// ---- time ------------------------------------------------------------------------
