//! SQLite's form of the verification transaction (`verify.rs`): the same rule and
//! effects in two calls to the database instead of eight or nine.
//!
//! Why it may differ from PostgreSQL's: on SQLite every write runs in the writer's
//! one `BEGIN IMMEDIATE` transaction, so nothing else changes the card between the
//! read and the write. The first call reads the card, its latest code and whether
//! it has active tokens (their rows in one more call only when it has); the core's
//! rule decides in between; the second call, a guarded one (`writer::guarded`),
//! applies what follows from the decision — computed here from the card as read,
//! the same values PostgreSQL's statements compute under its row lock — records the
//! answer under the `request_id` and writes the audit events.

use std::sync::LazyLock;

use sqlx::{AnyConnection, Row};

use super::verify::{latest_from_row, After, Answer, Attempt};
use super::{parse_status, Effect, LatestCode, LockedCard, StoreError, TokenRecord, VerifyRecord};
use crate::domain::{CardStatus, Reason, Verdict};
use crate::tokens::TokenState;

/// The card, its latest code, and whether the request id was answered before
/// (which the writer's lock keeps true until the second call).
const READ: &str = "\
    SELECT 'card' AS k, id, status, failures, locked_until, epin_hash, \
     EXISTS (SELECT 1 FROM tokens WHERE tokens.card_id = cards.id AND tokens.state = 'active') AS has_tokens \
     FROM cards WHERE pan_hash = $1; \
    SELECT 'code' AS k, id, code_hash, state, expires_at, txn_hash, cap FROM codes \
     WHERE card_id = (SELECT id FROM cards WHERE pan_hash = $1) ORDER BY id DESC LIMIT 1; \
    SELECT 'seen' AS k FROM verifications WHERE api_key_id = $2 AND request_id = $3";

/// Every effect the decision can have, each switched on by its parameters (a
/// statement whose switch is off touches nothing), then the answer and its audit.
/// $1 card, $2 now, $3 end an elapsed lock, $4 code to use, $5 code to expire,
/// $6-$9 token to use (id, step, drift, payment), $10 reset the failures,
/// $11-$13 a counted failure (failures, status, locked_until), $14 locked now,
/// $15 the lock's audit detail, $16-$24 the verification row, $25 actor,
/// $26 the `verified` audit detail.
const APPLY: &str = "\
    UPDATE cards SET status = 'active', failures = 0, locked_until = NULL, updated_at = $2 \
     WHERE id = $1 AND $3 = 1; \
    INSERT INTO events (card_id, kind, actor, detail, at) \
     SELECT $1, 'lock_expired', 'policy', '{}', $2 WHERE $3 = 1; \
    UPDATE codes SET state = 'used', used_at = $2 WHERE id = $4 AND state = 'live' \
     RETURNING 'used' AS k; \
    UPDATE tokens SET last_step = COALESCE($7, last_step), drift = $8, \
     last_txn_hash = COALESCE($9, last_txn_hash), last_used_at = $2, updated_at = $2 \
     WHERE id = $6 AND state = 'active' AND ($7 IS NULL OR last_step IS NULL OR last_step < $7) \
     RETURNING 'used' AS k; \
    UPDATE codes SET state = 'expired' WHERE id = $5 AND state = 'live'; \
    UPDATE cards SET failures = 0, updated_at = $2 WHERE id = $1 AND $10 = 1; \
    UPDATE cards SET failures = $11, status = $12, locked_until = $13, updated_at = $2 \
     WHERE id = $1 AND $11 IS NOT NULL; \
    UPDATE codes SET state = 'failed' WHERE card_id = $1 AND state = 'live' AND $14 = 1; \
    INSERT INTO events (card_id, kind, actor, detail, at) SELECT $1, 'locked', $25, $15, $2 WHERE $14 = 1; \
    INSERT INTO verifications (api_key_id, request_id, fingerprint, card_id, result, reason, response_code, \
     created_at, attempts_left, locked, locked_until) \
     VALUES ($16, $17, $18, $1, $19, $20, $21, $2, $22, $23, $24) ON CONFLICT DO NOTHING \
     RETURNING 'answered' AS k; \
    INSERT INTO events (card_id, kind, actor, detail, at) \
     SELECT $1, 'verified', $25, $26, $2 WHERE $1 IS NOT NULL";

