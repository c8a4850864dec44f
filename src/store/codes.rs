//! Codes: issuing one (superseding the card's live code, with its audit event and,
//! for a pushed code, its idempotency record) and following its message's delivery
//! (submitted, receipts matched by the SMSC's message id).

use async_trait::async_trait;
use sqlx::{AnyConnection, Row};

use super::error::StoreError;
use super::port;
use super::{end_elapsed_lock, insert_event, lock_card, or_stored, parse_status, Store};
use crate::core::ports::{CodeStore, Issued, MessageRef, NewCode, PushKey};
use crate::core::DomainError;
use otpgw_rules::records::CodeRecord;
use otpgw_rules::vocab::{CardStatus, CodeState, Delivery};

/// Records the SMSC's id for a code's message: $1 the code, $2–$5 the message's
/// connection, id and keys, $6 the time.
macro_rules! set_submitted {
    () => {
        "UPDATE codes SET connection = $2, message_id = $3, message_key_dec = $4, \
         message_key_hex = $5, submitted_at = $6, \
         delivery = CASE WHEN delivery IS NULL OR delivery = 'queued' THEN 'submitted' ELSE delivery END \
         WHERE id = $1"
    };
}

/// The head of every form's insert of a code; the values follow in this order.
macro_rules! insert_codes {
    () => {
        "INSERT INTO codes (card_id, code_hash, channel, peer, issued_at, expires_at, state, delivery, route, txn_hash, cap) "
    };
}

#[async_trait]
impl CodeStore for Store {
    /// Stores a new code for an active card, superseding its live one, and commits
    /// before returning: the caller may send the code only after this succeeds.
    async fn issue_code(&self, code: NewCode<'_>, actor: &str) -> Result<Issued, DomainError> {
        port(async move { self.issue(code, actor, None).await }).await
    }

    /// As `issue_code`, for a code pushed through the API: idempotent on the
    /// caller's request id, recorded in the same transaction as the code.
    async fn issue_pushed(
        &self,
        code: NewCode<'_>,
        actor: &str,
        push: &PushKey<'_>,
    ) -> Result<Issued, DomainError> {
        port(async move {
            // (The core looked for an earlier answer first; a twin racing this one is
            // found by the insert into `pushes`.)
            let issued = self.issue(code, actor, Some(push)).await;
            or_stored(issued, self.push(push.api_key_id, push.request_id), "push").await
        })
        .await
    }

    /// The code an earlier push with this request id issued, if any (as
    /// `Issued::Replayed`, with that request's fingerprint).
    async fn push(&self, api_key_id: i64, request_id: &str) -> Result<Option<Issued>, DomainError> {
        if let Some(read) = self
            .inline
            .as_ref()
            .and_then(|r| r.push(api_key_id, request_id))
        {
            let read = read.map(|found| {
                found.map(|(code_id, fingerprint)| Issued::Replayed {
                    code_id,
                    fingerprint,
                })
            });
            return port(async move { read }).await;
        }
        let sql =
            "SELECT code_id, fingerprint FROM pushes WHERE api_key_id = $1 AND request_id = $2";
        let query = sqlx::query(sql).bind(api_key_id).bind(request_id);
        port(self.read_one(query, |r| {
            Ok(Issued::Replayed {
                code_id: r.try_get("code_id")?,
                fingerprint: r.try_get("fingerprint")?,
            })
        }))
        .await
    }

