//! What the core and its store hand each other: a card, a code's record, an audit
//! event, an API key, a token. Plain data; a full card number, a code or a token's
//! secret in clear is never among it (cards carry keyed hashes, tokens a sealed
//! secret).

use crate::tokens::{Hash, TokenKind, TokenSource, TokenState};
use crate::vocab::{CardStatus, CodeState, Delivery, Role, Verdict};

/// An enrolled card. The hashes are for the core's rules; views show none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub id: i64,
    pub last4: String,
    pub msisdn: String,
    pub status: CardStatus,
    pub failures: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// When a timed lock ends by itself (epoch ms); `None` when the card is not
    /// locked or only re-activation ends its lock.
    pub locked_until: Option<i64>,
    /// The bank set an ePIN for this card: verify must carry it.
    pub has_epin: bool,
    /// HMAC(pan_key, PAN).
    pub pan_hash: String,
    /// The ePIN's Argon2id hash.
    pub epin_hash: Option<String>,
    /// HMAC of the last 6 digits (two cards of one phone may share the last 4).
    pub last6_hash: String,
    /// When the phone number last changed (epoch ms), if it ever did.
    pub phone_changed_at: Option<i64>,
    /// When the card was closed (status `closed`), if it was.
    pub closed_at: Option<i64>,
    /// For the closed record of a reissued card's old number: the card (same
    /// customer, new number) that replaced it.
    pub replaced_by: Option<i64>,
    /// The customer's language for what is sent unasked; `None`: the service's.
    pub language: Option<crate::vocab::Language>,
}

impl Card {
    /// The card as it stands at `now`: a timed lock whose time is up has ended, even
    /// before a write found it and recorded that.
    pub fn as_of(mut self, now: i64) -> Self {
        if self.status == CardStatus::Locked && self.locked_until.is_some_and(|u| u <= now) {
            self.status = CardStatus::Active;
            self.failures = 0;
            self.locked_until = None;
        }
        self
    }
}

/// A code as the back office may see it: where and how it went, never the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub id: i64,
    pub card_id: i64,
    pub channel: String,
    pub peer: String,
    pub state: CodeState,
    pub delivery: Option<Delivery>,
    pub route: Option<String>,
    pub connection: Option<String>,
    pub message_id: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub submitted_at: Option<i64>,
    pub delivery_at: Option<i64>,
    pub used_at: Option<i64>,
}

/// One entry of the append-only audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: i64,
    pub card_id: Option<i64>,
    pub kind: String,
    pub actor: String,
    pub detail: serde_json::Value,
    pub at: i64,
}

/// The API key behind a request: who may do what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub role: Role,
}

impl ApiKey {
    /// How the audit trail names this key's holder.
    pub fn actor(&self) -> String {
        format!("apikey:{}", self.id)
    }
}

/// Who a console session belongs to: an API key (machines, and clerks until
/// they have operators) or a local operator, named in the audit as `operator:NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Key(ApiKey),
    Operator { id: i64, name: String, role: Role },
}

impl Who {
    pub fn role(&self) -> Role {
        match self {
            Who::Key(key) => key.role,
            Who::Operator { role, .. } => *role,
        }
    }

    /// How the audit trail names this person or key.
    pub fn actor(&self) -> String {
        match self {
            Who::Key(key) => key.actor(),
            Who::Operator { name, .. } => format!("operator:{name}"),
        }
    }
}

/// An API key as an administrator may see it: never the key, never its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: i64,
    pub role: Role,
    pub label: Option<String>,
    pub created_at: i64,
    /// When it was revoked; a revoked key is refused everywhere at once.
    pub revoked_at: Option<i64>,
}

/// One verify answer about a card, as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationEntry {
    /// Who asked (`apikey:N`).
    pub actor: String,
    pub request_id: String,
    pub verdict: Verdict,
    /// Attempts left before the lock after this answer (rejections only).
    pub attempts_left: Option<i64>,
    /// Whether this answer counted a failure toward the lock; `None` for answers
    /// recorded before the gateway said.
    pub counted: Option<bool>,
    pub at: i64,
}

impl VerificationEntry {
    /// The entry a `verified` audit event records; `None` for any other event, or
    /// one whose result does not parse.
    pub fn from_event(e: &Event) -> Option<Self> {
        if e.kind != "verified" {
            return None;
        }
        let d = &e.detail;
        let verdict = match (d["result"].as_str()?, d["reason"].as_str()) {
            ("approved", _) => Verdict::Approved,
            ("rejected", Some(r)) => Verdict::Rejected(crate::vocab::Reason::parse(r)?),
            _ => return None,
        };
        Some(Self {
            actor: e.actor.clone(),
            request_id: d["request_id"].as_str().unwrap_or_default().to_owned(),
            verdict,
            attempts_left: d["attempts_left"].as_i64(),
            counted: d["counted"].as_bool(),
            at: e.at,
        })
    }
}

/// A token as the back office sees it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: i64,
    pub card_id: i64,
    pub kind: TokenKind,
    pub source: TokenSource,
    pub serial: Option<String>,
    pub algorithm: Hash,
    pub digits: i64,
    /// Seconds per time step; 0 for an OCRA suite without one.
    pub period: i64,
    /// The OCRA suite, for an OCRA token.
    pub suite: Option<String>,
    pub state: TokenState,
    /// Steps the token's clock runs from the gateway's, as last seen.
    pub drift: i64,
    /// A pending token's activation deadline (epoch ms).
    pub activation_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
}

/// A token with what only the core may use: its row's `uid` (the sealing's
/// associated data), the sealed secret and the replay state.
#[derive(Clone)]
pub struct TokenRecord {
    pub token: Token,
    pub uid: String,
    pub sealed: Vec<u8>,
    pub last_step: Option<i64>,
    pub last_txn_hash: Option<String>,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}
