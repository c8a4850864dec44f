//! Verification over HTTP: single use, exact 60 s expiry, locking after three
//! failures and re-activation, request_id retries, and 50 concurrent verifies.

use serde_json::json;

use crate::api::standing;
use crate::cards;
use crate::db::Db;
use crate::harness::{code_in, Gateway};

/// Moves every code `ms` into the past, as if that much time had gone by.
fn age_codes(gw: &Gateway, ms: i64) {
    let sql = "UPDATE codes SET issued_at = issued_at - $1, expires_at = expires_at - $1";
    Db::of(gw).execute(sql, &[ms]);
}

#[test]
fn codes_live_exactly_sixty_seconds() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    gw.enroll(&admin, cards::A, "989121110020");

    let code = code_in(&gw.sms("989121110020", "4321", "ascii"));
    let lifetimes = Db::of(&gw).integers("SELECT expires_at - issued_at FROM codes");
    assert_eq!(lifetimes, vec![60_000]);
    age_codes(&gw, 59_000);
    gw.approves(&verifier, cards::A, &code, "in-time");

    let code = code_in(&gw.sms("989121110020", "4321", "ascii"));
    age_codes(&gw, 60_000);
    let v = gw.verify(&verifier, cards::A, &code, "late");
    assert_eq!(
        v,
        json!({"result": "rejected", "reason": "expired", "response_code": "54", "request_id": "late",
               "attempts_left": 3})
    );
    // An expired code does not count towards the lock: attempts_left is unchanged.
    assert_eq!(gw.failures(&admin, cards::A), 0);
}

#[test]
fn three_failures_lock_until_reactivated() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    let id = gw.enroll_id(&admin, cards::A, "989121110021");

    // Success resets the count: two failures, a success, two failures: still active.
    let (code, wrong) = &gw.code_and_wrong("989121110021", cards::A);
    let fail = |rid: &str| gw.verify(&verifier, cards::A, wrong, rid)["reason"].clone();
    for i in 0..2 {
        assert_eq!(fail(&format!("w{i}")), "invalid");
    }
    gw.approves(&verifier, cards::A, code, "ok");
    let code = code_in(&gw.sms("989121110021", "4321", "ascii"));
    for i in 2..4 {
        assert_eq!(fail(&format!("w{i}")), "invalid");
    }
    assert_eq!(
        gw.get(&admin, &format!("/v1/cards/{id}")).1["status"],
        "active"
    );
    // The third consecutive failure locks the card.
    assert_eq!(fail("w4"), "invalid");
    let (_, shown) = gw.get(&admin, &format!("/v1/cards/{id}"));
    assert_eq!(shown["status"], "locked");
    assert_eq!(shown["failures"], 3);
    // Locked: even the right code is answered `locked`, and nothing more is counted.
    let v = gw.verify(&verifier, cards::A, &code, "after-lock");
    assert_eq!(
        v,
        json!({"result": "rejected", "reason": "locked", "response_code": "75", "request_id": "after-lock",
               "attempts_left": 0, "locked_until": null})
    );
    assert_eq!(gw.get(&admin, &format!("/v1/cards/{id}")).1["failures"], 3);
    // The customer asking for a code is told to go to the bank.
    let reply = gw.sms("989121110021", "OTP 4321", "gsm");
    assert!(reply.contains("is disabled"), "{reply}");

    // Re-activation (CLI) makes it work again.
    let (ok, out, err) = gw.cli(&["card", "reactivate", "--id", &id.to_string()]);
    assert!(ok, "{err}");
    let card: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(standing(&card), (Some("active"), Some(0)));
    let code = code_in(&gw.sms("989121110021", "4321", "ascii"));
    gw.approves(&verifier, cards::A, &code, "works-again");

    // The audit trail tells the story.
    let story = [
        "enrolled",
        "code_issued",
        "verified",
        "locked",
        "reactivated",
    ];
    let kinds = gw.events_include(&admin, id, &story);
    assert_eq!(kinds.iter().filter(|k| *k == "locked").count(), 1);
}

