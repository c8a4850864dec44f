//! Cluster-wide rate limits. On PostgreSQL the per-MSISDN, per-card,
//! unknown-sender, per-peer and global limits are decided in the database
//! (`LimitStore::gcra`), so three nodes allow what one would, not three times as much.
//! The per-second limits (peer TPS, global) keep their state in microseconds, so a
//! rate above 1,000/s is still exact; there are only as many such keys as peers. Each node's governor limits
//! (`super::Limits`) stay in front as a pre-filter: a flood never reaches the
//! database. A decision the database does not make within `cluster_timeout_ms`
//! (or an error) falls back to the node's own limit, which already allowed it;
//! `otpgw_limit_fallbacks_total` counts those. On SQLite (one node) nothing here
//! runs.

use std::time::Duration;

use crate::config::{LimitSettings, Rate};
use crate::core::ports::{Gcra, LimitStore};

/// Rates as the database's GCRA keeps them: milliseconds, or microseconds for the
/// per-second limits.
impl Gcra {
    /// `n` per second with a burst of `n` (as governor's `Quota::per_second`), in
    /// microseconds; `None` for 0 (unlimited).
    fn per_second_us(n: u32) -> Option<Self> {
        let n = i64::from(n);
        (n > 0).then(|| {
            let interval = (1_000_000 / n).max(1);
            Self {
                interval,
                tolerance: interval * (n - 1),
            }
        })
    }

    fn new(rate: Rate) -> Self {
        let count = i64::from(rate.count.max(1));
        let period = i64::try_from(rate.per_secs.max(1)).unwrap_or(i64::MAX / 2_000) * 1000;
        let interval = (period / count).max(1);
        // `count` at once, refilled evenly over the period (as governor does).
        Self {
            interval,
            tolerance: interval * (count - 1),
        }
    }
}

pub(super) struct SharedLimits {
    /// Per-second limits, in microseconds: each peer's TPS, and the global cap.
    peers: std::collections::HashMap<String, Gcra>,
    global: Option<Gcra>,
    msisdn: Vec<Gcra>,
    card: Gcra,
    unknown_sender: Gcra,
    timeout: Duration,
}

/// The cluster's answer: within the limit, over it (wait this long), or no answer.
pub(super) enum Shared {
    Allow,
    Over(Duration),
}

impl SharedLimits {
    pub fn new(settings: &LimitSettings, peer_tps: &[(String, u32)]) -> Self {
        Self {
            peers: peer_tps
                .iter()
                .filter_map(|(id, tps)| Gcra::per_second_us(*tps).map(|g| (id.clone(), g)))
                .collect(),
            global: Gcra::per_second_us(settings.global_per_second),
            msisdn: settings.msisdn.iter().map(|r| Gcra::new(*r)).collect(),
            card: Gcra::new(settings.card),
            unknown_sender: Gcra::new(settings.unknown_sender),
            timeout: Duration::from_millis(settings.cluster_timeout_ms.max(1)),
        }
    }

    /// Every per-MSISDN window, in the database.
    pub async fn msisdn(&self, store: &dyn LimitStore, msisdn: &str, now: i64) -> Shared {
        for (i, rate) in self.msisdn.iter().enumerate() {
            if let Shared::Over(wait) = self
                .decide(store, &format!("m{i}:{msisdn}"), *rate, now)
                .await
            {
                return Shared::Over(wait);
            }
        }
        Shared::Allow
    }

    /// A peer's TPS, then the global cap, for one subscriber message (`now` in ms).
    pub async fn peer(
        &self,
        store: &dyn LimitStore,
        system_id: &str,
        now: i64,
    ) -> Result<(), (&'static str, Duration)> {
        let now_us = now.saturating_mul(1000);
        if let Some(rate) = self.peers.get(system_id) {
            if let Shared::Over(wait) = self
                .decide_us(store, &format!("P:{system_id}"), *rate, now_us)
                .await
            {
                return Err(("peer", wait));
            }
        }
        if let Some(rate) = self.global {
            if let Shared::Over(wait) = self.decide_us(store, "G", rate, now_us).await {
                return Err(("global", wait));
            }
        }
        Ok(())
    }

    /// As `decide`, on a key kept in microseconds.
    async fn decide_us(
        &self,
        store: &dyn LimitStore,
        key: &str,
        rate: Gcra,
        now_us: i64,
    ) -> Shared {
        match self.decide(store, key, rate, now_us).await {
            Shared::Over(wait) => Shared::Over(wait / 1000),
            allow => allow,
        }
    }

    pub async fn card(&self, store: &dyn LimitStore, card_id: i64, now: i64) -> Shared {
        self.decide(store, &format!("c:{card_id}"), self.card, now)
            .await
    }

    pub async fn unknown_sender(&self, store: &dyn LimitStore, msisdn: &str, now: i64) -> Shared {
        self.decide(store, &format!("u:{msisdn}"), self.unknown_sender, now)
            .await
    }

    async fn decide(&self, store: &dyn LimitStore, key: &str, rate: Gcra, now: i64) -> Shared {
        if !store.is_shared() {
            return Shared::Allow;
        }
        let started = std::time::Instant::now();
        let decision = tokio::time::timeout(self.timeout, store.gcra(key, now, rate)).await;
        metrics::histogram!("otpgw_limit_decision_seconds").record(started.elapsed().as_secs_f64());
        match decision {
            Ok(Ok(None)) => Shared::Allow,
            Ok(Ok(Some(wait_ms))) => {
                Shared::Over(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1)))
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cluster limit: database error, this node's limit applies");
                metrics::counter!("otpgw_limit_fallbacks_total", "cause" => "error").increment(1);
                Shared::Allow
            }
            Err(_) => {
                metrics::counter!("otpgw_limit_fallbacks_total", "cause" => "timeout").increment(1);
                Shared::Allow
            }
        }
    }

    /// Forgets keys whose limits have run out.
    pub async fn sweep(&self, store: &dyn LimitStore, now: i64) {
        if !store.is_shared() {
            return;
        }
        match store.sweep_limits(now).await {
            Ok(n) if n > 0 => tracing::debug!(deleted = n, "cluster limit keys swept"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not sweep cluster limit keys"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_become_intervals_and_bursts() {
        let g = Gcra::new(Rate {
            count: 3,
            per_secs: 60,
        });
        assert_eq!((g.interval, g.tolerance), (20_000, 40_000));
        let one = Gcra::new(Rate {
            count: 1,
            per_secs: 10,
        });
        assert_eq!((one.interval, one.tolerance), (10_000, 0));
        let tps = Gcra::per_second_us(4_000).unwrap();
        assert_eq!((tps.interval, tps.tolerance), (250, 250 * 3_999));
        assert!(Gcra::per_second_us(0).is_none());
    }
}
