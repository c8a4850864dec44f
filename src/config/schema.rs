//! The settings' sections and fields, as the TOML file and `OTPGW_*` variables
//! name them; what each means is said on its field.

use std::net::IpAddr;
use std::path::PathBuf;

use otpgw_rules::vocab::Language;
use serde::{Deserialize, Serialize};

use super::secret::{optional_string_or_number, string_or_number, strings_or_numbers, Secret};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub smpp: SmppSettings,
    pub http: HttpSettings,
    pub service: ServiceSettings,
    pub secrets: SecretSettings,
    pub log: LogSettings,
    pub limits: LimitSettings,
    pub policy: PolicySettings,
    pub tokens: TokenSettings,
    pub cluster: ClusterSettings,
    #[serde(default)]
    pub messages: super::MessagesSettings,
    /// `[sim_swap]`, in `sim_swap.rs`; absent, no SIM-swap check is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_swap: Option<super::SimSwapSettings>,
    /// `[console]`, in `console.rs`: the console's external URL, time zone and single
    /// sign-on.
    #[serde(default)]
    pub console: super::ConsoleSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://otpgw.db` or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    /// PostgreSQL: `statement_timeout` and `lock_timeout` of every connection, so a
    /// held row lock or a stuck query fails within a deadline instead of stalling.
    pub statement_timeout_secs: u64,
    /// SQLite durability: `full` (default: a committed code survives a power cut) or
    /// `normal` (faster; in WAL mode the last commits before a power cut can be
    /// lost, though never corrupted; a process crash loses nothing).
    pub synchronous: Synchronous,
    /// SQLite: the writer connection's page cache in MiB (the readers keep SQLite's
    /// 2 MiB). Memory is taken as pages are used, up to this.
    pub sqlite_writer_cache_mib: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    #[default]
    Full,
    Normal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmppSettings {
    pub listen: String,
    pub peers: Vec<PeerSettings>,
    /// A connection that has not bound within this time is closed.
    pub bind_timeout_secs: u64,
    /// After this long without traffic we send enquire_link.
    pub enquire_link_secs: u64,
    /// How long we wait for the response to a PDU we sent.
    pub response_timeout_secs: u64,
    /// PDUs whose command_length exceeds this are refused (generic_nack, then close).
    pub max_pdu_len: usize,
    /// Outstanding deliver_sm per session before we wait for responses.
    pub window: usize,
    /// Where a USSD peer puts the dialled string (`*720#`) in the PSSR indication:
    /// `short_message` or `destination_addr`.
    pub ussd_dialled_in: DialledIn,
    /// A USSD dialogue idle this long is forgotten.
    pub ussd_session_timeout_secs: u64,
    /// Operator SMSCs (or aggregators) we bind to as an ESME (client mode).
    pub connections: Vec<ConnectionSettings>,
    /// Connections held at once, in total and from one address; more are closed at
    /// accept (and counted in `otpgw_smpp_connections_refused_total`).
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Failed binds one address may make per window before its connections are
    /// closed at accept for one window.
    pub bind_failures: Rate,
    /// Failed binds (a wrong password) one configured system_id may take per window,
    /// from all addresses together; past it every bind as that system_id is refused
    /// for one window, so a password cannot be guessed from many addresses.
    pub bind_failures_per_system_id: Rate,
    /// A bound peer's handled message must be answered within this; past it the
    /// response is ESME_RX_T_APPN.
    pub message_timeout_secs: u64,
    /// Inputs (answers after the dialled string) one USSD dialogue may take, and the
    /// bytes one input may have; beyond either the dialogue ends.
    pub ussd_max_steps: usize,
    pub ussd_max_input: usize,
    /// USSD dialogues remembered at once; a new one past this is ended at once.
    pub ussd_max_dialogues: usize,
}

