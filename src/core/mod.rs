//! The core: the gateway's rules, free of transports. SMPP and HTTP hand it an
//! [`Inbound`] request or a verify call; it answers with a [`Reply`] or a verdict.
//! It never sees a PDU, an HTTP request or a SQL row.
//!
//! * `handle` — a customer's message: find the card by (MSISDN, last digits), issue a
//!   code (stored before it is returned), or say in the customer's language why not.
//! * `verify` — the payment switch's question: is this the card's live code?
//! * card administration and API keys for the back office.

mod backoffice;
mod deliveries;
mod outbox;
mod quota;
mod tokens;

pub use outbox::{peer_target, route_target, ClaimedReply, Dispatch, ReplyPath};

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otpgw_parsers::msisdn::{normalize_msisdn, MsisdnError};
use otpgw_parsers::sms::{parse_sms_capped, SmsGrammar, SmsRequest};

use crate::config::{ClusterSettings, PolicySettings, ServiceSettings, TokenSettings};
use crate::limits::{Admission, Limits, Refused};
use crate::store::{
    Activation, ApiKey, Card, CodeRecord, Event, Issued, MessageRef, NewActivation, NewCard,
    NewCode, PushKey, StatusChange, Store, StoreError, VerifyAttempt,
};
pub use backoffice::{CardView, Health, SignedIn, SESSION_IDLE_MS, SESSION_MAX_MS};
use otpgw_rules::codes::{self, Code, Keys, Pan};
use otpgw_rules::payment::{Epin, Transaction};
pub use otpgw_rules::texts::ReplyKind;
use otpgw_rules::verify::Presented;
use otpgw_rules::vocab::{CardStatus, Channel, Delivery, Reason, Role, Verdict};
use otpgw_rules::{texts, ussd};
pub use tokens::{ActivatedToken, ActivatedTokenOutcome, EnrolledToken, TokenError, TokenRequest};

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
    /// A transport's deadline passed before the core answered (nothing is promised).
    #[error("not handled within the deadline")]
    Timeout,
    /// `[policy] require_transaction`: the request must name the payment.
    #[error("this bank requires a transaction with every code and verification")]
    TransactionRequired,
    #[error("{0}")]
    Policy(#[from] otpgw_rules::payment::PolicyError),
    #[error("this API key's role may not do that")]
    Forbidden,
    #[error("a reason is required")]
    ReasonRequired,
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// A message the core sends without being asked (a pushed code), handed to the
/// transport that holds the operator connections.
pub struct Push {
    pub to: String,
    pub text: String,
    /// The code whose delivery this message reports; `None` for an activation
    /// message, which is not a code record.
    pub code_id: Option<i64>,
    pub route: String,
    /// Epoch ms after which sending it is pointless (the code has expired).
    pub expires_at: i64,
    /// Claimed from the outbox: not to be sent from this epoch ms on.
    pub send_before: Option<i64>,
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
    /// Whether a connection of this node serving `route` can send now.
    fn holds(&self, route: &str) -> bool;
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

impl CoreError {
    /// The database is unavailable: nothing was decided, try again later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            CoreError::Store(e) => e.is_unavailable(),
            CoreError::Timeout => true,
            _ => false,
        }
    }
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
    /// Which nodes could send the reply (see `outbox`).
    pub path: ReplyPath,
}

/// What to send back. `to` is the customer's number in E.164 digits.
pub struct Reply {
    pub to: String,
    pub text: String,
    pub kind: ReplyKind,
    /// Set when the text carries a code, so the transport can record its delivery.
    pub code_id: Option<i64>,
    /// Whether this node sends it, and until when (see `outbox`).
    pub dispatch: Dispatch,
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
    /// Failures left before the card locks, on every rejection of an enrolled card
    /// (0 while locked or suspended).
    pub attempts_left: Option<i64>,
    /// The card is locked: until when (epoch ms), or `None` until re-activated.
    pub lock: Option<Option<i64>>,
}

/// An enrolled card, and under `[policy] require_activation` what became of its
/// activation code.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub card: Card,
    pub activation: Option<ActivationNotice>,
}

