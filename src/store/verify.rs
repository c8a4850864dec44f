//! The verification transaction: lock the card's row, read its latest code, let
//! the core's rule decide, apply the effect (use, expire, count, lock), record the
//! answer under the caller's `request_id` and the audit event — all at once, so two
//! nodes verifying one code cannot both approve it and no failure is lost.

use sqlx::{AnyConnection, Row};

use super::{
    end_elapsed_lock, insert_event, parse_status, Effect, LatestCode, LockedCard, Store,
    StoreError, TokenRecord, VerifyAttempt, VerifyRecord,
};
use crate::domain::{CardStatus, CodeState, Reason, Verdict};
use crate::tokens::TokenState;

/// A `VerifyAttempt` the writer can own.
struct Attempt {
    api_key_id: i64,
    request_id: String,
    fingerprint: String,
    pan_hash: String,
    now: i64,
    max_failures: i64,
    lock_ms: Option<i64>,
    actor: String,
}

impl Store {
    /// One verification, decided and applied atomically. `decide` sees the card under
    /// lock and its latest code and returns the verdict and its effect; the store
    /// applies the effect, records the answer under `request_id` and the audit event,
    /// all in one transaction. A `request_id` already answered returns that answer and
    /// changes nothing.
    pub async fn verify<F>(
        &self,
        attempt: &VerifyAttempt<'_>,
        decide: F,
    ) -> Result<VerifyRecord, StoreError>
    where
        F: FnOnce(&LockedCard, Option<&LatestCode>, &[TokenRecord]) -> (Verdict, Effect)
            + Send
            + 'static,
    {
        if let Some(previous) = self
            .verification(attempt.api_key_id, attempt.request_id)
            .await?
        {
            return Ok(previous);
        }
        let a = Attempt {
            api_key_id: attempt.api_key_id,
            request_id: attempt.request_id.to_owned(),
            fingerprint: attempt.fingerprint.to_owned(),
            pan_hash: attempt.pan_hash.to_owned(),
            now: attempt.now,
            max_failures: attempt.max_failures,
            lock_ms: attempt.lock_ms,
            actor: attempt.actor.to_owned(),
        };
        let decided = self
            .write(move |conn: &mut AnyConnection| {
                Box::pin(async move { decide_and_apply(conn, &a, decide).await })
            })
            .await;
        match decided {
            // A concurrent request with the same id won: answer as it did.
            Err(StoreError::Raced) => self
                .verification(attempt.api_key_id, attempt.request_id)
                .await?
                .ok_or_else(|| StoreError::Corrupt("verification vanished".into())),
            other => other,
        }
    }
}

async fn decide_and_apply<F>(
    conn: &mut AnyConnection,
    a: &Attempt,
    decide: F,
) -> Result<VerifyRecord, StoreError>
where
    F: FnOnce(&LockedCard, Option<&LatestCode>, &[TokenRecord]) -> (Verdict, Effect),
{
    let card = sqlx::query(
        "UPDATE cards SET updated_at = updated_at WHERE pan_hash = $1 \
         RETURNING id, status, failures, locked_until, epin_hash",
    )
    .bind(&a.pan_hash)
    .fetch_optional(&mut *conn)
    .await?;
    let mut after = After::default();
    let (verdict, card_id) = match card {
        None => (Verdict::Rejected(Reason::NotEnrolled), None),
        Some(row) => {
            let mut card = LockedCard {
                id: row.try_get("id")?,
                status: parse_status(&row.try_get::<String, _>("status")?)?,
                failures: row.try_get("failures")?,
                epin_hash: row.try_get("epin_hash")?,
            };
            let locked_until: Option<i64> = row.try_get("locked_until")?;
            if end_elapsed_lock(conn, card.id, a.now).await? {
                (card.status, card.failures) = (CardStatus::Active, 0);
            }
            after.status = Some(card.status);
            after.failures = card.failures;
            after.locked_until = locked_until.filter(|_| card.status == CardStatus::Locked);
            let latest = sqlx::query(
                "SELECT id, code_hash, state, expires_at, txn_hash, cap FROM codes WHERE card_id = $1 ORDER BY id DESC LIMIT 1",
            )
            .bind(card.id)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| -> Result<LatestCode, StoreError> {
                let state: String = r.try_get("state")?;
                Ok(LatestCode {
                    id: r.try_get("id")?,
                    code_hash: r.try_get("code_hash")?,
                    state: CodeState::parse(&state)
                        .ok_or_else(|| StoreError::Corrupt(format!("code state {state}")))?,
                    expires_at: r.try_get("expires_at")?,
                    txn_hash: r.try_get("txn_hash")?,
                    cap: r.try_get("cap")?,
                })
            })
            .transpose()?;
            let tokens = super::tokens::tokens_in(conn, card.id, TokenState::Active).await?;
            let (verdict, effect) = decide(&card, latest.as_ref(), &tokens);
            if let Effect::UseToken(u) = &effect {
                after.token_id = Some(u.token_id);
            }
            apply_effect(conn, &card, effect, a, &mut after).await?;
            (verdict, Some(card.id))
        }
    };
    let (result, reason) = match verdict {
        Verdict::Approved => ("approved", None),
        Verdict::Rejected(r) => ("rejected", Some(r.as_str())),
    };
    // What the switch may tell the customer: attempts left before the lock (after
    // this one; unchanged by a rejection that does not count, 0 while the card is
    // locked or suspended), and whether and when a lock ends. Every rejection of an
    // enrolled card carries it; with no card (not_enrolled) there is nothing to count.
    let rejected = matches!(verdict, Verdict::Rejected(_));
    let attempts_left = (card_id.is_some() && rejected).then(|| match after.status {
        Some(CardStatus::Locked | CardStatus::Suspended) => 0,
        _ => a.max_failures.saturating_sub(after.failures).max(0),
    });
    let lock = (card_id.is_some() && after.status == Some(CardStatus::Locked))
        .then_some(after.locked_until);
    let inserted = sqlx::query(
        "INSERT INTO verifications (api_key_id, request_id, fingerprint, card_id, result, reason, response_code, created_at, \
         attempts_left, locked, locked_until) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
    )
    .bind(a.api_key_id)
    .bind(&a.request_id)
    .bind(&a.fingerprint)
    .bind(card_id)
    .bind(result)
    .bind(reason)
    .bind(verdict.response_code())
    .bind(a.now)
    .bind(attempts_left)
    .bind(lock.map(|_| 1i64))
    .bind(lock.flatten())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        // Rolled back: the caller answers as the earlier request did.
        return Err(StoreError::Raced);
    }
    if card_id.is_some() {
        insert_event(
            conn,
            card_id,
            "verified",
            &a.actor,
            serde_json::json!({"result": result, "reason": reason, "request_id": a.request_id, "attempts_left": attempts_left, "token_id": after.token_id}),
            a.now,
        )
        .await?;
    }
    Ok(VerifyRecord {
        verdict,
        card_id,
        fingerprint: a.fingerprint.clone(),
        locked_now: after.locked_now,
        attempts_left,
        lock,
        replayed: false,
    })
}

