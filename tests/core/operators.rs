//! Local operators in process on a moved clock: the TOTP step of a sign-in
//! (enrolment, a code verifying once, the next step's code), failures of either
//! factor counting to the lock in a row and a success clearing them, the code step
//! ending after five minutes, and the password rules on reset.

use std::time::Duration;

use otpgw::core::{CodeAnswer, CoreError, OperatorError, PendingView, Started};
use otpgw_rules::operators::{PasswordError, MAX_FAILURES};
use otpgw_rules::tokens::{hotp, parse_secret, Hash};
use otpgw_rules::vocab::Role;

use crate::support::{core, Harness};

const PASSWORD: &str = "a long passphrase 7";

/// The code of the URI's secret at the clock's step plus `offset`.
fn code_at(h: &Harness, uri: &str, offset: i64) -> String {
    let secret = uri
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("secret="))
        .unwrap();
    let step = h.core.now_ms() / 30_000 + offset;
    hotp(Hash::Sha1, &parse_secret(secret).unwrap(), step as u64, 6)
}

async fn add(h: &Harness, name: &str, role: Role) {
    h.core
        .operators
        .add(name, role, PASSWORD, "test")
        .await
        .unwrap();
}

/// The password step: the code step it started, if the password was taken.
async fn password(h: &Harness, name: &str, password: &str) -> Option<Started> {
    h.core
        .operators
        .password(name, password, None)
        .await
        .unwrap()
}

async fn pending(h: &Harness, pending_id: &str) -> Option<PendingView> {
    h.core.operators.pending(pending_id).await.unwrap()
}

async fn code(h: &Harness, pending_id: &str, code: &str) -> CodeAnswer {
    h.core.operators.code(pending_id, code, None).await.unwrap()
}

async fn failures(h: &Harness, name: &str) -> (i64, bool) {
    let all = h.core.operators.list().await.unwrap();
    let o = all.into_iter().find(|o| o.name == name).unwrap();
    (o.failed_signins, o.locked_at.is_some())
}

/// Signs in through enrolment; returns the URI for later codes.
async fn enrol(h: &Harness, name: &str) -> String {
    let started = password(h, name, PASSWORD).await.unwrap();
    let view = pending(h, &started.pending_id).await.unwrap();
    let uri = view.otpauth.expect("the URI at enrolment");
    let answer = code(h, &started.pending_id, &code_at(h, &uri, 0)).await;
    assert!(matches!(answer, CodeAnswer::SignedIn(_)));
    uri
}

#[tokio::test]
async fn a_code_verifies_once_and_the_next_steps_code_signs_in() {
    let h = core().await;
    add(&h, "sara", Role::Admin).await;
    let uri = enrol(&h, "sara").await;
    let started = password(&h, "sara", PASSWORD).await.unwrap();
    let again = code(&h, &started.pending_id, &code_at(&h, &uri, 0)).await;
    assert!(matches!(again, CodeAnswer::Wrong(_)), "the same step twice");
    h.advance(Duration::from_secs(30));
    let next = code(&h, &started.pending_id, &code_at(&h, &uri, 0)).await;
    let CodeAnswer::SignedIn(signed_in) = next else {
        panic!("the next step's code")
    };
    // The session is under a new id; the step's id is gone.
    assert_ne!(signed_in.session_id, started.pending_id);
    assert!(h
        .core
        .access
        .session(&signed_in.session_id)
        .await
        .unwrap()
        .is_some());
    assert!(pending(&h, &started.pending_id).await.is_none());
    assert_eq!(
        failures(&h, "sara").await,
        (0, false),
        "a success clears the failures"
    );
}

#[tokio::test]
async fn five_failures_in_a_row_of_either_factor_lock() {
    let h = core().await;
    add(&h, "reza", Role::Helpdesk).await;
    let uri = enrol(&h, "reza").await;
    // Two wrong passwords, then two wrong codes: four in a row.
    for _ in 0..2 {
        assert!(password(&h, "reza", "Wrong password 1").await.is_none());
    }
    h.advance(Duration::from_secs(60));
    let started = password(&h, "reza", PASSWORD).await.unwrap();
    for _ in 0..2 {
        let wrong = code(&h, &started.pending_id, &code_at(&h, &uri, 5)).await;
        assert!(matches!(wrong, CodeAnswer::Wrong(_)));
    }
    assert_eq!(failures(&h, "reza").await, (4, false));
    // The fifth (a code) locks and ends the step; the right password is refused.
    let fifth = code(&h, &started.pending_id, "000000").await;
    assert!(matches!(fifth, CodeAnswer::Gone));
    assert_eq!(failures(&h, "reza").await, (MAX_FAILURES, true));
    assert!(password(&h, "reza", PASSWORD).await.is_none());
    assert_eq!(
        failures(&h, "reza").await.0,
        MAX_FAILURES,
        "a locked operator counts no more"
    );
    // Enabling lifts the lock.
    h.core
        .operators
        .set_disabled("reza", false, "test")
        .await
        .unwrap();
    assert_eq!(failures(&h, "reza").await, (0, false));
    assert!(password(&h, "reza", PASSWORD).await.is_some());
}

#[tokio::test]
async fn the_code_step_ends_after_five_minutes() {
    let h = core().await;
    add(&h, "sara", Role::Admin).await;
    let started = password(&h, "sara", PASSWORD).await.unwrap();
    h.advance(Duration::from_secs(5 * 60 - 1));
    assert!(pending(&h, &started.pending_id).await.is_some());
    h.advance(Duration::from_secs(1));
    assert!(pending(&h, &started.pending_id).await.is_none());
    let late = code(&h, &started.pending_id, "123456").await;
    assert!(matches!(late, CodeAnswer::Gone));
}

#[tokio::test]
async fn passwords_follow_the_rules_and_nobody_resets_themselves() {
    let h = core().await;
    let refused = |r: Result<_, CoreError>| match r {
        Err(CoreError::Operator(OperatorError::Password(p))) => p,
        other => panic!("{:?}", other.map(|_| ())),
    };
    let ops = &h.core.operators;
    assert_eq!(
        refused(ops.add("sara", Role::Admin, "short 1", "test").await),
        PasswordError::TooShort
    );
    ops.add("sara", Role::Admin, PASSWORD, "test")
        .await
        .unwrap();
    assert_eq!(
        refused(ops.reset("sara", PASSWORD, "test").await),
        PasswordError::Reused
    );
    assert!(matches!(
        ops.reset("sara", "another passphrase 8", "operator:sara")
            .await,
        Err(CoreError::Operator(OperatorError::OneSelf(_)))
    ));
    assert!(matches!(
        ops.add("ali", Role::Verifier, PASSWORD, "test").await,
        Err(CoreError::Operator(OperatorError::Role))
    ));
}
