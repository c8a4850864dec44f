//! PostgreSQL's group commit: requests of one kind that arrive while the previous
//! round trip is out are sent together as one statement (issue 21). One task per
//! kind takes the first waiting request, everything else already queued (up to
//! `MAX_BATCH`), runs them as one call and answers each; while that call is out the
//! next batch gathers. Under load N codes cost one round trip and one WAL flush
//! instead of N; alone, a request waits for nothing but one hand-off to the task,
//! and runs as the one-request statement (`RunOne`), which costs the database less.
//!
//! A batch's statement may be unable to decide for a request (a race another node
//! won, a deadlock, a lost connection): it answers `None`, and the caller runs its
//! request alone on the one-request path, which has its own answer for every case.
//! So a batch never turns one request's trouble into another's error.
//!
//! The same shape as SQLite's writer (`writer.rs`), without its transactions and
//! savepoints: a batch here is one statement, which PostgreSQL runs atomically.

use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::cards::{cards_batch, open_cards};
use super::codes::postgres::{issue_alone, issue_batch, IssueAsk};
use super::error::StoreError;
use super::limits::{decide_alone_ask, decide_batch, LimitAsk};
use crate::core::ports::Issued;
use otpgw_rules::records::Card;

/// Requests sent in one statement at most: bounded so a batch's statement and its
/// JSON argument stay small and the first request does not wait long for the last.
pub(super) const MAX_BATCH: usize = 256;
/// The longest a batch's statement may take. Past it every request of the batch is
/// sent back to run alone (each caller has its own deadline), and the group goes on
/// to the next batch instead of waiting on a stalled connection.
const BATCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Requests waiting for their task; past this, callers wait for room
/// (back-pressure, as on SQLite's writer).
const QUEUE: usize = 4096;

/// Runs a batch: one answer per request, in the requests' order.
pub(super) type RunBatch<Q, A> =
    Box<dyn FnMut(Vec<Q>) -> BoxFuture<'static, Vec<Option<A>>> + Send>;
/// Runs a batch of one with the one-request statement: the codes' and the card
/// look-ups' batch statements cost PostgreSQL about twice as much for a single
/// request (measured at 1 x 1).
pub(super) type RunOne<Q, A> = Box<dyn FnMut(Q) -> BoxFuture<'static, Option<A>> + Send>;

/// PostgreSQL's groups: codes, limit decisions, and the look-up of a number's
/// cards (every SMS's first read, when the card cache has not got it).
pub(super) struct Groups {
    pub(super) codes: Group<IssueAsk, Result<Issued, StoreError>>,
    pub(super) limits: Group<LimitAsk, Option<(usize, i64)>>,
    pub(super) cards: Group<String, Vec<Card>>,
}

impl Groups {
    /// Starts the three groups' tasks on `pool` (on the caller's runtime).
    pub(super) fn start(pool: &AnyPool) -> Self {
        Self {
            codes: Group::spawn(
                "codes",
                batch_on(
                    pool,
                    |pool, asks| async move { issue_batch(&pool, &asks).await },
                ),
                one_on(
                    pool,
                    |pool, ask| async move { issue_alone(&pool, &ask).await },
                ),
            ),
            limits: Group::spawn(
                "limits",
                batch_on(pool, |pool, asks| async move {
                    decide_batch(&pool, &asks).await
                }),
                one_on(pool, |pool, ask| async move {
                    decide_alone_ask(&pool, &ask).await
                }),
            ),
            cards: Group::spawn(
                "cards",
                batch_on(pool, |pool, msisdns| async move {
                    cards_batch(&pool, &msisdns).await
                }),
                one_on(pool, |pool, msisdn| async move {
                    open_cards(&pool, &msisdn).await.ok()
                }),
            ),
        }
    }
}

/// A group's batch runner on its own handle of `pool`.
fn batch_on<Q: 'static, A, F>(pool: &AnyPool, run: fn(AnyPool, Vec<Q>) -> F) -> RunBatch<Q, A>
where
    F: std::future::Future<Output = Vec<Option<A>>> + Send + 'static,
{
    let pool = pool.clone();
    Box::new(move |asks| run(pool.clone(), asks).boxed())
}

/// A group's one-request runner on its own handle of `pool`.
fn one_on<Q: 'static, A, F>(pool: &AnyPool, run: fn(AnyPool, Q) -> F) -> RunOne<Q, A>
where
    F: std::future::Future<Output = Option<A>> + Send + 'static,
{
    let pool = pool.clone();
    Box::new(move |ask| run(pool.clone(), ask).boxed())
}

