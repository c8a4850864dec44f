//! The audit search's filters, as the form sends them and as links carry them.

use axum::extract::Query;
use axum::http::request::Parts;
use serde::Deserialize;

use super::dates::Dates;
use super::parse_id;
use crate::core::ports::AuditFilter;
use crate::http::state::AppState;

/// The audit search form, as query parameters (nothing in it is secret).
#[derive(Deserialize, Default, Clone)]
pub struct AuditQuery {
    #[serde(default)]
    pub card: String,
    /// A card's last 4 digits: events of every card ending so.
    #[serde(default)]
    pub last4: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub kind: String,
    /// A day of the bank's zone, inclusive (`YYYY-MM-DD`, Gregorian or Jalali).
    #[serde(default)]
    pub from: String,
    /// A day of the bank's zone, inclusive.
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub before: String,
}

infallible_from_parts!(AuditQuery);

impl AuditQuery {
    /// A query string that does not parse filters nothing.
    fn from_parts(parts: &Parts, _: &AppState) -> Self {
        let query = Query::<Self>::try_from_uri(&parts.uri);
        query.map(|Query(q)| q).unwrap_or_default()
    }

    pub(super) fn filter(&self, dates: &Dates) -> AuditFilter {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let last4 = self.last4.trim();
        AuditFilter {
            card_id: parse_id(self.card.trim()),
            // Anything but 4 digits matches no card (not every card).
            last4: (!last4.is_empty()).then(|| last4.to_owned()),
            actor: text(&self.actor),
            kind: text(&self.kind),
            from: dates.day_start(&self.from),
            to: dates.day_end(&self.to),
            before_id: parse_id(self.before.trim()),
        }
    }

    /// The query string of these filters, without the page.
    pub fn to_query(&self) -> String {
        [
            ("card", &self.card),
            ("last4", &self.last4),
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
