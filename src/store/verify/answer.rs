//! What both forms of the verification (the statement path, and SQLite's two
//! calls) share: the attempt as the writer owns it, the card as the verification
//! left it, the answer recorded under the caller's `request_id`.

use sqlx::{AnyConnection, Row};

use crate::core::ports::VerifyRecord;
use crate::store::error::StoreError;
use otpgw_rules::verify::LatestCode;
use otpgw_rules::vocab::{CardStatus, CodeState, Verdict};

/// A `VerifyAttempt` the writer can own.
pub(super) struct Attempt {
    pub api_key_id: i64,
    pub request_id: String,
    pub fingerprint: String,
    pub pan_hash: String,
    pub now: i64,
    pub max_failures: i64,
    pub lock_ms: Option<i64>,
    pub actor: String,
}

/// What the verification answers and records, from the verdict and the card as
/// the verification left it.
pub(super) struct Answer {
    pub result: &'static str,
    pub reason: Option<&'static str>,
    /// Attempts left before the lock (after this one), for the switch to warn.
    pub attempts_left: Option<i64>,
    /// Whether and when a lock ends.
    pub lock: Option<Option<i64>>,
}

impl Answer {
    pub fn new(verdict: Verdict, card_id: Option<i64>, after: &After, a: &Attempt) -> Self {
        let (result, reason) = match verdict {
            Verdict::Approved => ("approved", None),
            Verdict::Rejected(r) => ("rejected", Some(r.as_str())),
        };
        // What the switch may tell the customer: attempts left before the lock (after
        // this one; unchanged by a rejection that does not count, 0 while the card is
        // locked or suspended). Every rejection of an enrolled card carries it; with
        // no card (not_enrolled) there is nothing to count.
        let rejected = matches!(verdict, Verdict::Rejected(_));
        let attempts_left = (card_id.is_some() && rejected).then(|| match after.status {
            Some(CardStatus::Locked | CardStatus::Suspended) => 0,
            _ => a.max_failures.saturating_sub(after.failures).max(0),
        });
        let lock = (card_id.is_some() && after.status == Some(CardStatus::Locked))
            .then_some(after.locked_until);
        Self {
            result,
            reason,
            attempts_left,
            lock,
        }
    }

    /// The `verified` audit event's detail.
    pub fn event(&self, a: &Attempt, after: &After) -> serde_json::Value {
        serde_json::json!({"result": self.result, "reason": self.reason, "request_id": a.request_id,
            "attempts_left": self.attempts_left, "counted": after.counted, "token_id": after.token_id})
    }

    pub fn record(
        self,
        verdict: Verdict,
        card_id: Option<i64>,
        a: &Attempt,
        after: &After,
    ) -> VerifyRecord {
        VerifyRecord {
            verdict,
            card_id,
            fingerprint: a.fingerprint.clone(),
            locked_now: after.locked_now,
            attempts_left: self.attempts_left,
            lock: self.lock,
            replayed: false,
        }
    }
}

/// The latest code made of a row: one mapping for sqlx's rows and rusqlite's.
macro_rules! latest_of {
    ($row:expr) => {{
        let r = $row;
        let state: String = r.try_get("state")?;
        Ok::<_, StoreError>(LatestCode {
            id: r.try_get("id")?,
            code_hash: r.try_get("code_hash")?,
            state: CodeState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("code state {state}")))?,
            expires_at: r.try_get("expires_at")?,
            txn_hash: r.try_get("txn_hash")?,
            cap: r.try_get("cap")?,
        })
    }};
}
pub(super) use latest_of;

pub(super) fn latest_from_row(r: &sqlx::any::AnyRow) -> Result<LatestCode, StoreError> {
    latest_of!(r)
}

/// The card as the verification left it.
#[derive(Default)]
pub(super) struct After {
    pub status: Option<CardStatus>,
    pub failures: i64,
    /// This verification counted a failure toward the lock (the console says so).
    pub counted: bool,
    pub locked_until: Option<i64>,
    pub locked_now: bool,
    /// The token whose code was approved.
    pub token_id: Option<i64>,
}

/// An approved code or token code ends the run of failures.
pub(super) async fn reset_failures(
    conn: &mut AnyConnection,
    card_id: i64,
    now: i64,
    after: &mut After,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE cards SET failures = 0, updated_at = $2 WHERE id = $1")
        .bind(card_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    after.failures = 0;
    Ok(())
}
