//! The SQLite writer: every write goes through one task on one connection, which
//! takes whatever is queued (up to `MAX_BATCH`), runs each request inside a
//! savepoint of one `BEGIN IMMEDIATE` transaction, commits once, and only then
//! releases each request's answer.
//!
//! Why: SQLite has one write lock. With a pool, every code is its own transaction
//! and up to `max_connections` connections fight for that lock (busy-handler sleeps,
//! one fsync per code). One writer turns N concurrent writes into one commit and one
//! fsync. A request whose own statements fail is rolled back to its savepoint and
//! gets its own error; the others in the batch are unaffected. When the commit
//! fails, every request of the batch gets `StoreError::Unavailable`: nothing of it
//! was stored, and no answer claims otherwise.
//!
//! Every statement is a round trip to sqlx's SQLite worker thread (a channel hop
//! and two wake-ups), and the writer is serial, so the hops per request bound the
//! rate. A hot request may therefore be *guarded*: one multi-statement call that
//! opens and releases its own savepoint `guarded` (see `guarded`), which saves the
//! writer's bookkeeping hop after it; on its failure the writer rolls back to it.

use futures::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::StoreError;

/// Requests committed together at most. Bounded so one commit stays short and the
/// first request of a batch does not wait long for the last.
const MAX_BATCH: usize = 512;
/// Requests waiting for the writer; past this, callers wait for room (back-pressure).
const QUEUE: usize = 8192;

/// One queued write: run it inside the batch, then tell its caller how it ended.
trait Work: Send {
    /// Runs the request's statements; `true` when they succeeded (keep them).
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool>;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), &str>);
    /// True when the request keeps its own savepoint `guarded` (see `guarded`).
    fn guarded(&self) -> bool;
}

/// A write job: its statements on the writer's connection, and its answer.
pub(super) trait Job<T>:
    for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static
{
}

impl<T, F> Job<T> for F where
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, StoreError>>
        + Send
        + 'static
{
}

/// A guarded request's SQL: its statements inside the savepoint `guarded`, run as
/// one call. If one fails, the writer rolls back to the savepoint. Such a job must
/// return `Err` only when that call failed: what it found before the call (which
/// wrote nothing) or reads from its rows afterwards (the savepoint is gone by then)
/// belongs in its `Ok` answer.
pub(super) fn guarded(statements: &str) -> String {
    format!("SAVEPOINT guarded; {statements}; RELEASE guarded")
}

struct Pending<T, F> {
    job: Option<F>,
    guarded: bool,
    result: Option<Result<T, StoreError>>,
    answer: oneshot::Sender<Result<T, StoreError>>,
}

impl<T: Send + 'static, F: Job<T>> Work for Pending<T, F> {
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let Some(job) = self.job.take() else {
                return false;
            };
            let result = job(conn).await;
            let keep = result.is_ok();
            self.result = Some(result);
            keep
        })
    }

    fn finish(self: Box<Self>, commit: Result<(), &str>) {
        let answer = match (self.result, commit) {
            // Its own failure (rolled back to its savepoint) is its answer.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(why)) => Err(StoreError::Unavailable(why.to_owned())),
            (None, Ok(())) => Err(StoreError::Unavailable("not run".into())),
        };
        let _ = self.answer.send(answer);
    }

    fn guarded(&self) -> bool {
        self.guarded
    }
}

/// The handle every `Store` clone shares; the task ends when the last one goes.
#[derive(Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Box<dyn Work>>,
    stop: CancellationToken,
}

impl Writer {
    /// Starts the writer task on `pool` (one connection, kept while it works).
    pub fn spawn(pool: AnyPool) -> Self {
        let (queue, requests) = mpsc::channel(QUEUE);
        let stop = CancellationToken::new();
        tokio::spawn(run(pool, requests, stop.clone()));
        Self { queue, stop }
    }

    /// Ends the writer after its current batch and gives its connection back, so
    /// the pool can close. Later writes are answered `Unavailable`.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Runs `job` in the next batch; its answer comes after the batch committed.
    pub async fn write<T: Send + 'static>(&self, job: impl Job<T>) -> Result<T, StoreError> {
        self.submit(job, false).await
    }

    /// As `write`, for a job whose SQL is wrapped by `guarded` (it keeps its own
    /// savepoint): one hop fewer per request.
    pub async fn write_guarded<T: Send + 'static>(
        &self,
        job: impl Job<T>,
    ) -> Result<T, StoreError> {
        self.submit(job, true).await
    }

    async fn submit<T: Send + 'static>(
        &self,
        job: impl Job<T>,
        guarded: bool,
    ) -> Result<T, StoreError> {
        let (answer, answered) = oneshot::channel();
        let work: Box<dyn Work> = Box::new(Pending {
            job: Some(job),
            guarded,
            result: None,
            answer,
        });
        self.queue
            .send(work)
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        answered
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?
    }
}

