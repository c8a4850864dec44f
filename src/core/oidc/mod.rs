//! Single sign-on with the bank's OpenID Connect identity provider: a sign-in is
//! sent away with a fresh `state`, `nonce` and PKCE verifier, kept in the database
//! under the hash of a random id its browser holds in a cookie; the callback takes
//! it (once), compares `state`, has the provider's adapter redeem the code and check
//! the ID token, gives the role from the configured claim, and opens a console
//! session under a new id (`access::open_session`) as `Who::Oidc`.
//!
//! The identity provider is a port (`port.rs`); `src/oidc/` implements it.
//! Refusals after the provider answered (a token that fails a check, a person with
//! no role here) are audited as `console_signin_refused`, never with a token.

pub mod port;

use std::sync::Arc;

use otpgw_rules::codes;
use otpgw_rules::records::Who;
use otpgw_rules::vocab::Role;

use super::access::{open_session, SignedIn};
use super::ports::{AccessStore, AuditStore, NewEvent};
use super::{Clock, CoreError};
use crate::config::OidcSettings;
pub use port::{Authorization, Identity, IdentityProvider, IdpError, OidcLogin, OidcLoginStore};

/// A sign-in not back from the identity provider within 10 minutes is forgotten.
pub const LOGIN_MAX_MS: i64 = 10 * 60 * 1000;

/// A sign-in sent away: the id for the browser's cookie and where to send it.
pub struct Begun {
    pub login_id: String,
    pub url: String,
}

crate::telemetry::debug_only!(Begun { url });

/// What the callback brought, as the console read it from the request.
#[derive(Default)]
pub struct Callback<'a> {
    /// The `otpgw_oidc` cookie's value.
    pub login_id: Option<&'a str>,
    pub state: Option<&'a str>,
    pub code: Option<&'a str>,
    /// The provider's `error` (the person cancelled, or it refused).
    pub error: Option<&'a str>,
}

/// Why a callback did not sign anyone in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No sign-in under the cookie (none, expired, or already used), or the
    /// `state` is not its own: start again.
    Login,
    /// The provider said no, or its answer did not pass a check.
    Provider,
    /// The person signed in at the provider but no claim value gives a role here.
    NoRole,
}

pub enum Answer {
    SignedIn(SignedIn),
    Refused(Refusal),
}

#[derive(Clone)]
pub struct SingleSignOn(Arc<Inner>);

struct Inner {
    provider: Arc<dyn IdentityProvider>,
    logins: Arc<dyn OidcLoginStore>,
    access: Arc<dyn AccessStore>,
    audit: Arc<dyn AuditStore>,
    settings: OidcSettings,
    clock: Arc<dyn Clock>,
}

impl SingleSignOn {
    pub(super) fn new(
        provider: Arc<dyn IdentityProvider>,
        logins: Arc<dyn OidcLoginStore>,
        access: Arc<dyn AccessStore>,
        audit: Arc<dyn AuditStore>,
        settings: OidcSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self(Arc::new(Inner {
            provider,
            logins,
            access,
            audit,
            settings,
            clock,
        }))
    }

    fn now(&self) -> i64 {
        self.0.clock.now_ms()
    }

    /// Starts a sign-in: kept under a new random id, sent to the provider.
    pub async fn begin(&self) -> Result<Begun, CoreError> {
        let mut auth = self.0.provider.authorize().await.map_err(unavailable)?;
        let now = self.now();
        auth.login.created_at = now;
        let login_id = codes::new_session_token();
        self.0
            .logins
            .create_oidc_login(
                &codes::api_key_hash(&login_id),
                &auth.login,
                now.saturating_add(LOGIN_MAX_MS),
            )
            .await?;
        Ok(Begun {
            login_id,
            url: auth.url,
        })
    }

