//! The verification transaction: lock the card's row, read its latest code, let
//! the core's rule decide, apply the effect (use, expire, count, lock), record the
//! answer under the caller's `request_id` and the audit event — all at once, so two
//! nodes verifying one code cannot both approve it and no failure is lost.

use sqlx::{AnyConnection, Row};

use super::{
    end_elapsed_lock, insert_event, parse_status, Effect, LatestCode, LockedCard, Store,
    StoreError, TokenRecord, VerifyAttempt, VerifyRecord,
};
use otpgw_rules::tokens::TokenState;
use otpgw_rules::vocab::{CardStatus, CodeState, Reason, Verdict};

/// A `VerifyAttempt` the writer can own.
pub(super) struct Attempt {
    pub api_key_id: i64,
    pub request_id: String,
    pub fingerprint: String,
    pub pan_hash: String,
    pub now: i64,
    pub max_failures: i64,
    pub lock_ms: Option<i64>,
    pub actor: String,
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
        // PostgreSQL: a retried request id is answered without a transaction. On
        // SQLite the writer's first call looks it up anyway (`verify_sqlite`).
        if self.sqlite_writer().is_none() {
            if let Some(previous) = self
                .verification(attempt.api_key_id, attempt.request_id)
                .await?
            {
                return Ok(previous);
            }
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
        let decided = match self.sqlite_writer() {
            Some(writer) => writer
                .write_guarded(move |conn: &mut AnyConnection| {
                    Box::pin(async move {
                        super::verify_sqlite::decide_and_apply(conn, &a, decide).await
                    })
                })
                .await
                .and_then(|answer| answer),
            None => {
                self.write(move |conn: &mut AnyConnection| {
                    Box::pin(async move { decide_and_apply(conn, &a, decide).await })
                })
                .await
            }
        };
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
                super::tokens::tokens_in(conn, card.id, TokenState::Active).await?
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

/// What the verification answers and records, from the verdict and the card as
/// the verification left it.
pub(super) struct Answer {
    pub result: &'static str,
    pub reason: Option<&'static str>,
    /// Attempts left before the lock (after this one), for the switch to warn.
    pub attempts_left: Option<i64>,
    /// Whether and when a lock ends.
    pub lock: Option<Option<i64>>,
}

impl Answer {
    pub fn new(verdict: Verdict, card_id: Option<i64>, after: &After, a: &Attempt) -> Self {
        let (result, reason) = match verdict {
            Verdict::Approved => ("approved", None),
            Verdict::Rejected(r) => ("rejected", Some(r.as_str())),
        };
        // What the switch may tell the customer: attempts left before the lock (after
        // this one; unchanged by a rejection that does not count, 0 while the card is
        // locked or suspended). Every rejection of an enrolled card carries it; with
        // no card (not_enrolled) there is nothing to count.
        let rejected = matches!(verdict, Verdict::Rejected(_));
        let attempts_left = (card_id.is_some() && rejected).then(|| match after.status {
            Some(CardStatus::Locked | CardStatus::Suspended) => 0,
            _ => a.max_failures.saturating_sub(after.failures).max(0),
        });
        let lock = (card_id.is_some() && after.status == Some(CardStatus::Locked))
            .then_some(after.locked_until);
        Self {
            result,
            reason,
            attempts_left,
            lock,
        }
    }

    /// The `verified` audit event's detail.
    pub fn event(&self, a: &Attempt, after: &After) -> serde_json::Value {
        serde_json::json!({"result": self.result, "reason": self.reason, "request_id": a.request_id,
            "attempts_left": self.attempts_left, "token_id": after.token_id})
    }

    pub fn record(
        self,
        verdict: Verdict,
        card_id: Option<i64>,
        a: &Attempt,
        after: &After,
    ) -> VerifyRecord {
        VerifyRecord {
            verdict,
            card_id,
            fingerprint: a.fingerprint.clone(),
            locked_now: after.locked_now,
            attempts_left: self.attempts_left,
            lock: self.lock,
            replayed: false,
        }
    }
}

pub(super) fn latest_from_row(r: &sqlx::any::AnyRow) -> Result<LatestCode, StoreError> {
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
}

/// The card as the verification left it.
#[derive(Default)]
pub(super) struct After {
    pub status: Option<CardStatus>,
    pub failures: i64,
    pub locked_until: Option<i64>,
    pub locked_now: bool,
    /// The token whose code was approved.
    pub token_id: Option<i64>,
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
