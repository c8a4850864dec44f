//! The store: every read and write of cards, codes, verifications, API keys and the
//! audit trail, over sqlx's `Any` driver so that the same queries serve SQLite (the
//! embedded default) and PostgreSQL (several nodes). It hands the core domain types,
//! never rows.
//!
//! * `mod.rs`    — connecting, migrations, reads, API keys, the audit trail, `write`.
//! * `writer.rs` — SQLite's one writer with group commit.
//! * `cards.rs`  — enrolling and status changes.
//! * `codes.rs`  — issuing codes and following their delivery.
//! * `verify.rs` — the verification transaction.
//! * `backoffice.rs` — what the console and the key admin need: key lists and
//!   revocation, console sessions, audit search, a card's recent history, activity.
//! * `limits.rs` — cluster-wide rate-limit decisions (PostgreSQL).
//!
//! Every write is one job run by `Store::write`: on SQLite inside the writer's next
//! batch (one transaction, a savepoint per job, answers released after the commit),
//! on PostgreSQL in a transaction of its own. Reads use their own pool and never take
//! SQLite's write lock. The rules that must hold across gateway nodes live in these
//! jobs: one live code per card (a partial unique index backs it), single use, exact
//! failure counting and locking, `request_id` idempotency. Each job that needs it
//! first takes the card's row lock with an `UPDATE … RETURNING`.
//!
//! Times are epoch milliseconds chosen by the caller, which keeps tests free of sleeps.

mod backoffice;
mod cards;
mod codes;
mod limits;
mod outbox;
mod tokens;
mod verify;
mod verify_sqlite;
mod writer;

pub use outbox::{ClaimedRow, NewOutboxReply};

use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Row};

use crate::config::{DatabaseSettings, Synchronous};
pub use otpgw_rules::records::{
    ApiKey, ApiKeyInfo, Card, CodeRecord, Event, Token, TokenRecord, VerificationEntry,
};
pub use otpgw_rules::verify::{Effect, LatestCode, LockedCard, TokenUse};
use otpgw_rules::vocab::{CardStatus, Channel, Delivery, Reason, Role, Verdict};
pub use tokens::{NewToken, TokenActivation, TokenChange};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a card with this number is already enrolled (id {0})")]
    CardExists(i64),
    #[error("no such card")]
    NoSuchCard,
    /// Re-activation refused: a timed lock runs until `until` (epoch ms) and the
    /// bank's policy says nobody lifts it early.
    #[error("the card's lock ends by itself at {until} and cannot be lifted earlier")]
    LockNotLiftable { until: i64 },
    /// The card is not in the state this change needs (e.g. activating a card that
    /// is not pending).
    #[error("the card is {}", .0.as_str())]
    WrongStatus(CardStatus),
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
    #[error("not allowed while the card is {}", .0.as_str())]
    StatusNotAllowed(CardStatus),
    #[error("no such API key")]
    NoSuchApiKey,
    #[error("no such token")]
    NoSuchToken,
    /// The token is not in the state this change needs.
    #[error("the token is {}", .0.as_str())]
    TokenWrongState(otpgw_rules::tokens::TokenState),
    #[error("a token with this serial is already enrolled")]
    SerialExists,
    /// A write could not be committed (the writer's batch failed, or it stopped).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A concurrent request took the same key first; the job was rolled back and
    /// its caller answers as that request did. Never leaves the store.
    #[error("a concurrent request won")]
    Raced,
}

impl StoreError {
    /// The database could not be reached or did not answer in time (pool timeout,
    /// lost connection, statement or lock timeout, busy, read-only or full file):
    /// nothing was decided, and the same request may succeed later. Transports answer
    /// these with "try again" (HTTP 503, SMPP ESME_RX_T_APPN), not with a failure.
    pub fn is_unavailable(&self) -> bool {
        let e = match self {
            StoreError::Database(e) => e,
            StoreError::Unavailable(_) => return true,
            _ => return false,
        };
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            // The conversation broke off, e.g. a server going away mid-handshake.
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                if code.len() == 5 {
                    // A PostgreSQL SQLSTATE: 08 connection exception, 53 insufficient
                    // resources, 57 operator intervention (57014 is statement_timeout),
                    // 55P03 lock_not_available (lock_timeout), 40001/40P01 conflicts.
                    return ["08", "53", "57"].iter().any(|c| code.starts_with(c))
                        || ["55P03", "40001", "40P01"].contains(&code.as_ref());
                }
                // A SQLite result code (an extended code carries the primary one in its
                // low byte): BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN.
                code.parse::<u32>()
                    .is_ok_and(|c| [5, 6, 8, 10, 13, 14].contains(&(c & 0xff)))
            }
            _ => false,
        }
    }
}

