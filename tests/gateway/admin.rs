//! Card administration over HTTP and the CLI, and what the database and logs hold.

use serde_json::json;

use crate::cards;
use crate::harness::{code_in, Gateway};

#[test]
fn card_admin_over_http() {
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    let card = gw.enroll(&admin, "6037-9900 0000-4321", "+98 912 111 0030");
    assert_eq!(card["last4"], "4321");
    assert_eq!(card["msisdn"], "989121110030");
    assert_eq!(card["status"], "active");
    assert!(card.get("pan").is_none() && card.get("pan_hash").is_none());
    let id = card["id"].as_i64().unwrap();

    for (pan, msisdn, status, code) in [
        (cards::A, "09121110031", 409, "card_exists"),
        ("6037990000004322", "09121110031", 400, "invalid_pan"),
        (cards::C, "call me", 400, "invalid_msisdn"),
    ] {
        let body = json!({"pan": pan, "msisdn": msisdn});
        gw.post_error(&admin, "/v1/cards", &body, status, code);
    }

    assert_eq!(gw.get(&admin, &format!("/v1/cards/{id}")).1, card);
    let (status, found) = gw.post(
        &admin,
        "/v1/cards/lookup",
        &json!({"pan": "۶۰۳۷۹۹۰۰۰۰۰۰۴۳۲۱"}),
    );
    assert_eq!((status, found["id"].as_i64()), (200, Some(id)));
    let (status, _) = gw.post(&admin, "/v1/cards/lookup", &json!({"pan": cards::D}));
    assert_eq!(status, 404);
    assert_eq!(gw.get(&admin, "/v1/cards/999999").0, 404);
    assert_eq!(gw.get(&admin, "/v1/cards/abc").0, 400);

    let (status, s) = gw.post(&admin, &format!("/v1/cards/{id}/suspend"), &json!({}));
    assert_eq!((status, s["status"].as_str()), (200, Some("suspended")));
    let (status, r) = gw.post(&admin, &format!("/v1/cards/{id}/reactivate"), &json!({}));
    assert_eq!((status, r["status"].as_str()), (200, Some("active")));

    let verifier = gw.api_key("verifier");
    assert_eq!(gw.get(&verifier, &format!("/v1/cards/{id}")).0, 403);
    assert_eq!(gw.get("bogus", &format!("/v1/cards/{id}")).0, 401);
    assert_eq!(gw.get(&admin, "/v1/nothing").0, 404);
}

#[test]
fn card_admin_over_the_cli() {
    let gw = Gateway::start();
    let enroll = [
        "card",
        "enroll",
        "--pan",
        cards::C,
        "--msisdn",
        "09121110040",
    ];
    let (ok, out, err) = gw.cli(&enroll);
    assert!(ok, "{err}");
    let card: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (card["last4"].as_str(), card["msisdn"].as_str()),
        (Some("2468"), Some("989121110040"))
    );
    let (ok, out, _) = gw.cli(&["card", "show", "--pan", cards::C]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["id"],
        card["id"]
    );
    let (ok, _, err) = gw.cli(&enroll);
    assert!(!ok && err.contains("already enrolled"), "{err}");
    let (ok, _, err) = gw.cli(&["card", "enroll", "--pan", "123", "--msisdn", "09121110040"]);
    assert!(!ok && err.contains("13 to 19 digits"), "{err}");
    let (ok, _, err) = gw.cli(&["card", "show", "--id", "4242"]);
    assert!(!ok && err.contains("no such card"), "{err}");
    // The key is printed once; a second key of the same role differs.
    assert_ne!(gw.api_key("verifier"), gw.api_key("verifier"));
}

