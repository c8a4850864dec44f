//! Client mode: otpgw binds out to operator SMSCs (npm `smpp` servers driven by
//! `tests/peers/smsc.js`), answers customers' messages that arrive as deliver_sm,
//! pushes codes through the route serving the card's number, fails over, survives
//! drops and throttling, and tracks delivery receipts.

use std::time::Duration;

use serde_json::{json, Value};

use crate::cards;
use crate::harness::{code_in, Gateway};
use crate::smsc::{codes_to, first_segment, last_segment, Smsc};

/// Luhn-valid, never enrolled.
const UNKNOWN_PAN: &str = "6274121000000018";

fn push(gw: &Gateway, key: &str, pan: &str, request_id: &str) -> (u16, Value) {
    gw.post(
        key,
        "/v1/codes",
        &json!({"pan": pan, "request_id": request_id}),
    )
}

/// Two SMSCs, and a gateway with a connection to each (its name and extra settings),
/// both bound; with its admin and verifier keys, and cards A and C enrolled on
/// `phones`: (first, second, (gateway, admin, verifier)).
pub(crate) fn two_operators(
    a: (&str, &str),
    b: (&str, &str),
    phones: [&str; 2],
) -> (Smsc, Smsc, (Gateway, String, String)) {
    let (first, second) = (Smsc::start(&[]), Smsc::start(&[]));
    let config = format!(
        "{}{}",
        first.connection(a.0, a.1),
        second.connection(b.0, b.1)
    );
    let gw = Gateway::start_with(&config);
    first.wait_bound(1);
    second.wait_bound(1);
    let (gw, admin, verifier) = gw.with_keys();
    gw.enroll(&admin, cards::A, phones[0]);
    gw.enroll(&admin, cards::C, phones[1]);
    (first, second, (gw, admin, verifier))
}

#[test]
fn a_customer_message_from_the_smsc_is_answered_with_a_code_that_verifies() {
    let smsc = Smsc::start(&["otpgw:pw"]);
    smsc.cmd(json!({"cmd": "set", "id_format": "dec", "auto_receipt": {"stat": "DELIVRD", "id_format": "same"}}));
    let (gw, admin, verifier) = smsc.gateway("").with_keys();
    gw.enroll(&admin, cards::A, "09121110101");

    let resp = smsc.mo("989121110101", "4321", "mo-1");
    assert_eq!(resp["event"], "deliver_sm_resp");
    assert_eq!(resp["status"], 0, "{resp}");
    let submit =
        smsc.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == "989121110101");
    // The deliver_sm_resp went out first: the code was stored before it.
    assert_eq!(submit["source_addr"], "BankOTP");
    assert_eq!(submit["registered_delivery"], 1);
    let code = code_in(submit["text"].as_str().unwrap());
    gw.approves(&verifier, cards::A, &code, "mo-verify");

    // The connection is bound and counted, in the API and on /metrics.
    let (_, conns) = gw.get(&admin, "/v1/connections");
    let mci = &conns["connections"][0];
    assert_eq!(mci["name"], "mci");
    assert_eq!(mci["state"], "bound");
    assert_eq!(mci["received"], 1);
    assert_eq!(mci["submitted"], 1);
    assert_eq!(conns["routes_down"], json!([]));
    let (ready, _) = gw.get(&admin, "/readyz");
    assert_eq!(ready, 200);
    assert_eq!(
        gw.metrics()["otpgw_smpp_connection_up{connection=\"mci\"}"],
        1.0
    );

    // A message for a number we do not answer on is refused, not answered.
    smsc.cmd(json!({"cmd": "mo", "from": "989121110101", "to": "12345", "text": "4321", "tag": "wrong-dest"}));
    let refused = smsc.wait(|e| e["tag"] == "wrong-dest");
    assert_eq!(refused["status"], 0x0B, "{refused}");
    assert!(!gw.log().contains(&code), "a code reached the log");
}