    /// Completes a sign-in: the session proper under a new id, or why not.
    pub async fn complete(&self, cb: Callback<'_>) -> Result<Answer, CoreError> {
        let Some(login_id) = cb.login_id else {
            tracing::info!("oidc callback refused: no sign-in cookie");
            return Ok(Answer::Refused(Refusal::Login));
        };
        // Taken before anything else is looked at: whatever happens next, this
        // sign-in does not serve a second callback.
        let taken = self
            .0
            .logins
            .take_oidc_login(&codes::api_key_hash(login_id), self.now())
            .await?;
        let Some(login) = taken else {
            tracing::info!("oidc callback refused: no such sign-in (expired or used)");
            return Ok(Answer::Refused(Refusal::Login));
        };
        if !cb
            .state
            .is_some_and(|s| codes::hashes_equal(s, &login.state))
        {
            tracing::warn!("oidc callback refused: state does not match the sign-in");
            return Ok(Answer::Refused(Refusal::Login));
        }
        if let Some(error) = cb.error {
            let error: String = error.chars().take(64).collect();
            tracing::info!(error, "oidc callback: the identity provider refused");
            return Ok(Answer::Refused(Refusal::Provider));
        }
        let Some(code) = cb.code.filter(|c| !c.is_empty() && c.len() <= 2048) else {
            return Ok(Answer::Refused(Refusal::Provider));
        };
        let identity = match self.0.provider.redeem(code, &login).await {
            Ok(identity) => identity,
            Err(IdpError::Unavailable(e)) => return Err(unavailable(IdpError::Unavailable(e))),
            Err(e) => {
                let reason = match &e {
                    IdpError::Token(why) => *why,
                    _ => "code",
                };
                tracing::warn!(reason, "oidc sign-in refused");
                self.refused("oidc", serde_json::json!({ "reason": reason }))
                    .await?;
                return Ok(Answer::Refused(Refusal::Provider));
            }
        };
        let name = identity
            .name
            .clone()
            .unwrap_or_else(|| identity.subject.clone());
        let actor = format!("oidc:{}", identity.subject);
        let Some(role) = role_of(&self.0.settings, &identity.roles) else {
            tracing::info!(actor, "oidc sign-in refused: no role");
            let detail = serde_json::json!({ "reason": "no_role", "name": name });
            self.refused(&actor, detail).await?;
            return Ok(Answer::Refused(Refusal::NoRole));
        };
        let who = Who::Oidc {
            subject: identity.subject,
            name: name.clone(),
            role,
        };
        let detail = serde_json::json!({ "role": role.as_str(), "name": name });
        let i = &self.0;
        let signed_in = open_session(&*i.access, &*i.audit, who, self.now(), detail).await?;
        tracing::info!(actor, "console sign-in");
        Ok(Answer::SignedIn(signed_in))
    }

    /// Where to send a signed-out browser so the provider ends its session too.
    pub async fn end_session_url(&self) -> Option<String> {
        self.0.provider.end_session_url().await
    }

    async fn refused(&self, actor: &str, detail: serde_json::Value) -> Result<(), CoreError> {
        self.0
            .audit
            .audit(NewEvent {
                card_id: None,
                kind: "console_signin_refused",
                actor,
                detail,
                at: self.now(),
            })
            .await?;
        Ok(())
    }
}

/// The role the claim values give: `admin` wins over `helpdesk`; none, none.
pub fn role_of(settings: &OidcSettings, values: &[String]) -> Option<Role> {
    let has = |wanted: &[String]| values.iter().any(|v| wanted.contains(v));
    if has(&settings.admin) {
        Some(Role::Admin)
    } else if has(&settings.helpdesk) {
        Some(Role::Helpdesk)
    } else {
        None
    }
}

fn unavailable(e: IdpError) -> CoreError {
    tracing::error!(error = %e, "oidc sign-in failed");
    CoreError::IdentityProvider
}

#[cfg(test)]
mod tests {
    use super::role_of;
    use crate::config::{OidcSettings, Secret};
    use otpgw_rules::vocab::Role;

    #[test]
    fn the_claim_gives_the_role_and_admin_wins() {
        let settings = OidcSettings {
            issuer: "https://idp.example".into(),
            client_id: "c".into(),
            client_secret: Secret::new("s"),
            scopes: vec!["openid".into()],
            roles_claim: "groups".into(),
            admin: vec!["otp-admins".into()],
            helpdesk: vec!["otp-helpdesk".into()],
        };
        let role = |values: &[&str]| {
            let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
            role_of(&settings, &values)
        };
        assert_eq!(role(&["otp-helpdesk"]), Some(Role::Helpdesk));
        assert_eq!(role(&["otp-admins"]), Some(Role::Admin));
        assert_eq!(role(&["otp-helpdesk", "otp-admins"]), Some(Role::Admin));
        assert_eq!(role(&["marketing"]), None);
        assert_eq!(role(&[]), None);
        assert_eq!(role(&["OTP-ADMINS"]), None);
    }
}
