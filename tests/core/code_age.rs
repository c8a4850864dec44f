//! A code's age: it verifies up to the last millisecond of its `code_ttl_secs` and
//! is `expired` from then on, and presenting an expired code is no failure (the
//! customer had the right code; only guesses count towards the lock).

use otpgw_rules::vocab::{Reason, Verdict};

use crate::support::{core, core_with, wrong, MSISDN, PAN};

const EXPIRED: Verdict = Verdict::Rejected(Reason::Expired);
const INVALID: Verdict = Verdict::Rejected(Reason::Invalid);

/// 59 s 999 ms after it was issued, a 60 s code still verifies.
#[tokio::test]
async fn a_code_verifies_in_the_last_millisecond_of_its_life() {
    let h = core().await;
    let (key, _, code) = h.issued().await;
    h.advance_ms(59_999);
    let v = h.verify(key, PAN, &code, "late").await;
    assert_eq!(v.verdict, Verdict::Approved);
    // Used once: the same code again is `used`, not approved.
    let again = h.verify(key, PAN, &code, "again").await;
    assert_eq!(again.verdict, Verdict::Rejected(Reason::Used));
}

/// At 60 s exactly the code is dead: `expired`, and that is not a failure.
#[tokio::test]
async fn a_code_is_expired_at_its_ttl_and_that_counts_no_failure() {
    let h = core().await;
    let (key, _, code) = h.issued().await;
    // One real failure first, so an unchanged count is visible.
    let guess = h.verify(key, PAN, &wrong(&code), "guess").await;
    assert_eq!(
        (guess.verdict, guess.attempts_left),
        (INVALID, Some(2)),
        "a wrong code while one is live counts"
    );
    h.advance_ms(60_000);
    let late = h.verify(key, PAN, &code, "late").await;
    assert_eq!(late.verdict, EXPIRED);
    assert_eq!(late.attempts_left, Some(2), "expiry counts no failure");
    assert!(!late.locked_now);
    // Still expired when presented again, and still no failure.
    let later = h.verify(key, PAN, &code, "later").await;
    assert_eq!((later.verdict, later.attempts_left), (EXPIRED, Some(2)));
    // With no live code a wrong one is not a guess either: nothing to guess.
    let stray = h.verify(key, PAN, &wrong(&code), "stray").await;
    assert_eq!((stray.verdict, stray.attempts_left), (INVALID, Some(2)));
    // A fresh code: the count went on from where the real failure left it.
    let fresh = h.code(MSISDN, "4321").await;
    let miss = h.verify(key, PAN, &wrong(&fresh), "miss").await;
    assert_eq!((miss.verdict, miss.attempts_left), (INVALID, Some(1)));
    let ok = h.verify(key, PAN, &fresh, "ok").await;
    assert_eq!(ok.verdict, Verdict::Approved);
}

/// The boundary follows `[service] code_ttl_secs`, and the code's record says
/// when it ends.
#[tokio::test]
async fn the_boundary_follows_the_configured_ttl() {
    let h = core_with(|s| s.service.code_ttl_secs = 120).await;
    h.enroll(PAN, MSISDN).await;
    h.enroll(crate::support::PAN_2, MSISDN).await;
    let key = h.verifier().await;
    let reply = h.sms(MSISDN, "4321").await.expect("a reply");
    let code_id = reply.code_id.expect("a code was issued");
    let record = h
        .core
        .issue
        .code(otpgw::core::public_code_id(&h.keys, code_id))
        .await
        .unwrap()
        .expect("its record");
    assert_eq!(
        record.expires_at - record.issued_at,
        120_000,
        "expires_at is issued_at plus the ttl"
    );
    let code = crate::support::code_in(&reply.text);
    let other = h.code(MSISDN, "2468").await;
    h.advance_ms(119_999);
    assert_eq!(
        h.verify(key, PAN, &code, "a").await.verdict,
        Verdict::Approved
    );
    h.advance_ms(1);
    assert_eq!(
        h.verify(key, crate::support::PAN_2, &other, "b")
            .await
            .verdict,
        EXPIRED,
        "the other card's code, issued at the same time, is dead at 120 s"
    );
}
