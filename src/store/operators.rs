//! Local console operators (migration 0014) and the sign-in steps and session list
//! that concern them. Every change is one job of the writer with its audit event;
//! the last-admin rule is decided inside the job that disables or demotes;
//! a lock, a disabling and a role change end the operator's sessions in their job.

use async_trait::async_trait;
use sqlx::{AnyConnection, Row};

use super::error::StoreError;
use super::{insert_event, port, Store};
use crate::core::ports::{
    NewOperator, OperatorInfo, OperatorRecord, OperatorReset, OperatorStore, PasswordChange,
    PendingSignIn, SessionInfo, Stage,
};
use crate::core::{Conflict, DomainError, Existing, Missing};
use otpgw_rules::vocab::Role;

const INFO_COLUMNS: &str = "id, name, role, totp_enrolled, failed_signins, locked_at, \
                            disabled_at, created_at, changed_at";
const RECORD_COLUMNS: &str = "id, name, role, totp_enrolled, failed_signins, locked_at, \
                              disabled_at, created_at, changed_at, password_hash, \
                              old_password_hashes, totp_secret, totp_last_step";

fn role_of(raw: &str) -> Result<Role, StoreError> {
    Role::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("role {raw}")))
}

fn info_from_row(r: &sqlx::any::AnyRow) -> Result<OperatorInfo, StoreError> {
    let role: String = r.try_get("role")?;
    let enrolled: i64 = r.try_get("totp_enrolled")?;
    Ok(record!(r => OperatorInfo {
        id, name, failed_signins, locked_at, disabled_at, created_at, changed_at;
        role: role_of(&role)?,
        totp_enrolled: enrolled != 0,
    }))
}

fn record_from_row(r: &sqlx::any::AnyRow) -> Result<OperatorRecord, StoreError> {
    let old: String = r.try_get("old_password_hashes")?;
    Ok(OperatorRecord {
        info: info_from_row(r)?,
        password_hash: r.try_get("password_hash")?,
        old_password_hashes: serde_json::from_str(&old)
            .map_err(|_| StoreError::Corrupt("old_password_hashes".into()))?,
        totp_secret: r.try_get("totp_secret")?,
        totp_last_step: r.try_get("totp_last_step")?,
    })
}

async fn info_by_id(conn: &mut AnyConnection, id: i64) -> Result<OperatorInfo, StoreError> {
    let sql = format!("SELECT {INFO_COLUMNS} FROM operators WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let row = row.ok_or(StoreError::Port(DomainError::NotFound(Missing::Operator)))?;
    info_from_row(&row)
}

async fn end_sessions(conn: &mut AnyConnection, id: i64) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM console_sessions WHERE operator_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}

