//! This node's limiters: governor's GCRA in memory, keyed per number, card and
//! API key (bounded by `MAX_KEYS` each), and direct ones per SMPP peer, operator
//! connection and for the global cap. `Admission` (the parent) asks them first
//! and the cluster's limits (`quota.rs`) after.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::{Admit, Refused};
use crate::config::{LimitSettings, PeerSettings, Rate};

type Keyed<K, C> =
    RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Keys one limiter may hold. Past it the idle ones are dropped at once, and if the
/// map is still full a new key is refused (treated as over its limit) rather than
/// stored: a flood of made-up numbers cannot grow memory between two sweeps.
const MAX_KEYS: usize = 1_000_000;

pub struct Limits<C: Clock> {
    clock: C,
    max_keys: usize,
    /// Per-number limiters are keyed by the number's keyed hash (`number`): 8
    /// bytes a key instead of a string on the heap, so a flood of made-up numbers
    /// costs a third of the memory.
    pub(super) msisdn: Vec<Keyed<u64, C>>,
    card: Keyed<i64, C>,
    /// One notice per MSISDN per window, whichever limit it hit.
    notice: Keyed<u64, C>,
    unknown_sender: Keyed<u64, C>,
    /// This process's random key for `number` (an attacker cannot aim collisions).
    numbers: std::collections::hash_map::RandomState,
    peers: HashMap<String, Direct<C>>,
    /// Each operator connection's customer messages per second (`mo_tps`).
    operators: HashMap<String, Direct<C>>,
    /// Each peer's PDUs per second (0 = unlimited), for the cluster-wide limit.
    peer_tps: Vec<(String, u32)>,
    global: Option<Direct<C>>,
    verify: Option<Keyed<i64, C>>,
    /// Codes pushed per second per API key.
    push_key: Option<Keyed<i64, C>>,
    guard_failures: Keyed<i64, C>,
    guard_cooldown: Duration,
    guard_tripped: Mutex<HashMap<i64, C::Instant>>,
    /// Wrong codes per (API key, card's `pan_hash`), and the pairs refused until
    /// their window ends.
    card_failures: Keyed<(i64, String), C>,
    card_failures_window: Duration,
    card_tripped: Mutex<HashMap<(i64, String), C::Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `rate` as governor's quota: `count` at once, refilled evenly over `per_secs`.
pub fn quota(rate: Rate) -> Quota {
    let count = NonZeroU32::new(rate.count.max(1)).unwrap_or(NonZeroU32::MIN);
    let period = Duration::from_secs(rate.per_secs.max(1));
    Quota::with_period(period / count.get())
        .unwrap_or_else(|| Quota::per_second(count))
        .allow_burst(count)
}

fn keyed<K: std::hash::Hash + Eq + Clone, C: Clock + Clone>(q: Quota, clock: &C) -> Keyed<K, C> {
    RateLimiter::new(q, DefaultKeyedStateStore::default(), clock.clone())
}

fn per_second(n: u32) -> Option<Quota> {
    NonZeroU32::new(n).map(Quota::per_second)
}

fn wait<C: Clock>(clock: &C, not_until: &governor::NotUntil<C::Instant>) -> Duration {
    not_until.wait_time_from(clock.now())
}

impl<C: Clock + Clone> Limits<C> {
    pub fn with_clock(settings: &LimitSettings, peers: &[PeerSettings], clock: C) -> Self {
        let direct = |q: Quota| RateLimiter::direct_with_clock(q, clock.clone());
        let window = settings
            .msisdn
            .iter()
            .map(|r| r.per_secs)
            .max()
            .unwrap_or(60);
        Self {
            msisdn: settings
                .msisdn
                .iter()
                .map(|r| keyed(quota(*r), &clock))
                .collect(),
            card: keyed(quota(settings.card), &clock),
            notice: keyed(
                quota(Rate {
                    count: 1,
                    per_secs: window.min(3600),
                }),
                &clock,
            ),
            unknown_sender: keyed(quota(settings.unknown_sender), &clock),
            peers: peers
                .iter()
                .filter_map(|p| {
                    per_second(p.tps.unwrap_or(settings.peer_tps))
                        .map(|q| (p.system_id.clone(), direct(q)))
                })
                .collect(),
            operators: HashMap::new(),
            peer_tps: peers
                .iter()
                .map(|p| (p.system_id.clone(), p.tps.unwrap_or(settings.peer_tps)))
                .collect(),
            global: per_second(settings.global_per_second).map(direct),
            verify: per_second(settings.verify_per_key_per_second).map(|q| keyed(q, &clock)),
            push_key: per_second(settings.push_per_key_per_second).map(|q| keyed(q, &clock)),
            guard_failures: keyed(
                quota(Rate {
                    count: settings.guard_max_failures,
                    per_secs: settings.guard_window_secs,
                }),
                &clock,
            ),
            guard_cooldown: Duration::from_secs(settings.guard_cooldown_secs),
            guard_tripped: Mutex::new(HashMap::new()),
            card_failures: keyed(
                quota(Rate {
                    count: settings.card_failures_per_key,
                    per_secs: settings.card_failures_window_secs,
                }),
                &clock,
            ),
            card_failures_window: Duration::from_secs(settings.card_failures_window_secs),
            card_tripped: Mutex::new(HashMap::new()),
            max_keys: MAX_KEYS,
            numbers: std::collections::hash_map::RandomState::new(),
            clock,
        }
    }

