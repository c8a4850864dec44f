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

    /// Every per-MSISDN window, in the database, in one round trip.
    pub async fn msisdn(&self, store: &dyn LimitStore, msisdn: &str, now: i64) -> Shared {
        let keys: Vec<String> = (0..self.msisdn.len())
            .map(|i| format!("m{i}:{msisdn}"))
            .collect();
        let each: Vec<(&str, Gcra)> = keys
            .iter()
            .map(String::as_str)
            .zip(self.msisdn.iter().copied())
            .collect();
        match self.decide(store, &each, now).await {
            Some((_, wait)) => Shared::Over(wait),
            None => Shared::Allow,
        }
    }

    /// A peer's TPS, then the global cap, for one subscriber message (`now` in ms),
    /// in one round trip. Both are kept in microseconds.
    pub async fn peer(
        &self,
        store: &dyn LimitStore,
        system_id: &str,
        now: i64,
    ) -> Result<(), (&'static str, Duration)> {
        let now_us = now.saturating_mul(1000);
        let peer_key = format!("P:{system_id}");
        let mut each: Vec<(&str, Gcra)> = Vec::with_capacity(2);
        let mut names: Vec<&'static str> = Vec::with_capacity(2);
        if let Some(rate) = self.peers.get(system_id) {
            each.push((&peer_key, *rate));
            names.push("peer");
        }
        if let Some(rate) = self.global {
            each.push(("G", rate));
            names.push("global");
        }
        match self.decide(store, &each, now_us).await {
            Some((i, wait_us)) => Err((names[i], wait_us / 1000)),
            None => Ok(()),
        }
    }

    pub async fn card(&self, store: &dyn LimitStore, card_id: i64, now: i64) -> Shared {
        let key = format!("c:{card_id}");
        self.decide_one(store, &key, self.card, now).await
    }

    pub async fn unknown_sender(&self, store: &dyn LimitStore, msisdn: &str, now: i64) -> Shared {
        let key = format!("u:{msisdn}");
        self.decide_one(store, &key, self.unknown_sender, now).await
    }

    async fn decide_one(&self, store: &dyn LimitStore, key: &str, rate: Gcra, now: i64) -> Shared {
        match self.decide(store, &[(key, rate)], now).await {
            Some((_, wait)) => Shared::Over(wait),
            None => Shared::Allow,
        }
    }

    /// The keys' decisions in one call (`LimitStore::gcra_each`): `None` when every
    /// one allows (or the database did not answer in time), else the index of the
    /// key that refused and the wait, in the unit of `now`.
    async fn decide(
        &self,
        store: &dyn LimitStore,
        keys: &[(&str, Gcra)],
        now: i64,
    ) -> Option<(usize, Duration)> {
        if !store.is_shared() || keys.is_empty() {
            return None;
        }
        let started = std::time::Instant::now();
        let decision = tokio::time::timeout(self.timeout, store.gcra_each(keys, now)).await;
        metrics::histogram!("otpgw_limit_decision_seconds").record(started.elapsed().as_secs_f64());
        match decision {
            Ok(Ok(None)) => None,
            Ok(Ok(Some((i, wait)))) => {
                Some((i, Duration::from_millis(u64::try_from(wait).unwrap_or(1))))
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cluster limit: database error, this node's limit applies");
                metrics::counter!("otpgw_limit_fallbacks_total", "cause" => "error").increment(1);
                None
            }
            Err(_) => {
                metrics::counter!("otpgw_limit_fallbacks_total", "cause" => "timeout").increment(1);
                None
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