#[async_trait]
impl OperatorStore for Store {
    async fn add_operator(&self, op: NewOperator<'_>) -> Result<OperatorInfo, DomainError> {
        let (name, hash, actor) = (
            op.name.to_owned(),
            op.password_hash.to_owned(),
            op.actor.to_owned(),
        );
        let (role, now) = (op.role, op.now);
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let taken: Option<i64> =
                        sqlx::query_scalar("SELECT id FROM operators WHERE name = $1")
                            .bind(&name)
                            .fetch_optional(&mut *conn)
                            .await?;
                    if taken.is_some() {
                        return Err(DomainError::Exists(Existing::Operator).into());
                    }
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO operators (name, role, password_hash, created_at, changed_at) \
                         VALUES ($1, $2, $3, $4, $4) RETURNING id",
                    )
                    .bind(&name)
                    .bind(role.as_str())
                    .bind(&hash)
                    .bind(now)
                    .fetch_one(&mut *conn)
                    .await?;
                    insert_event(
                        conn,
                        None,
                        "operator_added",
                        &actor,
                        serde_json::json!({"operator": name, "role": role.as_str()}),
                        now,
                    )
                    .await?;
                    info_by_id(conn, id).await
                })
            })
            .await
        })
        .await
    }

    async fn operator(&self, name: &str) -> Result<Option<OperatorRecord>, DomainError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM operators WHERE name = $1");
        port(self.read_one(sqlx::query(&sql).bind(name), record_from_row)).await
    }

    async fn operator_by_id(&self, id: i64) -> Result<Option<OperatorRecord>, DomainError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM operators WHERE id = $1");
        port(self.read_one(sqlx::query(&sql).bind(id), record_from_row)).await
    }

    async fn operators(&self) -> Result<Vec<OperatorInfo>, DomainError> {
        let sql = format!("SELECT {INFO_COLUMNS} FROM operators ORDER BY name");
        port(self.read_all(sqlx::query(&sql), info_from_row)).await
    }

    async fn set_operator_disabled(
        &self,
        name: &str,
        disabled: bool,
        actor: &str,
        now: i64,
    ) -> Result<OperatorInfo, DomainError> {
        let (name, actor) = (name.to_owned(), actor.to_owned());
        let for_update = if self.shared() { " FOR UPDATE" } else { "" };
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "SELECT id, role, disabled_at FROM operators WHERE name = $1",
                    )
                    .bind(&name)
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or(StoreError::Port(DomainError::NotFound(Missing::Operator)))?;
                    let id: i64 = row.try_get("id")?;
                    let role: String = row.try_get("role")?;
                    let was_disabled = row.try_get::<Option<i64>, _>("disabled_at")?.is_some();
                    if disabled {
                        if was_disabled {
                            return info_by_id(conn, id).await;
                        }
                        // Counted in the disabling job (on PostgreSQL under a lock on
                        // the admins' rows), so two admins disabling each other at
                        // once cannot both succeed.
                        let admins: Vec<i64> = sqlx::query_scalar(&format!(
                            "SELECT id FROM operators WHERE role = 'admin' AND disabled_at IS NULL{for_update}"
                        ))
                        .fetch_all(&mut *conn)
                        .await?;
                        if role == "admin" && admins.len() <= 1 {
                            return Err(DomainError::WrongState(Conflict::LastAdmin).into());
                        }
                        sqlx::query(
                            "UPDATE operators SET disabled_at = $2, changed_at = $2 WHERE id = $1",
                        )
                        .bind(id)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                        let sessions = end_sessions(conn, id).await?;
                        insert_event(
                            conn,
                            None,
                            "operator_disabled",
                            &actor,
                            serde_json::json!({"operator": name, "console_sessions_ended": sessions}),
                            now,
                        )
                        .await?;
                    } else {
                        sqlx::query(
                            "UPDATE operators SET disabled_at = NULL, locked_at = NULL, \
                             failed_signins = 0, changed_at = $2 WHERE id = $1",
                        )
                        .bind(id)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                        insert_event(
                            conn,
                            None,
                            "operator_enabled",
                            &actor,
                            serde_json::json!({"operator": name}),
                            now,
                        )
                        .await?;
                    }
                    info_by_id(conn, id).await
                })
            })
            .await
        })
        .await
    }

    async fn reset_operator(&self, reset: OperatorReset<'_>) -> Result<OperatorInfo, DomainError> {
        let (id, now) = (reset.id, reset.now);
        let (hash, actor) = (reset.password_hash.to_owned(), reset.actor.to_owned());
        let old = serde_json::to_string(reset.old_password_hashes)
            .map_err(|e| DomainError::internal(e.to_string()))?;
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let changed = sqlx::query(
                        "UPDATE operators SET password_hash = $2, old_password_hashes = $3, \
                         totp_secret = NULL, totp_enrolled = 0, totp_last_step = NULL, \
                         failed_signins = 0, locked_at = NULL, changed_at = $4 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(&hash)
                    .bind(&old)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if changed == 0 {
                        return Err(DomainError::NotFound(Missing::Operator).into());
                    }
                    let sessions = end_sessions(conn, id).await?;
                    let info = info_by_id(conn, id).await?;
                    insert_event(
                        conn,
                        None,
                        "operator_reset",
                        &actor,
                        serde_json::json!({"operator": info.name, "console_sessions_ended": sessions}),
                        now,
                    )
                    .await?;
                    Ok(info)
                })
            })
            .await
        })
        .await
    }

    async fn change_operator_password(
        &self,
        change: PasswordChange<'_>,
    ) -> Result<(), DomainError> {
        let (id, now) = (change.id, change.now);
        let (hash, keep) = (
            change.password_hash.to_owned(),
            change.keep_session.to_owned(),
        );
        let old = serde_json::to_string(change.old_password_hashes)
            .map_err(|e| DomainError::internal(e.to_string()))?;
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let changed = sqlx::query(
                        "UPDATE operators SET password_hash = $2, old_password_hashes = $3, \
                         changed_at = $4 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(&hash)
                    .bind(&old)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if changed == 0 {
                        return Err(DomainError::NotFound(Missing::Operator).into());
                    }
                    let ended = sqlx::query(
                        "DELETE FROM console_sessions WHERE operator_id = $1 AND id_hash <> $2",
                    )
                    .bind(id)
                    .bind(&keep)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    let info = info_by_id(conn, id).await?;
                    insert_event(
                        conn,
                        None,
                        "operator_password_changed",
                        &format!("operator:{}", info.name),
                        serde_json::json!({"operator": info.name, "console_sessions_ended": ended}),
                        now,
                    )
                    .await?;
                    Ok(())
                })
            })
            .await
        })
        .await
    }

    async fn set_operator_role(
        &self,
        name: &str,
        role: Role,
        actor: &str,
        now: i64,
    ) -> Result<OperatorInfo, DomainError> {
        let (name, actor) = (name.to_owned(), actor.to_owned());
        let for_update = if self.shared() { " FOR UPDATE" } else { "" };
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "SELECT id, role, disabled_at FROM operators WHERE name = $1",
                    )
                    .bind(&name)
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or(StoreError::Port(DomainError::NotFound(Missing::Operator)))?;
                    let id: i64 = row.try_get("id")?;
                    let was: String = row.try_get("role")?;
                    let enabled = row.try_get::<Option<i64>, _>("disabled_at")?.is_none();
                    if was == role.as_str() {
                        return info_by_id(conn, id).await;
                    }
                    // As when disabling: counted under a lock on the admins' rows,
                    // so two admins demoting each other at once cannot both succeed.
                    let admins: Vec<i64> = sqlx::query_scalar(&format!(
                        "SELECT id FROM operators WHERE role = 'admin' AND disabled_at IS NULL{for_update}"
                    ))
                    .fetch_all(&mut *conn)
                    .await?;
                    if was == "admin" && enabled && admins.len() <= 1 {
                        return Err(DomainError::WrongState(Conflict::LastAdmin).into());
                    }
                    sqlx::query("UPDATE operators SET role = $2, changed_at = $3 WHERE id = $1")
                        .bind(id)
                        .bind(role.as_str())
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    let sessions = end_sessions(conn, id).await?;
                    insert_event(
                        conn,
                        None,
                        "operator_role_changed",
                        &actor,
                        serde_json::json!({"operator": name, "from": was, "to": role.as_str(),
                            "console_sessions_ended": sessions}),
                        now,
                    )
                    .await?;
                    info_by_id(conn, id).await
                })
            })
            .await
        })
        .await
    }

    async fn operator_failed(&self, id: i64, max: i64, now: i64) -> Result<i64, DomainError> {
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "UPDATE operators SET failed_signins = failed_signins + 1, \
                         locked_at = CASE WHEN failed_signins + 1 >= $2 AND locked_at IS NULL \
                         THEN $3 ELSE locked_at END \
                         WHERE id = $1 RETURNING name, failed_signins",
                    )
                    .bind(id)
                    .bind(max)
                    .bind(now)
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or(StoreError::Port(DomainError::NotFound(Missing::Operator)))?;
                    let failures: i64 = row.try_get("failed_signins")?;
                    if failures == max {
                        let name: String = row.try_get("name")?;
                        // A lock ends every session of the operator, signed in
                        // elsewhere or half-way through a sign-in.
                        let sessions = end_sessions(conn, id).await?;
                        insert_event(
                            conn,
                            None,
                            "operator_locked",
                            &format!("operator:{name}"),
                            serde_json::json!({"operator": name, "failed_signins": failures,
                                "console_sessions_ended": sessions}),
                            now,
                        )
                        .await?;
                    }
                    Ok(failures)
                })
            })
            .await
        })
        .await
    }

    async fn set_operator_totp(&self, id: i64, sealed: &str, now: i64) -> Result<(), DomainError> {
        let sealed = sealed.to_owned();
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE operators SET totp_secret = $2, totp_enrolled = 0, \
                         totp_last_step = NULL, changed_at = $3 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(&sealed)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await
        })
        .await
    }

    async fn operator_code_accepted(
        &self,
        id: i64,
        step: i64,
        now: i64,
    ) -> Result<bool, DomainError> {
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE operators SET totp_enrolled = 1, totp_last_step = $2, \
                         failed_signins = 0, changed_at = $3 \
                         WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2) \
                         AND locked_at IS NULL AND disabled_at IS NULL",
                    )
                    .bind(id)
                    .bind(step)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    Ok(done == 1)
                })
            })
            .await
        })
        .await
    }

    async fn pending_sign_in(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<PendingSignIn>, DomainError> {
        let sql = "SELECT operator_id, stage FROM console_sessions \
                   WHERE id_hash = $1 AND stage <> 'in' AND operator_id IS NOT NULL AND expires_at > $2";
        port(
            self.read_one(sqlx::query(sql).bind(id_hash).bind(now), |r| {
                let stage: String = r.try_get("stage")?;
                Ok(PendingSignIn {
                    operator_id: r.try_get("operator_id")?,
                    stage: Stage::parse(&stage)
                        .ok_or_else(|| StoreError::Corrupt(format!("stage {stage}")))?,
                })
            }),
        )
        .await
    }

    async fn console_sessions(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<SessionInfo>, DomainError> {
        let sql = "SELECT s.id_hash, s.api_key_id, o.name, s.oidc_subject, \
                   COALESCE(o.role, k.role, s.oidc_role) AS role, \
                   s.created_at, s.last_seen_at \
                   FROM console_sessions s \
                   LEFT JOIN operators o ON o.id = s.operator_id \
                   LEFT JOIN api_keys k ON k.id = s.api_key_id \
                   WHERE s.stage = 'in' AND s.expires_at > $1 \
                   ORDER BY s.created_at DESC LIMIT $2";
        port(self.read_all(sqlx::query(sql).bind(now).bind(limit), |r| {
            let role: String = r.try_get("role")?;
            let name: Option<String> = r.try_get("name")?;
            let key: Option<i64> = r.try_get("api_key_id")?;
            let subject: Option<String> = r.try_get("oidc_subject")?;
            let actor = match (name, key, subject) {
                (Some(name), _, _) => format!("operator:{name}"),
                (None, Some(id), _) => format!("apikey:{id}"),
                (None, None, Some(subject)) => format!("oidc:{subject}"),
                (None, None, None) => return Err(StoreError::Corrupt("session holder".into())),
            };
            Ok(SessionInfo {
                handle: r.try_get("id_hash")?,
                actor,
                role: role_of(&role)?,
                created_at: r.try_get("created_at")?,
                last_seen_at: r.try_get("last_seen_at")?,
            })
        }))
        .await
    }
}
