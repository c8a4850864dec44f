//! The back-office console, through the real binary: a real headless browser
//! (Debian's chromium driven by npm playwright-core, `tests/peers/console_e2e.js`)
//! signs in, finds a locked card by its number, re-activates it with a reason, and
//! checks roles, CSRF and sign-out; then a fresh code verifies. Also API-key list and
//! revoke over the JSON API and the CLI, and a revoked key's console session.
//!
//! Set `OTPGW_CONSOLE_SHOTS=docs/console` to refresh the README's screenshots.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::cards;
use crate::harness::{code_in, Gateway};

/// Lines of the gateway's own log (the harness also keeps the CLI's output, which
/// prints new keys by design).
fn server_log(gw: &Gateway) -> String {
    gw.log()
        .lines()
        .filter(|l| !l.starts_with("{\"id\":"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn console_in_a_browser() {
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    let helpdesk = gw.api_key("helpdesk");
    let verifier = gw.api_key("verifier");
    let msisdn = "989121110500";
    let card = gw.enroll(&admin, cards::A, msisdn);
    let id = card["id"].as_i64().unwrap();

    // A code, then three wrong ones: the card locks.
    let first = code_in(&gw.sms(msisdn, "4321", "ascii"));
    let wrong = if first == "1111111" {
        "2222222"
    } else {
        "1111111"
    };
    for i in 0..3 {
        let v = gw.verify(&verifier, cards::A, wrong, &format!("wrong-{i}"));
        assert_eq!(v["reason"], "invalid", "{v}");
    }
    assert_eq!(
        gw.get(&admin, &format!("/v1/cards/{id}")).1["status"],
        "locked"
    );

    let shots = std::env::var("OTPGW_CONSOLE_SHOTS").ok();
    let tmp = tempfile::tempdir().unwrap();
    let shots_dir = match &shots {
        Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        None => tmp.path().to_path_buf(),
    };
    std::fs::create_dir_all(&shots_dir).unwrap();
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/console_e2e.js"))
        .args(["--url", &gw.url("")])
        .args([
            "--admin",
            &admin,
            "--helpdesk",
            &helpdesk,
            "--pan",
            cards::A,
        ])
        .args(["--shots", shots_dir.to_str().unwrap()])
        .output()
        .expect("node console_e2e.js (see .ci/run: npm ci --prefix tests/peers, chromium)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser script failed:\n{stderr}");
    let seen: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");

    // Signing in.
    assert_eq!(seen["unsigned_redirect"], "/console/signin", "{seen}");
    assert_eq!(seen["admin_signed_in"], true);
    assert_eq!(
        seen["cookie"],
        json!({"httpOnly": true, "sameSite": "Strict", "path": "/console"})
    );
    // The locked card, found by its number, and why it is locked.
    assert_eq!(seen["card_path"], format!("/console/cards/{id}"));
    assert_eq!(seen["locked_status"], "locked");
    assert_eq!(seen["locked_failures"], "3");
    let why = seen["locked_why"].as_str().unwrap();
    assert!(
        why.contains("3 consecutive wrong codes") && why.contains("apikey:"),
        "{why}"
    );
    assert_eq!(seen["verifications_rows"], 3);
    assert_eq!(seen["admin_sees_suspend"], true);
    assert_eq!(seen["fa_dir"], "rtl");
    // Re-activated with a reason, audited with the clerk's key.
    assert_eq!(seen["reactivated_status"], "active");
    let audit = seen["audit_reactivated"].as_str().unwrap();
    assert!(
        audit.contains("identity checked") && audit.contains("apikey:1"),
        "{audit}"
    );
    assert_eq!(seen["csv_type"], "text/csv; charset=utf-8");
    assert!(seen["csv_disposition"]
        .as_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(seen["csv_has_reason"], true);
    assert!(seen["keys_rows"].as_i64().unwrap() >= 3);
    // CSRF and origin.
    assert_eq!(seen["no_csrf"], 403);
    assert_eq!(seen["bad_csrf"], 403);
    assert_eq!(seen["cross_origin"], 403);
    assert_eq!(seen["after_refused_status"], "active");
    // Sign-out ends the session for good.
    assert_eq!(seen["signed_out_at"], "/console/signin");
    assert_eq!(
        seen["old_cookie_get"],
        json!({"status": 303, "location": "/console/signin"})
    );
    assert_eq!(seen["old_cookie_post"], 401);
    // The help desk: no suspend button, a forged suspend refused, no key admin.
    assert_eq!(seen["helpdesk_lang"], "fa");
    assert_eq!(seen["helpdesk_sees_suspend"], 0);
    assert_eq!(seen["helpdesk_keys_link"], 0);
    assert_eq!(seen["helpdesk_forged_suspend"], 403);
    assert_eq!(seen["helpdesk_keys_page"], 403);
    assert_eq!(seen["after_forged_status"], "active");
    assert_eq!(seen["leaks"], json!([]), "secrets on a page");

    // The customer asks for a fresh code, and it verifies.
    let code = code_in(&gw.sms(msisdn, "4321", "ascii"));
    let v = gw.verify(&verifier, cards::A, &code, "after-reactivation");
    assert_eq!(v["result"], "approved", "{v}");

    // The audit trail has the reason and the refused attempts changed nothing.
    let (_, events) = gw.get(&admin, &format!("/v1/cards/{id}/events"));
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(!kinds.contains(&"suspended"), "{kinds:?}");
    let reactivated = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "reactivated")
        .unwrap();
    assert_eq!(reactivated["actor"], "apikey:1");
    assert_eq!(reactivated["detail"]["previous_status"], "locked");

    let log = server_log(&gw);
    for secret in [cards::A, &admin, &helpdesk, &verifier, &code] {
        assert!(!log.contains(secret), "a secret in the log");
    }
}

#[test]
fn console_api_keys_list_and_revoke() {
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    let verifier = gw.api_key("verifier");
    let helpdesk = gw.api_key("helpdesk");

    let (status, keys) = gw.get(&admin, "/v1/apikeys");
    assert_eq!(status, 200);
    let roles: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["admin", "verifier", "helpdesk"]);
    assert!(keys.to_string().find("otpgw_").is_none(), "a key listed");
    // The JSON API is for admin keys; helpdesk works in the console only.
    assert_eq!(gw.get(&helpdesk, "/v1/apikeys").0, 403);
    assert_eq!(gw.get(&verifier, "/v1/apikeys").0, 403);

    // A helpdesk clerk signs in to the console.
    let browser = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = browser
        .post(gw.url("/console/signin"))
        .form(&[("key", helpdesk.as_str())])
        .send()
        .unwrap();
    assert_eq!(resp.status(), 303);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let home = |c: &str| {
        browser
            .get(gw.url("/console"))
            .header("cookie", c)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(home(&cookie), 200);
    // A verifier key cannot sign in to the console.
    let refused = browser
        .post(gw.url("/console/signin"))
        .form(&[("key", verifier.as_str())])
        .send()
        .unwrap();
    assert_eq!(refused.status(), 403);

    // Revoking over HTTP: refused at once, console sessions ended, audited.
    let helpdesk_id = keys[2]["id"].as_i64().unwrap();
    let (status, revoked) = gw.post(
        &admin,
        &format!("/v1/apikeys/{helpdesk_id}/revoke"),
        &json!({}),
    );
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].as_i64().is_some());
    assert_eq!(home(&cookie), 303);
    // Revoking again changes nothing; an unknown key is 404.
    let (status, again) = gw.post(
        &admin,
        &format!("/v1/apikeys/{helpdesk_id}/revoke"),
        &json!({}),
    );
    assert_eq!(
        (status, &again["revoked_at"]),
        (200, &revoked["revoked_at"])
    );
    assert_eq!(gw.post(&admin, "/v1/apikeys/999/revoke", &json!({})).0, 404);

    // Revoking from the CLI: the verifier's next request is refused, on this node and
    // on a second node of the same database (keys are read afresh, never cached).
    let other = Gateway::start_beside(&gw);
    let verifier_id = keys[1]["id"].as_i64().unwrap().to_string();
    let body = json!({"pan": cards::C, "code": "1234567", "request_id": "r1"});
    assert_eq!(gw.post(&verifier, "/v1/verify", &body).0, 200);
    let body2 = json!({"pan": cards::C, "code": "1234567", "request_id": "r2"});
    assert_eq!(other.post(&verifier, "/v1/verify", &body2).0, 200);
    let (ok, out, err) = gw.cli(&["apikey", "revoke", "--id", &verifier_id]);
    assert!(ok, "{err}");
    assert!(out.contains("\"revoked_at\":"), "{out}");
    assert_eq!(gw.post(&verifier, "/v1/verify", &body).0, 401);
    assert_eq!(other.post(&verifier, "/v1/verify", &body2).0, 401);
    let (ok, out, _) = gw.cli(&["apikey", "list"]);
    assert!(ok);
    let listed: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["revoked_at"].is_i64())
            .count(),
        2
    );

    // Audited, with who did it: the admin's console export shows both revocations.
    let resp = browser
        .post(gw.url("/console/signin"))
        .form(&[("key", admin.as_str())])
        .send()
        .unwrap();
    let admin_cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csv = browser
        .get(gw.url("/console/audit.csv?kind=api_key_revoked"))
        .header("cookie", &admin_cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows[0].contains("\"cli\"") && rows[1].contains("\"apikey:1\""),
        "{csv}"
    );
    // The console is for sessions, not bearer keys.
    assert_eq!(gw.get(&admin, "/console/audit.csv").1, Value::Null);
}
