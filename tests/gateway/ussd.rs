//! USSD over SMPP with a third-party peer that sends and receives the USSD TLVs
//! (npm `smpp`), and over HTTP in the aggregator form with a real HTTP client.

use crate::cards;
use crate::harness::{code_in, Gateway, Peer};
use serde_json::{json, Value};

/// The number every step dials from.
const FROM: &str = "989121110120";

fn step<'a>(op: &'a str, session: &'a str, seq: &'a str, text: &'a str) -> Vec<&'a str> {
    vec![
        "ussd",
        "--from",
        FROM,
        "--to",
        "720",
        "--op",
        op,
        "--session",
        session,
        "--seq",
        seq,
        "--text",
        text,
    ]
}

/// `step`, its text in this data coding (`gsm`, `ucs2`).
fn step_in<'a>(
    coding: &'a str,
    op: &'a str,
    session: &'a str,
    seq: &'a str,
    text: &'a str,
) -> Vec<&'a str> {
    let mut args = step(op, session, seq, text);
    args.extend(["--coding", coding]);
    args
}

/// A gateway (`service_extra` as in `Gateway::start_with`) with card A enrolled on
/// the number the steps dial from: the gateway and a verifier key.
fn dialler_enrolled(service_extra: &str) -> (Gateway, String) {
    let (gw, admin, verifier) = Gateway::start_with(service_extra).with_keys();
    gw.enroll(&admin, cards::A, FROM);
    (gw, verifier)
}

/// A screen the peer was sent: (USSD operation, its_session_info, text).
type Screen = (u64, Vec<u64>, String);

/// Runs the USSD peer with `args`, then unbinds; it must succeed with `n` screens:
/// the peer's events and the screens.
fn dialogue(gw: &Gateway, args: &[&str], n: usize) -> (Peer, Vec<Screen>) {
    let p = gw.ussd_peer(&[args, &["unbind"]].concat());
    p.ok();
    let s = screens(&p);
    assert_eq!(s.len(), n, "{p:?}");
    (p, s)
}

/// The screen is of USSD operation `op`, and its text holds `text`.
fn shows(screen: &Screen, op: u64, text: &str) {
    assert_eq!(screen.0, op, "{screen:?}");
    assert!(screen.2.contains(text), "{}", screen.2);
}