/// A retried push is answered as the first one was before any check that could
/// answer it otherwise: after the card's limit is spent, and after the card was
/// suspended, the same request id still gets its code; a new one does not.
#[test]
fn a_retried_push_gets_the_first_answer_past_the_cards_limit_and_status() {
    let smsc = Smsc::start(&[]);
    let limits = "[limits]\ncard = { count = 1, per_secs = 3600 }\n";
    let (gw, admin, verifier) = smsc.gateway_with("", "", limits).with_keys();
    let card = gw.enroll(&admin, cards::A, "09121110230");

    let (status, first) = push(&gw, &verifier, cards::A, "retry-1");
    assert_eq!(status, 202, "{first}");
    let (limited, _) = push(&gw, &verifier, cards::A, "retry-2");
    assert_eq!(limited, 429, "the card's limit is spent");
    let (status, again) = push(&gw, &verifier, cards::A, "retry-1");
    assert_eq!(
        (status, &again["code_id"]),
        (200, &first["code_id"]),
        "{again}"
    );
    assert_eq!(again["replayed"], true);

    let (status, _) = gw.post(
        &admin,
        &format!("/v1/cards/{}/suspend", card["id"]),
        &json!({}),
    );
    assert_eq!(status, 200);
    let (status, again) = push(&gw, &verifier, cards::A, "retry-1");
    assert_eq!(
        (status, &again["code_id"]),
        (200, &first["code_id"]),
        "{again}"
    );
    let (refused, body) = push(&gw, &verifier, cards::A, "retry-3");
    assert_eq!(refused, 409, "{body}");
    assert_eq!(body["error"]["code"], "card_not_active", "{body}");
    // Exactly one code went out.
    assert_eq!(codes_to(&smsc, "989121110230").len(), 1);
}

#[test]
fn a_pushed_code_goes_through_the_route_of_the_cards_number_and_verifies() {
    let (mci, mtn, (gw, admin, verifier)) = two_operators(
        ("mci", "routes = [\"98912\", \"98991\"]"),
        ("mtn", "routes = [\"98935\"]"),
        ["09351110201", "09121110202"],
    );

    let (status, pushed) = push(&gw, &verifier, cards::A, "push-1");
    assert_eq!(status, 202, "{pushed}");
    assert_eq!(pushed["delivery"], "queued");
    assert!(!pushed.to_string().contains("code\":\""), "{pushed}");
    let submit = mtn.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == "989351110201");
    let code = code_in(submit["text"].as_str().unwrap());
    assert!(
        codes_to(&mci, "989351110201").is_empty(),
        "sent through the wrong route"
    );

    // The same request_id answers the same code and sends nothing again.
    let (again_status, again) = push(&gw, &verifier, cards::A, "push-1");
    assert_eq!(again_status, 200);
    assert_eq!(again["code_id"], pushed["code_id"]);
    assert_eq!(again["replayed"], true);
    // ... and a reused id for another card is refused.
    let (reused, _) = push(&gw, &verifier, cards::C, "push-1");
    assert_eq!(reused, 409);

    let id = pushed["code_id"].as_i64().unwrap();
    let record = gw.code_until(&admin, id, |c| c["delivery"] == "submitted");
    assert_eq!(record["connection"], "mtn");
    assert_eq!(record["route"], "98935");
    assert_eq!(record["channel"], "sms");
    assert!(!record.to_string().contains(&code));
    gw.approves(&verifier, cards::A, &code, "v-push");

    // The other card's number routes to the other SMSC; the CLI pushes too.
    let (ok, out, err) = gw.cli_with(
        &["code", "send", "--pan", cards::C, "--url", &gw.url("")],
        &[("OTPGW_API_KEY", &verifier)],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("\"delivery\":\"queued\""), "{out}");
    mci.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == "989121110202");

    // A number no route serves is refused before any code is issued.
    gw.enroll(&admin, cards::D, "09011110203");
    let (no_route, body) = push(&gw, &verifier, cards::D, "push-none");
    assert_eq!(no_route, 422, "{body}");
    assert_eq!(body["error"]["code"], "no_route");
    // Unknown and locked cards get their own answers.
    let (unknown, _) = push(&gw, &verifier, UNKNOWN_PAN, "push-unknown");
    assert_eq!(unknown, 404);
    let (forbidden, _) = push(&gw, &admin, cards::A, "push-admin");
    assert_eq!(forbidden, 403);
}

