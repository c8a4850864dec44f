//! The bearer token for the SIM Swap API: OAuth2's client-credentials grant
//! (RFC 6749 §4.4), the client's id and secret in the form body, as CAMARA's
//! two-legged flow has it. One token is kept until shortly before `expires_in`
//! and shared by every check; one request fetches it while the others wait.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::{Secret, SimSwapSettings};
use crate::core::ports::SimSwapError;

/// Used when the token endpoint does not say how long its token lives.
const DEFAULT_LIFETIME_SECS: u64 = 300;

pub(super) struct Tokens {
    url: String,
    client_id: String,
    client_secret: Secret,
    scope: Option<String>,
    held: Mutex<Option<Held>>,
}

struct Held {
    token: Secret,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Secret,
    token_type: String,
    expires_in: Option<u64>,
}

impl Tokens {
    pub(super) fn new(settings: &SimSwapSettings) -> Self {
        Self {
            url: settings.token_url.clone(),
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
            scope: settings.scope.clone(),
            held: Mutex::new(None),
        }
    }

    /// A token that is still good, fetched if need be.
    pub(super) async fn get(&self, http: &reqwest::Client) -> Result<Secret, SimSwapError> {
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_ref().filter(|h| Instant::now() < h.refresh_at) {
            return Ok(h.token.clone());
        }
        let fresh = self.fetch(http).await?;
        let token = fresh.token.clone();
        *held = Some(fresh);
        Ok(token)
    }

    /// The API refused `token` (revoked before its time): the next check fetches
    /// another, unless one was fetched meanwhile.
    pub(super) async fn forget(&self, token: &Secret) {
        let mut held = self.held.lock().await;
        if held.as_ref().is_some_and(|h| h.token == *token) {
            *held = None;
        }
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<Held, SimSwapError> {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose()),
        ];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope.as_str()));
        }
        let asked = Instant::now();
        let resp =
            http.post(&self.url).form(&form).send().await.map_err(
                |e| match super::unreachable(e) {
                    SimSwapError::Unreachable(why) => SimSwapError::Token(why),
                    other => other,
                },
            )?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            // The body is not read: an OAuth error says nothing the status does not,
            // and a token endpoint's answer is not for the log.
            return Err(SimSwapError::Token(format!(
                "the token endpoint answered {}",
                status.as_u16()
            )));
        }
        let answer: TokenAnswer = resp.json().await.map_err(|_| {
            SimSwapError::Token("the token endpoint's answer is not a token".into())
        })?;
        if !answer.token_type.eq_ignore_ascii_case("bearer")
            || answer.access_token.expose().is_empty()
        {
            return Err(SimSwapError::Token(
                "the token endpoint gave no bearer token".into(),
            ));
        }
        Ok(Held {
            token: answer.access_token,
            refresh_at: asked + refresh_after(answer.expires_in),
        })
    }
}

/// How long a token with `expires_in` seconds is used: until a tenth of its life
/// (at most a minute) is left, so a check never carries a token expiring in flight.
fn refresh_after(expires_in: Option<u64>) -> Duration {
    let life = expires_in.unwrap_or(DEFAULT_LIFETIME_SECS);
    let margin = (life / 10).clamp(1, 60);
    Duration::from_secs(life.saturating_sub(margin))
}

#[cfg(test)]
mod tests {
    use super::refresh_after;
    use std::time::Duration;

    #[test]
    fn a_token_is_renewed_shortly_before_it_expires() {
        assert_eq!(refresh_after(Some(3600)), Duration::from_secs(3540));
        assert_eq!(refresh_after(Some(300)), Duration::from_secs(270));
        assert_eq!(refresh_after(Some(10)), Duration::from_secs(9));
        // A token for a second or none is fetched again at every check.
        assert_eq!(refresh_after(Some(1)), Duration::ZERO);
        assert_eq!(refresh_after(Some(0)), Duration::ZERO);
        assert_eq!(refresh_after(None), Duration::from_secs(270));
    }
}
