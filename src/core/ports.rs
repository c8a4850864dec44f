//! The ports: what the core needs from storage, as traits the store implements.
//! Each use case holds only the ports it uses. They take and return the rules
//! crate's records plus the small command types below; errors are
//! [`DomainError`]. Only start-up code (`app.rs`) knows which store stands behind
//! them.
//!
//! Every write port method commits before it returns (on SQLite, the writer's
//! whole batch), so what the core returns to a transport is already durable. Times
//! are epoch milliseconds chosen by the caller.

use std::sync::Arc;

use async_trait::async_trait;
use otpgw_rules::records::{ApiKey, ApiKeyInfo, Card, CodeRecord, Event, Token, TokenRecord, Who};
use otpgw_rules::tokens::{Hash, TokenKind, TokenSource};
use otpgw_rules::verify::{Effect, LatestCode, LockedCard};
use otpgw_rules::vocab::{CardStatus, Channel, Delivery, Language, Role, Verdict};

pub use super::approvals::port::{ApprovalStore, Decision, NewProposal, Proposal};
pub use super::error::DomainError;
pub use super::operators::port::{
    NewOperator, OperatorInfo, OperatorRecord, OperatorReset, OperatorStore, PasswordChange,
    PendingSignIn, SessionInfo, Stage,
};

pub type Result<T> = std::result::Result<T, DomainError>;

/// The rule a verification runs inside the store's transaction, with the card
/// under lock: the card, its latest code and its active tokens in, the verdict and
/// the one effect to apply out.
pub type Decide =
    Box<dyn FnOnce(&LockedCard, Option<&LatestCode>, &[TokenRecord]) -> (Verdict, Effect) + Send>;

