//! Enrolling cards and changing their status, each one write transaction with its
//! audit event.

use async_trait::async_trait;
use sqlx::{AnyConnection, Row};
use std::sync::LazyLock;

use super::error::StoreError;
use super::port;
use super::{
    card_from_row, end_elapsed_lock, insert_event, lock_card, with_source, Store, CARD_COLUMNS,
};
use crate::core::ports::{
    Act, Activation, CardStore, Change, CodeAttempt, ImportCard, Imported, NewActivation, NewCard,
    NewNumber, StatusChange,
};
use crate::core::DomainError;
use otpgw_rules::records::Card;
use otpgw_rules::vocab::{CardStatus, Language};

#[async_trait]
impl CardStore for Store {
    async fn card(&self, id: i64) -> Result<Option<Card>, DomainError> {
        let sql = format!("SELECT {CARD_COLUMNS} FROM cards WHERE id = $1");
        port(self.read_one(sqlx::query(&sql).bind(id), card_from_row)).await
    }

    async fn card_by_pan_hash(&self, pan_hash: &str) -> Result<Option<Card>, DomainError> {
        if let Some(read) = self
            .inline
            .as_ref()
            .and_then(|r| r.card_by_pan_hash(pan_hash))
        {
            return port(async move { read }).await;
        }
        let sql = format!("SELECT {CARD_COLUMNS} FROM cards WHERE pan_hash = $1");
        port(self.read_one(sqlx::query(&sql).bind(pan_hash), card_from_row)).await
    }

    async fn cards_by_msisdn(&self, msisdn: &str) -> Result<Vec<Card>, DomainError> {
        // SQLite: without the hop to sqlx's thread when it can (`inline.rs`).
        if let Some(read) = self.inline.as_ref().and_then(|r| r.cards_by_msisdn(msisdn)) {
            return port(async move { read }).await;
        }
        // PostgreSQL: from memory while the change listener vouches for it.
        let changes = self.changes.as_deref();
        if let Some(cards) = changes.and_then(|c| c.cards(msisdn)) {
            return Ok(cards);
        }
        let began = changes.map(|c| c.reading());
        // With the other numbers asked while the previous look-up is out, else alone.
        let batched = match &self.groups {
            Some(groups) => groups.cards.ask(msisdn.to_owned()).await,
            None => None,
        };
        let cards = match batched {
            Some(cards) => cards,
            None => port(open_cards(&self.pool, msisdn)).await?,
        };
        if let (Some(changes), Some(began)) = (changes, began) {
            changes.keep(msisdn, began, &cards);
        }
        Ok(cards)
    }

