//! The verification as row-locked statements in one transaction: PostgreSQL's
//! form (SQLite has a direct job, `sqlite.rs`, with the same effects). Lock the
//! card's row, read its latest code, let the rule decide, apply the effect (use,
//! expire, count, lock), record the answer under the caller's `request_id` and the
//! audit event.

use sqlx::{AnyConnection, Row};

use super::answer::{latest_from_row, reset_failures, After, Answer, Attempt};
use crate::core::ports::VerifyRecord;
use crate::store::error::StoreError;
use crate::store::{end_elapsed_lock, insert_event, parse_status};
use otpgw_rules::records::TokenRecord;
use otpgw_rules::tokens::TokenState;
use otpgw_rules::verify::{Effect, LatestCode, LockedCard};
use otpgw_rules::vocab::{CardStatus, Reason, Verdict};

pub(super) async fn decide_and_apply<F>(
    conn: &mut AnyConnection,
    a: &Attempt,
    decide: F,
) -> Result<VerifyRecord, StoreError>
where
    F: FnOnce(&LockedCard, Option<&LatestCode>, &[TokenRecord]) -> (Verdict, Effect),
{
    let card = sqlx::query(
        "UPDATE cards SET updated_at = updated_at WHERE pan_hash = $1 \
         RETURNING id, status, failures, locked_until, epin_hash, \
         EXISTS (SELECT 1 FROM tokens WHERE tokens.card_id = cards.id AND tokens.state = 'active') AS has_tokens",
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
            // The flag's type differs by database (boolean, integer): read either.
            let has_tokens = row
                .try_get::<bool, _>("has_tokens")
                .or_else(|_| row.try_get::<i64, _>("has_tokens").map(|n| n != 0))?;
            let elapsed = card.status == CardStatus::Locked
                && locked_until.is_some_and(|until| until <= a.now);
            if elapsed && end_elapsed_lock(conn, card.id, a.now).await? {
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
            .map(|r| latest_from_row(&r))
            .transpose()?;
            let tokens = if has_tokens {
                crate::store::tokens::tokens_in(conn, card.id, TokenState::Active).await?
            } else {
                Vec::new()
            };
            let (verdict, effect) = decide(&card, latest.as_ref(), &tokens);
            if let Effect::UseToken(u) = &effect {
                after.token_id = Some(u.token_id);
            }
            apply_effect(conn, &card, effect, a, &mut after).await?;
            (verdict, Some(card.id))
        }
    };
    let answer = Answer::new(verdict, card_id, &after, a);
    let inserted = sqlx::query(
        "INSERT INTO verifications (api_key_id, request_id, fingerprint, card_id, result, reason, response_code, created_at, \
         attempts_left, locked, locked_until) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
    )
    .bind(a.api_key_id)
    .bind(&a.request_id)
    .bind(&a.fingerprint)
    .bind(card_id)
    .bind(answer.result)
    .bind(answer.reason)
    .bind(verdict.response_code())
    .bind(a.now)
    .bind(answer.attempts_left)
    .bind(answer.lock.map(|_| 1i64))
    .bind(answer.lock.flatten())
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
            answer.event(a, &after),
            a.now,
        )
        .await?;
    }
    Ok(answer.record(verdict, card_id, a, &after))
}

async fn apply_effect(
    conn: &mut AnyConnection,
    card: &LockedCard,
    effect: Effect,
    a: &Attempt,
    after: &mut After,
) -> Result<(), StoreError> {
    let (used, what) = match effect {
        Effect::None => return Ok(()),
        Effect::UseCode(code_id) => (
            sqlx::query(
                "UPDATE codes SET state = 'used', used_at = $2 WHERE id = $1 AND state = 'live'",
            )
            .bind(code_id)
            .bind(a.now),
            "live code",
        ),
        Effect::UseToken(ref u) => (
            // The rule saw `last_step` under the card's lock; the condition only
            // guards against a token changed outside it.
            sqlx::query(
                "UPDATE tokens SET last_step = COALESCE($2, last_step), drift = $3, \
                 last_txn_hash = COALESCE($4, last_txn_hash), last_used_at = $5, updated_at = $5 \
                 WHERE id = $1 AND state = 'active' AND ($2 IS NULL OR last_step IS NULL OR last_step < $2)",
            )
            .bind(u.token_id)
            .bind(u.step)
            .bind(u.drift)
            .bind(u.txn_hash.as_deref())
            .bind(a.now),
            "token",
        ),
        Effect::ExpireCode(code_id) => {
            sqlx::query("UPDATE codes SET state = 'expired' WHERE id = $1 AND state = 'live'")
                .bind(code_id)
                .execute(&mut *conn)
                .await?;
            return Ok(());
        }
        Effect::CountFailure => return count_failure(conn, card, a, after).await,
    };
    if used.execute(&mut *conn).await?.rows_affected() != 1 {
        // Cannot happen while we hold the card's lock; refuse rather than approve.
        return Err(StoreError::Corrupt(format!("{what} changed under lock")));
    }
    reset_failures(conn, card.id, a.now, after).await
}

/// Counts a failure, locking the card at `max_failures`.
async fn count_failure(
    conn: &mut AnyConnection,
    card: &LockedCard,
    a: &Attempt,
    after: &mut After,
) -> Result<(), StoreError> {
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
    after.counted = true;
    after.locked_until = row.try_get("locked_until")?;
    after.locked_now = locked_now;
    if locked_now {
        sqlx::query("UPDATE codes SET state = 'failed' WHERE card_id = $1 AND state = 'live'")
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
