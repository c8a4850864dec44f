//! Issuance limit windows on the core's clock: per customer number (a minute's
//! and an hour's window), per card, and the unknown sender's notice. Over a limit
//! the customer is told once when to come back, then gets silence; once the
//! window has moved on, codes come again.

use otpgw::config::Rate;
use otpgw_rules::texts::ReplyKind;
use otpgw_rules::vocab::Language;

use crate::support::{core_with, Harness, MSISDN, PAN, PAN_2};

/// What the customer gets for one message: a code, a notice (with its text), or
/// nothing.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    Code,
    Notice(String),
    Other(ReplyKind),
    Nothing,
}

async fn ask(h: &Harness, from: &str, text: &str) -> Got {
    match h.sms(from, text).await {
        None => Got::Nothing,
        Some(r) if r.kind == ReplyKind::Code => {
            assert!(r.code_id.is_some());
            Got::Code
        }
        // Notices hold no code: their text may be shown.
        Some(r) if r.kind == ReplyKind::Limited => Got::Notice(r.text),
        Some(r) => Got::Other(r.kind),
    }
}

fn notice(secs: u64) -> Got {
    Got::Notice(format!("Too many requests. Try again in {secs} seconds."))
}

/// A burst the per-number minute allows: three codes in a row for `PAN`.
async fn three_codes(h: &Harness) {
    for _ in 0..3 {
        assert_eq!(ask(h, MSISDN, "4321").await, Got::Code);
    }
}

fn english(s: &mut otpgw::config::Settings) {
    s.service.language = Language::En;
}

/// The defaults (3 a minute, 10 an hour per number) with the per-card interval
/// out of the way.
async fn per_number() -> Harness {
    let h = core_with(|s| {
        english(s);
        s.limits.card = Rate {
            count: 1000,
            per_secs: 1,
        };
    })
    .await;
    h.enroll(PAN, MSISDN).await;
    h
}

/// Three codes in a minute; the fourth request gets one "try later" notice and
/// further ones nothing; one request's worth comes back after 20 s (3 per 60 s,
/// refilled evenly), a full burst after the minute.
#[tokio::test]
async fn the_fourth_request_in_a_minute_gets_one_notice_then_silence() {
    let h = per_number().await;
    three_codes(&h).await;
    assert_eq!(ask(&h, MSISDN, "4321").await, notice(20));
    assert_eq!(ask(&h, MSISDN, "4321").await, Got::Nothing);
    assert_eq!(ask(&h, MSISDN, "help").await, Got::Nothing, "any message");
    // Another number is not affected.
    assert_eq!(
        ask(&h, "989121110099", "help").await,
        Got::Other(ReplyKind::Help)
    );
    h.at(19_999);
    assert_eq!(ask(&h, MSISDN, "4321").await, Got::Nothing, "not yet");
    h.at(20_000);
    assert_eq!(ask(&h, MSISDN, "4321").await, Got::Code, "one came back");
    assert_eq!(
        ask(&h, MSISDN, "4321").await,
        Got::Nothing,
        "over again, but told already"
    );
    // The window moves on: a full minute after the last code, a full burst.
    h.at(80_000);
    three_codes(&h).await;
    assert_eq!(ask(&h, MSISDN, "4321").await, Got::Nothing);
}

/// The notice itself comes once per window: the longest of the number's windows
/// (an hour by default), whichever limit was hit.
#[tokio::test]
async fn the_notice_comes_again_once_its_window_has_passed() {
    let h = per_number().await;
    three_codes(&h).await;
    assert_eq!(ask(&h, MSISDN, "4321").await, notice(20));
    h.at(3_599_999);
    three_codes(&h).await;
    assert_eq!(
        ask(&h, MSISDN, "4321").await,
        Got::Nothing,
        "within the hour"
    );
    h.at(3_600_000 + 60_000);
    three_codes(&h).await;
    assert_eq!(ask(&h, MSISDN, "4321").await, notice(20), "a new hour");
}

/// The hour's window (10 per hour, one back every 6 minutes) holds when the
/// minute's would allow.
#[tokio::test]
async fn the_hourly_window_holds_when_the_minute_allows() {
    let h = per_number().await;
    for minute in 0..3 {
        h.at(minute * 60_000);
        three_codes(&h).await;
    }
    h.at(180_000);
    assert_eq!(ask(&h, MSISDN, "4321").await, Got::Code, "the tenth");
    assert_eq!(ask(&h, MSISDN, "4321").await, notice(180), "the eleventh");
    assert_eq!(ask(&h, MSISDN, "4321").await, Got::Nothing);
    h.at(359_999);
    assert_eq!(ask(&h, MSISDN, "4321").await, Got::Nothing);
    h.at(360_000);
    assert_eq!(ask(&h, MSISDN, "4321").await, Got::Code);
}

/// One code per card per 10 s (the default): a second request within the
/// interval gets the notice, then silence; another card of the same number is
/// not held; at 10 s the card gets a code again.
#[tokio::test]
async fn the_card_interval_gives_one_code_per_ten_seconds() {
    let h = core_with(|s| {
        english(s);
        s.limits.msisdn = vec![Rate {
            count: 1000,
            per_secs: 60,
        }];
    })
    .await;
    h.enroll(PAN, MSISDN).await;
    h.enroll(PAN_2, MSISDN).await;
    assert_eq!(ask(&h, MSISDN, "4321").await, Got::Code);
    assert_eq!(ask(&h, MSISDN, "2468").await, Got::Code, "another card");
    h.at(4_000);
    assert_eq!(ask(&h, MSISDN, "4321").await, notice(6));
    assert_eq!(ask(&h, MSISDN, "4321").await, Got::Nothing);
    assert_eq!(ask(&h, MSISDN, "2468").await, Got::Nothing, "told already");
    h.at(9_999);
    assert_eq!(ask(&h, MSISDN, "4321").await, Got::Nothing);
    h.at(10_000);
    assert_eq!(ask(&h, MSISDN, "4321").await, Got::Code);
    assert_eq!(ask(&h, MSISDN, "2468").await, Got::Code);
    // Over again within the notice's window (60 s here): silence.
    assert_eq!(ask(&h, MSISDN, "4321").await, Got::Nothing);
    h.at(64_000);
    assert_eq!(ask(&h, MSISDN, "4321").await, Got::Code);
    assert_eq!(ask(&h, MSISDN, "4321").await, notice(10), "a new window");
}

/// An unknown number gets "not registered" once per window (an hour by
/// default), then nothing; each unknown number has its own window.
#[tokio::test]
async fn an_unknown_sender_is_told_once_per_window() {
    let h = core_with(english).await;
    let stranger = "989129990000";
    assert_eq!(
        ask(&h, stranger, "4321").await,
        Got::Other(ReplyKind::NotEnrolled)
    );
    assert_eq!(ask(&h, stranger, "4321").await, Got::Nothing);
    assert_eq!(ask(&h, stranger, "1234").await, Got::Nothing);
    assert_eq!(
        ask(&h, "989129990001", "4321").await,
        Got::Other(ReplyKind::NotEnrolled),
        "another number, its own notice"
    );
    h.at(3_599_999);
    assert_eq!(ask(&h, stranger, "4321").await, Got::Nothing);
    h.at(3_600_000);
    assert_eq!(
        ask(&h, stranger, "4321").await,
        Got::Other(ReplyKind::NotEnrolled)
    );
    assert_eq!(ask(&h, stranger, "4321").await, Got::Nothing);
}
