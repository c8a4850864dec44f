//! Rate limits through real sockets: tell once then stay silent, unknown senders,
//! a peer over its TPS, 429 on verify, and the guessing guard.

use serde_json::json;

use crate::api::retry_after;
use crate::cards;
use crate::harness::{code_in, send, Gateway};

/// A message from `from` that waits for its reply, or (`reply` false) waits half a
/// second for none.
fn message<'a>(from: &'a str, text: &'a str, reply: bool) -> Vec<&'a str> {
    let quiet: &[&str] = if reply {
        &[]
    } else {
        &["--no-reply", "--quiet-wait", "0.5"]
    };
    send(from, text, "ascii", quiet)
}

/// English replies, and 3 codes a minute for a phone number (the card's own limit
/// out of the way).
pub const THREE_A_MINUTE: &str = "language = \"en\"
[limits]
msisdn = [{ count = 3, per_secs = 60 }]
card = { count = 100, per_secs = 1 }";

/// Through the sockets: the burst, the one notice and the silence. When codes
/// come back is a question of time, answered on a moved clock in
/// `core::limits::the_fourth_request_in_a_minute_gets_one_notice_then_silence`.
#[test]
fn a_burst_gets_codes_up_to_the_limit_one_notice_then_silence() {
    let gw = Gateway::start_with(THREE_A_MINUTE);
    let admin = gw.api_key("admin");
    gw.enroll(&admin, cards::A, "989121110080");
    let from = "989121110080";
    let mut args = Vec::new();
    for _ in 0..3 {
        args.extend(message(from, "4321", true));
    }
    args.extend(message(from, "4321", true)); // the one notice
    args.extend(message(from, "4321", false)); // silence
    args.extend(message(from, "4321", false));
    args.push("unbind");
    let p = gw.peer(&args);
    p.ok();
    let resps = p.all("submit_sm_resp");
    assert_eq!(resps.len(), 6);
    assert!(
        resps.iter().all(|r| r["status"] == 0),
        "every PDU is answered: {p:?}"
    );
    let replies: Vec<&str> = p
        .all("deliver_sm")
        .iter()
        .map(|d| d["text"].as_str().unwrap())
        .collect();
    assert_eq!(replies.len(), 4, "{replies:?}");
    for r in &replies[..3] {
        code_in(r);
    }
    assert!(
        replies[3].starts_with("Too many requests. Try again in "),
        "{}",
        replies[3]
    );
    assert_eq!(p.all("no_reply").len(), 2);
    let metrics = gw.metrics_text();
    assert!(
        metrics.contains("otpgw_limited_total{rule=\"msisdn\"} 3"),
        "{metrics}"
    );
}

#[test]
fn unknown_senders_get_one_notice_per_window() {
    let gw = Gateway::start_with("[limits]\nunknown_sender = { count = 1, per_secs = 3600 }");
    let mut args = message("989129990000", "4321", true);
    args.extend(message("989129990000", "4321", false));
    args.extend(message("989129990000", "1234", false));
    args.extend(message("989129990001", "4321", true)); // another unknown number: its own notice
    args.push("unbind");
    let p = gw.peer(&args);
    p.ok();
    assert_eq!(p.all("deliver_sm").len(), 2, "{p:?}");
    assert_eq!(p.all("no_reply").len(), 2);
}

#[test]
fn a_peer_over_its_tps_gets_throttled_and_its_session_stays_usable() {
    let gw =
        Gateway::start_with("[limits]\npeer_tps = 2\nmsisdn = [{ count = 1000, per_secs = 1 }]");
    let mut args = Vec::new();
    for _ in 0..8 {
        let quiet = ["--no-reply", "--quiet-wait", "0"];
        args.extend(send("989121110081", "help", "ascii", &quiet));
    }
    args.extend(["enquire-link", "unbind"]);
    let p = gw.peer(&args);
    p.ok();
    let statuses: Vec<u64> = p
        .all("submit_sm_resp")
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses.len(), 8);
    assert!(
        statuses.contains(&0x58),
        "some ESME_RTHROTTLED: {statuses:?}"
    );
    assert!(statuses.contains(&0), "some accepted: {statuses:?}");
    assert_eq!(p.event("enquire_link_resp")["status"], 0);
    assert_eq!(p.event("unbind_resp")["status"], 0);
}

#[test]
fn verify_over_the_key_rate_gets_429_and_counts_no_failure() {
    let (gw, admin, verifier) =
        Gateway::start_with("[limits]\nverify_per_key_per_second = 1").with_keys();
    gw.enroll(&admin, cards::A, "989121110082");
    // A live code, so that wrong guesses count (without one, nothing counts).
    let code = code_in(&gw.sms("989121110082", "4321", "ascii"));
    assert_ne!(code, "0000000");
    let body = json!({"pan": cards::A, "code": "0000000", "request_id": "first"});
    let (status, _) = gw.post(&verifier, "/v1/verify", &body);
    assert_eq!(status, 200);
    let (mut answered, mut limited) = (1, None);
    for i in 0..20 {
        let body = json!({"pan": cards::A, "code": "0000000", "request_id": format!("burst{i}")});
        let resp = gw.post_raw(&verifier, "/v1/verify", &body);
        if resp.status().as_u16() == 429 {
            limited = Some(resp);
            break;
        }
        answered += 1;
    }
    let resp = limited.expect("a burst over 1/s is limited");
    let retry = retry_after(&resp);
    assert!((1..=2).contains(&retry), "{retry}");
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Throttled attempts are not failures: the count is exactly the answered ones.
    let card = gw.lookup(&admin, cards::A);
    assert_eq!(card["failures"].as_i64(), Some(answered.min(3)), "{card}");
}