fn screens(p: &Peer) -> Vec<Screen> {
    p.all("deliver_sm")
        .iter()
        .map(|d| {
            let info = d["its_session_info"]
                .as_array()
                .map(|a| a.iter().map(|v| v.as_u64().unwrap()).collect());
            (
                d["ussd_service_op"].as_u64().unwrap(),
                info.unwrap_or_default(),
                d["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_full_menu_dialogue_over_smpp_ends_with_a_code_that_verifies() {
    let (gw, verifier) = dialler_enrolled("language = \"en\"");
    let mut args = step("1", "5", "0", "*720#");
    args.extend(step("18", "5", "2", "1"));
    args.extend(step("18", "5", "4", "4321"));
    let (p, s) = dialogue(&gw, &args, 3);
    assert!(
        p.all("submit_sm_resp").iter().all(|r| r["status"] == 0),
        "{p:?}"
    );
    // Menu and prompt continue the session (USSR request, op 2); the code ends it
    // (PSSR response, op 17) with the end-of-session bit set in its_session_info.
    assert_eq!((s[0].0, &s[0].1), (2, &vec![5, 0]));
    assert!(s[0].2.contains("1. Get password"), "{}", s[0].2);
    shows(&s[1], 2, "last 4 digits");
    assert_eq!((s[2].0, &s[2].1), (17, &vec![5, 5]));
    let delivered = p.all("deliver_sm");
    assert_eq!(delivered[2]["service_type"], "USSD");
    let code = code_in(&s[2].2);
    gw.approves(&verifier, cards::A, &code, "u1");
    assert_eq!(crate::db::count_codes(&gw, "ussd"), 1);
}

#[test]
fn the_one_shot_string_answers_at_once_in_persian_digits_too() {
    let (gw, verifier) = dialler_enrolled("");
    let mut args = step_in("gsm", "1", "9", "0", "*720*1*4321#");
    args.extend(step_in("ucs2", "1", "10", "0", "*۷۲۰*۱*۴۳۲۱#"));
    let (_, s) = dialogue(&gw, &args, 2);
    shows(&s[0], 17, "رمز پویا");
    let (first, second) = (code_in(&s[0].2), code_in(&s[1].2));
    // The second code superseded the first.
    gw.approves(&verifier, cards::A, &second, "os2");
    assert_ne!(
        gw.verify(&verifier, cards::A, &first, "os1")["result"],
        "approved"
    );
}

#[test]
fn a_bad_choice_reprompts_once_then_ends() {
    let gw = Gateway::start_with("language = \"en\"");
    let mut args = step("1", "3", "0", "*720#");
    args.extend(step("18", "3", "2", "7"));
    args.extend(step("18", "3", "4", "8"));
    args.extend(step("1", "4", "0", "*999#")); // not our service
    let (_, s) = dialogue(&gw, &args, 4);
    assert_eq!(s[1].0, 2);
    assert!(s[1].2.starts_with("Invalid choice."), "{}", s[1].2);
    shows(&s[2], 17, "Invalid input");
    assert_eq!((s[3].0, s[3].2.as_str()), (17, "Unknown service."));
}

/// A hang-up through the sockets. An idle dialogue's expiry is about time and is
/// proved on tokio's paused clock in `smpp::ussd::tests`
/// (`a_dialogue_lives_while_used_and_expires_when_idle`); it ends in the same
/// screen as the one checked here.
#[test]
fn an_abort_ends_the_dialogue() {
    let gw = Gateway::start_with("language = \"en\"");
    let mut args = step("1", "6", "0", "*720#");
    // The user hangs up (vendor op 0x81): acknowledged, no screen.
    args.extend(step("129", "6", "2", ""));
    args.extend(["--no-reply", "--quiet-wait", "0.3"]);
    args.extend(step("18", "6", "4", "1"));
    let (p, s) = dialogue(&gw, &args, 2);
    assert_eq!(p.all("no_reply").len(), 1, "{p:?}");
    assert_eq!(s[0].0, 2);
    assert_eq!(
        (s[1].0, s[1].2.as_str()),
        (17, "Your session has expired. Please dial again.")
    );
}

#[test]
fn ussd_over_http_in_the_aggregator_form() {
    let (gw, admin, verifier) = Gateway::start_with("language = \"en\"").with_keys();
    let ussd_key = gw.api_key("ussd");
    gw.enroll(&admin, cards::A, "989121110121");
    gw.enroll(&admin, cards::B1, "989121110121");
    gw.enroll(&admin, cards::B2, "989121110121");
    let hop = |key: &str, service: &str, text: &str| {
        let form = [
            ("sessionId", "ATUid_1"),
            ("serviceCode", service),
            ("phoneNumber", "+989121110121"),
            ("networkCode", "43211"),
            ("text", text),
        ];
        aggregator(&gw, key, &form)
    };
    let (status, body) = hop(&ussd_key, "*720#", "");
    assert_eq!(status, 200);
    assert!(
        body.starts_with("CON Dynamic password\n1. Get password"),
        "{body}"
    );
    assert!(hop(&ussd_key, "*720#", "1")
        .1
        .starts_with("CON Enter the last 4 digits"));
    // Two cards end in 1234: ask for 6, then the code.
    assert!(hop(&ussd_key, "*720#", "1*1234")
        .1
        .starts_with("CON More than one card"));
    let (_, end) = hop(&ussd_key, "*720#", "1*1234*771234");
    assert!(end.starts_with("END Dynamic password: "), "{end}");
    gw.approves(&verifier, cards::B1, &code_in(&end), "h1");
    // The one-shot form through the service code.
    let (_, end) = hop(&ussd_key, "*720*1*4321#", "");
    gw.approves(&verifier, cards::A, &code_in(&end), "h2");
    assert_eq!(
        hop(&ussd_key, "*720#", "2")
            .1
            .split('\n')
            .next()
            .unwrap()
            .get(..4),
        Some("END ")
    );
    assert_eq!(hop(&ussd_key, "*999#", "").1, "END Unknown service.");
    // Only the ussd role, and a malformed form is a 400 with the JSON error body.
    assert_eq!(hop(&verifier, "*720#", "").0, 403);
    let (status, body) = hop(&ussd_key, "720", "");
    assert_eq!(status, 400);
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["code"], "invalid_service_code");
}

/// A verify of `code` for a purchase of `amount` IRR.
fn verify_purchase(gw: &Gateway, key: &str, code: &str, amount: u64, rid: &str) -> Value {
    gw.verify_with(
        key,
        json!({"pan": cards::A, "code": code, "request_id": rid,
                "transaction": {"type": "purchase", "amount": amount, "currency": "IRR",
                                "payee": "Any shop"}}),
    )
}

/// POST /v1/ussd in the aggregator's form encoding: the status and the screen.
fn aggregator(gw: &Gateway, key: &str, form: &[(&str, &str)]) -> (u16, String) {
    let resp = gw
        .client
        .post(gw.url("/v1/ussd"))
        .bearer_auth(key)
        .form(form)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

#[test]
fn ussd_a_cap_dialled_over_smpp_is_stated_and_honoured() {
    let (gw, verifier) = dialler_enrolled("");
    // The one-shot string carries the cap as a segment of its own, in Persian digits;
    // then a menu dialogue with the cap typed after the digits, grouped.
    let mut args = step_in("ucs2", "1", "11", "0", "*۷۲۰*۱*۴۳۲۱*۲۵۰۰۰۰۰#");
    args.extend(step("1", "12", "0", "*720#"));
    args.extend(step("18", "12", "2", "1"));
    args.extend(step_in("ucs2", "18", "12", "4", "۴۳۲۱ ۱٬۰۰۰"));
    let (_, s) = dialogue(&gw, &args, 4);
    shows(&s[0], 17, "سقف مبلغ: ۲٬۵۰۰٬۰۰۰ IRR");
    shows(&s[3], 17, "سقف مبلغ: ۱٬۰۰۰ IRR");
    // The second code superseded the first; its cap is 1,000.
    let code = code_in(&s[3].2);
    let v = verify_purchase(&gw, &verifier, &code, 1_001, "sm-over");
    assert_eq!(
        (v["reason"].as_str(), v["attempts_left"].as_i64()),
        (Some("amount_exceeds_cap"), Some(2)),
        "{v}"
    );
    assert_eq!(
        verify_purchase(&gw, &verifier, &code, 1_000, "sm-at")["result"],
        "approved"
    );
    assert_eq!(crate::db::count_codes(&gw, "ussd"), 2);
}

#[test]
fn ussd_a_cap_over_http_is_stated_and_honoured() {
    let (gw, admin, verifier) = Gateway::start_with("language = \"en\"").with_keys();
    let ussd_key = gw.api_key("ussd");
    gw.enroll(&admin, cards::A, "989121110121");
    let hop = |service: &str, text: &str| {
        let form = [
            ("sessionId", "ATUid_cap"),
            ("serviceCode", service),
            ("phoneNumber", "+989121110121"),
            ("text", text),
        ];
        let (status, body) = aggregator(&gw, &ussd_key, &form);
        assert_eq!(status, 200);
        body
    };
    for (service, text, rid) in [
        // Dialled at once, the cap a segment of its own.
        ("*720*1*4321*2500000#", "", "h-dial"),
        // Typed in the menu after the digits: the aggregator joins inputs by `*`.
        ("*720#", "1*4321*2500000", "h-star"),
        // Typed with a space and grouped in one input.
        ("*720#", "1*4321 2,500,000", "h-space"),
    ] {
        let end = hop(service, text);
        assert!(
            end.starts_with("END Dynamic password: ") && end.contains("\nLimit: 2,500,000 IRR\n"),
            "{service} {text}: {end}"
        );
        let code = code_in(&end);
        let v = verify_purchase(&gw, &verifier, &code, 2_500_001, &format!("{rid}-over"));
        assert_eq!(v["reason"], "amount_exceeds_cap", "{text}: {v}");
        let v = verify_purchase(&gw, &verifier, &code, 2_500_000, &format!("{rid}-at"));
        assert_eq!(v["result"], "approved", "{text}: {v}");
    }
    // Without a cap the screen says none, and a card number typed with digits is
    // warned about, not read as digits and a cap.
    assert!(!hop("*720*1*4321#", "").contains("Limit"));
    assert!(hop("*720#", "1*4321 567890123").starts_with("END Never enter your full card number"));
}
