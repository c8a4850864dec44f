//! Issuing codes: a customer's SMS (or USSD step, `ussd.rs`) asking for one, and a
//! code the payment switch pushes to the card's phone. Both go the same way: find
//! the card, admit it, generate the code, commit it (with its reply in the outbox
//! when several nodes share the store), and only then render the text that carries
//! it. A pushed code is then handed out (`handout.rs`); a reply goes back to the
//! transport that asked.

use std::sync::Arc;

use otpgw_parsers::sms::{parse_sms_capped, SmsGrammar, SmsRequest};
use otpgw_rules::codes::{self, Code, Keys, Pan};
use otpgw_rules::payment::Transaction;
use otpgw_rules::records::{ApiKey, Card, CodeRecord};
use otpgw_rules::texts::{self, ReplyKind};
use otpgw_rules::vocab::{CardStatus, Channel, Delivery, Language};
use otpgw_rules::wording::Wording;

use super::admission::{Admission, Admit};
use super::handout::{HandOut, Push};
use super::live::Live;
use super::outbox::{route_target, Dispatch, Outbox, ReplyPath};
use super::ports::{CardStore, CodeStore, Issued, NewCode, PushKey};
use super::simswap::{Clearance, SimSwapGuard};
use super::{Clock, CoreError, DomainError, Inbound, Reply};
use crate::config::{PolicySettings, ServiceSettings};

#[derive(Clone)]
pub struct Issue(pub(super) Arc<Inner>);

pub(super) struct Inner {
    pub cards: Arc<dyn CardStore>,
    pub codes: Arc<dyn CodeStore>,
    pub admission: Admission,
    pub keys: Keys,
    pub service: ServiceSettings,
    /// `[policy]`, as the last reload left it.
    pub policy: Live<PolicySettings>,
    pub grammar: SmsGrammar,
    /// The replies outbox, with several nodes on one database (PostgreSQL).
    pub outbox: Option<Arc<Outbox>>,
    pub handout: Arc<HandOut>,
    /// The bank's wording of what customers read (`[messages]`).
    pub wording: Live<Wording>,
    /// `[sim_swap]`: asked before any code goes to a phone.
    pub sim_swap: Option<SimSwapGuard>,
    pub clock: Arc<dyn Clock>,
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

/// What the core decided to say, before it is rendered in the customer's language.
pub(super) struct Answer {
    pub kind: ReplyKind,
    pub digits: String,
    pub code: Option<Code>,
    pub code_id: Option<i64>,
    pub retry_secs: u64,
    /// The customer's cap on the code just issued, restated in the reply.
    pub cap: Option<u64>,
    /// Rendered ahead, when it had to be sealed into the outbox.
    pub text: Option<String>,
    pub dispatch: Dispatch,
}

impl Answer {
    pub(super) fn say(kind: ReplyKind, digits: &str) -> Self {
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
    pub(super) fn limited(admit: Admit) -> Option<Self> {
        match admit {
            Admit::Notify { retry_after, .. } => Some(Self {
                // Round up: "try again in 0 seconds" would be wrong.
                retry_secs: retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0),
                ..Self::say(ReplyKind::Limited, "")
            }),
            _ => None,
        }
    }

    /// The parameters of this answer's text (`short_code` as the text names it).
    pub(super) fn params<'a>(
        &'a self,
        inner: &'a Inner,
        policy: &'a PolicySettings,
        short_code: &'a str,
    ) -> texts::Params<'a> {
        texts::Params {
            code: self.code.as_ref().map_or("", Code::expose),
            ttl_secs: inner.service.code_ttl_secs,
            digits: &self.digits,
            short_code,
            retry_secs: self.retry_secs,
            transaction: None,
            cap: self.cap.map(|c| (c, policy.cap_currency.as_str())),
        }
    }
}

impl Inner {
    pub(super) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn expires_at(&self, now: i64) -> i64 {
        let ttl_ms = i64::try_from(self.service.code_ttl_secs * 1000).unwrap_or(i64::MAX);
        now.saturating_add(ttl_ms)
    }

    /// The SIM-swap check, when the bank configured one.
    async fn clear_sim(
        &self,
        card: &Card,
        channel: &str,
        actor: &str,
    ) -> Result<Clearance, CoreError> {
        match &self.sim_swap {
            Some(guard) => guard.clear(card, channel, actor).await,
            None => Ok(Clearance::Clear),
        }
    }

    fn render(&self, answer: &Answer, lang: Language) -> String {
        let short_code = self.service.short_codes.first().map_or("", String::as_str);
        let policy = self.policy.get();
        let params = answer.params(self, &policy, short_code);
        self.wording.get().render(answer.kind, lang, &params, false)
    }

