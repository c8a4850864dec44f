//! The audit trail for the help desk: a search by card, actor, kind and dates,
//! paged, and its export as CSV (formula-safe).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};

use super::dates::format_time;
use super::query::AuditQuery;
use super::{failure, html, pages, Clerk};
use crate::http::state::AppState;
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
                .search_audit(&query.filter(), limit)
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
    let page = pages::audit(clerk, query, events, next);
    html(clerk.lang, StatusCode::OK, page)
}

fn csv(clerk: &Clerk, events: &[Event]) -> Response {
    let mut out = String::from("id,at,card_id,kind,actor,detail\r\n");
    for e in events {
        let row = [
            e.id.to_string(),
            format_time(e.at),
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
