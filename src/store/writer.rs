//! The SQLite writer: every write goes through one thread, which takes whatever is
//! queued (up to `MAX_BATCH`), runs each request inside a savepoint of a
//! `BEGIN IMMEDIATE` transaction, commits, and only then releases each request's
//! answer.
//!
//! Why: SQLite has one write lock. With a pool, every code is its own transaction
//! and up to `max_connections` connections fight for that lock (busy-handler sleeps,
//! one fsync per code). One writer turns N concurrent writes into one commit and one
//! fsync. A request whose own statements fail is rolled back to its savepoint and
//! gets its own error; the others in the batch are unaffected. When a commit
//! fails, every request of its transaction gets `StoreError::Unavailable`: nothing
//! of it was stored, and no answer claims otherwise. A job that panics is answered
//! as failed and rolled back alone; the writer goes on.
//!
//! A request comes in one of two forms. A *direct* job (the hot ones: a code, a
//! verification, delivery states) runs on the writer's own thread through rusqlite
//! (`direct.rs`): each statement is a call, not a hand-off. An sqlx job (everything
//! else, written once for both databases) runs on the writer's sqlx connection,
//! where every statement is a round trip to sqlx's SQLite worker thread. Requests of
//! one form that are queued next to each other share a transaction; where the form
//! changes, the writer commits and starts the next one, so the two connections
//! never wait on each other's write lock and the order of requests is kept.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::direct::Direct;
use super::StoreError;

/// Requests committed together at most. Bounded so one commit stays short and the
/// first request of a batch does not wait long for the last.
const MAX_BATCH: usize = 512;
/// Requests waiting for the writer; past this, callers wait for room (back-pressure).
const QUEUE: usize = 8192;

/// One queued write: run it inside the batch, then tell its caller how it ended.
trait Work: Send {
    /// True for a direct job (`run_direct`), false for an sqlx one (`run`).
    fn direct(&self) -> bool;
    /// Runs an sqlx job's statements; `true` when they succeeded (keep them).
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool>;
    /// Runs a direct job's statements; `true` when they succeeded (keep them).
    fn run_direct(&mut self, conn: &rusqlite::Connection) -> bool;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), &str>);
}

/// A write job: its statements on the writer's sqlx connection, and its answer.
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

/// A direct write job: its statements on the writer's rusqlite connection.
pub(super) trait DirectJob<T>:
    FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static
{
}

impl<T, F> DirectJob<T> for F where
    F: FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static
{
}

enum Form<F, D> {
    Sqlx(F),
    Direct(D),
}

struct Pending<T, F, D> {
    job: Option<Form<F, D>>,
    result: Option<Result<T, StoreError>>,
    answer: oneshot::Sender<Result<T, StoreError>>,
}

impl<T: Send + 'static, F: Job<T>, D: DirectJob<T>> Work for Pending<T, F, D> {
    fn direct(&self) -> bool {
        matches!(self.job, Some(Form::Direct(_)))
    }

    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let Some(Form::Sqlx(job)) = self.job.take() else {
                return false;
            };
            let result = AssertUnwindSafe(async move { job(conn).await })
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(StoreError::Panicked));
            let keep = result.is_ok();
            self.result = Some(result);
            keep
        })
    }

    fn run_direct(&mut self, conn: &rusqlite::Connection) -> bool {
        let Some(Form::Direct(job)) = self.job.take() else {
            return false;
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| job(conn)))
            .unwrap_or_else(|_| Err(StoreError::Panicked));
        let keep = result.is_ok();
        self.result = Some(result);
        keep
    }

    fn finish(self: Box<Self>, commit: Result<(), &str>) {
        let answer = match (self.result, commit) {
            // A lost race is no answer when nothing committed: the twin it lost to
            // may have been in this batch, so its stored answer is gone too.
            (Some(Err(StoreError::Raced)), Err(why)) => {
                Err(StoreError::Unavailable(why.to_owned()))
            }
            // Its own failure (rolled back to its savepoint) is its answer.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(why)) => Err(StoreError::Unavailable(why.to_owned())),
            (None, Ok(())) => Err(StoreError::Unavailable("not run".into())),
        };
        let _ = self.answer.send(answer);
    }
}

/// An sqlx job's type when the request is a direct one, and the other way round.
type NoSqlx<T> = fn(&mut AnyConnection) -> BoxFuture<'_, Result<T, StoreError>>;
type NoDirect<T> = fn(&rusqlite::Connection) -> Result<T, StoreError>;

