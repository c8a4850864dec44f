//! Admission: whether a request may be handled now, before anything is decided or
//! stored. Every reply SMS costs the bank money and every verification is a guess,
//! so requests pass this node's limits first (`limits`, governor, in memory: a flood
//! stops here) and then, with several nodes, the cluster's (`quota`, in the
//! database), so three nodes allow what one would.

mod limits;
mod quota;

use std::sync::Arc;
use std::time::Duration;

pub use limits::{Admit, Refused};

use super::clock::{Clock, LimitClock};
use super::ports::LimitStore;
use super::CoreError;
use crate::config::{LimitSettings, PeerSettings};

type NodeLimits = limits::Limits<LimitClock>;

#[derive(Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

struct Inner {
    node: NodeLimits,
    cluster: quota::SharedLimits,
    store: Arc<dyn LimitStore>,
    clock: Arc<dyn Clock>,
}

impl Admission {
    pub fn new(
        settings: &LimitSettings,
        peers: &[PeerSettings],
        store: Arc<dyn LimitStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let node = NodeLimits::with_clock(settings, peers, LimitClock(clock.clone()));
        Self {
            inner: Arc::new(Inner {
                cluster: quota::SharedLimits::new(settings, node.peer_tps()),
                node,
                store,
                clock,
            }),
        }
    }

    fn now(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// A customer's message against the per-MSISDN limits: this node's first (a
    /// flood stops here), then the cluster's.
    pub async fn msisdn(&self, msisdn: &str) -> Admit {
        let i = &self.inner;
        match i.node.admit_msisdn(msisdn) {
            Admit::Allow => {}
            over => return over,
        }
        match i.cluster.msisdn(&*i.store, msisdn, self.now()).await {
            quota::Shared::Allow => Admit::Allow,
            quota::Shared::Over(wait) => i.node.over(msisdn, wait, "msisdn"),
        }
    }

    /// A code for a card a customer asked for: at most one per card interval.
    pub async fn card(&self, msisdn: &str, card_id: i64) -> Admit {
        let i = &self.inner;
        match i.node.admit_card(msisdn, card_id) {
            Admit::Allow => {}
            over => return over,
        }
        match i.cluster.card(&*i.store, card_id, self.now()).await {
            quota::Shared::Allow => Admit::Allow,
            quota::Shared::Over(wait) => i.node.over(msisdn, wait, "card"),
        }
    }

    /// A code pushed through the API: the per-card rate only (no customer message
    /// is involved), refused with the time to wait.
    pub async fn push(&self, card_id: i64) -> Result<(), CoreError> {
        let i = &self.inner;
        i.node.admit_push(card_id).map_err(|r| CoreError::Limited {
            retry_after: r.retry_after,
        })?;
        if let quota::Shared::Over(retry_after) =
            i.cluster.card(&*i.store, card_id, self.now()).await
        {
            metrics::counter!("otpgw_limited_total", "rule" => "card").increment(1);
            return Err(CoreError::Limited { retry_after });
        }
        Ok(())
    }

    /// Whether an unknown sender gets the "not registered" notice this time: one
    /// per window, never amplify abuse.
    pub async fn unknown_sender(&self, msisdn: &str) -> bool {
        let i = &self.inner;
        i.node.notify_unknown_sender(msisdn)
            && matches!(
                i.cluster
                    .unknown_sender(&*i.store, msisdn, self.now())
                    .await,
                quota::Shared::Allow
            )
    }

    /// Whether an SMPP peer (or operator connection) may send one more PDU now:
    /// its TPS and the global cap, on this node.
    pub fn peer(&self, system_id: &str) -> Result<(), Refused> {
        self.inner.node.admit_peer(system_id)
    }

    /// The same across every node (PostgreSQL; on SQLite always yes), after this
    /// node's limiter let the PDU through. A slow or failing database leaves this
    /// node's decision standing.
    pub async fn peer_everywhere(&self, system_id: &str) -> Result<(), Refused> {
        let i = &self.inner;
        i.cluster
            .peer(&*i.store, system_id, self.now())
            .await
            .map_err(|(rule, retry_after)| {
                metrics::counter!("otpgw_limited_total", "rule" => rule).increment(1);
                Refused { retry_after, rule }
            })
    }

    /// Whether this API key may verify now (its rate, and the guessing guard).
    pub fn verify(&self, key_id: i64) -> Result<(), Refused> {
        self.inner.node.admit_verify(key_id)
    }

    /// Whether this key may verify this card now (too many wrong codes for it?).
    pub fn card_guess(&self, key_id: i64, pan_hash: &str) -> Result<(), Refused> {
        self.inner.node.admit_card_guess(key_id, pan_hash)
    }

    /// Counts a wrong code from `key_id` for the card; true when it tripped the
    /// key's guessing guard.
    pub fn wrong_code(&self, key_id: i64, pan_hash: &str) -> bool {
        self.inner.node.record_card_failure(key_id, pan_hash);
        self.inner.node.record_verify_failure(key_id)
    }

    pub fn guard_cooldown(&self) -> Duration {
        self.inner.node.guard_cooldown()
    }

    /// Forgets limiter keys whose windows have passed, here and in the database.
    pub async fn housekeeping(&self) {
        let i = &self.inner;
        i.node.housekeeping();
        i.cluster.sweep(&*i.store, self.now()).await;
    }
}