/// One operator connection: where to bind, how, and which numbers it serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSettings {
    /// Our name for it, in logs, metrics and the API.
    pub name: String,
    pub host: String,
    pub port: u16,
    #[serde(deserialize_with = "string_or_number")]
    pub system_id: String,
    pub password: Secret,
    #[serde(default)]
    pub system_type: String,
    /// `transceiver` (one session) or `transmitter_receiver` (two sessions).
    #[serde(default)]
    pub bind: ConnectionBind,
    /// The interface version of the bind: "3.4" (default) or "5.0".
    #[serde(default)]
    pub version: SmppVersion,
    /// submit_sm in flight before we wait for responses.
    #[serde(default = "default_window")]
    pub window: usize,
    /// Message segments per second the operator allows (0 = no pacing).
    #[serde(default = "default_tps")]
    pub tps: u32,
    /// The source address of our messages; default `service.sender_id`.
    #[serde(default, deserialize_with = "optional_string_or_number")]
    pub source_addr: Option<String>,
    /// Type of number and numbering plan of the source address; by default
    /// derived from it (numeric: 0/1, a name: 5/0).
    #[serde(default)]
    pub source_ton: Option<u8>,
    #[serde(default)]
    pub source_npi: Option<u8>,
    #[serde(default = "default_enquire_link_secs")]
    pub enquire_link_secs: u64,
    /// MSISDN prefixes (E.164 digits) this connection serves; empty = the default route.
    #[serde(default, deserialize_with = "strings_or_numbers")]
    pub routes: Vec<String>,
    /// Lower is tried first among the connections of a route (failover order).
    #[serde(default)]
    pub priority: u32,
    /// Ask the SMSC for delivery receipts.
    #[serde(default = "default_true")]
    pub registered_delivery: bool,
    /// A code submitted with a receipt asked for and none back within this is
    /// counted in `otpgw_codes_without_receipt_total{connection}` (it stays
    /// `submitted`).
    #[serde(default = "default_receipt_wait_secs")]
    pub receipt_wait_secs: u64,
    /// Long texts: `udh` (segments with a concatenation header) or `payload`
    /// (one submit_sm with message_payload).
    #[serde(default = "default_split")]
    pub split: Split,
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Reconnect back-off doubles from 1 s up to this, with jitter.
    #[serde(default = "default_max_backoff_secs")]
    pub max_backoff_secs: u64,
    /// How this SMSC's submit_sm_resp message ids relate to the ids in its receipts:
    /// `hex` (hexadecimal there, the same number in decimal in receipts), `decimal`,
    /// `string` (repeated exactly); `auto` (default) tries both readings of a number.
    #[serde(default)]
    pub receipt_id: ReceiptId,
    /// How long this SMSC may take to answer a bind, submit_sm or enquire_link
    /// before the session counts as lost; default `smpp.response_timeout_secs`.
    #[serde(default)]
    pub response_timeout_ms: Option<u64>,
    /// Customers' messages (MO) per second this SMSC may deliver to this node;
    /// default its even share of the operators' part of `limits.global_per_second`.
    #[serde(default)]
    pub mo_tps: Option<u32>,
}

