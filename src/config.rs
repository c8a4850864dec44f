//! Settings: built-in defaults, then the TOML file given with `--config`, then
//! `OTPGW_<SECTION>__<KEY>` environment variables, in that order of precedence.
//!
//! The defaults are the embedded setup (SQLite beside the working directory, SMPP and
//! HTTP on loopback, one `test`/`test` SMPP peer accepted from loopback only), so
//! `otpgw serve` with no file works out of the box. Secrets are wrapped in [`Secret`]
//! so that printing a `Settings` never shows them.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use otpgw_rules::vocab::Language;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

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
    /// Long texts: `udh` (segments with a concatenation header) or `payload`
    /// (one submit_sm with message_payload).
    #[serde(default = "default_split")]
    pub split: Split,
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Reconnect back-off doubles from 1 s up to this, with jitter.
    #[serde(default = "default_max_backoff_secs")]
    pub max_backoff_secs: u64,
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
            guard_max_failures: 100,
            guard_window_secs: 600,
            guard_cooldown_secs: 900,
            card_failures_per_key: 10,
            card_failures_window_secs: 3600,
            cluster_timeout_ms: 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub listen: String,
    pub request_timeout_secs: u64,
    /// A client must send a request's headers within this of the connection opening
    /// or of its previous response: it bounds slow headers and idle keep-alive alike.
    pub header_read_timeout_secs: u64,
    /// Connections held at once; more are closed at accept.
    pub max_connections: usize,
    /// Serve the back-office console at `/console` on this listener.
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
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            node_id: None,
            outbox_lease_secs: 10,
            outbox_margin_ms: 2_000,
            outbox_poll_ms: 250,
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
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            window_steps: 1,
            resync_steps: 40,
            activation_ttl_secs: 86_400,
            activation_max_failures: 5,
            issuer: "otpgw".into(),
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

/// A string that never prints.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(#[serde(deserialize_with = "string_or_number")] String);

/// Environment values that look like numbers (`OTPGW_SERVICE__SHORT_CODES=[30003303]`,
/// a numeric password) arrive as integers; these fields are strings all the same.
/// (Leading zeros do not survive that trip: quote such values, `'"0098"'`.)
fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Text(String),
        Unsigned(u64),
        Signed(i64),
    }
    Ok(match Value::deserialize(d)? {
        Value::Text(s) => s,
        Value::Unsigned(n) => n.to_string(),
        Value::Signed(n) => n.to_string(),
    })
}

fn optional_string_or_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Item(#[serde(deserialize_with = "string_or_number")] String);
    Ok(Option::<Item>::deserialize(d)?.map(|i| i.0))
}

fn strings_or_numbers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    struct Item(#[serde(deserialize_with = "string_or_number")] String);
    Ok(Vec::<Item>::deserialize(d)?
        .into_iter()
        .map(|i| i.0)
        .collect())
}

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://otpgw.db".into(),
            max_connections: 10,
            acquire_timeout_secs: 5,
            statement_timeout_secs: 5,
            synchronous: Synchronous::Full,
        }
    }
}

impl Default for SmppSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:2775".into(),
            peers: Vec::new(),
            bind_timeout_secs: 10,
            enquire_link_secs: 30,
            response_timeout_secs: 10,
            max_pdu_len: 8192,
            window: 10,
            ussd_dialled_in: DialledIn::ShortMessage,
            ussd_session_timeout_secs: 180,
            connections: Vec::new(),
            max_connections: 1000,
            max_connections_per_ip: 50,
            bind_failures: Rate {
                count: 5,
                per_secs: 60,
            },
            message_timeout_secs: 5,
            ussd_max_steps: 20,
            ussd_max_input: 160,
            ussd_max_dialogues: 100_000,
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            request_timeout_secs: 10,
            header_read_timeout_secs: 10,
            max_connections: 1000,
            console: true,
        }
    }
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            short_codes: vec!["30003303".into()],
            sender_id: "BankOTP".into(),
            language: Language::Fa,
            country_code: "98".into(),
            code_ttl_secs: 60,
            max_failures: 3,
            keywords: ["OTP", "PIN", "CODE", "رمز", "رمز پویا", "کد"]
                .map(String::from)
                .to_vec(),
            help_keywords: ["HELP", "?", "راهنما", "کمک"].map(String::from).to_vec(),
            ussd_code: "720".into(),
            verify_retention_days: 7,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// The peer the embedded default accepts when no configuration file is given.
