//! Customer tokens end to end: the real binary, an operator SMSC (npm `smpp`) that
//! receives the activation's SMS part, and codes computed by independent
//! implementations (PyPI `pyotp` for TOTP, PyPI `oath` for OCRA) through
//! `tests/peers/tokens.py`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::cards;
use crate::harness::Gateway;
use crate::smsc::{texts_to, Smsc};

fn py(args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/tokens.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 tests/peers/tokens.py");
    assert!(
        out.status.success(),
        "tokens.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Codes are computed for the step the gateway is in now; a sequence of verifies
/// takes a second or two, so it starts at least `room` seconds before the step
/// ends (waiting out the clock's boundary, not another process).
fn step_with_room(period: u64, room: u64) -> u64 {
    let now = unix_secs();
    if period - now % period < room {
        std::thread::sleep(Duration::from_secs(period - now % period));
    }
    unix_secs()
}

/// The codes `offsets` steps away from now's step, by pyotp.
fn totp_codes(uri: &str, now: u64, offsets: &[i64]) -> Vec<String> {
    let mut args = vec!["totp".to_owned(), uri.to_owned(), now.to_string()];
    args.extend(offsets.iter().map(i64::to_string));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = py(&refs);
    offsets
        .iter()
        .map(|o| v["codes"][o.to_string()].as_str().unwrap().to_owned())
        .collect()
}

fn verify_with(gw: &Gateway, key: &str, body: Value) -> Value {
    let (status, v) = gw.post(key, "/v1/verify", &body);
    assert_eq!(status, 200, "verify: {v}");
    v
}

fn kinds(gw: &Gateway, admin: &str, card: i64) -> Vec<String> {
    let (_, events) = gw.get(admin, &format!("/v1/cards/{card}/events"));
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// Signs in to the console with `key` and returns the card's page.
fn console_card_page(gw: &Gateway, key: &str, card: i64) -> String {
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = client
        .post(gw.url("/console/signin"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={key}"))
        .send()
        .unwrap();
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    client
        .get(gw.url(&format!("/console/cards/{card}")))
        .header("cookie", cookie)
        .send()
        .unwrap()
        .text()
        .unwrap()
}

#[test]
fn tokens_software_totp_activation_drift_replay_and_lock() {
    let smsc = Smsc::start(&[]);
    let gw = Gateway::start_with(&smsc.connection("mci", "routes = [\"98912\"]"));
    smsc.wait_bound(1);
    let admin = gw.api_key("admin");
    let verifier = gw.api_key("verifier");
    let msisdn = "989121150001";
    let card = gw.enroll(&admin, cards::A, msisdn)["id"].as_i64().unwrap();

    // Enroll: the first part comes back, the second goes to the phone by SMS.
    let (status, enrolled) = gw.post(
        &admin,
        &format!("/v1/cards/{card}/tokens"),
        &json!({"kind": "totp"}),
    );
    assert_eq!(status, 201, "{enrolled}");
    let token = enrolled["token_id"].as_i64().unwrap();
    assert_eq!(enrolled["token"]["state"], "pending");
    assert_eq!(enrolled["activation"]["state"], "sent", "{enrolled}");
    let first = enrolled["activation_part"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 6);
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        if let Some(t) = texts_to(&smsc, msisdn).into_iter().next() {
            break t;
        }
        assert!(Instant::now() < deadline, "no activation SMS");
        std::thread::sleep(Duration::from_millis(20));
    };
    let second: String = text
        .split(|c: char| !c.is_ascii_digit())
        .find(|d| d.len() == 6)
        .unwrap_or_else(|| panic!("no 6-digit part in {text:?}"))
        .to_owned();
    assert!(
        !text.contains(&first),
        "the SMS must not carry the first part"
    );

    // A wrong activation code is counted; the right one answers the URI, once.
    let activate = |code: &str| {
        gw.post(
            &admin,
            &format!("/v1/tokens/{token}/activate"),
            &json!({"activation_code": code}),
        )
    };
    let wrong = format!(
        "{first}{}",
        if second == "000000" {
            "000001"
        } else {
            "000000"
        }
    );
    let (status, body) = activate(&wrong);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("activation_invalid")),
        "{body}"
    );
    // Only the SMS part is not enough.
    assert_eq!(activate(&second).0, 422);
    let (status, activated) = activate(&format!("{first}{second}"));
    assert_eq!(status, 200, "{activated}");
    let uri = activated["otpauth_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let (status, again) = activate(&format!("{first}{second}"));
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("wrong_token_state"))
    );
    assert!(again.get("otpauth_uri").is_none());

    // Codes by pyotp for the gateway's step: one step of drift, the current one,
    // its replay, and one two steps old.
    let now = step_with_room(30, 8);
    let codes = totp_codes(&uri, now, &[-2, -1, 0, 1]);
    let (old, previous, current, next) = (&codes[0], &codes[1], &codes[2], &codes[3]);
    let v = gw.verify(&verifier, cards::A, previous, "drift");
    assert_eq!(v["result"], "approved", "one step of drift: {v}");
    let v = gw.verify(&verifier, cards::A, current, "now");
    assert_eq!(v["result"], "approved", "{v}");
    let v = gw.verify(&verifier, cards::A, current, "replay");
    assert_eq!(
        (v["result"].as_str(), v["reason"].as_str()),
        (Some("rejected"), Some("used")),
        "{v}"
    );
    let v = gw.verify(&verifier, cards::A, old, "old");
    assert_eq!(
        (v["reason"].as_str(), v["attempts_left"].as_i64()),
        (Some("invalid"), Some(2)),
        "{v}"
    );
    // The same request_id answers the same again, counting nothing.
    assert_eq!(gw.verify(&verifier, cards::A, old, "old"), v);
    let v = gw.verify(&verifier, cards::A, next, "next");
    assert_eq!(
        v["result"], "approved",
        "a step ahead, within the window: {v}"
    );
    assert!(
        unix_secs() / 30 == now / 30,
        "the sequence crossed a step boundary"
    );

    // Three wrong token codes lock the card, under the same policy as SMS codes.
    let wrong = if current == "000000" {
        "000001"
    } else {
        "000000"
    };
    for (i, left) in [(0, 2), (1, 1), (2, 0)] {
        let v = gw.verify(&verifier, cards::A, wrong, &format!("wrong-{i}"));
        assert_eq!(
            (v["reason"].as_str(), v["attempts_left"].as_i64()),
            (Some("invalid"), Some(left)),
            "{v}"
        );
    }
    let (_, shown) = gw.get(&admin, &format!("/v1/cards/{card}"));
    assert_eq!(shown["status"], "locked");
    let v = gw.verify(&verifier, cards::A, next, "after-lock");
    assert_eq!(v["reason"], "locked", "{v}");

    // The card's tokens, never a secret; the audit trail; nothing secret logged.
    let (_, listed) = gw.get(&admin, &format!("/v1/cards/{card}/tokens"));
    assert_eq!(listed[0]["state"], "active", "{listed}");
    assert!(listed[0]["last_used_at"].is_i64());
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(!listed.to_string().contains(secret));
    let kinds = kinds(&gw, &admin, card);
    for k in [
        "token_enrolled",
        "token_activation_sent",
        "token_activation_failed",
        "token_activated",
        "verified",
        "locked",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in {kinds:?}");
    }
    let log = gw.log();
    for s in [secret, &format!("{first}{second}")] {
        assert!(!log.contains(s), "a secret reached the log");
    }
}

#[test]
fn tokens_ocra_response_verifies_only_for_its_payment() {
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    let verifier = gw.api_key("verifier");
    let card = gw.enroll(&admin, cards::C, "989121150002")["id"]
        .as_i64()
        .unwrap();
    // A hardware OCRA token from the vendor's file: active at once.
    let secret = "3132333435363738393031323334353637383930313233343536373839303132";
    let (status, enrolled) = gw.post(
        &admin,
        &format!("/v1/cards/{card}/tokens"),
        &json!({"kind": "ocra", "suite": "OCRA-1:HOTP-SHA256-8:QN08", "serial": "OT-0001", "secret": secret}),
    );
    assert_eq!(status, 201, "{enrolled}");
    assert_eq!(enrolled["token"]["state"], "active");
    assert!(enrolled.get("activation_part").is_none());
    assert!(!enrolled.to_string().contains(secret));

    let pay =
        json!({"type": "purchase", "amount": 1_500_000, "currency": "IRR", "payee": "Digikala"});
    let other =
        json!({"type": "purchase", "amount": 1_500_001, "currency": "IRR", "payee": "Digikala"});
    let (status, ch) = gw.post(&verifier, "/v1/challenge", &json!({"transaction": pay}));
    assert_eq!(status, 200, "{ch}");
    let challenge = ch["challenge"].as_str().unwrap();
    // The derivation is documented exactly: anyone can compute it.
    assert_eq!(
        py(&["challenge", ch["canonical"].as_str().unwrap()])["challenge"],
        challenge
    );
    let response = py(&["ocra", "OCRA-1:HOTP-SHA256-8:QN08", secret, challenge])["response"]
        .as_str()
        .unwrap()
        .to_owned();

    let body = |txn: &Value, id: &str| json!({"pan": cards::C, "code": response, "request_id": id, "transaction": txn});
    let v = verify_with(&gw, &verifier, body(&other, "other-payment"));
    assert_eq!(v["reason"], "invalid", "another payment: {v}");
    let v = gw.verify(&verifier, cards::C, &response, "no-payment");
    assert_eq!(v["reason"], "invalid", "no payment: {v}");
    let v = verify_with(&gw, &verifier, body(&pay, "its-payment"));
    assert_eq!(v["result"], "approved", "{v}");
    let v = verify_with(&gw, &verifier, body(&pay, "again"));
    assert_eq!(v["reason"], "used", "one payment, one approval: {v}");

    // A time-stepped suite: the response of now's minute verifies once; one two
    // minutes old does not.
    let card_b = gw.enroll(&admin, cards::B1, "989121150004")["id"]
        .as_i64()
        .unwrap();
    let timed = "OCRA-1:HOTP-SHA1-6:QN08-T1M";
    let seed = "3132333435363738393031323334353637383930";
    let (status, body) = gw.post(
        &admin,
        &format!("/v1/cards/{card_b}/tokens"),
        &json!({"kind": "ocra", "suite": timed, "serial": "OT-0002", "secret": seed}),
    );
    assert_eq!(status, 201, "{body}");
    let minute = step_with_room(60, 5) / 60;
    let at = |step: u64| {
        py(&["ocra", timed, seed, challenge, &step.to_string()])["response"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let timed_body = |code: &str, id: &str| json!({"pan": cards::B1, "code": code, "request_id": id, "transaction": pay});
    let v = verify_with(&gw, &verifier, timed_body(&at(minute - 2), "t-old"));
    assert_eq!(v["reason"], "invalid", "{v}");
    let v = verify_with(&gw, &verifier, timed_body(&at(minute), "t-now"));
    assert_eq!(v["result"], "approved", "{v}");
    let v = verify_with(&gw, &verifier, timed_body(&at(minute), "t-again"));
    assert_eq!(v["reason"], "used", "{v}");

    // The serial is unique among live tokens.
    let (status, dup) = gw.post(
        &admin,
        &format!("/v1/cards/{card}/tokens"),
        &json!({"kind": "ocra", "serial": "OT-0001", "secret": secret}),
    );
    assert_eq!(
        (status, dup["error"]["code"].as_str()),
        (409, Some("serial_exists")),
        "{dup}"
    );
}

#[test]
fn tokens_cli_import_suspend_resync_revoke() {
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    let verifier = gw.api_key("verifier");
    let card = gw.enroll(&admin, cards::D, "989121150003")["id"]
        .as_i64()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vendor.csv");
    // RFC 6238's SHA-1 seed, as a vendor file would carry it.
    std::fs::write(
        &file,
        "# serial,secret,algorithm,digits,period\nHW-1,3132333435363738393031323334353637383930,sha1,6,30\n",
    )
    .unwrap();
    let card_arg = card.to_string();
    let (ok, out, err) = gw.cli(&[
        "token",
        "import",
        "--card",
        &card_arg,
        "--serial",
        "HW-1",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let imported: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let id = imported["token_id"].as_i64().unwrap().to_string();
    assert_eq!(imported["token"]["source"], "hardware");
    let uri = "otpauth://totp/x:y?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=6&period=30";

    // Suspended: its codes do not verify; re-activated: they do.
    assert!(
        gw.cli(&["token", "suspend", "--id", &id, "--reason", "lost"])
            .0
    );
    let now = step_with_room(30, 8);
    let c = totp_codes(uri, now, &[0, 5, 6, 7]);
    let v = gw.verify(&verifier, cards::D, &c[0], "suspended");
    assert_eq!(v["reason"], "invalid", "{v}");
    assert!(gw.cli(&["token", "reactivate", "--id", &id]).0);
    let v = gw.verify(&verifier, cards::D, &c[0], "reactivated");
    assert_eq!(v["result"], "approved", "{v}");

    // A token whose clock runs 5 to 6 steps ahead: its code is outside the window
    // until an administrator resyncs it from two consecutive codes.
    let v = gw.verify(&verifier, cards::D, &c[3], "ahead");
    assert_eq!(v["reason"], "invalid", "{v}");
    let (ok, out, err) = gw.cli(&[
        "token", "resync", "--id", &id, "--first", &c[1], "--second", &c[2],
    ]);
    assert!(ok, "{err}");
    let resynced: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(resynced["drift"], 6, "{resynced}");
    let v = gw.verify(&verifier, cards::D, &c[3], "ahead-after-resync");
    assert_eq!(v["result"], "approved", "{v}");
    // The resync's codes are used steps now.
    let v = gw.verify(&verifier, cards::D, &c[2], "resync-code");
    assert_eq!(v["reason"], "used", "{v}");

    // The console's card page lists the token, never its secret.
    let page = console_card_page(&gw, &admin, card);
    assert!(
        page.contains("id=\"tokens\"") && page.contains("HW-1") && page.contains("hardware"),
        "{page}"
    );
    assert!(!page.contains("3132333435") && !page.contains("GEZDGNBV"));

    let (ok, out, _) = gw.cli(&["token", "revoke", "--id", &id]);
    assert!(ok);
    assert!(out.contains("\"revoked\""));
    let (ok, out, _) = gw.cli(&["token", "list", "--card", &card_arg]);
    assert!(
        ok && out.contains("\"revoked\"") && !out.contains("3132333435"),
        "{out}"
    );
    let kinds = kinds(&gw, &admin, card);
    for k in [
        "token_enrolled",
        "token_suspended",
        "token_reactivated",
        "token_resynced",
        "token_revoked",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in {kinds:?}");
    }
}

/// The `n`th SMS (from 1) to `msisdn` at the SMSC, waited for with a deadline.
fn nth_text_to(smsc: &Smsc, msisdn: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(t) = texts_to(smsc, msisdn).into_iter().nth(n - 1) {
            return t;
        }
        assert!(Instant::now() < deadline, "no SMS number {n} to {msisdn}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The 6-digit activation part in an SMS.
fn part_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|d| d.len() == 6)
        .unwrap_or_else(|| panic!("no 6-digit part in {text:?}"))
        .to_owned()
}

/// A software TOTP token enrolled over HTTP: its id, the part the caller gets and
/// the part the SMSC received (the `nth` SMS to the card's phone).
fn enroll_software(
    gw: &Gateway,
    smsc: &Smsc,
    admin: &str,
    card: i64,
    msisdn: &str,
    nth: usize,
) -> (i64, String, String) {
    let (status, enrolled) = gw.post(
        admin,
        &format!("/v1/cards/{card}/tokens"),
        &json!({"kind": "totp"}),
    );
    assert_eq!(status, 201, "{enrolled}");
    assert_eq!(enrolled["activation"]["state"], "sent", "{enrolled}");
    (
        enrolled["token_id"].as_i64().unwrap(),
        enrolled["activation_part"].as_str().unwrap().to_owned(),
        part_in(&nth_text_to(smsc, msisdn, nth)),
    )
}

fn activate(gw: &Gateway, admin: &str, token: i64, code: &str) -> (u16, Value) {
    gw.post(
        admin,
        &format!("/v1/tokens/{token}/activate"),
        &json!({"activation_code": code}),
    )
}

/// A 6-digit part other than `part`.
fn other_part(part: &str) -> &'static str {
    if part == "000000" {
        "000001"
    } else {
        "000000"
    }
}

fn events(gw: &Gateway, admin: &str, card: i64) -> Vec<Value> {
    let (_, events) = gw.get(admin, &format!("/v1/cards/{card}/events"));
    events.as_array().unwrap().clone()
}

fn token_state(gw: &Gateway, admin: &str, card: i64, token: i64) -> String {
    let (_, listed) = gw.get(admin, &format!("/v1/cards/{card}/tokens"));
    listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == token)
        .unwrap_or_else(|| panic!("no token {token} in {listed}"))["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Moves a token's activation deadline `ms` into the past, as if that much time
/// had gone by.
fn age_activation(gw: &Gateway, token: i64, ms: i64) {
    let (rt, mut conn) = crate::verify::connect(gw);
    let sql = "UPDATE tokens SET activation_expires_at = activation_expires_at - $1 WHERE id = $2";
    let done = rt
        .block_on(sqlx::query(sql).bind(ms).bind(token).execute(&mut conn))
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
}

#[test]
fn tokens_wrong_activation_codes_lock_the_activation_and_audit_each() {
    let smsc = Smsc::start(&[]);
    let gw = Gateway::start_with(&format!(
        "{}\n[tokens]\nactivation_max_failures = 3\n",
        smsc.connection("mci", "routes = [\"98912\"]")
    ));
    smsc.wait_bound(1);
    let admin = gw.api_key("admin");
    let msisdn = "989121150011";
    let card = gw.enroll(&admin, cards::A, msisdn)["id"].as_i64().unwrap();
    let (token, first, second) = enroll_software(&gw, &smsc, &admin, card, msisdn, 1);
    let wrong = format!("{first}{}", other_part(&second));

    // Three wrong codes: each counted and told how many are left; the third locks.
    for left in [2, 1, 0] {
        let (status, body) = activate(&gw, &admin, token, &wrong);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("activation_invalid")),
            "{body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{left} attempts left")),
            "{body}"
        );
    }
    // Locked: even the right code is refused now, for good.
    let (status, body) = activate(&gw, &admin, token, &format!("{first}{second}"));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("activation_expired")),
        "{body}"
    );
    assert!(body.get("otpauth_uri").is_none());
    assert_eq!(token_state(&gw, &admin, card, token), "locked");

    // Audited: one event per wrong code, the last one locking; nothing secret in it.
    let failed: Vec<Value> = events(&gw, &admin, card)
        .into_iter()
        .filter(|e| e["kind"] == "token_activation_failed")
        .map(|e| e["detail"].clone())
        .collect();
    let wrong_codes: Vec<(i64, bool)> = failed
        .iter()
        .filter(|d| d["reason"] == "wrong_code")
        .map(|d| {
            assert_eq!(d["token_id"], token, "{d}");
            (
                d["attempts_left"].as_i64().unwrap(),
                d["locked"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        wrong_codes,
        vec![(2, false), (1, false), (0, true)],
        "{failed:?}"
    );
    let trail = serde_json::to_string(&failed).unwrap();
    assert!(
        !trail.contains(&first) && !trail.contains(&second),
        "{trail}"
    );
    assert!(!gw.log().contains(&format!("{first}{second}")));
}

#[test]
fn tokens_an_activation_expires_after_24_hours() {
    let smsc = Smsc::start(&[]);
    let gw = Gateway::start_with(&smsc.connection("mci", "routes = [\"98912\"]"));
    smsc.wait_bound(1);
    let admin = gw.api_key("admin");
    let msisdn = "989121150012";
    let card = gw.enroll(&admin, cards::A, msisdn)["id"].as_i64().unwrap();
    let (token, first, second) = enroll_software(&gw, &smsc, &admin, card, msisdn, 1);

    // 10 seconds before the 24 h end it is still open: a wrong code is only wrong.
    age_activation(&gw, token, 86_400_000 - 10_000);
    let (status, body) = activate(
        &gw,
        &admin,
        token,
        &format!("{first}{}", other_part(&second)),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("activation_invalid")),
        "{body}"
    );
    // At the end: the right code is too late.
    age_activation(&gw, token, 10_000);
    let (status, body) = activate(&gw, &admin, token, &format!("{first}{second}"));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("activation_expired")),
        "{body}"
    );
    assert!(body.get("otpauth_uri").is_none());
    let expired = events(&gw, &admin, card)
        .into_iter()
        .filter(|e| e["kind"] == "token_activation_failed" && e["detail"]["reason"] == "expired")
        .count();
    assert_eq!(expired, 1);
    assert_eq!(token_state(&gw, &admin, card, token), "pending");
}

