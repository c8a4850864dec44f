//! The core: the gateway's rules, free of transports. SMPP and HTTP hand it an
//! [`Inbound`] request or a verify call; it answers with a [`Reply`] or a verdict.
//! It never sees a PDU, an HTTP request or a SQL row.
//!
//! * `handle` — a customer's message: find the card by (MSISDN, last digits), issue a
//!   code (stored before it is returned), or say in the customer's language why not.
//! * `verify` — the payment switch's question: is this the card's live code?
//! * card administration and API keys for the back office.

mod backoffice;
pub mod texts;
pub mod ussd;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otpgw_parsers::msisdn::{normalize_msisdn, MsisdnError};
use otpgw_parsers::sms::{parse_sms, SmsGrammar, SmsRequest};

use crate::codes::{self, Code, Keys, Pan};
use crate::config::ServiceSettings;
use crate::domain::{CardStatus, Channel, Delivery, Reason, Role, Verdict};
use crate::limits::{Admission, Limits, Refused};
use crate::store::{
    ApiKey, Card, CodeRecord, Effect, Event, Issued, LatestCode, LockedCard, MessageRef, NewCard,
    NewCode, PushKey, StatusChange, Store, StoreError, VerifyAttempt,
};
pub use backoffice::{CardView, Health, SignedIn, SESSION_IDLE_MS, SESSION_MAX_MS};
pub use texts::ReplyKind;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid msisdn: {0:?}")]
    Msisdn(MsisdnError),
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    #[error("no card with this number is enrolled")]
    NotEnrolled,
    #[error("the card is {}", .0.as_str())]
    CardNotActive(CardStatus),
    #[error("too many codes for this card: retry in {} s", .retry_after.as_secs().max(1))]
    Limited { retry_after: Duration },
    #[error("no operator connection serves this card's phone number")]
    NoRoute,
    #[error("the outgoing queue is full")]
    Busy,
    #[error("this API key's role may not do that")]
    Forbidden,
    #[error("a reason is required")]
    ReasonRequired,
}

/// A message the core sends without being asked (a pushed code), handed to the
/// transport that holds the operator connections.
pub struct Push {
    pub to: String,
    pub text: String,
    pub code_id: i64,
    pub route: String,
    /// Epoch ms after which sending it is pointless (the code has expired).
    pub expires_at: i64,
}

impl std::fmt::Debug for Push {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The text holds a code: never print it.
        f.debug_struct("Push")
            .field("code_id", &self.code_id)
            .field("route", &self.route)
            .finish()
    }
}

/// The way out for pushed codes: client mode's operator connections.
pub trait Outbound: Send + Sync {
    /// The route serving this number (an MSISDN prefix, "" for the default
    /// route), or `None` when no connection serves it.
    fn route_for(&self, msisdn: &str) -> Option<String>;
    /// Queues the message; `false` when the queue is full.
    fn send(&self, push: Push) -> bool;
}

/// The answer to a pushed-code request. Never the code itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub code_id: i64,
    pub expires_at: i64,
    pub delivery: Option<Delivery>,
    /// The same request_id was answered before; nothing new was issued or sent.
    pub replayed: bool,
}

/// Where time comes from. Tests substitute a clock they can move.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A customer's message, as any transport delivers it.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub channel: Channel,
    /// The SMPP system_id (or HTTP key) it came through; recorded with the code.
    pub peer: String,
    /// The customer's number as the network gave it; normalised here.
    pub from: String,
    pub text: String,
}

/// What to send back. `to` is the customer's number in E.164 digits.
pub struct Reply {
    pub to: String,
    pub text: String,
    pub kind: ReplyKind,
    /// Set when the text carries a code, so the transport can record its delivery.
    pub code_id: Option<i64>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The text may hold a code: never print it.
        f.debug_struct("Reply")
            .field("kind", &self.kind)
            .field("code_id", &self.code_id)
            .finish()
    }
}

/// A USSD screen for the customer; `end` closes the session.
pub struct UssdReply {
    pub to: String,
    pub text: String,
    pub end: bool,
    pub code_id: Option<i64>,
}

impl std::fmt::Debug for UssdReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The text may hold a code: never print it.
        f.debug_struct("UssdReply")
            .field("end", &self.end)
            .field("code_id", &self.code_id)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOutcome {
    pub verdict: Verdict,
    pub locked_now: bool,
    pub replayed: bool,
}