/// Whether the activation SMS went out.
#[derive(Debug, Clone, Copy)]
pub struct ActivationNotice {
    pub state: ActivationState,
    /// Epoch ms after which the code is void.
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationState {
    /// Queued on the operator connection serving the card's number.
    Sent,
    /// No operator connection serves the number: send again later
    /// (`POST /v1/cards/{id}/activation`).
    NoRoute,
    /// The outgoing queue was full: send again.
    QueueFull,
}

otpgw_rules::named!(ActivationState { Sent = "sent", NoRoute = "no_route", QueueFull = "queue_full" });

/// What a verify presents besides the code: the payment and the card's ePIN.
#[derive(Default, Clone, Copy)]
pub struct Factors<'a> {
    pub transaction: Option<&'a Transaction>,
    /// As typed; compared only when the card has an ePIN.
    pub epin: Option<&'a str>,
}

#[derive(Clone)]
pub struct Core {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    keys: Keys,
    service: ServiceSettings,
    policy: PolicySettings,
    tokens: TokenSettings,
    /// `[policy] max_failures`, else `[service] max_failures`.
    max_failures: i64,
    grammar: SmsGrammar,
    clock: Arc<dyn Clock>,
    limits: Limits,
    /// The same limits across every node, on PostgreSQL.
    shared: quota::SharedLimits,
    /// Set once by `serve` when client mode runs; absent in CLI commands.
    outbound: OnceLock<Arc<dyn Outbound>>,
    /// Replies any node can send (PostgreSQL).
    outbox: outbox::Outbox,
    outbox_poll: std::time::Duration,
    /// The listener's delivery states, batched.
    deliveries: deliveries::Deliveries,
    /// ePIN hashes at once: each takes argon2's memory (19 MiB), and anyone with a
    /// verifier key can ask for one per request, so they queue here instead of
    /// filling the blocking pool (up to 512 threads).
    slow_hashes: Arc<tokio::sync::Semaphore>,
}

