//! A hostile operator SMSC: one that claims another operator's customer to get
//! that customer's code on its own connection, or floods customer messages to use
//! up the global cap the listener's peers share.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{code_in, SHORT_CODE};
use crate::operators::two_operators;
use crate::smsc::{codes_to, Smsc};

/// An operator connection serves only its routes' numbers: an MO claiming a
/// number another connection's route serves is refused with ESME_RINVSRCADR and
/// issues no code, while its own customers still get theirs.
#[test]
fn an_mo_for_another_routes_number_gets_no_code_on_the_attackers_connection() {
    let (mci, mtn, (gw, _admin, verifier)) = two_operators(
        ("mci", "routes = [\"98912\"]"),
        ("mtn", "routes = [\"98935\"]"),
        ["09351110401", "09121110402"],
    );
    // mci claims mtn's customer (card A, 4321).
    let resp = mci.mo("989351110401", "4321", "claim");
    assert_eq!(resp["status"], 0x0A, "ESME_RINVSRCADR: {resp}");
    // mci's own customer (card C, 2468) is answered, through mci.
    let resp = mci.mo("989121110402", "2468", "own");
    assert_eq!(resp["status"], 0, "{resp}");
    let submit = mci.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == "989121110402");
    let code = code_in(submit["text"].as_str().unwrap());
    gw.approves(&verifier, crate::cards::C, &code, "own-customer");
    // No code was made for the claimed customer, on either connection.
    assert!(codes_to(&mci, "989351110401").is_empty());
    assert!(codes_to(&mtn, "989351110401").is_empty());
    gw.rejects(&verifier, crate::cards::A, "1234567", "claimed", "invalid");
    assert_eq!(
        gw.counter("otpgw_mo_foreign_numbers_total{connection=\"mci\"}"),
        1.0
    );
    gw.wait_for_log("routes do not serve");
}

/// An operator connection's customer messages have their own rate (`mo_tps`, by
/// default its share of half the global cap while listener peers exist): a flooding
/// SMSC gets ESME_RTHROTTLED on its deliver_sm_resp past that rate, while a listener
/// peer still gets its code from the half of the cap left to the peers.
#[test]
fn a_flooding_operator_connection_is_throttled_while_a_listener_peer_gets_codes() {
    let smsc = Smsc::start(&[]);
    // A global cap of 4/s: the connection's default share is 2/s, the peers keep 2/s.
    let limits = crate::harness::generous_limits_but("global_per_second", "4");
    let (gw, admin, _verifier) = smsc.gateway_with("", "", &limits).with_keys();
    gw.enroll(&admin, crate::cards::A, "09121110451");
    let flooding = AtomicBool::new(true);
    let codes = std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 0u32;
            while flooding.load(Ordering::Relaxed) {
                n += 1;
                let from = format!("98912{:07}", 2_000_000 + n % 1000);
                smsc.cmd(json!({"cmd": "mo", "from": from, "to": SHORT_CODE, "text": "help", "tag": format!("flood-{n}")}));
                // Pacing the flood (about 200/s), not waiting for anything.
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        // The flood stops when this closure ends, whether it passed or failed.
        let _stop = Stop(&flooding);
        // Wait until the flood is being throttled, then ask for codes as a peer.
        smsc.wait(|e| e["event"] == "deliver_sm_resp" && e["status"] == 0x58);
        (0..3)
            .map(|_| code_in(&gw.sms("989121110451", "4321", "ascii")))
            .collect::<Vec<String>>()
    });
    assert_eq!(codes.len(), 3);
    let answered = smsc.all(|e| e["event"] == "deliver_sm_resp" && e["kind"] == "mo");
    let throttled = answered.iter().filter(|e| e["status"] == 0x58).count();
    assert!(
        throttled * 2 > answered.len(),
        "most of the flood throttled: {throttled} of {}",
        answered.len()
    );
    assert!(gw.counter("otpgw_limited_total{rule=\"operator\"}") >= throttled as f64);
}

/// Issue 23 (low): a two-segment code whose first segment the SMSC acknowledged
/// before the link dropped, without answering the second: after the reconnect only
/// the second segment goes out, under the first attempt's concatenation reference
/// and numbering, so the handset joins it to the first; the code then verifies.
#[test]
fn after_a_partly_acknowledged_message_only_the_rest_is_sent_under_its_reference() {
    let smsc = Smsc::start(&[]);
    smsc.cmd(json!({"cmd": "set", "answer_only": 1}));
    smsc.wait(|e| e["event"] == "set");
    let (gw, admin, verifier) = smsc.gateway("").with_keys();
    gw.enroll(&admin, crate::cards::A, "09121110461");
    gw.enroll(&admin, crate::cards::C, "09121110462");
    let to = |e: &Value, n: &str, seq: u64| {
        e["event"] == "submit_sm" && e["destination_addr"] == n && e["udh"]["seq"] == seq
    };
    let body = json!({"pan": crate::cards::A, "request_id": "two-segments"});
    assert_eq!(gw.post(&verifier, "/v1/codes", &body).0, 202);
    let first = smsc.wait(|e| to(e, "989121110461", 1));
    let unanswered = smsc.wait(|e| to(e, "989121110461", 2));
    assert_eq!(
        (&first["status"], &unanswered["status"]),
        (&json!(0), &Value::Null)
    );
    assert_eq!(first["udh"]["total"], 2, "{first}");

    smsc.cmd(json!({"cmd": "set", "answer_only": null}));
    smsc.wait(|e| e["event"] == "set" && e["settings"]["answer_only"].is_null());
    smsc.cmd(json!({"cmd": "drop"}));
    smsc.wait_bound(2);
    let rest = smsc.wait(|e| to(e, "989121110461", 2) && e["status"] == 0);
    assert_eq!(
        rest["udh"],
        json!({"ref": first["udh"]["ref"], "total": 2, "seq": 2})
    );
    // A later message, sent after the rest: by then nothing else of the first went out.
    let body = json!({"pan": crate::cards::C, "request_id": "after"});
    assert_eq!(gw.post(&verifier, "/v1/codes", &body).0, 202);
    smsc.wait(|e| to(e, "989121110462", 2) && e["status"] == 0);
    let firsts = smsc.all(|e| to(e, "989121110461", 1));
    assert_eq!(
        firsts.len(),
        1,
        "the acknowledged segment went once: {firsts:?}"
    );
    let joined = format!(
        "{}{}",
        first["text"].as_str().unwrap(),
        rest["text"].as_str().unwrap()
    );
    gw.approves(&verifier, crate::cards::A, &code_in(&joined), "joined");
}

/// Clears the flag when dropped: a failed assertion must not leave a flood running.
struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}