#[derive(Clone)]
pub struct Core {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    keys: Keys,
    service: ServiceSettings,
    grammar: SmsGrammar,
    clock: Arc<dyn Clock>,
    limits: Limits,
    /// Set once by `serve` when client mode runs; absent in CLI commands.
    outbound: OnceLock<Arc<dyn Outbound>>,
}

impl Core {
    pub fn new(
        store: Store,
        keys: Keys,
        service: ServiceSettings,
        limits: Limits,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let grammar = SmsGrammar {
            keywords: service.keywords.clone(),
            help_keywords: service.help_keywords.clone(),
        };
        Self {
            inner: Arc::new(Inner {
                store,
                keys,
                service,
                grammar,
                clock,
                limits,
                outbound: OnceLock::new(),
            }),
        }
    }

    /// Connects pushed codes to client mode's operator connections.
    pub fn set_outbound(&self, outbound: Arc<dyn Outbound>) {
        let _ = self.inner.outbound.set(outbound);
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn service(&self) -> &ServiceSettings {
        &self.inner.service
    }

    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    pub fn normalize_msisdn(&self, raw: &str) -> Result<String, CoreError> {
        normalize_msisdn(raw, &self.inner.service.country_code).map_err(CoreError::Msisdn)
    }

    /// Answers one customer message; `None` means stay silent (a limit already
    /// told this customer when to come back). A code is committed to the store
    /// before this returns the reply that carries it.
    pub async fn handle(&self, inbound: &Inbound) -> Result<Option<Reply>, CoreError> {
        let svc = &self.inner.service;
        let msisdn = self.normalize_msisdn(&inbound.from)?;
        let lang = texts::detect_language(&inbound.text, svc.language);
        let answer = match self.inner.limits.admit_msisdn(&msisdn) {
            Admission::Allow => self.answer(inbound, &msisdn).await?,
            over => Answer::limited(over),
        };
        let Some(answer) = answer else {
            tracing::debug!("over a limit and already told: no reply");
            return Ok(None);
        };
        let text = texts::render(
            answer.kind,
            lang,
            &texts::Params {
                code: answer.code.as_ref().map_or("", Code::expose),
                ttl_secs: svc.code_ttl_secs,
                digits: &answer.digits,
                short_code: svc.short_codes.first().map_or("", String::as_str),
                retry_secs: answer.retry_secs,
            },
        );
        metrics::counter!("otpgw_replies_total", "kind" => answer.kind.as_str(), "channel" => inbound.channel.as_str())
            .increment(1);
        Ok(Some(Reply {
            to: msisdn,
            text,
            kind: answer.kind,
            code_id: answer.code_id,
        }))
    }

    async fn answer(&self, inbound: &Inbound, msisdn: &str) -> Result<Option<Answer>, CoreError> {
        let request = parse_sms(&inbound.text, &self.inner.grammar);
        Ok(match &request {
            SmsRequest::Last4(d) | SmsRequest::Last6(d) => {
                return self.issue_for(inbound, msisdn, &request, d).await
            }
            SmsRequest::FullPan => {
                tracing::warn!(peer = %inbound.peer, "a full card number was received; it was discarded and the customer warned");
                Some(Answer::say(ReplyKind::FullPan, ""))
            }
            SmsRequest::Help | SmsRequest::Empty => Some(Answer::say(ReplyKind::Help, "")),
            SmsRequest::Unrecognised => Some(Answer::say(ReplyKind::Unrecognised, "")),
        })
    }

    async fn issue_for(
        &self,
        inbound: &Inbound,
        msisdn: &str,
        request: &SmsRequest,
        digits: &str,
    ) -> Result<Option<Answer>, CoreError> {
        let keys = &self.inner.keys;
        let limits = &self.inner.limits;
        let cards = self.inner.store.cards_by_msisdn(msisdn).await?;
        if cards.is_empty() {
            // Unknown numbers get one notice per window: never amplify abuse.
            return Ok(limits
                .notify_unknown_sender(msisdn)
                .then(|| Answer::say(ReplyKind::NotEnrolled, "")));
        }
        let matching: Vec<&Card> = match request {
            SmsRequest::Last6(d) => {
                let h = keys.last6_hash(d);
                cards
                    .iter()
                    .filter(|c| d.ends_with(&c.last4) && codes::hashes_equal(&c.last6_hash, &h))
                    .collect()
            }
            _ => cards.iter().filter(|c| c.last4 == digits).collect(),
        };
        let card = match matching.as_slice() {
            [] => return Ok(Some(Answer::say(ReplyKind::NoSuchCard, digits))),
            [card] => *card,
            [..] => return Ok(Some(Answer::say(ReplyKind::Ambiguous, digits))),
        };
        if card.status != CardStatus::Active {
            return Ok(Some(Answer::say(ReplyKind::Locked, &card.last4)));
        }
        match limits.admit_card(msisdn, card.id) {
            Admission::Allow => {}
            over => return Ok(Answer::limited(over)),
        }
        let code = Code::generate();
        let now = self.now_ms();
        let ttl_ms = i64::try_from(self.inner.service.code_ttl_secs * 1000).unwrap_or(i64::MAX);
        let issued = self
            .inner
            .store
            .issue_code(
                NewCode {
                    card_id: card.id,
                    code_hash: &keys.code_hash(&card.pan_hash, &code),
                    channel: inbound.channel,
                    peer: &inbound.peer,
                    issued_at: now,
                    expires_at: now.saturating_add(ttl_ms),
                    delivery: None,
                    route: None,
                },
                &format!("{}:{}", inbound.channel.as_str(), inbound.peer),
            )
            .await?;
        Ok(Some(match issued {
            Issued::Code {
                code_id,
                superseded,
            } => {
                metrics::counter!("otpgw_codes_issued_total", "channel" => inbound.channel.as_str()).increment(1);
                tracing::info!(card_id = card.id, code_id, superseded, "code issued");
                Answer {
                    code: Some(code),
                    code_id: Some(code_id),
                    ..Answer::say(ReplyKind::Code, &card.last4)
                }
            }
            // Locked between our read and the issuing transaction.
            Issued::NotActive(_) => Answer::say(ReplyKind::Locked, &card.last4),
            Issued::Replayed { .. } => {
                return Err(StoreError::Corrupt("replay of an unkeyed code".into()).into())
            }
        }))
    }

    /// A code the payment switch asks for (the payment page's "send me a code"):
    /// issued under the same rules as a requested one and sent by SMS to the card's
    /// phone through the route serving its number. Idempotent on `request_id`.
    /// The code is committed (state `queued`) before it is handed to the route.
    pub async fn push_code(
        &self,
        key: ApiKey,
        pan: &Pan,
        request_id: &str,
    ) -> Result<Pushed, CoreError> {
        let keys = &self.inner.keys;
        let store = &self.inner.store;
        let pan_hash = keys.pan_hash(pan);
        let push = PushKey {
            api_key_id: key.id,
            request_id,
            fingerprint: &pan_hash,
        };
        let card = store
            .card_by_pan_hash(&pan_hash)
            .await?
            .ok_or(CoreError::NotEnrolled)?;
        if card.status != CardStatus::Active {
            return Err(CoreError::CardNotActive(card.status));
        }
        let outbound = self.inner.outbound.get().ok_or(CoreError::NoRoute)?;
        let route = outbound.route_for(&card.msisdn).ok_or(CoreError::NoRoute)?;
        self.inner
            .limits
            .admit_push(card.id)
            .map_err(|r| CoreError::Limited {
                retry_after: r.retry_after,
            })?;
        let code = Code::generate();
        let now = self.now_ms();
        let ttl_ms = i64::try_from(self.inner.service.code_ttl_secs * 1000).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(ttl_ms);
        let peer = format!("api:{}", key.id);
        let issued = store
            .issue_pushed(
                NewCode {
                    card_id: card.id,
                    code_hash: &keys.code_hash(&card.pan_hash, &code),
                    channel: Channel::Sms,
                    peer: &peer,
                    issued_at: now,
                    expires_at,
                    delivery: Some(Delivery::Queued),
                    route: Some(&route),
                },
                &format!("apikey:{}", key.id),
                &push,
            )
            .await?;
        let code_id = match issued {
            Issued::Code { code_id, .. } => code_id,
            Issued::NotActive(status) => return Err(CoreError::CardNotActive(status)),
            Issued::Replayed {
                code_id,
                fingerprint,
            } => {
                if !codes::hashes_equal(&fingerprint, &pan_hash) {
                    return Err(CoreError::RequestIdReused);
                }
                let record = store
                    .code(code_id)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("pushed code vanished".into()))?;
                return Ok(Pushed {
                    code_id,
                    expires_at: record.expires_at,
                    delivery: record.delivery,
                    replayed: true,
                });
            }
        };
        metrics::counter!("otpgw_codes_issued_total", "channel" => "push").increment(1);
        tracing::info!(card_id = card.id, code_id, route = %route, "code pushed");
        let svc = &self.inner.service;
        let text = texts::render(
            ReplyKind::Code,
            svc.language,
            &texts::Params {
                code: code.expose(),
                ttl_secs: svc.code_ttl_secs,
                digits: &card.last4,
                short_code: svc.short_codes.first().map_or("", String::as_str),
                retry_secs: 0,
            },
        );
        let queued = outbound.send(Push {
            to: card.msisdn.clone(),
            text,
            code_id,
            route,
            expires_at,
        });
        if !queued {
            // Committed but never sent: say so in its record, and to the caller.
            store
                .set_delivery(code_id, Delivery::Undelivered, self.now_ms())
                .await?;
            return Err(CoreError::Busy);
        }
        Ok(Pushed {
            code_id,
            expires_at,
            delivery: Some(Delivery::Queued),
            replayed: false,
        })
    }