#[test]
fn tokens_replace_a_lost_phone_over_http_and_from_the_cli() {
    let smsc = Smsc::start(&[]);
    let gw = Gateway::start_with(&smsc.connection("mci", "routes = [\"98912\"]"));
    smsc.wait_bound(1);
    let admin = gw.api_key("admin");
    let verifier = gw.api_key("verifier");
    let msisdn = "989121150013";
    let card = gw.enroll(&admin, cards::A, msisdn)["id"].as_i64().unwrap();
    let (old, first, second) = enroll_software(&gw, &smsc, &admin, card, msisdn, 1);
    let (status, body) = activate(&gw, &admin, old, &format!("{first}{second}"));
    assert_eq!(status, 200, "{body}");
    let old_uri = body["otpauth_uri"].as_str().unwrap().to_owned();

    // The phone is lost: replace. The old token is revoked, a new one waits for a
    // new two-part activation whose SMS part reaches the phone's number.
    let (status, replaced) = gw.post(&admin, &format!("/v1/tokens/{old}/replace"), &json!({}));
    assert_eq!(status, 201, "{replaced}");
    let new = replaced["token_id"].as_i64().unwrap();
    assert_ne!(new, old);
    assert_eq!(replaced["token"]["state"], "pending");
    assert_eq!(replaced["activation"]["state"], "sent", "{replaced}");
    let new_first = replaced["activation_part"].as_str().unwrap().to_owned();
    let new_second = part_in(&nth_text_to(&smsc, msisdn, 2));
    assert_eq!(token_state(&gw, &admin, card, old), "revoked");
    // The old activation code is not the new one.
    let (status, _) = activate(&gw, &admin, new, &format!("{first}{second}"));
    assert_eq!(status, 422);
    let (status, body) = activate(&gw, &admin, new, &format!("{new_first}{new_second}"));
    assert_eq!(status, 200, "{body}");
    let new_uri = body["otpauth_uri"].as_str().unwrap().to_owned();
    let secret = |uri: &str| {
        uri.split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_ne!(secret(&old_uri), secret(&new_uri));

    // Codes by pyotp: the lost phone's are refused, the new phone's verify.
    let now = step_with_room(30, 8);
    let old_codes = totp_codes(&old_uri, now, &[0, 1]);
    let new_codes = totp_codes(&new_uri, now, &[0, 1]);
    if !old_codes.iter().any(|c| new_codes.contains(c)) {
        let v = gw.verify(&verifier, cards::A, &old_codes[0], "lost-phone");
        assert_eq!(
            (v["result"].as_str(), v["reason"].as_str()),
            (Some("rejected"), Some("invalid")),
            "{v}"
        );
    }
    let v = gw.verify(&verifier, cards::A, &new_codes[0], "new-phone");
    assert_eq!(v["result"], "approved", "{v}");

    // From the CLI: the new token is revoked and replaced in turn; no SMS part can go
    // from there, and the activation says so.
    let (ok, out, err) = gw.cli(&["token", "replace", "--id", &new.to_string()]);
    assert!(ok, "{err}");
    let by_cli: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let third = by_cli["token_id"].as_i64().unwrap();
    assert_eq!(by_cli["token"]["state"], "pending", "{by_cli}");
    assert_eq!(by_cli["activation"]["state"], "no_route", "{by_cli}");
    assert_eq!(by_cli["activation_part"].as_str().map(str::len), Some(6));
    assert_eq!(token_state(&gw, &admin, card, new), "revoked");
    if new_codes[1] != old_codes[1] {
        let v = gw.verify(&verifier, cards::A, &new_codes[1], "replaced-phone");
        assert_eq!(v["reason"], "invalid", "a revoked token's code: {v}");
    }
    assert!(
        unix_secs() / 30 == now / 30,
        "the sequence crossed a step boundary"
    );
    // A hardware token is replaced by enrolling the new device.
    let hw = gw.post(
        &admin,
        &format!("/v1/cards/{card}/tokens"),
        &json!({"kind": "totp", "serial": "HW-9", "secret": "3132333435363738393031323334353637383930"}),
    ).1["token_id"].as_i64().unwrap();
    let (ok, _, err) = gw.cli(&["token", "replace", "--id", &hw.to_string()]);
    assert!(!ok && err.contains("hardware"), "{err}");

    let kinds = kinds(&gw, &admin, card);
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("token_revoked"), 2, "{kinds:?}");
    assert_eq!(count("token_enrolled"), 4, "{kinds:?}");
    assert_eq!(count("token_activated"), 2, "{kinds:?}");
    assert_eq!(token_state(&gw, &admin, card, third), "pending");
}