    async fn enroll(&self, card: NewCard<'_>, actor: &str, now: i64) -> Result<Card, DomainError> {
        port(async move {
            let (pan_hash, last4, last6_hash, msisdn, actor) = (
                card.pan_hash.to_owned(),
                card.last4.to_owned(),
                card.last6_hash.to_owned(),
                card.msisdn.to_owned(),
                actor.to_owned(),
            );
            let language = card.language.map(Language::as_str);
            let activation = card
                .activation
                .map(|a| (a.code_hash.to_owned(), a.expires_at));
            let status = if activation.is_some() {
                CardStatus::Pending
            } else {
                CardStatus::Active
            };
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
                            "INSERT INTO cards (pan_hash, last4, last6_hash, msisdn, status, failures, created_at, updated_at, \
                             activation_hash, activation_expires_at, activation_failures, language) \
                             VALUES ($1, $2, $3, $4, $6, 0, $5, $5, $7, $8, 0, $9) RETURNING {CARD_COLUMNS}"
                        ))
                        .bind(&pan_hash)
                        .bind(&last4)
                        .bind(&last6_hash)
                        .bind(&msisdn)
                        .bind(now)
                        .bind(status.as_str())
                        .bind(activation.as_ref().map(|a| a.0.as_str()))
                        .bind(activation.as_ref().map(|a| a.1))
                        .bind(language)
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
                            serde_json::json!({"last4": card.last4, "status": card.status.as_str()}),
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
        })
        .await
    }

    /// Re-activates or suspends a card and audits it with the actor and reason. When
    /// `allowed_from` is not empty, the change happens only from one of those statuses
    /// (read in the same transaction, so a concurrent change cannot slip past a
    /// role's limits); otherwise it is `StatusNotAllowed`.
    async fn change_status(
        &self,
        change: &Change<'_, StatusChange>,
        allowed_from: &[CardStatus],
    ) -> Result<Card, DomainError> {
        let (id, now, allowed_from) = (change.id, change.now, allowed_from.to_vec());
        let (actor, reason) = (change.actor.to_owned(), change.reason.map(str::to_owned));
        let source = change.source.map(str::to_owned);
        let change = change.to;
        port(async move {
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
                    let prev = lock_card(conn, id, "status, locked_until").await?;
                    let locked_until: Option<i64> = prev.try_get("locked_until")?;
                    let prev: String = prev.try_get("status")?;
                    let prev_status = super::parse_status(&prev)?;
                    if !allowed_from.is_empty() && !allowed_from.contains(&prev_status) {
                        return Err(StoreError::StatusNotAllowed(prev_status));
                    }
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
                        with_source(
                            match &reason {
                                Some(reason) => {
                                    serde_json::json!({"previous_status": prev, "reason": reason})
                                }
                                None => serde_json::json!({"previous_status": prev}),
                            },
                            source.as_deref(),
                        ),
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
        })
        .await
    }

    /// Sets (`Some`) or clears (`None`) a card's ePIN hash, with its audit event
    /// (which says only that it changed).
    async fn set_epin(
        &self,
        id: i64,
        epin_hash: Option<String>,
        actor: &str,
        now: i64,
    ) -> Result<Card, DomainError> {
        port(async move {
            let actor = actor.to_owned();
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    lock_card(conn, id, "id").await?;
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
        })
        .await
    }

    async fn change_phone(&self, change: &Change<'_, &str>) -> Result<(Card, String), DomainError> {
        let (id, now, msisdn) = (change.id, change.now, change.to.to_owned());
        let (actor, reason) = (change.actor.to_owned(), change.reason.map(str::to_owned));
        let source = change.source.map(str::to_owned);
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let before = lock_card(conn, id, "msisdn").await?;
                    let old: String = before.try_get("msisdn")?;
                    let row = sqlx::query(&format!(
                        "UPDATE cards SET msisdn = $2, phone_changed_at = $3, updated_at = $3 WHERE id = $1 RETURNING {CARD_COLUMNS}"
                    ))
                    .bind(id)
                    .bind(&msisdn)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await?;
                    // A code sent to the old number must not approve anything now.
                    sqlx::query("UPDATE codes SET state = 'failed' WHERE card_id = $1 AND state = 'live'")
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                    let detail = serde_json::json!({"old_msisdn": old, "new_msisdn": msisdn, "reason": reason});
                    let detail = with_source(detail, source.as_deref());
                    insert_event(conn, Some(id), "phone_changed", &actor, detail, now).await?;
                    Ok((card_from_row(&row)?, old))
                })
            })
            .await
        })
        .await
    }

    async fn close(&self, change: &Change<'_, ()>) -> Result<Card, DomainError> {
        port(self.close_card(change)).await
    }

    async fn reissue(&self, change: &Change<'_, NewNumber<'_>>) -> Result<Card, DomainError> {
        port(self.reissue_card(change)).await
    }

    async fn cards_page(
        &self,
        msisdn: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Card>, DomainError> {
        port(self.list_cards(msisdn, after, limit)).await
    }

    async fn cards_after(&self, after: i64, limit: i64) -> Result<Vec<Card>, DomainError> {
        let sql = format!("SELECT {CARD_COLUMNS} FROM cards WHERE id > $1 ORDER BY id LIMIT $2");
        port(self.read_all(sqlx::query(&sql).bind(after).bind(limit), card_from_row)).await
    }

    async fn import(
        &self,
        cards: &[ImportCard<'_>],
        initial_load: bool,
        actor: &str,
        now: i64,
    ) -> Result<Vec<Imported>, DomainError> {
        port(self.import_cards(cards, initial_load, actor, now)).await
    }

    /// Replaces a pending card's activation code (the bank's retry: the first one
    /// could not be sent, or expired), resetting its wrong attempts.
    async fn renew_activation(
        &self,
        id: i64,
        activation: NewActivation<'_>,
        act: Act<'_>,
    ) -> Result<Card, DomainError> {
        let (actor, now) = (act.by, act.at);
        port(async move {
            let (hash, expires_at, actor) = (
                activation.code_hash.to_owned(),
                activation.expires_at,
                actor.to_owned(),
            );
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = lock_card(conn, id, "status").await?;
                    let status = super::parse_status(&row.try_get::<String, _>("status")?)?;
                    if status != CardStatus::Pending {
                        return Err(StoreError::WrongStatus(status));
                    }
                    let row = sqlx::query(&format!(
                        "UPDATE cards SET activation_hash = $2, activation_expires_at = $3, activation_failures = 0, \
                         updated_at = $4 WHERE id = $1 RETURNING {CARD_COLUMNS}"
                    ))
                    .bind(id)
                    .bind(&hash)
                    .bind(expires_at)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await?;
                    insert_event(
                        conn,
                        Some(id),
                        "activation_issued",
                        &actor,
                        serde_json::json!({"expires_at": expires_at}),
                        now,
                    )
                    .await?;
                    card_from_row(&row)
                })
            })
            .await
        })
        .await
    }

    /// Confirms a pending card's activation code under the card's row lock: the
    /// right code, in time, activates the card; a wrong one is counted, and at
    /// `max_failures` the activation is voided. Each outcome is audited.
    async fn activate(&self, attempt: CodeAttempt<'_>) -> Result<Activation, DomainError> {
        let (id, max_failures, now) = (attempt.id, attempt.max_failures, attempt.now);
        let (actor, candidate) = (attempt.actor.to_owned(), attempt.candidate);
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let columns =
                        "status, activation_hash, activation_expires_at, activation_failures";
                    let row = lock_card(conn, id, columns).await?;
                    let status = super::parse_status(&row.try_get::<String, _>("status")?)?;
                    if status != CardStatus::Pending {
                        return Err(StoreError::WrongStatus(status));
                    }
                    let hash: Option<String> = row.try_get("activation_hash")?;
                    let expires_at: Option<i64> = row.try_get("activation_expires_at")?;
                    let failures: i64 = row.try_get("activation_failures")?;
                    let Some(hash) = hash.filter(|_| expires_at.is_some_and(|e| now < e)) else {
                        insert_event(conn, Some(id), "activation_failed", &actor,
                            serde_json::json!({"reason": "expired"}), now).await?;
                        return Ok(Activation::Expired);
                    };
                    if candidate
                        .as_deref()
                        .is_some_and(|c| otpgw_rules::codes::hashes_equal(&hash, c))
                    {
                        let row = sqlx::query(&format!(
                            "UPDATE cards SET status = 'active', failures = 0, activation_hash = NULL, \
                             activation_expires_at = NULL, activation_failures = 0, updated_at = $2 \
                             WHERE id = $1 RETURNING {CARD_COLUMNS}"
                        ))
                        .bind(id)
                        .bind(now)
                        .fetch_one(&mut *conn)
                        .await?;
                        insert_event(conn, Some(id), "activated", &actor, serde_json::json!({}), now)
                            .await?;
                        return Ok(Activation::Activated(Box::new(card_from_row(&row)?)));
                    }
                    let failures = failures + 1;
                    let voided = failures >= max_failures;
                    sqlx::query(
                        "UPDATE cards SET activation_failures = $2, \
                         activation_hash = CASE WHEN $3 = 1 THEN NULL ELSE activation_hash END, \
                         updated_at = $4 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(failures)
                    .bind(i64::from(voided))
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    insert_event(
                        conn,
                        Some(id),
                        "activation_failed",
                        &actor,
                        serde_json::json!({"reason": "wrong_code", "failures": failures, "voided": voided}),
                        now,
                    )
                    .await?;
                    Ok(Activation::Wrong {
                        attempts_left: (max_failures - failures).max(0),
                    })
                })
            })
            .await
        })
        .await
    }
}

