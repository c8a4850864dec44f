//! The core: the gateway's use cases around the rules crate, free of transports
//! and of storage. SMPP and HTTP hand it plain requests ([`Inbound`], a verify, a
//! back-office call) and get plain answers ([`Reply`], a verdict, a card); it
//! reaches storage only through the [`ports`] start-up code plugs a store into. It
//! never sees a PDU, an HTTP request or a SQL row.
//!
//! [`Core`] is the set of use cases, each holding only what it needs:
//! * `issue`      — codes a customer asks for (SMS, and USSD in `ussd`) or the
//!   switch pushes; stored before the text that carries them exists.
//! * `verify`     — the payment switch's question, decided in one transaction;
//!   `challenge` issues the OCRA challenges it checks payments against.
//! * `enroll`     — cards, their activation and ePIN; `import` the bank's card
//!   base in batches.
//! * `tokens`     — customer tokens: enrollment, two-part activation, lifecycle.
//! * `backoffice` — look-up, status changes (and in `phone` phone changes, in
//!   `lifecycle` closure, reissue and a number's card list), the audit trail, the
//!   console's views.
//! * `access`     — API keys and console sessions.
//! * `operators`  — local console operators and their sign-in.
//! * `oidc`       — the console's single sign-on through the bank's OpenID
//!   Connect identity provider (a port), when `[console.oidc]` is set.
//! * `approvals`  — two-person rules: a console action proposed by one clerk,
//!   approved by another.
//! * `admission`  — rate limits on this node and across the cluster.
//! * `delivery`   — what became of the messages, and the replies outbox's claims.
//!
//! Beside them: `handout` (the one way out for what the core sends unasked),
//! `outbox` (sealing replies for other nodes), `epin` (slow hashes, bounded),
//! `keycache` (valid API keys, remembered briefly),
//! `error`, `ports` (what the core needs of storage, and the operator's SIM-swap
//! check), `simswap` (asking it before a code leaves), `links` (what
//! operations may ask of the SMPP links), `reload` (of the configuration) and
//! `live` (the settings a reload replaces).

mod access;
mod admission;
pub mod approvals;
mod backoffice;
mod challenge;
mod delivery;
mod enroll;
mod epin;
mod error;
mod handout;
mod import;
mod issue;
mod keycache;
mod lifecycle;
pub mod links;
mod live;
pub mod oidc;
pub mod operators;
mod outbox;
mod phone;
pub mod ports;
pub mod reload;
mod simswap;
mod tokens;
mod ussd;
mod verify;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use otpgw_parsers::msisdn::normalize_msisdn as normalize;
use otpgw_parsers::sms::SmsGrammar;
use otpgw_rules::codes::Keys;
use otpgw_rules::texts::ReplyKind;
use otpgw_rules::vocab::Channel;

pub use access::{Access, SignedIn, SESSION_IDLE_MS, SESSION_MAX_MS};
pub use admission::{quota as rate_quota, Admission, Admit, Refused};
pub use approvals::{ApprovalError, Approvals, Approved, Proposed};
pub use backoffice::{BackOffice, CardView, Health};
pub use challenge::IssuedChallengeView;
pub use delivery::Delivery;
pub use enroll::{Enroll, Enrolled};
pub use error::{
    Conflict, CoreError, DomainError, Existing, Missing, OperatorError, SimSwapError, TokenError,
};
pub use handout::{ActivationNotice, ActivationState, Outbound, Push};
pub use import::{ImportLine, ImportReport, ImportRun, IMPORT_BATCH};
pub use issue::{public_code_id, Issue, Pushed};
pub use lifecycle::{CardPage, MAX_PAGE as MAX_CARD_PAGE};
pub use live::Live;
pub use oidc::SingleSignOn;
pub use operators::{CodeAnswer, Operators, PendingView, Started};
pub use outbox::{peer_target, route_target, ClaimedReply, Dispatch, ReplyPath};
pub use phone::PhoneChanged;
pub use ports::Ports;
pub use tokens::{
    console_may as console_may_token, ActivatedToken, ActivatedTokenOutcome, ConsoleTokenAct,
    EnrolledToken, TokenRequest, Tokens,
};
pub use ussd::UssdReply;
pub use verify::{Factors, Verify, VerifyOutcome};

use crate::config::Settings;

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

// The text may hold a code: never print it.
crate::telemetry::debug_only!(Reply { kind, code_id });

// ---- time ------------------------------------------------------------------------
//
// Everything the rules store (issue times, expiries, locks) is wall-clock epoch
// milliseconds; rate limits measure elapsed time that never goes back. Both come
// from one `Clock`, so a test that moves a `HandClock` moves code ages, lock ends,
// TOTP steps and limit windows alike, without sleeping.

