//! The vocabulary shared by the core, the store and the transports: card status,
//! channels, roles, verification outcomes and their ISO 8583-style response codes.
//! Plain data, no behaviour beyond naming.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CardStatus {
    Active,
    Locked,
    Suspended,
    /// Enrolled under `[policy] require_activation`; waits for the activation code
    /// sent to its phone.
    Pending,
}

impl CardStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Locked => "locked",
            Self::Suspended => "suspended",
            Self::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "locked" => Some(Self::Locked),
            "suspended" => Some(Self::Suspended),
            "pending" => Some(Self::Pending),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Ussd,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Ussd => "ussd",
        }
    }
}

/// Where a code's message stands on its way to the customer's phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// Waiting for an operator connection.
    Queued,
    /// Accepted by the SMSC (or the listener's peer).
    Submitted,
    /// The handset has it (a receipt said so).
    Delivered,
    /// Refused, undeliverable, or not sent before the code expired.
    Undelivered,
    /// The SMSC gave up on it (its validity ran out).
    Expired,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Submitted => "submitted",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "submitted" => Self::Submitted,
            "delivered" => Self::Delivered,
            "undelivered" => Self::Undelivered,
            "expired" => Self::Expired,
            _ => return None,
        })
    }
}

/// A code's life: live until used, superseded by a newer one, expired, or voided
/// (`failed`) when its card locked or was suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CodeState {
    Live,
    Used,
    Superseded,
    Expired,
    Failed,
}

impl CodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Used => "used",
            Self::Superseded => "superseded",
            Self::Expired => "expired",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "live" => Self::Live,
            "used" => Self::Used,
            "superseded" => Self::Superseded,
            "expired" => Self::Expired,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// What an API key may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Back office: enroll, look up, suspend, re-activate cards.
    Admin,
    /// Payment switch: verify codes, and push codes to a card's phone (the same
    /// system asks for a code on the payment page and verifies it).
    Verifier,
    /// USSD aggregator over HTTP.
    Ussd,
    /// Help-desk clerk in the console: look cards up and re-activate locked ones.
    /// Nothing else, and no access to the JSON API.
    Helpdesk,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Verifier => "verifier",
            Self::Ussd => "ussd",
            Self::Helpdesk => "helpdesk",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "verifier" => Some(Self::Verifier),
            "ussd" => Some(Self::Ussd),
            "helpdesk" => Some(Self::Helpdesk),
            _ => None,
        }
    }
}

/// Why a verification was rejected. The switch learns this and nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Invalid,
    Expired,
    Used,
    Locked,
    NotEnrolled,
    /// The right code, but a different type, amount, currency or payee than the
    /// payment it was issued for. Counts as a failure.
    TransactionMismatch,
    /// The amount is above the cap the customer set when asking for the code.
    /// Counts as a failure.
    AmountExceedsCap,
    /// `[policy] require_transaction`: this code is bound to no payment (a customer
    /// asked for it by SMS or USSD), or it carries a cap and the verify named no
    /// amount. Not counted: nobody guessed anything.
    TransactionRequired,
    /// The card waits for activation from the customer's phone.
    NotActivated,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Self::Invalid,
        Self::Expired,
        Self::Used,
        Self::Locked,
        Self::NotEnrolled,
        Self::TransactionMismatch,
        Self::AmountExceedsCap,
        Self::TransactionRequired,
        Self::NotActivated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Expired => "expired",
            Self::Used => "used",
            Self::Locked => "locked",
            Self::NotEnrolled => "not_enrolled",
            Self::TransactionMismatch => "transaction_mismatch",
            Self::AmountExceedsCap => "amount_exceeds_cap",
            Self::TransactionRequired => "transaction_required",
            Self::NotActivated => "not_activated",
        }
    }

    /// Whether a rejection for this reason tells the switch how many attempts are
    /// left: the ones that count a failure (or would, with a live code), and a lock.
    pub fn carries_attempts(self) -> bool {
        matches!(
            self,
            Self::Invalid | Self::TransactionMismatch | Self::AmountExceedsCap | Self::Locked
        )
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// ISO 8583 (1987) field 39 codes a card switch already maps to customer messages.
    pub fn response_code(self) -> &'static str {
        match self {
            Self::Invalid => "55",             // incorrect PIN
            Self::Expired => "54",             // expired
            Self::Used => "94",                // duplicate transmission
            Self::Locked => "75",              // allowable number of PIN tries exceeded
            Self::NotEnrolled => "56",         // no card record
            Self::TransactionMismatch => "12", // invalid transaction
            Self::AmountExceedsCap => "61",    // exceeds withdrawal amount limit
            Self::TransactionRequired => "30", // format error
            Self::NotActivated => "62",        // restricted card
        }
    }
}

/// The answer to one verify request, as stored for `request_id` retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approved,
    Rejected(Reason),
}

impl Verdict {
    pub const APPROVED_CODE: &'static str = "00";

    pub fn response_code(self) -> &'static str {
        match self {
            Self::Approved => Self::APPROVED_CODE,
            Self::Rejected(r) => r.response_code(),
        }
    }
}
