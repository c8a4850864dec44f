//! What the back office needs beyond cards and codes: API keys listed and revoked,
//! the console's server-side sessions, audit search, a card's recent verify answers,
//! and the activity counts of the console's health strip. Writes are jobs of
//! `Store::write` like every other.

use sqlx::{AnyConnection, Row};

use super::{
    event_from_row, insert_event, parse_verdict, Activity, ApiKey, ApiKeyInfo, AuditFilter,
    ConsoleSession, Event, Store, StoreError, VerificationEntry,
};
use otpgw_rules::vocab::Role;

impl Store {
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
        let actor = actor.to_owned();
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move {
                let revoked = sqlx::query(
                    "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                let row = sqlx::query(
                    "SELECT id, role, label, created_at, revoked_at FROM api_keys WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
                let Some(row) = row else {
                    return Err(StoreError::NoSuchApiKey);
                };
                let info = api_key_from_row(&row)?;
                if revoked == 1 {
                    let sessions =
                        sqlx::query("DELETE FROM console_sessions WHERE api_key_id = $1")
                            .bind(id)
                            .execute(&mut *conn)
                            .await?
                            .rows_affected();
                    insert_event(
                        conn,
                        None,
                        "api_key_revoked",
                        &actor,
                        serde_json::json!({"api_key_id": id, "role": info.role.as_str(), "console_sessions_ended": sessions}),
                        now,
                    )
                    .await?;
                }
                Ok(info)
            })
        })
        .await
    }

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
        let (id_hash, csrf) = (id_hash.to_owned(), csrf.to_owned());
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move {
                sqlx::query(
                    "DELETE FROM console_sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
                )
                .bind(now)
                .bind(now.saturating_sub(idle_ms))
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "INSERT INTO console_sessions (id_hash, api_key_id, csrf, created_at, last_seen_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $4, $5)",
                )
                .bind(&id_hash)
                .bind(key.id)
                .bind(&csrf)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// The session with this id hash, if it has not expired (absolutely, or idle
    /// for `idle_ms`) and its key is not revoked; marks it seen now.
    pub async fn console_session(
        &self,
        id_hash: &str,
        now: i64,
        idle_ms: i64,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let id_hash = id_hash.to_owned();
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move {
                let row = sqlx::query(
                    "UPDATE console_sessions SET last_seen_at = $2 \
                     WHERE id_hash = $1 AND expires_at > $2 AND last_seen_at > $3 \
                     RETURNING api_key_id, csrf, expires_at",
                )
                .bind(&id_hash)
                .bind(now)
                .bind(now.saturating_sub(idle_ms))
                .fetch_optional(&mut *conn)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let api_key_id: i64 = row.try_get("api_key_id")?;
                // The key is read afresh on every request: a revoked key's session
                // ends at once.
                let role: Option<String> = sqlx::query_scalar(
                    "SELECT role FROM api_keys WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(api_key_id)
                .fetch_optional(&mut *conn)
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
            })
        })
        .await
    }

    pub async fn delete_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let id_hash = id_hash.to_owned();
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move {
                sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
                    .bind(&id_hash)
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .await
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

    /// Codes issued (and how many of their messages failed) and verify answers
    /// given since `since` (epoch ms).
    pub async fn activity_since(&self, since: i64) -> Result<Activity, StoreError> {
        let codes = sqlx::query(
            "SELECT COUNT(*) AS issued, \
             COALESCE(SUM(CASE WHEN delivery IN ('undelivered', 'expired') THEN 1 ELSE 0 END), 0) AS failed \
             FROM codes WHERE issued_at >= $1",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, \
             COALESCE(SUM(CASE WHEN result = 'approved' THEN 1 ELSE 0 END), 0) AS approved \
             FROM verifications WHERE created_at >= $1",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(Activity {
            codes_issued: codes.try_get("issued")?,
            undelivered: codes.try_get("failed")?,
            verifications: row.try_get("total")?,
            approved: row.try_get("approved")?,
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