    /// Operator connections' MO rates, by connection name (0 = unlimited).
    pub fn with_operators(mut self, operators: &[(String, u32)]) -> Self {
        self.operators = operators
            .iter()
            .filter_map(|(name, tps)| {
                per_second(*tps).map(|q| {
                    let limiter = RateLimiter::direct_with_clock(q, self.clock.clone());
                    (name.clone(), limiter)
                })
            })
            .collect();
        self
    }

    /// The same limits with another key cap (tests use a small one).
    #[cfg(test)]
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Hands the refusals in force (keys and key-card pairs in their cool-down) to
    /// `next`, a reload's limits: a reload must not lift them.
    pub fn carry_over(&self, next: &Self) {
        *lock(&next.guard_tripped) = std::mem::take(&mut *lock(&self.guard_tripped));
        *lock(&next.card_tripped) = std::mem::take(&mut *lock(&self.card_tripped));
    }

    /// True when `limiter` holds as many keys as it may, even after dropping the
    /// idle ones.
    fn full<K: std::hash::Hash + Eq + Clone>(&self, limiter: &Keyed<K, C>) -> bool {
        if limiter.len() < self.max_keys {
            return false;
        }
        limiter.retain_recent();
        let full = limiter.len() >= self.max_keys;
        if full {
            metrics::counter!("otpgw_limiter_full_total").increment(1);
        }
        full
    }

    /// A number's limiter key: its SipHash under this process's random key. Two
    /// numbers share a key with odds of 2⁻⁶⁴, and nobody outside can pick them.
    fn number(&self, msisdn: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.numbers, msisdn)
    }

    /// Keys held by the per-number limiters together (the windows, the notices and
    /// the unknown senders'), for the memory bound's test.
    #[cfg(test)]
    pub fn number_keys(&self) -> usize {
        self.msisdn.iter().map(|l| l.len()).sum::<usize>()
            + self.notice.len()
            + self.unknown_sender.len()
    }

    /// Each configured peer's PDUs per second (0 = unlimited).
    pub fn peer_tps(&self) -> &[(String, u32)] {
        &self.peer_tps
    }

    /// Over a limit (this node's, or the cluster's): one notice per MSISDN per
    /// window, then silence.
    pub fn over(&self, msisdn: &str, retry_after: Duration, rule: &'static str) -> Admit {
        metrics::counter!("otpgw_limited_total", "rule" => rule).increment(1);
        if self.notice.check_key(&self.number(msisdn)).is_ok() {
            Admit::Notify { retry_after, rule }
        } else {
            Admit::Silent { rule }
        }
    }

    /// Any message from a customer: the per-MSISDN windows.
    pub fn admit_msisdn(&self, msisdn: &str) -> Admit {
        let key = self.number(msisdn);
        if self.msisdn.iter().any(|l| self.full(l)) || self.full(&self.notice) {
            metrics::counter!("otpgw_limited_total", "rule" => "msisdn").increment(1);
            return Admit::Silent { rule: "msisdn" };
        }
        for limiter in &self.msisdn {
            if let Err(nu) = limiter.check_key(&key) {
                return self.over(msisdn, wait(&self.clock, &nu), "msisdn");
            }
        }
        Admit::Allow
    }

    /// A code for this card: at most one per the card interval.
    pub fn admit_card(&self, msisdn: &str, card_id: i64) -> Admit {
        if self.full(&self.card) {
            return Admit::Silent { rule: "card" };
        }
        match self.card.check_key(&card_id) {
            Ok(()) => Admit::Allow,
            Err(nu) => self.over(msisdn, wait(&self.clock, &nu), "card"),
        }
    }

