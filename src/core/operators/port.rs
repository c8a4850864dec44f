//! The operators' storage port: local console operators and the stages of their
//! sign-in. Beside `ports.rs` rather than in it, as the operators' own room; the
//! store implements it like every other port, and every write commits before it
//! returns. Times are epoch milliseconds chosen by the caller.

use async_trait::async_trait;
use otpgw_rules::vocab::Role;

use crate::core::DomainError;

type Result<T> = std::result::Result<T, DomainError>;

/// An operator as the console and the CLI list them: never a hash or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub totp_enrolled: bool,
    pub failed_signins: i64,
    pub locked_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub changed_at: i64,
}

/// An operator with what a sign-in checks. Its hashes and sealed secret stay in
/// the core.
#[derive(Clone)]
pub struct OperatorRecord {
    pub info: OperatorInfo,
    pub password_hash: String,
    /// Newest first; with the current one, the last `PASSWORD_HISTORY`.
    pub old_password_hashes: Vec<String>,
    /// Hex of the sealed TOTP secret; `None` before enrolment starts.
    pub totp_secret: Option<String>,
    pub totp_last_step: Option<i64>,
}

crate::telemetry::debug_only!(OperatorRecord { info });

pub struct NewOperator<'a> {
    pub name: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
    pub actor: &'a str,
    pub now: i64,
}

/// An administrator's reset: a new password (the old ones kept for the reuse
/// rule), TOTP enrolment from the start, the lock and failures cleared, the
/// operator's sessions ended.
pub struct OperatorReset<'a> {
    pub id: i64,
    pub password_hash: &'a str,
    pub old_password_hashes: &'a [String],
    pub actor: &'a str,
    pub now: i64,
}

/// An operator's own password change: the other sessions end, `keep_session`
/// (the id hash of the one asking) stays.
pub struct PasswordChange<'a> {
    pub id: i64,
    pub password_hash: &'a str,
    pub old_password_hashes: &'a [String],
    pub keep_session: &'a str,
    pub now: i64,
}

/// How far a console session has come: a signed-in session, or an operator's
/// sign-in waiting for a TOTP code (`Totp`) or for the first code of a new
/// enrolment (`Enrol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    In,
    Totp,
    Enrol,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::In => "in",
            Stage::Totp => "totp",
            Stage::Enrol => "enrol",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Stage::In, Stage::Totp, Stage::Enrol]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// An operator's sign-in between the password and the code.
#[derive(Debug, Clone)]
pub struct PendingSignIn {
    pub operator_id: i64,
    pub stage: Stage,
}

/// A live console session as administrators list it. `handle` names it in a form
/// (the stored hash of its id, which does not open the session).
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub handle: String,
    pub actor: String,
    pub role: Role,
    pub created_at: i64,
    pub last_seen_at: i64,
}

#[async_trait]
pub trait OperatorStore: Send + Sync {
    /// Adds an operator, audited; `Exists(Operator)` if the name is taken.
    async fn add_operator(&self, op: NewOperator<'_>) -> Result<OperatorInfo>;
    async fn operator(&self, name: &str) -> Result<Option<OperatorRecord>>;
    async fn operator_by_id(&self, id: i64) -> Result<Option<OperatorRecord>>;
    async fn operators(&self) -> Result<Vec<OperatorInfo>>;
    /// Disables (ending the operator's sessions) or enables (clearing the lock and
    /// the failures) an operator, audited. Disabling the last enabled admin is
    /// refused with `WrongState(LastAdmin)`, decided in the same transaction.
    async fn set_operator_disabled(
        &self,
        name: &str,
        disabled: bool,
        actor: &str,
        now: i64,
    ) -> Result<OperatorInfo>;
    async fn reset_operator(&self, reset: OperatorReset<'_>) -> Result<OperatorInfo>;
    /// An operator's own new password, audited (`operator_password_changed`).
    async fn change_operator_password(&self, change: PasswordChange<'_>) -> Result<()>;
    /// A new role, ending the operator's sessions, audited
    /// (`operator_role_changed`). Demoting the last enabled admin is refused with
    /// `WrongState(LastAdmin)`, decided in the same transaction.
    async fn set_operator_role(
        &self,
        name: &str,
        role: Role,
        actor: &str,
        now: i64,
    ) -> Result<OperatorInfo>;
    /// One more failed sign-in in a row; the `max`th locks the operator (audited
    /// as `operator_locked`) and ends their sessions in the same transaction.
    /// Returns the failures now.
    async fn operator_failed(&self, id: i64, max: i64, now: i64) -> Result<i64>;
    /// Stores a new sealed TOTP secret (enrolment starts again).
    async fn set_operator_totp(&self, id: i64, sealed: &str, now: i64) -> Result<()>;
    /// A correct code: enrolled, the step remembered (it verifies once), the
    /// failures back to 0; `false` if the step was not after the last one (a
    /// concurrent sign-in took it).
    async fn operator_code_accepted(&self, id: i64, step: i64, now: i64) -> Result<bool>;
    /// The operator's sign-in waiting under this id hash, if not expired.
    async fn pending_sign_in(&self, id_hash: &str, now: i64) -> Result<Option<PendingSignIn>>;
    /// Live sessions, newest first, at most `limit`.
    async fn console_sessions(&self, now: i64, limit: i64) -> Result<Vec<SessionInfo>>;
}
