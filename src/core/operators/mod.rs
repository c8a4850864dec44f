//! Local console operators: named people with a password and a TOTP second factor,
//! for banks without an identity provider. Administrators (the CLI, or an admin in
//! the console) add, disable, enable and reset them; `signin.rs` takes them through
//! password, TOTP enrolment and code to a console session. The rules that need no
//! I/O (names, passwords, the lock after five failures) are in
//! `otpgw_rules::operators`; the port is `port.rs`.
//!
//! Every change names its actor in the audit (`operator:NAME`, `apikey:N` or
//! `cli`); nobody disables, resets or revokes themselves, and the last enabled
//! administrator is not disabled (decided in the store's transaction).

pub mod port;
mod signin;

use std::sync::Arc;

use otpgw_rules::codes::{self, Keys};
use otpgw_rules::operators::{self as rules, Name, PasswordError};
use otpgw_rules::seal::SealKey;
use otpgw_rules::vocab::Role;

use super::epin::Epins;
use super::ports::{AccessStore, AuditStore, NewEvent};
use super::{Clock, CoreError, Missing, OperatorError};
use port::{NewOperator, OperatorInfo, OperatorReset, OperatorStore, SessionInfo};

pub use signin::{CodeAnswer, PendingView, Started};

/// The sealing purpose of operators' TOTP secrets (each bound to its operator's id).
const SEAL_PURPOSE: &str = "operators";
/// Live sessions an administrator's list shows at most.
const MAX_SESSIONS_LISTED: i64 = 200;

#[derive(Clone)]
pub struct Operators(pub(super) Arc<Inner>);

pub(super) struct Inner {
    pub operators: Arc<dyn OperatorStore>,
    pub access: Arc<dyn AccessStore>,
    pub audit: Arc<dyn AuditStore>,
    pub keys: Keys,
    pub hashes: Arc<Epins>,
    /// The issuer in the `otpauth://` URI an authenticator app shows.
    pub issuer: String,
    pub clock: Arc<dyn Clock>,
}

impl Operators {
    fn now(&self) -> i64 {
        self.0.clock.now_ms()
    }

    fn seal_key(&self) -> SealKey {
        self.0.keys.seal_key(SEAL_PURPOSE)
    }

    /// Adds an operator who enrols TOTP at the first sign-in.
    pub async fn add(
        &self,
        name: &str,
        role: Role,
        password: &str,
        actor: &str,
    ) -> Result<OperatorInfo, CoreError> {
        let name = Name::parse(name).map_err(OperatorError::from)?;
        if !rules::operator_role(role) {
            return Err(OperatorError::Role.into());
        }
        let password = rules::new_password(&name, password).map_err(OperatorError::from)?;
        let hash = self
            .0
            .hashes
            .run(move |k| k.password_hash(&password))
            .await?;
        let info = self
            .0
            .operators
            .add_operator(NewOperator {
                name: name.as_str(),
                role,
                password_hash: &hash,
                actor,
                now: self.now(),
            })
            .await?;
        tracing::info!(operator = info.name, actor, "operator added");
        Ok(info)
    }

    pub async fn list(&self) -> Result<Vec<OperatorInfo>, CoreError> {
        Ok(self.0.operators.operators().await?)
    }

    /// Disables (`true`) or enables an operator. Enabling also lifts a lock.
    pub async fn set_disabled(
        &self,
        name: &str,
        disabled: bool,
        actor: &str,
    ) -> Result<OperatorInfo, CoreError> {
        let name = Name::parse(name).map_err(OperatorError::from)?;
        if disabled && name.actor() == actor {
            return Err(OperatorError::OneSelf("disable").into());
        }
        let info = self
            .0
            .operators
            .set_operator_disabled(name.as_str(), disabled, actor, self.now())
            .await?;
        tracing::info!(operator = info.name, actor, disabled, "operator changed");
        Ok(info)
    }

    /// An administrator's reset: a new password (none of the last five), TOTP
    /// enrolment again at the next sign-in, the lock cleared, sessions ended.
    pub async fn reset(
        &self,
        name: &str,
        password: &str,
        actor: &str,
    ) -> Result<OperatorInfo, CoreError> {
        let name = Name::parse(name).map_err(OperatorError::from)?;
        if name.actor() == actor {
            return Err(OperatorError::OneSelf("reset").into());
        }
        let password = rules::new_password(&name, password).map_err(OperatorError::from)?;
        let record = self
            .0
            .operators
            .operator(name.as_str())
            .await?
            .ok_or(CoreError::not_found(Missing::Operator))?;
        let (hash, last) = self.fresh_hash(&record, password).await?;
        let info = self
            .0
            .operators
            .reset_operator(OperatorReset {
                id: record.info.id,
                password_hash: &hash,
                old_password_hashes: &last,
                actor,
                now: self.now(),
            })
            .await?;
        tracing::info!(operator = info.name, actor, "operator reset");
        Ok(info)
    }

