//! The guards against guessing, on the moved clock: a verifier key that sends too
//! many wrong codes is paused for `guard_cooldown_secs`, and one that sends too
//! many wrong codes for one card is refused for that card until
//! `card_failures_window_secs` has passed. Other keys and cards are not held.

use std::time::Duration;

use otpgw::core::CoreError;
use otpgw_rules::vocab::{Reason, Verdict};

use crate::support::{core_with, MSISDN, PAN, PAN_2};

/// Not a code anyone was sent: no card here has a live code, so these wrong
/// codes lock nothing, but each is a guess the guards count.
const GUESS: &str = "1234567";

#[tokio::test]
async fn a_key_past_the_guard_is_paused_for_the_cooldown() {
    let h = core_with(|s| {
        s.limits.guard_max_failures = 5;
        s.limits.guard_window_secs = 60;
        s.limits.guard_cooldown_secs = 300;
    })
    .await;
    h.enroll(PAN, MSISDN).await;
    let key = h.verifier().await;
    let other = h.verifier().await;
    for n in 0..6 {
        assert!(h.core.verify.admit(key).is_ok(), "guess {n} is admitted");
        let v = h.verify(key, PAN, GUESS, &format!("g{n}")).await;
        assert_eq!(v.verdict, Verdict::Rejected(Reason::Invalid));
        assert_eq!(
            v.attempts_left,
            Some(3),
            "no live code: the card counts nothing"
        );
    }
    let refused = h.core.verify.admit(key).expect_err("paused");
    assert_eq!(refused.rule, "guard");
    assert_eq!(refused.retry_after, Duration::from_secs(300));
    assert!(h.core.verify.admit(other).is_ok(), "other keys go on");
    h.advance_ms(299_999);
    let refused = h.core.verify.admit(key).expect_err("still paused");
    assert_eq!(refused.retry_after, Duration::from_millis(1));
    h.advance_ms(1);
    assert!(h.core.verify.admit(key).is_ok(), "the cooldown is over");
}

#[tokio::test]
async fn a_key_guessing_at_one_card_is_refused_for_it_until_the_window_ends() {
    let h = core_with(|s| {
        s.limits.card_failures_per_key = 3;
        s.limits.card_failures_window_secs = 3600;
    })
    .await;
    h.enroll(PAN, MSISDN).await;
    h.enroll(PAN_2, MSISDN).await;
    let key = h.verifier().await;
    let other = h.verifier().await;
    // Three wrong codes are allowed; the fourth is answered, and holds the pair.
    for n in 0..4 {
        let v = h.verify(key, PAN, GUESS, &format!("g{n}")).await;
        assert_eq!(v.verdict, Verdict::Rejected(Reason::Invalid));
    }
    let refused = |r: Result<_, CoreError>| match r {
        Err(CoreError::Limited { retry_after }) => retry_after,
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("not refused"),
    };
    let pan = crate::support::card(PAN);
    let verify = |id: &'static str| {
        let core = h.core.clone();
        let pan = pan.clone();
        async move {
            core.verify
                .verify(key, &pan, GUESS, id, Default::default())
                .await
        }
    };
    assert_eq!(refused(verify("held").await), Duration::from_secs(3600));
    // Other cards and other keys are not held.
    let v = h.verify(key, PAN_2, GUESS, "card-2").await;
    assert_eq!(v.verdict, Verdict::Rejected(Reason::Invalid));
    let v = h.verify(other, PAN, GUESS, "other-key").await;
    assert_eq!(v.verdict, Verdict::Rejected(Reason::Invalid));
    h.advance_ms(3_599_999);
    assert_eq!(refused(verify("almost").await), Duration::from_millis(1));
    h.advance_ms(1);
    let v = h.verify(key, PAN, GUESS, "after").await;
    assert_eq!(
        v.verdict,
        Verdict::Rejected(Reason::Invalid),
        "answered again"
    );
}