    /// Issues a code for the card the customer named by its last digits, or says
    /// why not. `None`: stay silent (an unknown number already told this window).
    pub(super) async fn issue_for(
        &self,
        inbound: &Inbound,
        msisdn: &str,
        request: &SmsRequest,
        digits: &str,
        cap: Option<u64>,
    ) -> Result<Option<Answer>, CoreError> {
        let now = self.now();
        let cards: Vec<Card> = self
            .cards
            .cards_by_msisdn(msisdn)
            .await?
            .into_iter()
            .map(|c| c.as_of(now))
            .collect();
        if cards.is_empty() {
            // Unknown numbers get one notice per window: never amplify abuse.
            let notify = self.admission.unknown_sender(msisdn).await;
            return Ok(notify.then(|| Answer::say(ReplyKind::NotEnrolled, "")));
        }
        let matching: Vec<&Card> = match request {
            SmsRequest::Last6(d) => {
                let h = self.keys.last6_hash(d);
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
        match self.admission.card(msisdn, card.id).await {
            Admit::Allow => {}
            over => return Ok(Answer::limited(over)),
        }
        let actor = format!("{}:{}", inbound.channel.as_str(), inbound.peer);
        match self
            .clear_sim(card, inbound.channel.as_str(), &actor)
            .await?
        {
            Clearance::Clear => {}
            Clearance::Swapped => return Ok(Some(Answer::say(ReplyKind::SimSwapped, &card.last4))),
            Clearance::Unchecked(_) => return Ok(Some(Answer::say(ReplyKind::Unavailable, ""))),
        }
        let now = self.now();
        let expires_at = self.expires_at(now);
        let mut answer = Answer {
            code: Some(Code::generate()),
            cap,
            ..Answer::say(ReplyKind::Code, &card.last4)
        };
        // With several nodes the reply goes into the outbox with the code, so it is
        // rendered now; the same text is what this node sends if it holds the session.
        let outbox = self.outbox.as_ref().filter(|o| o.wants(&inbound.path));
        let rendered = outbox.map(|_| {
            self.render(
                &answer,
                texts::detect_language(&inbound.text, self.service.language),
            )
        });
        let outboxed = outbox.zip(rendered.as_ref()).and_then(|(outbox, text)| {
            outbox.prepare(&inbound.path, msisdn, text, expires_at, now)
        });
        let code = answer.code.as_ref().expect("set above");
        let issued = self
            .codes
            .issue_code(
                NewCode {
                    card_id: card.id,
                    code_hash: &self.keys.code_hash(&card.pan_hash, code),
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
                &actor,
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
                return Err(DomainError::internal("replay of an unkeyed code").into())
            }
        }))
    }
}

impl Issue {
    fn normalize(&self, raw: &str) -> Result<String, CoreError> {
        super::normalize_msisdn(raw, &self.0.service.country_code)
    }

