//! The store's own errors, and how they become the core's [`DomainError`]: the
//! store is the only place that knows what a SQLite result code or a PostgreSQL
//! SQLSTATE means. `StoreError` never leaves the store.

use otpgw_rules::vocab::CardStatus;

use crate::core::{Conflict, DomainError, Existing, Missing};

#[derive(Debug, thiserror::Error)]
pub(super) enum StoreError {
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// SQLite through rusqlite (`direct.rs`): the writer's direct jobs.
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
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
    /// A write job panicked (a bug): the writer rolled it back and went on.
    #[error("a write failed unexpectedly")]
    Panicked,
    /// A concurrent request took the same key first; the job was rolled back and
    /// its caller answers as that request did. Never leaves the store.
    #[error("a concurrent request won")]
    Raced,
    /// What a port method of this store answered, used inside another one.
    #[error(transparent)]
    Port(#[from] DomainError),
}

impl StoreError {
    /// The database could not be reached or did not answer in time (pool timeout,
    /// lost connection, statement or lock timeout, busy, read-only or full file):
    /// nothing was decided, and the same request may succeed later. Transports answer
    /// these with "try again" (HTTP 503, SMPP ESME_RX_T_APPN), not with a failure.
    fn is_unavailable(&self) -> bool {
        let e = match self {
            StoreError::Database(e) => e,
            StoreError::Sqlite(e) => {
                return e
                    .sqlite_error()
                    .is_some_and(|f| SQLITE_UNAVAILABLE.contains(&(f.extended_code & 0xff)))
            }
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
                code.parse::<i32>()
                    .is_ok_and(|c| SQLITE_UNAVAILABLE.contains(&(c & 0xff)))
            }
            _ => false,
        }
    }
}

/// SQLite's primary result codes that mean "not now" rather than "no": BUSY,
/// LOCKED, READONLY, IOERR, FULL, CANTOPEN (an extended code carries its primary
/// one in its low byte).
const SQLITE_UNAVAILABLE: [i32; 6] = [5, 6, 8, 10, 13, 14];

/// Every database error passes here, so operations can see them as one counter.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        metrics::counter!("otpgw_db_errors_total").increment(1);
        Self::Database(e)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        metrics::counter!("otpgw_db_errors_total").increment(1);
        Self::Sqlite(e)
    }
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            return DomainError::Unavailable(e.to_string());
        }
        match e {
            StoreError::Port(e) => e,
            StoreError::CardExists(id) => DomainError::Exists(Existing::Card(id)),
            StoreError::SerialExists => DomainError::Exists(Existing::TokenSerial),
            StoreError::NoSuchCard => DomainError::NotFound(Missing::Card),
            StoreError::NoSuchApiKey => DomainError::NotFound(Missing::ApiKey),
            StoreError::NoSuchToken => DomainError::NotFound(Missing::Token),
            StoreError::LockNotLiftable { until } => {
                DomainError::WrongState(Conflict::LockNotLiftable { until })
            }
            StoreError::WrongStatus(s) => DomainError::WrongState(Conflict::Card(s)),
            StoreError::TokenWrongState(s) => DomainError::WrongState(Conflict::Token(s)),
            StoreError::StatusNotAllowed(s) => DomainError::NotAllowed(s),
            e @ (StoreError::Database(_)
            | StoreError::Sqlite(_)
            | StoreError::Migrate(_)
            | StoreError::Corrupt(_)
            | StoreError::Unavailable(_)
            | StoreError::Panicked
            | StoreError::Raced) => DomainError::Internal(e.to_string()),
        }
    }
}

/// Lets store code use `?` on sqlx's errors where it answers a port.
impl From<sqlx::Error> for DomainError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::from(e).into()
    }
}
