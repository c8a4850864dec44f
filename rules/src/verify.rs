//! The verification decision for SMS and USSD codes: given the card under lock, its
//! latest code and what the verify presented (as hashes, never values), the verdict
//! and the one effect the store applies in the same transaction. Pure: the store
//! runs it inside its transaction, the tests run it over tables.

use crate::codes::hashes_equal;
use crate::vocab::{CardStatus, CodeState, Reason, Verdict};

/// The latest code of a card, as the verification rule sees it.
#[derive(Debug, Clone)]
pub struct LatestCode {
    pub id: i64,
    pub code_hash: String,
    pub state: CodeState,
    pub expires_at: i64,
    pub txn_hash: Option<String>,
    pub cap: Option<i64>,
}

/// The card row under lock during a verification.
#[derive(Debug, Clone)]
pub struct LockedCard {
    pub id: i64,
    pub status: CardStatus,
    pub failures: i64,
    /// The ePIN hash the card holds now (the core checked the candidate against a
    /// hash it read before the transaction; the two must be the same).
    pub epin_hash: Option<String>,
}

/// What the verification rule decided; the store applies it in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    /// Approve: mark this live code used and reset the failure count.
    UseCode(i64),
    /// The code matched but its time is up.
    ExpireCode(i64),
    /// A wrong code: one more consecutive failure; at the limit the card locks.
    CountFailure,
    /// Approve a token's code: remember its step (the replay rule), drift and, for
    /// OCRA without a time step, the payment answered; reset the failure count.
    UseToken(TokenUse),
}

/// What an approved token code leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUse {
    pub token_id: i64,
    pub step: Option<i64>,
    pub drift: i64,
    pub txn_hash: Option<String>,
}

/// What a verify request presented, reduced to what the rule compares: hashes and
/// an amount, never the values themselves.
pub struct Presented {
    /// HMAC of the candidate code; `None` when it is not digits.
    pub candidate: Option<String>,
    /// The card's ePIN hash the presented ePIN matched, if it did.
    pub epin_matched: Option<String>,
    /// HMAC of the presented transaction.
    pub txn_hash: Option<String>,
    /// The transaction's amount in whole units of the cap currency.
    pub cap_amount: Option<i64>,
    pub require_transaction: bool,
}

