//! Admission: whether a request may be handled now, before anything is decided or
//! stored. Every reply SMS costs the bank money and every verification is a guess
//! at a 7-digit code, so requests pass this node's limits first ([`Limits`],
//! governor's GCRA in memory: a flood stops here) and then, with several nodes, the
//! cluster's (`quota`, in the database), so three nodes allow what one would.
//!
//! * issuance, checked before any code is generated: per MSISDN (several windows),
//!   per card, and for unknown senders a stricter "one notice per window";
//! * per SMPP peer (its TPS) and a global cap, answered with ESME_RTHROTTLED; an
//!   operator connection's customer messages by its own `mo_tps`, which keeps it
//!   within its share of that cap;
//! * per verifier API key (requests/s → HTTP 429), and a guard against guessing
//!   spread over many cards: too many failures from one key in a window refuse that
//!   key for a cool-down.
//!
//! "Tell once, then stay silent": the first request over an issuance limit earns one
//! notice; further ones in that window get nothing (the PDU is still answered).

mod locks;
mod node;
mod quota;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::config::{LimitSettings, PeerSettings};

pub use node::{quota, Limits};

use super::ports::LimitStore;
use super::{Clock as CoreClock, CoreError, LimitClock};

type NodeLimits = Limits<LimitClock>;

#[derive(Clone)]
pub struct Admission(Arc<Inner>);

struct Inner {
    /// The limits `[limits]` and the peers' rates make, replaced whole on reload.
    rules: ArcSwap<Rules>,
    store: Arc<dyn LimitStore>,
    clock: Arc<dyn CoreClock>,
}

struct Rules {
    node: NodeLimits,
    /// The cluster's limits, with several nodes on one database (PostgreSQL).
    cluster: Option<quota::SharedLimits>,
    /// Cards each API key's wrong codes may lock per window (this node's).
    locks: locks::LockBudget,
}

impl Rules {
    fn new(
        settings: &LimitSettings,
        peers: &[PeerSettings],
        operators: &[(String, u32)],
        shared: bool,
        clock: &Arc<dyn CoreClock>,
    ) -> Self {
        let node = NodeLimits::with_clock(settings, peers, LimitClock(clock.clone()))
            .with_operators(operators);
        Self {
            cluster: shared.then(|| quota::SharedLimits::new(settings, node.peer_tps())),
            node,
            locks: locks::LockBudget::new(settings.locks_per_key),
        }
    }
}

impl Admission {
    pub fn new(
        settings: &LimitSettings,
        peers: &[PeerSettings],
        operators: &[(String, u32)],
        store: Arc<dyn LimitStore>,
        clock: Arc<dyn CoreClock>,
    ) -> Self {
        let rules = Rules::new(settings, peers, operators, store.is_shared(), &clock);
        Self(Arc::new(Inner {
            rules: ArcSwap::from_pointee(rules),
            store,
            clock,
        }))
    }

    /// New limits from a reloaded file. The rate windows start afresh under the new
    /// limits (governor cannot change a limiter's quota in place); what refuses a
    /// key or a card for a while (the guessing guards' cool-downs, the keys' spent
    /// lock budgets) carries over, so a reload never lifts a refusal.
    pub fn reconfigure(
        &self,
        settings: &LimitSettings,
        peers: &[PeerSettings],
        operators: &[(String, u32)],
    ) {
        let i = &self.0;
        let old = self.rules();
        let new = Rules::new(settings, peers, operators, i.store.is_shared(), &i.clock);
        old.node.carry_over(&new.node);
        old.locks.carry_over(&new.locks);
        i.rules.store(Arc::new(new));
    }

    fn rules(&self) -> Arc<Rules> {
        self.0.rules.load_full()
    }

    fn now(&self) -> i64 {
        self.0.clock.now_ms()
    }

    /// A customer's message against the per-MSISDN limits: this node's first (a
    /// flood stops here), then the cluster's.
    pub async fn msisdn(&self, msisdn: &str) -> Admit {
        let r = self.rules();
        let node = r.node.admit_msisdn(msisdn);
        self.issuance(&r, msisdn, node, "msisdn", |cluster, store, now| {
            cluster.msisdn(store, msisdn, now)
        })
        .await
    }

    /// A code for a card a customer asked for: at most one per card interval.
    pub async fn card(&self, msisdn: &str, card_id: i64) -> Admit {
        let r = self.rules();
        let node = r.node.admit_card(msisdn, card_id);
        self.issuance(&r, msisdn, node, "card", |cluster, store, now| {
            cluster.card(store, card_id, now)
        })
        .await
    }

