//! Software TOTP tokens: the two-part activation (one part in the enrollment's
//! answer, one by SMS through the operator SMSC), wrong and expired activations,
//! drift, replay and the lock, and replacing a lost phone over HTTP and the CLI.

use serde_json::{json, Value};

use super::{totp_codes, unix_secs};
use crate::cards;
use crate::db::Db;
use crate::harness::{wrong_code, Gateway};
use crate::smsc::{texts_to, Smsc};
use crate::wait::{wait_until, WITHIN};

/// The connection's routes: the test cards' phones are 98912….
const ROUTES: &str = "routes = [\"98912\"]";

/// An operator SMSC, and a gateway sending through it with an admin and a verifier
/// key and card A enrolled on `msisdn`: (smsc, gateway, admin, verifier, card id).
fn card_a_on(msisdn: &str) -> (Smsc, Gateway, String, String, i64) {
    let smsc = Smsc::start(&[]);
    let (gw, admin, verifier) = smsc.gateway(ROUTES).with_keys();
    let card = gw.enroll_id(&admin, cards::A, msisdn);
    (smsc, gw, admin, verifier, card)
}

#[test]
fn tokens_software_totp_activation_drift_replay_and_lock() {
    let msisdn = "989121150001";
    let (smsc, gw, admin, verifier, card) = card_a_on(msisdn);

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
    let text = nth_text_to(&smsc, msisdn, 1);
    let second = part_in(&text);
    assert!(
        !text.contains(&first),
        "the SMS must not carry the first part"
    );

    // A wrong activation code is counted; the right one answers the URI, once.
    let wrong = format!("{first}{}", wrong_code(&second));
    refused(&gw, &admin, token, &wrong, 422, "activation_invalid");
    // Only the SMS part is not enough.
    assert_eq!(activate(&gw, &admin, token, &second).0, 422);
    let right = format!("{first}{second}");
    let (status, activated) = activate(&gw, &admin, token, &right);
    assert_eq!(status, 200, "{activated}");
    let uri = activated["otpauth_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let again = refused(&gw, &admin, token, &right, 409, "wrong_token_state");
    assert!(again.get("otpauth_uri").is_none());

    // Codes by pyotp for the gateway's step: the current one, its replay, one two
    // steps old and one a step ahead. Each answer holds if the wall clock crosses
    // a step boundary during the sequence (the window is one step either side),
    // so nothing waits for the clock; the window's edges and drift are proved on a
    // moved clock in `core::totp`.
    let now = unix_secs();
    let codes = totp_codes(&uri, now, &[-2, 0, 1]);
    let (old, current, next) = (&codes[0], &codes[1], &codes[2]);
    gw.approves(&verifier, cards::A, current, "now");
    let v = gw.verify(&verifier, cards::A, current, "replay");
    assert_eq!(
        (v["result"].as_str(), v["reason"].as_str()),
        (Some("rejected"), Some("used")),
        "{v}"
    );
    // A code of a step before the accepted one, out of the window: a replay too
    // (`used`, not counted), as the README promises.
    let v = gw.verify(&verifier, cards::A, old, "old");
    assert_eq!(
        (v["reason"].as_str(), v["attempts_left"].as_i64()),
        (Some("used"), Some(3)),
        "{v}"
    );
    // The same request_id answers the same again, counting nothing.
    assert_eq!(gw.verify(&verifier, cards::A, old, "old"), v);
    let v = gw.verify(&verifier, cards::A, next, "next");
    assert_eq!(
        v["result"], "approved",
        "a step ahead, within the window: {v}"
    );

    // Three wrong token codes lock the card, under the same policy as SMS codes.
    let wrong = &wrong_code(current);
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
    gw.rejects(&verifier, cards::A, next, "after-lock", "locked");

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
    let story = [
        "token_enrolled",
        "token_activation_sent",
        "token_activation_failed",
        "token_activated",
        "verified",
        "locked",
    ];
    gw.events_include(&admin, card, &story);
    let log = gw.log();
    for s in [secret, &format!("{first}{second}")] {
        assert!(!log.contains(s), "a secret reached the log");
    }
}

#[test]
fn tokens_wrong_activation_codes_lock_the_activation_and_audit_each() {
    let smsc = Smsc::start(&[]);
    let tokens = "\n[tokens]\nactivation_max_failures = 3\n";
    let gw = smsc.gateway_with("", ROUTES, tokens);
    let admin = gw.api_key("admin");
    let msisdn = "989121150011";
    let card = gw.enroll_id(&admin, cards::A, msisdn);
    let (token, first, second) = enroll_software(&gw, &smsc, &admin, card, msisdn, 1);
    let wrong = format!("{first}{}", wrong_code(&second));

    // Three wrong codes: each counted and told how many are left; the third locks.
    for left in [2, 1, 0] {
        let body = refused(&gw, &admin, token, &wrong, 422, "activation_invalid");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{left} attempts left")),
            "{body}"
        );
    }
    // Locked: even the right code is refused now, for good.
    let right = format!("{first}{second}");
    let body = refused(&gw, &admin, token, &right, 410, "activation_expired");
    assert!(body.get("otpauth_uri").is_none());
    assert_eq!(token_state(&gw, &admin, card, token), "locked");

    // Audited: one event per wrong code, the last one locking; nothing secret in it.
    let failed: Vec<Value> = gw
        .events(&admin, card)
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
    let gw = smsc.gateway(ROUTES);
    let admin = gw.api_key("admin");
    let msisdn = "989121150012";
    let card = gw.enroll_id(&admin, cards::A, msisdn);
    let (token, first, second) = enroll_software(&gw, &smsc, &admin, card, msisdn, 1);

    // 10 seconds before the 24 h end it is still open: a wrong code is only wrong.
    age_activation(&gw, token, 86_400_000 - 10_000);
    let wrong = format!("{first}{}", wrong_code(&second));
    refused(&gw, &admin, token, &wrong, 422, "activation_invalid");
    // At the end: the right code is too late.
    age_activation(&gw, token, 10_000);
    let right = format!("{first}{second}");
    let body = refused(&gw, &admin, token, &right, 410, "activation_expired");
    assert!(body.get("otpauth_uri").is_none());
    let expired = gw
        .events(&admin, card)
        .into_iter()
        .filter(|e| e["kind"] == "token_activation_failed" && e["detail"]["reason"] == "expired")
        .count();
    assert_eq!(expired, 1);
    assert_eq!(token_state(&gw, &admin, card, token), "pending");
}

