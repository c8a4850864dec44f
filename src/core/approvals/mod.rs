//! Two-person rules (`[console] four_eyes`): a console action the bank lists is
//! proposed by one clerk and done only when a second, different clerk with a role
//! that may do it approves. The rules of who may approve are
//! `otpgw_rules::approvals`; the port is `port.rs`.
//!
//! Approval runs the same use case the direct action runs, as the approver, so
//! every check holds at that time (a card closed meanwhile, a lock policy, a
//! number already changed). It first claims the proposal in one guarded write
//! (undecided, not expired): of two approvers at once, one does the action; an
//! action then refused turns the proposal `failed`. Proposals expire after
//! [`PROPOSAL_TTL_MS`]; an expired one cannot be approved.
//!
//! Every step is audited with the clerk as actor and the source address:
//! `approval_proposed`, `approval_approved` (then the action's own event, whose
//! actor is the approver and whose reason names the proposer),
//! `approval_refused`, `approval_withdrawn`, `approval_denied` (the proposer, or a
//! role that may not, tried to approve), `approval_failed`, `approval_expired`.

pub mod port;

use std::sync::Arc;

use otpgw_rules::approvals::{self as rules, Guarded, Outcome};
use otpgw_rules::records::Who;
use otpgw_rules::vocab::Role;
use serde_json::json;

use super::backoffice::clean_reason;
pub use super::error::ApprovalError;
use super::ports::{AuditStore, NewEvent, StatusChange};
use super::{Access, BackOffice, Clock, CoreError, Live, Missing};
use port::{ApprovalStore, Decision, NewProposal, Proposal};

/// A proposal nobody decided within 24 hours expires.
pub const PROPOSAL_TTL_MS: i64 = 24 * 3600 * 1000;
/// Decided proposals the list shows after the open ones.
const DECIDED_LISTED: i64 = 20;

/// What a clerk proposes: the action and what it needs. A new card number is not
/// among them; a new phone number is kept as the direct change audits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposed {
    LiftLock { card_id: i64 },
    PhoneChange { card_id: i64, msisdn: String },
    CardClose { card_id: i64 },
    ApikeyCreate { role: Role, label: Option<String> },
}

impl Proposed {
    pub fn action(&self) -> Guarded {
        match self {
            Proposed::LiftLock { .. } => Guarded::LiftLock,
            Proposed::PhoneChange { .. } => Guarded::PhoneChange,
            Proposed::CardClose { .. } => Guarded::CardClose,
            Proposed::ApikeyCreate { .. } => Guarded::ApikeyCreate,
        }
    }

    fn card_id(&self) -> Option<i64> {
        match self {
            Proposed::LiftLock { card_id }
            | Proposed::PhoneChange { card_id, .. }
            | Proposed::CardClose { card_id } => Some(*card_id),
            Proposed::ApikeyCreate { .. } => None,
        }
    }

    fn params(&self) -> serde_json::Value {
        match self {
            Proposed::PhoneChange { msisdn, .. } => json!({ "msisdn": msisdn }),
            Proposed::ApikeyCreate { role, label } => {
                json!({ "role": role.as_str(), "label": label })
            }
            _ => json!({}),
        }
    }

    /// The action again from a stored proposal.
    fn of(p: &Proposal) -> Result<Self, CoreError> {
        let card = || {
            p.card_id
                .ok_or_else(|| CoreError::Domain(super::DomainError::internal("proposal card")))
        };
        Ok(match p.action {
            Guarded::LiftLock => Proposed::LiftLock { card_id: card()? },
            Guarded::CardClose => Proposed::CardClose { card_id: card()? },
            Guarded::PhoneChange => Proposed::PhoneChange {
                card_id: card()?,
                msisdn: p.params["msisdn"].as_str().unwrap_or_default().to_owned(),
            },
            Guarded::ApikeyCreate => Proposed::ApikeyCreate {
                role: p.params["role"]
                    .as_str()
                    .and_then(Role::parse)
                    .ok_or_else(|| CoreError::Domain(super::DomainError::internal("key role")))?,
                label: p.params["label"].as_str().map(str::to_owned),
            },
        })
    }
}

/// An approval done: the proposal, and for `apikey_create` the new key (shown
/// once, to the approver).
pub struct Approved {
    pub proposal: Proposal,
    pub new_key: Option<(i64, String)>,
}

// The key is a secret: never print it.
crate::telemetry::debug_only!(Approved { proposal });

/// How a clerk is named beside their actor in a proposal.
pub fn display_name(who: &Who) -> String {
    match who {
        Who::Operator { name, .. } => name.clone(),
        other => other.actor(),
    }
}

#[derive(Clone)]
pub struct Approvals(pub(super) Arc<Inner>);