#[test]
fn replies_survive_a_dropped_connection_none_lost() {
    let smsc = Smsc::start(&[]);
    let (gw, admin, verifier) = smsc.gateway("").with_keys();
    let pans = [cards::A, cards::C, cards::D, cards::B1];
    let msisdns = [
        "989121110301",
        "989121110302",
        "989121110303",
        "989121110304",
    ];
    for (pan, msisdn) in pans.iter().zip(msisdns) {
        gw.enroll(&admin, pan, msisdn);
    }
    // Traffic flows, then the SMSC drops every socket and refuses new ones.
    assert_eq!(push(&gw, &verifier, pans[0], "drop-0").0, 202);
    smsc.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == msisdns[0]);
    smsc.cmd(json!({"cmd": "close_listener"}));
    smsc.wait(|e| e["event"] == "listener_closed");
    smsc.cmd(json!({"cmd": "drop"}));
    smsc.wait(|e| e["event"] == "dropped");
    gw.wait_for_log("session lost: reconnecting");
    // Codes pushed while the link is down wait for it...
    for (i, pan) in pans.iter().enumerate().skip(1) {
        assert_eq!(push(&gw, &verifier, pan, &format!("drop-{i}")).0, 202);
    }
    let (_, conns) = gw.get(&admin, "/v1/connections");
    assert_ne!(conns["connections"][0]["state"], "bound", "{conns}");
    assert_eq!(conns["routes_down"], json!([""]));
    // The route's queue holds the three codes waiting for it (on one node; with
    // PostgreSQL they wait in the shared outbox for whichever node binds first).
    let waiting = if crate::harness::postgres_url().is_some() {
        0
    } else {
        3
    };
    assert_eq!(
        conns["routes"],
        json!([{"route": "", "queued": waiting}]),
        "{conns}"
    );
    assert_eq!(gw.get(&admin, "/readyz").0, 503);
    // ... and go out once it is back, each exactly once.
    smsc.cmd(json!({"cmd": "reopen_listener"}));
    smsc.wait_bound(2);
    for (i, msisdn) in msisdns.iter().enumerate() {
        let codes = {
            smsc.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == *msisdn);
            codes_to(&smsc, msisdn)
        };
        assert_eq!(codes.len(), 1, "{msisdn}: {codes:?}");
        let v = gw.verify(&verifier, pans[i], &codes[0], &format!("drop-v-{i}"));
        assert_eq!(v["result"], "approved", "{msisdn}: {v}");
    }
    assert_eq!(gw.get(&admin, "/readyz").0, 200);
}