#[test]
fn guessing_across_many_cards_trips_the_guard_and_is_audited() {
    let gw = Gateway::start_with(
        "[limits]\nguard_max_failures = 3\nguard_window_secs = 600\nguard_cooldown_secs = 600",
    );
    let admin = gw.api_key("admin");
    let guesser = gw.api_key("verifier");
    let honest = gw.api_key("verifier");
    for (i, pan) in [cards::A, cards::B1, cards::B2, cards::C]
        .iter()
        .enumerate()
    {
        gw.enroll(&admin, pan, &format!("98912111009{i}"));
    }
    for (i, pan) in [cards::A, cards::B1, cards::B2, cards::C]
        .iter()
        .enumerate()
    {
        gw.rejects(&guesser, pan, "1234567", &format!("g{i}"), "invalid");
    }
    let body = json!({"pan": cards::D, "code": "1", "request_id": "g9"});
    gw.post_error(&guesser, "/v1/verify", &body, 429, "too_many_failures");
    // Another key is not affected; no card was locked by one failure each.
    gw.rejects(&honest, cards::D, "1234567", "h1", "not_enrolled");
    let metrics = gw.metrics_text();
    assert!(
        metrics.contains("otpgw_verify_guard_trips_total 1"),
        "{metrics}"
    );
    assert!(gw.log().contains("too many wrong codes from one API key"));
    assert_eq!(crate::db::count_events(&gw, "verify_guard_tripped"), 1);
}

/// `limits.locks_per_key` (5 per hour by default): one key's wrong codes lock five
/// cards, each with a live code; on the sixth card its wrong code is refused 429
/// `lock_budget_exceeded` and counts nothing, while its right code still approves
/// and another key's verifies are untouched.
#[test]
fn the_sixth_lock_by_one_key_in_an_hour_is_refused_without_counting() {
    let (gw, admin, locker) = Gateway::start().with_keys();
    let other = gw.api_key("verifier");
    let who = crate::cards::customers(6, 404);
    let mut codes = Vec::new();
    for (pan, last4, msisdn) in &who {
        gw.enroll(&admin, pan, msisdn);
        codes.push(code_in(&gw.sms(msisdn, last4, "ascii")));
    }
    for (i, (pan, _, _)) in who.iter().take(5).enumerate() {
        for n in 0..3 {
            gw.rejects(&locker, pan, "0000000", &format!("lock{i}-{n}"), "invalid");
        }
        assert_eq!(gw.lookup(&admin, pan)["status"], "locked", "card {i}");
    }
    let sixth = &who[5].0;
    let body = json!({"pan": sixth, "code": "0000000", "request_id": "lock5-0"});
    let resp = gw.post_raw(&locker, "/v1/verify", &body);
    assert_eq!(resp.status().as_u16(), 429);
    assert!(
        retry_after(&resp) > 3000,
        "until the first lock leaves the hour"
    );
    let error: serde_json::Value = resp.json().unwrap();
    assert_eq!(error["error"]["code"], "lock_budget_exceeded", "{error}");
    assert_eq!(gw.lookup(&admin, sixth)["failures"].as_i64(), Some(0));
    // Another key's wrong code still counts; the locker's right code still approves.
    gw.rejects(&other, sixth, "0000000", "other-0", "invalid");
    assert_eq!(gw.lookup(&admin, sixth)["failures"].as_i64(), Some(1));
    gw.approves(&locker, sixth, &codes[5], "right-code");
    assert!(gw
        .metrics_text()
        .contains("otpgw_lock_budget_refusals_total 1"));
    assert!(gw.log().contains("limits.locks_per_key"));
}

/// Pushed codes count against the phone's windows (`limits.msisdn`: 3 a minute by
/// default), not only the card's: a key cannot send one phone a code every 10 s.
#[test]
fn pushed_codes_are_limited_per_phone_as_well_as_per_card() {
    let smsc = crate::smsc::Smsc::start(&[]);
    let gw = smsc.gateway_with("", "", "[limits]\ncard = { count = 100, per_secs = 10 }\n");
    let (gw, admin, verifier) = gw.with_keys();
    gw.enroll(&admin, cards::A, "989121110500");
    let push = |id: &str| {
        gw.post(
            &verifier,
            "/v1/codes",
            &json!({"pan": cards::A, "request_id": id}),
        )
    };
    for i in 0..3 {
        let (status, body) = push(&format!("p{i}"));
        assert_eq!(status, 202, "push {i}: {body}");
    }
    let resp = gw.post_raw(
        &verifier,
        "/v1/codes",
        &json!({"pan": cards::A, "request_id": "p3"}),
    );
    assert_eq!(resp.status().as_u16(), 429);
    assert!((1..=60).contains(&retry_after(&resp)));
    assert!(gw.counter("otpgw_limited_total{rule=\"msisdn\"}") >= 1.0);
}