    /// An issuance limit: this node's decision (`node`) stands unless it allowed
    /// the request; then the cluster's, whose refusal earns the same one notice.
    async fn issuance<'a, F>(
        &'a self,
        r: &'a Rules,
        msisdn: &str,
        node: Admit,
        rule: &'static str,
        cluster: impl FnOnce(&'a quota::SharedLimits, &'a dyn LimitStore, i64) -> F,
    ) -> Admit
    where
        F: std::future::Future<Output = quota::Shared>,
    {
        let i = &self.0;
        if node != Admit::Allow {
            return node;
        }
        let Some(limits) = &r.cluster else {
            return Admit::Allow;
        };
        match cluster(limits, &*i.store, self.now()).await {
            quota::Shared::Allow => Admit::Allow,
            quota::Shared::Over(wait) => r.node.over(msisdn, wait, rule),
        }
    }

    /// A code pushed through the API: the per-card rate only (no customer message
    /// is involved), refused with the time to wait.
    pub async fn push(&self, key_id: i64, card_id: i64, msisdn: &str) -> Result<(), CoreError> {
        let (i, r) = (&self.0, self.rules());
        r.node
            .admit_push(key_id, card_id, msisdn)
            .map_err(|r| CoreError::Limited {
                retry_after: r.retry_after,
            })?;
        let Some(cluster) = &r.cluster else {
            return Ok(());
        };
        if let quota::Shared::Over(retry_after) = cluster.card(&*i.store, card_id, self.now()).await
        {
            metrics::counter!("otpgw_limited_total", "rule" => "card").increment(1);
            return Err(CoreError::Limited { retry_after });
        }
        Ok(())
    }

    /// Whether an unknown sender gets the "not registered" notice this time: one
    /// per window, never amplify abuse.
    pub async fn unknown_sender(&self, msisdn: &str) -> bool {
        let (i, r) = (&self.0, self.rules());
        if !r.node.notify_unknown_sender(msisdn) {
            return false;
        }
        let Some(cluster) = &r.cluster else {
            return true;
        };
        matches!(
            cluster.unknown_sender(&*i.store, msisdn, self.now()).await,
            quota::Shared::Allow
        )
    }

    /// Whether an SMPP peer (or operator connection) may send one more PDU now:
    /// its TPS and the global cap, on this node.
    pub fn peer(&self, system_id: &str) -> Result<(), Refused> {
        self.rules().node.admit_peer(system_id)
    }

    /// Whether operator connection `name` may deliver one more customer message
    /// now: its `mo_tps`, then the global cap, on this node.
    pub fn operator(&self, name: &str) -> Result<(), Refused> {
        self.rules().node.admit_operator(name)
    }

    /// The same across every node (PostgreSQL; on SQLite always yes), after this
    /// node's limiter let the PDU through. A slow or failing database leaves this
    /// node's decision standing.
    pub async fn peer_everywhere(&self, system_id: &str) -> Result<(), Refused> {
        let (i, r) = (&self.0, self.rules());
        let Some(cluster) = &r.cluster else {
            return Ok(());
        };
        cluster
            .peer(&*i.store, system_id, self.now())
            .await
            .map_err(|(rule, retry_after)| {
                metrics::counter!("otpgw_limited_total", "rule" => rule).increment(1);
                Refused { retry_after, rule }
            })
    }

    /// Whether this API key may verify now (its rate, and the guessing guard).
    pub fn verify(&self, key_id: i64) -> Result<(), Refused> {
        self.rules().node.admit_verify(key_id)
    }

    /// Whether this key may verify this card now (too many wrong codes for it?).
    pub fn card_guess(&self, key_id: i64, pan_hash: &str) -> Result<(), Refused> {
        self.rules().node.admit_card_guess(key_id, pan_hash)
    }

    /// Counts a wrong code from `key_id` for the card; true when it tripped the
    /// key's guessing guard.
    pub fn wrong_code(&self, key_id: i64, pan_hash: &str) -> bool {
        let r = self.rules();
        r.node.record_card_failure(key_id, pan_hash);
        r.node.record_verify_failure(key_id)
    }

    pub fn guard_cooldown(&self) -> Duration {
        self.rules().node.guard_cooldown()
    }

    /// Whether this key's wrong codes may still count (`limits.locks_per_key`):
    /// past its budget of locks they are refused without counting.
    pub fn lock_budget(&self, key_id: i64) -> Result<(), Refused> {
        self.rules()
            .locks
            .left(key_id, self.now())
            .map_err(|retry_after| Refused {
                retry_after,
                rule: "lock_budget",
            })
    }

    /// Records that a wrong code from this key locked a card.
    pub fn card_locked_by(&self, key_id: i64) {
        self.rules().locks.spend(key_id, self.now());
    }

    /// Forgets limiter keys whose windows have passed, here and in the database.
    pub async fn housekeeping(&self) {
        let (i, r) = (&self.0, self.rules());
        r.node.housekeeping();
        r.locks.housekeeping(self.now());
        if let Some(cluster) = &r.cluster {
            cluster.sweep(&*i.store, self.now()).await;
        }
    }
}

/// What to do with a request that an issuance limit may stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Allow,
    /// Over the limit, first time in this window: tell the customer when to retry.
    Notify {
        retry_after: Duration,
        rule: &'static str,
    },
    /// Over the limit and already told: no reply at all.
    Silent {
        rule: &'static str,
    },
}

/// A refusal with the time after which trying again can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after: Duration,
    pub rule: &'static str,
}

#[cfg(test)]
mod tests;
