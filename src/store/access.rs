//! API keys (stored as hashes, revoked at once) and the console's sessions, each
//! held by an API key, a local operator (`operators.rs`) or a person the identity
//! provider signed in; and the OpenID Connect sign-ins waiting for their callback.

use async_trait::async_trait;
use sqlx::{AnyConnection, Row};

use super::error::StoreError;
use super::port;
use super::{insert_event, Store};
use crate::core::oidc::{OidcLogin, OidcLoginStore};
use crate::core::ports::{AccessStore, ConsoleSession, NewApiKey, NewConsoleSession};
use crate::core::DomainError;
use otpgw_rules::records::{ApiKey, ApiKeyInfo, Who};
use otpgw_rules::vocab::Role;

#[async_trait]
impl AccessStore for Store {
    async fn create_api_key(&self, key: &NewApiKey<'_>) -> Result<i64, DomainError> {
        let (role, now, actor) = (key.role, key.now, key.actor.to_owned());
        let (key_hash, label) = (key.key_hash.to_owned(), key.label.map(str::to_owned));
        let source = key.source.map(str::to_owned);
        port(async move {
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
                        super::with_source(
                            serde_json::json!({"api_key_id": id, "role": role.as_str()}),
                            source.as_deref(),
                        ),
                        now,
                    )
                    .await?;
                    Ok(id)
                })
            })
            .await
        })
        .await
    }

    fn key_generation(&self) -> u64 {
        self.changes.as_ref().map_or(0, |c| c.key_generation())
    }

    async fn api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, DomainError> {
        let sql = "SELECT id, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL";
        port(self.read_one(sqlx::query(sql).bind(key_hash), |row| {
            let role: String = row.try_get("role")?;
            Ok(ApiKey {
                id: row.try_get("id")?,
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
            })
        }))
        .await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>, DomainError> {
        let sql = "SELECT id, role, label, created_at, revoked_at FROM api_keys ORDER BY id";
        port(self.read_all(sqlx::query(sql), api_key_from_row)).await
    }

    /// Revokes a key, ends its console sessions and audits it, in one transaction.
    /// Revoking a revoked key changes nothing and returns it as it is.
    async fn revoke_api_key(
        &self,
        id: i64,
        actor: &str,
        now: i64,
    ) -> Result<ApiKeyInfo, DomainError> {
        port(async move {
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
        })
        .await
    }

    /// Stores a new console session (by the hash of its id) and forgets expired ones.
    async fn create_console_session(
        &self,
        session: NewConsoleSession<'_>,
    ) -> Result<(), DomainError> {
        let (id_hash, csrf) = (session.id_hash.to_owned(), session.csrf.to_owned());
        let (mut api_key_id, mut operator_id, mut oidc) = (None, None, None);
        match session.who {
            Who::Key(key) => api_key_id = Some(key.id),
            Who::Operator { id, .. } => operator_id = Some(*id),
            Who::Oidc {
                subject,
                name,
                role,
            } => oidc = Some((subject.clone(), name.clone(), role.as_str())),
        }
        let (oidc_subject, oidc_name, oidc_role) = match oidc {
            Some((s, n, r)) => (Some(s), Some(n), Some(r)),
            None => (None, None, None),
        };
        let stage = session.stage.as_str();
        let (now, expires_at, idle_ms) = (session.now, session.expires_at, session.idle_ms);
        port(async move {
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
                        "INSERT INTO console_sessions (id_hash, api_key_id, operator_id, stage, csrf, created_at, last_seen_at, expires_at, oidc_subject, oidc_name, oidc_role) \
                         VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10)",
                    )
                    .bind(&id_hash)
                    .bind(api_key_id)
                    .bind(operator_id)
                    .bind(stage)
                    .bind(&csrf)
                    .bind(now)
                    .bind(expires_at)
                    .bind(oidc_subject.as_deref())
                    .bind(oidc_name.as_deref())
                    .bind(oidc_role)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await
        })
        .await
    }

    /// The session with this id hash, if it has not expired (absolutely, or idle
    /// for `idle_ms`) and its key is not revoked; marks it seen now.
    async fn console_session(
        &self,
        id_hash: &str,
        now: i64,
        idle_ms: i64,
    ) -> Result<Option<ConsoleSession>, DomainError> {
        port(async move {
            let id_hash = id_hash.to_owned();
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "UPDATE console_sessions SET last_seen_at = $2 \
                         WHERE id_hash = $1 AND stage = 'in' AND expires_at > $2 AND last_seen_at > $3 \
                         RETURNING api_key_id, operator_id, oidc_subject, oidc_name, oidc_role, csrf, expires_at",
                    )
                    .bind(&id_hash)
                    .bind(now)
                    .bind(now.saturating_sub(idle_ms))
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some(row) = row else { return Ok(None) };
                    let api_key_id: Option<i64> = row.try_get("api_key_id")?;
                    let operator_id: Option<i64> = row.try_get("operator_id")?;
                    let oidc_subject: Option<String> = row.try_get("oidc_subject")?;
                    // The key or operator is read afresh on every request: a revoked
                    // key's or a disabled operator's session ends at once.
                    let who = match (api_key_id, operator_id) {
                        (Some(id), _) => {
                            let role: Option<String> = sqlx::query_scalar(
                                "SELECT role FROM api_keys WHERE id = $1 AND revoked_at IS NULL",
                            )
                            .bind(id)
                            .fetch_optional(&mut *conn)
                            .await?;
                            let Some(role) = role else { return Ok(None) };
                            Who::Key(ApiKey { id, role: role_of(&role)? })
                        }
                        (None, Some(id)) => {
                            let op = sqlx::query(
                                "SELECT name, role FROM operators WHERE id = $1 AND disabled_at IS NULL",
                            )
                            .bind(id)
                            .fetch_optional(&mut *conn)
                            .await?;
                            let Some(op) = op else { return Ok(None) };
                            let role: String = op.try_get("role")?;
                            Who::Operator { id, name: op.try_get("name")?, role: role_of(&role)? }
                        }
                        // A person from the identity provider keeps the role their
                        // claims gave at sign-in, for the session's life.
                        (None, None) => match oidc_subject {
                            Some(subject) => {
                                let role: String = row.try_get("oidc_role")?;
                                let name: Option<String> = row.try_get("oidc_name")?;
                                Who::Oidc {
                                    name: name.unwrap_or_else(|| subject.clone()),
                                    subject,
                                    role: role_of(&role)?,
                                }
                            }
                            None => return Ok(None),
                        },
                    };
                    Ok(Some(ConsoleSession {
                        who,
                        csrf: row.try_get("csrf")?,
                        expires_at: row.try_get("expires_at")?,
                    }))
                })
            })
            .await
        })
        .await
    }

    async fn delete_console_session(&self, id_hash: &str) -> Result<(), DomainError> {
        port(async move {
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
        })
        .await
    }
}