pub(super) struct Inner {
    pub store: Arc<dyn ApprovalStore>,
    pub audit: Arc<dyn AuditStore>,
    pub backoffice: BackOffice,
    pub access: Access,
    /// `[console] four_eyes`, replaced on reload.
    pub four_eyes: Live<Vec<Guarded>>,
    pub country_code: String,
    pub clock: Arc<dyn Clock>,
}

impl Approvals {
    fn now(&self) -> i64 {
        self.0.clock.now_ms()
    }

    /// Whether the bank put `action` under two-person rules.
    pub fn guards(&self, action: Guarded) -> bool {
        self.0.four_eyes.get().contains(&action)
    }

    /// The actions under two-person rules now.
    pub fn guarded(&self) -> Arc<Vec<Guarded>> {
        self.0.four_eyes.get()
    }

    /// Proposes an action: the clerk's role must allow the action itself, the card
    /// must exist, the reason is mandatory. The action waits for a second person.
    pub async fn propose(
        &self,
        who: &Who,
        proposed: Proposed,
        reason: &str,
        source: Option<&str>,
    ) -> Result<Proposal, CoreError> {
        let action = proposed.action();
        if !action.may(who.role()) {
            return Err(CoreError::Forbidden);
        }
        let reason = clean_reason(reason)?;
        let proposed = match proposed {
            Proposed::PhoneChange { card_id, msisdn } => Proposed::PhoneChange {
                card_id,
                msisdn: super::normalize_msisdn(&msisdn, &self.0.country_code)?,
            },
            other => other,
        };
        if let Some(card_id) = proposed.card_id() {
            if self.0.backoffice.card(card_id).await?.is_none() {
                return Err(CoreError::not_found(Missing::Card));
            }
        }
        let now = self.now();
        let (actor, name, params) = (who.actor(), display_name(who), proposed.params());
        let mut detail = json!({ "action": action.as_str(), "reason": reason, "name": name,
            "source": source });
        if let Some(msisdn) = params.get("msisdn") {
            detail["msisdn"] = msisdn.clone();
        }
        if let Some(role) = params.get("role") {
            detail["role"] = role.clone();
        }
        let proposal = self
            .0
            .store
            .propose(NewProposal {
                action,
                card_id: proposed.card_id(),
                params: &params,
                reason: &reason,
                proposer: &actor,
                proposer_name: &name,
                now,
                expires_at: now.saturating_add(PROPOSAL_TTL_MS),
                detail,
            })
            .await?;
        tracing::info!(
            proposal = proposal.id,
            action = action.as_str(),
            actor,
            "two-person action proposed"
        );
        Ok(proposal)
    }

    pub async fn proposal(&self, id: i64) -> Result<Option<Proposal>, CoreError> {
        Ok(self.0.store.proposal(id).await?)
    }

    /// The open proposals and the last decided ones (those expired now are
    /// marked so first).
    pub async fn list(&self) -> Result<Vec<Proposal>, CoreError> {
        self.0.store.expire_proposals(self.now()).await?;
        Ok(self.0.store.proposals(DECIDED_LISTED).await?)
    }

    /// How many proposals wait for a second person now.
    pub async fn open_count(&self) -> Result<i64, CoreError> {
        Ok(self.0.store.open_proposals(self.now()).await?)
    }

    /// An open proposal, or why it is not: gone, decided, expired (marked so).
    async fn open(&self, id: i64) -> Result<Proposal, CoreError> {
        let p = self
            .0
            .store
            .proposal(id)
            .await?
            .ok_or(CoreError::not_found(Missing::Proposal))?;
        if p.decided_at.is_some() {
            return Err(ApprovalError::Decided.into());
        }
        if !p.open_at(self.now()) {
            self.0.store.expire_proposals(self.now()).await?;
            return Err(ApprovalError::Expired.into());
        }
        Ok(p)
    }

    /// The detail every decision's event carries.
    fn detail(p: &Proposal, who: &Who, source: Option<&str>) -> serde_json::Value {
        json!({ "proposal": p.id, "action": p.action.as_str(), "proposer": p.proposer,
            "proposer_name": p.proposer_name, "name": display_name(who), "source": source })
    }

    /// Checks that `who` may decide `p`; a refusal is audited (`approval_denied`).
    async fn approver(
        &self,
        p: &Proposal,
        who: &Who,
        source: Option<&str>,
    ) -> Result<(), CoreError> {
        let actor = who.actor();
        if let Err(why) = rules::may_approve(p.action, &p.proposer, &actor, who.role()) {
            let mut detail = Self::detail(p, who, source);
            detail["why"] = json!(why.to_string());
            self.0
                .audit
                .audit(NewEvent {
                    card_id: p.card_id,
                    kind: "approval_denied",
                    actor: &actor,
                    detail,
                    at: self.now(),
                })
                .await?;
            tracing::info!(proposal = p.id, actor, %why, "two-person approval refused");
            return Err(ApprovalError::NotApprover(why).into());
        }
        Ok(())
    }