    /// Records a code's delivery state. A final state (delivered, undelivered,
    /// expired) always wins; `submitted` only moves a code on from queued, so a
    /// receipt that came first is not undone. Any state past `queued` also takes its
    /// reply out of the outbox in the same transaction, so no node sends it again.
    async fn set_delivery(
        &self,
        code_id: i64,
        delivery: Delivery,
        at: i64,
    ) -> Result<(), DomainError> {
        port(async move {
            if let Some(writer) = self.sqlite_writer() {
                return writer
                    .write_direct(move |db: &rusqlite::Connection| {
                        sqlite::set_deliveries(db, &[(code_id, delivery)], at)
                    })
                    .await;
            }
            let outbox = self.shared() && delivery != Delivery::Queued;
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    update_delivery(conn, code_id, delivery, at).await?;
                    if outbox {
                        super::outbox::remove(conn, code_id).await?;
                    }
                    Ok(())
                })
            })
            .await
        })
        .await
    }

    /// Many codes' delivery states at once (`core::deliveries`): one statement per
    /// state and chunk, in one transaction, with the same rules as `set_delivery`.
    async fn set_deliveries(&self, states: &[(i64, Delivery)], at: i64) -> Result<(), DomainError> {
        port(async move {
            if let Some(writer) = self.sqlite_writer() {
                let states = states.to_vec();
                return writer
                    .write_direct(move |db: &rusqlite::Connection| {
                        sqlite::set_deliveries(db, &states, at)
                    })
                    .await;
            }
            let outbox = self.shared();
            let mut by_state: Vec<(Delivery, Vec<i64>)> = Vec::new();
            for (id, state) in states {
                match by_state.iter_mut().find(|(s, _)| s == state) {
                    Some((_, ids)) => ids.push(*id),
                    None => by_state.push((*state, vec![*id])),
                }
            }
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    for (state, ids) in &by_state {
                        // Well under SQLite's and PostgreSQL's bind limits.
                        for chunk in ids.chunks(500) {
                            let list = placeholders(3, chunk.len());
                            let sql = match state {
                                Delivery::Queued | Delivery::Submitted => format!(
                                    "UPDATE codes SET delivery = $1, submitted_at = $2 WHERE id IN ({list}) \
                                     AND (delivery IS NULL OR delivery = 'queued')"
                                ),
                                _ => format!(
                                    "UPDATE codes SET delivery = $1, delivery_at = $2 WHERE id IN ({list})"
                                ),
                            };
                            let mut q = sqlx::query(&sql).bind(state.as_str()).bind(at);
                            for id in chunk {
                                q = q.bind(*id);
                            }
                            q.execute(&mut *conn).await?;
                            if outbox && *state != Delivery::Queued {
                                let sql = format!(
                                    "DELETE FROM reply_outbox WHERE code_id IN ({})",
                                    placeholders(1, chunk.len())
                                );
                                let mut q = sqlx::query(&sql);
                                for id in chunk {
                                    q = q.bind(*id);
                                }
                                q.execute(&mut *conn).await?;
                            }
                        }
                    }
                    Ok(())
                })
            })
            .await
        })
        .await
    }

    /// The SMSC accepted the message carrying a code: remember which connection took
    /// it and the SMSC's id for it, so its receipt finds the code.
    async fn set_submitted(
        &self,
        code_id: i64,
        message: &MessageRef<'_>,
        at: i64,
    ) -> Result<(), DomainError> {
        let m = OwnedRef::from(message);
        if let Some(writer) = self.sqlite_writer() {
            return port(writer.write_direct(move |db: &rusqlite::Connection| {
                sqlite::set_submitted(db, code_id, &m, at)
            }))
            .await;
        }
        let query = sqlx::query(if self.shared() {
            // PostgreSQL: the reply leaves the outbox in the same statement.
            concat!(
                "WITH ob AS (DELETE FROM reply_outbox WHERE code_id = $1) ",
                set_submitted!()
            )
        } else {
            set_submitted!()
        })
        .bind(code_id)
        .bind(m.connection)
        .bind(m.message_id)
        .bind(m.key_dec)
        .bind(m.key_hex)
        .bind(at);
        port(async move {
            if self.shared() {
                // One statement in autocommit: one round trip instead of four.
                query.execute(&self.pool).await?;
                return Ok(());
            }
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    query.execute(&mut *conn).await?;
                    Ok(())
                })
            })
            .await
        })
        .await
    }

    /// Applies a receipt to the code whose message it names on this connection:
    /// the exact id first, then the same number in the other notation. Returns the
    /// code's id, or `None` when no message matches (yet).
    async fn apply_receipt(
        &self,
        message: &MessageRef<'_>,
        delivery: Delivery,
        at: i64,
    ) -> Result<Option<i64>, DomainError> {
        port(async move {
            let m = OwnedRef::from(message);
            if let Some(writer) = self.sqlite_writer() {
                return writer
                    .write_direct(move |db: &rusqlite::Connection| {
                        sqlite::apply_receipt(db, &m, delivery, at)
                    })
                    .await;
            }
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let mut code_id: Option<i64> = sqlx::query_scalar(RECEIPT_BY_ID)
                        .bind(&m.connection)
                        .bind(&m.message_id)
                        .fetch_optional(&mut *conn)
                        .await?;
                    for key in [&m.key_dec, &m.key_hex].into_iter().flatten() {
                        if code_id.is_some() {
                            break;
                        }
                        code_id = sqlx::query_scalar(RECEIPT_BY_KEY)
                            .bind(&m.connection)
                            .bind(key)
                            .fetch_optional(&mut *conn)
                            .await?;
                    }
                    if let Some(id) = code_id {
                        update_delivery(conn, id, delivery, at).await?;
                    }
                    Ok(code_id)
                })
            })
            .await
        })
        .await
    }

    async fn code(&self, id: i64) -> Result<Option<CodeRecord>, DomainError> {
        let sql = format!("SELECT {CODE_COLUMNS} FROM codes WHERE id = $1");
        port(self.read_one(sqlx::query(&sql).bind(id), code_from_row)).await
    }

    /// A card's most recent codes, newest first (for the console).
    async fn recent_codes(&self, card_id: i64, limit: i64) -> Result<Vec<CodeRecord>, DomainError> {
        let sql = format!(
            "SELECT {CODE_COLUMNS} FROM codes WHERE card_id = $1 ORDER BY id DESC LIMIT $2"
        );
        port(self.read_all(sqlx::query(&sql).bind(card_id).bind(limit), code_from_row)).await
    }
}

