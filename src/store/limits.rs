//! The shared half of rate limiting on PostgreSQL: one atomic statement per decision
//! keeps each key's theoretical arrival time (GCRA), so every node sees the same
//! budget. Single statements in autocommit: no transaction holds the row longer.

use async_trait::async_trait;

use super::port;
use super::Store;
use crate::core::ports::{Gcra, LimitStore};
use crate::core::DomainError;

#[async_trait]
impl LimitStore for Store {
    /// Whether one more event for `key` fits at `now`: events come at most one per
    /// `interval` ms on average, with bursts up to `tolerance / interval + 1`. `Ok(())`
    /// when it fits (and is counted), `Err(ms)` with the time to wait when not.
    async fn gcra(&self, key: &str, now: i64, rate: Gcra) -> Result<Option<i64>, DomainError> {
        let (interval, tolerance) = (rate.interval, rate.tolerance);
        port(async move {
            let admitted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO limit_state (key, tat) VALUES ($1, $2 + $3) \
                 ON CONFLICT (key) DO UPDATE SET tat = GREATEST(limit_state.tat, $2) + $3 \
                 WHERE GREATEST(limit_state.tat, $2) - $2 <= $4 \
                 RETURNING tat",
            )
            .bind(key)
            .bind(now)
            .bind(interval)
            .bind(tolerance)
            .fetch_optional(&self.pool)
            .await?;
            if admitted.is_some() {
                return Ok(None);
            }
            let tat: Option<i64> = sqlx::query_scalar("SELECT tat FROM limit_state WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
            Ok(Some(tat.map_or(interval, |t| (t - now - tolerance).max(1))))
        })
        .await
    }

    /// Forgets keys whose state has run out (their next event would fit anyway).
    async fn sweep_limits(&self, now: i64) -> Result<u64, DomainError> {
        port(async move {
            let done = sqlx::query("DELETE FROM limit_state WHERE tat < $1")
                .bind(now)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }

    /// True when several nodes may share this database (PostgreSQL).
    fn is_shared(&self) -> bool {
        self.shared()
    }
}