impl ConnectionSettings {
    /// `response_timeout_ms`, else the listener's `response_timeout_secs`.
    pub fn response_timeout(&self, default_secs: u64) -> std::time::Duration {
        self.response_timeout_ms.map_or(
            std::time::Duration::from_secs(default_secs),
            std::time::Duration::from_millis,
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptId {
    #[default]
    Auto,
    Hex,
    Decimal,
    String,
}

impl ReceiptId {
    /// The receipt parser's name for this form.
    pub fn form(self) -> otpgw_parsers::receipt::IdForm {
        use otpgw_parsers::receipt::IdForm;
        match self {
            Self::Auto => IdForm::Guess,
            Self::Hex => IdForm::Hex,
            Self::Decimal => IdForm::Decimal,
            Self::String => IdForm::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionBind {
    #[default]
    Transceiver,
    TransmitterReceiver,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum SmppVersion {
    #[default]
    #[serde(rename = "3.4")]
    V34,
    #[serde(rename = "5.0")]
    V50,
}

/// "3.4" or "5.0"; environment variables deliver them as numbers.
impl<'de> Deserialize<'de> for SmppVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(f64),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Text(s) => s,
            Raw::Number(n) => format!("{n:.1}"),
        };
        match text.as_str() {
            "3.4" | "34" => Ok(Self::V34),
            "5.0" | "5" | "50" => Ok(Self::V50),
            other => Err(serde::de::Error::custom(format!(
                "SMPP version {other:?}: use \"3.4\" or \"5.0\""
            ))),
        }
    }
}

/// How client mode carries a text longer than one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// One submit_sm with `message_payload`; the SMSC segments it.
    Payload,
    /// Several submit_sm with a concatenation UDH (esm_class UDHI), one per segment.
    Udh,
}

fn default_window() -> usize {
    10
}
fn default_tps() -> u32 {
    100
}
fn default_enquire_link_secs() -> u64 {
    30
}
fn default_true() -> bool {
    true
}
fn default_split() -> Split {
    Split::Udh
}
fn default_connect_timeout_secs() -> u64 {
    10
}
fn default_max_backoff_secs() -> u64 {
    60
}

fn default_receipt_wait_secs() -> u64 {
    600
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialledIn {
    ShortMessage,
    DestinationAddr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSettings {
    #[serde(deserialize_with = "string_or_number")]
    pub system_id: String,
    pub password: Secret,
    /// Source addresses this peer may bind from; empty means any.
    #[serde(default)]
    pub allow_from: Vec<IpAddr>,
    /// PDUs per second this peer may send (this node); default `limits.peer_tps`.
    #[serde(default)]
    pub tps: Option<u32>,
}

/// Rate limits, per gateway node (see `limits`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Messages per customer number, every window must allow it.
    pub msisdn: Vec<Rate>,
    /// Codes per card.
    pub card: Rate,
    /// "Not registered" replies per unknown number.
    pub unknown_sender: Rate,
    /// PDUs per second per SMPP peer (0 = unlimited); a peer's own `tps` wins.
    pub peer_tps: u32,
    /// Subscriber messages per second over all peers (0 = unlimited).
    pub global_per_second: u32,
    /// Verify requests per second per API key (0 = unlimited).
    pub verify_per_key_per_second: u32,
    /// Codes pushed (`POST /v1/codes`) per second per API key (0 = unlimited).
    pub push_per_key_per_second: u32,
    /// Wrong codes one API key may submit per window before it is refused …
    pub guard_max_failures: u32,
    pub guard_window_secs: u64,
    /// … for this long.
    pub guard_cooldown_secs: u64,
    /// Wrong codes one API key may submit for one card per window; past them its
    /// verifies for that card are refused (429, nothing counted) until the window
    /// ends, so one key cannot lock a card again and again after re-activations.
    pub card_failures_per_key: u32,
    pub card_failures_window_secs: u64,
    /// Cards one API key's wrong codes may lock per window; past it that key's
    /// wrong codes are refused (429 `lock_budget_exceeded`) without counting.
    pub locks_per_key: Rate,
    /// PostgreSQL only: the per-MSISDN, per-card and unknown-sender limits are decided
    /// in the database, so they hold across every node. A decision slower than this
    /// falls back to the node's own limit (counted in `otpgw_limit_fallbacks_total`).
    pub cluster_timeout_ms: u64,
}

/// `count` events per `per_secs` seconds (a burst of `count`, refilled evenly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub count: u32,
    pub per_secs: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            msisdn: vec![
                Rate {
                    count: 3,
                    per_secs: 60,
                },
                Rate {
                    count: 10,
                    per_secs: 3600,
                },
            ],
            card: Rate {
                count: 1,
                per_secs: 10,
            },
            unknown_sender: Rate {
                count: 1,
                per_secs: 3600,
            },
            peer_tps: 100,
            global_per_second: 500,
            verify_per_key_per_second: 200,
            push_per_key_per_second: 50,
            guard_max_failures: 100,
            guard_window_secs: 600,
            guard_cooldown_secs: 900,
            card_failures_per_key: 10,
            card_failures_window_secs: 3600,
            locks_per_key: Rate {
                count: 5,
                per_secs: 3600,
            },
            cluster_timeout_ms: 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// The public listener: the payment switch's and back office's API and the
    /// health probes (and, without `admin_listen`, everything else too).
    pub listen: String,
    /// The operations listener, when set: `/metrics`, `/v1/connections`, API-key
    /// management, `/v1/admin/*` and the console move here (the public listener then
    /// answers them 404), so a firewall or NetworkPolicy, which work on ports, can
    /// keep them off the public side. Unset: everything on `listen`. The caps below
    /// apply to each listener on its own, so a flood on one takes no place of the
    /// other's.
    pub admin_listen: Option<String>,
    pub request_timeout_secs: u64,
    /// A client must send a request's headers within this of the connection opening
    /// or of its previous response: it bounds slow headers and idle keep-alive alike.
    pub header_read_timeout_secs: u64,
    /// Connections held at once, in total and from one address. Past the total, a
    /// newcomer from an address holding fewer than the heaviest one gets a place by
    /// closing one of the heaviest's (a fair share); otherwise more are closed at
    /// accept (counted in `otpgw_http_connections_refused_total`). A per-address cap
    /// over the total is no cap below it.
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// A connection older than this is closed after the response in flight, so one
    /// that keeps sending requests slowly cannot hold its place for ever.
    pub keep_alive_max_secs: u64,
    /// Requests with a missing or unknown API key one address may send per window;
    /// past them its requests without a valid key get 429 `too_many_bad_keys`.
    pub bad_keys_per_ip: Rate,
    /// Serve the back-office console at `/console` (on the operations listener when
    /// `admin_listen` is set).
    pub console: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSettings {
    /// Destination numbers the SMS service answers on; empty accepts any.
    #[serde(deserialize_with = "strings_or_numbers")]
    pub short_codes: Vec<String>,
    /// Source address of reply messages.
    #[serde(deserialize_with = "string_or_number")]
    pub sender_id: String,
    /// Default reply language when the customer's text does not show one: fa | en.
    pub language: Language,
    /// Country calling code used to normalise national numbers (0912… → 98912…).
    #[serde(deserialize_with = "string_or_number")]
    pub country_code: String,
    pub code_ttl_secs: u64,
    /// Consecutive failed verifications that lock a card.
    pub max_failures: i64,
    /// Words a customer may put before the digits (`OTP 1234`, `رمز 1234`).
    pub keywords: Vec<String>,
    pub help_keywords: Vec<String>,
    /// The USSD service code: customers dial `*720#` or `*720*1*<last 4>#`.
    #[serde(deserialize_with = "string_or_number")]
    pub ussd_code: String,
    /// Verification records (the request_id memory) older than this are deleted.
    pub verify_retention_days: u64,
}

/// How several nodes on one PostgreSQL share the replies that carry codes
/// (`[cluster]`; see `core::outbox`). Ignored on SQLite, which is one node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// This node's name in the outbox's claims; default `<hostname>-<pid>-<random>`,
    /// so a restarted process never mistakes an earlier life's claims for its own.
    pub node_id: Option<String>,
    /// How long a node owns a reply it claimed: past this, if it has not been
    /// acknowledged, any node may send it. A node does not start sending a reply
    /// in the last `outbox_margin_ms` of its lease (clock skew between nodes).
    pub outbox_lease_secs: u64,
    pub outbox_margin_ms: u64,
    /// How often each node looks for replies it can send (and for other nodes'
    /// lapsed claims).
    pub outbox_poll_ms: u64,
    /// How long a node trusts an API key it read (0: read it on every request). A
    /// key revoked on this node is refused at once; revoked on another node (or by
    /// the CLI), it is refused here within this. At most 5,000.
    pub api_key_cache_ms: u64,
    /// PostgreSQL: how long a node keeps a phone number's cards in memory (0:
    /// read them for every message). Any node's change to a card is heard at once
    /// (a database notice) and drops them; this bounds what a lost notice can cost.
    /// At most 5,000.
    pub card_cache_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            node_id: None,
            outbox_lease_secs: 10,
            outbox_margin_ms: 2_000,
            outbox_poll_ms: 250,
            api_key_cache_ms: 500,
            card_cache_ms: 500,
        }
    }
}

/// The bank's own rules (`[policy]`): how a lock ends, how many failures lock a
/// card, whether codes must be bound to a payment, whether a new card must be
/// activated from the customer's phone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    /// `"until_reactivated"` (the default: only the bank lifts a lock) or
    /// `{ timed_secs = N }` (the lock ends by itself after N seconds and nobody can
    /// lift it earlier).
    pub lock: LockPolicy,
    /// Consecutive failed verifications that lock a card. When absent,
    /// `service.max_failures` (the older key, still read) decides.
    pub max_failures: Option<i64>,
    /// Only codes bound to a payment verify: `POST /v1/codes` must carry a
    /// `transaction`, and so must every verify.
    pub require_transaction: bool,
    /// A newly enrolled card starts `pending` and becomes active only when the
    /// activation code sent to its phone is confirmed.
    pub require_activation: bool,
    /// How long an activation code stays valid.
    pub activation_ttl_secs: u64,
    /// Wrong activation codes before the pending activation is voided (the bank
    /// must then enroll or resend).
    pub activation_max_failures: i64,
    /// The currency a customer's cap (`5678 2500000`) is written in, in whole
    /// units; a capped code verifies only transactions in this currency.
    pub cap_currency: String,
    /// Which factors `/v1/verify` accepts: `"sms"` (codes sent by SMS, USSD or
    /// push) and `"token"` (codes an enrolled app or hardware token makes). Both by
    /// default; a card with no active token simply has no token codes.
    pub accept: Vec<Factor>,
    /// After a card's phone number changes: how long, and whether pushed codes to
    /// the new number are refused meanwhile (409 `phone_recently_changed`, so the
    /// switch falls back to another factor). The customer's own SMS request works.
    pub after_phone_change: AfterPhoneChange,
}