/// Runs the verification in the writer's guarded form. Only a failure of the
/// guarded call is an `Err` (the writer then rolls its effects back); everything
/// decided before it, or read from its rows, is the inner result.
pub(super) async fn decide_and_apply<F>(
    conn: &mut AnyConnection,
    a: &Attempt,
    decide: F,
) -> Result<Result<VerifyRecord, StoreError>, StoreError>
where
    F: FnOnce(&LockedCard, Option<&LatestCode>, &[TokenRecord]) -> (Verdict, Effect),
{
    let read = match read(conn, a).await {
        Ok(read) => read,
        // Nothing written yet, and no savepoint to roll back.
        Err(e) => return Ok(Err(e)),
    };
    let mut after = After::default();
    let mut apply = Apply::default();
    let (verdict, card_id) = match read.card {
        None => (Verdict::Rejected(Reason::NotEnrolled), None),
        Some((mut card, locked_until)) => {
            // A timed lock whose time is up ends here, as `end_elapsed_lock` does.
            let elapsed = card.status == CardStatus::Locked
                && locked_until.is_some_and(|until| until <= a.now);
            let locked_until = if elapsed {
                (card.status, card.failures) = (CardStatus::Active, 0);
                None
            } else {
                locked_until
            };
            apply.end_lock = elapsed;
            after.status = Some(card.status);
            after.failures = card.failures;
            after.locked_until = locked_until.filter(|_| card.status == CardStatus::Locked);
            let (verdict, effect) = decide(&card, read.latest.as_ref(), &read.tokens);
            apply.effect(effect, &card, locked_until, a, &mut after);
            (verdict, Some(card.id))
        }
    };
    let answer = Answer::new(verdict, card_id, &after, a);
    let rows = sqlx::query(SQL.as_str())
        .bind(card_id)
        .bind(a.now)
        .bind(i64::from(apply.end_lock))
        .bind(apply.use_code)
        .bind(apply.expire_code)
        .bind(apply.token.as_ref().map(|t| t.token_id))
        .bind(apply.token.as_ref().and_then(|t| t.step))
        .bind(apply.token.as_ref().map(|t| t.drift))
        .bind(apply.token.as_ref().and_then(|t| t.txn_hash.clone()))
        .bind(i64::from(apply.reset_failures))
        .bind(apply.failure.map(|f| f.failures))
        .bind(apply.failure.map(|f| f.status.as_str()))
        .bind(apply.failure.and_then(|f| f.locked_until))
        .bind(i64::from(after.locked_now))
        .bind(
            serde_json::json!({"failures": after.failures, "locked_until": after.locked_until})
                .to_string(),
        )
        .bind(a.api_key_id)
        .bind(&a.request_id)
        .bind(&a.fingerprint)
        .bind(answer.result)
        .bind(answer.reason)
        .bind(verdict.response_code())
        .bind(answer.attempts_left)
        .bind(answer.lock.map(|_| 1i64))
        .bind(answer.lock.flatten())
        .bind(&a.actor)
        .bind(answer.event(a, &after).to_string())
        .fetch_all(&mut *conn)
        .await?;
    let seen = |k: &str| {
        rows.iter()
            .filter(|r| r.try_get::<String, _>("k").is_ok_and(|v| v == k))
            .count()
    };
    let used = apply.use_code.is_some() || apply.token.is_some();
    if seen("answered") != 1 || (used && seen("used") != 1) {
        // Cannot happen while the writer holds the write lock (the first call saw
        // no answer under this id and the code or token as the rule did).
        return Ok(Err(StoreError::Corrupt(
            "the verification changed under the write lock".into(),
        )));
    }
    Ok(Ok(answer.record(verdict, card_id, a, &after)))
}

static SQL: LazyLock<String> = LazyLock::new(|| super::writer::guarded(APPLY));

/// What the first call found.
struct Read {
    /// The card and its `locked_until` as stored.
    card: Option<(LockedCard, Option<i64>)>,
    latest: Option<LatestCode>,
    tokens: Vec<TokenRecord>,
}

async fn read(conn: &mut AnyConnection, a: &Attempt) -> Result<Read, StoreError> {
    let rows = sqlx::query(READ)
        .bind(&a.pan_hash)
        .bind(a.api_key_id)
        .bind(&a.request_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut read = Read {
        card: None,
        latest: None,
        tokens: Vec::new(),
    };
    let mut has_tokens = false;
    for row in &rows {
        match row.try_get::<String, _>("k")?.as_str() {
            "card" => {
                let card = LockedCard {
                    id: row.try_get("id")?,
                    status: parse_status(&row.try_get::<String, _>("status")?)?,
                    failures: row.try_get("failures")?,
                    epin_hash: row.try_get("epin_hash")?,
                };
                has_tokens = row.try_get::<i64, _>("has_tokens")? != 0;
                read.card = Some((card, row.try_get("locked_until")?));
            }
            "code" => read.latest = Some(latest_from_row(row)?),
            // Answered since the caller looked: it answers as the earlier one did.
            "seen" => return Err(StoreError::Raced),
            other => return Err(StoreError::Corrupt(format!("verify row {other}"))),
        }
    }
    if let (true, Some((card, _))) = (has_tokens, &read.card) {
        read.tokens = super::tokens::tokens_in(conn, card.id, TokenState::Active).await?;
    }
    Ok(read)
}

/// The statements' switches, set from the decision's effect.
#[derive(Default)]
struct Apply {
    end_lock: bool,
    use_code: Option<i64>,
    expire_code: Option<i64>,
    token: Option<super::TokenUse>,
    reset_failures: bool,
    failure: Option<Failure>,
}

#[derive(Clone, Copy)]
struct Failure {
    failures: i64,
    status: CardStatus,
    locked_until: Option<i64>,
}

impl Apply {
    /// Sets the switches for `effect` and the card as it will be after it: the
    /// values of `verify.rs`'s statements, computed from the card as read.
    fn effect(
        &mut self,
        effect: Effect,
        card: &LockedCard,
        locked_until: Option<i64>,
        a: &Attempt,
        after: &mut After,
    ) {
        match effect {
            Effect::None => {}
            Effect::UseCode(id) => {
                self.use_code = Some(id);
                self.reset_failures = true;
                after.failures = 0;
            }
            Effect::UseToken(u) => {
                after.token_id = Some(u.token_id);
                self.token = Some(u);
                self.reset_failures = true;
                after.failures = 0;
            }
            Effect::ExpireCode(id) => self.expire_code = Some(id),
            Effect::CountFailure => {
                let failures = card.failures + 1;
                let locks = failures >= a.max_failures;
                // A timed lock's end is fixed when it starts.
                let locked_until = if locks && card.status != CardStatus::Locked {
                    a.lock_ms.map(|ms| a.now.saturating_add(ms))
                } else {
                    locked_until
                };
                let status = if locks {
                    CardStatus::Locked
                } else {
                    card.status
                };
                self.failure = Some(Failure {
                    failures,
                    status,
                    locked_until,
                });
                after.status = Some(status);
                after.failures = failures;
                after.locked_until = locked_until;
                after.locked_now =
                    status == CardStatus::Locked && card.status != CardStatus::Locked;
            }
        }
    }
}