    /// Approves and does the action, as `who`. Exactly once, however many clerks
    /// approve at once.
    pub async fn approve(
        &self,
        who: &Who,
        id: i64,
        source: Option<&str>,
    ) -> Result<Approved, CoreError> {
        let p = self.open(id).await?;
        self.approver(&p, who, source).await?;
        let proposed = Proposed::of(&p)?;
        let actor = who.actor();
        let claimed = self
            .0
            .store
            .decide(Decision {
                id,
                outcome: Outcome::Approved,
                actor: &actor,
                refusal: None,
                now: self.now(),
                kind: "approval_approved",
                detail: Self::detail(&p, who, source),
            })
            .await?;
        if !claimed {
            // Another approver took it, or it expired since it was read.
            return Err(ApprovalError::Decided.into());
        }
        // The action's own event names the proposer in its reason.
        let reason = format!(
            "approval {} proposed by {} ({}): {}",
            p.id, p.proposer, p.proposer_name, p.reason
        );
        let bo = &self.0.backoffice;
        let done = match proposed {
            Proposed::LiftLock { card_id } => bo
                .console_change(who, card_id, StatusChange::Reactivate, &reason, source)
                .await
                .map(|_| None),
            Proposed::PhoneChange { card_id, msisdn } => bo
                .change_phone(card_id, &msisdn, &reason, &actor, source)
                .await
                .map(|_| None),
            Proposed::CardClose { card_id } => bo
                .close(card_id, &reason, &actor, source)
                .await
                .map(|_| None),
            Proposed::ApikeyCreate { role, label } => self
                .0
                .access
                .create_key(role, label.as_deref(), &actor, source)
                .await
                .map(Some),
        };
        match done {
            Ok(new_key) => {
                tracing::info!(proposal = id, actor, "two-person action approved and done");
                let proposal = self.0.store.proposal(id).await?.unwrap_or(p);
                Ok(Approved { proposal, new_key })
            }
            Err(e) => {
                let mut detail = Self::detail(&p, who, source);
                detail["error"] = json!(e.to_string());
                self.0.store.approval_failed(id, detail, self.now()).await?;
                tracing::info!(proposal = id, actor, error = %e, "two-person action refused at approval");
                Err(ApprovalError::ActionRefused(Box::new(e)).into())
            }
        }
    }

    /// Refuses a proposal, with a reason: someone who could have approved it.
    pub async fn refuse(
        &self,
        who: &Who,
        id: i64,
        reason: &str,
        source: Option<&str>,
    ) -> Result<Proposal, CoreError> {
        let reason = clean_reason(reason)?;
        let p = self.open(id).await?;
        self.approver(&p, who, source).await?;
        let mut detail = Self::detail(&p, who, source);
        detail["reason"] = json!(reason);
        self.decide(
            &p,
            who,
            Outcome::Refused,
            Some(&reason),
            "approval_refused",
            detail,
        )
        .await
    }

    /// The proposer takes their proposal back.
    pub async fn withdraw(
        &self,
        who: &Who,
        id: i64,
        source: Option<&str>,
    ) -> Result<Proposal, CoreError> {
        let p = self
            .0
            .store
            .proposal(id)
            .await?
            .ok_or(CoreError::not_found(Missing::Proposal))?;
        if p.proposer != who.actor() {
            return Err(ApprovalError::NotProposer.into());
        }
        if p.decided_at.is_some() {
            return Err(ApprovalError::Decided.into());
        }
        let detail = Self::detail(&p, who, source);
        self.decide(
            &p,
            who,
            Outcome::Withdrawn,
            None,
            "approval_withdrawn",
            detail,
        )
        .await
    }

    async fn decide(
        &self,
        p: &Proposal,
        who: &Who,
        outcome: Outcome,
        refusal: Option<&str>,
        kind: &str,
        detail: serde_json::Value,
    ) -> Result<Proposal, CoreError> {
        let actor = who.actor();
        let decided = self
            .0
            .store
            .decide(Decision {
                id: p.id,
                outcome,
                actor: &actor,
                refusal,
                now: self.now(),
                kind,
                detail,
            })
            .await?;
        if !decided {
            return Err(ApprovalError::Decided.into());
        }
        tracing::info!(
            proposal = p.id,
            actor,
            outcome = outcome.as_str(),
            "two-person proposal decided"
        );
        Ok(self
            .0
            .store
            .proposal(p.id)
            .await?
            .unwrap_or_else(|| p.clone()))
    }
}
