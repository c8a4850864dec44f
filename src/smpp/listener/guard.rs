//! Who may hold a connection: a cap on connections in total and per address, and a
//! back-off for addresses that keep failing to bind, decided at accept time before
//! a byte is read, so a hostile address costs one accept and one close, not a
//! session. Beside it, a back-off per configured system_id, over all addresses, so
//! a password cannot be guessed from many addresses at once (checked at bind).
//!
//! Every map is bounded: per-address counts exist only while that address holds a
//! connection (so at most `max_connections` entries), bind failures are tracked for
//! at most [`MAX_TRACKED`] addresses and only for configured system_ids, all swept
//! as their windows pass.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::{Rate, SmppSettings};

/// Addresses whose bind failures are remembered. Past this, a new address's failures
/// are not tracked (it is still closed after each failed bind): the back-off must not
/// itself become the memory an attacker with many addresses fills.
const MAX_TRACKED: usize = 65_536;

/// Why a connection was closed at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `smpp.max_connections` are open.
    Total,
    /// `smpp.max_connections_per_ip` are open from this address.
    PerIp,
    /// This address failed to bind too often lately.
    BackOff,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Total => "total",
            Refusal::PerIp => "per_ip",
            Refusal::BackOff => "bind_failures",
        }
    }
}

struct Failures {
    window_start: Instant,
    count: u32,
    blocked_until: Option<Instant>,
}

/// Failures per key in a window; `limit.count` of them block the key for a window.
struct FailureTable<K> {
    map: Mutex<HashMap<K, Failures>>,
    limit: Rate,
}

impl<K: Hash + Eq> FailureTable<K> {
    fn new(limit: Rate) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            limit,
        }
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.limit.per_secs)
    }

    fn blocked(&self, key: &K) -> bool {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .and_then(|f| f.blocked_until)
            .is_some_and(|until| until > Instant::now())
    }

    /// Counts a failure; true when it blocked the key. Past `MAX_TRACKED` keys a
    /// new key's failures are not tracked.
    fn failed(&self, key: K) -> bool {
        let (window, now) = (self.window(), Instant::now());
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
            map.retain(|_, f| live(f, window, now));
            if map.len() >= MAX_TRACKED {
                return false;
            }
        }
        let f = map.entry(key).or_insert(Failures {
            window_start: now,
            count: 0,
            blocked_until: None,
        });
        if now.duration_since(f.window_start) >= window {
            f.window_start = now;
            f.count = 0;
        }
        f.count += 1;
        let blocks = f.count >= self.limit.count && f.blocked_until.is_none_or(|u| u <= now);
        if f.count >= self.limit.count {
            f.blocked_until = Some(now + window);
        }
        blocks
    }

    /// Forgets keys whose window and block have both passed.
    fn sweep(&self) {
        let (window, now) = (self.window(), Instant::now());
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, f| live(f, window, now));
    }
}

pub(crate) struct Guard {
    total: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_per_ip: usize,
    failures: FailureTable<IpAddr>,
    system_failures: FailureTable<String>,
}

/// A connection's place; dropping it frees the place.
pub(crate) struct Ticket {
    _permit: OwnedSemaphorePermit,
    ip: IpAddr,
    guard: Arc<Guard>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut per_ip = self.guard.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

impl Guard {
    pub fn new(settings: &SmppSettings) -> Arc<Self> {
        Arc::new(Self {
            total: Arc::new(Semaphore::new(settings.max_connections)),
            per_ip: Mutex::new(HashMap::new()),
            max_per_ip: settings.max_connections_per_ip,
            failures: FailureTable::new(settings.bind_failures),
            system_failures: FailureTable::new(settings.bind_failures_per_system_id),
        })
    }

    /// A place for a new connection from `ip`, or why there is none.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let ip = canonical(ip);
        if self.blocked(ip) {
            return Err(Refusal::BackOff);
        }
        let permit = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Total)?;
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        Ok(Ticket {
            _permit: permit,
            ip,
            guard: self.clone(),
        })
    }

    fn blocked(&self, ip: IpAddr) -> bool {
        self.failures.blocked(&ip)
    }

    /// Counts a failed bind from `ip`; past `bind_failures.count` in a window of
    /// `per_secs`, connections from it are closed at accept for `per_secs`.
    pub fn bind_failed(&self, ip: IpAddr) {
        self.failures.failed(canonical(ip));
    }

    /// Whether binds as this configured system_id are refused for now.
    pub fn system_blocked(&self, system_id: &str) -> bool {
        self.system_failures.blocked(&system_id.to_owned())
    }

    /// Counts a wrong password for a configured system_id, from any address; true
    /// when it blocked the system_id (`bind_failures_per_system_id`).
    pub fn system_failed(&self, system_id: &str) -> bool {
        self.system_failures.failed(system_id.to_owned())
    }

    /// Forgets addresses and system_ids whose window and block have both passed.
    pub fn sweep(&self) {
        self.failures.sweep();
        self.system_failures.sweep();
    }
}

fn live(f: &Failures, window: Duration, now: Instant) -> bool {
    now.duration_since(f.window_start) < window || f.blocked_until.is_some_and(|u| u > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SmppSettings {
        SmppSettings {
            max_connections: 3,
            max_connections_per_ip: 2,
            bind_failures: Rate {
                count: 2,
                per_secs: 60,
            },
            bind_failures_per_system_id: Rate {
                count: 2,
                per_secs: 60,
            },
            ..SmppSettings::default()
        }
    }

    #[tokio::test]
    async fn caps_and_back_off() {
        let guard = Guard::new(&settings());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        let a1 = guard.admit(a).unwrap();
        let _a2 = guard.admit(a).unwrap();
        assert_eq!(guard.admit(a).err(), Some(Refusal::PerIp));
        let _b1 = guard.admit(b).unwrap();
        assert_eq!(
            guard.admit("10.0.0.2".parse().unwrap()).err(),
            Some(Refusal::Total)
        );
        drop(a1);
        assert!(guard.admit(a).is_ok());
        guard.bind_failed(b);
        assert!(!guard.blocked(canonical(b)));
        guard.bind_failed("10.0.0.2".parse().unwrap());
        assert_eq!(guard.admit(b).err(), Some(Refusal::BackOff));
        assert!(guard.per_ip.lock().unwrap().len() <= 2);
        assert!(!guard.system_failed("kannel"));
        assert!(!guard.system_blocked("kannel"));
        assert!(guard.system_failed("kannel"), "the second failure blocks");
        assert!(guard.system_blocked("kannel") && !guard.system_blocked("other"));
    }
}
