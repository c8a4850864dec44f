//! `POST /v1/verify` answers: every decision is a 200 with `result`, `reason`
//! (rejections only), `response_code`, `request_id`, `attempts_left` (rejections
//! of an enrolled card) and `locked_until` (when the card is locked), and no
//! other field. Time moves on the core's clock: a code's expiry and a timed lock
//! are seen through HTTP without sleeping.

use axum::http::StatusCode;
use serde_json::{json, Value};

use otpgw::config::LockPolicy;
use otpgw_rules::vocab::Role;

use crate::app::{error_code, App};
use crate::support::{wrong, MSISDN, PAN, PAN_2, START};

async fn verify(app: &App, key: &str, pan: &str, code: &str, request_id: &str) -> Value {
    let (status, body) = app
        .post(
            "/v1/verify",
            key,
            &json!({"pan": pan, "code": code, "request_id": request_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a decision is a 200");
    body
}

#[tokio::test]
async fn approved_and_rejected_answers_have_their_fields_and_no_others() {
    let app = App::new().await;
    let (_, key, code) = app.h.issued().await;

    let miss = verify(&app, &key, PAN, &wrong(&code), "r1").await;
    assert_eq!(
        miss,
        json!({"result": "rejected", "reason": "invalid", "response_code": "55",
               "request_id": "r1", "attempts_left": 2})
    );
    let ok = verify(&app, &key, PAN, &code, "r2").await;
    assert_eq!(
        ok,
        json!({"result": "approved", "response_code": "00", "request_id": "r2"})
    );
    let again = verify(&app, &key, PAN, &code, "r3").await;
    assert_eq!(
        again,
        json!({"result": "rejected", "reason": "used", "response_code": "94",
               "request_id": "r3", "attempts_left": 3})
    );
    // A retry of a request_id gets its first answer; reused for another request,
    // it is a conflict.
    assert_eq!(verify(&app, &key, PAN, &code, "r2").await, ok);
    let (status, body) = app
        .post(
            "/v1/verify",
            &key,
            &json!({"pan": PAN, "code": wrong(&code), "request_id": "r2"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "request_id_reused")
    );
    // A card nobody enrolled: no attempts to count.
    assert_eq!(
        verify(&app, &key, PAN_2, &code, "r4").await,
        json!({"result": "rejected", "reason": "not_enrolled", "response_code": "56",
               "request_id": "r4"})
    );
}

#[tokio::test]
async fn a_code_answers_expired_once_the_clock_passes_its_ttl() {
    let app = App::new().await;
    let (_, key, code) = app.h.issued().await;
    app.h.advance_ms(60_000);
    assert_eq!(
        verify(&app, &key, PAN, &code, "late").await,
        json!({"result": "rejected", "reason": "expired", "response_code": "54",
               "request_id": "late", "attempts_left": 3})
    );
}

/// The third failure answers `attempts_left: 0` and `locked_until` (null under
/// the default policy); later verifies answer `locked`.
#[tokio::test]
async fn a_locking_answer_says_until_when() {
    let app = App::new().await;
    let (_, key, code) = app.h.issued().await;
    for n in 1..=2 {
        let v = verify(&app, &key, PAN, &wrong(&code), &format!("w{n}")).await;
        assert!(v.get("locked_until").is_none(), "not locked yet: {v}");
    }
    assert_eq!(
        verify(&app, &key, PAN, &wrong(&code), "w3").await,
        json!({"result": "rejected", "reason": "invalid", "response_code": "55",
               "request_id": "w3", "attempts_left": 0, "locked_until": null})
    );
    assert_eq!(
        verify(&app, &key, PAN, &code, "after").await,
        json!({"result": "rejected", "reason": "locked", "response_code": "75",
               "request_id": "after", "attempts_left": 0, "locked_until": null})
    );
}

/// Under a timed lock the answer names the lock's end; re-activation before it
/// is a 409 `lock_not_liftable`, and at the end the card is active by itself.
#[tokio::test]
async fn a_timed_lock_through_http() {
    let app = App::with(
        |s| s.policy.lock = LockPolicy::Timed { timed_secs: 3600 },
        true,
    )
    .await;
    let card = app.h.enroll(PAN, MSISDN).await;
    let verifier = app.key(Role::Verifier).await;
    let admin = app.key(Role::Admin).await;
    let code = app.h.code(MSISDN, "4321").await;
    for n in 1..=3 {
        verify(&app, &verifier, PAN, &wrong(&code), &format!("w{n}")).await;
    }
    let end = START + 3_600_000;
    let v = verify(&app, &verifier, PAN, &code, "during").await;
    assert_eq!(
        (&v["reason"], &v["locked_until"]),
        (&json!("locked"), &json!(end))
    );
    let reactivate = format!("/v1/cards/{}/reactivate", card.id);
    let (status, body) = app.post(&reactivate, &admin, &json!({})).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "lock_not_liftable")
    );
    let show = format!("/v1/cards/{}", card.id);
    let (_, shown) = app.get(&show, Some(&admin)).await;
    assert_eq!(
        (&shown["status"], &shown["locked_until"]),
        (&json!("locked"), &json!(end))
    );

    app.h.at(3_600_000);
    let (status, shown) = app.get(&show, Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&shown["status"], &shown["locked_until"], &shown["failures"]),
        (&json!("active"), &Value::Null, &json!(0))
    );
    let fresh = app.h.code(MSISDN, "4321").await;
    assert_eq!(
        verify(&app, &verifier, PAN, &fresh, "after").await["result"],
        "approved"
    );
}