/// The card as the verification left it.
#[derive(Default)]
struct After {
    status: Option<CardStatus>,
    failures: i64,
    locked_until: Option<i64>,
    locked_now: bool,
    /// The token whose code was approved.
    token_id: Option<i64>,
}

async fn apply_effect(
    conn: &mut AnyConnection,
    card: &LockedCard,
    effect: Effect,
    a: &Attempt,
    after: &mut After,
) -> Result<(), StoreError> {
    match effect {
        Effect::None => Ok(()),
        Effect::UseCode(code_id) => {
            let used = sqlx::query(
                "UPDATE codes SET state = 'used', used_at = $2 WHERE id = $1 AND state = 'live'",
            )
            .bind(code_id)
            .bind(a.now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if used != 1 {
                // Cannot happen while we hold the card's lock; refuse rather than approve.
                return Err(StoreError::Corrupt("live code changed under lock".into()));
            }
            reset_failures(conn, card.id, a.now, after).await
        }
        Effect::UseToken(u) => {
            // The rule saw `last_step` under the card's lock; the condition only
            // guards against a token changed outside it.
            let used = sqlx::query(
                "UPDATE tokens SET last_step = COALESCE($2, last_step), drift = $3, \
                 last_txn_hash = COALESCE($4, last_txn_hash), last_used_at = $5, updated_at = $5 \
                 WHERE id = $1 AND state = 'active' AND ($2 IS NULL OR last_step IS NULL OR last_step < $2)",
            )
            .bind(u.token_id)
            .bind(u.step)
            .bind(u.drift)
            .bind(u.txn_hash.as_deref())
            .bind(a.now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if used != 1 {
                return Err(StoreError::Corrupt("token changed under lock".into()));
            }
            reset_failures(conn, card.id, a.now, after).await
        }
        Effect::ExpireCode(code_id) => {
            sqlx::query("UPDATE codes SET state = 'expired' WHERE id = $1 AND state = 'live'")
                .bind(code_id)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }
        Effect::CountFailure => {
            // A timed lock's end is fixed when it starts: `locked_until` is set only
            // by the failure that locks the card.
            let until = a.lock_ms.map(|ms| a.now.saturating_add(ms));
            let row = sqlx::query(
                "UPDATE cards SET failures = failures + 1, \
                 locked_until = CASE WHEN failures + 1 >= $2 AND status <> 'locked' THEN $4 ELSE locked_until END, \
                 status = CASE WHEN failures + 1 >= $2 THEN 'locked' ELSE status END, updated_at = $3 \
                 WHERE id = $1 RETURNING failures, status, locked_until",
            )
            .bind(card.id)
            .bind(a.max_failures)
            .bind(a.now)
            .bind(until)
            .fetch_one(&mut *conn)
            .await?;
            let status = parse_status(&row.try_get::<String, _>("status")?)?;
            let failures: i64 = row.try_get("failures")?;
            let locked_now = status == CardStatus::Locked && card.status != CardStatus::Locked;
            after.status = Some(status);
            after.failures = failures;
            after.locked_until = row.try_get("locked_until")?;
            after.locked_now = locked_now;
            if locked_now {
                sqlx::query(
                    "UPDATE codes SET state = 'failed' WHERE card_id = $1 AND state = 'live'",
                )
                .bind(card.id)
                .execute(&mut *conn)
                .await?;
                insert_event(
                    conn,
                    Some(card.id),
                    "locked",
                    &a.actor,
                    serde_json::json!({"failures": failures, "locked_until": after.locked_until}),
                    a.now,
                )
                .await?;
            }
            Ok(())
        }
    }
}

/// An approved code or token code ends the run of failures.
async fn reset_failures(
    conn: &mut AnyConnection,
    card_id: i64,
    now: i64,
    after: &mut After,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE cards SET failures = 0, updated_at = $2 WHERE id = $1")
        .bind(card_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    after.failures = 0;
    Ok(())
}
