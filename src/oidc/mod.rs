//! The console's OpenID Connect client: the core's `IdentityProvider` port over the
//! `openidconnect` crate (authorization code flow with PKCE S256, `state` and
//! `nonce`; its ID token verifier checks signature, issuer, audience, expiry and
//! nonce). Start-up code (`app.rs`) builds it when `[console.oidc]` is set.
//!
//! Discovery (and with it the JWKS) is read at the first sign-in and kept in
//! memory; a failed discovery is tried again at the next. An ID token signed with a
//! key the kept JWKS lacks (the provider rotated its keys) makes us fetch the JWKS
//! again, at most once a minute, so a stream of bad tokens cannot make us hammer
//! the provider. Every request to the provider has a 5 s deadline and follows no
//! redirect.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, IdToken, IdTokenClaims, IssuerUrl, JsonWebKeySet, LogoutRequest, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, RequestTokenError, Scope, SignatureVerificationError,
    SubjectIdentifier, TokenResponse,
};
use serde::{Deserialize, Serialize};

use crate::config::OidcSettings;
use crate::core::oidc::{Authorization, Identity, IdentityProvider, IdpError, OidcLogin};

/// Every request to the identity provider answers within this, or fails.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The JWKS is fetched again for an unknown key at most this often.
const JWKS_REFETCH: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("console.oidc: {0}")]
    Invalid(String),
    #[error("console.oidc: cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Every claim besides the standard ones, so that the roles claim can be any name.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OtherClaims {
    #[serde(flatten)]
    all: HashMap<String, serde_json::Value>,
}

impl AdditionalClaims for OtherClaims {}

type Token = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Metadata = ProviderMetadataWithLogout;

pub struct OidcClient {
    settings: OidcSettings,
    redirect: RedirectUrl,
    post_logout: PostLogoutRedirectUrl,
    http: reqwest::Client,
    /// The discovery document with its JWKS, once read.
    metadata: tokio::sync::Mutex<Option<Metadata>>,
    /// When the JWKS was last fetched for an unknown key.
    jwks_refetched: std::sync::Mutex<Option<Instant>>,
}

impl OidcClient {
    /// The client for `settings`, the console reached at `public_base`.
    pub fn new(settings: &OidcSettings, public_base: &str) -> Result<Arc<Self>, SetupError> {
        let invalid = |what: &str| SetupError::Invalid(format!("{what} is not a valid URL"));
        let redirect = RedirectUrl::new(format!("{public_base}/console/oidc/callback"))
            .map_err(|_| invalid("the redirect URI"))?;
        let post_logout = PostLogoutRedirectUrl::new(format!("{public_base}/console/signin"))
            .map_err(|_| invalid("the post-logout URI"))?;
        IssuerUrl::new(settings.issuer.clone()).map_err(|_| invalid("issuer"))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .build()?;
        Ok(Arc::new(Self {
            settings: settings.clone(),
            redirect,
            post_logout,
            http,
            metadata: tokio::sync::Mutex::new(None),
            jwks_refetched: std::sync::Mutex::new(None),
        }))
    }

    /// The kept discovery document, read now if it is not kept yet.
    async fn metadata(&self) -> Result<Metadata, IdpError> {
        let mut kept = self.metadata.lock().await;
        if let Some(m) = &*kept {
            return Ok(m.clone());
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|_| IdpError::Unavailable("issuer is not a URL".into()))?;
        let m = Metadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| IdpError::Unavailable(format!("discovery: {e}")))?;
        *kept = Some(m.clone());
        Ok(m)
    }

    /// Fetches the JWKS again, unless that was done within the last minute.
    async fn refetch_jwks(&self, meta: &Metadata) -> Result<Option<Metadata>, IdpError> {
        {
            let mut last = self
                .jwks_refetched
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < JWKS_REFETCH) {
                return Ok(None);
            }
            *last = Some(Instant::now());
        }
        let jwks = JsonWebKeySet::fetch_async(meta.jwks_uri(), &self.http)
            .await
            .map_err(|e| IdpError::Unavailable(format!("jwks: {e}")))?;
        let fresh = meta.clone().set_jwks(jwks);
        *self.metadata.lock().await = Some(fresh.clone());
        tracing::info!("oidc: the identity provider's keys were fetched again");
        Ok(Some(fresh))
    }

    fn client_id(&self) -> ClientId {
        ClientId::new(self.settings.client_id.clone())
    }

    fn client_secret(&self) -> ClientSecret {
        ClientSecret::new(self.settings.client_secret.expose().to_owned())
    }

    /// Reads the claims, the roles claim's values, and (when the ID token lacks
    /// them) the userinfo endpoint's.
    fn identity(&self, claims: &IdTokenClaims<OtherClaims, CoreGenderClaim>) -> Identity {
        Identity {
            subject: claims.subject().to_string(),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string())
                .or_else(|| claims.preferred_username().map(|u| u.to_string())),
            roles: claims
                .additional_claims()
                .all
                .get(&self.settings.roles_claim)
                .map(values)
                .unwrap_or_default(),
        }
    }
}

