//! Customer tokens in the core: enrolling a software or hardware token for a card,
//! the two-part activation (one part to the caller, for the ATM receipt; the other
//! by SMS through the same route as a card's activation), the lifecycle and
//! resync. Verifying a token's code is `verify.rs` (the rule is the rules crate's).
//!
//! Secrets are sealed here (purpose `"tokens"`, associated data binding the row's
//! `uid` and card) and opened only inside the verify transaction's rule, at
//! activation (to hand the app its secret once) and at resync.

use rand::rngs::OsRng;
use rand::{Rng, TryRngCore};

use std::sync::Arc;

use otpgw_rules::codes::Keys;
use otpgw_rules::records::{Token, TokenRecord, Who};
use otpgw_rules::seal::SealKey;
use otpgw_rules::tokens::decide::{aad, normalise_code, Shape};
use otpgw_rules::tokens::{ocra, totp, Hash, TokenKind, TokenSource, TokenState};
use otpgw_rules::vocab::Role;

use super::handout::{Activating, ActivationNotice, ActivationSms, HandOut};
use super::ports::{
    Act, CardStore, Change, CodeAttempt, NewActivation, NewToken, TokenActivation, TokenChange,
    TokenStore,
};
use super::{Clock, CoreError, DomainError, Missing, TokenError};
use crate::config::TokenSettings;

/// The purpose a token secret's sealing key is derived for.
pub(super) const SEAL_PURPOSE: &str = "tokens";

/// Time-stepped by default: each minute's response verifies once, so a response
/// captured for one payment cannot be replayed for the same payment later (a suite
/// without `T` only remembers the last payment it answered).
const DEFAULT_OCRA_SUITE: &str = "OCRA-1:HOTP-SHA256-8:QN08-T1M";

/// Digits in each of the two activation parts.
pub const PART_DIGITS: usize = 6;

/// What the bank asks for when it enrolls a token.
#[derive(Clone, Default)]
pub struct TokenRequest<'a> {
    pub kind: Option<TokenKind>,
    pub algorithm: Option<Hash>,
    pub digits: Option<u32>,
    pub period: Option<u32>,
    pub suite: Option<&'a str>,
    /// A hardware token's serial.
    pub serial: Option<&'a str>,
    /// A hardware token's secret from the vendor's file (hex or base32). Absent:
    /// a software token with a fresh secret.
    pub secret: Option<&'a str>,
}

// The three below carry a secret, half an activation code or an `otpauth://` URI
// with the seed: their `Debug` says what they are, never those.
impl std::fmt::Debug for TokenRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("kind", &self.kind)
            .field("suite", &self.suite)
            .field("serial", &self.serial)
            .field("secret", &self.secret.map(|_| "***"))
            .finish()
    }
}

impl std::fmt::Debug for EnrolledToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolledToken")
            .field("token_id", &self.token_id)
            .field(
                "activation_part",
                &self.activation_part.as_ref().map(|_| "***"),
            )
            .field("activation", &self.activation)
            .finish()
    }
}

impl std::fmt::Debug for ActivatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivatedToken")
            .field("token", &self.token.id)
            .field("otpauth_uri", &"***")
            .finish()
    }
}

/// The answer to an enrollment. `activation_part` is the first half of the
/// activation code (the ATM prints it); the second went to the card's phone.
#[derive(Clone)]
pub struct EnrolledToken {
    pub token_id: i64,
    pub token: Token,
    pub activation_part: Option<String>,
    /// Whether the SMS with the second part went out.
    pub activation: Option<ActivationNotice>,
}

/// The answer to a successful activation, given once.
#[derive(Clone)]
pub struct ActivatedToken {
    pub token: Token,
    /// `otpauth://totp/…` (or `otpauth://ocra/…`): a QR payload for standard
    /// authenticator apps. Carries the secret; never shown again.
    pub otpauth_uri: String,
}

impl std::fmt::Debug for ActivatedTokenOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Activated(a) => write!(f, "Activated(token {})", a.token.id),
            Self::Wrong { attempts_left } => {
                write!(f, "Wrong {{ attempts_left: {attempts_left} }}")
            }
            Self::Expired => f.write_str("Expired"),
        }
    }
}

pub enum ActivatedTokenOutcome {
    Activated(ActivatedToken),
    Wrong { attempts_left: i64 },
    Expired,
}