#[async_trait]
pub trait CardStore: Send + Sync {
    async fn card(&self, id: i64) -> Result<Option<Card>>;
    async fn card_by_pan_hash(&self, pan_hash: &str) -> Result<Option<Card>>;
    async fn cards_by_msisdn(&self, msisdn: &str) -> Result<Vec<Card>>;
    /// Enrolls a card (`pending` with an activation under `require_activation`),
    /// audited. `Exists(Card(id))` when its number is enrolled already.
    async fn enroll(&self, card: NewCard<'_>, actor: &str, now: i64) -> Result<Card>;
    /// Re-activates or suspends a card, audited with `reason`. `allowed_from`,
    /// when not empty, lists the statuses the caller may change (else
    /// `NotAllowed`). A running timed lock is not lifted (`LockNotLiftable`).
    async fn change_status(
        &self,
        change: &Change<'_, StatusChange>,
        allowed_from: &[CardStatus],
    ) -> Result<Card>;
    async fn set_epin(&self, id: i64, hash: Option<String>, actor: &str, now: i64) -> Result<Card>;
    /// A new activation code for a pending card, audited.
    async fn renew_activation(
        &self,
        id: i64,
        code: NewActivation<'_>,
        act: Act<'_>,
    ) -> Result<Card>;
    /// Checks a pending card's activation code (its HMAC), counting wrong ones.
    async fn activate(&self, attempt: CodeAttempt<'_>) -> Result<Activation>;
    /// Moves a card to another phone number: its live code is voided, the change
    /// time recorded and the change audited with both numbers and the reason.
    /// Returns the card after and its number before.
    async fn change_phone(&self, change: &Change<'_, &str>) -> Result<(Card, String)>;
    /// Closes a card: its live code voided, its tokens revoked, its number freed
    /// for a later enrolment, its history kept; audited `closed`.
    async fn close(&self, change: &Change<'_, ()>) -> Result<Card>;
    /// Gives a card a new card number, in one transaction: the card keeps its id,
    /// phone, ePIN, tokens and policy state; the old number becomes a closed card
    /// of its own (`replaced_by` this one); the live code is voided; audited on
    /// both. `Exists(Card(id))` when the new number is enrolled already.
    async fn reissue(&self, change: &Change<'_, NewNumber<'_>>) -> Result<Card>;
    /// The cards of a phone number, closed ones included, by id from `after`.
    async fn cards_page(&self, msisdn: &str, after: i64, limit: i64) -> Result<Vec<Card>>;
    /// Every card (closed ones too) by id from `after`: the export's walk.
    async fn cards_after(&self, after: i64, limit: i64) -> Result<Vec<Card>>;
    /// Upserts a batch of the bank's cards in one transaction, one outcome per card
    /// in order: new ones enrolled `active` (audited `enrolled`), a changed phone a
    /// phone change (live code voided, audited `phone_changed`; `phone_changed_at`
    /// set unless `initial_load`), a changed language updated. The numbers are
    /// distinct within the batch.
    async fn import(
        &self,
        cards: &[ImportCard<'_>],
        initial_load: bool,
        actor: &str,
        now: i64,
    ) -> Result<Vec<Imported>>;
}

/// One card of an import batch, as its keyed hashes.
pub struct ImportCard<'a> {
    pub pan_hash: &'a str,
    pub last4: &'a str,
    pub last6_hash: &'a str,
    pub msisdn: &'a str,
    pub language: Option<Language>,
}

/// What an import did with one card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    Created,
    Unchanged,
    Updated,
}

/// A reissued card's number, as its keyed hashes.
pub struct NewNumber<'a> {
    pub pan_hash: &'a str,
    pub last4: &'a str,
    pub last6_hash: &'a str,
}

#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Supersedes the card's live code, inserts this one (and its outbox row) and
    /// audits it, in one transaction; ends a timed lock that ran out first.
    async fn issue_code(&self, code: NewCode<'_>, actor: &str) -> Result<Issued>;
    /// As `issue_code`, idempotent on the caller's request id.
    async fn issue_pushed(
        &self,
        code: NewCode<'_>,
        actor: &str,
        push: &PushKey<'_>,
    ) -> Result<Issued>;
    /// The answer to an earlier push with this request id, if any.
    async fn push(&self, api_key_id: i64, request_id: &str) -> Result<Option<Issued>>;
    async fn code(&self, id: i64) -> Result<Option<CodeRecord>>;
    /// A card's most recent codes, newest first.
    async fn recent_codes(&self, card_id: i64, limit: i64) -> Result<Vec<CodeRecord>>;
    /// A code's message reached a final state; its outbox row goes with it.
    async fn set_delivery(&self, code_id: i64, delivery: Delivery, at: i64) -> Result<()>;
    async fn set_deliveries(&self, states: &[(i64, Delivery)], at: i64) -> Result<()>;
    /// An SMSC accepted the message under `message`'s id.
    async fn set_submitted(&self, code_id: i64, message: &MessageRef<'_>, at: i64) -> Result<()>;
    /// A receipt; the code it was about, or `None` when no message has this id.
    async fn apply_receipt(
        &self,
        message: &MessageRef<'_>,
        delivery: Delivery,
        at: i64,
    ) -> Result<Option<i64>>;
}

#[async_trait]
pub trait VerifyStore: Send + Sync {
    /// One verification, decided by `decide` under the card's lock and applied
    /// atomically with its answer (under `request_id`) and audit event. A
    /// `request_id` already answered returns that answer and changes nothing.
    async fn verify(&self, attempt: &VerifyAttempt<'_>, decide: Decide) -> Result<VerifyRecord>;
    /// Forgets verification answers (the request_id memory) and payment challenges
    /// issued before `before`.
    async fn prune_verifications(&self, before: i64) -> Result<u64>;
    /// Records an issued payment challenge: its id, or `None` when another row
    /// holds the same digits (the caller draws again).
    async fn issue_challenge(&self, challenge: &NewChallenge<'_>) -> Result<Option<i64>>;
    async fn challenge(&self, id: i64) -> Result<Option<IssuedChallenge>>;
    /// Marks a challenge as having approved a payment; it approves no other.
    async fn spend_challenge(&self, id: i64, now: i64) -> Result<()>;
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn enroll_token(&self, token: NewToken<'_>, actor: &str, now: i64) -> Result<Token>;
    async fn tokens_of_card(&self, card_id: i64) -> Result<Vec<Token>>;
    async fn token(&self, id: i64) -> Result<Option<TokenRecord>>;
    /// Checks a pending token's two-part activation code (its HMAC), counting wrong ones.
    async fn activate_token(&self, attempt: CodeAttempt<'_>) -> Result<TokenActivation>;
    async fn change_token(&self, change: &Change<'_, TokenChange>) -> Result<Token>;
    /// The token's step and drift after a resynchronisation, audited.
    async fn resync_token(&self, id: i64, step: i64, drift: i64, act: Act<'_>) -> Result<Token>;
}

/// API keys and console sessions.
#[async_trait]
pub trait AccessStore: Send + Sync {
    async fn create_api_key(&self, key: &NewApiKey<'_>) -> Result<i64>;
    /// The live (not revoked) key with this hash.
    async fn api_key(&self, key_hash: &str) -> Result<Option<ApiKey>>;
    /// A number that moves whenever an API key may have changed where this node
    /// did not see it happen (another node, the CLI): a key read while it was one
    /// value is not trusted once it is another. Stores that cannot tell keep 0,
    /// and the key cache's time-to-live is then the only bound.
    fn key_generation(&self) -> u64 {
        0
    }
    async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>>;
    /// Revokes a key and ends its console sessions, audited.
    async fn revoke_api_key(&self, id: i64, actor: &str, now: i64) -> Result<ApiKeyInfo>;
    async fn create_console_session(&self, session: NewConsoleSession<'_>) -> Result<()>;
    /// The live session with this id hash, marked used at `now`.
    async fn console_session(
        &self,
        id_hash: &str,
        now: i64,
        idle_ms: i64,
    ) -> Result<Option<ConsoleSession>>;
    async fn delete_console_session(&self, id_hash: &str) -> Result<()>;
}

/// The append-only audit trail and the counts read from it.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn audit(&self, event: NewEvent<'_>) -> Result<()>;
    /// A card's events, oldest first.
    async fn events(&self, card_id: i64, limit: i64) -> Result<Vec<Event>>;
    /// Newest first.
    async fn search_events(&self, filter: &AuditFilter, limit: i64) -> Result<Vec<Event>>;
    async fn activity_since(&self, since: i64) -> Result<Activity>;
    async fn count_events_since(&self, kind: &str, since: i64) -> Result<i64>;
}

/// The reply outbox shared by several nodes (PostgreSQL).
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claims up to `limit` unexpired rows of `target` nobody holds, oldest first.
    async fn claim_replies(&self, claim: &Claim<'_>) -> Result<Vec<ClaimedRow>>;
    /// Gives up every claim of `node`.
    async fn release_replies(&self, node: &str) -> Result<u64>;
    /// Forgets rows whose code expired.
    async fn sweep_replies(&self, now: i64) -> Result<u64>;
}

/// Rate-limit state shared by several nodes (PostgreSQL).
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// True when several nodes may share this store: replies and limits are then
    /// decided in it.
    fn is_shared(&self) -> bool;
    /// GCRA: `None` when one more event for `key` fits at `now` (and is counted),
    /// else the milliseconds to wait.
    async fn gcra(&self, key: &str, now: i64, rate: Gcra) -> Result<Option<i64>>;
    /// Several decisions at one `now`, in order, ending at the first refusal (the
    /// keys before it stay counted, as with one `gcra` each): `None` when every key
    /// fits, else the refusing key's index and its wait. A store may answer it in
    /// one round trip; by default the keys are decided one by one.
    async fn gcra_each(&self, keys: &[(&str, Gcra)], now: i64) -> Result<Option<(usize, i64)>> {
        for (i, (key, rate)) in keys.iter().enumerate() {
            if let Some(wait) = self.gcra(key, now, *rate).await? {
                return Ok(Some((i, wait)));
            }
        }
        Ok(None)
    }
    async fn sweep_limits(&self, now: i64) -> Result<u64>;
}

/// What operations ask of the store: `/readyz` and `/metrics`.
#[async_trait]
pub trait Readiness: Send + Sync {
    /// True when the database answers, every migration is applied and a write
    /// commits.
    async fn ready(&self) -> Result<bool>;
    /// Connections open and idle in this node's pool.
    fn pool_stats(&self) -> (u32, usize);
}

/// What the operator says of a number's SIM (CAMARA SIM Swap `check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimSwapAnswer {
    NotSwapped,
    /// The SIM changed within the configured age: the number may be a fraudster's.
    Swapped,
}

/// The operator's SIM-swap check, asked before a code is sent to a number. Not a
/// store: an adapter outside the core (`crate::simswap`) asks the operator, with
/// its own time-out and cache.
#[async_trait]
pub trait SimSwapCheck: Send + Sync {
    /// `msisdn` in E.164 digits without `+`, as cards keep it.
    async fn check(&self, msisdn: &str) -> std::result::Result<SimSwapAnswer, SimSwapError>;
}

pub use super::error::SimSwapError;
pub use super::oidc::port::{IdentityProvider, OidcLoginStore};

/// Every port, as start-up code hands them to the core.
#[derive(Clone)]
pub struct Ports {
    pub cards: Arc<dyn CardStore>,
    pub codes: Arc<dyn CodeStore>,
    pub verifications: Arc<dyn VerifyStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub access: Arc<dyn AccessStore>,
    pub operators: Arc<dyn OperatorStore>,
    pub approvals: Arc<dyn ApprovalStore>,
    pub audit: Arc<dyn AuditStore>,
    pub outbox: Arc<dyn OutboxStore>,
    pub limits: Arc<dyn LimitStore>,
    /// `[sim_swap]`, when configured (start-up code sets it after `of`).
    pub sim_swap: Option<Arc<dyn SimSwapCheck>>,
    pub oidc_logins: Arc<dyn OidcLoginStore>,
    /// `[console.oidc]`'s identity provider, when configured (set after `of`).
    pub identity: Option<Arc<dyn IdentityProvider>>,
}

impl Ports {
    /// Every port served by one store.
    pub fn of<S>(store: S) -> Self
    where
        S: CardStore
            + CodeStore
            + VerifyStore
            + TokenStore
            + AccessStore
            + OperatorStore
            + ApprovalStore
            + AuditStore
            + OutboxStore
            + LimitStore
            + OidcLoginStore
            + 'static,
    {
        let store = Arc::new(store);
        Self {
            cards: store.clone(),
            codes: store.clone(),
            verifications: store.clone(),
            tokens: store.clone(),
            access: store.clone(),
            operators: store.clone(),
            approvals: store.clone(),
            audit: store.clone(),
            outbox: store.clone(),
            oidc_logins: store.clone(),
            limits: store,
            sim_swap: None,
            identity: None,
        }
    }
}

// ---- what the ports take and answer besides the rules' records ----------------

pub struct NewCard<'a> {
    pub pan_hash: &'a str,
    pub last4: &'a str,
    pub last6_hash: &'a str,
    pub msisdn: &'a str,
    pub language: Option<Language>,
    /// `[policy] require_activation`: the card starts `pending` with this
    /// activation (its code's HMAC and deadline).
    pub activation: Option<NewActivation<'a>>,
}

/// Who acts, and when (epoch ms), for the audit trail.
#[derive(Clone, Copy)]
pub struct Act<'a> {
    pub by: &'a str,
    pub at: i64,
}

/// An activation code waiting for the customer: its HMAC and deadline.
#[derive(Clone, Copy)]
pub struct NewActivation<'a> {
    pub code_hash: &'a str,
    pub expires_at: i64,
}

/// What confirming an activation code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    Activated(Box<Card>),
    /// A wrong code: counted; `attempts_left` before the activation is voided.
    Wrong {
        attempts_left: i64,
    },
    /// No activation is waiting: it expired, or too many wrong codes voided it.
    /// The bank sends a new one.
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Reactivate,
    Suspend,
}

/// A change by someone, for a reason: a card's status (`StatusChange`) or a
/// token's state (`TokenChange`).
#[derive(Clone, Copy)]
pub struct Change<'a, K> {
    pub id: i64,
    pub to: K,
    pub actor: &'a str,
    pub reason: Option<&'a str>,
    /// The peer address a console clerk acted from, for the audit event.
    pub source: Option<&'a str>,
    pub now: i64,
}

/// A code typed to confirm an activation (a card's, or a token's): its HMAC, or
/// `None` when it was no code at all.
pub struct CodeAttempt<'a> {
    pub id: i64,
    pub candidate: Option<String>,
    /// Wrong codes that void the activation.
    pub max_failures: i64,
    pub actor: &'a str,
    pub now: i64,
}

pub struct NewCode<'a> {
    pub card_id: i64,
    pub code_hash: &'a str,
    pub channel: Channel,
    pub peer: &'a str,
    pub issued_at: i64,
    pub expires_at: i64,
    /// `Queued` for a code that waits for an operator connection; `None` when the
    /// transport that asked for it answers at once.
    pub delivery: Option<Delivery>,
    /// The route that will carry it (client mode), when known at issue time.
    pub route: Option<&'a str>,
    /// HMAC of the payment the code is bound to (`Keys::transaction_hash`).
    pub txn_hash: Option<&'a str>,
    /// The customer's cap, in whole units of `[policy] cap_currency`.
    pub cap: Option<i64>,
    /// The reply carrying the code, for the outbox (several nodes on PostgreSQL).
    pub outbox: Option<NewOutboxReply>,
}

/// A pushed code's idempotency key: the caller's request id, and a fingerprint of
/// the request so that a reused id for another card is told apart.
pub struct PushKey<'a> {
    pub api_key_id: i64,
    pub request_id: &'a str,
    pub fingerprint: &'a str,
}