async fn run(pool: AnyPool, mut requests: mpsc::Receiver<Box<dyn Work>>, stop: CancellationToken) {
    let mut conn: Option<PoolConnection<Any>> = None;
    let mut batch: Vec<Box<dyn Work>> = Vec::with_capacity(MAX_BATCH);
    loop {
        let received = tokio::select! {
            biased;
            n = requests.recv_many(&mut batch, MAX_BATCH) => n,
            _ = stop.cancelled() => 0,
        };
        if received == 0 {
            break;
        }
        metrics::histogram!("otpgw_write_batch_size").record(batch.len() as f64);
        let started = std::time::Instant::now();
        if conn.is_none() {
            match pool.acquire().await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    let why = format!("cannot open the database: {e}");
                    tracing::warn!(error = %e, "writer: no database connection");
                    for work in batch.drain(..) {
                        work.finish(Err(&why));
                    }
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let outcome = commit(c, &mut batch).await;
        metrics::histogram!("otpgw_write_batch_seconds").record(started.elapsed().as_secs_f64());
        match outcome {
            Ok(()) => {
                for work in batch.drain(..) {
                    work.finish(Ok(()));
                }
            }
            Err(e) => {
                metrics::counter!("otpgw_db_errors_total").increment(1);
                tracing::warn!(error = %e, size = batch.len(), "writer: batch failed, nothing of it was stored");
                let why = e.to_string();
                for work in batch.drain(..) {
                    work.finish(Err(&why));
                }
                // The connection may be broken (a file turned read-only, a lost
                // handle): start the next batch on a fresh one.
                if let Some(c) = conn.take() {
                    let _ = c.close().await;
                }
            }
        }
    }
    drop(conn);
    requests.close();
    while let Ok(work) = requests.try_recv() {
        work.finish(Err("the database is closing"));
    }
}

/// One batch: a transaction with one savepoint per request. Each statement is a
/// round trip to sqlx's SQLite worker thread (a channel hop and a wake-up), so the
/// savepoint bookkeeping between two requests travels as one multi-statement call,
/// and a guarded request (its own savepoint) needs none: the writer's savepoint
/// `request` is only moved up to the current point before the next unguarded one.
async fn commit(conn: &mut AnyConnection, batch: &mut [Box<dyn Work>]) -> Result<(), sqlx::Error> {
    sqlx::query("BEGIN IMMEDIATE; SAVEPOINT request")
        .execute(&mut *conn)
        .await?;
    let ran = async {
        // True when guarded requests ran since `request` was set: it must move up
        // before an unguarded request may roll back to it.
        let mut stale = false;
        for work in batch.iter_mut() {
            if work.guarded() {
                if !work.run(conn).await {
                    sqlx::query("ROLLBACK TO guarded; RELEASE guarded")
                        .execute(&mut *conn)
                        .await?;
                }
                stale = true;
                continue;
            }
            if stale {
                sqlx::query("RELEASE request; SAVEPOINT request")
                    .execute(&mut *conn)
                    .await?;
                stale = false;
            }
            let next = if work.run(conn).await {
                "RELEASE request; SAVEPOINT request"
            } else {
                "ROLLBACK TO request; RELEASE request; SAVEPOINT request"
            };
            sqlx::query(next).execute(&mut *conn).await?;
        }
        sqlx::query("RELEASE request; COMMIT")
            .execute(&mut *conn)
            .await?;
        Ok::<(), sqlx::Error>(())
    }
    .await;
    if ran.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    ran
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::any::AnyPoolOptions;

    /// A database in `dir` with one table `t (v INTEGER)`, and a pool on it.
    async fn table(dir: &std::path::Path) -> (std::path::PathBuf, AnyPool) {
        let path = dir.join("w.db");
        let pool = pool(&path).await;
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(&pool)
            .await
            .unwrap();
        (path, pool)
    }

    async fn pool(path: &std::path::Path) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(1)
            .connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap()
    }

    /// One batch: the failing request is rolled back alone, the others commit, and
    /// each caller gets its own answer.
    #[tokio::test]
    async fn a_failing_request_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (path, pool) = table(dir.path()).await;
        let writer = Writer::spawn(pool);
        let insert = |v: i64, fail: bool| {
            let writer = writer.clone();
            async move {
                writer
                    .write(move |conn: &mut AnyConnection| {
                        Box::pin(async move {
                            sqlx::query("INSERT INTO t (v) VALUES ($1)")
                                .bind(v)
                                .execute(&mut *conn)
                                .await?;
                            if fail {
                                return Err(StoreError::Corrupt("no".into()));
                            }
                            Ok(v)
                        })
                    })
                    .await
            }
        };
        let (a, b, c) = tokio::join!(insert(1, false), insert(2, true), insert(3, false));
        assert_eq!(a.unwrap(), 1);
        assert!(matches!(b, Err(StoreError::Corrupt(_))));
        assert_eq!(c.unwrap(), 3);
        let reader = super::tests::pool(&path).await;
        let kept: Vec<i64> = sqlx::query_scalar("SELECT v FROM t ORDER BY v")
            .fetch_all(&reader)
            .await
            .unwrap();
        assert_eq!(kept, vec![1, 3]);
        writer.stop();
    }

    /// A commit that cannot happen answers every request of the batch Unavailable,
    /// and nothing of it is kept.
    #[tokio::test]
    async fn a_failed_commit_answers_unavailable_to_each_request() {
        let dir = tempfile::tempdir().unwrap();
        let (path, pool) = table(dir.path()).await;
        // Another connection holds the write lock; without a busy timeout the
        // writer's BEGIN IMMEDIATE fails at once.
        let holder = super::tests::pool(&path).await;
        let mut lock = holder.acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *lock)
            .await
            .unwrap();
        let writer = Writer::spawn(pool);
        let result = writer
            .write(|conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO t (v) VALUES (1)")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{result:?}"
        );
        sqlx::query("ROLLBACK").execute(&mut *lock).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *lock)
            .await
            .unwrap();
        assert_eq!(n, 0);
        writer.stop();
    }
}
