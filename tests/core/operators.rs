//! Local operators in process on a moved clock: the TOTP step of a sign-in
//! (enrolment, a code verifying once, the next step's code), failures of either
//! factor counting to the lock in a row and a success clearing them, the code step
//! ending after five minutes, and the password rules on reset.

use std::time::Duration;

use otpgw::core::{CodeAnswer, CoreError, OperatorError};
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

async fn failures(h: &Harness, name: &str) -> (i64, bool) {
    let all = h.core.operators.list().await.unwrap();
    let o = all.into_iter().find(|o| o.name == name).unwrap();
    (o.failed_signins, o.locked_at.is_some())
}

/// Signs in through enrolment; returns the URI for later codes.
async fn enrol(h: &Harness, name: &str) -> String {
    let started = h
        .core
        .operators
        .password(name, PASSWORD)
        .await
        .unwrap()
        .unwrap();
    let view = h
        .core
        .operators
        .pending(&started.pending_id)
        .await
        .unwrap()
        .unwrap();
    let uri = view.otpauth.expect("the URI at enrolment");
    let answer = h
        .core
        .operators
        .code(&started.pending_id, &code_at(h, &uri, 0))
        .await
        .unwrap();
    assert!(matches!(answer, CodeAnswer::SignedIn(_)));
    uri
}

#[tokio::test]
async fn a_code_verifies_once_and_the_next_steps_code_signs_in() {
    let h = core().await;
    h.core
        .operators
        .add("sara", Role::Admin, PASSWORD, "test")
        .await
        .unwrap();
    let uri = enrol(&h, "sara").await;
    let started = h
        .core
        .operators
        .password("sara", PASSWORD)
        .await
        .unwrap()
        .unwrap();
    let again = h
        .core
        .operators
        .code(&started.pending_id, &code_at(&h, &uri, 0))
        .await
        .unwrap();
    assert!(matches!(again, CodeAnswer::Wrong(_)), "the same step twice");
    h.advance(Duration::from_secs(30));
    let next = h
        .core
        .operators
        .code(&started.pending_id, &code_at(&h, &uri, 0))
        .await
        .unwrap();
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
    assert!(h
        .core
        .operators
        .pending(&started.pending_id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        failures(&h, "sara").await,
        (0, false),
        "a success clears the failures"
    );
}

#[tokio::test]
async fn five_failures_in_a_row_of_either_factor_lock() {
    let h = core().await;
    h.core
        .operators
        .add("reza", Role::Helpdesk, PASSWORD, "test")
        .await
        .unwrap();
    let uri = enrol(&h, "reza").await;
    // Two wrong passwords, then two wrong codes: four in a row.
    for _ in 0..2 {
        assert!(h
            .core
            .operators
            .password("reza", "Wrong password 1")
            .await
            .unwrap()
            .is_none());
    }
    h.advance(Duration::from_secs(60));
    let started = h
        .core
        .operators
        .password("reza", PASSWORD)
        .await
        .unwrap()
        .unwrap();
    for _ in 0..2 {
        let wrong = h
            .core
            .operators
            .code(&started.pending_id, &code_at(&h, &uri, 5))
            .await
            .unwrap();
        assert!(matches!(wrong, CodeAnswer::Wrong(_)));
    }
    assert_eq!(failures(&h, "reza").await, (4, false));
    // The fifth (a code) locks and ends the step; the right password is refused.
    let fifth = h
        .core
        .operators
        .code(&started.pending_id, "000000")
        .await
        .unwrap();
    assert!(matches!(fifth, CodeAnswer::Gone));
    assert_eq!(failures(&h, "reza").await, (MAX_FAILURES, true));
    assert!(h
        .core
        .operators
        .password("reza", PASSWORD)
        .await
        .unwrap()
        .is_none());
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
    assert!(h
        .core
        .operators
        .password("reza", PASSWORD)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn the_code_step_ends_after_five_minutes() {
    let h = core().await;
    h.core
        .operators
        .add("sara", Role::Admin, PASSWORD, "test")
        .await
        .unwrap();
    let started = h
        .core
        .operators
        .password("sara", PASSWORD)
        .await
        .unwrap()
        .unwrap();
    h.advance(Duration::from_secs(5 * 60 - 1));
    assert!(h
        .core
        .operators
        .pending(&started.pending_id)
        .await
        .unwrap()
        .is_some());
    h.advance(Duration::from_secs(1));
    assert!(h
        .core
        .operators
        .pending(&started.pending_id)
        .await
        .unwrap()
        .is_none());
    let late = h
        .core
        .operators
        .code(&started.pending_id, "123456")
        .await
        .unwrap();
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