/// A number's open cards, oldest first. Closed cards answer nothing: their last 4
/// digits get "not registered".
pub(super) async fn open_cards(
    pool: &sqlx::AnyPool,
    msisdn: &str,
) -> Result<Vec<Card>, StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE msisdn = $1 AND closed_at IS NULL ORDER BY id"
        )
    });
    let rows = sqlx::query(&SQL).bind(msisdn).fetch_all(pool).await?;
    rows.iter().map(card_from_row).collect()
}

/// PostgreSQL: the open cards of many numbers in one round trip (the group's
/// look-up, `group.rs`), one answer per number in order; every number gets `None`
/// (read alone) when the statement fails. The numbers travel as a JSON array (the
/// `Any` driver binds no arrays). Each is looked up by the index on `msisdn`: the
/// statement's plan is made once for any batch, and `= ANY` of an array let it
/// scan the whole table (seen with 2,000 cards: 180 µs of the database per number
/// instead of 28); `OFFSET 0` keeps the per-number sub-select from being merged
/// into a join the planner may also choose to scan.
pub(super) async fn cards_batch(
    pool: &sqlx::AnyPool,
    msisdns: &[String],
) -> Vec<Option<Vec<Card>>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT c.* FROM jsonb_array_elements_text($1::jsonb) AS m(msisdn) \
             CROSS JOIN LATERAL (SELECT {CARD_COLUMNS} FROM cards \
               WHERE cards.msisdn = m.msisdn AND closed_at IS NULL OFFSET 0) AS c ORDER BY c.id"
        )
    });
    // Each number once: a number asked twice would find its cards twice.
    let mut distinct: Vec<&str> = msisdns.iter().map(String::as_str).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let Ok(json) = serde_json::to_string(&distinct) else {
        return msisdns.iter().map(|_| None).collect();
    };
    let cards = match sqlx::query(&SQL).bind(json).fetch_all(pool).await {
        Ok(rows) => rows
            .iter()
            .map(card_from_row)
            .collect::<Result<Vec<_>, _>>(),
        Err(e) => Err(e.into()),
    };
    let cards: Vec<Card> = match cards {
        Ok(cards) => cards,
        Err(e) => {
            tracing::debug!(error = %e, numbers = msisdns.len(), "card look-up batch failed; each alone");
            return msisdns.iter().map(|_| None).collect();
        }
    };
    msisdns
        .iter()
        .map(|msisdn| {
            Some(
                cards
                    .iter()
                    .filter(|card| &card.msisdn == msisdn)
                    .cloned()
                    .collect(),
            )
        })
        .collect()
}
