//! Where the core's time comes from. Everything the rules store (issue times,
//! expiries, locks) is wall-clock epoch milliseconds; rate limits measure elapsed
//! time that never goes back. Both come from one [`Clock`], so a test that moves a
//! [`HandClock`] moves code ages, lock ends, TOTP steps and limit windows alike,
//! without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Wall-clock time in epoch milliseconds.
    fn now_ms(&self) -> i64;
    /// Time since a fixed start of this clock, never going back.
    fn elapsed(&self) -> Duration;
}

/// The machine's clocks.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    fn elapsed(&self) -> Duration {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }
}

/// A clock that moves only when told to, for tests.
pub struct HandClock {
    start: i64,
    now: AtomicI64,
}

impl HandClock {
    pub fn at(epoch_ms: i64) -> Arc<Self> {
        Arc::new(Self {
            start: epoch_ms,
            now: AtomicI64::new(epoch_ms),
        })
    }

    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for HandClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    fn elapsed(&self) -> Duration {
        let ms = self.now_ms().saturating_sub(self.start);
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }
}

/// A core clock as the rate limiters (governor) read it.
#[derive(Clone)]
pub(crate) struct LimitClock(pub Arc<dyn Clock>);

impl governor::clock::Clock for LimitClock {
    type Instant = governor::nanos::Nanos;

    fn now(&self) -> Self::Instant {
        self.0.elapsed().into()
    }
}