/// The verification rule. Runs inside the store's transaction with the card locked.
/// Only a wrong factor counts as a failure: a right code that is used or expired
/// shows the customer had it, and a locked card is answered without comparing
/// anything. A wrong ePIN is a wrong code: one failure, the same answer.
pub fn decide(
    card: &LockedCard,
    latest: Option<&LatestCode>,
    presented: &Presented,
    now: i64,
) -> (Verdict, Effect) {
    match card.status {
        CardStatus::Active => {}
        CardStatus::Pending => return (Verdict::Rejected(Reason::NotActivated), Effect::None),
        // The store finds no closed card by its number; should one reach here, it is
        // as if nothing were enrolled.
        CardStatus::Closed => return (Verdict::Rejected(Reason::NotEnrolled), Effect::None),
        CardStatus::Locked | CardStatus::Suspended => {
            return (Verdict::Rejected(Reason::Locked), Effect::None)
        }
    }
    let epin_ok = match &card.epin_hash {
        None => true,
        Some(h) => presented.epin_matched.as_deref() == Some(h.as_str()),
    };
    let candidate = presented.candidate.as_deref().filter(|_| epin_ok);
    let matched = match (latest, candidate) {
        (Some(code), Some(candidate)) if hashes_equal(&code.code_hash, candidate) => code,
        // A wrong code is a guess only while a code is live: then it counts toward the
        // lock. With no live code there is nothing to guess, and counting would let
        // anyone who knows a card number lock it (the attempt is still audited).
        (Some(code), _) if code.state == CodeState::Live && now < code.expires_at => {
            return (Verdict::Rejected(Reason::Invalid), Effect::CountFailure)
        }
        _ => return (Verdict::Rejected(Reason::Invalid), Effect::None),
    };
    match matched.state {
        CodeState::Live if now < matched.expires_at => {}
        CodeState::Live => {
            return (
                Verdict::Rejected(Reason::Expired),
                Effect::ExpireCode(matched.id),
            )
        }
        CodeState::Used => return (Verdict::Rejected(Reason::Used), Effect::None),
        // expired, or voided by a lock or suspension: the customer must ask again.
        _ => return (Verdict::Rejected(Reason::Expired), Effect::None),
    }
    // The right code, live: now the payment it was issued for.
    match (&matched.txn_hash, &presented.txn_hash) {
        (Some(bound), Some(given)) if hashes_equal(bound, given) => {}
        (Some(_), _) => {
            return (
                Verdict::Rejected(Reason::TransactionMismatch),
                Effect::CountFailure,
            )
        }
        (None, _) if presented.require_transaction => {
            return (Verdict::Rejected(Reason::TransactionRequired), Effect::None)
        }
        (None, _) => {}
    }
    if let Some(cap) = matched.cap {
        match presented.cap_amount {
            None => return (Verdict::Rejected(Reason::TransactionRequired), Effect::None),
            Some(amount) if amount > cap => {
                return (
                    Verdict::Rejected(Reason::AmountExceedsCap),
                    Effect::CountFailure,
                )
            }
            Some(_) => {}
        }
    }
    (Verdict::Approved, Effect::UseCode(matched.id))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn card(status: CardStatus) -> LockedCard {
        LockedCard {
            id: 1,
            status,
            failures: 0,
            epin_hash: None,
        }
    }

    pub(crate) fn plain(candidate: Option<&str>) -> Presented {
        Presented {
            candidate: candidate.map(str::to_owned),
            epin_matched: None,
            txn_hash: None,
            cap_amount: None,
            require_transaction: false,
        }
    }

    /// When every test code expires.
    const EXPIRES: i64 = 60_000;

    fn code(state: &str) -> LatestCode {
        LatestCode {
            id: 7,
            code_hash: "h".into(),
            state: CodeState::parse(state).unwrap(),
            expires_at: EXPIRES,
            txn_hash: None,
            cap: None,
        }
    }

    fn approved() -> (Verdict, Effect) {
        (Verdict::Approved, Effect::UseCode(7))
    }

    fn rejected(reason: Reason, effect: Effect) -> (Verdict, Effect) {
        (Verdict::Rejected(reason), effect)
    }

    /// A row of the decision table: the latest code's state, the candidate's hash,
    /// the time and the decision.
    type Case<'a> = (&'a str, Option<&'a str>, i64, (Verdict, Effect));

    #[test]
    fn decision_table() {
        use Effect::{CountFailure, ExpireCode};
        use Reason::*;
        // Rows for an active card and its latest code's state: every other card
        // status is answered before any code.
        let cases: &[Case<'_>] = &[
            ("live", Some("h"), EXPIRES - 1, approved()),
            // Exactly at expiry the code is dead.
            ("live", Some("h"), EXPIRES, rejected(Expired, ExpireCode(7))),
            ("live", Some("x"), 0, rejected(Invalid, CountFailure)),
            ("live", None, 0, rejected(Invalid, CountFailure)),
            // No code live: rejected, not counted.
            ("live", Some("x"), EXPIRES, rejected(Invalid, Effect::None)),
            ("used", Some("x"), 0, rejected(Invalid, Effect::None)),
            ("expired", None, 0, rejected(Invalid, Effect::None)),
            ("used", Some("h"), 0, rejected(Used, Effect::None)),
            ("expired", Some("h"), 0, rejected(Expired, Effect::None)),
            ("failed", Some("h"), 0, rejected(Expired, Effect::None)),
        ];
        let active = card(CardStatus::Active);
        for (state, candidate, now, expected) in cases {
            assert_eq!(
                &decide(&active, Some(&code(state)), &plain(*candidate), *now),
                expected,
                "{state} {candidate:?} at {now}"
            );
        }
        // No code ever issued: rejected, not counted either.
        assert_eq!(
            decide(&active, None, &plain(Some("h")), 0),
            rejected(Invalid, Effect::None)
        );
        for (status, reason) in [
            (CardStatus::Locked, Locked),
            (CardStatus::Suspended, Locked),
            (CardStatus::Pending, NotActivated),
        ] {
            assert_eq!(
                decide(&card(status), Some(&code("live")), &plain(Some("h")), 0),
                rejected(reason, Effect::None)
            );
        }
    }

    #[test]
    fn policy_decision_table() {
        use Reason::*;
        let live = |txn: Option<&str>, cap: Option<i64>| LatestCode {
            txn_hash: txn.map(str::to_owned),
            cap,
            ..code("live")
        };
        let with_epin = LockedCard {
            epin_hash: Some("E".into()),
            ..card(CardStatus::Active)
        };
        let p =
            |epin: Option<&str>, txn: Option<&str>, amount: Option<i64>, require: bool| Presented {
                epin_matched: epin.map(str::to_owned),
                txn_hash: txn.map(str::to_owned),
                cap_amount: amount,
                require_transaction: require,
                ..plain(Some("h"))
            };
        let active = card(CardStatus::Active);
        let cases: Vec<(&LockedCard, LatestCode, Presented, (Verdict, Effect))> = vec![
            // ePIN: right code and right ePIN; a wrong or missing ePIN is a wrong code.
            (
                &with_epin,
                live(None, None),
                p(Some("E"), None, None, false),
                approved(),
            ),
            (
                &with_epin,
                live(None, None),
                p(None, None, None, false),
                rejected(Invalid, Effect::CountFailure),
            ),
            (
                &with_epin,
                live(None, None),
                p(Some("old"), None, None, false),
                rejected(Invalid, Effect::CountFailure),
            ),
            (
                &with_epin,
                live(None, None),
                Presented {
                    candidate: Some("x".into()),
                    ..p(Some("E"), None, None, false)
                },
                rejected(Invalid, Effect::CountFailure),
            ),
            // A wrong ePIN says nothing about a used code either.
            (
                &with_epin,
                code("used"),
                p(None, None, None, false),
                rejected(Invalid, Effect::None),
            ),
            // Bound to a payment: the same one approves; another, or none, is a counted mismatch.
            (
                &active,
                live(Some("T"), None),
                p(None, Some("T"), None, false),
                approved(),
            ),
            (
                &active,
                live(Some("T"), None),
                p(None, Some("U"), None, false),
                rejected(TransactionMismatch, Effect::CountFailure),
            ),
            (
                &active,
                live(Some("T"), None),
                p(None, None, None, false),
                rejected(TransactionMismatch, Effect::CountFailure),
            ),
            // Unbound: any payment, unless the bank requires binding.
            (
                &active,
                live(None, None),
                p(None, Some("T"), None, false),
                approved(),
            ),
            (
                &active,
                live(None, None),
                p(None, Some("T"), Some(5), true),
                rejected(TransactionRequired, Effect::None),
            ),
            // The customer's cap.
            (
                &active,
                live(None, Some(100)),
                p(None, Some("T"), Some(100), false),
                approved(),
            ),
            (
                &active,
                live(None, Some(100)),
                p(None, Some("T"), Some(101), false),
                rejected(AmountExceedsCap, Effect::CountFailure),
            ),
            (
                &active,
                live(None, Some(100)),
                p(None, None, None, false),
                rejected(TransactionRequired, Effect::None),
            ),
        ];
        for (i, (card, latest, presented, expected)) in cases.into_iter().enumerate() {
            assert_eq!(
                decide(card, Some(&latest), &presented, 0),
                expected,
                "case {i}"
            );
        }
    }
}