/// What issuing a code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    Code {
        code_id: i64,
        superseded: i64,
    },
    /// The card is locked or suspended; nothing was written.
    NotActive(CardStatus),
    /// A pushed code's request id was seen before: its code, nothing new written.
    Replayed {
        code_id: i64,
        fingerprint: String,
    },
}

/// An SMSC's message id and the numbers it may stand for (see
/// `otpgw_parsers::receipt::message_id_keys`).
pub struct MessageRef<'a> {
    pub connection: &'a str,
    pub message_id: &'a str,
    pub key_dec: Option<&'a str>,
    pub key_hex: Option<&'a str>,
}

/// An OCRA challenge issued for a payment (`POST /v1/challenge`).
pub struct NewChallenge<'a> {
    pub value: &'a str,
    /// The keyed hash of the payment's canonical form.
    pub txn_hash: &'a str,
    pub api_key_id: i64,
    pub now: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedChallenge {
    pub id: i64,
    pub value: String,
    pub txn_hash: String,
    pub api_key_id: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub struct VerifyAttempt<'a> {
    pub api_key_id: i64,
    pub request_id: &'a str,
    pub now: i64,
    pub fingerprint: &'a str,
    pub pan_hash: &'a str,
    pub max_failures: i64,
    /// How long a lock this verify causes lasts; `None`: until re-activated.
    pub lock_ms: Option<i64>,
    pub actor: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRecord {
    pub verdict: Verdict,
    pub card_id: Option<i64>,
    pub fingerprint: String,
    /// True when this call locked the card.
    pub locked_now: bool,
    /// On every rejection of an enrolled card: how many failures are left before
    /// the card locks (0 while it is locked or suspended); `None` when approved or
    /// when no card matched.
    pub attempts_left: Option<i64>,
    /// Set when the card is locked after this answer: when the lock ends by itself
    /// (epoch ms), or `None` when only re-activation ends it.
    pub lock: Option<Option<i64>>,
    /// True when this is the stored answer to an earlier request with the same id.
    pub replayed: bool,
}

pub struct NewToken<'a> {
    pub uid: &'a str,
    pub card_id: i64,
    pub kind: TokenKind,
    pub source: TokenSource,
    pub serial: Option<&'a str>,
    pub algorithm: Hash,
    pub digits: i64,
    pub period: i64,
    pub suite: Option<&'a str>,
    pub sealed: &'a [u8],
    /// A software token waits for this activation; a hardware one starts active.
    pub activation: Option<NewActivation<'a>>,
}