/// `[policy] after_phone_change = { hold_secs = 86400, pushed = "refuse" }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AfterPhoneChange {
    pub hold_secs: u64,
    pub pushed: PushedAfterChange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushedAfterChange {
    Refuse,
    Allow,
}

impl AfterPhoneChange {
    /// Until when pushed codes are refused for a card whose number changed at
    /// `changed_at`, if they are.
    pub fn holds_until(&self, changed_at: Option<i64>, now: i64) -> Option<i64> {
        let hold = i64::try_from(self.hold_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let until = changed_at?.saturating_add(hold);
        (self.pushed == PushedAfterChange::Refuse && until > now).then_some(until)
    }
}

/// A kind of code `/v1/verify` may accept (`[policy] accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Factor {
    Sms,
    Token,
}

/// Customer tokens (`[tokens]`): how far a token's clock may drift, how software
/// tokens are provisioned.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    /// Steps either side of the token's remembered drift a code may come from.
    pub window_steps: u32,
    /// Steps either side of now an administrator's resync searches (two codes in a
    /// row must match there).
    pub resync_steps: u32,
    /// How long a two-part activation code stays valid.
    pub activation_ttl_secs: u64,
    /// Wrong activation codes before the token is locked (the bank replaces it).
    pub activation_max_failures: i64,
    /// The issuer an authenticator app shows beside the code.
    pub issuer: String,
    /// How long an OCRA challenge from `POST /v1/challenge` can approve its payment.
    pub challenge_ttl_secs: u64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            window_steps: 1,
            resync_steps: 40,
            activation_ttl_secs: 86_400,
            activation_max_failures: 5,
            issuer: "otpgw".into(),
            challenge_ttl_secs: 300,
        }
    }
}

