//! The operator's CAMARA SIM Swap API (`[sim_swap]`) as the core's
//! `SimSwapCheck`: `POST {url}/sim-swap/v1/check` (`v2` with `api_version`) with
//! `{"phoneNumber": "+98…", "maxAge": hours}`, a bearer token from the OAuth2
//! client-credentials grant (`token.rs`) and an `x-correlator` to find the call in
//! the operator's logs. 200 answers `{"swapped": bool}`; anything else is an
//! error, whose CAMARA `{status, code, message}` body names the reason in the log.
//! A 401 means the operator dropped the token before its `expires_in` (revoked,
//! keys rotated): the token is fetched again and the check asked once more; a
//! second 401 is an error like any other.
//!
//! The whole check, token included, has `timeout_ms`. Answers are kept per number
//! for `cache_secs` in a cache bounded in entries (any sender's SMS chooses the
//! number asked about), and concurrent asks about one number share one call.
//! Errors are not kept: the next request asks again.

mod token;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use moka::future::Cache;
use serde::{Deserialize, Serialize};

use crate::config::SimSwapSettings;
use crate::core::ports::{SimSwapAnswer, SimSwapCheck, SimSwapError};

/// Why the client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("sim_swap: cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

pub struct CamaraSimSwap {
    http: reqwest::Client,
    check_url: String,
    max_age_hours: u32,
    timeout: Duration,
    tokens: token::Tokens,
    /// `None` with `cache_secs = 0`.
    answers: Option<Cache<String, SimSwapAnswer>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckRequest<'a> {
    phone_number: &'a str,
    max_age: u32,
}

#[derive(Deserialize)]
struct CheckAnswer {
    swapped: bool,
}

/// CAMARA's error body.
#[derive(Deserialize)]
struct ErrorInfo {
    code: String,
}

impl CamaraSimSwap {
    pub fn new(settings: &SimSwapSettings) -> Result<Arc<Self>, SetupError> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect is not part of the API; following one would move the
            // bearer token to where the operator did not put it.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("otpgw/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let answers = (settings.cache_secs > 0).then(|| {
            Cache::builder()
                .max_capacity(settings.cache_entries)
                .time_to_live(Duration::from_secs(settings.cache_secs))
                .build()
        });
        Ok(Arc::new(Self {
            http,
            check_url: format!(
                "{}{}",
                settings.url.trim_end_matches('/'),
                settings.check_path()
            ),
            max_age_hours: settings.max_age_hours,
            timeout,
            tokens: token::Tokens::new(settings),
            answers,
        }))
    }

    /// One check within the time-out.
    async fn timed(&self, msisdn: &str) -> Result<SimSwapAnswer, SimSwapError> {
        let started = Instant::now();
        let answer = tokio::time::timeout(self.timeout, self.ask(msisdn))
            .await
            .unwrap_or(Err(SimSwapError::Timeout));
        metrics::histogram!("otpgw_sim_swap_seconds").record(started.elapsed().as_secs_f64());
        answer
    }

    async fn ask(&self, msisdn: &str) -> Result<SimSwapAnswer, SimSwapError> {
        let phone_number = format!("+{msisdn}");
        let body = CheckRequest {
            phone_number: &phone_number,
            max_age: self.max_age_hours,
        };
        // A token the operator revoked early is fetched again, once.
        let mut retried = false;
        loop {
            let bearer = self.tokens.get(&self.http).await?;
            let correlator = correlator();
            let resp = self
                .http
                .post(&self.check_url)
                .bearer_auth(bearer.expose())
                .header("x-correlator", &correlator)
                .json(&body)
                .send()
                .await
                .map_err(unreachable)?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED && !retried {
                tracing::debug!(
                    correlator,
                    "SIM-swap check refused the token: fetching another"
                );
                self.tokens.forget(&bearer).await;
                retried = true;
                continue;
            }
            if status == reqwest::StatusCode::OK {
                let answer: CheckAnswer = resp
                    .json()
                    .await
                    .map_err(|e| SimSwapError::Malformed(e.without_url().to_string()))?;
                return Ok(if answer.swapped {
                    SimSwapAnswer::Swapped
                } else {
                    SimSwapAnswer::NotSwapped
                });
            }
            let code = resp
                .json::<ErrorInfo>()
                .await
                .map_or_else(|_| String::new(), |e| printable(&e.code));
            tracing::debug!(
                status = status.as_u16(),
                code,
                correlator,
                "SIM-swap check answered an error"
            );
            return Err(SimSwapError::Refused {
                status: status.as_u16(),
                code,
            });
        }
    }
}

#[async_trait]
impl SimSwapCheck for CamaraSimSwap {
    async fn check(&self, msisdn: &str) -> Result<SimSwapAnswer, SimSwapError> {
        let Some(answers) = &self.answers else {
            return self.timed(msisdn).await;
        };
        answers
            .try_get_with(msisdn.to_owned(), self.timed(msisdn))
            .await
            .map_err(|e| (*e).clone())
    }
}

/// A fresh `x-correlator`: 128 random bits in the UUID layout, which every
/// version of the API's pattern admits.
fn correlator() -> String {
    let h = hex::encode(rand::random::<[u8; 16]>());
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn unreachable(e: reqwest::Error) -> SimSwapError {
    if e.is_timeout() {
        return SimSwapError::Timeout;
    }
    // Without the URL: the error goes to the log, and a URL may carry more than a
    // host.
    let e = e.without_url();
    let mut text = e.to_string();
    // reqwest's own text says little ("error sending request"); the cause says why.
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    SimSwapError::Unreachable(text)
}

/// An error code from the operator as the log may print it: short, and only the
/// characters CAMARA's codes use.
fn printable(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_request_has_camaras_field_names() {
        let body = CheckRequest {
            phone_number: "+989121110700",
            max_age: 240,
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"phoneNumber": "+989121110700", "maxAge": 240})
        );
    }

    #[test]
    fn a_correlator_fits_the_apis_pattern() {
        let c = correlator();
        assert_eq!(c.len(), 36);
        assert!(
            c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "{c}"
        );
    }

    #[test]
    fn an_operators_error_code_is_cut_to_what_a_log_may_print() {
        assert_eq!(printable("OUT_OF_RANGE"), "OUT_OF_RANGE");
        assert_eq!(printable("bad\ncode\"x"), "badcodex");
        assert_eq!(printable(&"A".repeat(100)).len(), 64);
    }
}
