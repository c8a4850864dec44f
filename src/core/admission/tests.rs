//! This node's limiters on governor's fake clock.

use governor::clock::FakeRelativeClock;

use super::*;

/// The defaults (3/min and 10/h per number, 1 per 10 s per card), a small guard,
/// and the fake clock they run on, for the test to move.
fn limits() -> (FakeRelativeClock, Limits<FakeRelativeClock>) {
    let clock = FakeRelativeClock::default();
    let settings = LimitSettings {
        guard_max_failures: 5,
        guard_window_secs: 60,
        guard_cooldown_secs: 300,
        ..LimitSettings::default()
    };
    let limits = Limits::with_clock(&settings, &[], clock.clone());
    (clock, limits)
}

#[test]
fn a_flood_of_distinct_numbers_cannot_grow_the_maps_past_their_cap() {
    let (clock, l) = limits();
    let l = l.with_max_keys(100);
    let admitted = (0..1_000)
        .filter(|i| l.admit_msisdn(&format!("98912{i:07}")) == Admit::Allow)
        .count();
    assert_eq!(admitted, 100, "new numbers past the cap are refused");
    assert!(l.msisdn.iter().all(|m| m.len() <= 100));
    // Once the old keys have gone idle, new numbers get in again.
    clock.advance(Duration::from_secs(3600));
    assert_eq!(l.admit_msisdn("989129999999"), Admit::Allow);
}

#[test]
fn a_burst_gets_its_quota_one_notice_then_silence_then_service_again() {
    let (clock, l) = limits();
    let got: Vec<Admit> = (0..6).map(|_| l.admit_msisdn("98912")).collect();
    assert_eq!(&got[..3], &[Admit::Allow; 3]);
    assert!(
        matches!(got[3], Admit::Notify { rule: "msisdn", retry_after } if retry_after <= Duration::from_secs(20))
    );
    assert_eq!(&got[4..], &[Admit::Silent { rule: "msisdn" }; 2]);
    // Another number is not affected.
    assert_eq!(l.admit_msisdn("98913"), Admit::Allow);
    clock.advance(Duration::from_secs(60));
    assert_eq!(l.admit_msisdn("98912"), Admit::Allow);
}

#[test]
fn the_hourly_window_holds_after_the_minute_refills() {
    let (clock, l) = limits();
    let mut allowed = 0;
    for _ in 0..30 {
        for _ in 0..3 {
            if l.admit_msisdn("98912") == Admit::Allow {
                allowed += 1;
            }
        }
        clock.advance(Duration::from_secs(60));
    }
    // 30 minutes: the hourly quota (10 at once, one more every 6 min) caps it.
    assert!((10..=16).contains(&allowed), "{allowed}");
}

#[test]
fn one_code_per_card_interval() {
    let (clock, l) = limits();
    assert_eq!(l.admit_card("98912", 1), Admit::Allow);
    assert!(matches!(
        l.admit_card("98912", 1),
        Admit::Notify { rule: "card", .. }
    ));
    assert_eq!(l.admit_card("98912", 2), Admit::Allow);
    clock.advance(Duration::from_secs(10));
    assert_eq!(l.admit_card("98912", 1), Admit::Allow);
}

#[test]
fn the_guard_trips_once_and_holds_for_the_cooldown() {
    let (clock, l) = limits();
    let trips: Vec<bool> = (0..8).map(|_| l.record_verify_failure(7)).collect();
    assert_eq!(
        trips,
        [false, false, false, false, false, true, false, false]
    );
    let refused = l.admit_verify(7).unwrap_err();
    assert_eq!(refused.rule, "guard");
    assert!(l.admit_verify(8).is_ok(), "other keys are not affected");
    clock.advance(Duration::from_secs(301));
    assert!(l.admit_verify(7).is_ok());
}

/// One key's wrong codes for one card are limited per window: past the limit
/// its verifies for that card are refused until the window ends; other cards
/// and other keys are not affected.
#[test]
fn wrong_codes_per_key_and_card_are_limited() {
    let clock = FakeRelativeClock::default();
    let settings = LimitSettings {
        card_failures_per_key: 3,
        card_failures_window_secs: 3600,
        ..LimitSettings::default()
    };
    let l = Limits::with_clock(&settings, &[], clock.clone());
    for _ in 0..3 {
        assert!(l.admit_card_guess(7, "card-a").is_ok());
        l.record_card_failure(7, "card-a");
    }
    assert!(l.admit_card_guess(7, "card-a").is_ok(), "three are allowed");
    l.record_card_failure(7, "card-a");
    let refused = l.admit_card_guess(7, "card-a").unwrap_err();
    assert_eq!(refused.rule, "card_failures_per_key");
    assert!(refused.retry_after <= Duration::from_secs(3600));
    assert!(
        l.admit_card_guess(7, "card-b").is_ok(),
        "other cards are not affected"
    );
    assert!(
        l.admit_card_guess(8, "card-a").is_ok(),
        "other keys are not affected"
    );
    clock.advance(Duration::from_secs(3601));
    l.housekeeping();
    assert!(l.admit_card_guess(7, "card-a").is_ok());
}

/// Issue 23 (medium): 200,000 distinct unknown senders took 1.43 GB. What each one
/// leaves behind is a fixed number of limiter keys (its windows and its notice),
/// never more however many come; a full table refuses new numbers instead of
/// growing; and a window's keys are gone once it has passed.
#[test]
fn unknown_senders_memory_is_bounded_per_sender() {
    let (clock, l) = limits();
    let senders = 5_000;
    for i in 0..senders {
        let number = format!("98935{i:07}");
        assert_eq!(l.admit_msisdn(&number), Admit::Allow);
        assert!(l.notify_unknown_sender(&number), "one notice each");
    }
    // Two windows and the unknown-sender limiter: three keys a sender.
    assert_eq!(l.number_keys(), 3 * senders);
    // The same senders again add nothing (their second message is silent).
    for i in 0..senders {
        assert!(!l.notify_unknown_sender(&format!("98935{i:07}")));
    }
    assert_eq!(l.number_keys(), 3 * senders);
    // Every window has passed (governor keeps a key one interval more, here an
    // hour): the sweep forgets them all.
    clock.advance(Duration::from_secs(2 * 3600 + 1));
    l.housekeeping();
    assert_eq!(l.number_keys(), 0);
    // With a cap, a flood cannot grow any table past it.
    let l = l.with_max_keys(1_000);
    for i in 0..senders {
        let number = format!("98936{i:07}");
        let _ = l.admit_msisdn(&number);
        let _ = l.notify_unknown_sender(&number);
    }
    assert!(l.number_keys() <= 3 * 1_000, "{}", l.number_keys());
}
