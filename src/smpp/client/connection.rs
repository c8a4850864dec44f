//! One configured operator connection, shared by its sessions (a transceiver, or a
//! transmitter and a receiver): its settings, each session's state for operations,
//! the counters, the TPS pacing, and the receipts that beat their submit_sm_resp.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::config::ConnectionSettings;
use crate::core::links::{ConnectionStatus, Phase, SessionStatus};
use crate::core::{Clock, SystemClock};
use otpgw_rules::vocab::Delivery;

/// Receipts that beat their submit_sm_resp, per connection, and how long we wait.
const HELD_RECEIPTS_MAX: usize = 10_000;
const HELD_RECEIPT_TTL: Duration = Duration::from_secs(30);
/// Codes waiting for their receipt, per connection; past this, new ones are not
/// watched (nothing else changes for them).
const AWAITING_MAX: usize = 100_000;
/// Receipts being recorded at once, per connection. A session that has this many in
/// flight answers the next deliver_sm only when one is done, so it stops reading
/// its socket: the SMSC's window and TCP hold the rest of a flood, not our memory
/// (one receipt task was spawned per PDU, unbounded, and a flood of 720,000 in
/// 12 s grew the process to 1.7 GB and stalled verify behind the database).
const RECEIPTS_IN_FLIGHT: usize = 64;

/// One configured operator connection, shared by its sessions.
pub(crate) struct Connection {
    pub index: usize,
    pub settings: ConnectionSettings,
    sessions: Mutex<Vec<SessionStatus>>,
    pub window_in_use: AtomicUsize,
    pub submitted: AtomicU64,
    pub throttled: AtomicU64,
    pub failed: AtomicU64,
    pub receipts: AtomicU64,
    pub received: AtomicU64,
    pub unmatched_receipts: AtomicU64,
    pub untracked: AtomicU64,
    /// Segments per second, when the operator set a TPS.
    pub pacing: Option<DefaultDirectRateLimiter>,
    /// Receipts whose message id we have not stored yet (they beat the response).
    held: Mutex<VecDeque<(String, Delivery, Instant)>>,
    /// Held receipts pushed out by newer ones since the last sweep (logged there).
    evicted: AtomicUsize,
    /// Places for receipts being recorded (`RECEIPTS_IN_FLIGHT`).
    pub receipt_places: Arc<Semaphore>,
    /// Codes submitted with a receipt asked for, and when, until it comes.
    awaiting: Mutex<HashMap<i64, Instant>>,
}

impl Connection {
    pub(super) fn new(index: usize, settings: ConnectionSettings) -> Self {
        let binds: &[&'static str] = match settings.bind {
            crate::config::ConnectionBind::Transceiver => &["trx"],
            crate::config::ConnectionBind::TransmitterReceiver => &["tx", "rx"],
        };
        let now = SystemClock.now_ms();
        let pacing = std::num::NonZeroU32::new(settings.tps)
            .map(|tps| RateLimiter::direct(Quota::per_second(tps)));
        Self {
            index,
            sessions: Mutex::new(
                binds
                    .iter()
                    .map(|b| SessionStatus {
                        bind: b,
                        state: Phase::Connecting,
                        since: now,
                        last_error: None,
                    })
                    .collect(),
            ),
            settings,
            window_in_use: AtomicUsize::new(0),
            submitted: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            receipts: AtomicU64::new(0),
            received: AtomicU64::new(0),
            unmatched_receipts: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
            pacing,
            held: Mutex::new(VecDeque::new()),
            evicted: AtomicUsize::new(0),
            receipt_places: Arc::new(Semaphore::new(RECEIPTS_IN_FLIGHT)),
            awaiting: Mutex::new(HashMap::new()),
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Records a session's new state.
    pub fn set_phase(&self, bind: &str, state: Phase, error: Option<String>) {
        let now = SystemClock.now_ms();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = sessions.iter_mut().find(|s| s.bind == bind) {
            if s.state != state {
                s.since = now;
            }
            s.state = state;
            if error.is_some() || state == Phase::Bound {
                s.last_error = error;
            }
        }
        let up = sessions.iter().all(|s| s.state == Phase::Bound);
        metrics::gauge!("otpgw_smpp_connection_up", "connection" => self.settings.name.clone())
            .set(if up { 1.0 } else { 0.0 });
    }

    /// Keeps a receipt for a message whose submit_sm_resp has not been handled yet.
    pub fn hold_receipt(&self, message_id: String, delivery: Delivery) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.len() >= HELD_RECEIPTS_MAX {
            held.pop_front();
            self.evicted.fetch_add(1, Ordering::Relaxed);
            self.unmatched(1);
        }
        held.push_back((message_id, delivery, Instant::now()));
    }

    /// The held receipts that name `message_id` in any of its forms, removed.
    pub fn take_held(&self, message_id: &str) -> Vec<(String, Delivery)> {
        let keys = otpgw_parsers::receipt::message_id_keys(message_id);
        let same = |other: &str| {
            if other == message_id {
                return true;
            }
            let (a, b) = otpgw_parsers::receipt::message_id_keys(other);
            let theirs = [a, b];
            theirs
                .iter()
                .flatten()
                .any(|k| [&keys.0, &keys.1].into_iter().flatten().any(|o| o == k))
        };
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mut taken = Vec::new();
        held.retain(|(id, delivery, _)| {
            if same(id) {
                taken.push((id.clone(), *delivery));
                false
            } else {
                true
            }
        });
        taken
    }

    /// Drops the held receipts that waited `HELD_RECEIPT_TTL` for a message of this
    /// connection in vain: each is counted in `otpgw_receipts_unmatched_total` (a
    /// receipt for another system's message, an id format the matching does not
    /// know, or a message whose response was lost), and the sweep logs how many.
    /// Returns the number dropped now.
    pub(super) fn forget_old_receipts(&self) -> usize {
        let dropped = {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            let before = held.len();
            held.retain(|(_, _, at)| at.elapsed() < HELD_RECEIPT_TTL);
            before - held.len()
        };
        self.unmatched(dropped);
        let evicted = self.evicted.swap(0, Ordering::Relaxed);
        if dropped + evicted > 0 {
            tracing::warn!(connection = %self.settings.name, dropped, evicted,
                "receipts that match no message of this connection: dropped");
        }
        dropped
    }

    /// Watches a code submitted with a receipt asked for.
    pub(super) fn awaiting_receipt(&self, code_id: i64) {
        if !self.settings.registered_delivery {
            return;
        }
        let mut awaiting = self.awaiting.lock().unwrap_or_else(|p| p.into_inner());
        if awaiting.len() < AWAITING_MAX {
            awaiting.insert(code_id, Instant::now());
        }
    }

    /// A receipt for this code came back.
    pub(super) fn receipt_came(&self, code_id: i64) {
        self.awaiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&code_id);
    }

