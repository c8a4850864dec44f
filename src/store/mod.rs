//! The store: the adapter that keeps cards, codes, verifications, tokens, API keys
//! and the audit trail in a database, behind the core's ports
//! (`crate::core::ports`). sqlx's `Any` driver lets the same queries serve SQLite
//! (the embedded default) and PostgreSQL (several nodes). It takes and returns the
//! rules' records, never rows; its errors stay here (`error.rs`) and reach the core
//! as `DomainError`. Only start-up code names this type.
//!
//! * `mod.rs`    — connecting, migrations, readiness, `write`, the shared row helpers.
//! * `writer.rs` — SQLite's one writer thread with group commit.
//! * `direct.rs` — SQLite through rusqlite: the writer's direct jobs' statements.
//! * `inline.rs` — SQLite's hottest reads (a number's cards, a push's look-ups) on
//!   the caller's thread.
//! * `group.rs` — PostgreSQL's group commit: codes and limit decisions that wait
//!   for the same round trip go as one statement.
//! * `changes.rs` — PostgreSQL: other nodes' changes heard (`LISTEN`), and the
//!   cards and key generation that makes safe to keep in memory.
//! * `cards.rs`  — `CardStore`: reads, enrolling, status changes, ePIN, activation.
//! * `codes.rs`  — `CodeStore`: issuing codes and following their delivery
//!   (`codes/sqlite.rs`: the direct jobs).
//! * `verify/`   — `VerifyStore`: the verification transaction, in both forms.
//! * `tokens.rs` — `TokenStore`: customer tokens.
//! * `access.rs` — `AccessStore`: API keys and console sessions.
//! * `audit.rs`  — `AuditStore`: the audit trail and its counts.
//! * `outbox.rs` — `OutboxStore`: the replies outbox (PostgreSQL).
//! * `limits.rs` — `LimitStore`: cluster-wide rate-limit decisions (PostgreSQL).
//! * `keys.rs`   — the keys' fingerprints, for start-up's check.
//! * `backup.rs` — `otpgw backup`: a checked copy of a SQLite database.
//!
//! Every write is one job run by `Store::write`: on SQLite inside the writer's next
//! batch (one transaction, a savepoint per job, answers released after the commit;
//! the hot jobs written against rusqlite and run by `Writer::write_direct`), on
//! PostgreSQL in a transaction of its own. Reads use their own pool and never take
//! SQLite's write lock. The rules that must hold across gateway nodes live in these
//! jobs: one live code per card (a partial unique index backs it), single use, exact
//! failure counting and locking, `request_id` idempotency. Each job that needs it
//! first takes the card's row lock with an `UPDATE … RETURNING`.
//!
//! Times are epoch milliseconds chosen by the caller, which keeps tests free of sleeps.

/// One of the rules' records made of a row: the fields named before the `;` are
/// the columns of the same names, those after it are computed (`field: value`, or
/// a local of the field's name). A function cannot name a struct's fields.
macro_rules! record {
    ($row:expr => $ty:ident { $($column:ident),* ; $($field:ident $(: $value:expr)?),* $(,)? }) => {
        $ty {
            $($column: $row.try_get(stringify!($column))?,)*
            $($field $(: $value)?,)*
        }
    };
}

/// A card made of a row that has `CARD_COLUMNS`: one mapping for sqlx's rows and
/// for the hop-free reader's (`inline.rs`), which both have `try_get` by name.
macro_rules! card_of {
    ($row:expr) => {{
        let row = $row;
        let epin_hash: Option<String> = row.try_get("epin_hash")?;
        let closed_at: Option<i64> = row.try_get("closed_at")?;
        let language = match row.try_get::<Option<String>, _>("language")? {
            None => None,
            Some(l) => Some(
                Language::parse(&l)
                    .ok_or_else(|| StoreError::Corrupt(format!("card language {l}")))?,
            ),
        };
        // Closure is a column, not a status value (see migration 0013).
        let status = match closed_at {
            Some(_) => CardStatus::Closed,
            None => parse_status(&row.try_get::<String, _>("status")?)?,
        };
        Ok(record!(row => Card {
            id, pan_hash, last4, last6_hash, msisdn, failures, created_at, updated_at, locked_until, phone_changed_at,
            replaced_by;
            closed_at, language,
            status, has_epin: epin_hash.is_some(), epin_hash
        }))
    }};
}

