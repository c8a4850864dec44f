//! The audit trail: appending events, a card's history, the console's search and
//! the counts of its health strip.

use async_trait::async_trait;
use sqlx::{AnyConnection, Row};

use super::port;
use super::{event_from_row, insert_event, Store};
use crate::core::ports::{Activity, AuditFilter, AuditStore, NewEvent};
use crate::core::DomainError;
use otpgw_rules::records::Event;

#[async_trait]
impl AuditStore for Store {
    /// Appends an audit event that belongs to no single verification or card change.
    async fn audit(&self, event: NewEvent<'_>) -> Result<(), DomainError> {
        let (kind, actor) = (event.kind.to_owned(), event.actor.to_owned());
        let (card_id, detail, at) = (event.card_id, event.detail, event.at);
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(
                    async move { insert_event(conn, card_id, &kind, &actor, detail, at).await },
                )
            })
            .await
        })
        .await
    }

    async fn events(&self, card_id: i64, limit: i64) -> Result<Vec<Event>, DomainError> {
        let query = sqlx::query(
            "SELECT id, card_id, kind, actor, detail, at FROM events WHERE card_id = $1 ORDER BY id LIMIT $2",
        );
        port(self.read_all(query.bind(card_id).bind(limit), event_from_row)).await
    }

    /// Audit events matching `filter`, newest first, at most `limit`.
    async fn search_events(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<Event>, DomainError> {
        port(async move {
            enum Arg<'s> {
                Int(i64),
                Text(&'s str),
            }
            let args: Vec<(&str, Arg<'_>)> = [
                filter.card_id.map(|v| ("card_id =", Arg::Int(v))),
                filter.last4.as_deref().map(|v| {
                    let cards = "card_id IN (SELECT id FROM cards WHERE last4 =";
                    (cards, Arg::Text(v))
                }),
                filter.actor.as_deref().map(|v| ("actor =", Arg::Text(v))),
                filter.kind.as_deref().map(|v| ("kind =", Arg::Text(v))),
                filter.from.map(|v| ("at >=", Arg::Int(v))),
                filter.to.map(|v| ("at <", Arg::Int(v))),
                filter.before_id.map(|v| ("id <", Arg::Int(v))),
            ]
            .into_iter()
            .flatten()
            .collect();
            let clauses: Vec<String> = args
                .iter()
                .enumerate()
                .map(|(i, (column, _))| {
                    let close = if column.ends_with("last4 =") { ")" } else { "" };
                    format!("{column} ${}{close}", i + 1)
                })
                .collect();
            let filter_sql = if clauses.is_empty() {
                String::new()
            } else {
                format!("WHERE {}", clauses.join(" AND "))
            };
            let sql = format!(
                "SELECT id, card_id, kind, actor, detail, at FROM events {filter_sql} ORDER BY id DESC LIMIT ${}",
                args.len() + 1
            );
            let mut query = sqlx::query(&sql);
            for (_, arg) in args {
                query = match arg {
                    Arg::Int(v) => query.bind(v),
                    Arg::Text(v) => query.bind(v),
                };
            }
            self.read_all(query.bind(limit), event_from_row).await
        })
        .await
    }

    /// Codes issued (and how many of their messages failed) and verify answers
    /// given since `since` (epoch ms).
    async fn activity_since(&self, since: i64) -> Result<Activity, DomainError> {
        port(async move {
            let codes = sqlx::query(
                "SELECT COUNT(*) AS issued, \
                 COALESCE(SUM(CASE WHEN delivery IN ('undelivered', 'expired') THEN 1 ELSE 0 END), 0) AS failed \
                 FROM codes WHERE issued_at >= $1",
            )
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
            let row = sqlx::query(
                "SELECT COUNT(*) AS total, \
                 COALESCE(SUM(CASE WHEN result = 'approved' THEN 1 ELSE 0 END), 0) AS approved \
                 FROM verifications WHERE created_at >= $1",
            )
            .bind(since)
            .fetch_one(&self.pool)
            .await?;
            Ok(Activity {
                codes_issued: codes.try_get("issued")?,
                undelivered: codes.try_get("failed")?,
                verifications: row.try_get("total")?,
                approved: row.try_get("approved")?,
            })
        })
        .await
    }

    /// Audit events of one kind since `since` (epoch ms).
    async fn count_events_since(&self, kind: &str, since: i64) -> Result<i64, DomainError> {
        port(async move {
            Ok(
                sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE kind = $1 AND at >= $2")
                    .bind(kind)
                    .bind(since)
                    .fetch_one(&self.pool)
                    .await?,
            )
        })
        .await
    }
}