impl Store {
    async fn issue(
        &self,
        code: NewCode<'_>,
        actor: &str,
        push: Option<&PushKey<'_>>,
    ) -> Result<Issued, StoreError> {
        let card_id = code.card_id;
        let channel = code.channel;
        let (issued_at, expires_at) = (code.issued_at, code.expires_at);
        let delivery = code.delivery;
        let txn_hash = code.txn_hash.map(str::to_owned);
        let cap = code.cap;
        let outbox = code.outbox;
        let new_code = OwnedCode {
            card_id,
            code_hash: code.code_hash.to_owned(),
            channel: channel.as_str(),
            peer: code.peer.to_owned(),
            issued_at,
            expires_at,
            delivery: delivery.map(Delivery::as_str),
            route: code.route.map(str::to_owned),
            txn_hash: txn_hash.clone(),
            cap,
            actor: actor.to_owned(),
        };
        if let (Some(writer), None) = (self.sqlite_writer(), &outbox) {
            let push = push.map(|p| sqlite::Push {
                api_key_id: p.api_key_id,
                request_id: p.request_id.to_owned(),
                fingerprint: p.fingerprint.to_owned(),
            });
            return writer
                .write_direct(move |db: &rusqlite::Connection| {
                    sqlite::issue(db, &new_code, push.as_ref())
                })
                .await?;
        }
        // PostgreSQL: with other codes in the group's next batch, else alone as one
        // statement, where either can decide.
        if self.shared() && push.is_none() {
            if let Some(groups) = &self.groups {
                let ask = postgres::IssueAsk {
                    code: new_code.clone(),
                    outbox: outbox.clone(),
                };
                if let Some(answer) = groups.codes.ask(ask).await {
                    return answer;
                }
            }
            if let Some(issued) =
                postgres::issue_in_one_statement(&self.pool, &new_code, outbox.as_ref()).await?
            {
                return Ok(issued);
            }
        }
        // The transaction form, PostgreSQL's only (SQLite's issue is the writer's
        // direct job, and SQLite has no outbox): a pushed code with its
        // idempotency record, an elapsed timed lock, a race the statement lost.
        let actor = new_code.actor.clone();
        let push = push.map(|p| {
            (
                p.api_key_id,
                p.request_id.to_owned(),
                p.fingerprint.to_owned(),
            )
        });
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move {
                let row = lock_card(conn, card_id, "status, locked_until").await?;
                let mut status = parse_status(&row.try_get::<String, _>("status")?)?;
                let locked_until: Option<i64> = row.try_get("locked_until")?;
                if status == CardStatus::Locked
                    && locked_until.is_some_and(|until| until <= issued_at)
                    && end_elapsed_lock(conn, card_id, issued_at).await?
                {
                    status = CardStatus::Active;
                }
                if status != CardStatus::Active {
                    return Ok(Issued::NotActive(status));
                }
                let superseded = sqlx::query(
                    "UPDATE codes SET state = CASE WHEN expires_at <= $2 THEN 'expired' ELSE 'superseded' END \
                     WHERE card_id = $1 AND state = 'live'",
                )
                .bind(card_id)
                .bind(issued_at)
                .execute(&mut *conn)
                .await?
                .rows_affected() as i64;
                if push.is_none() {
                    // The code, its outbox row and its audit event in one statement.
                    let code_id =
                        postgres::insert_with_outbox_and_event(conn, &new_code, outbox.as_ref())
                            .await?;
                    return Ok(Issued::Code {
                        code_id,
                        superseded,
                    });
                }
                let code_id: i64 = sqlx::query_scalar(concat!(
                    insert_codes!(),
                    "VALUES ($1, $2, $3, $4, $5, $6, 'live', $7, $8, $9, $10) RETURNING id"
                ))
                .bind(card_id)
                .bind(&new_code.code_hash)
                .bind(channel.as_str())
                .bind(&new_code.peer)
                .bind(issued_at)
                .bind(expires_at)
                .bind(delivery.map(Delivery::as_str))
                .bind(new_code.route.as_deref())
                .bind(txn_hash.as_deref())
                .bind(cap)
                .fetch_one(&mut *conn)
                .await?;
                if let Some(reply) = &outbox {
                    super::outbox::insert(conn, code_id, reply, issued_at).await?;
                }
                if let Some((api_key_id, request_id, fingerprint)) = &push {
                    let inserted = sqlx::query(
                        "INSERT INTO pushes (api_key_id, request_id, fingerprint, code_id, created_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    )
                    .bind(api_key_id)
                    .bind(request_id)
                    .bind(fingerprint)
                    .bind(code_id)
                    .bind(issued_at)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if inserted == 0 {
                        // Rolled back: the caller answers as the earlier request did.
                        return Err(StoreError::Raced);
                    }
                }
                insert_event(
                    conn,
                    Some(card_id),
                    "code_issued",
                    &actor,
                    serde_json::json!({"code_id": code_id, "channel": channel.as_str(), "expires_at": expires_at,
                        "bound_to_transaction": txn_hash.is_some(), "capped": cap.is_some()}),
                    issued_at,
                )
                .await?;
                Ok(Issued::Code {
                    code_id,
                    superseded,
                })
            })
        })
        .await
    }
}