impl Core {
    // One argument per settings section the core owns; a struct for them would only
    // repeat `Settings`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        keys: Keys,
        service: ServiceSettings,
        policy: PolicySettings,
        tokens: TokenSettings,
        limits: Limits,
        cluster: &ClusterSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let max_failures = policy.max_failures.unwrap_or(service.max_failures);
        let grammar = SmsGrammar {
            keywords: service.keywords.clone(),
            help_keywords: service.help_keywords.clone(),
        };
        Self {
            inner: Arc::new(Inner {
                outbox: outbox::Outbox::new(&store, &keys, cluster),
                outbox_poll: std::time::Duration::from_millis(cluster.outbox_poll_ms),
                slow_hashes: Arc::new(tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(2, |n| n.get()),
                )),
                store,
                keys,
                service,
                policy,
                tokens,
                max_failures,
                grammar,
                clock,
                shared: quota::SharedLimits::new(limits.settings(), limits.peer_tps()),
                limits,
                outbound: OnceLock::new(),
                deliveries: deliveries::Deliveries::default(),
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
        let answer = match self.admit_msisdn(&msisdn).await {
            Admission::Allow => self.answer(inbound, &msisdn).await?,
            over => Answer::limited(over),
        };
        let Some(mut answer) = answer else {
            tracing::debug!("over a limit and already told: no reply");
            return Ok(None);
        };
        let text = match answer.text.take() {
            Some(text) => text,
            None => self.render(&answer, lang),
        };
        metrics::counter!("otpgw_replies_total", "kind" => answer.kind.as_str(), "channel" => inbound.channel.as_str())
            .increment(1);
        Ok(Some(Reply {
            to: msisdn,
            text,
            kind: answer.kind,
            code_id: answer.code_id,
            dispatch: answer.dispatch,
        }))
    }

    fn render(&self, answer: &Answer, lang: otpgw_rules::vocab::Language) -> String {
        let svc = &self.inner.service;
        texts::render(
            answer.kind,
            lang,
            &texts::Params {
                code: answer.code.as_ref().map_or("", Code::expose),
                ttl_secs: svc.code_ttl_secs,
                digits: &answer.digits,
                short_code: svc.short_codes.first().map_or("", String::as_str),
                retry_secs: answer.retry_secs,
                transaction: None,
                cap: answer
                    .cap
                    .map(|c| (c, self.inner.policy.cap_currency.as_str())),
            },
        )
    }

    async fn answer(&self, inbound: &Inbound, msisdn: &str) -> Result<Option<Answer>, CoreError> {
        let (request, cap) = parse_sms_capped(&inbound.text, &self.inner.grammar);
        Ok(match &request {
            SmsRequest::Last4(d) | SmsRequest::Last6(d) => {
                return self.issue_for(inbound, msisdn, &request, d, cap).await
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
        cap: Option<u64>,
    ) -> Result<Option<Answer>, CoreError> {
        let keys = &self.inner.keys;
        let limits = &self.inner.limits;
        let now = self.now_ms();
        let cards: Vec<Card> = self
            .inner
            .store
            .cards_by_msisdn(msisdn)
            .await?
            .into_iter()
            .map(|c| c.as_of(now))
            .collect();
        if cards.is_empty() {
            // Unknown numbers get one notice per window: never amplify abuse.
            let notify = limits.notify_unknown_sender(msisdn)
                && matches!(
                    self.inner
                        .shared
                        .unknown_sender(&self.inner.store, msisdn, self.now_ms())
                        .await,
                    quota::Shared::Allow
                );
            return Ok(notify.then(|| Answer::say(ReplyKind::NotEnrolled, "")));
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
        match card.status {
            CardStatus::Active => {}
            CardStatus::Pending => {
                return Ok(Some(Answer::say(ReplyKind::NotActivated, &card.last4)))
            }
            _ => return Ok(Some(Answer::say(ReplyKind::Locked, &card.last4))),
        }
        match limits.admit_card(msisdn, card.id) {
            Admission::Allow => {}
            over => return Ok(Answer::limited(over)),
        }
        let now = self.now_ms();
        if let quota::Shared::Over(wait) = self
            .inner
            .shared
            .card(&self.inner.store, card.id, now)
            .await
        {
            return Ok(Answer::limited(limits.over(msisdn, wait, "card")));
        }
        let code = Code::generate();
        let ttl_ms = i64::try_from(self.inner.service.code_ttl_secs * 1000).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(ttl_ms);
        let mut answer = Answer {
            code: Some(code),
            cap,
            ..Answer::say(ReplyKind::Code, &card.last4)
        };
        // With several nodes the reply goes into the outbox with the code, so it is
        // rendered now; the same text is what this node sends if it holds the session.
        let rendered = self.inner.outbox.wants(&inbound.path).then(|| {
            self.render(
                &answer,
                texts::detect_language(&inbound.text, self.inner.service.language),
            )
        });
        let outboxed = rendered.as_ref().and_then(|text| {
            self.inner
                .outbox
                .prepare(&inbound.path, msisdn, text, expires_at, now)
        });
        let code = answer.code.as_ref().expect("set above");
        let issued = self
            .inner
            .store
            .issue_code(
                NewCode {
                    card_id: card.id,
                    code_hash: &keys.code_hash(&card.pan_hash, code),
                    channel: inbound.channel,
                    peer: &inbound.peer,
                    issued_at: now,
                    expires_at,
                    delivery: None,
                    route: None,
                    txn_hash: None,
                    cap: cap.map(|c| i64::try_from(c).unwrap_or(i64::MAX)),
                    outbox: outboxed.as_ref().map(|(row, _)| row.clone()),
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
                if let Some((row, dispatch)) = outboxed {
                    answer.text = rendered;
                    answer.dispatch = dispatch;
                    tracing::debug!(target = %row.target, held_here = dispatch != Dispatch::Elsewhere, "reply in the outbox");
                }
                answer.code_id = Some(code_id);
                answer
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
        transaction: Option<&Transaction>,
    ) -> Result<Pushed, CoreError> {
        let keys = &self.inner.keys;
        let store = &self.inner.store;
        if self.inner.policy.require_transaction && transaction.is_none() {
            return Err(CoreError::TransactionRequired);
        }
        let pan_hash = keys.pan_hash(pan);
        // A retry must name the same card and the same payment. (An unbound push
        // keeps the plain card hash as its fingerprint, as before policies.)
        let fingerprint = match transaction {
            Some(t) => keys.request_fingerprint(&pan_hash, "push", Some(t)),
            None => pan_hash.clone(),
        };
        let txn_hash = transaction.map(|t| keys.transaction_hash(t));
        let push = PushKey {
            api_key_id: key.id,
            request_id,
            fingerprint: &fingerprint,
        };
        // A retry is answered as the first request was, before any check or limit
        // that could answer it otherwise (or spend the card's budget again).
        if let Some(Issued::Replayed {
            code_id,
            fingerprint,
        }) = store.push(key.id, request_id).await?
        {
            return self.replayed_push(code_id, &fingerprint, &push).await;
        }
        let card = store
            .card_by_pan_hash(&pan_hash)
            .await?
            .ok_or(CoreError::NotEnrolled)?
            .as_of(self.now_ms());
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
        if let quota::Shared::Over(retry_after) = self
            .inner
            .shared
            .card(&self.inner.store, card.id, self.now_ms())
            .await
        {
            metrics::counter!("otpgw_limited_total", "rule" => "card").increment(1);
            return Err(CoreError::Limited { retry_after });
        }
        let code = Code::generate();
        let now = self.now_ms();
        let ttl_ms = i64::try_from(self.inner.service.code_ttl_secs * 1000).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(ttl_ms);
        let peer = format!("api:{}", key.id);
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
                transaction,
                cap: None,
            },
        );
        // With several nodes: into the outbox, sent by this node if one of its
        // connections serves the route now, else by the first node that has one.
        let path = ReplyPath::Shared {
            target: route_target(&route),
            held_here: outbound.holds(&route),
        };
        let outboxed = self
            .inner
            .outbox
            .prepare(&path, &card.msisdn, &text, expires_at, now);
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
                    txn_hash: txn_hash.as_deref(),
                    cap: None,
                    outbox: outboxed.as_ref().map(|(row, _)| row.clone()),
                },
                &format!("apikey:{}", key.id),
                &push,
            )
            .await?;
        let code_id = match issued {
            Issued::Code { code_id, .. } => code_id,
            Issued::NotActive(status) => return Err(CoreError::CardNotActive(status)),
            // A concurrent request with the same id won the race.
            Issued::Replayed {
                code_id,
                fingerprint,
            } => return self.replayed_push(code_id, &fingerprint, &push).await,
        };
        metrics::counter!("otpgw_codes_issued_total", "channel" => "push").increment(1);
        tracing::info!(card_id = card.id, code_id, route = %route, "code pushed");
        let send_before = match outboxed.map(|(_, dispatch)| dispatch) {
            None | Some(Dispatch::Direct) => None,
            Some(Dispatch::Claimed { send_before }) => Some(send_before),
            // Waits in the outbox for a node with a connection of its route.
            Some(Dispatch::Elsewhere) => {
                return Ok(Pushed {
                    code_id,
                    expires_at,
                    delivery: Some(Delivery::Queued),
                    replayed: false,
                })
            }
        };
        let queued = outbound.send(Push {
            to: card.msisdn.clone(),
            text,
            code_id: Some(code_id),
            route,
            expires_at,
            send_before,
        });
        if !queued && send_before.is_none() {
            // Committed but never sent: say so in its record, and to the caller.
            store
                .set_delivery(code_id, Delivery::Undelivered, self.now_ms())
                .await?;
            return Err(CoreError::Busy);
        }
        // (In the outbox, a push this node could not queue is claimed again once
        // its lease runs out.)
        Ok(Pushed {
            code_id,
            expires_at,
            delivery: Some(Delivery::Queued),
            replayed: false,
        })
    }

    /// The answer to a push whose request id was seen before: that push's code if
    /// the request is the same, else `RequestIdReused`.
    async fn replayed_push(
        &self,
        code_id: i64,
        fingerprint: &str,
        push: &PushKey<'_>,
    ) -> Result<Pushed, CoreError> {
        if !codes::hashes_equal(fingerprint, push.fingerprint) {
            return Err(CoreError::RequestIdReused);
        }
        let record = self
            .inner
            .store
            .code(code_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("pushed code vanished".into()))?;
        Ok(Pushed {
            code_id,
            expires_at: record.expires_at,
            delivery: record.delivery,
            replayed: true,
        })
    }

    /// A code's record for the back office: channel, route, connection, states and
    /// times, never the code.
    pub async fn code(&self, id: i64) -> Result<Option<CodeRecord>, CoreError> {
        Ok(self.inner.store.code(id).await?)
    }

    /// One step of a USSD dialogue. `path` holds every input since the dial (the
    /// segments of a one-shot `*720*1*1234#` included); digits at the end of it issue a
    /// code exactly as an SMS would, with channel `ussd` and the customer's cap if the
    /// path gave one (`*720*1*1234*2500000#`, or `1234 2500000` typed in the menu).
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
                ussd::Walk::Last4(d, cap) | ussd::Walk::Last6(d, cap) => {
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
                        // A USSD screen lives and dies with its dialogue.
                        path: ReplyPath::Local,
                    };
                    let answer = match self.admit_msisdn(&msisdn).await {
                        Admission::Allow => {
                            self.issue_for(&inbound, &msisdn, &request, &d, cap).await?
                        }
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
    /// The final screen of a dialogue that went past its bounds (too many steps, an
    /// input too long, no room for another dialogue).
    pub fn ussd_over_limit(&self) -> String {
        ussd::render(
            ussd::Screen::InvalidEnd,
            self.inner.service.language,
            &self.inner.service.ussd_code,
        )
    }

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
                cap: a.cap.map(|c| (c, self.inner.policy.cap_currency.as_str())),
                ..texts::Params::default()
            },
        )
    }

    /// A customer's message against the per-MSISDN limits: this node's first (a flood
    /// stops here), then the cluster's.
    async fn admit_msisdn(&self, msisdn: &str) -> Admission {
        match self.inner.limits.admit_msisdn(msisdn) {
            Admission::Allow => {}
            over => return over,
        }
        match self
            .inner
            .shared
            .msisdn(&self.inner.store, msisdn, self.now_ms())
            .await
        {
            quota::Shared::Allow => Admission::Allow,
            quota::Shared::Over(wait) => self.inner.limits.over(msisdn, wait, "msisdn"),
        }
    }

    /// Whether an SMPP peer may send one more PDU now (its TPS and the global cap).
    pub fn admit_peer(&self, system_id: &str) -> Result<(), Refused> {
        self.inner.limits.admit_peer(system_id)
    }

    /// The same, across every node (PostgreSQL; on SQLite always yes): one
    /// database decision per limit, after this node's limiter let the PDU through.
    /// A slow or failing database leaves this node's decision standing.
    pub async fn admit_peer_everywhere(&self, system_id: &str) -> Result<(), Refused> {
        self.inner
            .shared
            .peer(&self.inner.store, system_id, self.now_ms())
            .await
            .map_err(|(rule, retry_after)| {
                metrics::counter!("otpgw_limited_total", "rule" => rule).increment(1);
                Refused { retry_after, rule }
            })
    }

    /// Whether this API key may verify now (its rate, and the guessing guard).
    pub fn admit_verify(&self, key: ApiKey) -> Result<(), Refused> {
        self.inner.limits.admit_verify(key.id)
    }

    /// Forgets rate-limit state that no longer matters; call every minute or so.
    /// Periodic upkeep: forget idle limiter keys, and delete verification records
    /// past their retention (the request_id memory would otherwise grow forever).
    pub async fn housekeeping(&self) {
        self.inner.limits.housekeeping();
        if self.inner.outbox.enabled() {
            match self.inner.store.sweep_replies(self.now_ms()).await {
                Ok(0) => {}
                Ok(n) => {
                    // Nobody held a session for them while their codes were valid.
                    metrics::counter!("otpgw_outbox_expired_total").increment(n);
                    tracing::warn!(replies = n, "replies expired in the outbox unsent");
                }
                Err(e) => tracing::warn!(error = %e, "could not sweep the outbox"),
            }
        }
        self.inner
            .shared
            .sweep(&self.inner.store, self.now_ms())
            .await;
        let retention = i64::try_from(self.inner.service.verify_retention_days)
            .unwrap_or(i64::MAX / 86_400_000)
            .saturating_mul(86_400_000);
        let before = self.now_ms().saturating_sub(retention);
        match self.inner.store.prune_verifications(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "old verification records pruned"),
            Err(e) => tracing::warn!(error = %e, "could not prune verification records"),
        }
    }