fn embedded_test_peer() -> PeerSettings {
    PeerSettings {
        system_id: "test".into(),
        password: Secret::new("test"),
        allow_from: vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
        ],
        tps: None,
    }
}

impl Settings {
    /// Defaults ← file (if any) ← environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut defaults = Settings::default();
        if file.is_none() {
            defaults.smpp.peers.push(embedded_test_peer());
        }
        let mut figment = Figment::from(Serialized::defaults(defaults));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Only OTPGW_<SECTION>__<KEY>: single-level names (OTPGW_CONFIG, OTPGW_LOG) are
        // the CLI's and the log filter's.
        figment = figment.merge(
            Env::prefixed("OTPGW_")
                .filter(|k| k.as_str().contains("__"))
                .split("__"),
        );
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.service.code_ttl_secs == 0 {
            return bad("service.code_ttl_secs must be at least 1".into());
        }
        if self.service.max_failures < 1 || self.policy.max_failures.is_some_and(|n| n < 1) {
            return bad("policy.max_failures (or service.max_failures) must be at least 1".into());
        }
        let cluster = &self.cluster;
        if cluster.outbox_lease_secs == 0
            || cluster.outbox_poll_ms == 0
            || cluster.outbox_margin_ms >= cluster.outbox_lease_secs.saturating_mul(1000)
        {
            return bad(
                "cluster: outbox_lease_secs and outbox_poll_ms must be at least 1, and \
                 outbox_margin_ms shorter than the lease"
                    .into(),
            );
        }
        if cluster.node_id.as_deref().is_some_and(|n| {
            n.is_empty() || n.len() > 64 || !n.bytes().all(|b| b.is_ascii_graphic())
        }) {
            return bad("cluster.node_id must be 1 to 64 printable ASCII characters".into());
        }
        if self.policy.lock == (LockPolicy::Timed { timed_secs: 0 }) {
            return bad("policy.lock: timed_secs must be at least 1".into());
        }
        if self.policy.activation_ttl_secs == 0 || self.policy.activation_max_failures < 1 {
            return bad(
                "policy.activation_ttl_secs and policy.activation_max_failures must be at least 1"
                    .into(),
            );
        }
        if self.tokens.window_steps > 10
            || self.tokens.resync_steps > 10_000
            || self.tokens.activation_ttl_secs == 0
            || self.tokens.activation_max_failures < 1
            || self.tokens.issuer.is_empty()
            || self.tokens.issuer.len() > 64
        {
            return bad("tokens: window_steps 0..=10, resync_steps up to 10000, activation_ttl_secs and activation_max_failures at least 1, issuer 1 to 64 characters".into());
        }
        if self.policy.accept.is_empty() {
            return bad("policy.accept must name at least one of \"sms\", \"token\"".into());
        }
        if !otpgw_rules::payment::is_currency(&self.policy.cap_currency) {
            return bad("policy.cap_currency must be three upper-case letters (ISO 4217)".into());
        }
        if self.service.country_code.is_empty()
            || !self
                .service
                .country_code
                .bytes()
                .all(|b| b.is_ascii_digit())
        {
            return bad("service.country_code must be digits, e.g. \"98\"".into());
        }
        if self.service.sender_id.is_empty() || self.service.sender_id.len() > 20 {
            return bad("service.sender_id must be 1 to 20 characters".into());
        }
        if !(64..=65_536).contains(&self.smpp.max_pdu_len) {
            return bad("smpp.max_pdu_len must be between 64 and 65536".into());
        }
        let rates = self
            .limits
            .msisdn
            .iter()
            .chain([&self.limits.card, &self.limits.unknown_sender]);
        if rates.into_iter().any(|r| r.count == 0 || r.per_secs == 0) {
            return bad("limits: every rate needs count and per_secs of at least 1".into());
        }
        if self.limits.card_failures_per_key == 0 || self.limits.card_failures_window_secs == 0 {
            return Err(ConfigError::Invalid(
                "limits: card_failures_per_key and card_failures_window_secs must be at least 1"
                    .into(),
            ));
        }
        if self.limits.guard_max_failures == 0 || self.limits.guard_window_secs == 0 {
            return bad(
                "limits: guard_max_failures and guard_window_secs must be at least 1".into(),
            );
        }
        if self.smpp.window == 0 {
            return bad("smpp.window must be at least 1".into());
        }
        let at_least_one = [
            ("smpp.max_connections", self.smpp.max_connections as u64),
            (
                "smpp.max_connections_per_ip",
                self.smpp.max_connections_per_ip as u64,
            ),
            (
                "smpp.bind_failures.count",
                u64::from(self.smpp.bind_failures.count),
            ),
            (
                "smpp.bind_failures.per_secs",
                self.smpp.bind_failures.per_secs,
            ),
            ("smpp.bind_timeout_secs", self.smpp.bind_timeout_secs),
            (
                "smpp.response_timeout_secs",
                self.smpp.response_timeout_secs,
            ),
            ("smpp.message_timeout_secs", self.smpp.message_timeout_secs),
            ("smpp.ussd_max_steps", self.smpp.ussd_max_steps as u64),
            ("smpp.ussd_max_input", self.smpp.ussd_max_input as u64),
            (
                "smpp.ussd_max_dialogues",
                self.smpp.ussd_max_dialogues as u64,
            ),
            (
                "http.header_read_timeout_secs",
                self.http.header_read_timeout_secs,
            ),
            ("http.max_connections", self.http.max_connections as u64),
            (
                "database.statement_timeout_secs",
                self.database.statement_timeout_secs,
            ),
            (
                "service.verify_retention_days",
                self.service.verify_retention_days,
            ),
        ];
        if let Some((key, _)) = at_least_one.iter().find(|(_, v)| *v == 0) {
            return bad(format!("{key} must be at least 1"));
        }
        if self.smpp.max_connections_per_ip > self.smpp.max_connections {
            return bad("smpp.max_connections_per_ip cannot exceed smpp.max_connections".into());
        }
        if self.smpp.ussd_max_dialogues > 10_000_000 || self.smpp.ussd_max_input > 65_536 {
            return bad(
                "smpp.ussd_max_dialogues (at most 10000000) or smpp.ussd_max_input (at most 65536) is too large"
                    .into(),
            );
        }
        for p in &self.smpp.peers {
            if p.system_id.is_empty() || p.system_id.len() > 15 {
                return bad(format!(
                    "smpp peer system_id {:?} must be 1 to 15 characters",
                    p.system_id
                ));
            }
            if p.password.expose().len() > 8 {
                // SMPP 3.4 limits password to 8 octets; a longer one could never match.
                return bad(format!(
                    "smpp peer {:?}: password longer than 8 characters",
                    p.system_id
                ));
            }
        }
        let mut ids: Vec<&str> = self
            .smpp
            .peers
            .iter()
            .map(|p| p.system_id.as_str())
            .collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return bad("smpp peers: system_id listed twice".into());
        }
        self.validate_connections()?;
        if !self.database.url.starts_with("sqlite:") && !self.database.url.starts_with("postgres") {
            return bad("database.url must start with sqlite: or postgres://".into());
        }
        Ok(())
    }

    /// Operator connections: each one complete and sane, names unique, and no two
    /// connections of one route with the same priority (failover order would be a
    /// coin toss).
    fn validate_connections(&self) -> Result<(), ConfigError> {
        let bad = |name: &str, m: &str| {
            Err(ConfigError::Invalid(format!(
                "smpp.connections {name:?}: {m}"
            )))
        };
        let mut names = std::collections::HashSet::new();
        let mut slots = std::collections::HashMap::new();
        for c in &self.smpp.connections {
            let name = c.name.as_str();
            if name.is_empty()
                || name.len() > 32
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return bad(name, "name must be 1 to 32 letters, digits, '-' or '_'");
            }
            if !names.insert(name) {
                return bad(name, "name listed twice");
            }
            if c.host.is_empty() {
                return bad(name, "host is empty");
            }
            if c.port == 0 {
                return bad(name, "port must be 1 to 65535");
            }
            if c.system_id.is_empty() || c.system_id.len() > 15 {
                return bad(name, "system_id must be 1 to 15 characters");
            }
            if c.password.expose().len() > 8 {
                return bad(name, "password longer than 8 characters (SMPP allows 8)");
            }
            if c.system_type.len() > 12 {
                return bad(name, "system_type longer than 12 characters");
            }
            if !(1..=1000).contains(&c.window) {
                return bad(name, "window must be 1 to 1000");
            }
            if c.enquire_link_secs == 0 || c.connect_timeout_secs == 0 || c.max_backoff_secs == 0 {
                return bad(name, "enquire_link_secs, connect_timeout_secs and max_backoff_secs must be at least 1");
            }
            if c.source_ton.is_some_and(|t| t > 6) {
                return bad(name, "source_ton must be 0 to 6");
            }
            if c.source_npi
                .is_some_and(|n| ![0, 1, 3, 4, 6, 8, 9, 10, 14, 18].contains(&n))
            {
                return bad(
                    name,
                    "source_npi is not an SMPP numbering plan (0, 1, 3, 4, 6, 8, 9, 10, 14, 18)",
                );
            }
            let source = c.source_addr.as_deref().unwrap_or(&self.service.sender_id);
            if source.is_empty() || source.len() > 20 {
                return bad(name, "source_addr must be 1 to 20 characters");
            }
            let mut own = std::collections::HashSet::new();
            for r in &c.routes {
                if r.is_empty() || r.len() > 15 || !r.bytes().all(|b| b.is_ascii_digit()) {
                    return bad(name, &format!("route {r:?} must be 1 to 15 digits of an international number, e.g. \"98912\""));
                }
                if !own.insert(r) {
                    return bad(name, &format!("route {r:?} listed twice"));
                }
            }
            let keys: Vec<&str> = if c.routes.is_empty() {
                vec![""]
            } else {
                c.routes.iter().map(String::as_str).collect()
            };
            for key in keys {
                if let Some(other) = slots.insert((key, c.priority), name) {
                    let route = if key.is_empty() {
                        "the default route".to_owned()
                    } else {
                        format!("route {key:?}")
                    };
                    return bad(name, &format!("has the same priority ({}) as {other:?} on {route}: give each connection of a route its own priority", c.priority));
                }
            }
        }
        Ok(())
    }

    /// Where the key file lives when keys are not configured: beside the SQLite
    /// database, or in the working directory for other databases.
    /// Consecutive failures that lock a card: `[policy] max_failures`, else the
    /// older `[service] max_failures`.
    pub fn max_failures(&self) -> i64 {
        self.policy
            .max_failures
            .unwrap_or(self.service.max_failures)
    }

    pub fn key_file_path(&self) -> PathBuf {
        if let Some(p) = &self.secrets.key_file {
            return p.clone();
        }
        match sqlite_path(&self.database.url) {
            Some(db) => {
                let mut p = db.into_os_string();
                p.push(".key");
                PathBuf::from(p)
            }
            None => PathBuf::from("otpgw.key"),
        }
    }
}

