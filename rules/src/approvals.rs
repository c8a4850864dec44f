//! Two-person rules ("four eyes"): the console actions a bank may put under them
//! (`[console] four_eyes`), what becomes of a proposal, and who may approve one.
//! Pure: the core asks these and the store keeps the answers.
//!
//! A clerk is compared by `actor()` only (`operator:NAME`, `apikey:N`, or any way
//! in added later), so a new kind of clerk needs no change here.

use serde::{Deserialize, Serialize};

use crate::named;
use crate::vocab::Role;

/// An action that, when the bank lists it, one clerk proposes and another approves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guarded {
    /// Re-activating a card (a lock by failures, or an admin lifting a suspension).
    LiftLock,
    /// Creating an API key (the key is shown once, to the approver).
    ApikeyCreate,
    /// Giving a card a new phone number.
    PhoneChange,
    /// Closing a card.
    CardClose,
}

named!(Guarded { LiftLock = "lift_lock", ApikeyCreate = "apikey_create", PhoneChange = "phone_change", CardClose = "card_close" });

impl Guarded {
    /// Whether `role` may do this action itself (and so propose or approve it).
    /// The use case the approval runs checks the rest at that time (a help-desk
    /// clerk lifts only a lock by failures, never a suspension).
    pub fn may(self, role: Role) -> bool {
        match self {
            Guarded::LiftLock | Guarded::PhoneChange => {
                matches!(role, Role::Admin | Role::Helpdesk)
            }
            Guarded::ApikeyCreate | Guarded::CardClose => role == Role::Admin,
        }
    }
}

/// How a proposal ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A second clerk approved it and the action was done.
    Approved,
    /// A second clerk refused it, with a reason.
    Refused,
    /// Its proposer took it back.
    Withdrawn,
    /// Nobody decided within the bound; it can no longer be approved.
    Expired,
    /// It was approved, but the action was refused at that time (the card closed
    /// meanwhile, the number already changed).
    Failed,
}

named!(Outcome { Approved = "approved", Refused = "refused", Withdrawn = "withdrawn", Expired = "expired", Failed = "failed" });

/// Why a clerk may not approve (or refuse) a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotApprover {
    /// Four eyes means two people: the proposer never approves their own.
    #[error("the proposer cannot approve their own proposal")]
    Proposer,
    /// The approver must hold a role that may do the action itself.
    #[error("this role may not approve this action")]
    Role,
}

/// Whether the clerk named `approver` (an `actor()`) with `role` may approve a
/// proposal of `action` made by `proposer`: a different person holding a role
/// that may do the action.
pub fn may_approve(
    action: Guarded,
    proposer: &str,
    approver: &str,
    role: Role,
) -> Result<(), NotApprover> {
    if proposer == approver {
        return Err(NotApprover::Proposer);
    }
    if !action.may(role) {
        return Err(NotApprover::Role);
    }
    Ok(())
}

/// Whether a proposal made to expire at `expires_at` is still open at `now`.
pub fn open_at(expires_at: i64, now: i64) -> bool {
    now < expires_at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for g in Guarded::ALL {
            assert_eq!(Guarded::parse(g.as_str()), Some(*g));
        }
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(*o));
        }
        assert_eq!(Guarded::parse("lift-lock"), None);
    }

    #[test]
    fn who_may_approve() {
        use Guarded::*;
        use Role::*;
        let check = |action, proposer, approver, role, expected: Result<(), NotApprover>| {
            assert_eq!(
                may_approve(action, proposer, approver, role),
                expected,
                "{action:?} by {proposer} approved by {approver} ({role:?})"
            );
        };
        check(
            LiftLock,
            "operator:a",
            "operator:a",
            Admin,
            Err(NotApprover::Proposer),
        );
        check(LiftLock, "operator:a", "operator:b", Helpdesk, Ok(()));
        check(LiftLock, "operator:a", "apikey:3", Admin, Ok(()));
        check(PhoneChange, "operator:a", "operator:b", Helpdesk, Ok(()));
        check(
            PhoneChange,
            "operator:a",
            "operator:b",
            Verifier,
            Err(NotApprover::Role),
        );
        check(
            CardClose,
            "operator:a",
            "operator:b",
            Helpdesk,
            Err(NotApprover::Role),
        );
        check(CardClose, "operator:a", "operator:b", Admin, Ok(()));
        check(ApikeyCreate, "operator:a", "oidc:xyz", Admin, Ok(()));
        check(
            ApikeyCreate,
            "oidc:xyz",
            "oidc:xyz",
            Admin,
            Err(NotApprover::Proposer),
        );
        check(
            ApikeyCreate,
            "operator:a",
            "operator:b",
            Helpdesk,
            Err(NotApprover::Role),
        );
    }

    #[test]
    fn a_proposal_is_open_until_it_expires() {
        assert!(open_at(1_000, 999));
        assert!(!open_at(1_000, 1_000));
        assert!(!open_at(1_000, 5_000));
    }
}