/// Every database error passes here, so operations can see them as one counter.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        metrics::counter!("otpgw_db_errors_total").increment(1);
        Self::Database(e)
    }
}

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
    /// SQLite only: the one connection every write goes through.
    writer: Option<(writer::Writer, AnyPool)>,
}

pub struct NewCard<'a> {
    pub pan_hash: &'a str,
    pub last4: &'a str,
    pub last6_hash: &'a str,
    pub msisdn: &'a str,
    /// `[policy] require_activation`: the card starts `pending` with this
    /// activation (its code's HMAC and deadline).
    pub activation: Option<NewActivation<'a>>,
}

/// An activation code waiting for the customer: its HMAC and deadline.
#[derive(Clone, Copy)]
pub struct NewActivation<'a> {
    pub code_hash: &'a str,
    pub expires_at: i64,
}

/// What confirming an activation code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    Activated(Card),
    /// A wrong code: counted; `attempts_left` before the activation is voided.
    Wrong {
        attempts_left: i64,
    },
    /// No activation is waiting: it expired, or too many wrong codes voided it.
    /// The bank sends a new one.
    Expired,
}

pub struct NewCode<'a> {
    pub card_id: i64,
    pub code_hash: &'a str,
    pub channel: Channel,
    pub peer: &'a str,
    pub issued_at: i64,
    pub expires_at: i64,
    /// `Queued` for a code that waits for an operator connection; `None` when the
    /// transport that asked for it answers at once.
    pub delivery: Option<Delivery>,
    /// The route that will carry it (client mode), when known at issue time.
    pub route: Option<&'a str>,
    /// HMAC of the payment the code is bound to (`Keys::transaction_hash`).
    pub txn_hash: Option<&'a str>,
    /// The customer's cap, in whole units of `[policy] cap_currency`.
    pub cap: Option<i64>,
    /// The reply carrying the code, for the outbox (several nodes on PostgreSQL).
    pub outbox: Option<NewOutboxReply>,
}

/// A pushed code's idempotency key: the caller's request id, and a fingerprint of
/// the request so that a reused id for another card is told apart.
pub struct PushKey<'a> {
    pub api_key_id: i64,
    pub request_id: &'a str,
    pub fingerprint: &'a str,
}

/// An SMSC's message id and the numbers it may stand for (see
/// `otpgw_parsers::receipt::message_id_keys`).
pub struct MessageRef<'a> {
    pub connection: &'a str,
    pub message_id: &'a str,
    pub key_dec: Option<&'a str>,
    pub key_hex: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    Code {
        code_id: i64,
        superseded: i64,
    },
    /// The card is locked or suspended; nothing was written.
    NotActive(CardStatus),
    /// A pushed code's request id was seen before: its code, nothing new written.
    Replayed {
        code_id: i64,
        fingerprint: String,
    },
}

pub struct VerifyAttempt<'a> {
    pub api_key_id: i64,
    pub request_id: &'a str,
    pub fingerprint: &'a str,
    pub pan_hash: &'a str,
    pub now: i64,
    pub max_failures: i64,
    /// How long a lock this verify causes lasts; `None`: until re-activated.
    pub lock_ms: Option<i64>,
    pub actor: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRecord {
    pub verdict: Verdict,
    pub card_id: Option<i64>,
    pub fingerprint: String,
    /// True when this call locked the card.
    pub locked_now: bool,
    /// On every rejection of an enrolled card: how many failures are left before
    /// the card locks (0 while it is locked or suspended); `None` when approved or
    /// when no card matched.
    pub attempts_left: Option<i64>,
    /// Set when the card is locked after this answer: when the lock ends by itself
    /// (epoch ms), or `None` when only re-activation ends it.
    pub lock: Option<Option<i64>>,
    /// True when this is the stored answer to an earlier request with the same id.
    pub replayed: bool,
}