/// What confirming a token's activation code did.
#[derive(Debug, Clone)]
pub enum TokenActivation {
    Activated(Box<TokenRecord>),
    Wrong {
        attempts_left: i64,
    },
    /// Too late, or the token is locked by wrong codes: replace it.
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenChange {
    Suspend,
    Reactivate,
    Revoke,
}

/// An API key to store: its role, the hash of the key (the key itself is shown
/// once and kept nowhere), a label for people.
#[derive(Clone, Copy)]
pub struct NewApiKey<'a> {
    pub role: Role,
    pub key_hash: &'a str,
    pub label: Option<&'a str>,
    pub actor: &'a str,
    /// The peer address a console clerk acted from, for the audit event.
    pub source: Option<&'a str>,
    pub now: i64,
}

/// An audit event that belongs to no single verification or card change.
pub struct NewEvent<'a> {
    pub card_id: Option<i64>,
    pub kind: &'a str,
    pub actor: &'a str,
    pub detail: serde_json::Value,
    pub at: i64,
}

/// A node's claim on the outbox rows of one target.
#[derive(Clone, Copy)]
pub struct Claim<'a> {
    pub node: &'a str,
    pub target: &'a str,
    pub now: i64,
    pub lease_until: i64,
    pub limit: i64,
}

/// One rate as GCRA keeps it, in the unit of the times given with it: events at
/// most one per `interval` on average, bursts up to `tolerance / interval + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    pub interval: i64,
    pub tolerance: i64,
}