    /// A code's record for the back office: channel, route, connection, states and
    /// times, never the code.
    pub async fn code(&self, id: i64) -> Result<Option<CodeRecord>, CoreError> {
        Ok(self.inner.store.code(id).await?)
    }

    /// One step of a USSD dialogue. `path` holds every input since the dial (the
    /// segments of a one-shot `*720*1*1234#` included); digits at the end of it issue a
    /// code exactly as an SMS would, with channel `ussd`.
    pub async fn ussd(
        &self,
        peer: &str,
        from: &str,
        service_code: &str,
        path: &[String],
    ) -> Result<UssdReply, CoreError> {
        let svc = &self.inner.service;
        let msisdn = self.normalize_msisdn(from)?;
        let lang = svc.language;
        let screen = |screen, end| (ussd::render(screen, lang, &svc.ussd_code), end, None);
        let (text, end, code_id) = if service_code != svc.ussd_code {
            screen(ussd::Screen::UnknownService, true)
        } else {
            match ussd::walk(path) {
                ussd::Walk::Show { screen: s, end } => screen(s, end),
                ussd::Walk::FullPan => {
                    tracing::warn!(peer, "a full card number was dialled; it was discarded");
                    (
                        self.ussd_answer(&Answer::say(ReplyKind::FullPan, "")),
                        true,
                        None,
                    )
                }
                ussd::Walk::Last4(d) | ussd::Walk::Last6(d) => {
                    let request = if d.len() == 4 {
                        SmsRequest::Last4(d.clone())
                    } else {
                        SmsRequest::Last6(d.clone())
                    };
                    let inbound = Inbound {
                        channel: Channel::Ussd,
                        peer: peer.to_owned(),
                        from: from.to_owned(),
                        text: String::new(),
                    };
                    let answer = match self.inner.limits.admit_msisdn(&msisdn) {
                        Admission::Allow => self.issue_for(&inbound, &msisdn, &request, &d).await?,
                        over => Answer::limited(over),
                    };
                    match answer {
                        // A USSD screen costs the bank nothing: say it, briefly.
                        None => screen(ussd::Screen::TryLater, true),
                        Some(a) => (
                            self.ussd_answer(&a),
                            a.kind != ReplyKind::Ambiguous,
                            a.code_id,
                        ),
                    }
                }
            }
        };
        metrics::counter!("otpgw_ussd_screens_total", "end" => if end { "true" } else { "false" })
            .increment(1);
        Ok(UssdReply {
            to: msisdn,
            text,
            end,
            code_id,
        })
    }