#[test]
fn a_rejected_bind_is_retried_until_accepted() {
    let smsc = Smsc::start(&["otpgw:pw"]);
    smsc.cmd(json!({"cmd": "set", "reject_binds": 2}));
    smsc.wait(|e| e["event"] == "set");
    let gw = Gateway::start_with(&smsc.connection("mci", ""));
    let rejected = smsc.wait_n(2, |e| e["event"] == "bind" && e["status"] != 0);
    assert_eq!(rejected[0]["status"], 0x0D);
    assert_eq!(rejected[0]["command"], "bind_transceiver");
    assert_eq!(rejected[0]["interface_version"], 0x34);
    smsc.wait_bound(1);
    assert!(gw.log().contains("bind rejected"));
    // A wrong password is refused by the SMSC and shown as the connection's error.
    let wrong = Smsc::start(&["otpgw:other"]);
    let gw2 = Gateway::start_with(&wrong.connection("mtn", ""));
    wrong.wait(|e| e["event"] == "bind" && e["status"] == 0x0E);
    let admin = gw2.api_key("admin");
    let (_, conns) = gw2.get(&admin, "/v1/connections");
    let c = &conns["connections"][0];
    assert_ne!(c["state"], "bound");
    assert!(
        c["sessions"][0]["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("bind rejected"),
        "{c}"
    );
    assert!(!gw2.log().contains("\"pw\""));
}

#[test]
fn throttled_submits_are_retried_in_order_without_loss() {
    let smsc = Smsc::start(&[]);
    smsc.cmd(json!({"cmd": "set", "throttle": 3}));
    smsc.wait(|e| e["event"] == "set");
    let (gw, admin, verifier) = smsc.gateway("window = 1").with_keys();
    let pans = [cards::A, cards::C, cards::D];
    let msisdns = ["989121110401", "989121110402", "989121110403"];
    for (pan, msisdn) in pans.iter().zip(msisdns) {
        gw.enroll(&admin, pan, msisdn);
    }
    for (i, pan) in pans.iter().enumerate() {
        assert_eq!(push(&gw, &verifier, pan, &format!("thr-{i}")).0, 202);
    }
    let accepted = smsc.wait_n(3, |e| {
        e["event"] == "submit_sm" && e["status"] == 0 && first_segment(e)
    });
    let order: Vec<&str> = accepted
        .iter()
        .map(|e| e["destination_addr"].as_str().unwrap())
        .collect();
    assert_eq!(order, msisdns, "order kept");
    // Segments too: each message's first segment went out before its second.
    let sent = smsc.all(|e| e["event"] == "submit_sm" && e["status"] == 0);
    let seqs: Vec<u64> = sent
        .iter()
        .map(|e| e["udh"]["seq"].as_u64().unwrap_or(1))
        .collect();
    assert!(seqs.chunks(2).all(|c| c[0] == 1), "{seqs:?}");
    let throttled = smsc.all(|e| e["event"] == "submit_sm" && e["status"] == 0x58);
    assert_eq!(throttled.len(), 3);
    for (i, msisdn) in msisdns.iter().enumerate() {
        let codes = codes_to(&smsc, msisdn);
        assert_eq!(codes.len(), 1);
        gw.approves(&verifier, pans[i], &codes[0], &format!("thr-v-{i}"));
    }
    let (_, conns) = gw.get(&admin, "/v1/connections");
    assert_eq!(conns["connections"][0]["throttled"], 3);
}

#[test]
fn a_route_fails_over_to_its_next_connection() {
    let (first, second, (gw, admin, verifier)) = two_operators(
        ("primary", "routes = [\"98912\"]\npriority = 0"),
        ("backup", "routes = [\"98912\"]\npriority = 1"),
        ["09121110501", "09121110502"],
    );

    assert_eq!(push(&gw, &verifier, cards::A, "fo-1").0, 202);
    first.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == "989121110501");
    assert!(
        codes_to(&second, "989121110501").is_empty(),
        "the backup took traffic while the primary was up"
    );

    first.cmd(json!({"cmd": "close_listener"}));
    first.wait(|e| e["event"] == "listener_closed");
    first.cmd(json!({"cmd": "drop"}));
    gw.wait_for_log("session lost: reconnecting");
    let (status, pushed) = push(&gw, &verifier, cards::C, "fo-2");
    assert_eq!(status, 202);
    let submit =
        second.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == "989121110502");
    let code = code_in(submit["text"].as_str().unwrap());
    gw.approves(&verifier, cards::C, &code, "fo-v");
    let record = gw.code_until(&admin, pushed["code_id"].as_i64().unwrap(), |c| {
        c["delivery"] == "submitted"
    });
    assert_eq!(record["connection"], "backup");
}