mod access;
mod approvals;
mod audit;
mod backup;
mod cards;
mod changes;
mod codes;
mod direct;
mod error;
mod group;
mod import;
mod inline;
mod keys;
mod lifecycle;
mod limits;
mod operators;
mod outbox;
mod tokens;
mod verify;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Row};

use crate::config::{DatabaseSettings, Synchronous};
use crate::core::ports::Readiness;
use crate::core::DomainError;
pub use backup::BackupCheck;
use error::StoreError;
use otpgw_rules::records::{Card, Event};
use otpgw_rules::vocab::{CardStatus, Language, Reason, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    /// Reads everywhere; writes too on PostgreSQL.
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: the one writer every write goes through, and its sqlx pool.
    writer: Option<(writer::Writer, AnyPool)>,
    /// SQLite only: the hottest reads on the caller's thread (`inline.rs`).
    inline: Option<std::sync::Arc<inline::InlineReads>>,
    /// PostgreSQL, once `follow_changes` ran: what other nodes change (`changes.rs`).
    changes: Option<std::sync::Arc<changes::Changes>>,
    /// PostgreSQL only: codes and limit decisions sent in batches (`group.rs`).
    groups: Option<std::sync::Arc<group::Groups>>,
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const CARD_COLUMNS: &str =
    "id, pan_hash, last4, last6_hash, msisdn, status, failures, created_at, updated_at, locked_until, epin_hash, phone_changed_at, closed_at, replaced_by, language";

/// A statement with its arguments bound.
type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;
/// Makes one of the rules' records of a row.
type FromRow<T> = fn(&AnyRow) -> Result<T, StoreError>;

impl Store {
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, DomainError> {
        port(async move {
            sqlx::any::install_default_drivers();
            let (url, backend) = if settings.url.starts_with("sqlite:") {
                if let Some(path) = crate::config::sqlite_path(&settings.url) {
                    create_private(&path).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
                }
                // Create the file on first start.
                let url = if settings.url.contains('?') {
                    settings.url.clone()
                } else {
                    format!("{}?mode=rwc", settings.url)
                };
                (url, Backend::Sqlite)
            } else {
                (settings.url.clone(), Backend::Postgres)
            };
            let options = AnyConnectOptions::from_str(&url)?;
            let pool = pool_options(
                settings,
                backend,
                settings.max_connections,
                READER_CACHE_KIB,
            )
            .connect_with(options.clone())
            .await?;
            // SQLite: the writer's two connections (sqlx's, which sqlx reopens if
            // it breaks, and rusqlite's for the direct jobs), and the file for the
            // reads on the caller's thread.
            let (writer, inline) = match backend {
                Backend::Sqlite => {
                    let cache_kib = settings.sqlite_writer_cache_mib.saturating_mul(1024);
                    let write_pool = pool_options(settings, backend, 1, cache_kib)
                        .connect_with(options)
                        .await?;
                    let path = main_file(&write_pool).await?;
                    let direct = direct::Direct {
                        synchronous: synchronous(settings),
                        cache_kib: cache_kib.min(direct::CACHE_KIB),
                        busy: SQLITE_BUSY,
                    };
                    let inline = std::sync::Arc::new(inline::InlineReads::new(&path));
                    let writer = writer::Writer::spawn(write_pool.clone(), path, direct)
                        .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
                    (Some((writer, write_pool)), Some(inline))
                }
                Backend::Postgres => (None, None),
            };
            let groups = (backend == Backend::Postgres)
                .then(|| std::sync::Arc::new(group::Groups::start(&pool)));
            Ok(Self {
                pool,
                backend,
                writer,
                inline,
                changes: None,
                groups,
            })
        })
        .await
    }

    /// Runs one write job in a transaction: on SQLite in the writer's next batch, on
    /// PostgreSQL in its own. An error rolls the job's statements back.
    /// One statement over integer arguments (`$1`, `$2`, … in order), in the
    /// writer; the number of rows it changed.
    async fn execute_ints(&self, sql: &'static str, args: Vec<i64>) -> Result<u64, StoreError> {
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move {
                let mut query = sqlx::query(sql);
                for arg in &args {
                    query = query.bind(*arg);
                }
                Ok(query.execute(&mut *conn).await?.rows_affected())
            })
        })
        .await
    }

    async fn write<T: Send + 'static>(&self, job: impl writer::Job<T>) -> Result<T, StoreError> {
        if let Some((writer, _)) = &self.writer {
            return writer.write(job).await;
        }
        let mut tx = self.pool.begin().await?;
        match job(&mut tx).await {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    /// True when several nodes may share this database (PostgreSQL).
    fn shared(&self) -> bool {
        self.writer.is_none()
    }

    /// SQLite's writer, for the jobs that have a direct form there.
    fn sqlite_writer(&self) -> Option<&writer::Writer> {
        self.writer.as_ref().map(|(w, _)| w)
    }

    /// Reads, on the read pool, every row `query` selects, as records.
    async fn read_all<T>(
        &self,
        query: Query<'_>,
        from_row: FromRow<T>,
    ) -> Result<Vec<T>, StoreError> {
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Reads the row a query on a unique key selects, if there is one.
    async fn read_one<T>(
        &self,
        query: Query<'_>,
        from_row: FromRow<T>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.read_all(query, from_row).await?.into_iter().next())
    }

    pub async fn migrate(&self) -> Result<(), DomainError> {
        port(async move {
            match self.backend {
                Backend::Sqlite => SQLITE_MIGRATOR.run(&self.pool).await?,
                Backend::Postgres => POSTGRES_MIGRATOR.run(&self.pool).await?,
            }
            Ok(())
        })
        .await
    }

    /// True when no migration was ever applied here: a brand-new (or lost) database.
    pub async fn is_new(&self) -> Result<bool, DomainError> {
        port(async move {
            let sql = match self.backend {
                Backend::Sqlite => {
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
                }
                Backend::Postgres => {
                    "SELECT COUNT(*) FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
                }
            };
            let tables: i64 = sqlx::query_scalar(sql).fetch_one(&self.pool).await?;
            Ok(tables == 0)
        })
        .await
    }

    /// True when at least one card is enrolled (on a migrated database).
    pub async fn has_cards(&self) -> Result<bool, DomainError> {
        port(async move {
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM (SELECT 1 FROM cards LIMIT 1) AS t")
                    .fetch_one(&self.pool)
                    .await?;
            Ok(n > 0)
        })
        .await
    }

    /// PostgreSQL: listen for the changes any node makes to cards and API keys, and
    /// keep a number's cards for `card_cache_ms` (0: never) while listening. Start-up
    /// code calls it for a node that serves; a one-off command need not. Nothing on
    /// SQLite, where this process makes every change (its look-up of a number's
    /// cards is already a read on the caller's thread, `inline.rs`).
    pub fn follow_changes(mut self, settings: &DatabaseSettings, card_cache_ms: u64) -> Self {
        if self.backend == Backend::Postgres && self.changes.is_none() {
            self.changes = Some(changes::Changes::follow(
                settings.url.clone(),
                card_cache_ms,
            ));
        }
        self
    }

    pub async fn close(&self) {
        if let Some(changes) = &self.changes {
            changes.stop();
        }
        if let Some((writer, write_pool)) = &self.writer {
            writer.stop().await;
            write_pool.close().await;
        }
        self.pool.close().await;
    }

    // ---- cards -------------------------------------------------------------------

    // ---- verification ------------------------------------------------------------

    // ---- API keys ----------------------------------------------------------------
}