    /// A USSD screen that says no more than "your session expired".
    pub fn ussd_expired(&self) -> String {
        ussd::render(
            ussd::Screen::Expired,
            self.inner.service.language,
            &self.inner.service.ussd_code,
        )
    }

    fn ussd_answer(&self, a: &Answer) -> String {
        let svc = &self.inner.service;
        ussd::render_answer(
            a.kind,
            svc.language,
            &texts::Params {
                code: a.code.as_ref().map_or("", Code::expose),
                ttl_secs: svc.code_ttl_secs,
                digits: &a.digits,
                short_code: &svc.ussd_code,
                retry_secs: a.retry_secs,
            },
        )
    }

    /// Whether an SMPP peer may send one more PDU now (its TPS and the global cap).
    pub fn admit_peer(&self, system_id: &str) -> Result<(), Refused> {
        self.inner.limits.admit_peer(system_id)
    }

    /// Whether this API key may verify now (its rate, and the guessing guard).
    pub fn admit_verify(&self, key: ApiKey) -> Result<(), Refused> {
        self.inner.limits.admit_verify(key.id)
    }

    /// Forgets rate-limit state that no longer matters; call every minute or so.
    pub fn housekeeping(&self) {
        self.inner.limits.housekeeping();
    }

    /// Verifies a code for a card, atomically in the database. A `request_id` seen
    /// before returns its first answer; reused for a different request, it is an error.
    pub async fn verify(
        &self,
        key: ApiKey,
        pan: &Pan,
        code: &str,
        request_id: &str,
    ) -> Result<VerifyOutcome, CoreError> {
        let keys = &self.inner.keys;
        let pan_hash = keys.pan_hash(pan);
        let fingerprint = keys.request_fingerprint(&pan_hash, code);
        let candidate = Code::parse(code).map(|c| keys.code_hash(&pan_hash, &c));
        let now = self.now_ms();
        let attempt = VerifyAttempt {
            api_key_id: key.id,
            request_id,
            fingerprint: &fingerprint,
            pan_hash: &pan_hash,
            now,
            max_failures: self.inner.service.max_failures,
            actor: &format!("apikey:{}", key.id),
        };
        let record = self
            .inner
            .store
            .verify(&attempt, |card, latest| {
                decide(card, latest, candidate.as_deref(), now)
            })
            .await?;
        if record.replayed && !codes::hashes_equal(&record.fingerprint, &fingerprint) {
            return Err(CoreError::RequestIdReused);
        }
        if !record.replayed {
            if record.verdict == Verdict::Rejected(Reason::Invalid)
                && self.inner.limits.record_verify_failure(key.id)
            {
                self.guard_tripped(key, now).await?;
            }
            let (result, reason) = match record.verdict {
                Verdict::Approved => ("approved", "none"),
                Verdict::Rejected(r) => ("rejected", r.as_str()),
            };
            metrics::counter!("otpgw_verifications_total", "result" => result, "reason" => reason)
                .increment(1);
            if record.locked_now {
                metrics::counter!("otpgw_card_locks_total").increment(1);
                tracing::warn!(card_id = ?record.card_id, "card locked after consecutive failed verifications");
            }
        }
        Ok(VerifyOutcome {
            verdict: record.verdict,
            locked_now: record.locked_now,
            replayed: record.replayed,
        })
    }

