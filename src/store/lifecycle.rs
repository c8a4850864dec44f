//! The end of a card's life and its reissue: closing a card (its number freed for a
//! later enrolment, its history kept) and moving a card to a new card number. Both
//! are one write transaction with their audit events; see migration 0013 for why
//! closure is a column and not a status value.

use sqlx::AnyConnection;

use super::error::StoreError;
use super::{card_from_row, insert_event, lock_card, Store, CARD_COLUMNS};
use crate::core::ports::{Change, NewNumber};
use otpgw_rules::records::Card;
use otpgw_rules::vocab::CardStatus;

/// Voids a card's live code: a code sent for a card that is closed, or for its old
/// number, must not approve anything.
async fn void_live_code(conn: &mut AnyConnection, id: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE codes SET state = 'failed' WHERE card_id = $1 AND state = 'live'")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Moves a row's number aside: `pan_hash` becomes `closed:<id>` (no HMAC looks like
/// that) so the number can be enrolled again, and the status one every code and
/// verification path refuses.
async fn close_row(conn: &mut AnyConnection, id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE cards SET closed_pan_hash = COALESCE(closed_pan_hash, pan_hash), \
         pan_hash = 'closed:' || CAST(id AS TEXT), status = 'suspended', \
         closed_at = $2, updated_at = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn card_row(conn: &mut AnyConnection, id: i64) -> Result<Card, StoreError> {
    let row = sqlx::query(&format!("SELECT {CARD_COLUMNS} FROM cards WHERE id = $1"))
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    card_from_row(&row)
}

impl Store {
    pub(super) async fn close_card(&self, change: &Change<'_, ()>) -> Result<Card, StoreError> {
        let (id, now) = (change.id, change.now);
        let (actor, reason) = (change.actor.to_owned(), change.reason.map(str::to_owned));
        let source = change.source.map(str::to_owned);
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move {
                let before = lock_card(conn, id, "status").await?;
                let previous: String = sqlx::Row::try_get(&before, "status")?;
                void_live_code(conn, id).await?;
                // A token belongs to the card; a closed card's tokens approve nothing.
                sqlx::query(
                    "UPDATE tokens SET state = 'revoked', updated_at = $2 \
                     WHERE card_id = $1 AND state <> 'revoked'",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                close_row(conn, id, now).await?;
                let detail = serde_json::json!({"previous_status": previous, "reason": reason});
                let detail = super::with_source(detail, source.as_deref());
                insert_event(conn, Some(id), "closed", &actor, detail, now).await?;
                card_row(conn, id).await
            })
        })
        .await
    }

    pub(super) async fn reissue_card(
        &self,
        change: &Change<'_, NewNumber<'_>>,
    ) -> Result<Card, StoreError> {
        let (id, now) = (change.id, change.now);
        let (actor, reason) = (change.actor.to_owned(), change.reason.map(str::to_owned));
        let (pan_hash, last4, last6_hash) = (
            change.to.pan_hash.to_owned(),
            change.to.last4.to_owned(),
            change.to.last6_hash.to_owned(),
        );
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move {
                let columns = "status, pan_hash, last4, last6_hash, msisdn, created_at";
                let old = lock_card(conn, id, columns).await?;
                // A pending card's activation code is keyed by its number: the bank
                // enrolls the new number instead.
                if sqlx::Row::try_get::<String, _>(&old, "status")? == "pending" {
                    return Err(StoreError::WrongStatus(CardStatus::Pending));
                }
                if let Some(existing) =
                    sqlx::query_scalar::<_, i64>("SELECT id FROM cards WHERE pan_hash = $1")
                        .bind(&pan_hash)
                        .fetch_optional(&mut *conn)
                        .await?
                {
                    return Err(StoreError::CardExists(existing));
                }
                let get = |c: &str| sqlx::Row::try_get::<String, _>(&old, c);
                let (old_hash, old_last4, old_last6) =
                    (get("pan_hash")?, get("last4")?, get("last6_hash")?);
                let (msisdn, created_at): (String, i64) =
                    (get("msisdn")?, sqlx::Row::try_get(&old, "created_at")?);
                // The old number as a closed card of its own, pointing at this one.
                let placeholder = format!("closing:{id}:{now}");
                let closed_id: i64 = sqlx::query_scalar(
                    "INSERT INTO cards (pan_hash, last4, last6_hash, msisdn, status, failures, \
                     created_at, updated_at, activation_failures, replaced_by) \
                     VALUES ($1, $2, $3, $4, 'suspended', 0, $5, $6, 0, $7) RETURNING id",
                )
                .bind(&placeholder)
                .bind(&old_last4)
                .bind(&old_last6)
                .bind(&msisdn)
                .bind(created_at)
                .bind(now)
                .bind(id)
                .fetch_one(&mut *conn)
                .await?;
                sqlx::query("UPDATE cards SET closed_pan_hash = $2 WHERE id = $1")
                    .bind(closed_id)
                    .bind(&old_hash)
                    .execute(&mut *conn)
                    .await?;
                close_row(conn, closed_id, now).await?;
                void_live_code(conn, id).await?;
                let moved = sqlx::query(
                    "UPDATE cards SET pan_hash = $2, last4 = $3, last6_hash = $4, updated_at = $5 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(&pan_hash)
                .bind(&last4)
                .bind(&last6_hash)
                .bind(now)
                .execute(&mut *conn)
                .await;
                if let Err(sqlx::Error::Database(e)) = &moved {
                    // Another node enrolled the new number between our check and here.
                    if e.is_unique_violation() {
                        return Err(StoreError::CardExists(0));
                    }
                }
                moved?;
                let detail = serde_json::json!({
                    "old_last4": old_last4, "new_last4": last4,
                    "closed_card_id": closed_id, "reason": reason,
                });
                insert_event(conn, Some(id), "reissued", &actor, detail, now).await?;
                let detail = serde_json::json!({"replaced_by": id, "reason": reason});
                insert_event(conn, Some(closed_id), "closed", &actor, detail, now).await?;
                card_row(conn, id).await
            })
        })
        .await
    }

    pub(super) async fn list_cards(
        &self,
        msisdn: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Card>, StoreError> {
        let sql = format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE msisdn = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        self.read_all(
            sqlx::query(&sql).bind(msisdn).bind(after).bind(limit),
            card_from_row,
        )
        .await
    }
}
