//! The two-person rules' storage port: proposals and their decisions. Each write
//! commits with its audit event before it returns; deciding a proposal is one
//! guarded statement (`decided_at IS NULL`, and for approval `expires_at > now`),
//! so of two clerks deciding at once exactly one gets `true`.

use async_trait::async_trait;
use otpgw_rules::approvals::{Guarded, Outcome};

use crate::core::DomainError;

type Result<T> = std::result::Result<T, DomainError>;

/// A proposal as the console lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub id: i64,
    pub action: Guarded,
    pub card_id: Option<i64>,
    /// What the action needs besides the card (a new phone number; a key's role
    /// and label). Never a secret.
    pub params: serde_json::Value,
    pub reason: String,
    /// The proposer's `actor()` and display name.
    pub proposer: String,
    pub proposer_name: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub outcome: Option<Outcome>,
    /// The refuser's reason, for a refused proposal.
    pub refusal: Option<String>,
}

impl Proposal {
    /// Open: not decided and not past its expiry at `now`.
    pub fn open_at(&self, now: i64) -> bool {
        self.decided_at.is_none() && otpgw_rules::approvals::open_at(self.expires_at, now)
    }
}

pub struct NewProposal<'a> {
    pub action: Guarded,
    pub card_id: Option<i64>,
    pub params: &'a serde_json::Value,
    pub reason: &'a str,
    pub proposer: &'a str,
    pub proposer_name: &'a str,
    pub now: i64,
    pub expires_at: i64,
    /// The `approval_proposed` event's detail.
    pub detail: serde_json::Value,
}

/// A decision on an open proposal, with its audit event.
pub struct Decision<'a> {
    pub id: i64,
    pub outcome: Outcome,
    pub actor: &'a str,
    pub refusal: Option<&'a str>,
    pub now: i64,
    /// The event's kind (`approval_approved`, `approval_refused`, …) and detail.
    pub kind: &'a str,
    pub detail: serde_json::Value,
}

#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Records a proposal, audited as `approval_proposed`.
    async fn propose(&self, p: NewProposal<'_>) -> Result<Proposal>;
    async fn proposal(&self, id: i64) -> Result<Option<Proposal>>;
    /// The undecided proposals (oldest first), then at most `decided` of the last
    /// decided ones (newest first).
    async fn proposals(&self, decided: i64) -> Result<Vec<Proposal>>;
    /// Undecided proposals not expired at `now`.
    async fn open_proposals(&self, now: i64) -> Result<i64>;
    /// Decides an undecided proposal (for `Approved`, one not expired at `now`),
    /// with its event, in one transaction; `false` if it was decided already (or,
    /// for approval, has expired): nothing was written.
    async fn decide(&self, d: Decision<'_>) -> Result<bool>;
    /// An approved proposal whose action was refused at that time becomes
    /// `failed`, audited as `approval_failed` with `detail`.
    async fn approval_failed(&self, id: i64, detail: serde_json::Value, now: i64) -> Result<()>;
    /// Marks the undecided proposals expired at `now` as `expired`, each audited
    /// as `approval_expired`; returns how many.
    async fn expire_proposals(&self, now: i64) -> Result<u64>;
}