    /// Records whether the transport's peer accepted the message carrying a code.
    pub async fn record_delivery(&self, code_id: i64, accepted: bool) -> Result<(), CoreError> {
        let state = if accepted {
            Delivery::Submitted
        } else {
            Delivery::Undelivered
        };
        Ok(self
            .inner
            .store
            .set_delivery(code_id, state, self.now_ms())
            .await?)
    }

    /// A message carrying a code that will never reach the customer: refused for
    /// good by the SMSC, or not sent before the code expired.
    pub async fn record_undelivered(&self, code_id: i64) -> Result<(), CoreError> {
        Ok(self
            .inner
            .store
            .set_delivery(code_id, Delivery::Undelivered, self.now_ms())
            .await?)
    }

    /// An operator's SMSC accepted the message carrying a code, under its id.
    pub async fn record_submitted(
        &self,
        code_id: i64,
        connection: &str,
        message_id: &str,
    ) -> Result<(), CoreError> {
        let (dec, hex) = otpgw_parsers::receipt::message_id_keys(message_id);
        let message = MessageRef {
            connection,
            message_id,
            key_dec: dec.as_deref(),
            key_hex: hex.as_deref(),
        };
        Ok(self
            .inner
            .store
            .set_submitted(code_id, &message, self.now_ms())
            .await?)
    }

