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
mod quota;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::config::{LimitSettings, PeerSettings, Rate};

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

type Keyed<K, C> =
    RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

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
    msisdn: Vec<Keyed<u64, C>>,
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

#[cfg(test)]
mod tests;
