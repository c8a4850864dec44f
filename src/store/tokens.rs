//! Customer tokens: enrolling (a sealed secret, and for a software token the HMAC of
//! its two-part activation code), activating with counted wrong attempts, state
//! changes and resync, each audited in the same job. The verify transaction reads
//! a card's active tokens in `verify.rs`. The store never sees a secret in clear,
//! only its sealed bytes.

use async_trait::async_trait;
use sqlx::{AnyConnection, Row};

use super::error::StoreError;
use super::port;
use super::{insert_event, lock_card, Store};
use crate::core::ports::{
    Act, Change, CodeAttempt, NewToken, TokenActivation, TokenChange, TokenStore,
};
use crate::core::DomainError;
use otpgw_rules::records::{Token, TokenRecord};
use otpgw_rules::tokens::{Hash, TokenKind, TokenSource, TokenState};

const TOKEN_COLUMNS: &str =
    "id, uid, card_id, kind, source, serial, algorithm, digits, period, suite, secret, state, \
     activation_expires_at, last_step, drift, last_txn_hash, created_at, updated_at, last_used_at";

/// A token made of a row that has `TOKEN_COLUMNS`: one mapping for sqlx's rows and
/// for rusqlite's (`direct::SqliteRow`), which both have `try_get` by name.
macro_rules! token_of {
    ($row:expr) => {{
        let r = $row;
        // `?` converts sqlx's error; rusqlite's rows already give the store's.
        #[allow(clippy::needless_question_mark)]
        let text = |c: &str| -> Result<String, StoreError> { Ok(r.try_get::<String, _>(c)?) };
        let bad = |c: &str, v: String| StoreError::Corrupt(format!("token {c} {v}"));
        let kind = text("kind")?;
        let source = text("source")?;
        let algorithm = text("algorithm")?;
        let state = text("state")?;
        let secret = text("secret")?;
        Ok::<_, StoreError>(TokenRecord {
            token: Token {
                id: r.try_get("id")?,
                card_id: r.try_get("card_id")?,
                kind: TokenKind::parse(&kind).ok_or_else(|| bad("kind", kind.clone()))?,
                source: TokenSource::parse(&source).ok_or_else(|| bad("source", source.clone()))?,
                serial: r.try_get("serial")?,
                algorithm: Hash::parse(&algorithm)
                    .ok_or_else(|| bad("algorithm", algorithm.clone()))?,
                digits: r.try_get("digits")?,
                period: r.try_get("period")?,
                suite: r.try_get("suite")?,
                state: TokenState::parse(&state).ok_or_else(|| bad("state", state.clone()))?,
                drift: r.try_get("drift")?,
                activation_expires_at: r.try_get("activation_expires_at")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
                last_used_at: r.try_get("last_used_at")?,
            },
            uid: text("uid")?,
            sealed: hex::decode(&secret).unwrap_or_default(),
            last_step: r.try_get("last_step")?,
            last_txn_hash: r.try_get("last_txn_hash")?,
        })
    }};
}

pub(super) fn token_from_row(r: &sqlx::any::AnyRow) -> Result<TokenRecord, StoreError> {
    token_of!(r)
}

/// A card's tokens in the given states, on the writer's direct connection.
pub(super) fn tokens_in_direct(
    db: &rusqlite::Connection,
    card_id: i64,
    state: TokenState,
) -> Result<Vec<TokenRecord>, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE card_id = ?1 AND state = ?2 ORDER BY id LIMIT 16")
    });
    let mut tokens = Vec::new();
    super::direct::run(db, &SQL, &[&card_id, &state.as_str()], |r| {
        tokens.push(token_of!(r)?);
        Ok(())
    })?;
    Ok(tokens)
}

/// A card's tokens in the given states, inside a job.
pub(super) async fn tokens_in(
    conn: &mut AnyConnection,
    card_id: i64,
    state: TokenState,
) -> Result<Vec<TokenRecord>, StoreError> {
    sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE card_id = $1 AND state = $2 ORDER BY id LIMIT 16"
    ))
    .bind(card_id)
    .bind(state.as_str())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(token_from_row)
    .collect()
}

