//! Token time steps on the core's clock. A hardware token enrolled with a known
//! secret (as the CLI's import does) makes codes the test computes with the rules
//! crate: a TOTP code verifies within its step and the `[tokens] window_steps`
//! around it, once per step (`used` when replayed), and a code of a step outside
//! the window is refused and counted as a wrong code; a resync moves the window
//! to the token's clock. A time-stepped OCRA response answers its payment in its
//! minute, once.

use otpgw::core::{Factors, TokenRequest};
use otpgw_rules::payment::Transaction;
use otpgw_rules::records::ApiKey;
use otpgw_rules::tokens::{ocra, totp, Hash, TokenKind};
use otpgw_rules::vocab::{Reason, Verdict};

use crate::support::{card, core_with, Harness, MSISDN, PAN, START};

/// RFC 6238's SHA-1 test seed, hex: 20 bytes.
const SECRET_HEX: &str = "3132333435363738393031323334353637383930";
const SECRET: &[u8] = b"12345678901234567890";

const APPROVED: Verdict = Verdict::Approved;
const USED: Verdict = Verdict::Rejected(Reason::Used);
const INVALID: Verdict = Verdict::Rejected(Reason::Invalid);

fn params() -> totp::Params {
    totp::Params::new(Hash::Sha1, 6, 30).expect("valid parameters")
}

/// The step the clock is in at `START`, and the code of `step`.
fn step0() -> u64 {
    params().step_at(START)
}

fn code(step: u64) -> String {
    params().code(SECRET, step)
}

/// A core with `window_steps`, a card, and a hardware token of `kind` (and OCRA
/// `suite`) with the test secret; returns the token's id too.
async fn hardware(
    window_steps: u32,
    kind: TokenKind,
    suite: Option<&str>,
) -> (Harness, ApiKey, i64) {
    let h = core_with(|s| s.tokens.window_steps = window_steps).await;
    let card = h.enroll(PAN, MSISDN).await;
    let enrolled = h
        .core
        .tokens
        .enroll(
            card.id,
            &TokenRequest {
                kind: Some(kind),
                suite,
                serial: Some("HW-0001"),
                secret: Some(SECRET_HEX),
                ..TokenRequest::default()
            },
            "test",
        )
        .await
        .expect("token enrolled");
    assert!(
        enrolled.activation_part.is_none(),
        "hardware: active at once"
    );
    let key = h.verifier().await;
    (h, key, enrolled.token_id)
}