#[test]
fn receipts_in_decimal_and_hex_and_early_ones_move_the_delivery_state() {
    let smsc = Smsc::start(&[]);
    let (gw, admin, verifier) = smsc.gateway("").with_keys();
    let cases = [
        // (card, msisdn, submit_sm_resp id format, receipt settings, expected delivery)
        (
            cards::A,
            "989121110601",
            "hex",
            json!({"stat": "DELIVRD", "id_format": "dec"}),
            "delivered",
        ),
        (
            cards::C,
            "989121110602",
            "dec",
            json!({"stat": "UNDELIV", "id_format": "hex", "tlv": false}),
            "undelivered",
        ),
        (
            cards::D,
            "989121110603",
            "dec_padded",
            json!({"stat": "DELIVRD", "id_format": "dec", "tlv": true}),
            "delivered",
        ),
        (
            cards::B1,
            "989121110604",
            "HEX",
            json!({"stat": "EXPIRED", "id_format": "dec", "before_resp": true, "delay_ms": 300}),
            "expired",
        ),
    ];
    for (i, (pan, msisdn, id_format, receipt, expected)) in cases.iter().enumerate() {
        gw.enroll(&admin, pan, msisdn);
        smsc.cmd(json!({"cmd": "set", "id_format": id_format, "auto_receipt": receipt}));
        smsc.wait_n(i + 1, |e| e["event"] == "set");
        let (status, pushed) = push(&gw, &verifier, pan, &format!("rcpt-{i}"));
        assert_eq!(status, 202);
        let id = pushed["code_id"].as_i64().unwrap();
        let record = gw.code_until(&admin, id, |c| c["delivery"] == *expected);
        assert!(record["delivery_at"].as_i64().is_some(), "{record}");
        assert!(record["message_id"].as_str().is_some(), "{record}");
    }
    let (_, conns) = gw.get(&admin, "/v1/connections");
    // One receipt per segment: the Persian code text takes two.
    assert!(
        conns["connections"][0]["receipts"].as_u64().unwrap() >= 4,
        "{conns}"
    );
}

/// Card A enrolled on `msisdn` of a gateway bound to `smsc` (its connection with
/// `extra` settings), the SMSC `set` as given, and a code pushed to the card: the
/// gateway, its admin key, and the code's record once its delivery is `delivery`.
fn pushed_until(
    smsc: &Smsc,
    extra: &str,
    msisdn: &str,
    mut set: Value,
    delivery: &str,
) -> (Gateway, String, Value) {
    let (gw, admin, verifier) = smsc.gateway(extra).with_keys();
    gw.enroll(&admin, cards::A, msisdn);
    set["cmd"] = json!("set");
    smsc.cmd(set);
    smsc.wait(|e| e["event"] == "set");
    let (status, pushed) = push(&gw, &verifier, cards::A, msisdn);
    assert_eq!(status, 202, "{pushed}");
    let id = pushed["code_id"].as_i64().unwrap();
    let record = gw.code_until(&admin, id, |c| c["delivery"] == delivery);
    (gw, admin, record)
}

/// A code submitted with a receipt asked for and none back within the
/// connection's `receipt_wait_secs` is counted (it stays `submitted`); one whose
/// receipt comes is not.
#[test]
fn a_code_without_a_receipt_in_time_is_counted() {
    let smsc = Smsc::start(&[]);
    let (gw, _, _) = pushed_until(
        &smsc,
        "receipt_wait_secs = 1",
        "989121110612",
        json!({}),
        "submitted",
    );
    let counted = || gw.counter("otpgw_codes_without_receipt_total{connection=\"mci\"}");
    crate::wait::wait_for("the code counted", Duration::from_secs(10), || {
        counted() == 1.0
    });
    gw.wait_for_log("no receipt back within receipt_wait_secs");
    assert_eq!(counted(), 1.0, "counted once");
}

#[test]
fn an_empty_message_id_is_not_tracked_and_a_receipt_naming_nothing_is_counted() {
    let smsc = Smsc::start(&[]);
    let set = json!({"id_format": "empty"});
    let (gw, admin, record) = pushed_until(&smsc, "", "989121110611", set, "submitted");
    assert!(record["message_id"].is_null(), "no id stored: {record}");
    assert_eq!(
        gw.counter("otpgw_submits_untracked_total{connection=\"mci\"}"),
        1.0
    );
    // A receipt with an empty id could only match wrongly: counted, nothing moves.
    smsc.cmd(json!({"cmd": "receipt", "message_id": "", "stat": "DELIVRD", "tag": "r-empty"}));
    let resp = smsc.wait(|e| e["tag"] == "r-empty");
    assert_eq!(resp["status"], 0, "{resp}");
    assert_eq!(
        gw.counter("otpgw_receipts_unmatched_total{connection=\"mci\"}"),
        1.0
    );
    let (_, record) = gw.get(&admin, &format!("/v1/codes/{}", record["id"]));
    assert_eq!(record["delivery"], "submitted", "{record}");
    // `/v1/connections` (and so `otpgw status`) shows both counts.
    let (_, conns) = gw.get(&admin, "/v1/connections");
    let mci = &conns["connections"][0];
    assert_eq!(
        (&mci["untracked"], &mci["unmatched_receipts"]),
        (&json!(1), &json!(1)),
        "{conns}"
    );
}