async fn token_locked(conn: &mut AnyConnection, id: i64) -> Result<TokenRecord, StoreError> {
    // Touching the row takes its lock on PostgreSQL until the job commits.
    let row = sqlx::query(&format!(
        "UPDATE tokens SET updated_at = updated_at WHERE id = $1 RETURNING {TOKEN_COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NoSuchToken)?;
    token_from_row(&row)
}

#[async_trait]
impl TokenStore for Store {
    async fn enroll_token(
        &self,
        new: NewToken<'_>,
        actor: &str,
        now: i64,
    ) -> Result<Token, DomainError> {
        port(async move {
            let uid = new.uid.to_owned();
            let card_id = new.card_id;
            let kind = new.kind;
            let source = new.source;
            let serial = new.serial.map(str::to_owned);
            let algorithm = new.algorithm;
            let (digits, period) = (new.digits, new.period);
            let suite = new.suite.map(str::to_owned);
            let sealed = hex::encode(new.sealed);
            let activation = new
                .activation
                .map(|a| (a.code_hash.to_owned(), a.expires_at));
            let actor = actor.to_owned();
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    lock_card(conn, card_id, "id").await?;
                    if let Some(s) = &serial {
                        let taken: i64 = sqlx::query_scalar(
                            "SELECT COUNT(*) FROM tokens WHERE serial = $1 AND state <> 'revoked'",
                        )
                        .bind(s)
                        .fetch_one(&mut *conn)
                        .await?;
                        if taken > 0 {
                            return Err(StoreError::SerialExists);
                        }
                    }
                    let state = if activation.is_some() {
                        TokenState::Pending
                    } else {
                        TokenState::Active
                    };
                    let row = sqlx::query(&format!(
                        "INSERT INTO tokens (uid, card_id, kind, source, serial, algorithm, digits, period, suite, secret, state, \
                         activation_hash, activation_expires_at, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) RETURNING {TOKEN_COLUMNS}"
                    ))
                    .bind(&uid)
                    .bind(card_id)
                    .bind(kind.as_str())
                    .bind(source.as_str())
                    .bind(serial.as_deref())
                    .bind(algorithm.as_str())
                    .bind(digits)
                    .bind(period)
                    .bind(suite.as_deref())
                    .bind(&sealed)
                    .bind(state.as_str())
                    .bind(activation.as_ref().map(|a| a.0.as_str()))
                    .bind(activation.as_ref().map(|a| a.1))
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await?;
                    let token = token_from_row(&row)?.token;
                    insert_event(
                        conn,
                        Some(card_id),
                        "token_enrolled",
                        &actor,
                        serde_json::json!({"token_id": token.id, "kind": kind.as_str(), "source": source.as_str(), "serial": serial, "state": state.as_str()}),
                        now,
                    )
                    .await?;
                    Ok(token)
                })
            })
            .await
        })
        .await
    }

    async fn tokens_of_card(&self, card_id: i64) -> Result<Vec<Token>, DomainError> {
        let sql =
            format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE card_id = $1 ORDER BY id LIMIT 100");
        let query = sqlx::query(&sql).bind(card_id);
        port(self.read_all(query, |r| token_from_row(r).map(|t| t.token))).await
    }

    async fn token(&self, id: i64) -> Result<Option<TokenRecord>, DomainError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1");
        port(self.read_one(sqlx::query(&sql).bind(id), token_from_row)).await
    }

    /// Confirms a pending token's activation code. A wrong code counts; at
    /// `max_failures` the token locks for good (the bank replaces it).
    async fn activate_token(
        &self,
        attempt: CodeAttempt<'_>,
    ) -> Result<TokenActivation, DomainError> {
        let (id, max_failures, now) = (attempt.id, attempt.max_failures, attempt.now);
        let (actor, candidate) = (attempt.actor.to_owned(), attempt.candidate);
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let t = token_locked(conn, id).await?;
                    let card = Some(t.token.card_id);
                    match t.token.state {
                        TokenState::Pending => {}
                        TokenState::Locked => return Ok(TokenActivation::Expired),
                        other => return Err(StoreError::TokenWrongState(other)),
                    }
                    let row = sqlx::query(
                        "SELECT activation_hash, activation_expires_at, activation_failures FROM tokens WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_one(&mut *conn)
                    .await?;
                    let hash: Option<String> = row.try_get("activation_hash")?;
                    let expires_at: Option<i64> = row.try_get("activation_expires_at")?;
                    let failures: i64 = row.try_get("activation_failures")?;
                    if hash.is_none() || expires_at.is_none_or(|e| now >= e) {
                        insert_event(conn, card, "token_activation_failed", &actor, serde_json::json!({"token_id": id, "reason": "expired"}), now).await?;
                        return Ok(TokenActivation::Expired);
                    }
                    let right = matches!((&hash, &candidate), (Some(h), Some(c)) if otpgw_rules::codes::hashes_equal(h, c));
                    if !right {
                        let failures = failures + 1;
                        let locked = failures >= max_failures;
                        sqlx::query(
                            "UPDATE tokens SET activation_failures = $2, state = $3, \
                             activation_hash = CASE WHEN $4 = 1 THEN NULL ELSE activation_hash END, updated_at = $5 WHERE id = $1",
                        )
                        .bind(id)
                        .bind(failures)
                        .bind(if locked { "locked" } else { "pending" })
                        .bind(i64::from(locked))
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                        let attempts_left = (max_failures - failures).max(0);
                        insert_event(conn, card, "token_activation_failed", &actor, serde_json::json!({"token_id": id, "reason": "wrong_code", "attempts_left": attempts_left, "locked": locked}), now).await?;
                        return Ok(TokenActivation::Wrong { attempts_left });
                    }
                    let row = sqlx::query(&format!(
                        "UPDATE tokens SET state = 'active', activation_hash = NULL, activation_expires_at = NULL, \
                         activation_failures = 0, updated_at = $2 WHERE id = $1 RETURNING {TOKEN_COLUMNS}"
                    ))
                    .bind(id)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await?;
                    insert_event(conn, card, "token_activated", &actor, serde_json::json!({"token_id": id}), now).await?;
                    Ok(TokenActivation::Activated(Box::new(token_from_row(&row)?)))
                })
            })
            .await
        })
        .await
    }

    /// Suspends, re-activates or revokes a token. Revoking wipes the sealed secret.
    async fn change_token(&self, change: &Change<'_, TokenChange>) -> Result<Token, DomainError> {
        let (id, now, change_to) = (change.id, change.now, change.to);
        let (actor, reason) = (change.actor.to_owned(), change.reason.map(str::to_owned));
        let change = change_to;
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let t = token_locked(conn, id).await?;
                    let (allowed, to, kind) = match change {
                        TokenChange::Suspend => (
                            t.token.state == TokenState::Active,
                            TokenState::Suspended,
                            "token_suspended",
                        ),
                        TokenChange::Reactivate => (
                            t.token.state == TokenState::Suspended,
                            TokenState::Active,
                            "token_reactivated",
                        ),
                        TokenChange::Revoke => (
                            t.token.state != TokenState::Revoked,
                            TokenState::Revoked,
                            "token_revoked",
                        ),
                    };
                    if !allowed {
                        return Err(StoreError::TokenWrongState(t.token.state));
                    }
                    let wipe = i64::from(to == TokenState::Revoked);
                    let row = sqlx::query(&format!(
                        "UPDATE tokens SET state = $2, updated_at = $3, \
                         secret = CASE WHEN $4 = 1 THEN '' ELSE secret END, \
                         activation_hash = CASE WHEN $4 = 1 THEN NULL ELSE activation_hash END \
                         WHERE id = $1 RETURNING {TOKEN_COLUMNS}"
                    ))
                    .bind(id)
                    .bind(to.as_str())
                    .bind(now)
                    .bind(wipe)
                    .fetch_one(&mut *conn)
                    .await?;
                    insert_event(
                        conn,
                        Some(t.token.card_id),
                        kind,
                        &actor,
                        serde_json::json!({"token_id": id, "reason": reason}),
                        now,
                    )
                    .await?;
                    Ok(token_from_row(&row)?.token)
                })
            })
            .await
        })
        .await
    }

    /// Records a resync: the step of the second code becomes the last used, and
    /// its distance from now the drift.
    async fn resync_token(
        &self,
        id: i64,
        step: i64,
        drift: i64,
        act: Act<'_>,
    ) -> Result<Token, DomainError> {
        let (actor, now) = (act.by, act.at);
        port(async move {
            let actor = actor.to_owned();
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let t = token_locked(conn, id).await?;
                    if t.token.state != TokenState::Active {
                        return Err(StoreError::TokenWrongState(t.token.state));
                    }
                    let row = sqlx::query(&format!(
                        "UPDATE tokens SET last_step = $2, drift = $3, updated_at = $4 WHERE id = $1 RETURNING {TOKEN_COLUMNS}"
                    ))
                    .bind(id)
                    .bind(step)
                    .bind(drift)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await?;
                    insert_event(conn, Some(t.token.card_id), "token_resynced", &actor, serde_json::json!({"token_id": id, "drift": drift}), now).await?;
                    Ok(token_from_row(&row)?.token)
                })
            })
            .await
        })
        .await
    }
}
