//! Who may hold a connection: a cap on connections in total and per address, and a
//! back-off for addresses that keep failing to bind. Everything here is decided at
//! accept time, before a byte is read, so a hostile address costs one accept and one
//! close, not a session.
//!
//! Every map is bounded: per-address counts exist only while that address holds a
//! connection (so at most `max_connections` entries), and bind failures are tracked
//! for at most [`MAX_TRACKED`] addresses, swept as their windows pass.

use std::collections::HashMap;
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

pub(crate) struct Guard {
    total: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_per_ip: usize,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    failure_limit: Rate,
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
            failures: Mutex::new(HashMap::new()),
            failure_limit: settings.bind_failures,
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
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures
            .get(&ip)
            .and_then(|f| f.blocked_until)
            .is_some_and(|until| until > Instant::now())
    }

    /// Counts a failed bind from `ip`; past `bind_failures.count` in a window of
    /// `per_secs`, connections from it are closed at accept for `per_secs`.
    pub fn bind_failed(&self, ip: IpAddr) {
        let ip = canonical(ip);
        let window = Duration::from_secs(self.failure_limit.per_secs);
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_TRACKED && !failures.contains_key(&ip) {
            failures.retain(|_, f| live(f, window, now));
            if failures.len() >= MAX_TRACKED {
                return;
            }
        }
        let f = failures.entry(ip).or_insert(Failures {
            window_start: now,
            count: 0,
            blocked_until: None,
        });
        if now.duration_since(f.window_start) >= window {
            f.window_start = now;
            f.count = 0;
        }
        f.count += 1;
        if f.count >= self.failure_limit.count {
            f.blocked_until = Some(now + window);
        }
    }

    /// Forgets addresses whose window and block have both passed.
    pub fn sweep(&self) {
        let window = Duration::from_secs(self.failure_limit.per_secs);
        let now = Instant::now();
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, f| live(f, window, now));
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
    }
}
