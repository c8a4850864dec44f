//! Enrolling cards and changing their status, each one write transaction with its
//! audit event.

use sqlx::{AnyConnection, Row};

use crate::domain::CardStatus;

use super::{
    card_from_row, end_elapsed_lock, insert_event, Card, NewCard, StatusChange, Store, StoreError,
    CARD_COLUMNS,
};

impl Store {
    pub async fn enroll(
        &self,
        card: NewCard<'_>,
        actor: &str,
        now: i64,
    ) -> Result<Card, StoreError> {
        let (pan_hash, last4, last6_hash, msisdn, actor) = (
            card.pan_hash.to_owned(),
            card.last4.to_owned(),
            card.last6_hash.to_owned(),
            card.msisdn.to_owned(),
            actor.to_owned(),
        );
        let lookup = pan_hash.clone();
        let enrolled = self
            .write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    if let Some(id) =
                        sqlx::query_scalar::<_, i64>("SELECT id FROM cards WHERE pan_hash = $1")
                            .bind(&pan_hash)
                            .fetch_optional(&mut *conn)
                            .await?
                    {
                        return Err(StoreError::CardExists(id));
                    }
                    let inserted = sqlx::query(&format!(
                        "INSERT INTO cards (pan_hash, last4, last6_hash, msisdn, status, failures, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, 'active', 0, $5, $5) RETURNING {CARD_COLUMNS}"
                    ))
                    .bind(&pan_hash)
                    .bind(&last4)
                    .bind(&last6_hash)
                    .bind(&msisdn)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await;
                    let row = match inserted {
                        Ok(row) => row,
                        // Another node enrolled the same card between our check and insert.
                        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                            return Err(StoreError::Raced)
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let card = card_from_row(&row)?;
                    insert_event(
                        conn,
                        Some(card.id),
                        "enrolled",
                        &actor,
                        serde_json::json!({"last4": card.last4}),
                        now,
                    )
                    .await?;
                    Ok(card)
                })
            })
            .await;
        match enrolled {
            Err(StoreError::Raced) => {
                let existing = self.card_by_pan_hash(&lookup).await?;
                Err(StoreError::CardExists(existing.map_or(0, |c| c.id)))
            }
            other => other,
        }
    }

    pub async fn change_status(
        &self,
        id: i64,
        change: StatusChange,
        actor: &str,
        now: i64,
    ) -> Result<Card, StoreError> {
        let actor = actor.to_owned();
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move {
                let (sql, kind) = match change {
                    StatusChange::Reactivate => (
                        "UPDATE cards SET status = 'active', failures = 0, locked_until = NULL, updated_at = $2 WHERE id = $1",
                        "reactivated",
                    ),
                    StatusChange::Suspend => (
                        "UPDATE cards SET status = 'suspended', updated_at = $2 WHERE id = $1",
                        "suspended",
                    ),
                };
                end_elapsed_lock(conn, id, now).await?;
                let prev = sqlx::query(
                    "UPDATE cards SET updated_at = updated_at WHERE id = $1 RETURNING status, locked_until",
                )
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
                let Some(prev) = prev else {
                    return Err(StoreError::NoSuchCard);
                };
                let locked_until: Option<i64> = prev.try_get("locked_until")?;
                let prev: String = prev.try_get("status")?;
                if let StatusChange::Reactivate = change {
                    // A timed lock is the bank's promise that nobody, staff included,
                    // lifts it early (a suspension in between does not shorten it).
                    if let Some(until) = locked_until.filter(|u| *u > now) {
                        return Err(StoreError::LockNotLiftable { until });
                    }
                    // Activation is the customer's to confirm, not the back office's.
                    if prev == CardStatus::Pending.as_str() {
                        return Err(StoreError::WrongStatus(CardStatus::Pending));
                    }
                }
                sqlx::query(sql).bind(id).bind(now).execute(&mut *conn).await?;
                if let StatusChange::Suspend = change {
                    // A suspended card must not be usable through a code issued before.
                    sqlx::query(
                        "UPDATE codes SET state = 'failed' WHERE card_id = $1 AND state = 'live'",
                    )
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                }
                insert_event(
                    conn,
                    Some(id),
                    kind,
                    &actor,
                    serde_json::json!({"previous_status": prev}),
                    now,
                )
                .await?;
                let row = sqlx::query(&format!("SELECT {CARD_COLUMNS} FROM cards WHERE id = $1"))
                    .bind(id)
                    .fetch_one(&mut *conn)
                    .await?;
                card_from_row(&row)
            })
        })
        .await
    }
}

impl Store {
    /// Sets (`Some`) or clears (`None`) a card's ePIN hash, with its audit event
    /// (which says only that it changed).
    pub async fn set_epin(
        &self,
        id: i64,
        epin_hash: Option<String>,
        actor: &str,
        now: i64,
    ) -> Result<Card, StoreError> {
        let actor = actor.to_owned();
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move {
                let row = sqlx::query(&format!(
                    "UPDATE cards SET epin_hash = $2, updated_at = $3 WHERE id = $1 RETURNING {CARD_COLUMNS}"
                ))
                .bind(id)
                .bind(epin_hash.as_deref())
                .bind(now)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or(StoreError::NoSuchCard)?;
                let kind = if epin_hash.is_some() {
                    "epin_set"
                } else {
                    "epin_cleared"
                };
                insert_event(conn, Some(id), kind, &actor, serde_json::json!({}), now).await?;
                card_from_row(&row)
            })
        })
        .await
    }
}
