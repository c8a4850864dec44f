//! What sqlx's `Any` driver (which the store uses, for one SQL text on SQLite and
//! PostgreSQL) costs against the typed drivers, on the statements that issue one
//! code: lock the card's row, supersede its live code, insert the code, write the
//! audit event, in one transaction. SQLite runs in WAL with `synchronous = NORMAL`
//! so the fsync (the same for both) does not hide the driver's own cost; with
//! `OTPGW_BENCH_POSTGRES_URL` set (a database the bench may fill, e.g.
//! postgres://postgres@127.0.0.1:5432/test) PostgreSQL is measured too.
//!
//!   cargo bench --bench drivers

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sqlx::{Any, Connection, Executor, Pool, Postgres, Sqlite};

const LOCK: &str = "UPDATE cards SET updated_at = updated_at WHERE id = $1 RETURNING status";
const SUPERSEDE: &str =
    "UPDATE codes SET state = 'superseded' WHERE card_id = $1 AND state = 'live'";
const INSERT: &str =
    "INSERT INTO codes (card_id, code_hash, channel, peer, issued_at, expires_at, state) \
                      VALUES ($1, $2, 'sms', 'bench', $3, $4, 'live') RETURNING id";
const EVENT: &str = "INSERT INTO events (card_id, kind, actor, detail, at) VALUES ($1, 'code_issued', 'bench', '{}', $2)";

/// The same transaction on any driver: the SQL is identical.
macro_rules! issue {
    ($pool:expr, $card:expr, $n:expr) => {{
        let mut tx = $pool.begin().await.unwrap();
        let status: String = sqlx::query_scalar(LOCK)
            .bind($card)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(status, "active");
        sqlx::query(SUPERSEDE)
            .bind($card)
            .execute(&mut *tx)
            .await
            .unwrap();
        let _id: i64 = sqlx::query_scalar(INSERT)
            .bind($card)
            .bind(format!("{:064x}", $n))
            .bind($n)
            .bind($n + 60_000)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        sqlx::query(EVENT)
            .bind($card)
            .bind($n)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }};
}

/// The typed pool, then `Any`, on one database (a macro: the two pools differ in
/// type, and the transaction is written once).
macro_rules! measure {
    ($c:expr, $rt:expr, $group:expr, $typed:expr, $any:expr, $card:expr, $n:expr) => {{
        let mut g = $c.benchmark_group($group);
        g.bench_function("typed", |b| {
            b.iter(|| {
                $n += 1;
                $rt.block_on(async { issue!($typed, $card, $n) })
            })
        });
        g.bench_function("any", |b| {
            b.iter(|| {
                $n += 1;
                $rt.block_on(async { issue!($any, $card, $n) })
            })
        });
        g.finish();
    }};
}

/// The gateway's own migrations, applied through the typed pool.
async fn migrate<DB: sqlx::Database>(pool: &Pool<DB>, dir: &std::path::Path)
where
    <DB as sqlx::Database>::Connection: sqlx::migrate::Migrate,
{
    let migrator = sqlx::migrate::Migrator::new(dir)
        .await
        .expect("the migrations");
    migrator.run(pool).await.expect("migrated");
}

async fn card(pool: &Pool<Any>, pan_hash: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO cards (pan_hash, last4, last6_hash, msisdn, status, failures, created_at, updated_at) \
         VALUES ($1, '4321', 'x', '989120000000', 'active', 0, 0, 0) RETURNING id",
    )
    .bind(pan_hash)
    .fetch_one(pool)
    .await
    .unwrap()
}

fn drivers(c: &mut Criterion) {
    sqlx::any::install_default_drivers();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let (typed, any, card_id) = rt.block_on(async {
        let opts: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let opts = opts
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
        let typed: Pool<Sqlite> = sqlx::pool::PoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .unwrap();
        migrate(&typed, &migrations.join("sqlite")).await;
        let any: Pool<Any> = sqlx::pool::PoolOptions::new()
            .max_connections(1)
            .after_connect(|conn: &mut sqlx::AnyConnection, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .unwrap();
        let card_id = card(&any, "sqlite").await;
        (typed, any, card_id)
    });
    let mut n = 1_000_000_000i64;
    measure!(c, rt, "issue_transaction_sqlite", typed, any, card_id, n);

    let Ok(pg) = std::env::var("OTPGW_BENCH_POSTGRES_URL") else {
        return;
    };
    let (typed, any, card_id) = rt.block_on(async {
        let db = format!("otpgw_bench_drivers_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&pg).await.unwrap();
        admin
            .execute(format!("CREATE DATABASE {db}").as_str())
            .await
            .unwrap();
        let url = match pg.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{db}"),
            None => panic!("OTPGW_BENCH_POSTGRES_URL needs a database name"),
        };
        let typed: Pool<Postgres> = sqlx::pool::PoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        migrate(&typed, &migrations.join("postgres")).await;
        let any: Pool<Any> = sqlx::pool::PoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let card_id = card(&any, "pg").await;
        (typed, any, card_id)
    });
    measure!(c, rt, "issue_transaction_postgres", typed, any, card_id, n);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = drivers
}
criterion_main!(benches);
