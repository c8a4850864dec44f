//! Tests that need PostgreSQL: several gateway processes acting as one on a shared
//! database (SQLite is one node's), row locks, and a database server the test can
//! cut off. The default nextest profile skips this module; the `postgres` profile
//! runs it with `OTPGW_TEST_POSTGRES_URL` naming the server (see
//! `.config/nextest.toml`). Run without that variable, each test fails at once.

mod cluster;
mod database;
mod group;

/// The PostgreSQL server's URL; fails the test when the run is on SQLite.
fn require_postgres() -> String {
    crate::harness::postgres_url().expect(
        "this test needs PostgreSQL: set OTPGW_TEST_POSTGRES_URL (e.g. \
         postgres://postgres@127.0.0.1:5432/test) and run with `--profile postgres`",
    )
}

/// Runs `sql` in a transaction of its own and holds what it locked, from before
/// this returns until the sender is dropped; join the thread to know it let go.
fn hold_in_a_transaction(
    url: &str,
    sql: &'static str,
) -> (std::thread::JoinHandle<()>, std::sync::mpsc::Sender<()>) {
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let url = url.to_owned();
    let locker = std::thread::spawn(move || {
        block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            sqlx::query(sql).execute(&mut *tx).await.unwrap();
            held_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(std::time::Duration::from_secs(60));
            tx.rollback().await.unwrap();
        });
    });
    held_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    (locker, release_tx)
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// One row of one column from the gateway's database.
fn scalar(url: &str, sql: &str) -> i64 {
    block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    })
}

/// One sample of the gateway's metrics, by its whole name with labels (0 when absent).
fn metric(gw: &crate::harness::Gateway, name: &str) -> f64 {
    gw.metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// No statement failed on the way: `otpgw_db_errors_total` is 0.
fn assert_no_database_errors(gw: &crate::harness::Gateway) {
    let errors = metric(gw, "otpgw_db_errors_total");
    assert_eq!(errors, 0.0, "a database error was counted");
}

/// Waits until `n` sessions of the gateway's database wait for a lock.
fn wait_for_lock_waiters(gw: &crate::harness::Gateway, what: &str, n: i64) {
    crate::wait::wait_until(what, std::time::Duration::from_secs(30), || {
        match scalar(
            &gw.db_url,
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        ) {
            waiting if waiting == n => Ok(()),
            waiting => Err(waiting),
        }
    });
}