/// A live console session: whose key it is and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub key: ApiKey,
    pub csrf: String,
    pub expires_at: i64,
}

/// What the console's audit search may filter on; `before_id` pages backwards.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub card_id: Option<i64>,
    pub actor: Option<String>,
    pub kind: Option<String>,
    /// Epoch ms, inclusive.
    pub from: Option<i64>,
    /// Epoch ms, exclusive.
    pub to: Option<i64>,
    pub before_id: Option<i64>,
}

/// Counts since a moment, for the console's health strip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub codes_issued: i64,
    pub verifications: i64,
    pub approved: i64,
    /// Of `codes_issued`, those whose message failed: refused by the peer or the
    /// SMSC (`undelivered`) or given up on (`expired`).
    pub undelivered: i64,
}

#[derive(Debug, Clone, Copy)]
pub enum StatusChange {
    Reactivate,
    Suspend,
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const CARD_COLUMNS: &str =
    "id, pan_hash, last4, last6_hash, msisdn, status, failures, created_at, updated_at, locked_until, epin_hash";

impl Store {
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
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
        let pool = pool_options(settings, backend, settings.max_connections)
            .connect_with(options.clone())
            .await?;
        // SQLite: one more connection, the writer's; sqlx reopens it if it breaks.
        let writer = match backend {
            Backend::Sqlite => {
                let write_pool = pool_options(settings, backend, 1)
                    .connect_with(options)
                    .await?;
                Some((writer::Writer::spawn(write_pool.clone()), write_pool))
            }
            Backend::Postgres => None,
        };
        Ok(Self {
            pool,
            backend,
            writer,
        })
    }

    /// Runs one write job in a transaction: on SQLite in the writer's next batch, on
    /// PostgreSQL in its own. An error rolls the job's statements back.
    pub(crate) async fn write<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
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