#[test]
fn tokens_replace_a_lost_phone_over_http_and_from_the_cli() {
    let msisdn = "989121150013";
    let (smsc, gw, admin, verifier, card) = card_a_on(msisdn);
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

    // Codes by pyotp: the lost phone's are refused, the new phone's verify (each
    // answer holds across a step boundary: the window is one step).
    let now = unix_secs();
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
    gw.approves(&verifier, cards::A, &new_codes[0], "new-phone");

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
    // A hardware token is replaced by enrolling the new device.
    let hw = gw.post(
        &admin,
        &format!("/v1/cards/{card}/tokens"),
        &json!({"kind": "totp", "serial": "HW-9", "secret": "3132333435363738393031323334353637383930"}),
    ).1["token_id"].as_i64().unwrap();
    let (ok, _, err) = gw.cli(&["token", "replace", "--id", &hw.to_string()]);
    assert!(!ok && err.contains("hardware"), "{err}");

    let kinds = gw.event_kinds(&admin, card);
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("token_revoked"), 2, "{kinds:?}");
    assert_eq!(count("token_enrolled"), 4, "{kinds:?}");
    assert_eq!(count("token_activated"), 2, "{kinds:?}");
    assert_eq!(token_state(&gw, &admin, card, third), "pending");
}

/// The `n`th SMS (from 1) to `msisdn` at the SMSC, waited for with a deadline.
fn nth_text_to(smsc: &Smsc, msisdn: &str, n: usize) -> String {
    wait_until(&format!("SMS number {n} to {msisdn}"), WITHIN, || {
        let texts = texts_to(smsc, msisdn);
        texts.into_iter().nth(n - 1).ok_or("fewer")
    })
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

/// An activation with `code` that is refused with `status` and the error `error`.
fn refused(gw: &Gateway, admin: &str, token: i64, code: &str, status: u16, error: &str) -> Value {
    let path = format!("/v1/tokens/{token}/activate");
    gw.post_error(
        admin,
        &path,
        &json!({"activation_code": code}),
        status,
        error,
    )
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
    let sql = "UPDATE tokens SET activation_expires_at = activation_expires_at - $1 WHERE id = $2";
    assert_eq!(Db::of(gw).execute(sql, &[ms, token]), 1);
}