/// After a run that enrolls, issues, verifies and receives a full card number by SMS,
/// neither the database files nor the log contain a card number or a code.
#[test]
fn no_card_number_or_code_in_the_database_or_the_logs() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    let pans = [cards::A, cards::B1, cards::B2];
    for (i, pan) in pans.iter().enumerate() {
        gw.enroll(&admin, pan, &format!("98912111005{i}"));
    }
    let mut codes = Vec::new();
    for round in 0..3 {
        let code = code_in(&gw.sms("989121110050", "4321", "ascii"));
        gw.verify(&verifier, cards::A, &code, &format!("v{round}"));
        codes.push(code);
        codes.push(code_in(&gw.sms("989121110051", "۱۲۳۴", "ucs2")));
    }
    gw.sms("989121110050", cards::A, "ascii");
    gw.sms("989121110050", "6037 9900 0000 4321", "ucs2");
    gw.cli(&["card", "show", "--pan", cards::B2]);
    // Card numbers with the separators URLs and forms use, in paths the HTTP layer
    // logs: masked there too.
    let separated = [
        "6037%209900%200000%204321",
        "6037+9900+0000+4321",
        "6037.9900.0000.4321",
        "6037_9900_0000_4321",
    ];
    for pan in separated {
        let _ = reqwest::blocking::get(gw.url(&format!("/v1/nothing/{pan}")));
    }
    gw.wait_for_log_count("/v1/nothing/[redacted]", separated.len());

    let mut haystacks = vec![("log".to_owned(), gw.log())];
    if gw.db_url.starts_with("sqlite") {
        for suffix in ["", "-wal", "-shm"] {
            let path = gw.dir.path().join(format!("otpgw.db{suffix}"));
            if let Ok(bytes) = std::fs::read(&path) {
                haystacks.push((
                    path.display().to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
        assert!(haystacks.len() >= 2, "database file not found");
    }
    for (name, hay) in &haystacks {
        for pan in pans {
            assert!(!hay.contains(pan), "{name} contains a card number");
            assert!(
                !hay.contains(&pan[..12]),
                "{name} contains most of a card number"
            );
        }
        for code in &codes {
            assert!(!hay.contains(code.as_str()), "{name} contains a code");
        }
        for pan in separated {
            assert!(
                !hay.contains(pan),
                "{name} contains a separated card number"
            );
        }
    }
}

/// `otpgw serve` with no configuration: SQLite file and a 0600 key file in the
/// working directory, and the `test`/`test` peer accepted from loopback.
#[test]
fn the_embedded_default_works_without_a_config_file() {
    use std::os::unix::fs::PermissionsExt;
    let gw = Gateway::start_embedded();
    let key_file = gw.dir.path().join("otpgw.db.key");
    let mode = std::fs::metadata(&key_file)
        .expect("key file created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(gw.dir.path().join("otpgw.db").exists());
    // SQLite runs in WAL mode (the -wal file exists while the gateway has it open).
    assert!(
        gw.dir.path().join("otpgw.db-wal").exists(),
        "not in WAL mode"
    );
    assert!(
        gw.log().contains("test/test is accepted"),
        "the embedded peer is announced with a warning"
    );
    let p = gw.peer_as("test", "test", &[], &["bind-only"]);
    assert_eq!(p.event("bind")["status"], 0);
    let p = gw.peer_as("kannel", "secret", &[], &["bind-only"]);
    assert_eq!(p.event("bind")["status"], 0x0E);
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    for (toml, want) in [
        ("[smpp]\nlisten = 5\n", "listen"),
        ("[service]\nlanguage = \"de\"\n", "language"),
        ("[service]\ncode_ttl_secs = 0\n", "code_ttl_secs"),
        ("[http]\nlisten = \"localhost:80800\"\n", "http.listen"),
        ("[nonsense]\nx = 1\n", "nonsense"),
        (
            "[[smpp.peers]]\nsystem_id = \"a\"\npassword = \"toolongpassword\"\n",
            "password",
        ),
    ] {
        std::fs::write(&config, toml).unwrap();
        let out = std::process::Command::new(crate::harness::bin())
            .args(["--config", config.to_str().unwrap(), "check-config"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "{toml}: {err}");
    }
    // `serve` on such a file fails before it creates a database.
    std::fs::write(&config, "[http]\nlisten = \"localhost:80800\"\n").unwrap();
    let out = std::process::Command::new(crate::harness::bin())
        .args(["--config", config.to_str().unwrap(), "serve"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "only the config: {files:?}");
    let out = std::process::Command::new(crate::harness::bin())
        .args(["--config", "/nonexistent/otpgw.toml", "check-config"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn check_config_prints_toml_with_each_values_origin_and_errors_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("otpgw.toml");
    std::fs::write(&config, "[http]\nlisten = \"127.0.0.1:8081\"\n").unwrap();
    let run = |env: &[(&str, &str)]| {
        std::process::Command::new(crate::harness::bin())
            .args(["--config", config.to_str().unwrap(), "check-config"])
            .env_remove("OTPGW_CONFIG")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let out = run(&[("OTPGW_SMPP__LISTEN", "127.0.0.1:2999")]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    for line in [
        "listen = \"127.0.0.1:2999\"  # environment OTPGW_SMPP__LISTEN",
        "listen = \"127.0.0.1:8081\"  # file ",
        "window = 10  # default",
    ] {
        assert!(shown.contains(line), "{line:?} missing: {shown}");
    }
    let out = run(&[("OTPGW_SERVICE__CODE_TTL_SECS", "\"soon\"")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.to_lowercase().contains("code_ttl_secs"),
        "{err}"
    );
    assert_eq!(
        err.matches("expected u64").count(),
        1,
        "printed once: {err}"
    );
}
