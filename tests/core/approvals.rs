//! Two-person rules in process on a moved clock: the proposer cannot approve
//! (refused and audited); a second person's approval runs the action as that
//! person, with every check of the direct action made at that time (a help-desk
//! clerk cannot lift a suspension; a card closed meanwhile takes no phone change);
//! two approvers at once do the action once; a proposal expires after 24 hours
//! and then cannot be approved; only the proposer withdraws; only a role that
//! may do the action refuses it.

use std::time::Duration;

use otpgw::core::approvals::PROPOSAL_TTL_MS;
use otpgw::core::ports::StatusChange;
use otpgw::core::{ApprovalError, CoreError, Proposed};
use otpgw_rules::approvals::{Guarded, NotApprover, Outcome};
use otpgw_rules::records::Who;
use otpgw_rules::vocab::{CardStatus, Role};

use crate::support::{core_with, Harness, MSISDN, PAN};

fn op(id: i64, name: &str, role: Role) -> Who {
    Who::Operator {
        id,
        name: name.into(),
        role,
    }
}

async fn guarded() -> Harness {
    core_with(|s| {
        s.console.four_eyes = vec![
            Guarded::LiftLock,
            Guarded::PhoneChange,
            Guarded::CardClose,
            Guarded::ApikeyCreate,
        ]
    })
    .await
}

async fn suspended(h: &Harness) -> i64 {
    let card = h.enroll(PAN, MSISDN).await;
    h.core
        .backoffice
        .change_status(card.id, StatusChange::Suspend, "test", Some("fraud check"))
        .await
        .unwrap();
    card.id
}

async fn kinds(h: &Harness, card_id: i64) -> Vec<(String, String)> {
    let events = h.core.backoffice.events(card_id).await.unwrap();
    events.into_iter().map(|e| (e.kind, e.actor)).collect()
}

#[tokio::test]
async fn a_second_person_approves_once_and_the_proposer_cannot() {
    let h = guarded().await;
    assert!(h.core.approvals.guards(Guarded::LiftLock));
    let id = suspended(&h).await;
    let (sara, reza) = (op(1, "sara", Role::Admin), op(2, "reza", Role::Helpdesk));
    let (nima, omid) = (op(3, "nima", Role::Admin), op(4, "omid", Role::Admin));
    let lift = || Proposed::LiftLock { card_id: id };

    let p = h
        .core
        .approvals
        .propose(&sara, lift(), "customer called back", Some("10.0.0.7"))
        .await
        .unwrap();
    assert_eq!(h.core.approvals.open_count().await.unwrap(), 1);
    // The proposer's own approval is refused, and audited.
    let own = h.core.approvals.approve(&sara, p.id, None).await;
    assert!(
        matches!(
            own,
            Err(CoreError::Approval(ApprovalError::NotApprover(
                NotApprover::Proposer
            )))
        ),
        "{own:?}"
    );
    // A help-desk clerk may approve a lift, but the use case refuses lifting a
    // suspension for the help desk at approval time: the proposal fails.
    let desk = h.core.approvals.approve(&reza, p.id, None).await;
    assert!(
        matches!(
            desk,
            Err(CoreError::Approval(ApprovalError::ActionRefused(_)))
        ),
        "{desk:?}"
    );
    let failed = h.core.approvals.proposal(p.id).await.unwrap().unwrap();
    assert_eq!(failed.outcome, Some(Outcome::Failed));
    assert_eq!(
        h.core.backoffice.card(id).await.unwrap().unwrap().status,
        CardStatus::Suspended
    );

    // Anew: two administrators approve at once; one does it.
    let p = h
        .core
        .approvals
        .propose(&sara, lift(), "customer called back", None)
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        h.core.approvals.approve(&nima, p.id, Some("10.0.0.8")),
        h.core.approvals.approve(&omid, p.id, Some("10.0.0.9")),
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} {b:?}"
    );
    let loser = if a.is_ok() { b } else { a };
    assert!(
        matches!(loser, Err(CoreError::Approval(ApprovalError::Decided))),
        "{loser:?}"
    );
    assert_eq!(
        h.core.backoffice.card(id).await.unwrap().unwrap().status,
        CardStatus::Active
    );
    let events = h.core.backoffice.events(id).await.unwrap();
    let done: Vec<_> = events.iter().filter(|e| e.kind == "reactivated").collect();
    assert_eq!(done.len(), 1, "{events:?}");
    // The action's actor is the approver; its reason names the proposer.
    assert!(["operator:nima", "operator:omid"].contains(&done[0].actor.as_str()));
    let reason = done[0].detail["reason"].as_str().unwrap();
    assert!(reason.contains("proposed by operator:sara"), "{reason}");
    let all = kinds(&h, id).await;
    for (kind, actor) in [
        ("approval_proposed", "operator:sara"),
        ("approval_denied", "operator:sara"),
        ("approval_approved", done[0].actor.as_str()),
        ("approval_failed", "operator:reza"),
    ] {
        assert!(
            all.iter().any(|(k, a)| k == kind && a == actor),
            "{kind} by {actor}: {all:?}"
        );
    }
    let proposed = events
        .iter()
        .find(|e| e.kind == "approval_proposed")
        .unwrap();
    assert_eq!(proposed.detail["source"], "10.0.0.7");
    assert_eq!(h.core.approvals.open_count().await.unwrap(), 0);
}

