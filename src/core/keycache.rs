//! API keys as the callers present them, remembered for a short while so that a
//! verify does not read its key from the database every time (one read through the
//! pool per request was a large share of a verify's CPU).
//!
//! Only keys that exist and are not revoked are remembered, so a stranger's bad keys
//! cost memory nothing, and the cache holds at most `CAPACITY` keys. A key revoked
//! on this node is forgotten at once (the revoke empties the cache); one revoked on
//! another node, or by the CLI, is refused here within `cluster.api_key_cache_ms`
//! (default 500 ms), the time an entry lives.
//!
//! A map on the core's clock rather than a cache crate: entries expire in the
//! core's time, so a test moves a `HandClock` past the bound instead of sleeping.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use otpgw_rules::records::ApiKey;

use super::Clock;

/// Distinct valid keys remembered at once: far above any bank's count of callers.
const CAPACITY: usize = 10_000;

pub(super) struct KeyCache {
    /// How long an entry is trusted, in ms; 0 = never (every request reads).
    ttl_ms: i64,
    /// Key hash → the key and when it stops being trusted (core epoch ms).
    keys: RwLock<HashMap<String, (ApiKey, i64)>>,
    clock: Arc<dyn Clock>,
}

impl KeyCache {
    pub fn new(ttl_ms: u64, clock: Arc<dyn Clock>) -> Self {
        Self {
            ttl_ms: i64::try_from(ttl_ms).unwrap_or(i64::MAX),
            keys: RwLock::new(HashMap::new()),
            clock,
        }
    }

    /// The key behind `key_hash`, if it was read within the entry's life.
    pub fn get(&self, key_hash: &str) -> Option<ApiKey> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let (key, until) = keys.get(key_hash)?;
        (self.clock.now_ms() < *until).then_some(*key)
    }

    pub fn keep(&self, key_hash: String, key: ApiKey) {
        if self.ttl_ms == 0 {
            return;
        }
        let now = self.clock.now_ms();
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= CAPACITY {
            keys.retain(|_, (_, until)| now < *until);
            if keys.len() >= CAPACITY {
                keys.clear();
            }
        }
        keys.insert(key_hash, (key, now.saturating_add(self.ttl_ms)));
    }

    /// After a revocation on this node: nothing remembered is trusted any more.
    pub fn forget_all(&self) {
        self.keys.write().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::HandClock;
    use otpgw_rules::vocab::Role;
    use std::time::Duration;

    const KEY: ApiKey = ApiKey {
        id: 7,
        role: Role::Verifier,
    };

    #[test]
    fn a_kept_key_lives_its_bound_and_no_longer_and_a_revoke_forgets_it() {
        let clock = HandClock::at(1_000_000);
        let cache = KeyCache::new(500, clock.clone());
        assert_eq!(cache.get("h"), None);
        cache.keep("h".into(), KEY);
        clock.advance(Duration::from_millis(499));
        assert_eq!(cache.get("h"), Some(KEY));
        clock.advance(Duration::from_millis(1));
        assert_eq!(cache.get("h"), None, "trusted past its bound");

        cache.keep("h".into(), KEY);
        cache.forget_all();
        assert_eq!(cache.get("h"), None);
    }

    #[test]
    fn off_keeps_nothing_and_a_full_cache_stays_bounded() {
        let clock = HandClock::at(0);
        let off = KeyCache::new(0, clock.clone());
        off.keep("h".into(), KEY);
        assert_eq!(off.get("h"), None);

        let cache = KeyCache::new(500, clock);
        for i in 0..=CAPACITY {
            cache.keep(format!("k{i}"), KEY);
        }
        let held = cache.keys.read().unwrap().len();
        assert!(held <= CAPACITY, "{held}");
        assert_eq!(cache.get(&format!("k{CAPACITY}")), Some(KEY));
    }
}