    /// Verifies a code for a card, atomically in the database. A `request_id` seen
    /// before returns its first answer; reused for a different request, it is an error.
    ///
    /// With an ePIN on the card, the ePIN is checked here (argon2, off the async
    /// threads) against the hash read before the transaction; the rule then treats
    /// a wrong ePIN exactly as a wrong code, so the answer never tells them apart.
    pub async fn verify(
        &self,
        key: ApiKey,
        pan: &Pan,
        code: &str,
        request_id: &str,
        factors: Factors<'_>,
    ) -> Result<VerifyOutcome, CoreError> {
        let keys = &self.inner.keys;
        let policy = &self.inner.policy;
        if policy.require_transaction && factors.transaction.is_none() {
            return Err(CoreError::TransactionRequired);
        }
        let pan_hash = keys.pan_hash(pan);
        self.inner
            .limits
            .admit_card_guess(key.id, &pan_hash)
            .map_err(|r| CoreError::Limited {
                retry_after: r.retry_after,
            })?;
        let fingerprint = keys.request_fingerprint(&pan_hash, code, factors.transaction);
        let epin_matched = match factors.epin {
            Some(raw) => self.check_epin(&pan_hash, raw).await?,
            None => None,
        };
        let presented = Presented {
            candidate: Code::parse(code).map(|c| keys.code_hash(&pan_hash, &c)),
            epin_matched,
            txn_hash: factors.transaction.map(|t| keys.transaction_hash(t)),
            // A cap is in whole units of one currency: another currency cannot be
            // shown to stay under it, so it counts as above.
            cap_amount: factors.transaction.map(|t| {
                if t.currency == policy.cap_currency {
                    i64::try_from(t.whole_units()).unwrap_or(i64::MAX)
                } else {
                    i64::MAX
                }
            }),
            require_transaction: policy.require_transaction,
        };
        let check = self.token_check(code, factors.transaction);
        let now = self.now_ms();
        let attempt = VerifyAttempt {
            api_key_id: key.id,
            request_id,
            fingerprint: &fingerprint,
            pan_hash: &pan_hash,
            now,
            max_failures: self.inner.max_failures,
            lock_ms: policy.lock.timed_ms(),
            actor: &format!("apikey:{}", key.id),
        };
        let record = self
            .inner
            .store
            .verify(&attempt, move |card, latest, tokens| {
                otpgw_rules::tokens::decide::decide_tokens(
                    card, latest, tokens, &check, &presented, now,
                )
            })
            .await?;
        if record.replayed && !codes::hashes_equal(&record.fingerprint, &fingerprint) {
            return Err(CoreError::RequestIdReused);
        }
        if !record.replayed {
            if record.verdict == Verdict::Rejected(Reason::Invalid) {
                self.inner.limits.record_card_failure(key.id, &pan_hash);
                if self.inner.limits.record_verify_failure(key.id) {
                    self.guard_tripped(key, now).await?;
                }
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
            attempts_left: record.attempts_left,
            lock: record.lock,
        })
    }