#[tokio::test]
async fn an_expired_proposal_cannot_be_approved() {
    let h = guarded().await;
    let id = suspended(&h).await;
    let (sara, nima) = (op(1, "sara", Role::Admin), op(3, "nima", Role::Admin));
    let p = h
        .core
        .approvals
        .propose(
            &sara,
            Proposed::LiftLock { card_id: id },
            "called back",
            None,
        )
        .await
        .unwrap();
    assert_eq!(p.expires_at - p.created_at, PROPOSAL_TTL_MS);
    // A millisecond before the bound it is open; at the bound it is not.
    h.advance(Duration::from_millis((PROPOSAL_TTL_MS - 1) as u64));
    assert_eq!(h.core.approvals.open_count().await.unwrap(), 1);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.core.approvals.open_count().await.unwrap(), 0);
    let late = h.core.approvals.approve(&nima, p.id, None).await;
    assert!(
        matches!(late, Err(CoreError::Approval(ApprovalError::Expired))),
        "{late:?}"
    );
    let listed = h.core.approvals.list().await.unwrap();
    assert_eq!(listed[0].outcome, Some(Outcome::Expired));
    assert_eq!(
        h.core.backoffice.card(id).await.unwrap().unwrap().status,
        CardStatus::Suspended
    );
    assert!(kinds(&h, id)
        .await
        .iter()
        .any(|(k, _)| k == "approval_expired"));
    // Decided is decided: no approval after the expiry was recorded either.
    let again = h.core.approvals.approve(&nima, p.id, None).await;
    assert!(matches!(
        again,
        Err(CoreError::Approval(ApprovalError::Decided))
    ));
}

#[tokio::test]
async fn checks_hold_at_approval_time_and_only_the_right_people_decide() {
    let h = guarded().await;
    let card = h.enroll(PAN, MSISDN).await;
    let (sara, reza) = (op(1, "sara", Role::Admin), op(2, "reza", Role::Helpdesk));
    let nima = op(3, "nima", Role::Admin);
    let approvals = &h.core.approvals;

    // The help desk may not propose a closure, nor approve or refuse one.
    let close = || Proposed::CardClose { card_id: card.id };
    assert!(matches!(
        approvals.propose(&reza, close(), "asked", None).await,
        Err(CoreError::Forbidden)
    ));
    let p = approvals
        .propose(&sara, close(), "customer asked", None)
        .await
        .unwrap();
    let refused = approvals.refuse(&reza, p.id, "no", None).await;
    assert!(matches!(
        refused,
        Err(CoreError::Approval(ApprovalError::NotApprover(
            NotApprover::Role
        )))
    ));
    // Only the proposer withdraws.
    let taken = approvals.withdraw(&nima, p.id, None).await;
    assert!(matches!(
        taken,
        Err(CoreError::Approval(ApprovalError::NotProposer))
    ));
    let withdrawn = approvals.withdraw(&sara, p.id, None).await.unwrap();
    assert_eq!(withdrawn.outcome, Some(Outcome::Withdrawn));

    // A phone change proposed, then the card closed directly: approving it now
    // is refused by the phone change itself, and the proposal fails.
    let phone = Proposed::PhoneChange {
        card_id: card.id,
        msisdn: "09121110099".into(),
    };
    let p = approvals
        .propose(&reza, phone, "new SIM", None)
        .await
        .unwrap();
    assert_eq!(p.params["msisdn"], "989121110099");
    let refusal = approvals.refuse(&sara, p.id, " ", None).await;
    assert!(matches!(refusal, Err(CoreError::ReasonRequired)));
    h.core
        .backoffice
        .close(card.id, "closed at branch", "test", None)
        .await
        .unwrap();
    let late = approvals.approve(&sara, p.id, None).await;
    assert!(
        matches!(
            late,
            Err(CoreError::Approval(ApprovalError::ActionRefused(_)))
        ),
        "{late:?}"
    );
    assert_eq!(
        approvals.proposal(p.id).await.unwrap().unwrap().outcome,
        Some(Outcome::Failed)
    );
    let card_now = h.core.backoffice.card(card.id).await.unwrap().unwrap();
    assert_eq!(card_now.msisdn, MSISDN);

    // An API key proposed by one admin is made by another, who alone sees it.
    let key = Proposed::ApikeyCreate {
        role: Role::Verifier,
        label: Some("switch".into()),
    };
    let p = approvals
        .propose(&sara, key, "the new switch", None)
        .await
        .unwrap();
    let done = approvals.approve(&nima, p.id, None).await.unwrap();
    let (key_id, key) = done.new_key.expect("the key, once");
    let found = h.core.access.authenticate(&key).await.unwrap().unwrap();
    assert_eq!((found.id, found.role), (key_id, Role::Verifier));
    assert_eq!(done.proposal.outcome, Some(Outcome::Approved));
    assert_eq!(done.proposal.decided_by.as_deref(), Some("operator:nima"));
}
