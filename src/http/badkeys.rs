//! The bad-key budget (`http.bad_keys_per_ip`): requests without a valid API key one
//! address may send per window. Past it, that address's requests without a valid key
//! are answered 429 `too_many_bad_keys` with `Retry-After` instead of 401, so a
//! client guessing keys, or stuck with a revoked one, is told to back off.
//!
//! A valid key is never refused here, even from an address past its budget: behind
//! a TLS proxy every client has the proxy's address, and one client's bad keys must
//! not stop the payment switch. The key is still looked up, so this bounds no
//! database work; it makes the refusal visible (429, a metric, a sampled line).

use std::net::IpAddr;
use std::time::Duration;

use governor::clock::Clock;
use governor::DefaultKeyedRateLimiter;

use crate::config::Rate;

/// Addresses whose budget is remembered. The attacker chooses the addresses (an
/// IPv6 prefix holds many): past this, and after dropping the idle ones, a new
/// address is not tracked (its bad keys get 401) rather than stored.
const MAX_TRACKED: usize = 65_536;

pub struct BadKeys {
    spent: DefaultKeyedRateLimiter<IpAddr>,
}

impl BadKeys {
    pub fn new(budget: Rate) -> Self {
        Self {
            spent: governor::RateLimiter::keyed(crate::core::rate_quota(budget)),
        }
    }

    /// Spends one of `ip`'s budget on a request without a valid key: `Some(wait)`
    /// when the budget was already spent, the time until it allows one again.
    pub fn spend(&self, ip: IpAddr) -> Option<Duration> {
        let ip = ip.to_canonical();
        if self.spent.len() >= MAX_TRACKED {
            self.spent.retain_recent();
            if self.spent.len() >= MAX_TRACKED {
                metrics::counter!("otpgw_limiter_full_total").increment(1);
                return None;
            }
        }
        let refused = self.spent.check_key(&ip).err()?;
        Some(refused.wait_time_from(self.spent.clock().now()))
    }

    /// Forgets addresses whose budget has refilled; call periodically.
    pub fn sweep(&self) {
        self.spent.retain_recent();
        self.spent.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_budget_an_address_waits_and_others_do_not() {
        let keys = BadKeys::new(Rate {
            count: 3,
            per_secs: 60,
        });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert!((0..3).all(|_| keys.spend(a).is_none()));
        let wait = keys
            .spend("::ffff:10.0.0.1".parse().unwrap())
            .expect("over");
        assert!(
            wait > Duration::from_secs(15) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert_eq!(keys.spend(b), None);
        keys.sweep();
        assert_eq!(keys.spent.len(), 2);
    }
}
