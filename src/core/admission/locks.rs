//! The lock budget of an API key (`limits.locks_per_key`): how many cards one key's
//! wrong codes may lock in a window. A verifier key can lock any card whose number
//! it knows, and pushing a code first gives every card a live code to guess at
//! (33 cards locked in 0.2 s); past its budget, the key's wrong codes count nothing
//! and are refused 429 `lock_budget_exceeded`, so one leaked or misbehaving key
//! cannot lock the bank's customers out wholesale.
//!
//! The locks are remembered per node, as times in a window (the count is small),
//! keyed by API key id: an authenticated key, so the map holds at most the bank's
//! keys. With several nodes each keeps its own budget (SECURITY.md says so).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use crate::config::Rate;

pub(crate) struct LockBudget {
    count: usize,
    window_ms: i64,
    spent: Mutex<HashMap<i64, VecDeque<i64>>>,
}

impl LockBudget {
    pub fn new(rate: Rate) -> Self {
        Self {
            count: usize::try_from(rate.count).unwrap_or(usize::MAX),
            window_ms: i64::try_from(rate.per_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            spent: Mutex::new(HashMap::new()),
        }
    }

    /// Hands this budget's spent locks to `next` (a reload's budget), which
    /// applies its own count and window to them.
    pub fn carry_over(&self, next: &Self) {
        let spent = std::mem::take(&mut *self.spent.lock().unwrap_or_else(|p| p.into_inner()));
        *next.spent.lock().unwrap_or_else(|p| p.into_inner()) = spent;
    }

    /// `Err(retry_after)` when the key has locked `count` cards in the window ending
    /// `now`: until the oldest of them leaves it.
    pub fn left(&self, key_id: i64, now: i64) -> Result<(), Duration> {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        let Some(times) = spent.get_mut(&key_id) else {
            return Ok(());
        };
        self.forget_old(times, now);
        match times.front() {
            Some(&oldest) if times.len() >= self.count => {
                let ends = oldest.saturating_add(self.window_ms).saturating_sub(now);
                Err(Duration::from_millis(
                    u64::try_from(ends).unwrap_or(0).max(1000),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Records that the key's wrong code locked a card at `now`.
    pub fn spend(&self, key_id: i64, now: i64) {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        let times = spent.entry(key_id).or_default();
        self.forget_old(times, now);
        times.push_back(now);
        while times.len() > self.count {
            times.pop_front();
        }
    }

    /// Drops keys whose locks have all left the window.
    pub fn housekeeping(&self, now: i64) {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        spent.retain(|_, times| {
            self.forget_old(times, now);
            !times.is_empty()
        });
    }

    fn forget_old(&self, times: &mut VecDeque<i64>, now: i64) {
        while times
            .front()
            .is_some_and(|&t| t.saturating_add(self.window_ms) <= now)
        {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_lock_in_an_hour_is_refused_until_the_first_leaves_the_window() {
        let budget = LockBudget::new(Rate {
            count: 5,
            per_secs: 3600,
        });
        for i in 0..5 {
            assert_eq!(budget.left(7, i * 1000), Ok(()));
            budget.spend(7, i * 1000);
        }
        assert_eq!(
            budget.left(7, 10_000),
            Err(Duration::from_millis(3_590_000))
        );
        assert_eq!(budget.left(8, 10_000), Ok(()), "another key has its own");
        assert_eq!(
            budget.left(7, 3_600_000),
            Ok(()),
            "the first lock left the window"
        );
        budget.housekeeping(3_604_001);
        assert!(budget.spent.lock().unwrap().is_empty());
    }
}