fn digits(n: usize) -> String {
    let mut rng = OsRng.unwrap_err();

    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// The secret length RFC 4226/6238 recommend for each hash: its output size.
fn secret_len(hash: Hash) -> usize {
    match hash {
        Hash::Sha1 => 20,
        Hash::Sha256 => 32,
        Hash::Sha512 => 64,
    }
}

#[derive(Clone)]
pub struct Tokens(pub(super) Arc<Inner>);

pub(super) struct Inner {
    pub tokens: Arc<dyn TokenStore>,
    pub cards: Arc<dyn CardStore>,
    pub keys: Keys,
    pub settings: TokenSettings,
    pub handout: Arc<HandOut>,
    pub clock: Arc<dyn Clock>,
}

impl Tokens {
    fn token_key(&self) -> SealKey {
        self.0.keys.seal_key(SEAL_PURPOSE)
    }

    fn now(&self) -> i64 {
        self.0.clock.now_ms()
    }

    async fn record(&self, id: i64) -> Result<TokenRecord, CoreError> {
        self.0
            .tokens
            .token(id)
            .await?
            .ok_or(CoreError::not_found(Missing::Token))
    }

    /// Enrolls a token for a card. A software token gets a fresh secret and waits,
    /// `pending`, for its two-part activation code; a hardware token (secret from
    /// the vendor's file) is active at once.
    pub async fn enroll(
        &self,
        card_id: i64,
        req: &TokenRequest<'_>,
        actor: &str,
    ) -> Result<EnrolledToken, CoreError> {
        let card = self
            .0
            .cards
            .card(card_id)
            .await?
            .ok_or(CoreError::not_found(Missing::Card))?;
        let kind = req
            .kind
            .ok_or(TokenError::Spec("kind must be \"totp\" or \"ocra\""))?;
        let (hash, digits_n, period, suite) = match kind {
            TokenKind::Totp => {
                if req.suite.is_some() {
                    return Err(TokenError::Spec("suite is for OCRA tokens").into());
                }
                let p = totp::Params::new(
                    req.algorithm.unwrap_or(Hash::Sha1),
                    req.digits.unwrap_or(6),
                    req.period.unwrap_or(30),
                )
                .map_err(TokenError::from)?;
                (p.hash, p.digits, p.period, None)
            }
            TokenKind::Ocra => {
                if req.algorithm.is_some() || req.digits.is_some() || req.period.is_some() {
                    return Err(TokenError::Spec(
                        "an OCRA token's algorithm, digits and time step come from its suite",
                    )
                    .into());
                }
                let suite = ocra::Suite::parse(req.suite.unwrap_or(DEFAULT_OCRA_SUITE))
                    .map_err(TokenError::from)?;
                suite.enrollable().map_err(TokenError::from)?;
                let period = u32::try_from(suite.time_step.unwrap_or(0)).unwrap_or(0);
                (
                    suite.hash,
                    suite.digits,
                    period,
                    Some(suite.as_str().to_owned()),
                )
            }
        };
        if let Some(s) = req.serial {
            if s.is_empty()
                || s.len() > 64
                || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(
                    TokenError::Spec("serial must be 1 to 64 letters, digits or '-'").into(),
                );
            }
        }
        let (secret, source) = match req.secret {
            Some(raw) => (
                otpgw_rules::tokens::parse_secret(raw).ok_or(TokenError::Spec(
                    "secret must be 16 to 64 bytes, hex or base32",
                ))?,
                TokenSource::Hardware,
            ),
            None => {
                let mut s = vec![0u8; secret_len(hash)];
                OsRng
                    .try_fill_bytes(&mut s)
                    .map_err(|_| DomainError::unavailable("no randomness"))?;
                (s, TokenSource::Software)
            }
        };
        if source == TokenSource::Hardware && req.serial.is_none() {
            return Err(TokenError::Spec("a hardware token needs its serial").into());
        }
        let uid = hex::encode(rand::random::<[u8; 16]>());
        let sealed = self.token_key().seal(&aad(&uid, card.id), &secret);
        let now = self.now();
        let settings = &self.0.settings;
        let ttl_ms =
            i64::try_from(settings.activation_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(ttl_ms);
        let parts =
            (source == TokenSource::Software).then(|| (digits(PART_DIGITS), digits(PART_DIGITS)));
        let hash_of_parts = parts
            .as_ref()
            .map(|(a, b)| self.0.keys.token_activation_hash(&uid, &format!("{a}{b}")));
        let token = self
            .0
            .tokens
            .enroll_token(
                NewToken {
                    uid: &uid,
                    card_id: card.id,
                    kind,
                    source,
                    serial: req.serial,
                    algorithm: hash,
                    digits: i64::from(digits_n),
                    period: i64::from(period),
                    suite: suite.as_deref(),
                    sealed: &sealed,
                    activation: hash_of_parts.as_deref().map(|h| NewActivation {
                        code_hash: h,
                        expires_at,
                    }),
                },
                actor,
                now,
            )
            .await?;
        tracing::info!(
            card_id = card.id,
            token_id = token.id,
            kind = kind.as_str(),
            source = source.as_str(),
            actor,
            "token enrolled"
        );
        let (activation_part, activation) = match parts {
            Some((first, second)) => {
                // The second part goes by SMS, through the route a card's
                // activation takes.
                let sms = ActivationSms {
                    of: Activating::Token(token.id),
                    code: &second,
                    ttl_secs: settings.activation_ttl_secs,
                };
                let notice = self
                    .0
                    .handout
                    .activation(&card, sms, expires_at, actor)
                    .await?;
                (Some(first), Some(notice))
            }
            None => (None, None),
        };
        Ok(EnrolledToken {
            token_id: token.id,
            token,
            activation_part,
            activation,
        })
    }

    /// The app proves both parts (joined) and receives its secret once, as an
    /// `otpauth://` URI. Wrong codes are counted and audited; at
    /// `[tokens] activation_max_failures` the token locks and must be replaced.
    pub async fn activate(
        &self,
        id: i64,
        code: &str,
        actor: &str,
    ) -> Result<ActivatedTokenOutcome, CoreError> {
        let record = self.record(id).await?;
        let candidate = normalise_code(code)
            .filter(|c| c.len() == 2 * PART_DIGITS)
            .map(|c| self.0.keys.token_activation_hash(&record.uid, &c));
        let outcome = self
            .0
            .tokens
            .activate_token(CodeAttempt {
                id,
                candidate,
                max_failures: self.0.settings.activation_max_failures,
                actor,
                now: self.now(),
            })
            .await?;
        Ok(match outcome {
            TokenActivation::Activated(r) => {
                tracing::info!(token_id = id, actor, "token activated");
                let uri = self.otpauth_uri(&r)?;
                ActivatedTokenOutcome::Activated(ActivatedToken {
                    token: r.token,
                    otpauth_uri: uri,
                })
            }
            TokenActivation::Wrong { attempts_left } => {
                tracing::info!(
                    token_id = id,
                    actor,
                    attempts_left,
                    "token activation refused"
                );
                ActivatedTokenOutcome::Wrong { attempts_left }
            }
            TokenActivation::Expired => ActivatedTokenOutcome::Expired,
        })
    }

    fn open_secret(&self, r: &TokenRecord) -> Result<Vec<u8>, CoreError> {
        self.token_key()
            .open(&aad(&r.uid, r.token.card_id), &r.sealed)
            .map_err(|_| {
                DomainError::internal(format!("token {} secret does not open", r.token.id)).into()
            })
    }

    fn otpauth_uri(&self, r: &TokenRecord) -> Result<String, CoreError> {
        let secret = self.open_secret(r)?;
        let t = &r.token;
        let card = format!("card-{}", t.card_id);
        let issuer = &self.0.settings.issuer;
        Ok(match t.kind {
            TokenKind::Totp => otpgw_rules::tokens::otpauth_uri(
                "totp",
                issuer,
                &card,
                &secret,
                &[
                    ("algorithm", t.algorithm.as_str().to_ascii_uppercase()),
                    ("digits", t.digits.to_string()),
                    ("period", t.period.to_string()),
                ],
            ),
            TokenKind::Ocra => otpgw_rules::tokens::otpauth_uri(
                "ocra",
                issuer,
                &card,
                &secret,
                &[("ocraSuite", t.suite.clone().unwrap_or_default())],
            ),
        })
    }

    pub async fn of_card(&self, card_id: i64) -> Result<Vec<Token>, CoreError> {
        if self.0.cards.card(card_id).await?.is_none() {
            return Err(CoreError::not_found(Missing::Card));
        }
        Ok(self.0.tokens.tokens_of_card(card_id).await?)
    }

    pub async fn get(&self, id: i64) -> Result<Token, CoreError> {
        Ok(self.record(id).await?.token)
    }

    pub async fn change(
        &self,
        id: i64,
        change: TokenChange,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<Token, CoreError> {
        let token = self
            .0
            .tokens
            .change_token(&Change {
                id,
                to: change,
                actor,
                reason,
                source: None,
                now: self.now(),
            })
            .await?;
        tracing::info!(
            token_id = id,
            actor,
            state = token.state.as_str(),
            "token state changed"
        );
        Ok(token)
    }

    /// A lost phone: the old token is revoked and a new one of the same shape
    /// enrolled for the same card, with a new activation.
    pub async fn replace(&self, id: i64, actor: &str) -> Result<EnrolledToken, CoreError> {
        let old = self.record(id).await?;
        if old.token.source == TokenSource::Hardware {
            return Err(TokenError::Spec(
                "a hardware token is replaced by enrolling the new device's serial",
            )
            .into());
        }
        let t = &old.token;
        if t.state != TokenState::Revoked {
            self.change(id, TokenChange::Revoke, actor, Some("replaced"))
                .await?;
        }
        let req = match t.kind {
            TokenKind::Totp => TokenRequest {
                kind: Some(TokenKind::Totp),
                algorithm: Some(t.algorithm),
                digits: u32::try_from(t.digits).ok(),
                period: u32::try_from(t.period).ok(),
                ..TokenRequest::default()
            },
            TokenKind::Ocra => TokenRequest {
                kind: Some(TokenKind::Ocra),
                suite: t.suite.as_deref(),
                ..TokenRequest::default()
            },
        };
        self.enroll(t.card_id, &req, actor).await
    }

    /// Resynchronises a TOTP token from two consecutive codes (administrator).
    pub async fn resync(
        &self,
        id: i64,
        first: &str,
        second: &str,
        actor: &str,
    ) -> Result<Token, CoreError> {
        let r = self.record(id).await?;
        let t = &r.token;
        let Some(Shape::Totp(params)) =
            Shape::of(t.kind, t.algorithm, t.digits, t.period, t.suite.as_deref())
        else {
            return Err(TokenError::Spec("only TOTP tokens are resynchronised").into());
        };
        let (Some(first), Some(second)) = (normalise_code(first), normalise_code(second)) else {
            return Err(TokenError::NoResync.into());
        };
        let secret = self.open_secret(&r)?;
        let now = self.now();
        let now_step = params.step_at(now);
        let step = totp::resync(
            &params,
            &secret,
            &first,
            &second,
            now_step,
            self.0.settings.resync_steps,
        )
        .ok_or(TokenError::NoResync)?;
        let drift = i64::try_from(i128::from(step) - i128::from(now_step)).unwrap_or(0);
        let token = self
            .0
            .tokens
            .resync_token(
                id,
                i64::try_from(step).unwrap_or(i64::MAX),
                drift,
                Act { by: actor, at: now },
            )
            .await?;
        tracing::info!(token_id = id, actor, drift, "token resynchronised");
        Ok(token)
    }

    /// A token's state changed from the console: the reason is mandatory (cleaned
    /// as a card's is). The help desk may suspend a token (a customer reports a lost
    /// phone); lifting a suspension and revoking are the administrators'.
    pub async fn console_change(
        &self,
        who: &Who,
        id: i64,
        change: TokenChange,
        reason: &str,
    ) -> Result<Token, CoreError> {
        if !console_may(who.role(), ConsoleTokenAct::Change(change)) {
            return Err(CoreError::Forbidden);
        }
        let reason = super::backoffice::clean_reason(reason)?;
        self.change(id, change, &who.actor(), Some(&reason)).await
    }

    /// Resynchronises a TOTP token from the console: the customer reads two codes
    /// from the app over the phone (help desk and administrators).
    pub async fn console_resync(
        &self,
        who: &Who,
        id: i64,
        first: &str,
        second: &str,
    ) -> Result<Token, CoreError> {
        if !console_may(who.role(), ConsoleTokenAct::Resync) {
            return Err(CoreError::Forbidden);
        }
        self.resync(id, first, second, &who.actor()).await
    }
}

/// What the console does to a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleTokenAct {
    Change(TokenChange),
    Resync,
}

/// Whether `role` may do `act` from the console: read by the page (which buttons
/// it draws) and by the use cases above (which refuse the rest).
pub fn console_may(role: Role, act: ConsoleTokenAct) -> bool {
    match act {
        ConsoleTokenAct::Change(TokenChange::Suspend) | ConsoleTokenAct::Resync => {
            matches!(role, Role::Admin | Role::Helpdesk)
        }
        ConsoleTokenAct::Change(TokenChange::Reactivate | TokenChange::Revoke) => {
            role == Role::Admin
        }
    }
}
