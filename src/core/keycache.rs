//! API keys as the callers present them, remembered for a short while so that a
//! verify does not read its key from the database every time (one read through the
//! pool per request was a large share of a verify's CPU).
//!
//! Only keys that exist and are not revoked are remembered, so a stranger's bad keys
//! cost memory nothing, and the cache holds at most `CAPACITY` keys. A key revoked
//! on this node is forgotten at once (the revoke empties the cache). One revoked on
//! another node is refused here as soon as the store says keys changed (the key
//! generation, `AccessStore::key_generation`: on PostgreSQL a notice from the
//! database, milliseconds), and in any case within `cluster.api_key_cache_ms`
//! (default 500 ms), the time an entry lives; that is also the bound for one
//! revoked with the CLI.
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
    /// Key hash → the key, when it stops being trusted (core epoch ms), and the
    /// store's key generation it was read in.
    keys: RwLock<HashMap<String, (ApiKey, i64, u64)>>,
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

    /// The key behind `key_hash`, if it was read within the entry's life and in
    /// the key generation the store is in now.
    pub fn get(&self, key_hash: &str, generation: u64) -> Option<ApiKey> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let (key, until, read_in) = keys.get(key_hash)?;
        (self.clock.now_ms() < *until && *read_in == generation).then_some(*key)
    }

    /// Remembers a key read in key generation `generation` (taken before the read,
    /// so a change during the read makes it untrusted at once).
    pub fn keep(&self, key_hash: String, key: ApiKey, generation: u64) {
        if self.ttl_ms == 0 {
            return;
        }
        let now = self.clock.now_ms();
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= CAPACITY {
            keys.retain(|_, (_, until, _)| now < *until);
            if keys.len() >= CAPACITY {
                keys.clear();
            }
        }
        keys.insert(key_hash, (key, now.saturating_add(self.ttl_ms), generation));
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
        assert_eq!(cache.get("h", 0), None);
        cache.keep("h".into(), KEY, 0);
        clock.advance(Duration::from_millis(499));
        assert_eq!(cache.get("h", 0), Some(KEY));
        clock.advance(Duration::from_millis(1));
        assert_eq!(cache.get("h", 0), None, "trusted past its bound");

        cache.keep("h".into(), KEY, 0);
        cache.forget_all();
        assert_eq!(cache.get("h", 0), None);
    }

    /// A key read before the store's key generation moved (another node changed a
    /// key) is not trusted after, however young.
    #[test]
    fn a_key_read_in_an_older_generation_is_not_trusted() {
        let cache = KeyCache::new(500, HandClock::at(0));
        cache.keep("h".into(), KEY, 3);
        assert_eq!(cache.get("h", 3), Some(KEY));
        assert_eq!(cache.get("h", 4), None);
    }

    #[test]
    fn off_keeps_nothing_and_a_full_cache_stays_bounded() {
        let clock = HandClock::at(0);
        let off = KeyCache::new(0, clock.clone());
        off.keep("h".into(), KEY, 0);
        assert_eq!(off.get("h", 0), None);

        let cache = KeyCache::new(500, clock);
        for i in 0..=CAPACITY {
            cache.keep(format!("k{i}"), KEY, 0);
        }
        let held = cache.keys.read().unwrap().len();
        assert!(held <= CAPACITY, "{held}");
        assert_eq!(cache.get(&format!("k{CAPACITY}"), 0), Some(KEY));
    }
}