    /// SQLite's writer, for the jobs that have a one-call form there.
    fn sqlite_writer(&self) -> Option<&writer::Writer> {
        self.writer.as_ref().map(|(w, _)| w)
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATOR.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATOR.run(&self.pool).await?,
        }
        Ok(())
    }

    /// True when no migration was ever applied here: a brand-new (or lost) database.
    pub async fn is_new(&self) -> Result<bool, StoreError> {
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
    }

    /// True when at least one card is enrolled (on a migrated database).
    pub async fn has_cards(&self) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM (SELECT 1 FROM cards LIMIT 1) AS t")
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Deletes verification records (request_id memory) created before `before`.
    pub async fn prune_verifications(&self, before: i64) -> Result<u64, StoreError> {
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM verifications WHERE created_at < $1")
                    .bind(before)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected())
            })
        })
        .await
    }

    /// True when the database answers, every migration this build knows is applied,
    /// and a write commits (`health`'s one row; an error when it cannot).
    pub async fn ready(&self) -> Result<bool, StoreError> {
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
    }

    /// Connections open and idle in this node's pool, for the metrics endpoint.
    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    pub async fn close(&self) {
        if let Some((writer, write_pool)) = &self.writer {
            writer.stop();
            write_pool.close().await;
        }
        self.pool.close().await;
    }

    // ---- cards -------------------------------------------------------------------

    pub async fn card(&self, id: i64) -> Result<Option<Card>, StoreError> {
        let row = sqlx::query(&format!("SELECT {CARD_COLUMNS} FROM cards WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(card_from_row).transpose()
    }

    pub async fn card_by_pan_hash(&self, pan_hash: &str) -> Result<Option<Card>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE pan_hash = $1"
        ))
        .bind(pan_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(card_from_row).transpose()
    }

    pub async fn cards_by_msisdn(&self, msisdn: &str) -> Result<Vec<Card>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE msisdn = $1 ORDER BY id"
        ))
        .bind(msisdn)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(card_from_row).collect()
    }

    pub async fn events(&self, card_id: i64, limit: i64) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, card_id, kind, actor, detail, at FROM events WHERE card_id = $1 ORDER BY id LIMIT $2",
        )
        .bind(card_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    // ---- verification ------------------------------------------------------------

    pub async fn verification(
        &self,
        api_key_id: i64,
        request_id: &str,
    ) -> Result<Option<VerifyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT fingerprint, card_id, result, reason, attempts_left, locked, locked_until FROM verifications WHERE api_key_id = $1 AND request_id = $2",
        )
        .bind(api_key_id)
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let result: String = row.try_get("result")?;
        let reason: Option<String> = row.try_get("reason")?;
        let verdict = parse_verdict(&result, reason.as_deref())?;
        Ok(Some(VerifyRecord {
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
        }))
    }

    /// Appends an audit event that belongs to no single verification or card change.
    pub async fn audit(
        &self,
        card_id: Option<i64>,
        kind: &str,
        actor: &str,
        detail: serde_json::Value,
        at: i64,
    ) -> Result<(), StoreError> {
        let (kind, actor) = (kind.to_owned(), actor.to_owned());
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move { insert_event(conn, card_id, &kind, &actor, detail, at).await })
        })
        .await
    }

    // ---- API keys ----------------------------------------------------------------

    pub async fn create_api_key(
        &self,
        role: Role,
        key_hash: &str,
        label: Option<&str>,
        actor: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let (key_hash, label) = (key_hash.to_owned(), label.map(str::to_owned));
        let actor = actor.to_owned();
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO api_keys (role, key_hash, label, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(role.as_str())
                .bind(&key_hash)
                .bind(label.as_deref())
                .bind(now)
                .fetch_one(&mut *conn)
                .await?;
                insert_event(
                    conn,
                    None,
                    "api_key_created",
                    &actor,
                    serde_json::json!({"api_key_id": id, "role": role.as_str()}),
                    now,
                )
                .await?;
                Ok(id)
            })
        })
        .await
    }

    pub async fn api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let row =
            sqlx::query("SELECT id, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get("role")?;
        Ok(Some(ApiKey {
            id: row.try_get("id")?,
            role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
        }))
    }
}

async fn insert_event(
    conn: &mut sqlx::AnyConnection,
    card_id: Option<i64>,
    kind: &str,
    actor: &str,
    detail: serde_json::Value,
    at: i64,
) -> Result<(), StoreError> {
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

fn event_from_row(r: &sqlx::any::AnyRow) -> Result<Event, StoreError> {
    let detail: String = r.try_get("detail")?;
    Ok(Event {
        id: r.try_get("id")?,
        card_id: r.try_get("card_id")?,
        kind: r.try_get("kind")?,
        actor: r.try_get("actor")?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
        at: r.try_get("at")?,
    })
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
    let epin_hash: Option<String> = row.try_get("epin_hash")?;
    Ok(Card {
        id: row.try_get("id")?,
        pan_hash: row.try_get("pan_hash")?,
        last4: row.try_get("last4")?,
        last6_hash: row.try_get("last6_hash")?,
        msisdn: row.try_get("msisdn")?,
        status: parse_status(&row.try_get::<String, _>("status")?)?,
        failures: row.try_get("failures")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        locked_until: row.try_get("locked_until")?,
        has_epin: epin_hash.is_some(),
        epin_hash,
    })
}

/// The pool settings both pools share: WAL, the busy timeout and the durability
/// level on SQLite; statement and lock deadlines on PostgreSQL.
fn pool_options(settings: &DatabaseSettings, backend: Backend, size: u32) -> AnyPoolOptions {
    // A held row lock or a stuck statement fails within this, so a transport can
    // answer "try again" before its own deadline instead of never.
    let statement_timeout_ms = settings.statement_timeout_secs.saturating_mul(1000);
    let synchronous = match settings.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
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
                    sqlx::query("PRAGMA busy_timeout = 5000")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(&format!("PRAGMA synchronous = {synchronous}"))
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
