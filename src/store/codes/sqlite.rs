//! SQLite's issue of a code and its delivery states, as direct jobs on the
//! writer's thread (`direct.rs`).
//! The writer holds the write lock, so no row lock is needed: end an elapsed timed
//! lock, read the status, and only for an active card supersede the live code,
//! insert the new one and its audit event. The same effects as the transaction
//! form in `codes.rs`, each statement a call instead of a hand-off to sqlx's
//! thread. The audit detail has the keys `serde_json` would write, in its order.

use rusqlite::types::ToSql;

use super::{delivery_update, OwnedCode, OwnedRef, RECEIPT_BY_ID, RECEIPT_BY_KEY};
use crate::core::ports::Issued;
use crate::store::direct::run;
use crate::store::error::StoreError;
use crate::store::parse_status;
use otpgw_rules::vocab::{CardStatus, Delivery};

/// ?1 card, ?2 code hash, ?3 channel, ?4 peer, ?5 now (issued), ?6 expires,
/// ?7 delivery, ?8 route, ?9 transaction hash, ?10 cap, ?11 actor.
const END_ELAPSED_LOCK: &str = "\
    UPDATE cards SET status = 'active', failures = 0, locked_until = NULL, updated_at = ?5 \
     WHERE id = ?1 AND status = 'locked' AND locked_until IS NOT NULL AND locked_until <= ?5";
const LOCK_EXPIRED: &str = "\
    INSERT INTO events (card_id, kind, actor, detail, at) VALUES (?1, 'lock_expired', 'policy', '{}', ?5)";
const STATUS: &str = "SELECT status, closed_at FROM cards WHERE id = ?1";
const SUPERSEDE: &str = "\
    UPDATE codes SET state = CASE WHEN expires_at <= ?5 THEN 'expired' ELSE 'superseded' END \
     WHERE card_id = ?1 AND state = 'live'";
const INSERT: &str = concat!(
    insert_codes!(),
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'live', ?7, ?8, ?9, ?10) RETURNING id"
);
const ISSUED: &str = "\
    INSERT INTO events (card_id, kind, actor, detail, at) \
     VALUES (?1, 'code_issued', ?11, json_object('bound_to_transaction', json(CASE WHEN ?9 IS NULL THEN 'false' ELSE 'true' END), \
       'capped', json(CASE WHEN ?10 IS NULL THEN 'false' ELSE 'true' END), 'channel', ?3, 'code_id', ?12, 'expires_at', ?6), ?5)";

const PUSHED: &str = "\
    INSERT INTO pushes (api_key_id, request_id, fingerprint, code_id, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";

/// A pushed code's idempotency record, owned by the job.
pub(super) struct Push {
    pub api_key_id: i64,
    pub request_id: String,
    pub fingerprint: String,
}

/// Issues `code`, and for a pushed one records its request id. Only a statement's
/// failure, or a twin push that took the request id first (`Raced`), is an `Err`
/// (the writer then rolls the job back to its savepoint); a card that is gone or
/// not active is an answer.
pub(super) fn issue(
    db: &rusqlite::Connection,
    code: &OwnedCode,
    push: Option<&Push>,
) -> Result<Result<Issued, StoreError>, StoreError> {
    let mut args: Vec<&dyn ToSql> = vec![
        &code.card_id,
        &code.code_hash,
        &code.channel,
        &code.peer,
        &code.issued_at,
        &code.expires_at,
        &code.delivery,
        &code.route,
        &code.txn_hash,
        &code.cap,
        &code.actor,
    ];
    if run(db, END_ELAPSED_LOCK, &args, |_| Ok(()))? > 0 {
        run(db, LOCK_EXPIRED, &args, |_| Ok(()))?;
    }
    let mut status = None;
    run(db, STATUS, &args, |r| {
        let closed = r.try_get::<Option<i64>, _>("closed_at")?.is_some();
        status = Some((r.try_get::<String, _>("status")?, closed));
        Ok(())
    })?;
    let Some((status, closed)) = status else {
        return Ok(Err(StoreError::NoSuchCard));
    };
    if closed {
        // A closed card takes no change: its number may belong to a new card by now.
        return Ok(Err(StoreError::WrongStatus(CardStatus::Closed)));
    }
    match parse_status(&status) {
        Ok(CardStatus::Active) => {}
        Ok(status) => return Ok(Ok(Issued::NotActive(status))),
        Err(e) => return Ok(Err(e)),
    }
    let superseded = run(db, SUPERSEDE, &args, |_| Ok(()))? as i64;
    let mut code_id = None;
    run(db, INSERT, &args, |r| {
        code_id = Some(r.try_get::<i64, _>("id")?);
        Ok(())
    })?;
    let code_id = code_id.ok_or_else(|| StoreError::Corrupt("no code inserted".into()))?;
    if let Some(p) = push {
        let record: [&dyn ToSql; 5] = [
            &p.api_key_id,
            &p.request_id,
            &p.fingerprint,
            &code_id,
            &code.issued_at,
        ];
        if run(db, PUSHED, &record, |_| Ok(()))? == 0 {
            // The caller answers as the earlier request did.
            return Err(StoreError::Raced);
        }
    }
    args.push(&code_id);
    run(db, ISSUED, &args, |_| Ok(()))?;
    Ok(Ok(Issued::Code {
        code_id,
        superseded,
    }))
}

/// Codes' delivery states (`CodeStore::set_deliveries`), one prepared statement
/// per state (`delivery_update`, the statement path's text).
pub(super) fn set_deliveries(
    db: &rusqlite::Connection,
    states: &[(i64, Delivery)],
    at: i64,
) -> Result<(), StoreError> {
    for (id, state) in states {
        run(
            db,
            delivery_update(*state),
            &[id, &state.as_str(), &at],
            |_| Ok(()),
        )?;
    }
    Ok(())
}

/// The SMSC accepted a code's message (`CodeStore::set_submitted`).
pub(super) fn set_submitted(
    db: &rusqlite::Connection,
    code_id: i64,
    m: &OwnedRef,
    at: i64,
) -> Result<(), StoreError> {
    let args: [&dyn ToSql; 6] = [
        &code_id,
        &m.connection,
        &m.message_id,
        &m.key_dec,
        &m.key_hex,
        &at,
    ];
    run(db, set_submitted!(), &args, |_| Ok(()))?;
    Ok(())
}

/// A receipt applied to the code its message id names (`CodeStore::apply_receipt`).
pub(super) fn apply_receipt(
    db: &rusqlite::Connection,
    m: &OwnedRef,
    delivery: Delivery,
    at: i64,
) -> Result<Option<i64>, StoreError> {
    let find = |sql: &str, id: &String| {
        let mut found = None;
        run(db, sql, &[&m.connection, id], |r| {
            found = Some(r.try_get::<i64, _>("id")?);
            Ok(())
        })
        .map(|_| found)
    };
    let mut code_id = find(RECEIPT_BY_ID, &m.message_id)?;
    for key in [&m.key_dec, &m.key_hex].into_iter().flatten() {
        if code_id.is_some() {
            break;
        }
        code_id = find(RECEIPT_BY_KEY, key)?;
    }
    if let Some(id) = code_id {
        set_deliveries(db, &[(id, delivery)], at)?;
    }
    Ok(code_id)
}