/// A receipt's code: $1 the connection, $2 the SMSC's message id as it sent it.
const RECEIPT_BY_ID: &str =
    "SELECT id FROM codes WHERE connection = $1 AND message_id = $2 ORDER BY id DESC LIMIT 1";
/// The same number in either notation, when the exact id found nothing.
const RECEIPT_BY_KEY: &str =
    "SELECT id FROM codes WHERE connection = $1 AND (message_key_dec = $2 OR message_key_hex = $2) \
     ORDER BY id DESC LIMIT 1";

const CODE_COLUMNS: &str =
    "id, card_id, channel, peer, state, delivery, route, connection, message_id, \
     issued_at, expires_at, submitted_at, delivery_at, used_at";

fn code_from_row(r: &sqlx::any::AnyRow) -> Result<CodeRecord, StoreError> {
    let state: String = r.try_get("state")?;
    let state = CodeState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("code state {state}")))?;
    let delivery: Option<String> = r.try_get("delivery")?;
    let delivery = delivery
        .map(|d| Delivery::parse(&d).ok_or_else(|| StoreError::Corrupt(format!("delivery {d}"))))
        .transpose()?;
    Ok(record!(r => CodeRecord {
        id, card_id, channel, peer, route, connection, message_id,
        issued_at, expires_at, submitted_at, delivery_at, used_at;
        state, delivery
    }))
}

/// One code's delivery state: $1 the code, $2 the state, $3 the time. A code's
/// first submission does not overwrite a later state; a receipt's state always
/// lands. (SQLite's direct job runs the same text.)
fn delivery_update(delivery: Delivery) -> &'static str {
    match delivery {
        Delivery::Queued | Delivery::Submitted => {
            "UPDATE codes SET delivery = $2, submitted_at = $3 WHERE id = $1 \
             AND (delivery IS NULL OR delivery = 'queued')"
        }
        _ => "UPDATE codes SET delivery = $2, delivery_at = $3 WHERE id = $1",
    }
}

async fn update_delivery(
    conn: &mut AnyConnection,
    code_id: i64,
    delivery: Delivery,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(delivery_update(delivery))
        .bind(code_id)
        .bind(delivery.as_str())
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A `MessageRef` the writer can own.
struct OwnedRef {
    connection: String,
    message_id: String,
    key_dec: Option<String>,
    key_hex: Option<String>,
}

impl From<&MessageRef<'_>> for OwnedRef {
    fn from(m: &MessageRef<'_>) -> Self {
        Self {
            connection: m.connection.to_owned(),
            message_id: m.message_id.to_owned(),
            key_dec: m.key_dec.map(str::to_owned),
            key_hex: m.key_hex.map(str::to_owned),
        }
    }
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Binds a code's columns as $1–$10 and the actor as $11, as PostgreSQL's
/// statements number them (SQLite's direct job, `codes/sqlite.rs`, does the same).
macro_rules! bind_code {
    ($query:expr, $code:expr $(,)?) => {
        $query
            .bind($code.card_id)
            .bind(&$code.code_hash)
            .bind($code.channel)
            .bind(&$code.peer)
            .bind($code.issued_at)
            .bind($code.expires_at)
            .bind($code.delivery)
            .bind($code.route.as_deref())
            .bind($code.txn_hash.as_deref())
            .bind($code.cap)
            .bind(&$code.actor)
    };
}

/// A code to issue, owned by the writer's job (or the PostgreSQL group's).
#[derive(Clone)]
struct OwnedCode {
    card_id: i64,
    code_hash: String,
    channel: &'static str,
    peer: String,
    issued_at: i64,
    expires_at: i64,
    delivery: Option<&'static str>,
    route: Option<String>,
    txn_hash: Option<String>,
    cap: Option<i64>,
    actor: String,
}

pub(super) mod postgres;
mod sqlite;
#[cfg(test)]
pub(super) mod tests;
