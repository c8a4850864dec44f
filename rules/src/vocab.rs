//! The vocabulary shared by the core, the store and the transports: card status,
//! channels, roles, languages, verification outcomes and their ISO 8583-style
//! response codes. Plain data, no behaviour beyond naming.

use serde::{Deserialize, Serialize};

/// `as_str` (the stored and wire name), `parse` (its inverse) and `ALL` for a
/// vocabulary enum: one list per enum, so the database, the JSON API, the OpenAPI
/// document and the CLI cannot disagree on the names.
#[macro_export]
macro_rules! named {
    ($t:ty { $($v:ident = $s:literal),* $(,)? }) => {
        impl $t {
            pub const ALL: &'static [$t] = &[$(Self::$v),*];
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}

named!(CardStatus { Active = "active", Locked = "locked", Suspended = "suspended", Pending = "pending", Closed = "closed" });
named!(Channel { Sms = "sms", Ussd = "ussd" });
named!(Delivery { Queued = "queued", Submitted = "submitted", Delivered = "delivered", Undelivered = "undelivered", Expired = "expired" });
named!(CodeState { Live = "live", Used = "used", Superseded = "superseded", Expired = "expired", Failed = "failed" });
named!(Role { Admin = "admin", Verifier = "verifier", Ussd = "ussd", Helpdesk = "helpdesk" });
named!(Language { Fa = "fa", En = "en" });
named!(Reason {
    Invalid = "invalid",
    Expired = "expired",
    Used = "used",
    Locked = "locked",
    NotEnrolled = "not_enrolled",
    TransactionMismatch = "transaction_mismatch",
    AmountExceedsCap = "amount_exceeds_cap",
    TransactionRequired = "transaction_required",
    NotActivated = "not_activated",
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardStatus {
    Active,
    Locked,
    Suspended,
    /// Enrolled under `[policy] require_activation`; waits for the activation code
    /// sent to its phone.
    Pending,
    /// Closed by the bank (or replaced by a reissued card): no code, no
    /// verification, no change; its history is kept and its number may be enrolled
    /// again as a new card.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Sms,
    Ussd,
}

/// Where a code's message stands on its way to the customer's phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// A code's life: live until used, superseded by a newer one, expired, or voided
/// (`failed`) when its card locked or was suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeState {
    Live,
    Used,
    Superseded,
    Expired,
    Failed,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Whether a rejection for this reason tells the switch how many attempts are
    /// left: the ones that count a failure (or would, with a live code), and a lock.
    pub fn carries_attempts(self) -> bool {
        matches!(
            self,
            Self::Invalid | Self::TransactionMismatch | Self::AmountExceedsCap | Self::Locked
        )
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

/// A customer's language: replies, USSD screens and the console speak it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Fa,
    En,
}

/// ASCII digits written in Persian (Extended Arabic-Indic) digits, the rest as is.
pub fn to_persian_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_u32(0x06F0 + d).unwrap_or(c),
            None => c,
        })
        .collect()
}
