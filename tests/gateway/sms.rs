//! The SMS path: a subscriber message over SMPP, the reply on the same bind, the code
//! verifying over HTTP, and every defined reply case.

use serde_json::json;

use crate::cards;
use crate::harness::{code_in, send, Gateway};

#[test]
fn a_code_arrives_for_last4_in_every_script_and_coding_and_verifies() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    gw.enroll(&admin, cards::A, "09121110001");

    let cases = [
        ("4321", "ascii", 8), // digits only: default language fa, UCS-2 reply
        ("4321", "gsm", 8),
        ("4321", "latin1", 8),
        ("۴۳۲۱", "ucs2", 8),     // Persian digits
        ("٤٣٢١", "ucs2", 8),     // Arabic-Indic digits
        ("رمز ۴۳۲۱", "ucs2", 8), // Persian keyword
        ("OTP 4321", "gsm", 0),  // Latin keyword: English reply, GSM-7
        ("  otp: 43-21 ", "ascii", 0),
    ];
    let mut codes = Vec::new();
    for (i, (text, coding, reply_coding)) in cases.iter().enumerate() {
        let p = gw.peer(&send("989121110001", text, coding, &["unbind"]));
        p.ok();
        let resp = p.event("submit_sm_resp");
        assert_eq!(resp["status"], 0);
        assert!(!resp["message_id"].as_str().unwrap().is_empty());
        let reply = p.event("deliver_sm");
        assert_eq!(
            reply["data_coding"], *reply_coding,
            "case {i} {text:?}: {reply}"
        );
        assert_eq!(reply["source_addr"], "BankOTP");
        assert_eq!(reply["destination_addr"], "989121110001");
        let text = reply["text"].as_str().unwrap();
        if *reply_coding == 0 {
            assert!(text.contains("Valid 60 seconds"), "{text}");
        } else {
            assert!(text.contains("رمز پویا"), "{text}");
        }
        codes.push(code_in(text));
    }
    // Only the last code is live; it verifies once.
    let last = codes.last().unwrap();
    let v = gw.verify(&verifier, cards::A, last, "r-last");
    assert_eq!(
        v,
        json!({"result": "approved", "response_code": "00", "request_id": "r-last"})
    );
    let again = gw.verify(&verifier, cards::A, last, "r-again");
    assert_eq!(again["reason"], "used");
}

#[test]
fn every_reply_case_is_defined() {
    let gw = Gateway::start_with(r#"language = "en""#);
    let admin = gw.api_key("admin");
    gw.enroll(&admin, cards::A, "989121110002");
    gw.enroll(&admin, cards::B1, "989121110003");
    gw.enroll(&admin, cards::B2, "989121110003");

    let check = |from: &str, text: &str, expect: &str| {
        let reply = gw.sms(from, text, "ascii");
        assert!(
            reply.contains(expect),
            "{text:?} from {from}: got {reply:?}, want {expect:?}"
        );
        reply
    };
    let (unknown, one, two) = ("989129999999", "989121110002", "989121110003");
    for (from, text, expect) in [
        (unknown, "4321", "not registered"),
        (one, "9999", "No card ending in 9999"),
        (two, "1234", "More than one of your cards ends in 1234"),
        (one, "6037990000004321", "Never send your full card number"),
        (
            one,
            "my card 6037 9900 0000 4321 pls",
            "Never send your full card number",
        ),
        (one, "hello", "Message not understood"),
        (one, "12345", "Message not understood"),
        (
            one,
            "HELP",
            "send the last 4 digits of your card to 30003303",
        ),
        (one, "", "send the last 4 digits"),
    ] {
        check(from, text, expect);
    }
    // The last 6 digits pick one of two cards sharing the last 4.
    let reply = check("989121110003", "771234", "Your dynamic password");
    let verifier = gw.api_key("verifier");
    let code = code_in(&reply);
    gw.rejects(&verifier, cards::B2, &code, "b2", "invalid");
    gw.approves(&verifier, cards::B1, &code, "b1");
    check("989121110003", "000000", "No card ending in 000000");

    // Suspended card: the customer is told to go to the bank.
    let id = gw.enroll_id(&admin, cards::C, "989121110004");
    let (ok, _, err) = gw.cli(&["card", "suspend", "--id", &id.to_string()]);
    assert!(ok, "{err}");
    check("989121110004", "2468", "is disabled");

    // Persian replies for the same cases when the customer writes Persian.
    let fa = gw.sms("989129999999", "رمز ۴۳۲۱", "ucs2");
    assert!(fa.contains("ثبت نشده"), "{fa}");
}

#[test]
fn a_later_code_supersedes_an_earlier_one() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    gw.enroll(&admin, cards::A, "989121110010");
    let first = code_in(&gw.sms("989121110010", "4321", "ascii"));
    let second = code_in(&gw.sms("989121110010", "4321", "ascii"));
    let verify = |code: &str, rid: &str| gw.verify(&verifier, cards::A, code, rid);
    if first != second {
        assert_eq!(verify(&first, "old")["reason"], "invalid");
    }
    assert_eq!(verify(&second, "new")["result"], "approved");
}

#[test]
fn bad_source_and_destination_addresses_get_smpp_errors() {
    let gw = Gateway::start();
    // Not our short code: ESME_RINVDSTADR, and no reply.
    let mut elsewhere = send("989121110011", "4321", "ascii", &["--no-reply", "unbind"]);
    elsewhere[4] = "12345"; // --to
    let p = gw.peer(&elsewhere);
    assert_eq!(p.event("submit_sm_resp")["status"], 0x0B, "{p:?}");
    assert!(p.all("deliver_sm").is_empty());
    // A source address that is no phone number: ESME_RINVSRCADR.
    let p = gw.peer(&send("abc", "4321", "ascii", &["--no-reply", "unbind"]));
    assert_eq!(p.event("submit_sm_resp")["status"], 0x0A, "{p:?}");
}

/// A reply the peer acknowledges leaves its code `submitted`; one it refuses,
/// `undelivered` (the listener's delivery states are written in batches).
#[test]
fn the_peers_answer_to_a_reply_is_the_codes_delivery_state() {
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    let card = gw.enroll_id(&admin, cards::A, "989121110410");
    let last_code_id = || {
        gw.events(&admin, card)
            .iter()
            .rev()
            .find(|e| e["kind"] == "code_issued")
            .map(|e| e["detail"]["code_id"].as_i64().unwrap())
            .unwrap()
    };
    code_in(&gw.sms("989121110410", "4321", "ascii"));
    let first = last_code_id();
    gw.code_until(&admin, first, |c| c["delivery"] == "submitted");
    // The peer answers the deliver_sm with ESME_RSYSERR (8).
    gw.peer_refusing_replies(&send("989121110410", "4321", "ascii", &["unbind"]))
        .ok();
    let second = last_code_id();
    assert_ne!(first, second);
    gw.code_until(&admin, second, |c| c["delivery"] == "undelivered");
}
