//! The verification transaction behind `VerifyStore`: lock the card's row, read
//! its latest code and active tokens, let the core's rule decide, apply the effect
//! (use, expire, count, lock), record the answer under the caller's `request_id`
//! and the audit event — all at once, so two nodes verifying one code cannot both
//! approve it and no failure is lost.
//!
//! * `statements.rs` — that transaction as row-locked statements (PostgreSQL).
//! * `sqlite.rs`     — SQLite's form, a direct job on the writer's thread (the
//!   writer's lock stands in for the row lock).
//! * `answer.rs`     — what both share: the attempt, the card after, the answer.

mod answer;
mod sqlite;
mod statements;

use async_trait::async_trait;
use sqlx::{AnyConnection, Row};

use super::error::StoreError;
use super::port;
use super::{or_stored, parse_verdict, Store};
use crate::core::ports::{
    Decide, IssuedChallenge, NewChallenge, VerifyAttempt, VerifyRecord, VerifyStore,
};
use crate::core::DomainError;
use answer::Attempt;

#[async_trait]
impl VerifyStore for Store {
    /// One verification, decided and applied atomically. `decide` sees the card under
    /// lock and its latest code and returns the verdict and its effect; the store
    /// applies the effect, records the answer under `request_id` and the audit event,
    /// all in one transaction. A `request_id` already answered returns that answer and
    /// changes nothing.
    async fn verify(
        &self,
        attempt: &VerifyAttempt<'_>,
        decide: Decide,
    ) -> Result<VerifyRecord, DomainError> {
        port(async move {
            // PostgreSQL: a retried request id is answered without a transaction. On
            // SQLite the writer's job looks it up anyway (`sqlite.rs`).
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
                    .write_direct(move |db: &rusqlite::Connection| {
                        sqlite::decide_and_apply(db, &a, decide)
                    })
                    .await
                    .and_then(|answer| answer),
                None => {
                    self.write(move |conn: &mut AnyConnection| {
                        Box::pin(
                            async move { statements::decide_and_apply(conn, &a, decide).await },
                        )
                    })
                    .await
                }
            };
            let stored = self.verification(attempt.api_key_id, attempt.request_id);
            or_stored(decided, stored, "verification").await
        })
        .await
    }

    /// Deletes verification records (request_id memory) and payment challenges
    /// created before `before`.
    async fn prune_verifications(&self, before: i64) -> Result<u64, DomainError> {
        let mut deleted = 0;
        for sql in [
            "DELETE FROM verifications WHERE created_at < $1",
            "DELETE FROM payment_challenges WHERE created_at < $1",
        ] {
            deleted += port(self.execute_ints(sql, vec![before])).await?;
        }
        Ok(deleted)
    }

    async fn issue_challenge(&self, c: &NewChallenge<'_>) -> Result<Option<i64>, DomainError> {
        let (value, txn_hash) = (c.value.to_owned(), c.txn_hash.to_owned());
        let (key, now, expires) = (c.api_key_id, c.now, c.expires_at);
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let id: Option<i64> = sqlx::query_scalar(
                        "INSERT INTO payment_challenges (value, txn_hash, api_key_id, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (value) DO NOTHING RETURNING id",
                    )
                    .bind(&value)
                    .bind(&txn_hash)
                    .bind(key)
                    .bind(now)
                    .bind(expires)
                    .fetch_optional(&mut *conn)
                    .await?;
                    Ok(id)
                })
            })
            .await
        })
        .await
    }

    async fn challenge(&self, id: i64) -> Result<Option<IssuedChallenge>, DomainError> {
        let query = sqlx::query(
            "SELECT id, value, txn_hash, api_key_id, expires_at, used_at FROM payment_challenges WHERE id = $1",
        );
        port(self.read_one(query.bind(id), |r| {
            Ok(IssuedChallenge {
                id: r.try_get("id")?,
                value: r.try_get("value")?,
                txn_hash: r.try_get("txn_hash")?,
                api_key_id: r.try_get("api_key_id")?,
                expires_at: r.try_get("expires_at")?,
                used_at: r.try_get("used_at")?,
            })
        }))
        .await
    }

    async fn spend_challenge(&self, id: i64, now: i64) -> Result<(), DomainError> {
        let sql = "UPDATE payment_challenges SET used_at = $2 WHERE id = $1 AND used_at IS NULL";
        port(self.execute_ints(sql, vec![id, now])).await.map(drop)
    }
}

impl Store {
    /// The stored answer to an earlier verify with this request id.
    async fn verification(
        &self,
        api_key_id: i64,
        request_id: &str,
    ) -> Result<Option<VerifyRecord>, StoreError> {
        let query = sqlx::query(
            "SELECT fingerprint, card_id, result, reason, attempts_left, locked, locked_until FROM verifications WHERE api_key_id = $1 AND request_id = $2",
        );
        self.read_one(query.bind(api_key_id).bind(request_id), |row| {
            let result: String = row.try_get("result")?;
            let reason: Option<String> = row.try_get("reason")?;
            let verdict = parse_verdict(&result, reason.as_deref())?;
            Ok(VerifyRecord {
                verdict,
                card_id: row.try_get("card_id")?,
                fingerprint: row.try_get("fingerprint")?,
                locked_now: false,
                attempts_left: row.try_get("attempts_left")?,
                lock: match row.try_get::<Option<i64>, _>("locked")? {
                    Some(1) => Some(row.try_get("locked_until")?),
                    _ => None,
                },
                replayed: true,
            })
        })
        .await
    }
}
