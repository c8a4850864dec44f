//! The store: every read and write of cards, codes, verifications, API keys and the
//! audit trail, over one sqlx `AnyPool` so that the same queries serve SQLite (the
//! embedded default) and PostgreSQL (several nodes).
//!
//! The rules that must hold across gateway nodes live here, inside transactions:
//! one live code per card (a partial unique index backs it), single use, exact failure
//! counting and locking, `request_id` idempotency. Each such transaction first takes
//! the card's row lock with an `UPDATE … RETURNING` (PostgreSQL), and on SQLite starts
//! with `BEGIN IMMEDIATE`, so concurrent writers queue instead of racing.
//!
//! Times are epoch milliseconds chosen by the caller, which keeps tests free of sleeps.

use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};

use crate::config::DatabaseSettings;
use crate::domain::{CardStatus, Channel, CodeState, Delivery, Reason, Role, Verdict};

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
    #[error("not allowed while the card is {}", .0.as_str())]
    StatusNotAllowed(CardStatus),
    #[error("no such API key")]
    NoSuchApiKey,
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
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
    pool: AnyPool,
    backend: Backend,
}

/// A card as the back office sees it. The PAN hash stays inside the crate.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Card {
    pub id: i64,
    pub last4: String,
    pub msisdn: String,
    pub status: CardStatus,
    pub failures: i64,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip)]
    pub(crate) pan_hash: String,
    #[serde(skip)]
    pub(crate) last6_hash: String,
}

pub struct NewCard<'a> {
    pub pan_hash: &'a str,
    pub last4: &'a str,
    pub last6_hash: &'a str,
    pub msisdn: &'a str,
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
}

/// A pushed code's idempotency key: the caller's request id, and a fingerprint of
/// the request so that a reused id for another card is told apart.
pub struct PushKey<'a> {
    pub api_key_id: i64,
    pub request_id: &'a str,
    pub fingerprint: &'a str,
}

/// A code as the back office may see it: where and how it went, never the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub id: i64,
    pub card_id: i64,
    pub channel: String,
    pub peer: String,
    pub state: CodeState,
    pub delivery: Option<Delivery>,
    pub route: Option<String>,
    pub connection: Option<String>,
    pub message_id: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub submitted_at: Option<i64>,
    pub delivery_at: Option<i64>,
    pub used_at: Option<i64>,
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

/// The latest code of a card, as the verification rule sees it.
#[derive(Debug, Clone)]
pub struct LatestCode {
    pub id: i64,
    pub code_hash: String,
    pub state: String,
    pub expires_at: i64,
}

/// The card row under lock during a verification.
#[derive(Debug, Clone)]
pub struct LockedCard {
    pub id: i64,
    pub status: CardStatus,
    pub failures: i64,
}

/// What the verification rule decided; the store applies it in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    /// Approve: mark this live code used and reset the failure count.
    UseCode(i64),
    /// The code matched but its time is up.
    ExpireCode(i64),
    /// A wrong code: one more consecutive failure; at the limit the card locks.
    CountFailure,
}

pub struct VerifyAttempt<'a> {
    pub api_key_id: i64,
    pub request_id: &'a str,
    pub fingerprint: &'a str,
    pub pan_hash: &'a str,
    pub now: i64,
    pub max_failures: i64,
    pub actor: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRecord {
    pub verdict: Verdict,
    pub card_id: Option<i64>,
    pub fingerprint: String,
    /// True when this call locked the card.
    pub locked_now: bool,
    /// True when this is the stored answer to an earlier request with the same id.
    pub replayed: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Event {
    pub id: i64,
    pub card_id: Option<i64>,
    pub kind: String,
    pub actor: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub role: Role,
}

/// An API key as an administrator may see it: never the key, never its hash.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub role: Role,
    pub label: Option<String>,
    pub created_at: i64,
    /// When it was revoked; a revoked key is refused everywhere at once.
    pub revoked_at: Option<i64>,
}

