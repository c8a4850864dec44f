//! Two real gateway processes on one database (a shared SQLite file by default, one
//! PostgreSQL database when OTPGW_TEST_POSTGRES_URL is set): every rule that must hold
//! across nodes is the database's.

use crate::api::standing;
use crate::cards;
use crate::harness::{code_in, send, Gateway};

#[test]
fn rules_hold_across_two_nodes() {
    let (a, admin, verifier) = Gateway::start().with_keys();
    let b = Gateway::start_beside(&a);
    a.enroll(&admin, cards::A, "989121110070");
    a.enroll(&admin, cards::C, "989121110071");

    // A code issued through node A verifies through node B.
    let code = code_in(&a.sms("989121110070", "4321", "ascii"));
    b.approves(&verifier, cards::A, &code, "ab");

    // 100 concurrent verifies of one code over both nodes approve exactly one.
    let code = code_in(&b.sms("989121110070", "4321", "ascii"));
    let barrier = std::sync::Barrier::new(100);
    let results: Vec<serde_json::Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let (node, barrier, verifier, code) =
                    (if i % 2 == 0 { &a } else { &b }, &barrier, &verifier, &code);
                s.spawn(move || {
                    barrier.wait();
                    node.verify(verifier, cards::A, code, &format!("n{i}"))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|r| r["result"] == "approved").count(),
        1
    );

    // Concurrent wrong guesses over both nodes lock the card after exactly three.
    let (_, wrong) = &a.code_and_wrong("989121110071", cards::C);
    let guesses: Vec<serde_json::Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let (node, verifier) = (if i % 2 == 0 { &a } else { &b }, &verifier);
                s.spawn(move || node.verify(verifier, cards::C, wrong, &format!("g{i}")))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let invalid = guesses.iter().filter(|r| r["reason"] == "invalid").count();
    let locked = guesses.iter().filter(|r| r["reason"] == "locked").count();
    assert_eq!((invalid, locked), (3, 17), "{guesses:?}");
    let card = b.lookup(&admin, cards::C);
    assert_eq!(standing(&card), (Some("locked"), Some(3)));

    // Two SMS for one card at once through both nodes leave exactly one live code.
    let codes: Vec<String> = std::thread::scope(|s| {
        let ha = s.spawn(|| code_in(&a.sms("989121110070", "4321", "ascii")));
        let hb = s.spawn(|| code_in(&b.sms("989121110070", "4321", "ascii")));
        vec![ha.join().unwrap(), hb.join().unwrap()]
    });
    let approved: Vec<bool> = codes
        .iter()
        .enumerate()
        .map(|(i, c)| a.verify(&verifier, cards::A, c, &format!("two{i}"))["result"] == "approved")
        .collect();
    assert_eq!(approved.iter().filter(|x| **x).count(), 1, "{approved:?}");
}

#[test]
fn sigterm_during_traffic_unbinds_every_session_and_exits_zero() {
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    gw.enroll(&admin, cards::A, "989121110110");
    // The idle session is another system_id's: replies for `kannel` all go to the
    // busy session, so its counts below are complete.
    let (rx, busy) = std::thread::scope(|s| {
        let rx = s.spawn(|| gw.peer_as("rxpeer", "rxpass", &["--bind", "rx"], &["wait-unbind"]));
        let busy = s.spawn(|| {
            gw.peer(&send(
                "989121110110",
                "4321",
                "ascii",
                &["--repeat", "100000"],
            ))
        });
        // Traffic is flowing and both sessions are bound.
        gw.wait_for_log("message answered");
        gw.wait_for_log_count("\"bound\"", 2);
        let status = gw.stop();
        assert!(status.success(), "exit status {status:?}");
        (rx.join().unwrap(), busy.join().unwrap())
    });
    rx.ok().event("unbind_from_server");
    // The busy peer was unbound mid-stream (its exit code 8 says so) …
    assert_eq!(busy.code, Some(8), "{busy:?}");
    // … and every message the gateway accepted got its reply before the unbind.
    let accepted = busy
        .all("submit_sm_resp")
        .iter()
        .filter(|r| r["status"] == 0)
        .count();
    assert!(accepted > 0);
    assert_eq!(
        busy.all("deliver_sm").len(),
        accepted,
        "{:?}",
        busy.events.last()
    );
}
