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

/// Schemas of strings for vocabulary enums of the rules crate, each named as its
/// enum and described by its doc comment (lines joined as written).
macro_rules! names_schema {
    ($($(#[doc = $doc:literal])* $name:ident: $rules:ty;)*) => {$(
        $(#[doc = $doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let names = <$rules>::ALL.iter().map(|v| v.as_str());
                let doc: &[&str] = &[$($doc),*];
                let description = (!doc.is_empty())
                    .then(|| doc.iter().map(|line| line.trim()).collect::<Vec<_>>().join("\n"));
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(names))
                    .description(description)
                    .into()
            }
        }

        impl ToSchema for $name {}
    )*};
}

names_schema! {
    CardStatus: vocab::CardStatus;
    /// Where a code's message stands on its way to the customer's phone.
    Delivery: vocab::Delivery;
    /// A code's life: live until used, superseded by a newer one, expired, or voided
    /// (`failed`) when its card locked or was suspended.
    CodeState: vocab::CodeState;
    /// What an API key may do.
    Role: vocab::Role;
    /// A customer's language.
    Language: vocab::Language;
    /// What a token computes.
    TokenKind: otpgw_rules::tokens::TokenKind;
    /// Where a token's secret came from.
    TokenSource: otpgw_rules::tokens::TokenSource;
    /// A token's life: `pending` (waiting for its two-part activation), `active`,
    /// `suspended` (reversible), `revoked` (final; the secret is wiped), `locked` (too
    /// many wrong activation codes; replace it).
    TokenState: otpgw_rules::tokens::TokenState;
    /// The HMAC hash of a token. SHA-1 is what most apps and hardware tokens ship
    /// with (RFC 6238's default); SHA-256/512 are the RFC's options.
    Hash: otpgw_rules::tokens::Hash;
}

/// A view whose fields are copies of the record's fields of the same names (or of
/// the one named after `=`): the struct and its `From` stated once, so a field of
/// the view cannot be left out of the copy.
macro_rules! copied_view {
    (
        $(#[$meta:meta])*
        pub struct $view:ident from $record:ty {
            $($(#[$field_meta:meta])* $vis:vis $field:ident: $ty:ty $(= $source:ident)?,)*
        }
    ) => {
        #[derive(Debug, Clone, Serialize, ToSchema)]
        $(#[$meta])*
        pub struct $view {
            $($(#[$field_meta])* $vis $field: $ty,)*
        }

        impl From<$record> for $view {
            fn from(r: $record) -> Self {
                Self { $($field: copied_view!(@source r $field $($source)?),)* }
            }
        }
    };
    (@source $r:ident $field:ident) => { $r.$field };
    (@source $r:ident $field:ident $source:ident) => { $r.$source };
}

copied_view! {
    /// A card as the back office sees it. The PAN hash stays inside the gateway.
    #[schema(as = Card)]
    pub struct CardView from records::Card {
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
        /// When the phone number last changed (epoch ms); null if it never did.
        pub phone_changed_at: Option<i64>,
        /// When the card was closed (status `closed`, epoch ms); null while open.
        pub closed_at: Option<i64>,
        /// For the closed record of a reissued card's old number: the card that
        /// replaced it (same customer and id history, new number).
        pub replaced_by: Option<i64>,
        /// The customer's language for what is sent to the phone unasked (`fa`,
        /// `en`); null: the service's.
        #[schema(value_type = Option<Language>)]
        pub language: Option<vocab::Language>,
    }
}

copied_view! {
    #[schema(as = Event)]
    pub struct EventView from records::Event {
        pub id: i64,
        pub card_id: Option<i64>,
        pub kind: String,
        pub actor: String,
        #[schema(value_type = Object)]
        pub detail: serde_json::Value,
        pub at: i64,
    }
}

copied_view! {
    /// An API key as an administrator may see it: never the key, never its hash.
    #[schema(as = ApiKeyInfo)]
    pub struct ApiKeyView from records::ApiKeyInfo {
        pub id: i64,
        #[schema(value_type = Role)]
        pub role: vocab::Role,
        pub label: Option<String>,
        pub created_at: i64,
        /// When it was revoked; a revoked key is refused everywhere at once.
        pub revoked_at: Option<i64>,
    }
}

copied_view! {
    /// A token as the back office sees it: never its secret.
    #[schema(as = Token)]
    pub struct TokenView from records::Token {
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
}

copied_view! {
    /// A code as the back office sees it.
    pub struct CodeView from records::CodeRecord {
        id: i64,
        card_id: i64,
        /// `sms` or `ussd`.
        channel: String,
        /// Who asked: an SMPP system_id, `smsc:<connection>`, or `api:<key id>`.
        requested_by: String = peer,
        #[schema(value_type = String, example = "live")]
        state: vocab::CodeState,
        #[schema(value_type = Option<String>, example = "delivered")]
        delivery: Option<vocab::Delivery>,
        /// The MSISDN prefix route ("" = default route), for codes sent in client mode.
        route: Option<String>,
        /// The operator connection that took it.
        connection: Option<String>,
        /// The SMSC's id for the message.
        message_id: Option<String>,
        issued_at: i64,
        expires_at: i64,
        submitted_at: Option<i64>,
        delivery_at: Option<i64>,
        used_at: Option<i64>,
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

names_schema! { ActivationState: crate::core::ActivationState; }

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

names_schema! { Phase: crate::core::links::Phase; }

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

crate::core::links::connection_status! {
    #[derive(Debug, Clone, Serialize, ToSchema)]
    #[schema(as = ConnectionStatus)]
    pub struct ConnectionView {
        #[schema(value_type = Phase)]
        state: &'static str,
        sessions: SessionView,
    }
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
            unmatched_receipts: c.unmatched_receipts,
            untracked: c.untracked,
        }
    }
}
