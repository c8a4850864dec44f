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
}

impl CardStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Locked => "locked",
            Self::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "locked" => Some(Self::Locked),
            "suspended" => Some(Self::Suspended),
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

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Back office: enroll, look up, suspend, re-activate cards.
    Admin,
    /// Payment switch: verify codes.
    Verifier,
    /// USSD aggregator over HTTP.
    Ussd,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Verifier => "verifier",
            Self::Ussd => "ussd",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "verifier" => Some(Self::Verifier),
            "ussd" => Some(Self::Ussd),
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
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Expired => "expired",
            Self::Used => "used",
            Self::Locked => "locked",
            Self::NotEnrolled => "not_enrolled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "invalid" => Some(Self::Invalid),
            "expired" => Some(Self::Expired),
            "used" => Some(Self::Used),
            "locked" => Some(Self::Locked),
            "not_enrolled" => Some(Self::NotEnrolled),
            _ => None,
        }
    }

    /// ISO 8583 (1987) field 39 codes a card switch already maps to customer messages.
    pub fn response_code(self) -> &'static str {
        match self {
            Self::Invalid => "55",     // incorrect PIN
            Self::Expired => "54",     // expired
            Self::Used => "94",        // duplicate transmission
            Self::Locked => "75",      // allowable number of PIN tries exceeded
            Self::NotEnrolled => "56", // no card record
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