#[async_trait]
impl Readiness for Store {
    /// True when the database answers, every migration this build knows is applied,
    /// and a write commits (`health`'s one row; an error when it cannot).
    async fn ready(&self) -> Result<bool, DomainError> {
        port(async move {
            let migrator = match self.backend {
                Backend::Sqlite => &SQLITE_MIGRATOR,
                Backend::Postgres => &POSTGRES_MIGRATOR,
            };
            let applied: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                    .fetch_one(&self.pool)
                    .await?;
            if applied < migrator.iter().count() as i64 {
                return Ok(false);
            }
            // A write, through the writer on SQLite: a file that turned read-only (or
            // a full disk, a read-only replica) makes this node not ready.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query("UPDATE health SET at = $1 WHERE id = 1")
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .await?;
            Ok(true)
        })
        .await
    }

    /// Connections open and idle in this node's pool, for the metrics endpoint.
    fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }
}

/// Runs a store operation and answers its port: the store's own error becomes the
/// core's.
async fn port<T>(
    job: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, DomainError> {
    job.await.map_err(Into::into)
}

/// An event's detail with the console clerk's peer address, when there is one.
fn with_source(mut detail: serde_json::Value, source: Option<&str>) -> serde_json::Value {
    if let Some(source) = source {
        detail["source"] = serde_json::Value::from(source);
    }
    detail
}

async fn insert_event(
    conn: &mut sqlx::AnyConnection,
    card_id: Option<i64>,
    kind: &str,
    actor: &str,
    detail: serde_json::Value,
    at: i64,
) -> Result<(), StoreError> {
    // Every kind written is in the audit vocabulary, which the console lists and
    // names; the tests run debug builds, so a kind missing there fails them.
    debug_assert!(
        otpgw_rules::events::EventKind::parse(kind).is_some(),
        "audit event kind {kind:?} is not in otpgw_rules::events::EventKind"
    );
    let detail = with_display_name(conn, actor, detail).await?;
    sqlx::query(
        "INSERT INTO events (card_id, kind, actor, detail, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(card_id)
    .bind(kind)
    .bind(actor)
    .bind(detail.to_string())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A person the identity provider signed in is audited as `oidc:SUBJECT`, which
/// says nothing to an auditor: every event they cause also carries their display
/// name (`name`), as their console session holds it from the ID token. Events that
/// already name the person (the sign-in itself, a refusal, approvals) are kept
/// as written. One look-up, and only for such actors: machines and local
/// operators are named by their actor alone.
async fn with_display_name(
    conn: &mut sqlx::AnyConnection,
    actor: &str,
    mut detail: serde_json::Value,
) -> Result<serde_json::Value, StoreError> {
    let Some(subject) = actor.strip_prefix("oidc:") else {
        return Ok(detail);
    };
    if detail.get("name").is_some() {
        return Ok(detail);
    }
    let name: Option<Option<String>> = sqlx::query_scalar(
        "SELECT oidc_name FROM console_sessions WHERE oidc_subject = $1 \
         ORDER BY last_seen_at DESC LIMIT 1",
    )
    .bind(subject)
    .fetch_optional(&mut *conn)
    .await?;
    // No session (it was revoked in the same breath): the subject stands for itself.
    let name = name.flatten().unwrap_or_else(|| subject.to_owned());
    match &mut detail {
        serde_json::Value::Object(fields) => {
            fields.insert("name".into(), name.into());
        }
        serde_json::Value::Null => detail = serde_json::json!({ "name": name }),
        other => detail = serde_json::json!({ "name": name, "detail": other.take() }),
    }
    Ok(detail)
}

/// Ends a timed lock whose time is up, inside the write job that found it (a
/// verify, an issue, a re-activation): the card becomes active with no failures,
/// and the audit trail says why. Returns whether it did.
async fn end_elapsed_lock(
    conn: &mut sqlx::AnyConnection,
    card_id: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let ended = sqlx::query(
        "UPDATE cards SET status = 'active', failures = 0, locked_until = NULL, updated_at = $2 \
         WHERE id = $1 AND status = 'locked' AND locked_until IS NOT NULL AND locked_until <= $2",
    )
    .bind(card_id)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if ended > 0 {
        insert_event(
            conn,
            Some(card_id),
            "lock_expired",
            "policy",
            serde_json::json!({}),
            now,
        )
        .await?;
    }
    Ok(ended > 0)
}

/// Takes the card's row lock (touching the row: PostgreSQL holds the lock until the
/// job commits) and reads `columns` of it; `NoSuchCard` when there is no such card.
/// `columns` is SQL text, so only the code's own constants may be passed.
async fn lock_card(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    columns: &'static str,
) -> Result<AnyRow, StoreError> {
    let row = sqlx::query(&format!(
        "UPDATE cards SET updated_at = updated_at WHERE id = $1 RETURNING closed_at, {columns}"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NoSuchCard)?;
    // A closed card takes no change: its number may belong to a new card by now.
    if row.try_get::<Option<i64>, _>("closed_at")?.is_some() {
        return Err(StoreError::WrongStatus(CardStatus::Closed));
    }
    Ok(row)
}

/// A job's result, or, when a concurrent request with the same request id won the
/// race (`Raced`), the answer that request stored, which `stored` reads.
async fn or_stored<T, E>(
    result: Result<T, StoreError>,
    stored: impl std::future::Future<Output = Result<Option<T>, E>>,
    what: &str,
) -> Result<T, StoreError>
where
    StoreError: From<E>,
{
    match result {
        Err(StoreError::Raced) => stored
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("{what} vanished"))),
        other => other,
    }
}

fn event_from_row(r: &sqlx::any::AnyRow) -> Result<Event, StoreError> {
    let detail: String = r.try_get("detail")?;
    let detail = serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null);
    Ok(record!(r => Event { id, card_id, kind, actor, at; detail }))
}

fn parse_verdict(result: &str, reason: Option<&str>) -> Result<Verdict, StoreError> {
    match (result, reason) {
        ("approved", _) => Ok(Verdict::Approved),
        ("rejected", Some(r)) => {
            Ok(Verdict::Rejected(Reason::parse(r).ok_or_else(|| {
                StoreError::Corrupt(format!("reason {r}"))
            })?))
        }
        _ => Err(StoreError::Corrupt(format!("verification result {result}"))),
    }
}

fn parse_status(s: &str) -> Result<CardStatus, StoreError> {
    CardStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("card status {s}")))
}