/// The file behind a `sqlite:` URL, if it names one.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

impl Settings {
    /// The hashing keys: from `secrets.pan_key`/`code_key` if set, else from the key
    /// file. On SQLite a missing key file is created with mode 0600, so the embedded
    /// default works out of the box; on PostgreSQL every node must share the keys, so
    /// they have to be configured.
    pub fn keys(&self) -> Result<otpgw_rules::codes::Keys, ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(m);
        match (&self.secrets.pan_key, &self.secrets.code_key) {
            (Some(p), Some(c)) => {
                return otpgw_rules::codes::Keys::from_hex(p.expose(), c.expose())
                    .map_err(|e| invalid(format!("secrets: {e}")))
            }
            (None, None) => {}
            _ => {
                return Err(invalid(
                    "secrets: set both pan_key and code_key, or neither".into(),
                ))
            }
        }
        let path = self.key_file_path();
        if path.exists() {
            return read_key_file(&path);
        }
        if sqlite_path(&self.database.url).is_none() {
            // A node inventing its own keys could never find a card another node enrolled.
            return Err(invalid(format!(
                "secrets: with a shared database set secrets.pan_key and secrets.code_key, or a key_file \
                 that exists ({} does not); they must be the same on every node",
                path.display()
            )));
        }
        let keys = otpgw_rules::codes::Keys::generate();
        write_key_file(&path, &keys)
            .map_err(|e| invalid(format!("cannot create key file {}: {e}", path.display())))?;
        tracing::warn!(path = %path.display(), "created a new key file (mode 0600); back it up: without it no enrolled card can be found");
        Ok(keys)
    }
}