#[test]
fn an_all_digit_hex_id_is_matched_right_with_receipt_id_hex() {
    // The SMSC's ids are hex from 0x100000: "100000", all digits; its receipts give
    // the number in decimal ("1048576"). `receipt_id = "hex"` reads them so, and
    // only so (parsers::receipt::form_tests shows the guess matching wrongly).
    let smsc = Smsc::start(&[]);
    let set = json!({"id_format": "hex", "auto_receipt": {"stat": "DELIVRD", "id_format": "dec"}});
    let extra = "receipt_id = \"hex\"";
    let (_gw, _, record) = pushed_until(&smsc, extra, "989121110621", set, "delivered");
    let id = record["message_id"].as_str().unwrap();
    assert!(id.bytes().all(|b| b.is_ascii_digit()), "{record}");
}

#[test]
fn a_connection_with_its_own_response_timeout_gives_up_on_a_slow_smsc() {
    // This connection allows 300 ms (the listener's default is 10 s); the SMSC takes
    // 2 s to answer a submit_sm: the session is lost and rebound well before 10 s.
    let smsc = Smsc::start(&[]);
    let (gw, admin, verifier) = smsc.gateway("response_timeout_ms = 300").with_keys();
    gw.enroll(&admin, cards::A, "989121110631");
    smsc.cmd(json!({"cmd": "set", "resp_delay_ms": 2000}));
    smsc.wait(|e| e["event"] == "set");
    let (status, pushed) = push(&gw, &verifier, cards::A, "slow-1");
    assert_eq!(status, 202, "{pushed}");
    crate::wait::wait_for(
        "the connection to give up on the slow SMSC and rebind",
        Duration::from_secs(5),
        || gw.counter("otpgw_smpp_connection_retries_total{connection=\"mci\"}") >= 1.0,
    );
}

#[test]
fn ussd_dialogues_work_over_an_operator_connection() {
    let smsc = Smsc::start(&[]);
    let (gw, admin, verifier) = smsc.gateway_with("language = \"en\"", "", "").with_keys();
    gw.enroll(&admin, cards::A, "09121110701");
    let ussd = |text: &str, op: u8, seq: u8, tag: &str| {
        smsc.cmd(json!({"cmd": "mo", "from": "989121110701", "to": "720", "text": text,
            "service_type": "USSD", "ussd_service_op": op, "its_session_info": [7, seq], "tag": tag}));
        let resp = smsc.wait(|e| e["tag"] == tag);
        assert_eq!(resp["status"], 0, "{resp}");
    };
    // A menu dialogue: dial, choose 1, type the last 4 digits.
    ussd("*720#", 1, 0, "u-1");
    let menu = smsc.wait(|e| e["event"] == "submit_sm");
    assert_eq!(menu["service_type"], "USSD");
    assert_eq!(
        menu["ussd_service_op"], 2,
        "USSR request: the dialogue goes on"
    );
    assert_eq!(menu["its_session_info"], json!([7, 0]));
    assert_eq!(menu["source_addr"], "720");
    ussd("1", 18, 2, "u-2");
    smsc.wait_n(2, |e| e["event"] == "submit_sm");
    ussd("4321", 18, 4, "u-3");
    let last = smsc.wait_n(3, |e| e["event"] == "submit_sm").remove(2);
    assert_eq!(
        last["ussd_service_op"], 17,
        "PSSR response: the dialogue ends"
    );
    assert_eq!(
        last["its_session_info"],
        json!([7, 5]),
        "end-of-session bit set"
    );
    let code = code_in(last["text"].as_str().unwrap());
    gw.approves(&verifier, cards::A, &code, "u-v");
    // An answer after the dialogue ended gets the "session expired" screen.
    ussd("2", 18, 6, "u-4");
    let expired = smsc.wait_n(4, |e| e["event"] == "submit_sm").remove(3);
    assert_eq!(expired["ussd_service_op"], 17);
}

