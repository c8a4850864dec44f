//! The core's errors. `DomainError` is what a port (the store) may answer besides
//! its value: five kinds a caller can act on, whatever the database said. The
//! store keeps its own error private and maps it here; HTTP, the console and SMPP
//! map these to statuses. `CoreError` adds what the rules and use cases refuse.

use std::time::Duration;

use otpgw_parsers::msisdn::MsisdnError;
use otpgw_rules::operators::{NameError, PasswordError};
use otpgw_rules::tokens::{ocra, totp, TokenState};
use otpgw_rules::vocab::CardStatus;

/// What a port answers when it cannot give the value asked for.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("no such {0}")]
    NotFound(Missing),
    #[error("{0}")]
    Exists(Existing),
    /// The thing is not in the state this change needs.
    #[error("{0}")]
    WrongState(Conflict),
    /// The caller's role may not change a card in this status.
    #[error("not allowed while the card is {}", .0.as_str())]
    NotAllowed(CardStatus),
    /// Nothing was decided: the database could not be reached or did not answer in
    /// time, or a write could not be committed. The same request may succeed later
    /// (HTTP 503, SMPP `ESME_RX_T_APPN`).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a broken invariant or an unexpected database answer.
    #[error("store failure: {0}")]
    Internal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    #[error("card")]
    Card,
    #[error("API key")]
    ApiKey,
    #[error("token")]
    Token,
    #[error("operator")]
    Operator,
    #[error("proposal")]
    Proposal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Existing {
    #[error("a card with this number is already enrolled (id {0})")]
    Card(i64),
    #[error("a token with this serial is already enrolled")]
    TokenSerial,
    #[error("an operator with this name exists")]
    Operator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// Re-activation refused: a timed lock runs until `until` (epoch ms) and the
    /// bank's policy says nobody lifts it early.
    #[error("the card's lock ends by itself at {until} and cannot be lifted earlier")]
    LockNotLiftable { until: i64 },
    #[error("the card is {}", .0.as_str())]
    Card(CardStatus),
    #[error("the token is {}", .0.as_str())]
    Token(TokenState),
    /// Disabling this operator would leave no enabled administrator.
    #[error("the last enabled administrator cannot be disabled or demoted")]
    LastAdmin,
}

impl DomainError {
    pub fn internal(what: impl Into<String>) -> Self {
        Self::Internal(what.into())
    }

    pub fn unavailable(what: impl Into<String>) -> Self {
        Self::Unavailable(what.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("invalid msisdn: {0:?}")]
    Msisdn(MsisdnError),
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    #[error("no card with this number is enrolled")]
    NotEnrolled,
    #[error("the card is {}", .0.as_str())]
    CardNotActive(CardStatus),
    #[error("too many codes for this card: retry in {} s", .retry_after.as_secs().max(1))]
    Limited { retry_after: Duration },
    /// `limits.locks_per_key`: the key's wrong codes count no more for now.
    #[error("this API key's lock budget is spent: retry in {} s", .retry_after.as_secs().max(1))]
    LockBudgetExceeded { retry_after: Duration },
    #[error("no operator connection serves this card's phone number")]
    NoRoute,
    #[error("the outgoing queue is full")]
    Busy,
    /// A transport's deadline passed before the core answered (nothing is promised).
    #[error("not handled within the deadline")]
    Timeout,
    /// `[policy] require_transaction`: the request must name the payment.
    #[error("no such payment challenge for this API key")]
    UnknownChallenge,
    /// `[policy] after_phone_change`: pushed codes wait out the hold.
    #[error("the card's phone number changed recently: pushed codes are held back until {until}")]
    PhoneRecentlyChanged { until: i64 },
    /// `[sim_swap]`: the operator says the number's SIM changed lately; no code.
    #[error("the SIM of the card's phone number changed recently: no code is sent")]
    SimSwapped,
    /// `[sim_swap] on_error = "refuse"`: the check could not be made; nothing was
    /// sent, and the same request may succeed later.
    #[error("the SIM-swap check could not be made: {0}")]
    SimSwapUnchecked(SimSwapError),
    #[error("this bank requires a transaction with every code and verification")]
    TransactionRequired,
    #[error("{0}")]
    Policy(#[from] otpgw_rules::payment::PolicyError),
    #[error("this API key's role may not do that")]
    Forbidden,
    #[error("a reason is required")]
    ReasonRequired,
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Operator(#[from] OperatorError),
    /// The console's identity provider could not be reached or answered nonsense
    /// (the detail is logged where it happened).
    #[error("the identity provider is unavailable")]
    IdentityProvider,
    #[error(transparent)]
    Approval(#[from] ApprovalError),
}

impl CoreError {
    /// Nothing was decided, try again later: the database is unavailable, or the
    /// transport's deadline passed.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            CoreError::Domain(DomainError::Unavailable(_)) | CoreError::Timeout
        )
    }

    pub(crate) fn not_found(what: Missing) -> Self {
        Self::Domain(DomainError::NotFound(what))
    }
}

/// Why the operator's SIM-swap answer is missing (the adapter's failures, as the
/// core counts and logs them).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SimSwapError {
    #[error("no answer within the time-out")]
    Timeout,
    #[error("the API could not be reached: {0}")]
    Unreachable(String),
    /// An error answer (CAMARA's `status` and `code`), or another non-200 status.
    #[error("the API answered {status} {code}")]
    Refused { status: u16, code: String },
    #[error("the API's answer could not be read: {0}")]
    Malformed(String),
    #[error("no access token: {0}")]
    Token(String),
}

/// Why a token request is refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Spec(&'static str),
    #[error("{0}")]
    Totp(#[from] totp::ParamsError),
    #[error("{0}")]
    Ocra(#[from] ocra::OcraError),
    #[error("the two codes do not match the token anywhere near now")]
    NoResync,
}

/// Why an operator request is refused; each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("an operator's role is admin or helpdesk")]
    Role,
    /// Disabling, resetting or revoking oneself: another administrator must.
    #[error("one cannot {0} oneself")]
    OneSelf(&'static str),
    /// A password change whose current password is wrong.
    #[error("the current password is wrong")]
    CurrentPassword,
}

/// Why a two-person step is refused.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error(transparent)]
    NotApprover(#[from] otpgw_rules::approvals::NotApprover),
    #[error("the proposal was decided already")]
    Decided,
    #[error("the proposal has expired")]
    Expired,
    #[error("only the proposer may withdraw a proposal")]
    NotProposer,
    /// Approved, but the action itself was refused at that time.
    #[error("approved, but the action was refused: {0}")]
    ActionRefused(Box<CoreError>),
}