/// How a lock ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LockPolicy {
    /// `lock = "until_reactivated"`.
    Named(LockName),
    /// `lock = { timed_secs = 86400 }`.
    Timed { timed_secs: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockName {
    UntilReactivated,
}

impl LockPolicy {
    /// Milliseconds a lock lasts, or `None` when only re-activation ends it.
    pub fn timed_ms(self) -> Option<i64> {
        match self {
            LockPolicy::Named(LockName::UntilReactivated) => None,
            LockPolicy::Timed { timed_secs } => {
                Some(i64::try_from(timed_secs.saturating_mul(1000)).unwrap_or(i64::MAX))
            }
        }
    }
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            lock: LockPolicy::Named(LockName::UntilReactivated),
            max_failures: None,
            require_transaction: false,
            require_activation: false,
            activation_ttl_secs: 86_400,
            activation_max_failures: 5,
            cap_currency: "IRR".into(),
            accept: vec![Factor::Sms, Factor::Token],
            after_phone_change: AfterPhoneChange {
                hold_secs: 86_400,
                pushed: PushedAfterChange::Refuse,
            },
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretSettings {
    /// 64 hex characters each. When both are absent the keys are read from
    /// `key_file`, which is created (mode 0600) on first start.
    pub pan_key: Option<Secret>,
    pub code_key: Option<Secret>,
    pub key_file: Option<PathBuf>,
    /// Start even though the key file exists while the database is brand new (no
    /// migrations applied). Off by default: that combination usually means the
    /// database was lost, and serving on it would silently forget every card.
    pub allow_new_database: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` (human-readable) or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `otpgw=debug,sqlx=warn`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}