    /// Checks a presented ePIN against the card's hash. Returns the hash it matched
    /// (the rule compares it with the card's under lock), or `None`: no such card,
    /// no ePIN on it, malformed, or wrong.
    async fn check_epin(&self, pan_hash: &str, raw: &str) -> Result<Option<String>, CoreError> {
        let Ok(epin) = Epin::parse(raw) else {
            return Ok(None);
        };
        let Some(stored) = self
            .inner
            .store
            .card_by_pan_hash(pan_hash)
            .await?
            .and_then(|c| c.epin_hash)
        else {
            return Ok(None);
        };
        let keys = self.inner.keys.clone();
        let permit = self.slow_hash_permit().await?;
        let matched = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            keys.epin_matches(&stored, &epin).then_some(stored)
        })
        .await
        .map_err(|_| StoreError::Unavailable("the ePIN check did not finish".into()))?;
        Ok(matched)
    }

    /// A place among the ePIN hashes running at once (`Inner::slow_hashes`).
    async fn slow_hash_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, StoreError> {
        Arc::clone(&self.inner.slow_hashes)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the ePIN check is closed".into()))
    }

    /// Sets a card's ePIN (refusing weak ones) or clears it (`None`). The slow hash
    /// runs off the async threads; the ePIN goes nowhere but into it.
    pub async fn set_epin(
        &self,
        id: i64,
        epin: Option<&str>,
        actor: &str,
    ) -> Result<Card, CoreError> {
        let hash = match epin {
            Some(raw) => {
                let epin = Epin::new_strong(raw)?;
                let keys = self.inner.keys.clone();
                let permit = self.slow_hash_permit().await?;
                Some(
                    tokio::task::spawn_blocking(move || {
                        let _permit = permit;
                        keys.epin_hash(&epin)
                    })
                    .await
                    .map_err(|_| StoreError::Unavailable("the ePIN hash did not finish".into()))?,
                )
            }
            None => None,
        };
        let set = hash.is_some();
        let card = self
            .inner
            .store
            .set_epin(id, hash, actor, self.now_ms())
            .await?;
        tracing::info!(card_id = id, actor, set, "card ePIN changed");
        Ok(card.as_of(self.now_ms()))
    }

    /// Records whether the transport's peer accepted the message carrying a code.
    pub async fn record_delivery(&self, code_id: i64, accepted: bool) -> Result<(), CoreError> {
        let state = if accepted {
            Delivery::Submitted
        } else {
            Delivery::Undelivered
        };
        // Either answer is final: its outbox row, if any, goes with it. Written in
        // a batch with others (see `deliveries`), or here if that queue is full.
        let inner = &self.inner;
        if inner
            .deliveries
            .record(&inner.store, &inner.clock, code_id, state)
        {
            return Ok(());
        }
        Ok(inner
            .store
            .set_delivery(code_id, state, self.now_ms())
            .await?)
    }

    /// Writes the delivery states still queued (at shutdown, before the store closes).
    pub async fn flush_deliveries(&self) {
        self.inner.deliveries.flush().await;
    }

    /// Whether replies are shared through the outbox (several nodes), and how often
    /// a transport should look for replies it can send.
    pub fn outbox(&self) -> Option<std::time::Duration> {
        self.inner
            .outbox
            .enabled()
            .then_some(self.inner.outbox_poll)
    }

    /// Claims replies waiting for `target` that this node may now send.
    pub async fn claim_replies(&self, target: &str) -> Result<Vec<ClaimedReply>, CoreError> {
        Ok(self
            .inner
            .outbox
            .claim(&self.inner.store, target, self.now_ms())
            .await?)
    }

    /// Hands this node's unsent claimed replies back at shutdown.
    pub async fn release_replies(&self) {
        if !self.inner.outbox.enabled() {
            return;
        }
        match self
            .inner
            .store
            .release_replies(self.inner.outbox.node())
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(replies = n, "unsent replies handed back to other nodes"),
            Err(e) => tracing::warn!(error = %e, "could not hand back claimed replies"),
        }
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
        Ok(self.enroll_card(pan, msisdn_raw, actor).await?.card)
    }

    /// Enrolls a card. Under `[policy] require_activation` it starts `pending`, and
    /// an activation code (valid `activation_ttl_secs`) is committed with it, then
    /// sent to its phone through client mode's operator connections; the answer
    /// says whether that worked, so the bank can send again
    /// (`resend_activation`).
    pub async fn enroll_card(
        &self,
        pan: &Pan,
        msisdn_raw: &str,
        actor: &str,
    ) -> Result<Enrolled, CoreError> {
        let keys = &self.inner.keys;
        let msisdn = self.normalize_msisdn(msisdn_raw)?;
        let pan_hash = keys.pan_hash(pan);
        let now = self.now_ms();
        let activation = self.inner.policy.require_activation.then(|| {
            let code = Code::generate();
            let hash = keys.activation_hash(&pan_hash, &code);
            (code, hash, now.saturating_add(self.activation_ttl_ms()))
        });
        let card = self
            .inner
            .store
            .enroll(
                NewCard {
                    pan_hash: &pan_hash,
                    last4: pan.last4(),
                    last6_hash: &keys.last6_hash(pan.last6()),
                    msisdn: &msisdn,
                    activation: activation
                        .as_ref()
                        .map(|(_, hash, expires_at)| NewActivation {
                            code_hash: hash,
                            expires_at: *expires_at,
                        }),
                },
                actor,
                now,
            )
            .await?;
        tracing::info!(
            card_id = card.id,
            actor,
            status = card.status.as_str(),
            "card enrolled"
        );
        let activation = match activation {
            Some((code, _, expires_at)) => Some(
                self.send_activation(&card, &code, expires_at, actor)
                    .await?,
            ),
            None => None,
        };
        Ok(Enrolled { card, activation })
    }

    /// A new activation code for a pending card (the first could not be sent, or
    /// expired, or was voided by wrong attempts), sent as at enrollment.
    pub async fn resend_activation(&self, id: i64, actor: &str) -> Result<Enrolled, CoreError> {
        let keys = &self.inner.keys;
        let card = self
            .inner
            .store
            .card(id)
            .await?
            .ok_or(StoreError::NoSuchCard)?;
        let code = Code::generate();
        let now = self.now_ms();
        let expires_at = now.saturating_add(self.activation_ttl_ms());
        let card = self
            .inner
            .store
            .renew_activation(
                id,
                NewActivation {
                    code_hash: &keys.activation_hash(&card.pan_hash, &code),
                    expires_at,
                },
                actor,
                now,
            )
            .await?;
        let activation = Some(
            self.send_activation(&card, &code, expires_at, actor)
                .await?,
        );
        Ok(Enrolled { card, activation })
    }

    /// Confirms a pending card's activation code (the customer read it from the
    /// SMS to the ATM, app or branch). Wrong codes are counted and audited; at
    /// `[policy] activation_max_failures` the activation is voided.
    pub async fn activate(
        &self,
        id: i64,
        code: &str,
        actor: &str,
    ) -> Result<Activation, CoreError> {
        let card = self
            .inner
            .store
            .card(id)
            .await?
            .ok_or(StoreError::NoSuchCard)?;
        let candidate =
            Code::parse(code).map(|c| self.inner.keys.activation_hash(&card.pan_hash, &c));
        let outcome = self
            .inner
            .store
            .activate(
                id,
                candidate,
                self.inner.policy.activation_max_failures,
                actor,
                self.now_ms(),
            )
            .await?;
        match &outcome {
            Activation::Activated(_) => tracing::info!(card_id = id, actor, "card activated"),
            other => tracing::info!(card_id = id, actor, outcome = ?other, "activation refused"),
        }
        Ok(outcome)
    }

    fn activation_ttl_ms(&self) -> i64 {
        i64::try_from(self.inner.policy.activation_ttl_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX)
    }

    /// Hands an activation SMS to client mode's route for the card's number. The
    /// code is already committed; the message carries no code record.
    async fn send_activation(
        &self,
        card: &Card,
        code: &Code,
        expires_at: i64,
        actor: &str,
    ) -> Result<ActivationNotice, CoreError> {
        let sms = ActivationSms {
            kind: ReplyKind::Activation,
            code: code.expose(),
            ttl_secs: self.inner.policy.activation_ttl_secs,
            event: "activation_sent",
            detail: serde_json::json!({}),
        };
        self.send_activation_sms(card, sms, expires_at, actor).await
    }

    /// An activation message (a card's code, a token's SMS part) to the card's
    /// phone through client mode's route for its number, and its audit event. Not in
    /// the reply outbox: it carries no code record.
    async fn send_activation_sms(
        &self,
        card: &Card,
        sms: ActivationSms<'_>,
        expires_at: i64,
        actor: &str,
    ) -> Result<ActivationNotice, CoreError> {
        let svc = &self.inner.service;
        let route = self
            .inner
            .outbound
            .get()
            .and_then(|o| o.route_for(&card.msisdn).map(|r| (o, r)));
        let state = match route {
            None => ActivationState::NoRoute,
            Some((outbound, route)) => {
                let text = texts::render(
                    sms.kind,
                    svc.language,
                    &texts::Params {
                        code: sms.code,
                        ttl_secs: sms.ttl_secs,
                        digits: &card.last4,
                        ..texts::Params::default()
                    },
                );
                let queued = outbound.send(Push {
                    to: card.msisdn.clone(),
                    text,
                    code_id: None,
                    route,
                    expires_at,
                    send_before: None,
                });
                if queued {
                    ActivationState::Sent
                } else {
                    ActivationState::QueueFull
                }
            }
        };
        let mut detail = sms.detail;
        detail["state"] = state.as_str().into();
        detail["expires_at"] = expires_at.into();
        self.inner
            .store
            .audit(Some(card.id), sms.event, actor, detail, self.now_ms())
            .await?;
        Ok(ActivationNotice { state, expires_at })
    }

    pub async fn card(&self, id: i64) -> Result<Option<Card>, CoreError> {
        let now = self.now_ms();
        Ok(self.inner.store.card(id).await?.map(|c| c.as_of(now)))
    }

    pub async fn lookup(&self, pan: &Pan) -> Result<Option<Card>, CoreError> {
        let now = self.now_ms();
        Ok(self
            .inner
            .store
            .card_by_pan_hash(&self.inner.keys.pan_hash(pan))
            .await?
            .map(|c| c.as_of(now)))
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

/// What an activation message says, and how its sending is audited.
struct ActivationSms<'a> {
    kind: ReplyKind,
    code: &'a str,
    ttl_secs: u64,
    event: &'static str,
    /// Audit detail; `state` and `expires_at` are added.
    detail: serde_json::Value,
}

/// What the core decided to say, before it is rendered in the customer's language.
struct Answer {
    kind: ReplyKind,
    digits: String,
    code: Option<Code>,
    code_id: Option<i64>,
    retry_secs: u64,
    /// The customer's cap on the code just issued, restated in the reply.
    cap: Option<u64>,
    /// Rendered ahead, when it had to be sealed into the outbox.
    text: Option<String>,
    dispatch: Dispatch,
}

impl Answer {
    fn say(kind: ReplyKind, digits: &str) -> Self {
        Self {
            kind,
            digits: digits.to_owned(),
            code: None,
            code_id: None,
            retry_secs: 0,
            cap: None,
            text: None,
            dispatch: Dispatch::Direct,
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