/// One move of a window scenario: the clock moves on (ms), or the code of step
/// `step0() + n` is presented under a request id, with the verdict and the attempts
/// left it must get.
enum Move {
    Wait(i64),
    Code(u64, &'static str, Verdict, Option<i64>),
}
use Move::{Code, Wait};

/// Plays `moves` on a core with `window_steps` and a hardware TOTP token on its card
/// (active at once, 6 digits, 30 s steps, SHA-1).
async fn play(scenario: &str, window_steps: u32, moves: &[Move]) {
    let (h, key, _) = hardware(window_steps, TokenKind::Totp, None).await;
    let s0 = step0();
    for m in moves {
        match *m {
            Wait(ms) => h.advance_ms(ms),
            Code(n, id, verdict, left) => {
                let v = h.verify(key, PAN, &code(s0 + n), id).await;
                assert_eq!(
                    (v.verdict, v.attempts_left),
                    (verdict, left),
                    "{scenario}: {id}"
                );
            }
        }
    }
}

/// Where the window of steps reaches, each scenario on a core of its own: its
/// name, `[tokens] window_steps`, and its moves.
const WINDOW: &[(&str, u32, &[Move])] = &[
    // The code of the step the clock is in verifies at any moment of that step,
    // once: replayed in the same step (or later) it is `used`, which is not a
    // failure; the next step's code verifies.
    (
        "a step code verifies once within its step",
        1,
        &[
            Code(0, "first", APPROVED, None),
            Wait(29_999),
            Code(0, "replay", USED, Some(3)),
            Wait(1), // the old code is still within the window, and still used
            Code(0, "late", USED, Some(3)),
            Code(1, "next", APPROVED, None),
        ],
    ),
    // A slow customer: with a window of one step, the previous step's code still
    // verifies...
    (
        "one step late is in the window",
        1,
        &[Wait(30_000 + 29_999), Code(0, "one-late", APPROVED, None)],
    ),
    // ...the one before does not, and counts as a wrong code; the step the clock
    // is in still verifies.
    (
        "two steps late is outside",
        1,
        &[
            Wait(60_000), // step s0 + 2
            Code(0, "two-late", INVALID, Some(2)),
            Code(2, "now", APPROVED, None),
        ],
    ),
    // Early codes (a token whose clock runs fast) are refused beyond the window
    // as well.
    (
        "early codes beyond the window are refused",
        1,
        &[
            Code(2, "early2", INVALID, Some(2)),
            Code(1, "early1", APPROVED, None),
        ],
    ),
    // `[tokens] window_steps` sets how far either way. Once a late code verified,
    // the window follows the drift the token showed (two steps slow): now's step
    // is at its edge, and three steps past now is beyond it.
    (
        "two steps either way",
        2,
        &[
            Wait(60_000), // step s0 + 2: within two steps
            Code(0, "two-late", APPROVED, None),
            Wait(30_000), // step s0 + 3: the step already accepted
            Code(0, "three-late", USED, Some(3)),
            Code(6, "early3", INVALID, Some(2)),
            Code(3, "now", APPROVED, None),
        ],
    ),
];

#[tokio::test]
async fn the_window_of_steps_reaches_as_far_as_window_steps() {
    assert_eq!(
        params().step_at(START + 29_999),
        step0(),
        "START opens a step"
    );
    for (scenario, window_steps, moves) in WINDOW {
        play(scenario, *window_steps, moves).await;
    }
}

/// A token whose clock runs three minutes fast: its codes are outside the
/// window until an administrator resyncs it from two consecutive codes; then the
/// window follows it, the two codes given are spent, and it stays followed as
/// the clock moves.
#[tokio::test]
async fn a_resync_moves_the_window_to_the_tokens_clock() {
    let (h, key, token) = hardware(1, TokenKind::Totp, None).await;
    let s0 = step0();
    let fast = h.verify(key, PAN, &code(s0 + 6), "fast").await;
    assert_eq!(fast.verdict, INVALID, "six steps ahead");
    let synced = h
        .core
        .tokens
        .resync(token, &code(s0 + 5), &code(s0 + 6), "admin")
        .await
        .expect("two consecutive codes near now");
    assert_eq!(synced.drift, 6);
    let spent = h.verify(key, PAN, &code(s0 + 6), "spent").await;
    assert_eq!(
        spent.verdict, USED,
        "the resync's codes do not verify again"
    );
    let v = h.verify(key, PAN, &code(s0 + 7), "next").await;
    assert_eq!(v.verdict, Verdict::Approved);
    h.advance_ms(60_000); // two steps on: the token is at s0 + 8
    let v = h.verify(key, PAN, &code(s0 + 8), "later").await;
    assert_eq!(v.verdict, Verdict::Approved);
    let v = h.verify(key, PAN, &code(s0 + 2), "server-time").await;
    assert_eq!(
        v.verdict, USED,
        "a step the token passed before its last accepted one: a replay, not counted"
    );
}

/// `OCRA-1:HOTP-SHA1-6:QN08-T1M`: the response over the challenge issued for a
/// payment, in now's minute, verifies once, for that payment only; one from two
/// minutes ago does not. A spent challenge approves nothing more: the next payment
/// (even the same one) takes a new challenge. An unspent one past `[tokens]
/// challenge_ttl_secs` is `expired`, not counted.
#[tokio::test]
async fn a_time_stepped_ocra_response_answers_its_payment_in_its_minute() {
    let suite_text = "OCRA-1:HOTP-SHA1-6:QN08-T1M";
    let (h, key, _) = hardware(1, TokenKind::Ocra, Some(suite_text)).await;
    let suite = ocra::Suite::parse(suite_text).expect("a valid suite");
    let pay = Transaction::new("purchase", 1_500_000, "IRR", "Digikala").expect("a payment");
    let other = Transaction::new("purchase", 1_500_001, "IRR", "Digikala").expect("a payment");
    let issue = || {
        let (core, pay) = (h.core.clone(), pay.clone());
        async move {
            core.verify
                .issue_challenge(key, &pay)
                .await
                .expect("a challenge")
        }
    };
    let response = |challenge: &str, minute: u64| {
        ocra::response(
            &suite,
            SECRET,
            &ocra::Input {
                question: challenge,
                time_step: Some(minute),
                ..ocra::Input::default()
            },
        )
        .expect("a response")
    };
    let verify = |code: String, txn: &Transaction, challenge_id: i64, id: &'static str| {
        let core = h.core.clone();
        let txn = txn.clone();
        async move {
            let factors = Factors {
                transaction: Some(&txn),
                epin: None,
                challenge_id: Some(challenge_id),
            };
            core.verify
                .verify(key, &card(PAN), &code, id, factors)
                .await
                .expect("a verdict")
                .verdict
        }
    };
    let m0 = suite.step_at(START).expect("a time-stepped suite");
    let first = issue().await;
    let at = |minute| response(&first.challenge, minute);
    assert_eq!(verify(at(m0 - 2), &pay, first.id, "old").await, INVALID);
    assert_eq!(verify(at(m0), &other, first.id, "other").await, INVALID);
    assert_eq!(
        verify(at(m0), &pay, first.id, "now").await,
        Verdict::Approved
    );
    assert_eq!(verify(at(m0), &pay, first.id, "again").await, USED);
    h.advance_ms(60_000);
    assert_eq!(
        verify(at(m0 + 1), &pay, first.id, "spent").await,
        USED,
        "a spent challenge approves nothing more"
    );
    let second = issue().await;
    assert_ne!(second.challenge, first.challenge, "digits are unique");
    let code = response(&second.challenge, m0 + 1);
    assert_eq!(
        verify(code, &pay, second.id, "next").await,
        Verdict::Approved
    );
    let third = issue().await;
    h.advance_ms(300_000);
    let now_minute = suite.step_at(START + 360_000).expect("a step");
    let code = response(&third.challenge, now_minute);
    assert_eq!(
        verify(code, &pay, third.id, "late").await,
        Verdict::Rejected(Reason::Expired),
        "past challenge_ttl_secs"
    );
}

/// Codes from the future walk the drift out one step per verify (7 of them moved
/// it +7): the token's real code is then a replay (`used`, not counted) until the
/// clock passes the walked steps, and verifies again after, with the drift back.
#[tokio::test]
async fn future_codes_cannot_make_the_real_code_a_counted_failure() {
    let (h, key, _) = hardware(1, TokenKind::Totp, None).await;
    let s0 = step0();
    for ahead in 1..=7 {
        let v = h
            .verify(key, PAN, &code(s0 + ahead), &format!("walk-{ahead}"))
            .await;
        assert_eq!(v.verdict, Verdict::Approved, "step +{ahead}");
    }
    let v = h.verify(key, PAN, &code(s0), "real").await;
    assert_eq!((v.verdict, v.attempts_left), (USED, Some(3)), "not counted");
    h.advance_ms(8 * 30_000);
    let v = h.verify(key, PAN, &code(s0 + 8), "real-later").await;
    assert_eq!(
        v.verdict,
        Verdict::Approved,
        "now's own step, past the walk"
    );
    h.advance_ms(30_000);
    let v = h.verify(key, PAN, &code(s0 + 9), "and-after").await;
    assert_eq!(v.verdict, Verdict::Approved, "the drift came back to 0");
}