#[test]
fn a_transmitter_and_receiver_pair_carries_messages_replies_and_receipts() {
    let smsc = Smsc::start(&["otpgw:pw"]);
    smsc.cmd(json!({"cmd": "set", "auto_receipt": {"stat": "DELIVRD", "id_format": "dec"}}));
    smsc.wait(|e| e["event"] == "set");
    let gw = Gateway::start_with(
        &smsc.connection("pair", "bind = \"transmitter_receiver\"\nversion = \"5.0\""),
    );
    let binds = smsc.wait_n(2, |e| e["event"] == "bind" && e["status"] == 0);
    let mut kinds: Vec<&str> = binds
        .iter()
        .map(|b| b["command"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["bind_receiver", "bind_transmitter"]);
    assert!(binds.iter().all(|b| b["interface_version"] == 0x50));
    let admin = gw.api_key("admin");
    let verifier = gw.api_key("verifier");
    gw.enroll(&admin, cards::A, "09121110901");

    // The customer's message comes in on the receiver; the code goes out on the
    // transmitter; its receipt comes back on the receiver.
    let resp = smsc.mo("989121110901", "4321", "pair-1");
    assert_eq!(resp["status"], 0, "{resp}");
    let rx = binds
        .iter()
        .find(|b| b["command"] == "bind_receiver")
        .unwrap()["session"]
        .clone();
    assert_eq!(resp["session"], rx);
    let submit =
        smsc.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == "989121110901");
    assert_ne!(submit["session"], rx, "submitted on the transmitter");
    let code = code_in(submit["text"].as_str().unwrap());
    gw.approves(&verifier, cards::A, &code, "pair-v");
    let (_, conns) = gw.get(&admin, "/v1/connections");
    let c = &conns["connections"][0];
    assert_eq!(c["state"], "bound", "{c}");
    assert_eq!(c["sessions"].as_array().unwrap().len(), 2);
    let (status, pushed) = push(&gw, &verifier, cards::A, "pair-push");
    assert_eq!(status, 202);
    gw.code_until(&admin, pushed["code_id"].as_i64().unwrap(), |c| {
        c["delivery"] == "delivered"
    });
}

/// The SMSC's own `unbind` is answered and the connection binds again; its
/// `enquire_link` is answered; and a push still goes out afterwards.
#[test]
fn the_smscs_unbind_and_enquire_link_are_answered_and_it_binds_again() {
    let smsc = Smsc::start(&[]);
    let gw = smsc.gateway("");
    smsc.cmd(json!({"cmd": "enquire_link"}));
    let resp = smsc.wait(|e| e["event"] == "enquire_link_resp");
    assert_eq!(resp["status"], 0, "{resp}");
    smsc.cmd(json!({"cmd": "unbind"}));
    let resp = smsc.wait(|e| e["event"] == "unbind_resp");
    assert_eq!(resp["status"], 0, "{resp}");
    smsc.wait_bound(2);
    let admin = gw.api_key("admin");
    let verifier = gw.api_key("verifier");
    gw.enroll(&admin, cards::A, "09121110240");
    assert_eq!(push(&gw, &verifier, cards::A, "after-unbind").0, 202);
    let submit = smsc.wait(|e| e["event"] == "submit_sm" && e["status"] == 0);
    assert_eq!(submit["destination_addr"], "989121110240");
}