/// The queue in front of one kind of batched statement.
pub(super) struct Group<Q, A> {
    queue: mpsc::Sender<(Q, oneshot::Sender<Option<A>>)>,
    /// `otpgw_store_batch_queued{kind}`: requests waiting for the next batch. Made
    /// at the first request: the store connects before the metrics recorder exists.
    queued: std::sync::Arc<std::sync::OnceLock<metrics::Gauge>>,
    kind: &'static str,
}

impl<Q: Send + 'static, A: Send + 'static> Group<Q, A> {
    /// Starts the task that runs batches with `run`, and a batch of one with
    /// `one`. It ends when the last `Group` is dropped and the queue is empty.
    pub(super) fn spawn(
        name: &'static str,
        mut run: RunBatch<Q, A>,
        mut one: RunOne<Q, A>,
    ) -> Self {
        let (queue, mut requests) = mpsc::channel::<(Q, oneshot::Sender<Option<A>>)>(QUEUE);
        let queued = std::sync::Arc::new(std::sync::OnceLock::<metrics::Gauge>::new());
        let taken = queued.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
                if let Some(gauge) = taken.get() {
                    gauge.decrement(batch.len() as f64);
                }
                let (asks, answers): (Vec<Q>, Vec<_>) = batch.drain(..).unzip();
                let size = asks.len();
                let outcomes = match <[Q; 1]>::try_from(asks) {
                    Ok([ask]) => {
                        vec![tokio::time::timeout(BATCH_TIMEOUT, one(ask))
                            .await
                            .ok()
                            .flatten()]
                    }
                    Err(asks) => tokio::time::timeout(BATCH_TIMEOUT, run(asks))
                        .await
                        .unwrap_or_default(),
                };
                metrics::histogram!("otpgw_store_batch_size", "kind" => name).record(size as f64);
                let mut outcomes = outcomes.into_iter();
                for answer in answers {
                    // A caller that gave up is gone; its request was decided anyway.
                    let _ = answer.send(outcomes.next().flatten());
                }
            }
        });
        Self {
            queue,
            queued,
            kind: name,
        }
    }

    /// The batch's answer for `request`, or `None` when the caller must run it
    /// alone (the batch could not decide it, or the task has stopped).
    pub(super) async fn ask(&self, request: Q) -> Option<A> {
        let (tx, rx) = oneshot::channel();
        let queued = self
            .queued
            .get_or_init(|| metrics::gauge!("otpgw_store_batch_queued", "kind" => self.kind));
        queued.increment(1.0);
        if self.queue.send((request, tx)).await.is_err() {
            queued.decrement(1.0);
            return None;
        }
        rx.await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests queued while a batch is out go together in the next one, each gets
    /// its own answer, `None` reaches the one the batch could not decide, and a
    /// batch of one goes to the one-request runner.
    #[tokio::test]
    async fn requests_that_wait_go_together_and_each_gets_its_answer() {
        let (seen_tx, mut seen) = mpsc::unbounded_channel::<usize>();
        let answer = |q: i64| (q >= 0).then_some(q * 10);
        let (ones_tx, mut ones) = mpsc::unbounded_channel::<()>();
        let group: Group<i64, i64> = Group::spawn(
            "test",
            Box::new(move |asks: Vec<i64>| {
                let seen_tx = seen_tx.clone();
                async move {
                    assert!(asks.len() > 1, "a batch of one went to the batch runner");
                    seen_tx.send(asks.len()).unwrap();
                    tokio::task::yield_now().await;
                    asks.into_iter().map(answer).collect()
                }
                .boxed()
            }),
            Box::new(move |ask: i64| {
                ones_tx.send(()).unwrap();
                async move { answer(ask) }.boxed()
            }),
        );
        let group = std::sync::Arc::new(group);
        let asks = (0..50).map(|i| {
            let group = group.clone();
            tokio::spawn(async move { group.ask(if i == 7 { -1 } else { i }).await })
        });
        let answers = futures::future::join_all(asks).await;
        for (i, answer) in answers.into_iter().enumerate() {
            let expected = (i != 7).then_some(i as i64 * 10);
            assert_eq!(answer.unwrap(), expected, "request {i}");
        }
        // Alone, a request is a batch of one.
        assert_eq!(group.ask(5).await, Some(50));
        drop(group);
        let mut sizes = Vec::new();
        while let Some(size) = seen.recv().await {
            sizes.push(size);
        }
        let mut alone = 0;
        while ones.recv().await.is_some() {
            alone += 1;
        }
        assert!(
            alone >= 1,
            "the request asked alone did not go to the one-request runner"
        );
        assert_eq!(sizes.iter().sum::<usize>() + alone, 51);
        assert!(
            !sizes.is_empty(),
            "no two requests shared a batch: every one ran alone"
        );
    }
}