/// One verify answer about a card, as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationEntry {
    pub api_key_id: i64,
    pub request_id: String,
    pub verdict: Verdict,
    pub at: i64,
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
    /// Rejected as `invalid`: the answers that count as failures.
    pub wrong_codes: i64,
}

#[derive(Debug, Clone, Copy)]
pub enum StatusChange {
    Reactivate,
    Suspend,
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const CODE_COLUMNS: &str =
    "id, card_id, channel, peer, state, delivery, route, connection, message_id, \
     issued_at, expires_at, submitted_at, delivery_at, used_at";

const CARD_COLUMNS: &str =
    "id, pan_hash, last4, last6_hash, msisdn, status, failures, created_at, updated_at";

impl Store {
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = if settings.url.starts_with("sqlite:") {
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
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
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
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, backend })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATOR.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATOR.run(&self.pool).await?,
        }
        Ok(())
    }

    /// True when the database answers and every migration this build knows is applied.
    pub async fn ready(&self) -> Result<bool, StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?;
        Ok(applied >= migrator.iter().count() as i64)
    }

    /// Connections open and idle in this node's pool, for the metrics endpoint.
    pub fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    // ---- cards -------------------------------------------------------------------

    pub async fn enroll(
        &self,
        card: NewCard<'_>,
        actor: &str,
        now: i64,
    ) -> Result<Card, StoreError> {
        let mut tx = self.begin().await?;
        if let Some(id) = sqlx::query_scalar::<_, i64>("SELECT id FROM cards WHERE pan_hash = $1")
            .bind(card.pan_hash)
            .fetch_optional(&mut *tx)
            .await?
        {
            return Err(StoreError::CardExists(id));
        }
        let inserted = sqlx::query(&format!(
            "INSERT INTO cards (pan_hash, last4, last6_hash, msisdn, status, failures, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'active', 0, $5, $5) RETURNING {CARD_COLUMNS}"
        ))
        .bind(card.pan_hash)
        .bind(card.last4)
        .bind(card.last6_hash)
        .bind(card.msisdn)
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let row = match inserted {
            Ok(row) => row,
            // Another node enrolled the same card between our check and insert.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                drop(tx);
                let existing = self.card_by_pan_hash(card.pan_hash).await?;
                return Err(StoreError::CardExists(existing.map_or(0, |c| c.id)));
            }
            Err(e) => return Err(e.into()),
        };
        let card = card_from_row(&row)?;
        insert_event(
            &mut tx,
            Some(card.id),
            "enrolled",
            actor,
            serde_json::json!({"last4": card.last4}),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(card)
    }

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

    /// Re-activates or suspends a card and audits it with the actor and reason. When
    /// `allowed_from` is not empty, the change happens only from one of those statuses
    /// (read under the same transaction, so a concurrent change cannot slip past a
    /// role's limits); otherwise it is `StatusNotAllowed`.
    pub async fn change_status(
        &self,
        id: i64,
        change: StatusChange,
        actor: &str,
        reason: Option<&str>,
        allowed_from: &[CardStatus],
        now: i64,
    ) -> Result<Card, StoreError> {
        let mut tx = self.begin().await?;
        let (sql, kind) = match change {
            StatusChange::Reactivate => (
                "UPDATE cards SET status = 'active', failures = 0, updated_at = $2 WHERE id = $1",
                "reactivated",
            ),
            StatusChange::Suspend => (
                "UPDATE cards SET status = 'suspended', updated_at = $2 WHERE id = $1",
                "suspended",
            ),
        };
        let prev: Option<String> = sqlx::query_scalar("SELECT status FROM cards WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(prev) = prev else {
            return Err(StoreError::NoSuchCard);
        };
        let prev_status = parse_status(&prev)?;
        if !allowed_from.is_empty() && !allowed_from.contains(&prev_status) {
            return Err(StoreError::StatusNotAllowed(prev_status));
        }
        sqlx::query(sql)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if let StatusChange::Suspend = change {
            // A suspended card must not be usable through a code issued before.
            sqlx::query("UPDATE codes SET state = 'failed' WHERE card_id = $1 AND state = 'live'")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        insert_event(
            &mut tx,
            Some(id),
            kind,
            actor,
            match reason {
                Some(reason) => serde_json::json!({"previous_status": prev, "reason": reason}),
                None => serde_json::json!({"previous_status": prev}),
            },
            now,
        )
        .await?;
        let row = sqlx::query(&format!("SELECT {CARD_COLUMNS} FROM cards WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        card_from_row(&row)
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

    // ---- codes -------------------------------------------------------------------

    /// Stores a new code for an active card, superseding its live one, and commits
    /// before returning: the caller may send the code only after this succeeds.
    pub async fn issue_code(&self, code: NewCode<'_>, actor: &str) -> Result<Issued, StoreError> {
        self.issue(code, actor, None).await
    }

    /// As `issue_code`, for a code pushed through the API: idempotent on the
    /// caller's request id, recorded in the same transaction as the code.
    pub async fn issue_pushed(
        &self,
        code: NewCode<'_>,
        actor: &str,
        push: &PushKey<'_>,
    ) -> Result<Issued, StoreError> {
        if let Some(previous) = self.push(push.api_key_id, push.request_id).await? {
            return Ok(previous);
        }
        self.issue(code, actor, Some(push)).await
    }

    async fn push(&self, api_key_id: i64, request_id: &str) -> Result<Option<Issued>, StoreError> {
        let row = sqlx::query(
            "SELECT code_id, fingerprint FROM pushes WHERE api_key_id = $1 AND request_id = $2",
        )
        .bind(api_key_id)
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Issued::Replayed {
                code_id: r.try_get("code_id")?,
                fingerprint: r.try_get("fingerprint")?,
            })
        })
        .transpose()
    }

    async fn issue(
        &self,
        code: NewCode<'_>,
        actor: &str,
        push: Option<&PushKey<'_>>,
    ) -> Result<Issued, StoreError> {
        let mut tx = self.begin().await?;
        let status: Option<String> = sqlx::query_scalar(
            "UPDATE cards SET updated_at = updated_at WHERE id = $1 RETURNING status",
        )
        .bind(code.card_id)
        .fetch_optional(&mut *tx)
        .await?;
        let status = parse_status(&status.ok_or(StoreError::NoSuchCard)?)?;
        if status != CardStatus::Active {
            return Ok(Issued::NotActive(status));
        }
        let superseded = sqlx::query(
            "UPDATE codes SET state = CASE WHEN expires_at <= $2 THEN 'expired' ELSE 'superseded' END \
             WHERE card_id = $1 AND state = 'live'",
        )
        .bind(code.card_id)
        .bind(code.issued_at)
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
        let code_id: i64 = sqlx::query_scalar(
            "INSERT INTO codes (card_id, code_hash, channel, peer, issued_at, expires_at, state, delivery, route) \
             VALUES ($1, $2, $3, $4, $5, $6, 'live', $7, $8) RETURNING id",
        )
        .bind(code.card_id)
        .bind(code.code_hash)
        .bind(code.channel.as_str())
        .bind(code.peer)
        .bind(code.issued_at)
        .bind(code.expires_at)
        .bind(code.delivery.map(Delivery::as_str))
        .bind(code.route)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(push) = push {
            let inserted = sqlx::query(
                "INSERT INTO pushes (api_key_id, request_id, fingerprint, code_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(push.api_key_id)
            .bind(push.request_id)
            .bind(push.fingerprint)
            .bind(code_id)
            .bind(code.issued_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                // A concurrent request with the same id won: undo ours, answer as it did.
                tx.rollback().await?;
                return self
                    .push(push.api_key_id, push.request_id)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("push vanished".into()));
            }
        }
        insert_event(
            &mut tx,
            Some(code.card_id),
            "code_issued",
            actor,
            serde_json::json!({"code_id": code_id, "channel": code.channel.as_str(), "expires_at": code.expires_at}),
            code.issued_at,
        )
        .await?;
        tx.commit().await?;
        Ok(Issued::Code {
            code_id,
            superseded,
        })
    }

    /// Records a code's delivery state. A final state (delivered, undelivered,
    /// expired) always wins; `submitted` only moves a code on from queued, so a
    /// receipt that came first is not undone.
    pub async fn set_delivery(
        &self,
        code_id: i64,
        delivery: Delivery,
        at: i64,
    ) -> Result<(), StoreError> {
        let sql = match delivery {
            Delivery::Queued | Delivery::Submitted => {
                "UPDATE codes SET delivery = $2, submitted_at = $3 WHERE id = $1 \
                 AND (delivery IS NULL OR delivery = 'queued')"
            }
            _ => "UPDATE codes SET delivery = $2, delivery_at = $3 WHERE id = $1",
        };
        sqlx::query(sql)
            .bind(code_id)
            .bind(delivery.as_str())
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The SMSC accepted the message carrying a code: remember which connection took
    /// it and the SMSC's id for it, so its receipt finds the code.
    pub async fn set_submitted(
        &self,
        code_id: i64,
        message: &MessageRef<'_>,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE codes SET connection = $2, message_id = $3, message_key_dec = $4, message_key_hex = $5, \
             submitted_at = $6, delivery = CASE WHEN delivery IS NULL OR delivery = 'queued' THEN 'submitted' ELSE delivery END \
             WHERE id = $1",
        )
        .bind(code_id)
        .bind(message.connection)
        .bind(message.message_id)
        .bind(message.key_dec)
        .bind(message.key_hex)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Applies a receipt to the code whose message it names on this connection:
    /// the exact id first, then the same number in the other notation. Returns the
    /// code's id, or `None` when no message matches (yet).
    pub async fn apply_receipt(
        &self,
        message: &MessageRef<'_>,
        delivery: Delivery,
        at: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut code_id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM codes WHERE connection = $1 AND message_id = $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(message.connection)
        .bind(message.message_id)
        .fetch_optional(&self.pool)
        .await?;
        for key in [message.key_dec, message.key_hex].into_iter().flatten() {
            if code_id.is_some() {
                break;
            }
            code_id = sqlx::query_scalar(
                "SELECT id FROM codes WHERE connection = $1 AND (message_key_dec = $2 OR message_key_hex = $2) \
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(message.connection)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        }
        if let Some(id) = code_id {
            self.set_delivery(id, delivery, at).await?;
        }
        Ok(code_id)
    }

    pub async fn code(&self, id: i64) -> Result<Option<CodeRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {CODE_COLUMNS} FROM codes WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(code_from_row).transpose()
    }

    /// A card's most recent codes, newest first (for the console).
    pub async fn recent_codes(
        &self,
        card_id: i64,
        limit: i64,
    ) -> Result<Vec<CodeRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CODE_COLUMNS} FROM codes WHERE card_id = $1 ORDER BY id DESC LIMIT $2"
        ))
        .bind(card_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(code_from_row).collect()
    }

    // ---- verification ------------------------------------------------------------

    pub async fn verification(
        &self,
        api_key_id: i64,
        request_id: &str,
    ) -> Result<Option<VerifyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT fingerprint, card_id, result, reason FROM verifications WHERE api_key_id = $1 AND request_id = $2",
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
            replayed: true,
        }))
    }

    /// One verification, decided and applied atomically. `decide` sees the card under
    /// lock and its latest code and returns the verdict and its effect; the store
    /// applies the effect, records the answer under `request_id` and the audit event,
    /// all in one transaction. A `request_id` already answered returns that answer and
    /// changes nothing.
    pub async fn verify<F>(
        &self,
        attempt: &VerifyAttempt<'_>,
        decide: F,
    ) -> Result<VerifyRecord, StoreError>
    where
        F: FnOnce(&LockedCard, Option<&LatestCode>) -> (Verdict, Effect),
    {
        if let Some(previous) = self
            .verification(attempt.api_key_id, attempt.request_id)
            .await?
        {
            return Ok(previous);
        }
        let mut tx = self.begin().await?;
        let card = sqlx::query("UPDATE cards SET updated_at = updated_at WHERE pan_hash = $1 RETURNING id, status, failures")
            .bind(attempt.pan_hash)
            .fetch_optional(&mut *tx)
            .await?;
        let mut locked_now = false;
        let (verdict, card_id) = match card {
            None => (Verdict::Rejected(Reason::NotEnrolled), None),
            Some(row) => {
                let card = LockedCard {
                    id: row.try_get("id")?,
                    status: parse_status(&row.try_get::<String, _>("status")?)?,
                    failures: row.try_get("failures")?,
                };
                let latest = sqlx::query(
                    "SELECT id, code_hash, state, expires_at FROM codes WHERE card_id = $1 ORDER BY id DESC LIMIT 1",
                )
                .bind(card.id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| -> Result<LatestCode, sqlx::Error> {
                    Ok(LatestCode {
                        id: r.try_get("id")?,
                        code_hash: r.try_get("code_hash")?,
                        state: r.try_get("state")?,
                        expires_at: r.try_get("expires_at")?,
                    })
                })
                .transpose()?;
                let (verdict, effect) = decide(&card, latest.as_ref());
                locked_now = apply_effect(&mut tx, &card, effect, attempt).await?;
                (verdict, Some(card.id))
            }
        };
        let (result, reason) = match verdict {
            Verdict::Approved => ("approved", None),
            Verdict::Rejected(r) => ("rejected", Some(r.as_str())),
        };
        let inserted = sqlx::query(
            "INSERT INTO verifications (api_key_id, request_id, fingerprint, card_id, result, reason, response_code, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(attempt.api_key_id)
        .bind(attempt.request_id)
        .bind(attempt.fingerprint)
        .bind(card_id)
        .bind(result)
        .bind(reason)
        .bind(verdict.response_code())
        .bind(attempt.now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            // A concurrent request with the same id won: undo ours, answer as it did.
            tx.rollback().await?;
            return self
                .verification(attempt.api_key_id, attempt.request_id)
                .await?
                .ok_or_else(|| StoreError::Corrupt("verification vanished".into()));
        }
        if card_id.is_some() {
            insert_event(
                &mut tx,
                card_id,
                "verified",
                attempt.actor,
                serde_json::json!({"result": result, "reason": reason, "request_id": attempt.request_id}),
                attempt.now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(VerifyRecord {
            verdict,
            card_id,
            fingerprint: attempt.fingerprint.to_owned(),
            locked_now,
            replayed: false,
        })
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
        let mut conn = self.pool.acquire().await?;
        insert_event(&mut conn, card_id, kind, actor, detail, at).await
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
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_keys (role, key_hash, label, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(role.as_str())
        .bind(key_hash)
        .bind(label)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        self.audit(
            None,
            "api_key_created",
            actor,
            serde_json::json!({"api_key_id": id, "role": role.as_str()}),
            now,
        )
        .await?;
        Ok(id)
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

    pub async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>, StoreError> {
        let rows =
            sqlx::query("SELECT id, role, label, created_at, revoked_at FROM api_keys ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    /// Revokes a key, ends its console sessions and audits it, in one transaction.
    /// Revoking a revoked key changes nothing and returns it as it is.
    pub async fn revoke_api_key(
        &self,
        id: i64,
        actor: &str,
        now: i64,
    ) -> Result<ApiKeyInfo, StoreError> {
        let mut tx = self.begin().await?;
        let revoked =
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        let row = sqlx::query(
            "SELECT id, role, label, created_at, revoked_at FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NoSuchApiKey);
        };
        let info = api_key_from_row(&row)?;
        if revoked == 1 {
            let sessions = sqlx::query("DELETE FROM console_sessions WHERE api_key_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            insert_event(
                &mut tx,
                None,
                "api_key_revoked",
                actor,
                serde_json::json!({"api_key_id": id, "role": info.role.as_str(), "console_sessions_ended": sessions}),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(info)
    }

    // ---- console -----------------------------------------------------------------

    /// Stores a new console session (by the hash of its id) and forgets expired ones.
    pub async fn create_console_session(
        &self,
        id_hash: &str,
        key: ApiKey,
        csrf: &str,
        now: i64,
        expires_at: i64,
        idle_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now)
            .bind(now.saturating_sub(idle_ms))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, api_key_id, csrf, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(id_hash)
        .bind(key.id)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session with this id hash, if it has not expired (absolutely, or idle
    /// for `idle_ms`) and its key is not revoked; marks it seen now.
    pub async fn console_session(
        &self,
        id_hash: &str,
        now: i64,
        idle_ms: i64,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let row = sqlx::query(
            "UPDATE console_sessions SET last_seen_at = $2 \
             WHERE id_hash = $1 AND expires_at > $2 AND last_seen_at > $3 \
             RETURNING api_key_id, csrf, expires_at",
        )
        .bind(id_hash)
        .bind(now)
        .bind(now.saturating_sub(idle_ms))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let api_key_id: i64 = row.try_get("api_key_id")?;
        // The key is read afresh on every request: a revoked key's session ends at once.
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM api_keys WHERE id = $1 AND revoked_at IS NULL")
                .bind(api_key_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(role) = role else { return Ok(None) };
        Ok(Some(ConsoleSession {
            key: ApiKey {
                id: api_key_id,
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
            },
            csrf: row.try_get("csrf")?,
            expires_at: row.try_get("expires_at")?,
        }))
    }

    pub async fn delete_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Audit events matching `filter`, newest first, at most `limit`.
    pub async fn search_events<'a>(
        &self,
        filter: &'a AuditFilter,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        enum Arg<'s> {
            Int(i64),
            Text(&'s str),
        }
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<Arg<'_>> = Vec::new();
        let mut add = |clause: &str, arg: Arg<'a>| {
            args.push(arg);
            clauses.push(clause.replace('?', &format!("${}", args.len())));
        };
        if let Some(v) = filter.card_id {
            add("card_id = ?", Arg::Int(v));
        }
        if let Some(v) = filter.actor.as_deref() {
            add("actor = ?", Arg::Text(v));
        }
        if let Some(v) = filter.kind.as_deref() {
            add("kind = ?", Arg::Text(v));
        }
        if let Some(v) = filter.from {
            add("at >= ?", Arg::Int(v));
        }
        if let Some(v) = filter.to {
            add("at < ?", Arg::Int(v));
        }
        if let Some(v) = filter.before_id {
            add("id < ?", Arg::Int(v));
        }
        let filter_sql = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT id, card_id, kind, actor, detail, at FROM events {filter_sql} ORDER BY id DESC LIMIT ${}",
            args.len() + 1
        );
        let mut query = sqlx::query(&sql);
        for arg in args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
            };
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(event_from_row).collect()
    }

    /// A card's most recent verify answers, newest first.
    pub async fn recent_verifications(
        &self,
        card_id: i64,
        limit: i64,
    ) -> Result<Vec<VerificationEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT api_key_id, request_id, result, reason, created_at FROM verifications \
             WHERE card_id = $1 ORDER BY created_at DESC, request_id DESC LIMIT $2",
        )
        .bind(card_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let result: String = r.try_get("result")?;
                let reason: Option<String> = r.try_get("reason")?;
                Ok(VerificationEntry {
                    api_key_id: r.try_get("api_key_id")?,
                    request_id: r.try_get("request_id")?,
                    verdict: parse_verdict(&result, reason.as_deref())?,
                    at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Codes issued and verify answers given since `since` (epoch ms).
    pub async fn activity_since(&self, since: i64) -> Result<Activity, StoreError> {
        let codes_issued: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM codes WHERE issued_at >= $1")
                .bind(since)
                .fetch_one(&self.pool)
                .await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, \
             COALESCE(SUM(CASE WHEN result = 'approved' THEN 1 ELSE 0 END), 0) AS approved, \
             COALESCE(SUM(CASE WHEN reason = 'invalid' THEN 1 ELSE 0 END), 0) AS wrong \
             FROM verifications WHERE created_at >= $1",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(Activity {
            codes_issued,
            verifications: row.try_get("total")?,
            approved: row.try_get("approved")?,
            wrong_codes: row.try_get("wrong")?,
        })
    }

    /// Audit events of one kind since `since` (epoch ms).
    pub async fn count_events_since(&self, kind: &str, since: i64) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE kind = $1 AND at >= $2")
                .bind(kind)
                .bind(since)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

async fn apply_effect(
    tx: &mut sqlx::AnyConnection,
    card: &LockedCard,
    effect: Effect,
    attempt: &VerifyAttempt<'_>,
) -> Result<bool, StoreError> {
    match effect {
        Effect::None => Ok(false),
        Effect::UseCode(code_id) => {
            let used = sqlx::query(
                "UPDATE codes SET state = 'used', used_at = $2 WHERE id = $1 AND state = 'live'",
            )
            .bind(code_id)
            .bind(attempt.now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if used != 1 {
                // Cannot happen while we hold the card's lock; refuse rather than approve.
                return Err(StoreError::Corrupt("live code changed under lock".into()));
            }
            sqlx::query("UPDATE cards SET failures = 0, updated_at = $2 WHERE id = $1")
                .bind(card.id)
                .bind(attempt.now)
                .execute(&mut *tx)
                .await?;
            Ok(false)
        }
        Effect::ExpireCode(code_id) => {
            sqlx::query("UPDATE codes SET state = 'expired' WHERE id = $1 AND state = 'live'")
                .bind(code_id)
                .execute(&mut *tx)
                .await?;
            Ok(false)
        }
        Effect::CountFailure => {
            let row = sqlx::query(
                "UPDATE cards SET failures = failures + 1, \
                 status = CASE WHEN failures + 1 >= $2 THEN 'locked' ELSE status END, updated_at = $3 \
                 WHERE id = $1 RETURNING failures, status",
            )
            .bind(card.id)
            .bind(attempt.max_failures)
            .bind(attempt.now)
            .fetch_one(&mut *tx)
            .await?;
            let status = parse_status(&row.try_get::<String, _>("status")?)?;
            let failures: i64 = row.try_get("failures")?;
            let locked_now = status == CardStatus::Locked && card.status != CardStatus::Locked;
            if locked_now {
                sqlx::query(
                    "UPDATE codes SET state = 'failed' WHERE card_id = $1 AND state = 'live'",
                )
                .bind(card.id)
                .execute(&mut *tx)
                .await?;
                insert_event(
                    tx,
                    Some(card.id),
                    "locked",
                    attempt.actor,
                    serde_json::json!({"failures": failures}),
                    attempt.now,
                )
                .await?;
            }
            Ok(locked_now)
        }
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

fn parse_status(s: &str) -> Result<CardStatus, StoreError> {
    CardStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("card status {s}")))
}

fn api_key_from_row(r: &sqlx::any::AnyRow) -> Result<ApiKeyInfo, StoreError> {
    let role: String = r.try_get("role")?;
    Ok(ApiKeyInfo {
        id: r.try_get("id")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
        label: r.try_get("label")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
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

fn code_from_row(r: &sqlx::any::AnyRow) -> Result<CodeRecord, StoreError> {
    let state: String = r.try_get("state")?;
    let delivery: Option<String> = r.try_get("delivery")?;
    Ok(CodeRecord {
        id: r.try_get("id")?,
        card_id: r.try_get("card_id")?,
        channel: r.try_get("channel")?,
        peer: r.try_get("peer")?,
        state: CodeState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("code state {state}")))?,
        delivery: delivery
            .map(|d| {
                Delivery::parse(&d).ok_or_else(|| StoreError::Corrupt(format!("delivery {d}")))
            })
            .transpose()?,
        route: r.try_get("route")?,
        connection: r.try_get("connection")?,
        message_id: r.try_get("message_id")?,
        issued_at: r.try_get("issued_at")?,
        expires_at: r.try_get("expires_at")?,
        submitted_at: r.try_get("submitted_at")?,
        delivery_at: r.try_get("delivery_at")?,
        used_at: r.try_get("used_at")?,
    })
}

fn card_from_row(row: &sqlx::any::AnyRow) -> Result<Card, StoreError> {
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
    })
}