pub trait Clock: Send + Sync {
    /// Wall-clock time in epoch milliseconds.
    fn now_ms(&self) -> i64;
    /// Time since a fixed start of this clock, never going back.
    fn elapsed(&self) -> Duration;
}

/// The machine's clocks.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    fn elapsed(&self) -> Duration {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }
}

/// A clock that moves only when told to, for tests.
pub struct HandClock {
    start: i64,
    now: AtomicI64,
}

impl HandClock {
    pub fn at(epoch_ms: i64) -> Arc<Self> {
        Arc::new(Self {
            start: epoch_ms,
            now: AtomicI64::new(epoch_ms),
        })
    }

    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for HandClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    fn elapsed(&self) -> Duration {
        let ms = self.now_ms().saturating_sub(self.start);
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }
}

/// A core clock as the rate limiters (governor) read it.
#[derive(Clone)]
pub(crate) struct LimitClock(pub Arc<dyn Clock>);

impl governor::clock::Clock for LimitClock {
    type Instant = governor::nanos::Nanos;

    fn now(&self) -> Self::Instant {
        self.0.elapsed().into()
    }
}

/// The gateway's use cases, ready for the transports. Cheap to clone.
#[derive(Clone)]
pub struct Core {
    pub issue: Issue,
    pub verify: Verify,
    pub enroll: Enroll,
    pub tokens: Tokens,
    pub backoffice: BackOffice,
    pub access: Access,
    pub operators: Operators,
    /// `[console.oidc]`'s single sign-on, when configured.
    pub oidc: Option<SingleSignOn>,
    pub approvals: Approvals,
    pub admission: Admission,
    pub delivery: Delivery,
    handout: Arc<handout::HandOut>,
    /// What a reload replaces (`reconfigure`), shared with the use cases above.
    policy: Live<crate::config::PolicySettings>,
    four_eyes: Live<Vec<otpgw_rules::approvals::Guarded>>,
    wording: Live<otpgw_rules::wording::Wording>,
    clock: Arc<dyn Clock>,
    country_code: String,
    language: otpgw_rules::vocab::Language,
    verify_retention_days: u64,
}

