//! How a lock ends. Under `[policy] lock = { timed_secs = N }` three wrong codes
//! lock the card for N seconds, nobody lifts it earlier, and then it ends by
//! itself; under the default policy it lasts until the bank re-activates the
//! card, however long that takes.

use otpgw::config::LockPolicy;
use otpgw::core::ports::StatusChange;
use otpgw::core::{Conflict, CoreError, DomainError};
use otpgw_rules::records::ApiKey;
use otpgw_rules::texts::ReplyKind;
use otpgw_rules::vocab::{CardStatus, Reason, Verdict};

use crate::support::{core, core_with, wrong, Harness, MSISDN, PAN, START};

const LOCKED: Verdict = Verdict::Rejected(Reason::Locked);
const DAY_MS: i64 = 86_400_000;

/// Three wrong codes against a live one: the third locks the card. Returns the
/// live code (voided by the lock) and the lock's end as the third answer gave it.
/// `round` keeps the request ids of a second lock apart from the first's.
async fn lock_card(h: &Harness, key: ApiKey, round: u8) -> (String, Option<i64>) {
    let code = h.code(MSISDN, "4321").await;
    let bad = wrong(&code);
    for (n, left) in [(1, 2), (2, 1)] {
        let v = h.verify(key, PAN, &bad, &format!("r{round}-bad{n}")).await;
        assert_eq!(v.verdict, Verdict::Rejected(Reason::Invalid));
        assert_eq!((v.attempts_left, v.locked_now), (Some(left), false));
    }
    let third = h.verify(key, PAN, &bad, &format!("r{round}-bad3")).await;
    assert_eq!(third.verdict, Verdict::Rejected(Reason::Invalid));
    assert!(third.locked_now, "the third failure locks");
    assert_eq!(third.attempts_left, Some(0));
    let until = third.lock.expect("the answer says the card is locked");
    (code, until)
}

async fn status(h: &Harness, id: i64) -> (CardStatus, Option<i64>) {
    let card = h.core.backoffice.card(id).await.unwrap().expect("the card");
    (card.status, card.locked_until)
}

async fn reactivate(h: &Harness, id: i64) -> Result<CardStatus, CoreError> {
    h.core
        .backoffice
        .change_status(id, StatusChange::Reactivate, "admin:test", Some("test"))
        .await
        .map(|c| c.status)
}

/// A timed lock: refused while it runs (even to the bank), over at its end to
/// the millisecond, and then the card works as before.
#[tokio::test]
async fn a_timed_lock_ends_by_itself_and_not_before() {
    let h = core_with(|s| s.policy.lock = LockPolicy::Timed { timed_secs: 600 }).await;
    let card = h.enroll(PAN, MSISDN).await;
    let key = h.verifier().await;
    h.advance_ms(5_000);
    let (voided, until) = lock_card(&h, key, 1).await;
    let end = START + 5_000 + 600_000;
    assert_eq!(until, Some(end), "locked for 600 s from the third failure");
    assert_eq!(status(&h, card.id).await, (CardStatus::Locked, Some(end)));

    // While it runs: verifies answer `locked`, the customer is told, and nobody
    // lifts it early.
    h.advance_ms(599_999);
    let v = h.verify(key, PAN, &voided, "during").await;
    assert_eq!(
        (v.verdict, v.attempts_left, v.lock),
        (LOCKED, Some(0), Some(Some(end)))
    );
    let reply = h.sms(MSISDN, "4321").await.expect("a reply");
    assert_eq!(reply.kind, ReplyKind::Locked);
    assert!(reply.code_id.is_none());
    match reactivate(&h, card.id).await {
        Err(CoreError::Domain(DomainError::WrongState(Conflict::LockNotLiftable { until }))) => {
            assert_eq!(until, end, "the refusal says when it ends");
        }
        other => panic!("re-activation during a timed lock: {other:?}"),
    }
    assert_eq!(status(&h, card.id).await.0, CardStatus::Locked);

    // At its end the card is active again, with a clean count.
    h.advance_ms(1);
    assert_eq!(status(&h, card.id).await, (CardStatus::Active, None));
    // Every read the help desk uses says so too, not only the card by id.
    let listed = h.core.backoffice.cards_by_msisdn(MSISDN).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|c| (c.status, c.locked_until))
            .collect::<Vec<_>>(),
        [(CardStatus::Active, None)],
        "the cards of a number, as of now"
    );
    let view = h.core.backoffice.card_view(card.id).await.unwrap().unwrap();
    assert_eq!(
        (view.card.status, view.card.locked_until),
        (CardStatus::Active, None)
    );
    // The code live at the lock was voided with it.
    let old = h.verify(key, PAN, &voided, "old").await;
    assert_eq!(old.verdict, Verdict::Rejected(Reason::Expired));
    let fresh = h.code(MSISDN, "4321").await;
    let miss = h.verify(key, PAN, &wrong(&fresh), "miss").await;
    assert_eq!(miss.attempts_left, Some(2), "the count starts again");
    let ok = h.verify(key, PAN, &fresh, "ok").await;
    assert_eq!((ok.verdict, ok.lock), (Verdict::Approved, None));
}

/// Once a timed lock has ended, the next three failures lock the card again for
/// the full time, from the new third failure.
#[tokio::test]
async fn a_timed_lock_starts_again_from_the_next_third_failure() {
    let h = core_with(|s| s.policy.lock = LockPolicy::Timed { timed_secs: 60 }).await;
    let card = h.enroll(PAN, MSISDN).await;
    let key = h.verifier().await;
    let (_, until) = lock_card(&h, key, 1).await;
    assert_eq!(until, Some(START + 60_000));
    h.advance_ms(60_000 + 30_000);
    assert_eq!(status(&h, card.id).await.0, CardStatus::Active);
    let (_, again) = lock_card(&h, key, 2).await;
    assert_eq!(again, Some(START + 90_000 + 60_000));
    assert_eq!(
        status(&h, card.id).await,
        (CardStatus::Locked, Some(START + 150_000))
    );
}

/// The default policy: the lock has no end of its own. A year later the card is
/// still locked, refuses codes and verifies; the bank's re-activation ends it.
#[tokio::test]
async fn under_the_default_policy_a_lock_lasts_until_reactivated() {
    let h = core().await;
    let card = h.enroll(PAN, MSISDN).await;
    let key = h.verifier().await;
    let (voided, until) = lock_card(&h, key, 1).await;
    assert_eq!(until, None, "no end but re-activation");
    for _ in 0..4 {
        h.advance_ms(100 * DAY_MS);
        assert_eq!(status(&h, card.id).await, (CardStatus::Locked, None));
    }
    let v = h.verify(key, PAN, &voided, "a-year-on").await;
    assert_eq!((v.verdict, v.lock), (LOCKED, Some(None)));
    let reply = h.sms(MSISDN, "4321").await.expect("a reply");
    assert_eq!(reply.kind, ReplyKind::Locked);

    assert_eq!(reactivate(&h, card.id).await.unwrap(), CardStatus::Active);
    assert_eq!(status(&h, card.id).await, (CardStatus::Active, None));
    let fresh = h.code(MSISDN, "4321").await;
    let ok = h.verify(key, PAN, &fresh, "ok").await;
    assert_eq!(ok.verdict, Verdict::Approved);
}
