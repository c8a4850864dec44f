//! The JSON shapes the API answers with, and their OpenAPI schemas. The rules and
//! the core hand plain values; this module decides what of them a caller sees
//! (never a card number's hash, a code or a secret) and how it is spelled.
//!
//! Vocabulary enums keep their one list of names in `otpgw_rules` (`ALL`,
//! `as_str`); the schemas here are built from those lists, so the document and the
//! answers cannot drift apart.

use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use otpgw_rules::records;
use otpgw_rules::vocab;

/// A schema of strings for a vocabulary enum of the rules crate, named as the enum,
/// with the enum's description when it has one.
macro_rules! names_schema {
    ($name:ident, $rules:ty) => {
        names_schema!($name, $rules, None::<&str>);
    };
    ($name:ident, $rules:ty, $doc:literal) => {
        names_schema!($name, $rules, Some($doc));
    };
    ($name:ident, $rules:ty, $doc:expr) => {
        /// The OpenAPI schema of the vocabulary enum of the same name.
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let names = <$rules>::ALL.iter().map(|v| v.as_str());
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(names))
                    .description($doc)
                    .into()
            }
        }

        impl ToSchema for $name {}
    };
}

names_schema!(CardStatus, vocab::CardStatus);
names_schema!(
    Delivery,
    vocab::Delivery,
    "Where a code's message stands on its way to the customer's phone."
);
names_schema!(
    CodeState,
    vocab::CodeState,
    "A code's life: live until used, superseded by a newer one, expired, or voided\n(`failed`) when its card locked or was suspended."
);
names_schema!(Role, vocab::Role, "What an API key may do.");
names_schema!(
    TokenKind,
    otpgw_rules::tokens::TokenKind,
    "What a token computes."
);
names_schema!(
    TokenSource,
    otpgw_rules::tokens::TokenSource,
    "Where a token's secret came from."
);
names_schema!(
    TokenState,
    otpgw_rules::tokens::TokenState,
    "A token's life: `pending` (waiting for its two-part activation), `active`,\n`suspended` (reversible), `revoked` (final; the secret is wiped), `locked` (too\nmany wrong activation codes; replace it)."
);
names_schema!(
    Hash,
    otpgw_rules::tokens::Hash,
    "The HMAC hash of a token. SHA-1 is what most apps and hardware tokens ship\nwith (RFC 6238's default); SHA-256/512 are the RFC's options."
);

/// A card as the back office sees it. The PAN hash stays inside the gateway.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Card)]
pub struct CardView {
    pub id: i64,
    pub last4: String,
    pub msisdn: String,
    #[schema(value_type = CardStatus)]
    pub status: vocab::CardStatus,
    pub failures: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// When a timed lock ends by itself (epoch ms); null when the card is not
    /// locked or only re-activation ends its lock.
    pub locked_until: Option<i64>,
    /// The bank set an ePIN for this card: verify must carry it.
    pub has_epin: bool,
}

