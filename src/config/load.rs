//! Loading: defaults ← file (if any) ← environment, then every section checked,
//! so that a bad setting stops the start with a message naming it.

use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;

use super::defaults::embedded_test_peer;
use super::schema::*;
use super::ConfigError;

impl Settings {
    /// Defaults ← file (if any) ← environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_figment(&Self::figment(file)?)
    }

    /// The settings the layered sources give, validated.
    pub(super) fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    /// The layered sources, which also know where each value came from.
    pub(super) fn figment(file: Option<&Path>) -> Result<Figment, ConfigError> {
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
        Ok(figment)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.service.code_ttl_secs == 0 {
            return bad("service.code_ttl_secs must be at least 1".into());
        }
        check_listen("smpp.listen", &self.smpp.listen)?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return bad(format!(
                "log.level {:?} is not a log filter: {e}",
                self.log.level
            ));
        }
        if let Err(e) = self.messages.wording() {
            return bad(e.to_string());
        }
        check_listen("http.listen", &self.http.listen)?;
        if let Some(admin) = &self.http.admin_listen {
            check_listen("http.admin_listen", admin)?;
            if admin == &self.http.listen && !admin.ends_with(":0") {
                return bad("http.admin_listen must differ from http.listen".into());
            }
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
        if cluster.api_key_cache_ms > 5_000 {
            return bad("cluster.api_key_cache_ms must be at most 5000: a revoked key must stop working on every node soon".into());
        }
        if cluster.card_cache_ms > 5_000 {
            return bad("cluster.card_cache_ms must be at most 5000: a changed phone or a closed card must take effect on every node soon".into());
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
            || !(10..=86_400).contains(&self.tokens.challenge_ttl_secs)
        {
            return bad("tokens: window_steps 0..=10, resync_steps up to 10000, activation_ttl_secs and activation_max_failures at least 1, issuer 1 to 64 characters, challenge_ttl_secs 10..=86400".into());
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
        let rates = self.limits.msisdn.iter().chain([
            &self.limits.card,
            &self.limits.unknown_sender,
            &self.limits.locks_per_key,
        ]);
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
            (
                "smpp.bind_failures_per_system_id.count",
                u64::from(self.smpp.bind_failures_per_system_id.count),
            ),
            (
                "smpp.bind_failures_per_system_id.per_secs",
                self.smpp.bind_failures_per_system_id.per_secs,
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
                "http.max_connections_per_ip",
                self.http.max_connections_per_ip as u64,
            ),
            ("http.keep_alive_max_secs", self.http.keep_alive_max_secs),
            (
                "http.bad_keys_per_ip.count",
                u64::from(self.http.bad_keys_per_ip.count),
            ),
            (
                "http.bad_keys_per_ip.per_secs",
                self.http.bad_keys_per_ip.per_secs,
            ),
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
        self.validate_mo_rates()?;
        if let Some(sim_swap) = &self.sim_swap {
            sim_swap.validate()?;
        }
        self.console.validate()?;
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
            if c.response_timeout_ms
                .is_some_and(|ms| !(100..=600_000).contains(&ms))
            {
                return bad(name, "response_timeout_ms must be 100 to 600000");
            }
            if !(1..=86_400).contains(&c.receipt_wait_secs) {
                return bad(name, "receipt_wait_secs must be 1 to 86400");
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

    /// The part of `limits.global_per_second` operator connections' MOs may take
    /// together: half when listener peers are configured (the other half stays
    /// theirs, so one hostile SMSC cannot use up the cap they share), else all.
    pub fn operators_share(&self) -> u32 {
        let global = self.limits.global_per_second;
        if self.smpp.peers.is_empty() {
            global
        } else {
            global / 2
        }
    }

    /// Customers' messages per second connection `c` may deliver: its `mo_tps`, else
    /// an even share of `operators_share` (with no global cap, `limits.peer_tps`).
    pub fn mo_tps(&self, c: &ConnectionSettings) -> u32 {
        let n = u32::try_from(self.smpp.connections.len())
            .unwrap_or(u32::MAX)
            .max(1);
        c.mo_tps.unwrap_or(match self.limits.global_per_second {
            0 => self.limits.peer_tps,
            _ => (self.operators_share() / n).max(1),
        })
    }

    /// Every connection's MO rate set, and together within the operators' share of
    /// the global cap.
    fn validate_mo_rates(&self) -> Result<(), ConfigError> {
        if let Some(c) = self.smpp.connections.iter().find(|c| c.mo_tps == Some(0)) {
            return Err(ConfigError::Invalid(format!(
                "smpp.connections {:?}: mo_tps must be at least 1",
                c.name
            )));
        }
        let total: u64 = self
            .smpp
            .connections
            .iter()
            .map(|c| u64::from(self.mo_tps(c)))
            .sum();
        let share = self.operators_share();
        // The defaults are even shares (at least 1/s each); only chosen rates can
        // overrun the share.
        let chosen = self.smpp.connections.iter().any(|c| c.mo_tps.is_some());
        if chosen && self.limits.global_per_second > 0 && total > u64::from(share) {
            return Err(ConfigError::Invalid(format!(
                "smpp.connections: mo_tps together ({total}/s) exceed the operators' share of limits.global_per_second ({share}/s: half of it while listener peers are configured, so an SMSC cannot use up their part)"
            )));
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

/// `host:port` as a listener binds it: a host name, an IPv4 address or a bracketed
/// IPv6 one, and a port from 0 to 65535. Caught when the file is read, so `serve`
/// fails before it opens (or creates) a database.
fn check_listen(field: &str, value: &str) -> Result<(), ConfigError> {
    let valid = value.rsplit_once(':').is_some_and(|(host, port)| {
        let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => {
                !host.is_empty()
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            }
        };
        host_ok && port.parse::<u16>().is_ok()
    });
    if valid {
        return Ok(());
    }
    Err(ConfigError::Invalid(format!(
        "{field} = {value:?}: expected host:port with a port from 0 to 65535 \
         (e.g. \"127.0.0.1:8080\", \"[::1]:2775\")"
    )))
}

/// `postgres://user:pw@host/db` → `postgres://user:***@host/db`.
pub(super) fn redact_url_password(url: &str) -> String {
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
