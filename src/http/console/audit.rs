//! The audit trail for the help desk: a search by card (id or last 4), actor, kind
//! (chosen from the whole vocabulary, `EventKind::ALL`) and days of the bank's
//! zone, paged, each event a sentence in the clerk's language; and its export as
//! CSV (UTC, the stored kinds and details; formula-safe).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};

use super::dates::utc;
use super::pages::layout;
use super::query::AuditQuery;
use super::sentences::sentence;
use super::{failure, html, terms, Clerk};
use crate::http::state::AppState;
use maud::{html as markup_of, Markup};
use otpgw_rules::events::EventKind;
use otpgw_rules::records::Event;

/// Audit rows per page, and the most rows one CSV export holds.
const PAGE_SIZE: i64 = 50;
const CSV_MAX_ROWS: i64 = 10_000;

/// What a search answers with: a page of events, or the CSV export of them.
#[derive(Clone, Copy)]
pub(super) enum Answer {
    Page,
    Csv,
}

/// The audit search, answered as `answer` says: one handler, so the page and the
/// export cannot filter differently.
pub(super) fn search(answer: Answer) -> MethodRouter<AppState> {
    get(
        move |State(state): State<AppState>, clerk: Clerk, query: AuditQuery| async move {
            let limit = match answer {
                Answer::Page => PAGE_SIZE,
                Answer::Csv => CSV_MAX_ROWS,
            };
            let found = state
                .core
                .backoffice
                .search_audit(&query.filter(&clerk.dates), limit)
                .await;
            let events = found.map_err(|e| failure(clerk.lang, e))?;
            Ok::<_, Response>(match answer {
                Answer::Page => page(&clerk, &query, &events),
                Answer::Csv => csv(&clerk, &events),
            })
        },
    )
}

fn page(clerk: &Clerk, query: &AuditQuery, events: &[Event]) -> Response {
    let next = (events.len() as i64 == PAGE_SIZE)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    let page = markup(clerk, query, events, next);
    html(clerk.lang, StatusCode::OK, page)
}

fn csv(clerk: &Clerk, events: &[Event]) -> Response {
    let mut out = String::from("id,at,card_id,kind,actor,detail\r\n");
    for e in events {
        let row = [
            e.id.to_string(),
            utc(e.at),
            e.card_id.map(|c| c.to_string()).unwrap_or_default(),
            e.kind.clone(),
            e.actor.clone(),
            e.detail.to_string(),
        ];
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    tracing::info!(
        actor = %clerk.who.actor(),
        rows = events.len(),
        "audit exported"
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"otpgw-audit.csv\"",
            ),
        ],
        out,
    )
        .into_response()
}

/// One CSV field, quoted. A field a spreadsheet would run as a formula (a clerk's
/// reason starting with `=`) is prefixed with `'`.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn markup(clerk: &Clerk, query: &AuditQuery, events: &[Event], next: Option<i64>) -> Markup {
    let (t, lang) = (clerk.lang.texts(), clerk.lang.lang);
    let filters = query.to_query();
    let sep = if filters.is_empty() { "" } else { "&" };
    let chosen = query.kind.trim();
    layout(
        clerk.lang,
        Some(clerk),
        "/console/audit",
        t.audit,
        markup_of! {
            h1 { (t.audit) }
            form method="get" action="/console/audit" id="audit-search" class="filters" {
                div { label for="f-card" { (t.card_id) } input type="number" id="f-card" name="card" min="1" value=(query.card) dir="ltr"; }
                div { label for="f-last4" { (t.last4) } input type="text" id="f-last4" name="last4" inputmode="numeric" pattern="[0-9]{4}" maxlength="4" value=(query.last4) dir="ltr"; }
                div { label for="f-actor" { (t.actor) } input type="text" id="f-actor" name="actor" placeholder="operator:sara" value=(query.actor) dir="ltr"; }
                div {
                    label for="f-kind" { (t.kind) }
                    select id="f-kind" name="kind" {
                        option value="" selected[chosen.is_empty()] { (t.any_kind) }
                        @for k in EventKind::ALL {
                            option value=(k.as_str()) selected[chosen == k.as_str()] { (terms::kind(lang, *k)) }
                        }
                    }
                }
                div { label for="f-from" { (t.from) } input type="text" id="f-from" name="from" value=(query.from) dir="ltr" aria-describedby="date-hint"; }
                div { label for="f-to" { (t.to) } input type="text" id="f-to" name="to" value=(query.to) dir="ltr" aria-describedby="date-hint"; }
                button type="submit" { (t.search) }
                small id="date-hint" { (t.date_hint) }
            }
            p {
                a href={ "/console/audit.csv?" (filters) } id="export" download { (t.export_csv) }
                " · " (t.times_in.replace("{zone}", clerk.dates.zone_name()))
            }
            @if events.is_empty() { p id="no-events" { (t.no_events) } } @else {
                div.scroll tabindex="0" { table id="events" {
                    thead { tr { th { "#" } th { (t.time) } th { (t.card_id) } th { (t.kind) } th { (t.what) } th { (t.detail) } } }
                    tbody {
                        @for e in events {
                            tr data-kind=(e.kind) data-actor=(e.actor) {
                                td { bdi { (e.id) } }
                                td { (clerk.dates.show(e.at)) }
                                td { @if let Some(c) = e.card_id { a href={ "/console/cards/" (c) } { bdi { (c) } } } }
                                td { (EventKind::parse(&e.kind).map_or(e.kind.as_str(), |k| terms::kind(lang, k))) }
                                td.sentence { (sentence(lang, &clerk.dates, e)) }
                                td { details { summary { (t.detail) } code dir="ltr" { (e.detail.to_string()) } } }
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
