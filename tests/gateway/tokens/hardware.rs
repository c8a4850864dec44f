//! Hardware tokens: an OCRA response that verifies only for the payment its
//! challenge was issued for (and a time-stepped suite; and two payments whose
//! derived challenges would collide), a vendor file imported from the CLI then suspended,
//! resynced and revoked, and which codes `[policy] accept` lets verify on a card
//! with both an SMS code and a token.

use serde_json::{json, Value};

use super::{py, totp_codes, unix_secs};
use crate::cards;
use crate::harness::Gateway;

#[test]
fn tokens_ocra_response_verifies_only_for_its_payment() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    let card = gw.enroll_id(&admin, cards::C, "989121150002");
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
    let ch = gw.challenge(&verifier, &pay);
    let (challenge, challenge_id) = (ch["challenge"].as_str().unwrap(), &ch["challenge_id"]);
    assert_eq!(ch["canonical"], "v1|purchase|1500000|IRR|Digikala");
    let response = py(&["ocra", "OCRA-1:HOTP-SHA256-8:QN08", secret, challenge])["response"]
        .as_str()
        .unwrap()
        .to_owned();

    let body = |txn: &Value, id: &str| json!({"pan": cards::C, "code": response, "request_id": id, "transaction": txn, "challenge_id": challenge_id});
    let v = gw.verify_with(&verifier, body(&other, "other-payment"));
    assert_eq!(v["reason"], "invalid", "another payment: {v}");
    let no_id = json!({"pan": cards::C, "code": response, "request_id": "no-challenge-id", "transaction": pay});
    let v = gw.verify_with(&verifier, no_id);
    assert_eq!(
        v["reason"], "invalid",
        "the payment without its challenge: {v}"
    );
    let v = gw.verify_with(&verifier, body(&pay, "its-payment"));
    assert_eq!(v["result"], "approved", "{v}");
    let v = gw.verify_with(&verifier, body(&pay, "again"));
    assert_eq!(v["reason"], "used", "one challenge, one approval: {v}");
    // Another key cannot name this key's challenge.
    let stranger = gw.api_key("verifier");
    let (status, e) = gw.post(&stranger, "/v1/verify", &body(&pay, "stranger"));
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("unknown_challenge")),
        "{e}"
    );

    // A time-stepped suite: the response of now's minute verifies once; one two
    // minutes old does not.
    let card_b = gw.enroll_id(&admin, cards::B1, "989121150004");
    let timed = "OCRA-1:HOTP-SHA1-6:QN08-T1M";
    let seed = "3132333435363738393031323334353637383930";
    let (status, body) = gw.post(
        &admin,
        &format!("/v1/cards/{card_b}/tokens"),
        &json!({"kind": "ocra", "suite": timed, "serial": "OT-0002", "secret": seed}),
    );
    assert_eq!(status, 201, "{body}");
    let ch = gw.challenge(&verifier, &pay);
    let challenge = ch["challenge"].as_str().unwrap();
    // Now's response verifies even if the minute turns meanwhile: a response of the
    // minute before is still inside the window.
    let minute = unix_secs() / 60;
    let at = |step: u64| {
        py(&["ocra", timed, seed, challenge, &step.to_string()])["response"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let timed_body = |code: &str, id: &str| json!({"pan": cards::B1, "code": code, "request_id": id, "transaction": pay, "challenge_id": ch["challenge_id"]});
    let v = gw.verify_with(&verifier, timed_body(&at(minute - 2), "t-old"));
    assert_eq!(v["reason"], "invalid", "{v}");
    let v = gw.verify_with(&verifier, timed_body(&at(minute), "t-now"));
    assert_eq!(v["result"], "approved", "{v}");
    let v = gw.verify_with(&verifier, timed_body(&at(minute), "t-again"));
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

/// The swap a derived challenge allowed (issue 23): two payments whose 8-digit
/// challenges, as otpgw once derived them from the payment, are equal. Issued
/// challenges are random and bound to their payment: the customer's response for
/// the small payment approves it, and never the large one, whether the attacker
/// names the small payment's challenge or asks for one of its own.
#[test]
fn an_ocra_response_approves_no_payment_whose_old_challenge_collides() {
    // Three wrong codes would lock the card before the last, right one.
    let (gw, admin, verifier) =
        Gateway::start_with_overrides(&[("OTPGW_SERVICE__MAX_FAILURES", "5")]).with_keys();
    let card = gw.enroll_id(&admin, cards::C, "989121150002");
    let secret = "3132333435363738393031323334353637383930313233343536373839303132";
    let suite = "OCRA-1:HOTP-SHA256-8:QN08";
    let (status, body) = gw.post(
        &admin,
        &format!("/v1/cards/{card}/tokens"),
        &json!({"kind": "ocra", "suite": suite, "serial": "OT-9", "secret": secret}),
    );
    assert_eq!(status, 201, "{body}");
    let found = py(&["collision", "purchase", "IRR", "Digikala"]);
    let payment = |amount: &Value| json!({"type": "purchase", "amount": amount, "currency": "IRR", "payee": "Digikala"});
    let (small, large) = (payment(&found["a"]), payment(&found["b"]));

    let ch = gw.challenge(&verifier, &small);
    let digits = ch["challenge"].as_str().unwrap();
    let response = py(&["ocra", suite, secret, digits])["response"]
        .as_str()
        .unwrap()
        .to_owned();
    let attempt = |txn: &Value, challenge_id: &Value, id: &str| {
        gw.verify_with(&verifier, json!({"pan": cards::C, "code": response, "request_id": id, "transaction": txn, "challenge_id": challenge_id}))
    };
    // The old derivation, the attacker's hope: both payments' old challenges agree.
    let old = py(&[
        "ocra",
        suite,
        secret,
        found["old_challenge"].as_str().unwrap(),
    ]);
    let v = attempt(&large, &ch["challenge_id"], "swap");
    assert_eq!(
        v["reason"], "invalid",
        "the small payment's challenge on the large one: {v}"
    );
    // The attacker's own challenge for the large payment has other digits: the
    // response answers nothing there either.
    let theirs = gw.challenge(&verifier, &large);
    assert_ne!(theirs["challenge"], ch["challenge"]);
    let v = attempt(&large, &theirs["challenge_id"], "own-challenge");
    assert_eq!(v["reason"], "invalid", "{v}");
    // A response over the old derived challenge verifies for neither payment.
    let old_body = |txn: &Value, challenge_id: &Value, id: &str| json!({"pan": cards::C, "code": old["response"], "request_id": id, "transaction": txn, "challenge_id": challenge_id});
    let v = gw.verify_with(
        &verifier,
        old_body(&large, &theirs["challenge_id"], "old-derivation"),
    );
    assert_eq!(v["reason"], "invalid", "{v}");
    let v = attempt(&small, &ch["challenge_id"], "its-own");
    assert_eq!(v["result"], "approved", "{v}");
}

#[test]
fn tokens_cli_import_suspend_resync_revoke() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    let card = gw.enroll_id(&admin, cards::D, "989121150003");
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
    let now = unix_secs();
    let c = totp_codes(uri, now, &[0, 5, 6, 7]);
    gw.rejects(&verifier, cards::D, &c[0], "suspended", "invalid");
    assert!(gw.cli(&["token", "reactivate", "--id", &id]).0);
    gw.approves(&verifier, cards::D, &c[0], "reactivated");

    // A token whose clock runs 5 to 6 steps ahead: its code is outside the window
    // until an administrator resyncs it from two consecutive codes.
    gw.rejects(&verifier, cards::D, &c[3], "ahead", "invalid");
    // The drift is counted from the step the gateway is in when it resyncs: 6
    // from `now`'s step, one less for each boundary crossed since (the test does
    // not wait for the clock; it bounds the step from both sides instead).
    let before = unix_secs() / 30 - now / 30;
    let (ok, out, err) = gw.cli(&[
        "token", "resync", "--id", &id, "--first", &c[1], "--second", &c[2],
    ]);
    let after = unix_secs() / 30 - now / 30;
    assert!(ok, "{err}");
    let resynced: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let drift = resynced["drift"].as_u64().expect("a drift");
    assert!(
        (6 - after..=6 - before).contains(&drift),
        "drift {drift}, steps crossed {before}..={after}: {resynced}"
    );
    gw.approves(&verifier, cards::D, &c[3], "ahead-after-resync");
    // The resync's codes are used steps now.
    gw.rejects(&verifier, cards::D, &c[2], "resync-code", "used");

    // The console's card page lists the token, never its secret.
    let page = console_card_page(&gw, &admin, card);
    assert!(
        page.contains("id=\"tokens\"") && page.contains("HW-1") && page.contains("سخت‌افزاری"),
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
    let story = [
        "token_enrolled",
        "token_suspended",
        "token_reactivated",
        "token_resynced",
        "token_revoked",
    ];
    gw.events_include(&admin, card, &story);
}

/// One gateway per `[policy] accept`: a card with a live SMS code and an active
/// hardware token; which of the two codes verifies.
fn accept_case(accept: &str, sms_ok: bool, token_ok: bool) {
    let (gw, admin, verifier) =
        Gateway::start_with(&format!("[policy]\naccept = {accept}\n")).with_keys();
    let msisdn = "989121150014";
    let card = gw.enroll_id(&admin, cards::D, msisdn);
    let (status, body) = gw.post(
        &admin,
        &format!("/v1/cards/{card}/tokens"),
        &json!({"kind": "totp", "serial": "HW-1", "secret": "3132333435363738393031323334353637383930"}),
    );
    assert_eq!(status, 201, "{body}");
    let uri = "otpauth://totp/x:y?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=6&period=30";
    let sms_code = crate::harness::code_in(&gw.sms(msisdn, "3579", "ascii"));
    // The code of this step: it still verifies if the step ends before the verify
    // (the window takes one step back), so the wall clock cannot fail this test.
    let token_code = totp_codes(uri, unix_secs(), &[0]).remove(0);

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
}

#[test]
fn tokens_policy_accept_says_which_codes_verify_on_a_card_with_both() {
    accept_case(r#"["sms", "token"]"#, true, true);
    accept_case(r#"["token"]"#, false, true);
    accept_case(r#"["sms"]"#, true, false);
}

/// Signs in to the console with `key` and returns the card's page.
fn console_card_page(gw: &Gateway, key: &str, card: i64) -> String {
    let (client, cookie) = gw.console_session(key);
    client
        .get(gw.url(&format!("/console/cards/{card}")))
        .header("cookie", cookie)
        .send()
        .unwrap()
        .text()
        .unwrap()
}
