//! The audit trail for the help desk: a search by card, actor, kind and dates,
//! paged, and its export as CSV (formula-safe).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::dates::format_time;
use super::query::AuditQuery;
use super::{failure, html, pages, Clerk};
use crate::core::CoreError;
use crate::http::state::AppState;
use otpgw_rules::records::Event;

/// Audit rows per page, and the most rows one CSV export holds.
const PAGE_SIZE: i64 = 50;
const CSV_MAX_ROWS: i64 = 10_000;

async fn search(state: &AppState, query: &AuditQuery, limit: i64) -> Result<Vec<Event>, CoreError> {
    state
        .core
        .backoffice
        .search_audit(&query.filter(), limit)
        .await
}

pub(super) async fn audit(
    State(state): State<AppState>,
    clerk: Clerk,
    query: AuditQuery,
) -> Result<Response, Response> {
    let events = search(&state, &query, PAGE_SIZE)
        .await
        .map_err(|e| failure(clerk.lang, e))?;
    let next = (events.len() as i64 == PAGE_SIZE)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    let page = pages::audit(&clerk, &query, &events, next);
    Ok(html(clerk.lang, StatusCode::OK, page))
}

pub(super) async fn audit_csv(
    State(state): State<AppState>,
    clerk: Clerk,
    query: AuditQuery,
) -> Result<Response, Response> {
    let events = search(&state, &query, CSV_MAX_ROWS)
        .await
        .map_err(|e| failure(clerk.lang, e))?;
    let mut out = String::from("id,at,card_id,kind,actor,detail\r\n");
    for e in &events {
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
        api_key_id = clerk.key.id,
        rows = events.len(),
        "audit exported"
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"otpgw-audit.csv\"",
            ),
        ],
        out,
    )
        .into_response())
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