impl Core {
    /// The use cases over `ports`, with the settings sections each one reads.
    pub fn new(ports: Ports, keys: Keys, settings: &Settings, clock: Arc<dyn Clock>) -> Self {
        let service = &settings.service;
        let policy = &settings.policy;
        let country_code = service.country_code.clone();
        let admission = Admission::new(
            &settings.limits,
            &settings.smpp.peers,
            &mo_rates(settings),
            ports.limits.clone(),
            clock.clone(),
        );
        let outbox = Arc::new(outbox::Outbox::new(
            ports.limits.is_shared(),
            &keys,
            &settings.cluster,
        ));
        // Validated when the settings were loaded; the built-in texts otherwise.
        let wording = Live::new(settings.messages.wording().unwrap_or_default());
        let policy = Live::new(policy.clone());
        let handout = Arc::new(handout::HandOut::new(
            ports.audit.clone(),
            clock.clone(),
            service.language,
            wording.clone(),
        ));
        let epins = Arc::new(epin::Epins::new(keys.clone()));
        let issue =
            Issue(Arc::new(issue::Inner {
                cards: ports.cards.clone(),
                codes: ports.codes.clone(),
                admission: admission.clone(),
                keys: keys.clone(),
                service: service.clone(),
                policy: policy.clone(),
                grammar: SmsGrammar {
                    keywords: service.keywords.clone(),
                    help_keywords: service.help_keywords.clone(),
                },
                outbox: outbox.enabled().then(|| outbox.clone()),
                handout: handout.clone(),
                wording: wording.clone(),
                sim_swap: ports.sim_swap.clone().zip(settings.sim_swap.as_ref()).map(
                    |(check, s)| {
                        simswap::SimSwapGuard::new(check, s, ports.audit.clone(), clock.clone())
                    },
                ),
                clock: clock.clone(),
            }));
        let verify = Verify(Arc::new(verify::Inner {
            verifications: ports.verifications.clone(),
            cards: ports.cards.clone(),
            audit: ports.audit.clone(),
            admission: admission.clone(),
            keys: keys.clone(),
            policy: policy.clone(),
            tokens: settings.tokens.clone(),
            service_max_failures: service.max_failures,
            epins: epins.clone(),
            clock: clock.clone(),
        }));
        let enroll = Enroll(Arc::new(enroll::Inner {
            cards: ports.cards.clone(),
            keys: keys.clone(),
            policy: policy.clone(),
            country_code: country_code.clone(),
            epins: epins.clone(),
            handout: handout.clone(),
            clock: clock.clone(),
        }));
        let tokens = Tokens(Arc::new(tokens::Inner {
            tokens: ports.tokens.clone(),
            cards: ports.cards.clone(),
            keys: keys.clone(),
            settings: settings.tokens.clone(),
            handout: handout.clone(),
            clock: clock.clone(),
        }));
        let backoffice = BackOffice(Arc::new(backoffice::Inner {
            cards: ports.cards.clone(),
            codes: ports.codes.clone(),
            tokens: ports.tokens.clone(),
            audit: ports.audit.clone(),
            keys: keys.clone(),
            country_code: country_code.clone(),
            handout: handout.clone(),
            clock: clock.clone(),
        }));
        let operators = Operators(Arc::new(operators::Inner {
            operators: ports.operators.clone(),
            access: ports.access.clone(),
            audit: ports.audit.clone(),
            keys: keys.clone(),
            hashes: epins,
            issuer: "otpgw".to_owned(),
            clock: clock.clone(),
        }));
        let oidc = ports
            .identity
            .clone()
            .zip(settings.console.oidc.clone())
            .map(|(provider, s)| {
                SingleSignOn::new(
                    provider,
                    ports.oidc_logins.clone(),
                    ports.access.clone(),
                    ports.audit.clone(),
                    s,
                    clock.clone(),
                )
            });
        let access = Access(Arc::new(access::Inner {
            access: ports.access.clone(),
            audit: ports.audit.clone(),
            clock: clock.clone(),
            cache: keycache::KeyCache::new(settings.cluster.api_key_cache_ms, clock.clone()),
        }));
        let four_eyes = Live::new(settings.console.four_eyes.clone());
        let approvals = Approvals(Arc::new(approvals::Inner {
            store: ports.approvals.clone(),
            audit: ports.audit.clone(),
            backoffice: backoffice.clone(),
            access: access.clone(),
            four_eyes: four_eyes.clone(),
            country_code: country_code.clone(),
            clock: clock.clone(),
        }));
        let delivery = Delivery(Arc::new(delivery::Inner::new(
            ports.codes,
            ports.outbox,
            outbox,
            Duration::from_millis(settings.cluster.outbox_poll_ms),
            clock.clone(),
        )));
        Self {
            issue,
            verify,
            enroll,
            tokens,
            backoffice,
            access,
            operators,
            oidc,
            approvals,
            admission,
            delivery,
            handout,
            policy,
            four_eyes,
            wording,
            clock,
            country_code,
            language: service.language,
            verify_retention_days: service.verify_retention_days,
        }
    }

    /// Takes a reloaded file's `[policy]`, `[messages]`, `[limits]`, peers' rates
    /// and `[console] four_eyes` (already validated): each use case reads them at
    /// its next decision.
    pub fn reconfigure(&self, settings: &Settings) {
        self.policy.set(settings.policy.clone());
        self.four_eyes.set(settings.console.four_eyes.clone());
        self.wording
            .set(settings.messages.wording().unwrap_or_default());
        self.admission
            .reconfigure(&settings.limits, &settings.smpp.peers, &mo_rates(settings));
    }

    /// Connects pushed codes and activation messages to client mode's operator
    /// connections (set once, by `serve`).
    pub fn set_outbound(&self, outbound: Arc<dyn Outbound>) {
        self.handout.connect(outbound);
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The clock the use cases read (the replies path keeps time by it too).
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// The default language of replies and the console (`service.language`).
    pub fn language(&self) -> otpgw_rules::vocab::Language {
        self.language
    }

    /// A customer's number as the network gave it, in E.164 digits.
    pub fn normalize_msisdn(&self, raw: &str) -> Result<String, CoreError> {
        normalize_msisdn(raw, &self.country_code)
    }

    /// Periodic upkeep (every minute or so): forget idle limiter keys, sweep the
    /// outbox, and delete verification records past their retention.
    pub async fn housekeeping(&self) {
        self.admission.housekeeping().await;
        self.delivery.sweep().await;
        self.verify.prune(self.verify_retention_days).await;
    }
}

/// Each operator connection's customer messages per second (`mo_tps`), by name.
fn mo_rates(settings: &Settings) -> Vec<(String, u32)> {
    let connections = settings.smpp.connections.iter();
    connections
        .map(|c| (c.name.clone(), settings.mo_tps(c)))
        .collect()
}

fn normalize_msisdn(raw: &str, country_code: &str) -> Result<String, CoreError> {
    normalize(raw, country_code).map_err(CoreError::Msisdn)
}
