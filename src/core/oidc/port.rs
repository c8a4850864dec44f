//! The single sign-on's ports: the identity provider (an OpenID Connect client,
//! `src/oidc/` in start-up code's hands, so the core names no HTTP library) and
//! the store of sign-ins waiting for their callback.

use async_trait::async_trait;

use crate::core::DomainError;

/// A sign-in sent to the identity provider: what its callback is checked with.
/// Every field is a secret of this one sign-in; none is printed.
#[derive(Clone)]
pub struct OidcLogin {
    /// Must come back as the callback's `state`.
    pub state: String,
    /// Must be the ID token's `nonce`.
    pub nonce: String,
    /// Proves to the token endpoint that the code is redeemed by who asked (PKCE).
    pub pkce_verifier: String,
    pub created_at: i64,
}

crate::telemetry::debug_only!(OidcLogin { created_at });

/// Where to send the browser, and the sign-in to keep until it comes back.
pub struct Authorization {
    pub url: String,
    pub login: OidcLogin,
}

crate::telemetry::debug_only!(Authorization { login });

/// Who the identity provider says signed in, from a checked ID token (and, for
/// claims it lacks, the userinfo endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    /// `name`, else `preferred_username`.
    pub name: Option<String>,
    /// The values of the configured roles claim (a string is one value).
    pub roles: Vec<String>,
}

/// Why the identity provider's answer was not taken. The words are fixed, so an
/// audit event or a log line never carries a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdpError {
    /// The ID token failed a check: `audience`, `expired`, `signature`, `issuer`,
    /// `nonce`, `missing` (no ID token) or `malformed`.
    #[error("the ID token was refused: {0}")]
    Token(&'static str),
    /// The token endpoint refused the code (used, expired, or not ours).
    #[error("the identity provider refused the code")]
    Code,
    /// Discovery, the JWKS, the token or userinfo endpoint could not be reached or
    /// answered nonsense.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// A new sign-in: the authorization URL (code flow, PKCE S256, fresh `state`
    /// and `nonce`) and what to keep for the callback.
    async fn authorize(&self) -> Result<Authorization, IdpError>;
    /// Redeems the code with the sign-in's PKCE verifier and checks the ID token
    /// (signature, issuer, audience, expiry, nonce).
    async fn redeem(&self, code: &str, login: &OidcLogin) -> Result<Identity, IdpError>;
    /// The identity provider's end-session URL (RP-initiated logout), if its
    /// discovery names one, leading back to the console's sign-in page.
    async fn end_session_url(&self) -> Option<String>;
}

#[async_trait]
pub trait OidcLoginStore: Send + Sync {
    /// Keeps a sign-in under the hash of the id its browser's cookie holds.
    async fn create_oidc_login(
        &self,
        id_hash: &str,
        login: &OidcLogin,
        expires_at: i64,
    ) -> Result<(), DomainError>;
    /// Removes and returns the sign-in, if it has not expired: a sign-in is taken
    /// once.
    async fn take_oidc_login(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<OidcLogin>, DomainError>;
}