fn card_from_row(row: &sqlx::any::AnyRow) -> Result<Card, StoreError> {
    card_of!(row)
}

/// SQLite's own default page cache (2,000 KiB), for each reading connection.
const READER_CACHE_KIB: u64 = 2000;

/// The file SQLite opened for `pool` (as sqlx read the URL: decoded, made
/// absolute), so rusqlite's connections open that same file. A database only in
/// memory has none, and the direct jobs and inline reads need one.
async fn main_file(pool: &AnyPool) -> Result<std::path::PathBuf, StoreError> {
    let file: String =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(pool)
            .await?;
    if file.is_empty() {
        return Err(StoreError::Unavailable(
            "SQLite needs a database file, not a database in memory".into(),
        ));
    }
    Ok(file.into())
}

/// How long a SQLite connection waits for another's lock before it gives up.
const SQLITE_BUSY: Duration = Duration::from_secs(5);

/// SQLite's `synchronous` setting, as its pragma spells it.
fn synchronous(settings: &DatabaseSettings) -> &'static str {
    match settings.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    }
}

/// The pool settings both pools share: WAL, the busy timeout, the durability level
/// and the page cache (`cache_kib`) on SQLite; statement and lock deadlines on
/// PostgreSQL.
fn pool_options(
    settings: &DatabaseSettings,
    backend: Backend,
    size: u32,
    cache_kib: u64,
) -> AnyPoolOptions {
    // A held row lock or a stuck statement fails within this, so a transport can
    // answer "try again" before its own deadline instead of never.
    let statement_timeout_ms = settings.statement_timeout_secs.saturating_mul(1000);
    let synchronous = synchronous(settings);
    AnyPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL: readers never block the writer; sqlx does not set it for us.
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(&format!(
                        "PRAGMA busy_timeout = {}",
                        SQLITE_BUSY.as_millis()
                    ))
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query(&format!("PRAGMA synchronous = {synchronous}"))
                        .execute(&mut *conn)
                        .await?;
                    // Negative: KiB, not pages. The writer's inserts land at random
                    // places of the hash indexes; a cache that holds them saves a
                    // read and a spilled write per page (an import of a million
                    // cards: 51 s with 64 MiB, 63 s with SQLite's 2 MiB).
                    sqlx::query(&format!("PRAGMA cache_size = -{cache_kib}"))
                        .execute(&mut *conn)
                        .await?;
                    // What a savepoint would undo (the writer's one per request)
                    // goes to a sub-journal that otherwise spills to a temporary
                    // file past 64 KiB: a write per page, an unlink per batch.
                    sqlx::query("PRAGMA temp_store = MEMORY")
                        .execute(&mut *conn)
                        .await?;
                } else {
                    for setting in ["statement_timeout", "lock_timeout"] {
                        sqlx::query(&format!("SET {setting} = {statement_timeout_ms}"))
                            .execute(&mut *conn)
                            .await?;
                    }
                }
                Ok(())
            })
        })
}

/// Creates the SQLite file with mode 0600 if it does not exist: it holds the hashes of
/// every card number, and SQLite would create it with the process umask (often
/// world-readable). Its `-wal` and `-shm` files take the same mode from it.
fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