    /// A code pushed through the API: the key's rate, the card's, and the phone's
    /// windows (the same as for the customer's own messages: a phone gets no more
    /// codes pushed than asked for), answered with the time to wait. A key that
    /// pushes to many cards of one phone, or to many phones, is held here.
    pub fn admit_push(&self, key_id: i64, card_id: i64, msisdn: &str) -> Result<(), Refused> {
        let refused = |rule: &'static str, nu: &governor::NotUntil<C::Instant>| {
            metrics::counter!("otpgw_limited_total", "rule" => rule).increment(1);
            Refused {
                retry_after: wait(&self.clock, nu),
                rule,
            }
        };
        if let Some(Err(nu)) = self.push_key.as_ref().map(|l| l.check_key(&key_id)) {
            return Err(refused("push_key", &nu));
        }
        self.card
            .check_key(&card_id)
            .map_err(|nu| refused("card", &nu))?;
        let phone = self.number(msisdn);
        for limiter in &self.msisdn {
            limiter
                .check_key(&phone)
                .map_err(|nu| refused("msisdn", &nu))?;
        }
        Ok(())
    }

    /// Whether an unknown sender gets the "not registered" reply this time.
    pub fn notify_unknown_sender(&self, msisdn: &str) -> bool {
        let ok = !self.full(&self.unknown_sender)
            && self.unknown_sender.check_key(&self.number(msisdn)).is_ok();
        if !ok {
            metrics::counter!("otpgw_limited_total", "rule" => "unknown_sender").increment(1);
        }
        ok
    }

    /// One PDU from an SMPP peer, and the global cap on messages handled.
    pub fn admit_peer(&self, system_id: &str) -> Result<(), Refused> {
        self.admit_within(self.peers.get(system_id), "peer")
    }

    /// A customer's message from an operator connection: its own rate first, so a
    /// flooding SMSC is refused before it takes from the cap the peers share.
    pub fn admit_operator(&self, name: &str) -> Result<(), Refused> {
        self.admit_within(self.operators.get(name), "operator")
    }

    /// `own` (a peer's or a connection's limiter, if any), then the global cap.
    fn admit_within(&self, own: Option<&Direct<C>>, rule: &'static str) -> Result<(), Refused> {
        if let Some(Err(nu)) = own.map(|l| l.check()) {
            metrics::counter!("otpgw_limited_total", "rule" => rule).increment(1);
            return Err(Refused {
                retry_after: wait(&self.clock, &nu),
                rule,
            });
        }
        if let Some(Err(nu)) = self.global.as_ref().map(|l| l.check()) {
            metrics::counter!("otpgw_limited_total", "rule" => "global").increment(1);
            return Err(Refused {
                retry_after: wait(&self.clock, &nu),
                rule: "global",
            });
        }
        Ok(())
    }

    /// One verify request from an API key: its rate, and whether the guard holds it.
    pub fn admit_verify(&self, key_id: i64) -> Result<(), Refused> {
        let tripped = self
            .guard_tripped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key_id)
            .copied();
        if let Some(until) = tripped {
            let now = self.clock.now();
            if until > now {
                metrics::counter!("otpgw_limited_total", "rule" => "guard").increment(1);
                return Err(Refused {
                    retry_after: until.duration_since(now).into(),
                    rule: "guard",
                });
            }
        }
        if let Some(Err(nu)) = self.verify.as_ref().map(|l| l.check_key(&key_id)) {
            metrics::counter!("otpgw_limited_total", "rule" => "verify_key").increment(1);
            return Err(Refused {
                retry_after: wait(&self.clock, &nu),
                rule: "verify_key",
            });
        }
        Ok(())
    }

    /// Counts a wrong code from `key_id`; true when this failure trips the guard.
    pub fn record_verify_failure(&self, key_id: i64) -> bool {
        if self.guard_failures.check_key(&key_id).is_ok() {
            return false;
        }
        let until = self.clock.now() + self.guard_cooldown.into();
        let mut tripped = self.guard_tripped.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        let newly = tripped.get(&key_id).is_none_or(|t| *t <= now);
        if newly {
            tripped.insert(key_id, until);
        }
        newly
    }

    /// Whether `key_id` may verify the card `pan_hash` now: refused after too many
    /// wrong codes for it (`record_card_failure`).
    pub fn admit_card_guess(&self, key_id: i64, pan_hash: &str) -> Result<(), Refused> {
        let tripped = self.card_tripped.lock().unwrap_or_else(|p| p.into_inner());
        let Some(until) = tripped.get(&(key_id, pan_hash.to_owned())).copied() else {
            return Ok(());
        };
        let now = self.clock.now();
        if until <= now {
            return Ok(());
        }
        metrics::counter!("otpgw_limited_total", "rule" => "card_failures_per_key").increment(1);
        Err(Refused {
            retry_after: until.duration_since(now).into(),
            rule: "card_failures_per_key",
        })
    }

    /// Counts a wrong code from `key_id` for the card `pan_hash`; past the limit the
    /// pair is refused for one window. At most `max_keys` pairs are held (a wrong
    /// code is only answered for an enrolled card, so they are real cards).
    pub fn record_card_failure(&self, key_id: i64, pan_hash: &str) {
        let pair = (key_id, pan_hash.to_owned());
        if self.card_failures.check_key(&pair).is_ok() {
            return;
        }
        let now = self.clock.now();
        let mut tripped = self.card_tripped.lock().unwrap_or_else(|p| p.into_inner());
        if tripped.len() >= self.max_keys {
            tripped.retain(|_, until| *until > now);
        }
        if tripped.len() < self.max_keys {
            tripped.insert(pair, now + self.card_failures_window.into());
        }
    }

    pub fn guard_cooldown(&self) -> Duration {
        self.guard_cooldown
    }

    /// Forgets keys whose windows have passed; call periodically.
    pub fn housekeeping(&self) {
        for l in &self.msisdn {
            l.retain_recent();
        }
        self.card.retain_recent();
        self.notice.retain_recent();
        self.unknown_sender.retain_recent();
        if let Some(v) = &self.verify {
            v.retain_recent();
        }
        self.guard_failures.retain_recent();
        self.card_failures.retain_recent();
        let now = self.clock.now();
        self.card_tripped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, until| *until > now);
        self.guard_tripped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, until| *until > now);
    }
}
