//! Loading, validation, secrets and key files, on files written by the tests.

use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;

use super::load::redact_url_password;
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

/// `text` as a configuration file in a directory of its own (kept while the
/// returned guard lives).
fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("otpgw.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn lock_policy_forms() {
    let load = |policy: &str| -> Result<Settings, ConfigError> {
        let (_dir, path) = config_file(&format!(
            "[service]\nmax_failures = 4\n[policy]\n{policy}\n"
        ));
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

/// The defaults with `toml` over them, validated.
fn validated(toml: &str) -> Result<(), ConfigError> {
    Figment::from(Serialized::defaults(Settings::default()))
        .merge(Toml::string(toml))
        .extract::<Settings>()
        .unwrap()
        .validate()
}

#[test]
fn listen_addresses_are_host_and_port() {
    let listen = |value: &str| validated(&format!("[http]\nlisten = {value:?}\n"));
    for ok in [
        "127.0.0.1:8080",
        "0.0.0.0:0",
        "localhost:65535",
        "[::1]:2775",
        "gw-1.bank.example:80",
    ] {
        assert!(listen(ok).is_ok(), "{ok} refused");
    }
    for bad in [
        "localhost:80800",
        "127.0.0.1",
        ":8080",
        "[::1:2775",
        "host name:80",
        "127.0.0.1:-1",
        "",
    ] {
        let err = listen(bad).unwrap_err().to_string();
        assert!(err.contains("http.listen"), "{bad:?}: {err}");
    }
}

#[test]
fn the_admin_listener_is_optional_checked_and_apart() {
    let admin = |value: &str| {
        validated(&format!(
            "[http]\nlisten = \"0.0.0.0:8080\"\nadmin_listen = {value:?}\n"
        ))
    };
    assert!(validated("[http]\nlisten = \"0.0.0.0:8080\"\n").is_ok());
    assert!(admin("0.0.0.0:9090").is_ok());
    for bad in ["localhost:90900", "9090", "0.0.0.0:8080"] {
        let err = admin(bad).unwrap_err().to_string();
        assert!(err.contains("http.admin_listen"), "{bad:?}: {err}");
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
    refused(
        one("response_timeout_ms = 50"),
        "response_timeout_ms must be 100 to 600000",
    );
    let quick = with_connections(&one("response_timeout_ms = 1500")).unwrap();
    let c = &quick.smpp.connections[0];
    assert_eq!(c.response_timeout(10), Duration::from_millis(1500));
    assert_eq!(
        ok.smpp.connections[0].response_timeout(10),
        Duration::from_secs(10)
    );
    refused(one("version = \"3.3\""), "use \"3.4\" or \"5.0\"");
    refused(one("source_ton = 9"), "source_ton");
    refused(one("bind = \"receiver\""), "unknown variant");
    refused(one("receipt_id = \"octal\""), "unknown variant");
    let hex = with_connections(&one("receipt_id = \"hex\"")).unwrap();
    assert_eq!(hex.smpp.connections[0].receipt_id, ReceiptId::Hex);
    assert_eq!(ok.smpp.connections[0].receipt_id, ReceiptId::Auto);
    refused(format!("{}{}", one(""), one("")), "name listed twice");
    let twin = one("routes = [\"98912\"]").replace("\"mci\"", "\"mtn\"");
    refused(
        format!("{}{twin}", one("routes = [\"98912\", \"98935\"]")),
        "same priority (0) as \"mci\" on route \"98912\"",
    );
    let backup = format!("{twin}priority = 1\n");
    assert!(with_connections(&format!("{}{backup}", one("routes = [\"98912\"]"))).is_ok());
}

#[test]
fn check_config_shows_toml_with_origins_and_no_secret() {
    let (_dir, file) = config_file(
        &"[http]\nlisten = \"127.0.0.1:8081\"\n[[smpp.peers]]\nsystem_id = \"kannel\"\npassword = \"hunter22\"\n\
          [secrets]\npan_key = \"{k}\"\ncode_key = \"{k}\"\n"
            .replace("{k}", &"ab".repeat(32)),
    );
    let (_, shown) = Settings::describe(Some(&file)).unwrap();
    assert!(
        shown.contains("listen = \"127.0.0.1:8081\"  # file "),
        "{shown}"
    );
    assert!(shown.contains("window = 10  # default"), "{shown}");
    assert!(shown.contains("# smpp.peers: file "), "{shown}");
    assert!(
        !shown.contains("hunter22") && !shown.contains(&"ab".repeat(32)),
        "{shown}"
    );
    // What it prints is a configuration that loads to the same settings (secrets aside).
    let again: Settings = toml::from_str(&shown).unwrap();
    assert_eq!(again.http.listen, "127.0.0.1:8081");
    assert_eq!(again.smpp.peers[0].system_id, "kannel");
}

#[test]
fn http_connection_bounds_are_checked() {
    let http = |table: &str| validated(&format!("[http]\n{table}\n"));
    let s = Settings::default().http;
    assert_eq!((s.max_connections_per_ip, s.keep_alive_max_secs), (64, 300));
    // A total under the per-address default is still a valid setting on its own.
    assert!(http("max_connections = 8").is_ok());
    for (bad, named) in [
        ("max_connections_per_ip = 0", "max_connections_per_ip"),
        ("keep_alive_max_secs = 0", "keep_alive_max_secs"),
        (
            "bad_keys_per_ip = { count = 0, per_secs = 60 }",
            "bad_keys_per_ip.count",
        ),
        (
            "bad_keys_per_ip = { count = 5, per_secs = 0 }",
            "bad_keys_per_ip.per_secs",
        ),
    ] {
        let err = http(bad).unwrap_err().to_string();
        assert!(err.contains(named), "{bad:?}: {err}");
    }
}

/// An operator connection's customer messages per second: by default an even share
/// of the operators' half of the global cap (all of it with no listener peer); a
/// chosen `mo_tps` is at least 1 and together they stay within that share.
#[test]
fn operator_connections_share_half_the_global_cap() {
    let conn = |name: &str, extra: &str| {
        format!(
            "[[smpp.connections]]\nname = \"{name}\"\nhost = \"10.0.0.1\"\nport = 2775\nsystem_id = \"bank\"\npassword = \"pw\"\nroutes = [\"98{}\"]\n{extra}\n",
            name.len()
        )
    };
    let peer = "[[smpp.peers]]\nsystem_id = \"kannel\"\npassword = \"pw\"\n";
    let two = |a: &str, b: &str| format!("{peer}{}{}", conn("mci", a), conn("rtel", b));
    // With a listener peer and the default global cap of 500/s.
    let s = with_connections(&two("", "")).unwrap();
    let rates: Vec<u32> = s.smpp.connections.iter().map(|c| s.mo_tps(c)).collect();
    assert_eq!(rates, [125, 125], "half of 500 over two connections");
    let s = with_connections(&two("mo_tps = 200", "mo_tps = 50")).unwrap();
    assert_eq!(s.mo_tps(&s.smpp.connections[0]), 200);
    let err = with_connections(&two("mo_tps = 200", "")).unwrap_err();
    assert!(
        err.to_string().contains("exceed the operators' share"),
        "{err}"
    );
    let err = with_connections(&two("mo_tps = 0", "")).unwrap_err();
    assert!(
        err.to_string().contains("mo_tps must be at least 1"),
        "{err}"
    );
    // Without listener peers the operators share the whole cap.
    let alone = format!("{}{}", conn("mci", ""), conn("rtel", ""));
    let s = with_connections(&alone).unwrap();
    assert_eq!(s.mo_tps(&s.smpp.connections[1]), 250);
}

/// What a reload re-reads is checked as at start: a log filter that does not parse,
/// and a key cache longer than the revocation bound allows, are refused by name.
#[test]
fn a_bad_log_level_and_a_long_key_cache_are_refused() {
    let load = |text: &str| {
        let (_dir, path) = config_file(text);
        Settings::load(Some(&path))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let err = load("[log]\nlevel = \"otpgw=loud\"\n").unwrap_err();
    assert!(err.contains("log.level"), "{err}");
    let err = load("[cluster]\napi_key_cache_ms = 5001\n").unwrap_err();
    assert!(err.contains("api_key_cache_ms"), "{err}");
    load("[log]\nlevel = \"info,sqlx=warn\"\n[cluster]\napi_key_cache_ms = 0\n").unwrap();
    let err = load("[cluster]\ncard_cache_ms = 5001\n").unwrap_err();
    assert!(err.contains("card_cache_ms"), "{err}");
}
