//! Two-person rules' proposals (migration 0016). Every write is one job of the
//! writer with its audit event; a decision is one guarded `UPDATE` (`decided_at IS
//! NULL`, and for approval `expires_at > now`), so of two clerks deciding at once
//! exactly one changes the row (on PostgreSQL the second waits for the first's row
//! lock, then finds the row decided).

use async_trait::async_trait;
use sqlx::{AnyConnection, Row};

use super::error::StoreError;
use super::{insert_event, port, Store};
use crate::core::ports::{ApprovalStore, Decision, NewProposal, Proposal};
use crate::core::DomainError;
use otpgw_rules::approvals::{Guarded, Outcome};

const COLUMNS: &str = "id, action, card_id, params, reason, proposer, proposer_name, \
                       created_at, expires_at, decided_at, decided_by, outcome, refusal";

/// The actor of what nobody did (a proposal's expiry).
const EXPIRY_ACTOR: &str = "policy";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Proposal, StoreError> {
    let action: String = r.try_get("action")?;
    let params: String = r.try_get("params")?;
    let outcome: Option<String> = r.try_get("outcome")?;
    let outcome = match outcome {
        Some(o) => {
            Some(Outcome::parse(&o).ok_or_else(|| StoreError::Corrupt(format!("outcome {o}")))?)
        }
        None => None,
    };
    Ok(record!(r => Proposal {
        id, card_id, reason, proposer, proposer_name, created_at, expires_at, decided_at,
        decided_by, refusal;
        action: Guarded::parse(&action)
            .ok_or_else(|| StoreError::Corrupt(format!("action {action}")))?,
        params: serde_json::from_str(&params)
            .map_err(|_| StoreError::Corrupt("approval params".into()))?,
        outcome,
    }))
}

async fn by_id(conn: &mut AnyConnection, id: i64) -> Result<Proposal, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM approvals WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_one(&mut *conn).await?;
    from_row(&row)
}

#[async_trait]
impl ApprovalStore for Store {
    async fn propose(&self, p: NewProposal<'_>) -> Result<Proposal, DomainError> {
        let (action, card_id, now, expires_at) = (p.action, p.card_id, p.now, p.expires_at);
        let params = p.params.to_string();
        let (reason, proposer, name) = (
            p.reason.to_owned(),
            p.proposer.to_owned(),
            p.proposer_name.to_owned(),
        );
        let mut detail = p.detail;
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO approvals (action, card_id, params, reason, proposer, \
                         proposer_name, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    )
                    .bind(action.as_str())
                    .bind(card_id)
                    .bind(&params)
                    .bind(&reason)
                    .bind(&proposer)
                    .bind(&name)
                    .bind(now)
                    .bind(expires_at)
                    .fetch_one(&mut *conn)
                    .await?;
                    detail["proposal"] = serde_json::json!(id);
                    insert_event(conn, card_id, "approval_proposed", &proposer, detail, now)
                        .await?;
                    by_id(conn, id).await
                })
            })
            .await
        })
        .await
    }

    async fn proposal(&self, id: i64) -> Result<Option<Proposal>, DomainError> {
        let sql = format!("SELECT {COLUMNS} FROM approvals WHERE id = $1");
        port(self.read_one(sqlx::query(&sql).bind(id), from_row)).await
    }

    async fn proposals(&self, decided: i64) -> Result<Vec<Proposal>, DomainError> {
        let open = format!("SELECT {COLUMNS} FROM approvals WHERE decided_at IS NULL ORDER BY id");
        let done = format!(
            "SELECT {COLUMNS} FROM approvals WHERE decided_at IS NOT NULL \
             ORDER BY decided_at DESC, id DESC LIMIT $1"
        );
        port(async move {
            let mut all = self.read_all(sqlx::query(&open), from_row).await?;
            all.extend(
                self.read_all(sqlx::query(&done).bind(decided), from_row)
                    .await?,
            );
            Ok(all)
        })
        .await
    }

    async fn open_proposals(&self, now: i64) -> Result<i64, DomainError> {
        port(async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM approvals WHERE decided_at IS NULL AND expires_at > $1",
            )
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
            Ok(n)
        })
        .await
    }

    async fn decide(&self, d: Decision<'_>) -> Result<bool, DomainError> {
        let (id, now, outcome) = (d.id, d.now, d.outcome);
        let (actor, kind) = (d.actor.to_owned(), d.kind.to_owned());
        let refusal = d.refusal.map(str::to_owned);
        // Only approval needs the proposal unexpired: its proposer may still
        // withdraw it, and the list marks it expired.
        let unexpired = if outcome == Outcome::Approved {
            " AND expires_at > $2"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE approvals SET decided_at = $2, decided_by = $3, outcome = $4, refusal = $5 \
             WHERE id = $1 AND decided_at IS NULL{unexpired} RETURNING card_id"
        );
        let detail = d.detail;
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query(&sql)
                        .bind(id)
                        .bind(now)
                        .bind(&actor)
                        .bind(outcome.as_str())
                        .bind(&refusal)
                        .fetch_optional(&mut *conn)
                        .await?;
                    let Some(row) = row else {
                        return Ok(false);
                    };
                    let card_id: Option<i64> = row.try_get("card_id")?;
                    insert_event(conn, card_id, &kind, &actor, detail, now).await?;
                    Ok(true)
                })
            })
            .await
        })
        .await
    }

    async fn approval_failed(
        &self,
        id: i64,
        detail: serde_json::Value,
        now: i64,
    ) -> Result<(), DomainError> {
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "UPDATE approvals SET outcome = 'failed' WHERE id = $1 \
                         RETURNING card_id, decided_by",
                    )
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if let Some(row) = row {
                        let card_id: Option<i64> = row.try_get("card_id")?;
                        let by: Option<String> = row.try_get("decided_by")?;
                        let by = by.unwrap_or_default();
                        insert_event(conn, card_id, "approval_failed", &by, detail, now).await?;
                    }
                    Ok(())
                })
            })
            .await
        })
        .await
    }

    async fn expire_proposals(&self, now: i64) -> Result<u64, DomainError> {
        // Read first: most calls find nothing and need no write.
        let due: i64 = port(async {
            Ok::<_, StoreError>(
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM approvals WHERE decided_at IS NULL AND expires_at <= $1",
                )
                .bind(now)
                .fetch_one(&self.pool)
                .await?,
            )
        })
        .await?;
        if due == 0 {
            return Ok(0);
        }
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "UPDATE approvals SET decided_at = $1, outcome = 'expired' \
                         WHERE decided_at IS NULL AND expires_at <= $1 \
                         RETURNING id, card_id, action, proposer",
                    )
                    .bind(now)
                    .fetch_all(&mut *conn)
                    .await?;
                    for row in &rows {
                        let id: i64 = row.try_get("id")?;
                        let card_id: Option<i64> = row.try_get("card_id")?;
                        let action: String = row.try_get("action")?;
                        let proposer: String = row.try_get("proposer")?;
                        let detail = serde_json::json!({"proposal": id, "action": action,
                            "proposer": proposer});
                        insert_event(conn, card_id, "approval_expired", EXPIRY_ACTOR, detail, now)
                            .await?;
                    }
                    Ok(rows.len() as u64)
                })
            })
            .await
        })
        .await
    }
}