impl Settings {
    /// Checks the keys as far as can be done without creating anything: inline keys
    /// must parse, and an existing key file must be readable and valid.
    pub fn check_keys(&self) -> Result<(), ConfigError> {
        let configured = self.secrets.pan_key.is_some() || self.secrets.code_key.is_some();
        if configured || self.key_file_path().exists() {
            self.keys()?;
        }
        Ok(())
    }

    /// These settings for printing: secrets are already hidden by `Secret`; the
    /// database URL's password is hidden here.
    pub fn redacted(&self) -> Self {
        let mut copy = self.clone();
        copy.database.url = redact_url_password(&self.database.url);
        copy
    }
}

/// `postgres://user:pw@host/db` → `postgres://user:***@host/db`.
fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_owned(),
    }
}

fn read_key_file(path: &Path) -> Result<otpgw_rules::codes::Keys, ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let invalid = |m: String| ConfigError::Invalid(m);
    let meta = std::fs::metadata(path)
        .map_err(|e| invalid(format!("key file {}: {e}", path.display())))?;
    if meta.permissions().mode() & 0o077 != 0 {
        // Anyone who can read it can reverse every card hash offline; anyone who can
        // write it can make the gateway lose every card. Not a warning: a refusal.
        return Err(invalid(format!(
            "key file {} has mode {:o}: group and others must have no access; run chmod 600 on it",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(format!("key file {}: {e}", path.display())))?;
    #[derive(Deserialize)]
    struct KeyFile {
        pan_key: String,
        code_key: String,
    }
    let file: KeyFile = toml::from_str(&text)
        .map_err(|e| invalid(format!("key file {}: {}", path.display(), e.message())))?;
    otpgw_rules::codes::Keys::from_hex(&file.pan_key, &file.code_key)
        .map_err(|e| invalid(format!("key file {}: {e}", path.display())))
}

fn write_key_file(path: &Path, keys: &otpgw_rules::codes::Keys) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "# otpgw hashing keys. Keep secret, back up, never change: cards and codes are found by them.")?;
    writeln!(file, "pan_key = \"{}\"", keys.pan_key_hex())?;
    writeln!(file, "code_key = \"{}\"", keys.code_key_hex())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_setup() {
        let s = Settings::load(None).unwrap();
        assert_eq!(s.smpp.listen, "127.0.0.1:2775");
        assert_eq!(s.http.listen, "127.0.0.1:8080");
        assert_eq!(s.smpp.peers.len(), 1);
        assert_eq!(s.key_file_path(), PathBuf::from("otpgw.db.key"));
        assert!(!format!("{s:?}").contains("\"test\", allow"));
    }

    #[test]
    fn lock_policy_forms() {
        let load = |policy: &str| -> Result<Settings, ConfigError> {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c.toml");
            std::fs::write(
                &path,
                format!("[service]\nmax_failures = 4\n[policy]\n{policy}\n"),
            )
            .unwrap();
            Settings::load(Some(&path))
        };
        let s = load("").unwrap();
        assert_eq!(s.policy.lock.timed_ms(), None);
        assert_eq!(s.max_failures(), 4, "service.max_failures still read");
        let s = load("lock = \"until_reactivated\"\nmax_failures = 2").unwrap();
        assert_eq!((s.policy.lock.timed_ms(), s.max_failures()), (None, 2));
        let s = load("lock = { timed_secs = 86400 }").unwrap();
        assert_eq!(s.policy.lock.timed_ms(), Some(86_400_000));
        assert!(load("lock = \"forever\"").is_err());
        assert!(load("lock = { timed_secs = 0 }").is_err());
        assert!(load("cap_currency = \"rial\"").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn database_passwords_are_hidden() {
        assert_eq!(
            redact_url_password("postgres://otpgw:s3cret@db:5432/otpgw"),
            "postgres://otpgw:***@db:5432/otpgw"
        );
        assert_eq!(
            redact_url_password("postgres://otpgw@db/otpgw"),
            "postgres://otpgw@db/otpgw"
        );
        assert_eq!(
            redact_url_password("sqlite://otpgw.db"),
            "sqlite://otpgw.db"
        );
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://a/b.db?mode=rwc"),
            Some(PathBuf::from("a/b.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }

    fn with_connections(tables: &str) -> Result<Settings, ConfigError> {
        let figment =
            Figment::from(Serialized::defaults(Settings::default())).merge(Toml::string(tables));
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    #[test]
    fn cluster_settings_are_checked() {
        let cluster = |t: &str| with_connections(&format!("[cluster]\n{t}"));
        let s = cluster("").unwrap();
        assert_eq!(
            (s.cluster.outbox_lease_secs, s.cluster.outbox_margin_ms),
            (10, 2_000)
        );
        assert!(cluster("node_id = \"otpgw-a\"").is_ok());
        for bad in [
            "outbox_lease_secs = 0",
            "outbox_poll_ms = 0",
            "outbox_lease_secs = 2\noutbox_margin_ms = 2000",
            "node_id = \"\"",
            "node_id = \"two words\"",
            "node_id = \"a\\nb\"",
            "outbox_lease = 3",
        ] {
            assert!(cluster(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn connections_are_checked() {
        let one = |extra: &str| {
            format!(
                "[[smpp.connections]]\nname = \"mci\"\nhost = \"10.0.0.1\"\nport = 2775\nsystem_id = \"bank\"\npassword = \"pw\"\n{extra}\n"
            )
        };
        let ok = with_connections(&one("routes = [\"98912\"]\nversion = \"5.0\"")).unwrap();
        let c = &ok.smpp.connections[0];
        assert_eq!(c.version, SmppVersion::V50);
        assert_eq!((c.window, c.tps, c.split), (10, 100, Split::Udh));
        assert!(c.registered_delivery);
        let refused = |tables: String, needle: &str| {
            let err = with_connections(&tables).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} lacks {needle:?}");
        };
        refused(one("routes = [\"+98912\"]"), "must be 1 to 15 digits");
        refused(one("window = 0"), "window must be 1 to 1000");
        refused(one("version = \"3.3\""), "use \"3.4\" or \"5.0\"");
        refused(one("source_ton = 9"), "source_ton");
        refused(one("bind = \"receiver\""), "unknown variant");
        refused(format!("{}{}", one(""), one("")), "name listed twice");
        let twin = one("routes = [\"98912\"]").replace("\"mci\"", "\"mtn\"");
        refused(
            format!("{}{twin}", one("routes = [\"98912\", \"98935\"]")),
            "same priority (0) as \"mci\" on route \"98912\"",
        );
        let backup = format!("{twin}priority = 1\n");
        assert!(with_connections(&format!("{}{backup}", one("routes = [\"98912\"]"))).is_ok());
    }
}
