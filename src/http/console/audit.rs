//! The audit trail for the help desk: a search by card, actor, kind and dates,
//! paged, and its export as CSV (formula-safe).

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{failure, html, pages, parse_id, Clerk};
use crate::core::ports::AuditFilter;
use crate::http::state::AppState;

/// Audit rows per page, and the most rows one CSV export holds.
const PAGE_SIZE: i64 = 50;
const CSV_MAX_ROWS: i64 = 10_000;

/// The audit search form, as query parameters (nothing in it is secret).
#[derive(Deserialize, Default, Clone)]
pub struct AuditQuery {
    #[serde(default)]
    pub card: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub kind: String,
    /// `YYYY-MM-DD`, UTC, inclusive.
    #[serde(default)]
    pub from: String,
    /// `YYYY-MM-DD`, UTC, inclusive.
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub before: String,
}

impl AuditQuery {
    fn filter(&self) -> AuditFilter {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        AuditFilter {
            card_id: parse_id(self.card.trim()),
            actor: text(&self.actor),
            kind: text(&self.kind),
            from: pages::parse_date(self.from.trim()),
            to: pages::parse_date(self.to.trim()).map(|d| d + 24 * 3600 * 1000),
            before_id: parse_id(self.before.trim()),
        }
    }

    /// The query string of these filters, without the page.
    pub fn to_query(&self) -> String {
        [
            ("card", &self.card),
            ("actor", &self.actor),
            ("kind", &self.kind),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
    }
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub(super) async fn audit(
    State(state): State<AppState>,
    clerk: Clerk,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = query.unwrap_or_default();
    match state
        .core
        .backoffice
        .search_audit(&query.filter(), PAGE_SIZE)
        .await
    {
        Ok(events) => {
            let next = (events.len() as i64 == PAGE_SIZE)
                .then(|| events.last().map(|e| e.id))
                .flatten();
            html(
                clerk.lang,
                StatusCode::OK,
                pages::audit(&clerk, &query, &events, next),
            )
        }
        Err(e) => failure(clerk.lang, e),
    }
}

pub(super) async fn audit_csv(
    State(state): State<AppState>,
    clerk: Clerk,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = query.unwrap_or_default();
    let events = match state
        .core
        .backoffice
        .search_audit(&query.filter(), CSV_MAX_ROWS)
        .await
    {
        Ok(events) => events,
        Err(e) => return failure(clerk.lang, e),
    };
    let mut out = String::from("id,at,card_id,kind,actor,detail\r\n");
    for e in &events {
        let row = [
            e.id.to_string(),
            pages::format_time(e.at),
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