/// One gateway per `[policy] accept`: a card with a live SMS code and an active
/// hardware token; which of the two codes verifies.
fn accept_case(accept: &str, sms_ok: bool, token_ok: bool) {
    let gw = Gateway::start_with(&format!("[policy]\naccept = {accept}\n"));
    let admin = gw.api_key("admin");
    let verifier = gw.api_key("verifier");
    let msisdn = "989121150014";
    let card = gw.enroll(&admin, cards::D, msisdn)["id"].as_i64().unwrap();
    let (status, body) = gw.post(
        &admin,
        &format!("/v1/cards/{card}/tokens"),
        &json!({"kind": "totp", "serial": "HW-1", "secret": "3132333435363738393031323334353637383930"}),
    );
    assert_eq!(status, 201, "{body}");
    let uri = "otpauth://totp/x:y?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=6&period=30";
    let sms_code = crate::harness::code_in(&gw.sms(msisdn, "3579", "ascii"));
    let now = step_with_room(30, 5);
    let token_code = totp_codes(uri, now, &[0]).remove(0);

    let v = gw.verify(&verifier, cards::D, &token_code, "token");
    if token_ok {
        assert_eq!(
            v["result"], "approved",
            "accept = {accept}: token code: {v}"
        );
    } else {
        // Refused as a wrong code, and counted: the card has a live code.
        assert_eq!(
            (v["reason"].as_str(), v["attempts_left"].as_i64()),
            (Some("invalid"), Some(2)),
            "accept = {accept}: {v}"
        );
    }
    let v = gw.verify(&verifier, cards::D, &sms_code, "sms");
    if sms_ok {
        assert_eq!(v["result"], "approved", "accept = {accept}: SMS code: {v}");
    } else {
        assert_eq!(
            (v["reason"].as_str(), v["attempts_left"].as_i64()),
            (Some("invalid"), Some(2)),
            "accept = {accept}: {v}"
        );
    }
    assert!(
        unix_secs() / 30 == now / 30,
        "the sequence crossed a step boundary"
    );
}

#[test]
fn tokens_policy_accept_says_which_codes_verify_on_a_card_with_both() {
    accept_case(r#"["sms", "token"]"#, true, true);
    accept_case(r#"["token"]"#, false, true);
    accept_case(r#"["sms"]"#, true, false);
}