    /// The hash of a new password that is none of the operator's last
    /// `PASSWORD_HISTORY`, and the old hashes to keep beside it.
    async fn fresh_hash(
        &self,
        record: &port::OperatorRecord,
        password: rules::Password,
    ) -> Result<(String, Vec<String>), CoreError> {
        let mut last = vec![record.password_hash.clone()];
        last.extend(record.old_password_hashes.iter().cloned());
        last.truncate(rules::PASSWORD_HISTORY);
        let checked = last.clone();
        let hash = self
            .0
            .hashes
            .run(move |k| {
                let reused = checked.iter().any(|h| k.password_matches(h, &password));
                (!reused).then(|| k.password_hash(&password))
            })
            .await?
            .ok_or(OperatorError::Password(PasswordError::Reused))?;
        // The current hash becomes the newest old one; with the new one, the last
        // `PASSWORD_HISTORY` are kept.
        last.truncate(rules::PASSWORD_HISTORY - 1);
        Ok((hash, last))
    }

    /// A signed-in operator changes their own password: the current one must be
    /// right, the new one follows the rules and is none of the last five. Their
    /// other console sessions end; `session_id`'s stays. Audited.
    pub async fn change_password(
        &self,
        name: &str,
        current: &str,
        new: &str,
        session_id: &str,
    ) -> Result<(), CoreError> {
        let name = Name::parse(name).map_err(OperatorError::from)?;
        let record = self
            .0
            .operators
            .operator(name.as_str())
            .await?
            .ok_or(CoreError::not_found(Missing::Operator))?;
        let (stored, given) = (
            record.password_hash.clone(),
            rules::Password::given(current),
        );
        let right = self
            .0
            .hashes
            .run(move |k| k.password_matches(&stored, &given))
            .await?;
        if !right {
            tracing::info!(
                operator = name.as_str(),
                "password change refused: current password"
            );
            return Err(OperatorError::CurrentPassword.into());
        }
        let password = rules::new_password(&name, new).map_err(OperatorError::from)?;
        let (hash, last) = self.fresh_hash(&record, password).await?;
        self.0
            .operators
            .change_operator_password(port::PasswordChange {
                id: record.info.id,
                password_hash: &hash,
                old_password_hashes: &last,
                keep_session: &codes::api_key_hash(session_id),
                now: self.now(),
            })
            .await?;
        tracing::info!(operator = name.as_str(), "operator password changed");
        Ok(())
    }

    /// An administrator changes an operator's role; their sessions end (the next
    /// sign-in carries the new role). Nobody changes their own; the last enabled
    /// administrator is not demoted (decided in the store's transaction).
    pub async fn set_role(
        &self,
        name: &str,
        role: Role,
        actor: &str,
    ) -> Result<OperatorInfo, CoreError> {
        let name = Name::parse(name).map_err(OperatorError::from)?;
        if !rules::operator_role(role) {
            return Err(OperatorError::Role.into());
        }
        if name.actor() == actor {
            return Err(OperatorError::OneSelf("change the role of").into());
        }
        let info = self
            .0
            .operators
            .set_operator_role(name.as_str(), role, actor, self.now())
            .await?;
        tracing::info!(
            operator = info.name,
            actor,
            role = role.as_str(),
            "operator role changed"
        );
        Ok(info)
    }

    /// Live console sessions (operators' and API keys'), newest first.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, CoreError> {
        Ok(self
            .0
            .operators
            .console_sessions(self.now(), MAX_SESSIONS_LISTED)
            .await?)
    }

    /// Ends another console session (`handle` from [`Operators::sessions`]);
    /// `own_session_id` is the caller's, which this refuses to end (sign out).
    pub async fn revoke_session(
        &self,
        handle: &str,
        own_session_id: &str,
        actor: &str,
    ) -> Result<(), CoreError> {
        if codes::hashes_equal(handle, &codes::api_key_hash(own_session_id)) {
            return Err(OperatorError::OneSelf("revoke the session of").into());
        }
        self.0.access.delete_console_session(handle).await?;
        self.0
            .audit
            .audit(NewEvent {
                card_id: None,
                kind: "console_session_revoked",
                actor,
                detail: serde_json::json!({}),
                at: self.now(),
            })
            .await?;
        tracing::info!(actor, "console session revoked");
        Ok(())
    }
}