    /// A delivery receipt from an operator connection. Returns the code it was
    /// about, or `None` when no message of that connection has this id (yet).
    pub async fn record_receipt(
        &self,
        connection: &str,
        message_id: &str,
        delivery: Delivery,
    ) -> Result<Option<i64>, CoreError> {
        let (dec, hex) = otpgw_parsers::receipt::message_id_keys(message_id);
        let message = MessageRef {
            connection,
            message_id,
            key_dec: dec.as_deref(),
            key_hex: hex.as_deref(),
        };
        let code_id = self
            .inner
            .store
            .apply_receipt(&message, delivery, self.now_ms())
            .await?;
        if code_id.is_some() {
            metrics::counter!("otpgw_receipts_total", "delivery" => delivery.as_str()).increment(1);
        }
        Ok(code_id)
    }

    async fn guard_tripped(&self, key: ApiKey, now: i64) -> Result<(), CoreError> {
        tracing::warn!(
            api_key_id = key.id,
            "too many wrong codes from one API key: its verifies are refused for a while"
        );
        metrics::counter!("otpgw_verify_guard_trips_total").increment(1);
        let detail = serde_json::json!({"api_key_id": key.id, "cooldown_secs": self.inner.limits.guard_cooldown().as_secs()});
        Ok(self
            .inner
            .store
            .audit(
                None,
                "verify_guard_tripped",
                &format!("apikey:{}", key.id),
                detail,
                now,
            )
            .await?)
    }

    // ---- back office -------------------------------------------------------------

    pub async fn enroll(
        &self,
        pan: &Pan,
        msisdn_raw: &str,
        actor: &str,
    ) -> Result<Card, CoreError> {
        let keys = &self.inner.keys;
        let msisdn = self.normalize_msisdn(msisdn_raw)?;
        let card = self
            .inner
            .store
            .enroll(
                NewCard {
                    pan_hash: &keys.pan_hash(pan),
                    last4: pan.last4(),
                    last6_hash: &keys.last6_hash(pan.last6()),
                    msisdn: &msisdn,
                },
                actor,
                self.now_ms(),
            )
            .await?;
        tracing::info!(card_id = card.id, actor, "card enrolled");
        Ok(card)
    }

    pub async fn card(&self, id: i64) -> Result<Option<Card>, CoreError> {
        Ok(self.inner.store.card(id).await?)
    }

    pub async fn lookup(&self, pan: &Pan) -> Result<Option<Card>, CoreError> {
        Ok(self
            .inner
            .store
            .card_by_pan_hash(&self.inner.keys.pan_hash(pan))
            .await?)
    }

    /// Re-activates or suspends a card for the JSON API and the CLI (admin, any
    /// status); the console goes through `console_change`, which adds role limits
    /// and a mandatory reason.
    pub async fn change_status(
        &self,
        id: i64,
        change: StatusChange,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<Card, CoreError> {
        let card = self
            .inner
            .store
            .change_status(id, change, actor, reason, &[], self.now_ms())
            .await?;
        tracing::info!(
            card_id = id,
            actor,
            status = card.status.as_str(),
            "card status changed"
        );
        Ok(card)
    }

    pub async fn events(&self, id: i64) -> Result<Vec<Event>, CoreError> {
        Ok(self.inner.store.events(id, 1000).await?)
    }

    /// Creates an API key; the plaintext is returned once and only its hash is kept.
    pub async fn create_api_key(
        &self,
        role: Role,
        label: Option<&str>,
        actor: &str,
    ) -> Result<(i64, String), CoreError> {
        let key = codes::new_api_key();
        let id = self
            .inner
            .store
            .create_api_key(
                role,
                &codes::api_key_hash(&key),
                label,
                actor,
                self.now_ms(),
            )
            .await?;
        Ok((id, key))
    }

    /// Looks the key up in the database on every call, with no cache, so that a
    /// revoked key is refused at once on every node.
    pub async fn authenticate(&self, bearer: &str) -> Result<Option<ApiKey>, CoreError> {
        Ok(self
            .inner
            .store
            .api_key(&codes::api_key_hash(bearer))
            .await?)
    }
}

/// What the core decided to say, before it is rendered in the customer's language.
struct Answer {
    kind: ReplyKind,
    digits: String,
    code: Option<Code>,
    code_id: Option<i64>,
    retry_secs: u64,
}

impl Answer {
    fn say(kind: ReplyKind, digits: &str) -> Self {
        Self {
            kind,
            digits: digits.to_owned(),
            code: None,
            code_id: None,
            retry_secs: 0,
        }
    }

