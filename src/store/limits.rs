//! The shared half of rate limiting on PostgreSQL: one atomic statement per decision
//! keeps each key's theoretical arrival time (GCRA), so every node sees the same
//! budget. Single statements in autocommit: no transaction holds the row longer.
//! The core asks through `gcra_each`: the decisions one message needs together (a
//! peer's TPS and the global cap, a number's windows) go in one call of
//! `otpgw_gcra_each` (migration 0018), which runs the same statement for each key
//! in turn (one round trip instead of one per key) and commits without waiting
//! for a disk flush: a limit's state is not worth one. Calls that wait for the same
//! round trip go together as one call of `otpgw_gcra_batch` (migration 0019), sent
//! by the store's group (`group.rs`). A call alone runs `otpgw_gcra_each` when its
//! keys are in key order, else the batch function: every form takes its row locks
//! in key order, so no two nodes' calls wait on each other in a circle.

use async_trait::async_trait;
use sqlx::Row;

use super::error::StoreError;
use super::port;
use super::Store;
use crate::core::ports::{Gcra, LimitStore};
use crate::core::DomainError;
use sqlx::AnyPool;

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

    /// Every key of the call in one round trip (`otpgw_gcra_each`), committed
    /// without a disk flush (see migration 0018). The Any driver binds no arrays, so
    /// the keys and rates travel as text split in the database; a key holding the
    /// separator (it never does: msisdns are digits and peer ids come from the
    /// config) is decided one by one instead.
    async fn gcra_each(
        &self,
        keys: &[(&str, Gcra)],
        now: i64,
    ) -> Result<Option<(usize, i64)>, DomainError> {
        if keys.is_empty() {
            return Ok(None);
        }
        if keys.iter().any(|(key, _)| key.contains(SEP)) {
            for (i, (key, rate)) in keys.iter().enumerate() {
                if let Some(wait) = self.gcra(key, now, *rate).await? {
                    return Ok(Some((i, wait)));
                }
            }
            return Ok(None);
        }
        let ask = || LimitAsk {
            keys: keys
                .iter()
                .map(|(k, rate)| ((*k).to_owned(), *rate))
                .collect(),
            now,
        };
        if let Some(groups) = &self.groups {
            if let Some(decision) = groups.limits.ask(ask()).await {
                return Ok(decision);
            }
        }
        port(decide_in_key_order(&self.pool, &ask())).await
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

/// Separates keys in the text the `Any` driver binds for a `text[]` (it binds no
/// arrays). Keys never hold it: msisdns are digits and peer ids come from the config.
const SEP: char = '\u{1f}';

/// One call of `otpgw_gcra_each`: the keys in order, the first refusal's index and
/// wait, or `None` when every key fits.
async fn decide_alone<'k>(
    pool: &AnyPool,
    keys: impl Iterator<Item = (&'k str, Gcra)>,
    now: i64,
) -> Result<Option<(usize, i64)>, StoreError> {
    let (mut names, mut intervals, mut tolerances) = (Vec::new(), Vec::new(), Vec::new());
    for (key, rate) in keys {
        names.push(key);
        intervals.push(rate.interval.to_string());
        tolerances.push(rate.tolerance.to_string());
    }
    let row = sqlx::query(
        "SELECT refused, wait FROM otpgw_gcra_each(string_to_array($1, chr(31)), $2, \
         string_to_array($3, ',')::bigint[], string_to_array($4, ',')::bigint[])",
    )
    .bind(names.join(&SEP.to_string()))
    .bind(now)
    .bind(intervals.join(","))
    .bind(tolerances.join(","))
    .fetch_one(pool)
    .await?;
    let refused: Option<i32> = row.try_get("refused")?;
    let wait: Option<i64> = row.try_get("wait")?;
    Ok(refused.map(|i| (usize::try_from(i).unwrap_or(0), wait.unwrap_or(1))))
}

/// The group's batch of one: the call alone (`None` on an error: its caller
/// tries once more alone, as after a failed batch, and warns if that fails too).
pub(super) async fn decide_alone_ask(
    pool: &AnyPool,
    ask: &LimitAsk,
) -> Option<Option<(usize, i64)>> {
    match decide_in_key_order(pool, ask).await {
        Ok(decision) => Some(decision),
        Err(e) => {
            tracing::debug!(error = %e, "limit call not decided alone in the group; once more");
            None
        }
    }
}

/// One call decided alone, its keys' row locks taken in key order, as a batch
/// takes them. `otpgw_gcra_each` locks in the call's order, so a call whose keys
/// are not in key order (a peer's TPS, `P:…`, before the global cap, `G`) goes
/// through `otpgw_gcra_batch` as a batch of one call: else a lone call on one node
/// could hold `P:…` waiting for `G` while another node's batch held `G` waiting for
/// `P:…`, a deadlock PostgreSQL breaks only after `deadlock_timeout`.
async fn decide_in_key_order(
    pool: &AnyPool,
    ask: &LimitAsk,
) -> Result<Option<(usize, i64)>, StoreError> {
    if ask.keys.windows(2).all(|pair| pair[0].0 < pair[1].0) {
        let keys = ask.keys.iter().map(|(key, rate)| (key.as_str(), *rate));
        return decide_alone(pool, keys, ask.now).await;
    }
    decide_batch(pool, std::slice::from_ref(ask))
        .await
        .pop()
        .flatten()
        .ok_or_else(|| StoreError::Unavailable("the limit decision was not made".into()))
}

/// One message's call of `gcra_each`, for the group.
pub(super) struct LimitAsk {
    keys: Vec<(String, Gcra)>,
    now: i64,
}

/// Decides a batch of calls as one call of `otpgw_gcra_batch`: one answer per call,
/// in order (`None` when it refused nothing). On an error every call gets `None`
/// from the group and is decided alone.
pub(super) async fn decide_batch(
    pool: &AnyPool,
    asks: &[LimitAsk],
) -> Vec<Option<Option<(usize, i64)>>> {
    let (mut calls, mut keys, mut nows, mut intervals, mut tolerances) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, ask) in asks.iter().enumerate() {
        for (key, rate) in &ask.keys {
            calls.push(i.to_string());
            keys.push(key.as_str());
            nows.push(ask.now.to_string());
            intervals.push(rate.interval.to_string());
            tolerances.push(rate.tolerance.to_string());
        }
    }
    let rows = sqlx::query(
        "SELECT r, refused, wait FROM otpgw_gcra_batch(string_to_array($1, ',')::integer[], \
         string_to_array($2, chr(31)), string_to_array($3, ',')::bigint[], \
         string_to_array($4, ',')::bigint[], string_to_array($5, ',')::bigint[])",
    )
    .bind(calls.join(","))
    .bind(keys.join(&SEP.to_string()))
    .bind(nows.join(","))
    .bind(intervals.join(","))
    .bind(tolerances.join(","))
    .fetch_all(pool)
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            tracing::debug!(error = %e, calls = asks.len(), "limit batch not decided; each call alone");
            return asks.iter().map(|_| None).collect();
        }
    };
    let mut answers: Vec<Option<Option<(usize, i64)>>> = asks.iter().map(|_| Some(None)).collect();
    for row in &rows {
        let (Ok(r), Ok(refused), Ok(wait)) = (
            row.try_get::<i32, _>("r"),
            row.try_get::<i32, _>("refused"),
            row.try_get::<i64, _>("wait"),
        ) else {
            return asks.iter().map(|_| None).collect();
        };
        if let Some(answer) = usize::try_from(r).ok().and_then(|r| answers.get_mut(r)) {
            *answer = Some(Some((usize::try_from(refused).unwrap_or(0), wait)));
        }
    }
    answers
}