/// The handle every `Store` clone shares; the thread ends when the last one goes.
#[derive(Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Box<dyn Work>>,
    stop: CancellationToken,
    /// Cancelled by the thread once it has let go of both connections.
    done: CancellationToken,
}

impl Writer {
    /// Starts the writer thread: sqlx jobs on `pool` (one connection, kept while it
    /// works), direct jobs on a rusqlite connection to the file at `path`.
    pub fn spawn(pool: AnyPool, path: PathBuf, direct: Direct) -> std::io::Result<Self> {
        let (queue, requests) = mpsc::channel(QUEUE);
        let stop = CancellationToken::new();
        let done = CancellationToken::new();
        let runtime = tokio::runtime::Handle::current();
        let thread = Thread {
            runtime,
            pool,
            conn: None,
            path,
            direct,
            db: None,
        };
        let (stopping, finished) = (stop.clone(), done.clone());
        std::thread::Builder::new()
            .name("otpgw-writer".into())
            .spawn(move || {
                // `stop` hears the end however the thread ends.
                let _finished = finished.drop_guard();
                thread.run(requests, stopping);
            })?;
        Ok(Self { queue, stop, done })
    }

    /// Ends the writer after its current batch and gives its connections back, so
    /// the pool can close. Later writes are answered `Unavailable`.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.done.cancelled().await;
    }

    /// Runs `job` in the next batch; its answer comes after its transaction
    /// committed.
    pub async fn write<T: Send + 'static>(&self, job: impl Job<T>) -> Result<T, StoreError> {
        self.submit::<T, _, NoDirect<T>>(Form::Sqlx(job)).await
    }

    /// As `write`, for a job written against rusqlite: it runs on the writer's
    /// thread without a hand-off per statement.
    pub async fn write_direct<T: Send + 'static>(
        &self,
        job: impl DirectJob<T>,
    ) -> Result<T, StoreError> {
        self.submit::<T, NoSqlx<T>, _>(Form::Direct(job)).await
    }

    async fn submit<T: Send + 'static, F: Job<T>, D: DirectJob<T>>(
        &self,
        job: Form<F, D>,
    ) -> Result<T, StoreError> {
        let (answer, answered) = oneshot::channel();
        let work: Box<dyn Work> = Box::new(Pending {
            job: Some(job),
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

/// What the writer's thread owns.
struct Thread {
    /// Drives the sqlx jobs and the queue from a thread outside the runtime.
    runtime: tokio::runtime::Handle,
    pool: AnyPool,
    conn: Option<PoolConnection<Any>>,
    path: PathBuf,
    direct: Direct,
    db: Option<rusqlite::Connection>,
}

impl Thread {
    fn run(mut self, mut requests: mpsc::Receiver<Box<dyn Work>>, stop: CancellationToken) {
        // sqlx's pooled connection gives itself back on a task when dropped, which
        // needs the runtime's context on this thread too.
        let runtime = self.runtime.clone();
        let _context = runtime.enter();
        let mut batch: Vec<Box<dyn Work>> = Vec::with_capacity(MAX_BATCH);
        loop {
            // A stop ends the loop after the batch under way; what is still queued
            // is answered below.
            let received = self.runtime.block_on(async {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => 0,
                    n = requests.recv_many(&mut batch, MAX_BATCH) => n,
                }
            });
            if received == 0 {
                break;
            }
            metrics::histogram!("otpgw_write_batch_size").record(batch.len() as f64);
            let started = std::time::Instant::now();
            // Runs of one form, in queue order: one transaction each.
            while !batch.is_empty() {
                let direct = batch[0].direct();
                let n = batch.iter().take_while(|w| w.direct() == direct).count();
                let mut run: Vec<Box<dyn Work>> = batch.drain(..n).collect();
                let outcome = if direct {
                    self.commit_direct(&mut run)
                } else {
                    self.commit_sqlx(&mut run)
                };
                match outcome {
                    Ok(()) => run.into_iter().for_each(|work| work.finish(Ok(()))),
                    Err(why) => {
                        metrics::counter!("otpgw_db_errors_total").increment(1);
                        tracing::warn!(error = %why, size = run.len(), "writer: batch failed, nothing of it was stored");
                        run.into_iter().for_each(|work| work.finish(Err(&why)));
                    }
                }
            }
            metrics::histogram!("otpgw_write_batch_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        if let Some(c) = self.conn.take() {
            self.runtime.block_on(async { drop(c) });
        }
        drop(self.db.take());
        requests.close();
        while let Ok(work) = requests.try_recv() {
            work.finish(Err("the database is closing"));
        }
    }

    /// A run of sqlx jobs: a transaction with one savepoint per request.
    fn commit_sqlx(&mut self, run: &mut [Box<dyn Work>]) -> Result<(), String> {
        let (pool, conn, runtime) = (&self.pool, &mut self.conn, &self.runtime);
        runtime.block_on(async {
            if conn.is_none() {
                *conn = Some(pool.acquire().await.map_err(|e| {
                    tracing::warn!(error = %e, "writer: no database connection");
                    format!("cannot open the database: {e}")
                })?);
            }
            let Some(c) = conn.as_mut() else {
                return Err("no database connection".to_owned());
            };
            let outcome = commit_sqlx(c, run).await;
            if outcome.is_err() {
                // The connection may be broken (a file turned read-only, a lost
                // handle): start the next batch on a fresh one.
                if let Some(c) = conn.take() {
                    let _ = c.close().await;
                }
            }
            outcome.map_err(|e| e.to_string())
        })
    }

    /// A run of direct jobs: the same transaction, on the rusqlite connection.
    fn commit_direct(&mut self, run: &mut [Box<dyn Work>]) -> Result<(), String> {
        if self.db.is_none() {
            self.db = Some(self.direct.open(&self.path).map_err(|e| {
                tracing::warn!(error = %e, "writer: cannot open the database directly");
                format!("cannot open the database: {e}")
            })?);
        }
        let Some(db) = self.db.as_ref() else {
            return Err("no database connection".to_owned());
        };
        let outcome = commit_direct(db, run);
        if outcome.is_err() {
            let _ = super::direct::execute(db, "ROLLBACK");
            self.db = None;
        }
        outcome.map_err(|e| e.to_string())
    }
}

/// One transaction with a savepoint per request: a request whose statements fail
/// is rolled back alone. Each of these is a call on this thread.
fn commit_direct(db: &rusqlite::Connection, run: &mut [Box<dyn Work>]) -> rusqlite::Result<()> {
    use super::direct::execute;
    execute(db, "BEGIN IMMEDIATE")?;
    for work in run.iter_mut() {
        execute(db, "SAVEPOINT request")?;
        if !work.run_direct(db) {
            execute(db, "ROLLBACK TO request")?;
        }
        execute(db, "RELEASE request")?;
    }
    execute(db, "COMMIT")
}

/// One run of sqlx jobs: a transaction with one savepoint per request. Each
/// statement is a round trip to sqlx's SQLite worker thread (a channel hop and a
/// wake-up), so the savepoint bookkeeping between two requests travels as one
/// multi-statement call.
async fn commit_sqlx(
    conn: &mut AnyConnection,
    run: &mut [Box<dyn Work>],
) -> Result<(), sqlx::Error> {
    sqlx::query("BEGIN IMMEDIATE; SAVEPOINT request")
        .execute(&mut *conn)
        .await?;
    let ran = async {
        for work in run.iter_mut() {
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

    fn spawn(pool: AnyPool, path: &std::path::Path) -> Writer {
        let direct = Direct {
            synchronous: "FULL",
            cache_kib: 2048,
            busy: std::time::Duration::ZERO,
        };
        Writer::spawn(pool, path.to_owned(), direct).unwrap()
    }

    async fn pool(path: &std::path::Path) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(1)
            .connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap()
    }

    /// An sqlx job that inserts `v` into `t`, then fails when told to.
    async fn insert(writer: &Writer, v: i64, fail: bool) -> Result<i64, StoreError> {
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

    /// The same as a direct job.
    async fn insert_direct(writer: &Writer, v: i64, fail: bool) -> Result<i64, StoreError> {
        writer
            .write_direct(move |db: &rusqlite::Connection| {
                db.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
                if fail {
                    return Err(StoreError::Corrupt("no".into()));
                }
                Ok(v)
            })
            .await
    }

    /// The rows of `t` that were kept, in the order they were inserted.
    async fn kept(path: &std::path::Path) -> Vec<i64> {
        let reader = pool(path).await;
        sqlx::query_scalar("SELECT v FROM t ORDER BY rowid")
            .fetch_all(&reader)
            .await
            .unwrap()
    }

    /// One batch: the failing request is rolled back alone, the others commit, and
    /// each caller gets its own answer.
    #[tokio::test]
    async fn a_failing_request_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (path, pool) = table(dir.path()).await;
        let writer = spawn(pool, &path);
        let (a, b, c) = tokio::join!(
            insert(&writer, 1, false),
            insert(&writer, 2, true),
            insert(&writer, 3, false)
        );
        assert_eq!(a.unwrap(), 1);
        assert!(matches!(b, Err(StoreError::Corrupt(_))));
        assert_eq!(c.unwrap(), 3);
        assert_eq!(kept(&path).await, [1, 3]);
        writer.stop().await;
    }

    /// Direct and sqlx jobs queued together: each form's run is its own
    /// transaction, the rows land in queue order, and a failing direct job is
    /// rolled back alone.
    #[tokio::test]
    async fn direct_and_sqlx_jobs_share_the_queue_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (path, pool) = table(dir.path()).await;
        let writer = spawn(pool, &path);
        let (a, b, c, d, e) = tokio::join!(
            insert_direct(&writer, 1, false),
            insert_direct(&writer, 2, true),
            insert(&writer, 3, false),
            insert_direct(&writer, 4, false),
            insert(&writer, 5, false)
        );
        assert_eq!(a.unwrap(), 1);
        assert!(matches!(b, Err(StoreError::Corrupt(_))));
        assert_eq!((c.unwrap(), d.unwrap(), e.unwrap()), (3, 4, 5));
        writer.stop().await;
        assert_eq!(kept(&path).await, [1, 3, 4, 5]);
    }

    /// A job that panics is answered as failed and rolled back alone; the writer
    /// goes on with the next, and still stops when told to.
    #[tokio::test]
    async fn a_panicking_job_is_answered_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (path, pool) = table(dir.path()).await;
        let writer = spawn(pool, &path);
        let panicked = writer
            .write_direct(|db: &rusqlite::Connection| -> Result<(), StoreError> {
                db.execute("INSERT INTO t (v) VALUES (1)", [])?;
                panic!("a bug in a job");
            })
            .await;
        assert!(
            matches!(panicked, Err(StoreError::Panicked)),
            "{panicked:?}"
        );
        let sqlx_panicked = writer
            .write(
                |_: &mut AnyConnection| -> BoxFuture<'_, Result<(), StoreError>> {
                    Box::pin(async { panic!("a bug in an sqlx job") })
                },
            )
            .await;
        assert!(
            matches!(sqlx_panicked, Err(StoreError::Panicked)),
            "{sqlx_panicked:?}"
        );
        assert_eq!(insert(&writer, 2, false).await.unwrap(), 2);
        assert_eq!(insert_direct(&writer, 3, false).await.unwrap(), 3);
        writer.stop().await;
        assert_eq!(kept(&path).await, [2, 3]);
    }

    /// A request that lost a race to a twin (`Raced`) in a batch whose commit then
    /// fails is answered Unavailable (503), not with the race: the twin's answer it
    /// would read instead was not stored either.
    #[tokio::test]
    async fn a_lost_race_in_a_failed_commit_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let (path, pool) = table(dir.path()).await;
        // A deferred foreign key fails only at COMMIT, after every job has run.
        sqlx::query(
            "CREATE TABLE p (id INTEGER PRIMARY KEY); \
             CREATE TABLE c (p INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let writer = spawn(pool, &path);
        // Holds the writer inside a batch of its own until both jobs below are
        // queued (a biased join polls them, and so queues them, before the
        // release), so they are taken as the next batch together.
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let (release, held) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .write_direct(move |_: &rusqlite::Connection| {
                        let _ = started.send(());
                        let _ = held.recv();
                        Ok(())
                    })
                    .await
            }
        });
        running.await.unwrap();
        let orphan = writer.write_direct(|db: &rusqlite::Connection| {
            db.execute("INSERT INTO c (p) VALUES (99)", [])?;
            Ok(())
        });
        let raced = writer.write_direct(|_: &rusqlite::Connection| -> Result<(), StoreError> {
            Err(StoreError::Raced)
        });
        let (orphan, raced, ()) = tokio::join!(biased; orphan, raced, async {
            release.send(()).unwrap();
        });
        blocker.await.unwrap().unwrap();
        assert!(
            matches!(orphan, Err(StoreError::Unavailable(_))),
            "{orphan:?}"
        );
        assert!(
            matches!(raced, Err(StoreError::Unavailable(_))),
            "{raced:?}"
        );
        writer.stop().await;
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
        let writer = spawn(pool, &path);
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
        let direct = writer
            .write_direct(|db: &rusqlite::Connection| {
                db.execute("INSERT INTO t (v) VALUES (2)", [])?;
                Ok(())
            })
            .await;
        assert!(
            matches!(direct, Err(StoreError::Unavailable(_))),
            "{direct:?}"
        );
        sqlx::query("ROLLBACK").execute(&mut *lock).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *lock)
            .await
            .unwrap();
        assert_eq!(n, 0);
        writer.stop().await;
    }
}