#[async_trait]
impl OidcLoginStore for Store {
    /// Stores a pending sign-in and forgets the expired ones.
    async fn create_oidc_login(
        &self,
        id_hash: &str,
        login: &OidcLogin,
        expires_at: i64,
    ) -> Result<(), DomainError> {
        let id_hash = id_hash.to_owned();
        let login = login.clone();
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM oidc_logins WHERE expires_at <= $1")
                        .bind(login.created_at)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(
                        "INSERT INTO oidc_logins (id_hash, state, nonce, pkce_verifier, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&id_hash)
                    .bind(&login.state)
                    .bind(&login.nonce)
                    .bind(&login.pkce_verifier)
                    .bind(login.created_at)
                    .bind(expires_at)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await
        })
        .await
    }

    /// Deletes the pending sign-in and returns it if it had not expired: one
    /// statement, so two callbacks with the same cookie cannot both have it.
    async fn take_oidc_login(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<OidcLogin>, DomainError> {
        let id_hash = id_hash.to_owned();
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "DELETE FROM oidc_logins WHERE id_hash = $1 \
                         RETURNING state, nonce, pkce_verifier, created_at, expires_at",
                    )
                    .bind(&id_hash)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some(row) = row else { return Ok(None) };
                    let expires_at: i64 = row.try_get("expires_at")?;
                    if expires_at <= now {
                        return Ok(None);
                    }
                    Ok(Some(OidcLogin {
                        state: row.try_get("state")?,
                        nonce: row.try_get("nonce")?,
                        pkce_verifier: row.try_get("pkce_verifier")?,
                        created_at: row.try_get("created_at")?,
                    }))
                })
            })
            .await
        })
        .await
    }
}

fn role_of(raw: &str) -> Result<Role, StoreError> {
    Role::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("role {raw}")))
}

fn api_key_from_row(r: &sqlx::any::AnyRow) -> Result<ApiKeyInfo, StoreError> {
    let role: String = r.try_get("role")?;
    let role = role_of(&role)?;
    Ok(record!(r => ApiKeyInfo { id, label, created_at, revoked_at; role }))
}