impl From<records::Card> for CardView {
    fn from(c: records::Card) -> Self {
        Self {
            id: c.id,
            last4: c.last4,
            msisdn: c.msisdn,
            status: c.status,
            failures: c.failures,
            created_at: c.created_at,
            updated_at: c.updated_at,
            locked_until: c.locked_until,
            has_epin: c.has_epin,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventView {
    pub id: i64,
    pub card_id: Option<i64>,
    pub kind: String,
    pub actor: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub at: i64,
}

impl From<records::Event> for EventView {
    fn from(e: records::Event) -> Self {
        let records::Event {
            id,
            card_id,
            kind,
            actor,
            detail,
            at,
        } = e;
        Self {
            id,
            card_id,
            kind,
            actor,
            detail,
            at,
        }
    }
}

/// An API key as an administrator may see it: never the key, never its hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ApiKeyInfo)]
pub struct ApiKeyView {
    pub id: i64,
    #[schema(value_type = Role)]
    pub role: vocab::Role,
    pub label: Option<String>,
    pub created_at: i64,
    /// When it was revoked; a revoked key is refused everywhere at once.
    pub revoked_at: Option<i64>,
}

impl From<records::ApiKeyInfo> for ApiKeyView {
    fn from(k: records::ApiKeyInfo) -> Self {
        Self {
            id: k.id,
            role: k.role,
            label: k.label,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A token as the back office sees it: never its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Token)]
pub struct TokenView {
    pub id: i64,
    pub card_id: i64,
    #[schema(value_type = TokenKind)]
    pub kind: otpgw_rules::tokens::TokenKind,
    #[schema(value_type = TokenSource)]
    pub source: otpgw_rules::tokens::TokenSource,
    pub serial: Option<String>,
    #[schema(value_type = Hash)]
    pub algorithm: otpgw_rules::tokens::Hash,
    pub digits: i64,
    /// Seconds per time step; 0 for an OCRA suite without one.
    pub period: i64,
    /// The OCRA suite, for an OCRA token.
    pub suite: Option<String>,
    #[schema(value_type = TokenState)]
    pub state: otpgw_rules::tokens::TokenState,
    /// Steps the token's clock runs from the gateway's, as last seen.
    pub drift: i64,
    /// A pending token's activation deadline (epoch ms).
    pub activation_expires_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_used_at: Option<i64>,
}

impl From<records::Token> for TokenView {
    fn from(t: records::Token) -> Self {
        Self {
            id: t.id,
            card_id: t.card_id,
            kind: t.kind,
            source: t.source,
            serial: t.serial,
            algorithm: t.algorithm,
            digits: t.digits,
            period: t.period,
            suite: t.suite,
            state: t.state,
            drift: t.drift,
            activation_expires_at: t.activation_expires_at,
            created_at: t.created_at,
            updated_at: t.updated_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// Whether the activation SMS went out.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[schema(as = ActivationNotice)]
pub struct ActivationNoticeView {
    #[schema(value_type = ActivationState)]
    pub state: &'static str,
    /// Epoch ms after which the code is void.
    pub expires_at: i64,
}

names_schema!(ActivationState, crate::core::ActivationState);

impl From<crate::core::ActivationNotice> for ActivationNoticeView {
    fn from(n: crate::core::ActivationNotice) -> Self {
        Self {
            state: n.state.as_str(),
            expires_at: n.expires_at,
        }
    }
}

/// An enrolled card, and under `[policy] require_activation` what became of its
/// activation code.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Enrolled)]
pub struct EnrolledView {
    #[serde(flatten)]
    pub card: CardView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation: Option<ActivationNoticeView>,
}

impl From<crate::core::Enrolled> for EnrolledView {
    fn from(e: crate::core::Enrolled) -> Self {
        Self {
            card: e.card.into(),
            activation: e.activation.map(Into::into),
        }
    }
}

/// The answer to an enrollment. `activation_part` is the first half of the
/// activation code (the ATM prints it); the second went to the card's phone.
#[derive(Clone, Serialize, ToSchema)]
#[schema(as = EnrolledToken)]
pub struct EnrolledTokenView {
    pub token_id: i64,
    pub token: TokenView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation_part: Option<String>,
    /// Whether the SMS with the second part went out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation: Option<ActivationNoticeView>,
}

impl From<crate::core::EnrolledToken> for EnrolledTokenView {
    fn from(e: crate::core::EnrolledToken) -> Self {
        Self {
            token_id: e.token_id,
            token: e.token.into(),
            activation_part: e.activation_part,
            activation: e.activation.map(Into::into),
        }
    }
}

/// The answer to a successful activation, given once.
#[derive(Clone, Serialize, ToSchema)]
#[schema(as = ActivatedToken)]
pub struct ActivatedTokenView {
    pub token: TokenView,
    /// `otpauth://totp/…` (or `otpauth://ocra/…`): a QR payload for standard
    /// authenticator apps. Carries the secret; never shown again.
    pub otpauth_uri: String,
}

impl From<crate::core::ActivatedToken> for ActivatedTokenView {
    fn from(a: crate::core::ActivatedToken) -> Self {
        Self {
            token: a.token.into(),
            otpauth_uri: a.otpauth_uri,
        }
    }
}

names_schema!(Phase, crate::core::links::Phase);

/// One session's state (a transceiver, or one of a transmitter/receiver pair).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = SessionStatus)]
pub struct SessionView {
    /// `trx`, `tx` or `rx`.
    pub bind: &'static str,
    #[schema(value_type = Phase)]
    pub state: &'static str,
    /// Epoch milliseconds since which it is in this state.
    pub since: i64,
    /// Why the last attempt or session ended, when it did.
    pub last_error: Option<String>,
}

/// A connection as operations see it (`GET /v1/connections`, `otpgw status`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ConnectionStatus)]
pub struct ConnectionView {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub routes: Vec<String>,
    pub priority: u32,
    /// `bound` when every session of it is bound; else the least ready one's state.
    #[schema(value_type = Phase)]
    pub state: &'static str,
    pub since: i64,
    pub sessions: Vec<SessionView>,
    pub window: usize,
    pub window_in_use: usize,
    /// Configured segments per second (0 = not paced).
    pub tps: u32,
    /// Messages waiting for this connection in particular.
    pub queued: usize,
    pub submitted: u64,
    pub throttled: u64,
    pub failed: u64,
    pub receipts: u64,
    pub received: u64,
}

impl From<crate::core::links::ConnectionStatus> for ConnectionView {
    fn from(c: crate::core::links::ConnectionStatus) -> Self {
        Self {
            name: c.name,
            host: c.host,
            port: c.port,
            routes: c.routes,
            priority: c.priority,
            state: c.state.as_str(),
            since: c.since,
            sessions: c
                .sessions
                .into_iter()
                .map(|s| SessionView {
                    bind: s.bind,
                    state: s.state.as_str(),
                    since: s.since,
                    last_error: s.last_error,
                })
                .collect(),
            window: c.window,
            window_in_use: c.window_in_use,
            tps: c.tps,
            queued: c.queued,
            submitted: c.submitted,
            throttled: c.throttled,
            failed: c.failed,
            receipts: c.receipts,
            received: c.received,
        }
    }
}