    /// Answers one customer message; `None` means stay silent (a limit already
    /// told this customer when to come back). A code is committed to the store
    /// before this returns the reply that carries it.
    pub async fn sms(&self, inbound: &Inbound) -> Result<Option<Reply>, CoreError> {
        let inner = &self.0;
        let msisdn = self.normalize(&inbound.from)?;
        let lang = texts::detect_language(&inbound.text, inner.service.language);
        let answer = match inner.admission.msisdn(&msisdn).await {
            Admit::Allow => self.answer(inbound, &msisdn).await?,
            over => Answer::limited(over),
        };
        let Some(mut answer) = answer else {
            tracing::debug!("over a limit and already told: no reply");
            return Ok(None);
        };
        let text = match answer.text.take() {
            Some(text) => text,
            None => inner.render(&answer, lang),
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

    async fn answer(&self, inbound: &Inbound, msisdn: &str) -> Result<Option<Answer>, CoreError> {
        let (request, cap) = parse_sms_capped(&inbound.text, &self.0.grammar);
        Ok(match &request {
            SmsRequest::Last4(d) | SmsRequest::Last6(d) => {
                return self.0.issue_for(inbound, msisdn, &request, d, cap).await
            }
            SmsRequest::FullPan => {
                tracing::warn!(peer = %inbound.peer, "a full card number was received; it was discarded and the customer warned");
                Some(Answer::say(ReplyKind::FullPan, ""))
            }
            SmsRequest::Help | SmsRequest::Empty => Some(Answer::say(ReplyKind::Help, "")),
            SmsRequest::Unrecognised => Some(Answer::say(ReplyKind::Unrecognised, "")),
        })
    }

    /// A code the payment switch asks for (the payment page's "send me a code"):
    /// issued under the same rules as a requested one and sent by SMS to the card's
    /// phone through the route serving its number. Idempotent on `request_id`.
    /// The code is committed (state `queued`) before it is handed to the route.
    pub async fn push(
        &self,
        key: ApiKey,
        pan: &Pan,
        request_id: &str,
        transaction: Option<&Transaction>,
    ) -> Result<Pushed, CoreError> {
        let inner = &self.0;
        let keys = &inner.keys;
        if inner.policy.get().require_transaction && transaction.is_none() {
            return Err(CoreError::TransactionRequired);
        }
        let pan_hash = keys.pan_hash(pan);
        // A retry must name the same card and the same payment. (An unbound push
        // keeps the plain card hash as its fingerprint, as before policies.)
        let fingerprint = match transaction {
            Some(t) => keys.request_fingerprint(&pan_hash, "push", Some(t)),
            None => pan_hash.clone(),
        };
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
        }) = inner.codes.push(key.id, request_id).await?
        {
            return self.replayed_push(code_id, &fingerprint, &push).await;
        }
        let card = inner
            .cards
            .card_by_pan_hash(&pan_hash)
            .await?
            .ok_or(CoreError::NotEnrolled)?
            .as_of(inner.now());
        if card.status != CardStatus::Active {
            return Err(CoreError::CardNotActive(card.status));
        }
        let hold = inner.policy.get().after_phone_change;
        if let Some(until) = hold.holds_until(card.phone_changed_at, inner.now()) {
            return Err(CoreError::PhoneRecentlyChanged { until });
        }
        let outbound = inner.handout.outbound().ok_or(CoreError::NoRoute)?;
        let route = outbound.route_for(&card.msisdn).ok_or(CoreError::NoRoute)?;
        inner.admission.push(key.id, card.id, &card.msisdn).await?;
        match inner.clear_sim(&card, "push", &key.actor()).await? {
            Clearance::Clear => {}
            Clearance::Swapped => return Err(CoreError::SimSwapped),
            Clearance::Unchecked(e) => return Err(CoreError::SimSwapUnchecked(e)),
        }
        let code = Code::generate();
        let now = inner.now();
        let expires_at = inner.expires_at(now);
        let svc = &inner.service;
        // The customer's language when the bank gave one (a +44 number reads English).
        let text = inner.wording.get().render(
            ReplyKind::Code,
            card.language.unwrap_or(svc.language),
            &texts::Params {
                code: code.expose(),
                ttl_secs: svc.code_ttl_secs,
                digits: &card.last4,
                short_code: svc.short_codes.first().map_or("", String::as_str),
                retry_secs: 0,
                transaction,
                cap: None,
            },
            true,
        );
        // With several nodes: into the outbox, sent by this node if one of its
        // connections serves the route now, else by the first node that has one.
        let path = ReplyPath::Shared {
            target: route_target(&route),
            held_here: outbound.holds(&route),
        };
        let outboxed = inner
            .outbox
            .as_ref()
            .and_then(|o| o.prepare(&path, &card.msisdn, &text, expires_at, now));
        let txn_hash = transaction.map(|t| keys.transaction_hash(t));
        let issued = inner
            .codes
            .issue_pushed(
                NewCode {
                    card_id: card.id,
                    code_hash: &keys.code_hash(&card.pan_hash, &code),
                    channel: Channel::Sms,
                    peer: &format!("api:{}", key.id),
                    issued_at: now,
                    expires_at,
                    delivery: Some(Delivery::Queued),
                    route: Some(&route),
                    txn_hash: txn_hash.as_deref(),
                    cap: None,
                    outbox: outboxed.as_ref().map(|(row, _)| row.clone()),
                },
                &key.actor(),
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
        let queued = Pushed {
            code_id: public_code_id(&inner.keys, code_id),
            expires_at,
            delivery: Some(Delivery::Queued),
            replayed: false,
        };
        let send_before = match outboxed.map(|(_, dispatch)| dispatch) {
            None | Some(Dispatch::Direct) => None,
            Some(Dispatch::Claimed { send_before }) => Some(send_before),
            // Waits in the outbox for a node with a connection of its route.
            Some(Dispatch::Elsewhere) => return Ok(queued),
        };
        let handed = outbound.send(Push {
            to: card.msisdn.clone(),
            text,
            code_id: Some(code_id),
            route,
            expires_at,
            send_before,
        });
        if !handed && send_before.is_none() {
            // Committed but never sent: say so in its record, and to the caller.
            inner
                .codes
                .set_delivery(code_id, Delivery::Undelivered, inner.now())
                .await?;
            return Err(CoreError::Busy);
        }
        // (In the outbox, a push this node could not queue is claimed again once
        // its lease runs out.)
        Ok(queued)
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
            .0
            .codes
            .code(code_id)
            .await?
            .ok_or_else(|| DomainError::internal("pushed code vanished"))?;
        Ok(Pushed {
            code_id: public_code_id(&self.0.keys, code_id),
            expires_at: record.expires_at,
            delivery: record.delivery,
            replayed: true,
        })
    }

    /// A code's record for the back office by its public id (the one `push`
    /// answered): channel, route, connection, states and times, never the code.
    /// The record carries the public id too.
    pub async fn code(&self, public_id: i64) -> Result<Option<CodeRecord>, CoreError> {
        let cipher = self.0.keys.id_cipher(CODE_IDS);
        let Some(id) = cipher.reveal(public_id) else {
            return Ok(None);
        };
        let record = self.0.codes.code(id).await?;
        Ok(record.map(|r| CodeRecord {
            id: cipher.hide(r.id),
            ..r
        }))
    }
}

/// The kind of row whose ids `Keys::id_cipher` permutes for the API: codes' row ids
/// rise with every code issued, and would tell a caller how many were.
pub const CODE_IDS: &str = "codes";

/// A code's id as the API shows it (see `otpgw_rules::ids`).
pub fn public_code_id(keys: &Keys, id: i64) -> i64 {
    keys.id_cipher(CODE_IDS).hide(id)
}
