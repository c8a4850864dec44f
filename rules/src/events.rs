//! The audit trail's vocabulary: every kind of event the gateway records, in one
//! list. The console's kind filter offers this list and names each kind in fa and
//! en by matching on it (a kind without words is a compile error there); the store
//! checks, in debug builds, that every event it writes is of a listed kind (so a
//! new kind cannot be written without being added here).

/// The kind of an audit event, as stored (`events.kind`) and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    // A card's life.
    Enrolled,
    ActivationIssued,
    ActivationSent,
    ActivationFailed,
    Activated,
    CodeIssued,
    Verified,
    Locked,
    LockExpired,
    Reactivated,
    Suspended,
    PhoneChanged,
    SimSwapped,
    EpinSet,
    EpinCleared,
    Reissued,
    Closed,
    VerifyGuardTripped,
    // A card's tokens.
    TokenEnrolled,
    TokenActivationSent,
    TokenActivationFailed,
    TokenActivated,
    TokenSuspended,
    TokenReactivated,
    TokenRevoked,
    TokenResynced,
    // Who may use the gateway.
    ApiKeyCreated,
    ApiKeyRevoked,
    ConsoleSignedIn,
    ConsoleSigninRefused,
    ConsoleSessionRevoked,
    OperatorAdded,
    OperatorDisabled,
    OperatorEnabled,
    OperatorReset,
    OperatorLocked,
    ConsoleSignInFailed,
    OperatorPasswordChanged,
    OperatorRoleChanged,
    // Two-person rules.
    ApprovalProposed,
    ApprovalApproved,
    ApprovalRefused,
    ApprovalWithdrawn,
    ApprovalDenied,
    ApprovalFailed,
    ApprovalExpired,
    // The gateway itself.
    ConfigReloaded,
    ConfigReloadRefused,
}

impl EventKind {
    /// Every kind, in the order the console lists them.
    pub const ALL: &'static [EventKind] = &[
        Self::Enrolled,
        Self::ActivationIssued,
        Self::ActivationSent,
        Self::ActivationFailed,
        Self::Activated,
        Self::CodeIssued,
        Self::Verified,
        Self::Locked,
        Self::LockExpired,
        Self::Reactivated,
        Self::Suspended,
        Self::PhoneChanged,
        Self::SimSwapped,
        Self::EpinSet,
        Self::EpinCleared,
        Self::Reissued,
        Self::Closed,
        Self::VerifyGuardTripped,
        Self::TokenEnrolled,
        Self::TokenActivationSent,
        Self::TokenActivationFailed,
        Self::TokenActivated,
        Self::TokenSuspended,
        Self::TokenReactivated,
        Self::TokenRevoked,
        Self::TokenResynced,
        Self::ApiKeyCreated,
        Self::ApiKeyRevoked,
        Self::ConsoleSignedIn,
        Self::ConsoleSigninRefused,
        Self::ConsoleSessionRevoked,
        Self::OperatorAdded,
        Self::OperatorDisabled,
        Self::OperatorEnabled,
        Self::OperatorReset,
        Self::OperatorLocked,
        Self::ConsoleSignInFailed,
        Self::OperatorPasswordChanged,
        Self::OperatorRoleChanged,
        Self::ApprovalProposed,
        Self::ApprovalApproved,
        Self::ApprovalRefused,
        Self::ApprovalWithdrawn,
        Self::ApprovalDenied,
        Self::ApprovalFailed,
        Self::ApprovalExpired,
        Self::ConfigReloaded,
        Self::ConfigReloadRefused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enrolled => "enrolled",
            Self::ActivationIssued => "activation_issued",
            Self::ActivationSent => "activation_sent",
            Self::ActivationFailed => "activation_failed",
            Self::Activated => "activated",
            Self::CodeIssued => "code_issued",
            Self::Verified => "verified",
            Self::Locked => "locked",
            Self::LockExpired => "lock_expired",
            Self::Reactivated => "reactivated",
            Self::Suspended => "suspended",
            Self::PhoneChanged => "phone_changed",
            Self::SimSwapped => "sim_swapped",
            Self::EpinSet => "epin_set",
            Self::EpinCleared => "epin_cleared",
            Self::Reissued => "reissued",
            Self::Closed => "closed",
            Self::VerifyGuardTripped => "verify_guard_tripped",
            Self::TokenEnrolled => "token_enrolled",
            Self::TokenActivationSent => "token_activation_sent",
            Self::TokenActivationFailed => "token_activation_failed",
            Self::TokenActivated => "token_activated",
            Self::TokenSuspended => "token_suspended",
            Self::TokenReactivated => "token_reactivated",
            Self::TokenRevoked => "token_revoked",
            Self::TokenResynced => "token_resynced",
            Self::ApiKeyCreated => "api_key_created",
            Self::ApiKeyRevoked => "api_key_revoked",
            Self::ConsoleSigninRefused => "console_signin_refused",
            Self::ConsoleSignedIn => "console_signed_in",
            Self::ConsoleSessionRevoked => "console_session_revoked",
            Self::OperatorAdded => "operator_added",
            Self::OperatorDisabled => "operator_disabled",
            Self::OperatorEnabled => "operator_enabled",
            Self::OperatorReset => "operator_reset",
            Self::OperatorLocked => "operator_locked",
            Self::ConsoleSignInFailed => "console_sign_in_failed",
            Self::OperatorPasswordChanged => "operator_password_changed",
            Self::OperatorRoleChanged => "operator_role_changed",
            Self::ApprovalProposed => "approval_proposed",
            Self::ApprovalApproved => "approval_approved",
            Self::ApprovalRefused => "approval_refused",
            Self::ApprovalWithdrawn => "approval_withdrawn",
            Self::ApprovalDenied => "approval_denied",
            Self::ApprovalFailed => "approval_failed",
            Self::ApprovalExpired => "approval_expired",
            Self::ConfigReloaded => "config_reloaded",
            Self::ConfigReloadRefused => "config_reload_refused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn every_kind_is_listed_once_and_parses_back() {
        let mut names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(*k));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
        assert_eq!(EventKind::parse("nonsense"), None);
    }
}
