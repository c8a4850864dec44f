//! The embedded setup: what `otpgw serve` runs on with no file.

use std::net::IpAddr;

use otpgw_rules::vocab::Language;

use super::schema::*;
use super::Secret;

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://otpgw.db".into(),
            max_connections: 10,
            acquire_timeout_secs: 5,
            statement_timeout_secs: 5,
            synchronous: Synchronous::Full,
            sqlite_writer_cache_mib: 64,
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
            bind_failures_per_system_id: Rate {
                count: 20,
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
            admin_listen: None,
            request_timeout_secs: 10,
            header_read_timeout_secs: 10,
            max_connections: 1000,
            max_connections_per_ip: 64,
            keep_alive_max_secs: 300,
            bad_keys_per_ip: Rate {
                count: 20,
                per_secs: 60,
            },
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
pub(super) fn embedded_test_peer() -> PeerSettings {
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