/// A console session to open: the hash of its id (the cookie), its key and CSRF
/// token, and its limits.
pub struct NewConsoleSession<'a> {
    pub id_hash: &'a str,
    pub who: &'a Who,
    pub stage: Stage,
    pub csrf: &'a str,
    pub now: i64,
    pub expires_at: i64,
    pub idle_ms: i64,
}

/// A live console session: whose key it is and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub who: Who,
    pub csrf: String,
    pub expires_at: i64,
}

/// What the console's audit search may filter on; `before_id` pages backwards.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub card_id: Option<i64>,
    /// Events of the cards ending in these 4 digits (a card's last 4 is all the
    /// help desk is told on the phone).
    pub last4: Option<String>,
    pub actor: Option<String>,
    pub kind: Option<String>,
    /// Epoch ms, inclusive.
    pub from: Option<i64>,
    /// Epoch ms, exclusive.
    pub to: Option<i64>,
    pub before_id: Option<i64>,
}

/// Counts since a moment, for the console's health strip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub codes_issued: i64,
    pub verifications: i64,
    pub approved: i64,
    /// Of `codes_issued`, those whose message failed: refused by the peer or the
    /// SMSC (`undelivered`) or given up on (`expired`).
    pub undelivered: i64,
}

/// A reply to record with its code (see `NewCode::outbox`).
#[derive(Debug, Clone)]
pub struct NewOutboxReply {
    pub target: String,
    /// The reply sealed by the core (hex); opaque to the store.
    pub sealed: String,
    /// Never sent after this (the code's expiry), epoch ms.
    pub deliver_by: i64,
    /// The node that will send it itself, holding a session for `target`; `None`
    /// leaves it to whichever node claims it first.
    pub owner: Option<String>,
    pub lease_until: i64,
}

/// A row a node claimed: it is this node's to send until `lease_until`.
#[derive(Debug, Clone)]
pub struct ClaimedRow {
    pub code_id: i64,
    pub target: String,
    pub sealed: String,
    pub deliver_by: i64,
    pub lease_until: i64,
}