#[test]
fn a_retried_request_id_returns_the_first_answer_and_counts_nothing_twice() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    gw.enroll(&admin, cards::A, "989121110022");
    let (code, wrong) = &gw.code_and_wrong("989121110022", cards::A);

    let first = gw.verify(&verifier, cards::A, wrong, "retry-me");
    for _ in 0..5 {
        assert_eq!(gw.verify(&verifier, cards::A, wrong, "retry-me"), first);
    }
    let failures = gw.failures(&admin, cards::A);
    assert_eq!(failures, 1, "a retry must not count again");

    let ok = gw.verify(&verifier, cards::A, code, "approve-me");
    assert_eq!(ok["result"], "approved");
    assert_eq!(gw.verify(&verifier, cards::A, code, "approve-me"), ok);

    // The same request_id for a different request is refused, not answered.
    let reused = json!({"pan": cards::A, "code": "7654321", "request_id": "retry-me"});
    gw.post_error(&verifier, "/v1/verify", &reused, 409, "request_id_reused");
}

#[test]
fn fifty_concurrent_verifies_of_one_code_approve_exactly_one() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    gw.enroll(&admin, cards::A, "989121110023");
    let code = code_in(&gw.sms("989121110023", "4321", "ascii"));

    let barrier = std::sync::Barrier::new(50);
    let results: Vec<serde_json::Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let (gw, barrier, verifier, code) = (&gw, &barrier, &verifier, &code);
                s.spawn(move || {
                    barrier.wait();
                    gw.verify(verifier, cards::A, code, &format!("c{i}"))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let approved = results.iter().filter(|r| r["result"] == "approved").count();
    let used = results.iter().filter(|r| r["reason"] == "used").count();
    assert_eq!((approved, used), (1, 49), "{results:?}");
}

#[test]
fn verify_rejects_bad_requests_with_json_errors() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    let ok_body = json!({"pan": cards::A, "code": "1234567", "request_id": "x"});

    gw.post_error("not-a-key", "/v1/verify", &ok_body, 401, "unauthorized");
    gw.post_error(&admin, "/v1/verify", &ok_body, 403, "forbidden");

    let cases = [
        (
            json!({"pan": "6037990000004322", "code": "1", "request_id": "x"}),
            400,
            "invalid_pan",
        ),
        (
            json!({"pan": "1234", "code": "1", "request_id": "x"}),
            400,
            "invalid_pan",
        ),
        (
            json!({"pan": cards::A, "code": "", "request_id": "x"}),
            400,
            "invalid_code",
        ),
        (
            json!({"pan": cards::A, "code": "1234567", "request_id": ""}),
            400,
            "invalid_request_id",
        ),
        (
            json!({"pan": cards::A, "code": "1234567", "request_id": "a b"}),
            400,
            "invalid_request_id",
        ),
        (
            json!({"pan": 6037990000004321u64, "code": "1", "request_id": "x"}),
            422,
            "invalid_body",
        ),
        (json!({"code": "1", "request_id": "x"}), 422, "invalid_body"),
    ];
    for (body, want_status, want_code) in cases {
        let resp = gw.post_error(&verifier, "/v1/verify", &body, want_status, want_code);
        // Error bodies never echo a card number.
        assert!(!resp.to_string().contains("6037990000004321"), "{resp}");
    }
    // Not enrolled.
    let v = gw.verify(&verifier, cards::D, "1234567", "ne");
    assert_eq!(
        v,
        json!({"result": "rejected", "reason": "not_enrolled", "response_code": "56", "request_id": "ne"})
    );
    // Not JSON at all.
    let resp = reqwest::blocking::Client::new()
        .post(gw.url("/v1/verify"))
        .bearer_auth(&verifier)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}