/// An SMSC that stops answering `enquire_link` is a lost link: the gateway drops
/// the connection after the response timeout and binds again.
#[test]
fn a_missing_enquire_link_resp_reconnects() {
    let smsc = Smsc::start(&[]);
    smsc.cmd(json!({"cmd": "set", "ignore_enquire_link": true}));
    smsc.wait(|e| e["event"] == "set");
    let _gw = Gateway::start_with_env(
        &smsc.connection("mci", "enquire_link_secs = 1"),
        &[("OTPGW_SMPP__RESPONSE_TIMEOUT_SECS", "1")],
    );
    smsc.wait_bound(1);
    smsc.wait(|e| e["event"] == "enquire_link");
    // Unanswered: the gateway gives the session up and binds anew.
    smsc.wait_bound(2);
}

/// `ESME_RMSGQFUL` pauses and retries like `ESME_RTHROTTLED`; any other error
/// status is final: the code is `undelivered` and not sent again.
#[test]
fn a_full_queue_is_retried_and_another_error_is_final() {
    let smsc = Smsc::start(&[]);
    smsc.cmd(json!({"cmd": "set", "throttle": 1, "throttle_status": "0x14"}));
    smsc.wait(|e| e["event"] == "set");
    let (gw, admin, verifier) = smsc.gateway("window = 1").with_keys();
    gw.enroll(&admin, cards::A, "09121110241");
    gw.enroll(&admin, cards::C, "09121110242");
    gw.enroll(&admin, cards::D, "09121110243");

    assert_eq!(push(&gw, &verifier, cards::A, "qful").0, 202);
    let full = smsc.wait(|e| e["event"] == "submit_sm" && e["status"] == 0x14);
    assert_eq!(full["destination_addr"], "989121110241");
    // The whole message goes out (the Persian text takes two segments) before the
    // next submit is made to fail.
    smsc.wait(|e| {
        e["event"] == "submit_sm"
            && e["status"] == 0
            && e["destination_addr"] == "989121110241"
            && last_segment(e)
    });

    smsc.cmd(json!({"cmd": "set", "fail_next": 1}));
    smsc.wait(|e| e["event"] == "set" && e["settings"]["fail_next"] == 1);
    let (_, failed) = push(&gw, &verifier, cards::C, "final");
    smsc.wait(|e| {
        e["event"] == "submit_sm" && e["status"] == 0x45 && e["destination_addr"] == "989121110242"
    });
    let id = failed["code_id"].as_i64().unwrap();
    gw.code_until(&admin, id, |c| c["delivery"] == "undelivered");
    // The next message goes out; the failed one was not tried again before it.
    assert_eq!(push(&gw, &verifier, cards::D, "next").0, 202);
    smsc.wait(|e| {
        e["event"] == "submit_sm" && e["status"] == 0 && e["destination_addr"] == "989121110243"
    });
    let again = smsc.all(|e| e["event"] == "submit_sm" && e["destination_addr"] == "989121110242");
    assert!(
        again.iter().all(|e| e["status"] == 0x45)
            && again.iter().filter(|e| first_segment(e)).count() == 1,
        "{again:?}"
    );
}

/// On SIGTERM the gateway unbinds from the SMSC before it exits.
#[test]
fn on_sigterm_the_gateway_unbinds_from_the_smsc() {
    let smsc = Smsc::start(&[]);
    let gw = smsc.gateway("");
    let status = gw.stop();
    assert!(status.success(), "{status:?}");
    smsc.wait(|e| e["event"] == "unbind");
}

/// A bind the SMSC answers only after SIGTERM came is still ended with an unbind:
/// the SMSC took it, and a dropped connection would leave the session bound on its
/// side until its own timeout.
#[test]
fn a_bind_answered_after_sigterm_is_unbound() {
    let smsc = Smsc::start(&[]);
    smsc.cmd(json!({"cmd": "set", "bind_delay_ms": 1000}));
    smsc.wait(|e| e["event"] == "set");
    // Returns once the SMSC has the bind; its answer is a second away.
    let gw = smsc.gateway("");
    let status = gw.stop();
    assert!(status.success(), "{status:?}");
    smsc.wait(|e| e["event"] == "unbind");
}