    /// The answer to a request over a limit: one notice, or silence.
    fn limited(admission: Admission) -> Option<Self> {
        match admission {
            Admission::Notify { retry_after, .. } => Some(Self {
                // Round up: "try again in 0 seconds" would be wrong.
                retry_secs: retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0),
                ..Self::say(ReplyKind::Limited, "")
            }),
            _ => None,
        }
    }
}

/// The verification rule. Runs inside the store's transaction with the card locked.
/// Only a wrong code counts as a failure: a right code that is used or expired shows
/// the customer had it, and a locked card is answered without comparing anything.
fn decide(
    card: &LockedCard,
    latest: Option<&LatestCode>,
    candidate: Option<&str>,
    now: i64,
) -> (Verdict, Effect) {
    if card.status != CardStatus::Active {
        return (Verdict::Rejected(Reason::Locked), Effect::None);
    }
    let matched = match (latest, candidate) {
        (Some(code), Some(candidate)) if codes::hashes_equal(&code.code_hash, candidate) => code,
        _ => return (Verdict::Rejected(Reason::Invalid), Effect::CountFailure),
    };
    match matched.state.as_str() {
        "live" if now < matched.expires_at => (Verdict::Approved, Effect::UseCode(matched.id)),
        "live" => (
            Verdict::Rejected(Reason::Expired),
            Effect::ExpireCode(matched.id),
        ),
        "used" => (Verdict::Rejected(Reason::Used), Effect::None),
        // expired, or voided by a lock or suspension: the customer must ask again.
        _ => (Verdict::Rejected(Reason::Expired), Effect::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(status: CardStatus) -> LockedCard {
        LockedCard {
            id: 1,
            status,
            failures: 0,
        }
    }

    fn code(state: &str, expires_at: i64) -> LatestCode {
        LatestCode {
            id: 7,
            code_hash: "h".into(),
            state: state.into(),
            expires_at,
        }
    }

    type Case<'a> = (
        &'a LockedCard,
        Option<LatestCode>,
        Option<&'a str>,
        i64,
        (Verdict, Effect),
    );

    #[test]
    fn decision_table() {
        let active = card(CardStatus::Active);
        let cases: &[Case<'_>] = &[
            (
                &active,
                Some(code("live", 60_000)),
                Some("h"),
                59_999,
                (Verdict::Approved, Effect::UseCode(7)),
            ),
            // Exactly at expiry the code is dead.
            (
                &active,
                Some(code("live", 60_000)),
                Some("h"),
                60_000,
                (Verdict::Rejected(Reason::Expired), Effect::ExpireCode(7)),
            ),
            (
                &active,
                Some(code("live", 60_000)),
                Some("x"),
                0,
                (Verdict::Rejected(Reason::Invalid), Effect::CountFailure),
            ),
            (
                &active,
                Some(code("live", 60_000)),
                None,
                0,
                (Verdict::Rejected(Reason::Invalid), Effect::CountFailure),
            ),
            (
                &active,
                None,
                Some("h"),
                0,
                (Verdict::Rejected(Reason::Invalid), Effect::CountFailure),
            ),
            (
                &active,
                Some(code("used", 60_000)),
                Some("h"),
                0,
                (Verdict::Rejected(Reason::Used), Effect::None),
            ),
            (
                &active,
                Some(code("expired", 60_000)),
                Some("h"),
                0,
                (Verdict::Rejected(Reason::Expired), Effect::None),
            ),
            (
                &active,
                Some(code("failed", 60_000)),
                Some("h"),
                0,
                (Verdict::Rejected(Reason::Expired), Effect::None),
            ),
        ];
        for (card, latest, candidate, now, expected) in cases {
            assert_eq!(&decide(card, latest.as_ref(), *candidate, *now), expected);
        }
        for status in [CardStatus::Locked, CardStatus::Suspended] {
            assert_eq!(
                decide(&card(status), Some(&code("live", 60_000)), Some("h"), 0),
                (Verdict::Rejected(Reason::Locked), Effect::None)
            );
        }
    }
}