/// A claim's values: a string is one, an array's strings are each one.
fn values(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// A failed check as a fixed word (the crate's messages may quote claim values).
fn refused(e: &ClaimsVerificationError) -> IdpError {
    IdpError::Token(match e {
        ClaimsVerificationError::Expired(_) => "expired",
        ClaimsVerificationError::InvalidAudience(_) => "audience",
        ClaimsVerificationError::InvalidIssuer(_) => "issuer",
        ClaimsVerificationError::InvalidNonce(_) => "nonce",
        ClaimsVerificationError::SignatureVerification(_) => "signature",
        _ => "malformed",
    })
}

fn unknown_key(e: &ClaimsVerificationError) -> bool {
    matches!(
        e,
        ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)
    )
}

#[async_trait]
impl IdentityProvider for OidcClient {
    async fn authorize(&self) -> Result<Authorization, IdpError> {
        let meta = self.metadata().await?;
        let client =
            CoreClient::from_provider_metadata(meta, self.client_id(), Some(self.client_secret()))
                .set_redirect_uri(self.redirect.clone());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        // `openid` is always asked by the crate; the others as configured.
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Authorization {
            url: url.to_string(),
            login: OidcLogin {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                created_at: 0,
            },
        })
    }

    async fn redeem(&self, code: &str, login: &OidcLogin) -> Result<Identity, IdpError> {
        let mut meta = self.metadata().await?;
        let client = CoreClient::from_provider_metadata(
            meta.clone(),
            self.client_id(),
            Some(self.client_secret()),
        )
        .set_redirect_uri(self.redirect.clone());
        let exchange = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| IdpError::Unavailable("no token endpoint in discovery".into()))?;
        // The messages name no token: a parse failure's body is dropped.
        let response = exchange
            .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(_) => IdpError::Code,
                RequestTokenError::Request(e) => IdpError::Unavailable(format!("token: {e}")),
                RequestTokenError::Parse(..) => IdpError::Token("malformed"),
                RequestTokenError::Other(e) => IdpError::Unavailable(format!("token: {e}")),
            })?;
        let raw = response.id_token().ok_or(IdpError::Token("missing"))?;
        let token = Token::from_str(&raw.to_string()).map_err(|_| IdpError::Token("malformed"))?;
        let nonce = Nonce::new(login.nonce.clone());
        let mut identity = None;
        for attempt in 0..2 {
            let checker = CoreClient::from_provider_metadata(
                meta.clone(),
                self.client_id(),
                Some(self.client_secret()),
            );
            let verifier = checker.id_token_verifier();
            match token.claims(&verifier, &nonce) {
                Ok(claims) => {
                    identity = Some(self.identity(claims));
                    break;
                }
                Err(e) if attempt == 0 && unknown_key(&e) => {
                    match self.refetch_jwks(&meta).await? {
                        Some(fresh) => meta = fresh,
                        None => return Err(refused(&e)),
                    }
                }
                Err(e) => return Err(refused(&e)),
            }
        }
        let mut identity = identity.ok_or(IdpError::Token("signature"))?;
        if (identity.roles.is_empty() || identity.name.is_none())
            && client.user_info_url().is_some()
        {
            let subject = SubjectIdentifier::new(identity.subject.clone());
            let info = client
                .user_info(response.access_token().clone(), Some(subject))
                .map_err(|_| IdpError::Unavailable("no userinfo endpoint".into()))?
                .request_async::<OtherClaims, _, CoreGenderClaim>(&self.http)
                .await
                .map_err(|e| IdpError::Unavailable(format!("userinfo: {e}")))?;
            if identity.roles.is_empty() {
                identity.roles = info
                    .additional_claims()
                    .all
                    .get(&self.settings.roles_claim)
                    .map(values)
                    .unwrap_or_default();
            }
            if identity.name.is_none() {
                identity.name = info
                    .name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.to_string())
                    .or_else(|| info.preferred_username().map(|u| u.to_string()));
            }
        }
        Ok(identity)
    }

    async fn end_session_url(&self) -> Option<String> {
        let meta = self.metadata().await.ok()?;
        let endpoint = meta.additional_metadata().end_session_endpoint.clone()?;
        Some(
            LogoutRequest::from(endpoint)
                .set_client_id(self.client_id())
                .set_post_logout_redirect_uri(self.post_logout.clone())
                .http_get_url()
                .to_string(),
        )
    }
}