    /// Counts and forgets the codes whose receipt did not come within
    /// `receipt_wait_secs`: an SMSC that drops messages, or sends no receipts,
    /// shows in `otpgw_codes_without_receipt_total{connection}` and the log.
    pub(super) fn forget_unanswered(&self) -> usize {
        let wait = Duration::from_secs(self.settings.receipt_wait_secs);
        let lapsed = {
            let mut awaiting = self.awaiting.lock().unwrap_or_else(|p| p.into_inner());
            let before = awaiting.len();
            awaiting.retain(|_, at| at.elapsed() < wait);
            before - awaiting.len()
        };
        if lapsed > 0 {
            metrics::counter!("otpgw_codes_without_receipt_total", "connection" => self.settings.name.clone())
                .increment(lapsed as u64);
            tracing::warn!(connection = %self.settings.name, codes = lapsed, wait_secs = self.settings.receipt_wait_secs,
                "codes submitted with no receipt back within receipt_wait_secs");
        }
        lapsed
    }

    /// Counts receipts that matched no message of this connection.
    pub(super) fn unmatched(&self, receipts: usize) {
        if receipts > 0 {
            self.unmatched_receipts
                .fetch_add(receipts as u64, Ordering::Relaxed);
            metrics::counter!("otpgw_receipts_unmatched_total", "connection" => self.settings.name.clone())
                .increment(receipts as u64);
        }
    }

    pub(super) fn status(&self, queued: usize) -> ConnectionStatus {
        let sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let rank = |p: Phase| match p {
            Phase::Bound => 3,
            Phase::Connecting => 2,
            Phase::BackingOff => 1,
            Phase::Down => 0,
        };
        let worst = sessions.iter().min_by_key(|s| rank(s.state)).cloned();
        let s = &self.settings;
        ConnectionStatus {
            name: s.name.clone(),
            host: s.host.clone(),
            port: s.port,
            routes: s.routes.clone(),
            priority: s.priority,
            state: worst.as_ref().map_or(Phase::Down, |w| w.state),
            since: worst.as_ref().map_or(0, |w| w.since),
            sessions,
            window: s.window,
            window_in_use: self.window_in_use.load(Ordering::Relaxed),
            tps: s.tps,
            queued,
            submitted: self.submitted.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            receipts: self.receipts.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            unmatched_receipts: self.unmatched_receipts.load(Ordering::Relaxed),
            untracked: self.untracked.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Connection {
        let settings = toml::from_str(
            "name = \"mci\"\nhost = \"127.0.0.1\"\nport = 2775\nsystem_id = \"b\"\npassword = \"p\"",
        )
        .unwrap();
        Connection::new(0, settings)
    }

    #[tokio::test(start_paused = true)]
    async fn a_receipt_that_never_matches_is_dropped_after_its_wait() {
        let c = connection();
        c.hold_receipt("1a2b".into(), Delivery::Delivered);
        tokio::time::advance(HELD_RECEIPT_TTL - Duration::from_secs(1)).await;
        assert_eq!(c.forget_old_receipts(), 0, "still waiting for its response");
        c.hold_receipt("3c4d".into(), Delivery::Delivered);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(c.forget_old_receipts(), 1, "the first waited long enough");
        assert_eq!(c.take_held("3c4d").len(), 1, "the second still held");
    }
}
