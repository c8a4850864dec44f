//! Codes the core sends unasked, on the moved clock: a card's activation code
//! (`[policy] activation_ttl_secs`), a token's two-part activation code
//! (`[tokens] activation_ttl_secs`), and a code pushed by the payment switch (its
//! age, and the per-card interval between pushes). Client mode's connections are
//! a fake that keeps what it is handed.

use std::time::Duration;

use otpgw::core::ports::Activation;
use otpgw::core::{ActivatedTokenOutcome, ActivationState, CoreError, TokenRequest};
use otpgw_rules::tokens::TokenKind;
use otpgw_rules::vocab::{CardStatus, Reason, Verdict};

use crate::support::{card, code_in, core_with, digits_in, Harness, MSISDN, PAN, PAN_2, START};

const HOUR_MS: i64 = 3_600_000;

/// Enrolls `pan` pending activation; returns its id and the code sent to it.
async fn enroll_pending(h: &Harness, phone: &crate::support::Phone, pan: &str) -> (i64, String) {
    let enrolled = h
        .core
        .enroll
        .card(&card(pan), MSISDN, None, "test")
        .await
        .expect("enrolled");
    assert_eq!(enrolled.card.status, CardStatus::Pending);
    let notice = enrolled.activation.expect("an activation code was sent");
    assert_eq!(notice.state, ActivationState::Sent);
    assert_eq!(notice.expires_at, h.core.now_ms() + HOUR_MS);
    (enrolled.card.id, code_in(&phone.last_text()))
}

/// A card's and a token's activation answer alike, so one check serves both.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Activated,
    Wrong,
    Expired,
}

async fn activate_card(h: &Harness, card_id: i64, code: &str) -> Answer {
    match h.core.enroll.activate(card_id, code, "atm").await.unwrap() {
        Activation::Activated(c) => {
            assert_eq!(c.status, CardStatus::Active);
            Answer::Activated
        }
        Activation::Wrong { .. } => Answer::Wrong,
        Activation::Expired => Answer::Expired,
    }
}

async fn activate_token(h: &Harness, token_id: i64, code: &str) -> Answer {
    match h.core.tokens.activate(token_id, code, "app").await.unwrap() {
        ActivatedTokenOutcome::Activated(_) => Answer::Activated,
        ActivatedTokenOutcome::Wrong { .. } => Answer::Wrong,
        ActivatedTokenOutcome::Expired => Answer::Expired,
    }
}

/// An activation code works in the last millisecond of its `ttl_ms` (`first`,
/// awaited then) and is void from then on (`second`, sent with it, awaited a
/// millisecond later).
async fn lasts_its_ttl(
    h: &Harness,
    ttl_ms: i64,
    first: impl std::future::Future<Output = Answer>,
    second: impl std::future::Future<Output = Answer>,
) {
    h.advance_ms(ttl_ms - 1);
    assert_eq!(first.await, Answer::Activated, "activated within its ttl");
    h.advance_ms(1);
    assert_eq!(
        second.await,
        Answer::Expired,
        "{ttl_ms} ms on, the code is void"
    );
}

#[tokio::test]
async fn a_card_activation_code_lasts_its_ttl_to_the_millisecond() {
    let h = core_with(|s| {
        s.policy.require_activation = true;
        s.policy.activation_ttl_secs = 3600;
    })
    .await;
    let phone = h.phone();
    let (a, code_a) = enroll_pending(&h, &phone, PAN).await;
    let (b, code_b) = enroll_pending(&h, &phone, PAN_2).await;
    let (first, second) = (activate_card(&h, a, &code_a), activate_card(&h, b, &code_b));
    lasts_its_ttl(&h, HOUR_MS, first, second).await;
    // The bank sends a new one; it lasts an hour from now.
    h.core.enroll.resend_activation(b, "test").await.unwrap();
    let fresh = code_in(&phone.last_text());
    h.advance_ms(HOUR_MS - 1);
    assert_eq!(activate_card(&h, b, &fresh).await, Answer::Activated);
}

/// Enrolls a software TOTP token on the card `card_id`; returns its id and the
/// whole activation code (the part for the ATM, then the part sent by SMS).
async fn software_token(h: &Harness, phone: &crate::support::Phone, card_id: i64) -> (i64, String) {
    let token = h
        .core
        .tokens
        .enroll(
            card_id,
            &TokenRequest {
                kind: Some(TokenKind::Totp),
                ..TokenRequest::default()
            },
            "test",
        )
        .await
        .expect("token enrolled");
    let first = token.activation_part.clone().expect("a part for the ATM");
    let notice = token.activation.expect("the other part was sent");
    assert_eq!(notice.state, ActivationState::Sent);
    let second = digits_in(&phone.last_text(), first.len());
    (token.token_id, format!("{first}{second}"))
}

#[tokio::test]
async fn a_token_activation_code_lasts_its_ttl_to_the_millisecond() {
    let h = core_with(|s| s.tokens.activation_ttl_secs = 2 * 3600).await;
    let phone = h.phone();
    let one = h.enroll(PAN, MSISDN).await;
    let two = h.enroll(PAN_2, MSISDN).await;
    let (t1, code1) = software_token(&h, &phone, one.id).await;
    let (t2, code2) = software_token(&h, &phone, two.id).await;
    let (first, second) = (
        activate_token(&h, t1, &code1),
        activate_token(&h, t2, &code2),
    );
    lasts_its_ttl(&h, 2 * HOUR_MS, first, second).await;
}

/// A pushed code is committed with its expiry and ages like any code; the
/// card's interval (one per 10 s) holds between pushes, answered with the time
/// to wait, while a retry of the same request is answered as the first was.
#[tokio::test]
async fn a_pushed_code_ages_and_pushes_keep_the_card_interval() {
    let h = core_with(|_| {}).await;
    let phone = h.phone();
    h.enroll(PAN, MSISDN).await;
    let key = h.verifier().await;
    let pan = card(PAN);
    let first = h.core.issue.push(key, &pan, "p1", None).await.unwrap();
    assert_eq!(first.expires_at, START + 60_000);
    assert!(!first.replayed);
    let code = code_in(&phone.last_text());

    h.advance_ms(4_000);
    match h.core.issue.push(key, &pan, "p2", None).await {
        Err(CoreError::Limited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(6));
        }
        other => panic!("a second push within 10 s: {other:?}"),
    }
    let retry = h.core.issue.push(key, &pan, "p1", None).await.unwrap();
    assert!(retry.replayed);
    assert_eq!(
        (retry.code_id, retry.expires_at),
        (first.code_id, first.expires_at)
    );
    assert_eq!(phone.count(), 1, "nothing new was sent");

    h.advance_ms(55_999);
    let v = h.verify(key, PAN, &code, "v1").await;
    assert_eq!(v.verdict, Verdict::Approved, "at 59.999 s");

    h.advance_ms(1);
    let second = h.core.issue.push(key, &pan, "p3", None).await.unwrap();
    assert_eq!(second.expires_at, START + 120_000);
    let code = code_in(&phone.last_text());
    h.advance_ms(60_000);
    let v = h.verify(key, PAN, &code, "v2").await;
    assert_eq!(v.verdict, Verdict::Rejected(Reason::Expired), "at 60 s");
}
