//! The console's HTML, one function per page, written with maud: markup checked at
//! compile time and every interpolated value escaped. Pages show a card's last 4
//! digits at most, never a code or an API key (except a new key, once, to the admin
//! who created it).

use maud::{html, Markup, DOCTYPE};

use super::{csrf_input, terms, Clerk, Lang};
use otpgw_rules::approvals::Guarded;
use otpgw_rules::records::{ApiKeyInfo, Card, Who};
use otpgw_rules::vocab::Role;

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
                                    Who::Key(key) => { bdi { "#" (key.id) } }
                                    Who::Operator { name, .. } | Who::Oidc { name, .. } => bdi { (name) }
                                }
                                " (" (terms::role(lang.lang, clerk.who.role())) ")"
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

/// The sign-in page; `sso` when `[console.oidc]` is set (the link to it first).
pub fn sign_in(lang: Lang, sso: bool, error: Option<&str>) -> Markup {
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
            @if sso {
                (super::sso_texts::sign_in_link(lang.lang))
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

pub fn home(clerk: &Clerk, notice: Option<&str>) -> Markup {
    let t = clerk.lang.texts();
    layout(
        clerk.lang,
        Some(clerk),
        "/console",
        t.nav_home,
        html! {
            @if let Some(notice) = notice { p.notice role="status" { (notice) } }
            // The strip refreshes itself in its own frame (the console runs no
            // script), so a clerk typing in the find form is not interrupted.
            iframe.health src={ "/console/health?lang=" (t.code) } title=(t.health) id="health-frame" {}
            (find_forms(clerk))
        },
    )
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
                        li { a href={ "/console/cards/" (card.id) } { (t.card) " •••• " bdi { (card.last4) } } " — " (terms::card_status(clerk.lang.lang, card.status)) }
                    }
                }
            }
            (find_forms(clerk))
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
            div.scroll tabindex="0" { table id="keys" {
                thead { tr { th { (t.id) } th { (t.role) } th { (t.label) } th { (t.created) } th { (t.revoked) } th { span.sr { (t.actions) } } } }
                tbody {
                    @for k in keys {
                        tr id={ "key-" (k.id) } {
                            td { bdi { (k.id) } }
                            td data-role=(k.role.as_str()) { (terms::role(clerk.lang.lang, k.role)) }
                            td { bdi { (k.label.as_deref().unwrap_or("")) } }
                            td { (clerk.dates.show(k.created_at)) }
                            td { @if let Some(at) = k.revoked_at { (clerk.dates.show(at)) } }
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
                            option value=(r.as_str()) { (terms::role(clerk.lang.lang, r)) }
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
            h1 { (t.new_key) " " bdi { "#" (id) } " (" (terms::role(clerk.lang.lang, role)) ")" }
            p.notice role="status" { (t.new_key_once) }
            p { output id="new-key" dir="ltr" { code { (key) } } }
            p { a href="/console/keys" { (t.back_to_keys) } }
        },
    )
}
