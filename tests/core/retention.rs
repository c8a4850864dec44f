//! The request_id memory on the moved clock: a verify's answer is kept for
//! `[service] verify_retention_days`, so a retry until then gets the first
//! answer (and a reuse for another request is refused); housekeeping after it
//! forgets the answer, and the id may then name a new request.

use otpgw::core::{CoreError, Factors};
use otpgw_rules::vocab::{Reason, Verdict};

use crate::support::{card, core_with, wrong, PAN};

const DAY_MS: i64 = 86_400_000;

#[tokio::test]
async fn a_request_id_is_remembered_for_the_retention_then_forgotten() {
    let h = core_with(|s| s.service.verify_retention_days = 2).await;
    let (key, _, code) = h.issued().await;
    let first = h.verify(key, PAN, &code, "r1").await;
    assert_eq!(first.verdict, Verdict::Approved);
    let reuse = || async {
        h.core
            .verify
            .verify(key, &card(PAN), &wrong(&code), "r1", Factors::default())
            .await
    };

    // Exactly two days old is not older than the retention.
    h.advance_ms(2 * DAY_MS);
    h.core.housekeeping().await;
    let retry = h.verify(key, PAN, &code, "r1").await;
    assert!(retry.replayed, "still remembered");
    assert_eq!(retry.verdict, Verdict::Approved, "the first answer");
    assert!(matches!(reuse().await, Err(CoreError::RequestIdReused)));

    h.advance_ms(1);
    h.core.housekeeping().await;
    let fresh = reuse().await.expect("a new decision");
    assert!(!fresh.replayed, "forgotten after two days");
    assert_eq!(fresh.verdict, Verdict::Rejected(Reason::Invalid));
}
