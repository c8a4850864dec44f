//! The requests in flight, keyed by card (a reply names the customer's number, not
//! the session): each card's slot, the free-card pool, the per-session windows and
//! the counts. A request ends once, by its reply, an error or the timeout; the
//! sequence number's generation keeps a late answer from ending a newer request.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::cards::Card;
use crate::report::{lock, Report};

/// Sequence numbers at or above this are the tool's own (bind, unbind, keep-alive).
pub const CONTROL_SEQ: u32 = 0x7000_0000;

/// Where a card's request stands.
pub enum State {
    Idle,
    Waiting {
        scheduled: Instant,
        sent: Instant,
        session: usize,
    },
    /// Timed out: its late reply must not be credited to a new request.
    Retired,
}

/// One card: its request, the generation its sequence numbers carry, and the last
/// code it received.
pub struct Slot {
    pub state: State,
    pub generation: u32,
    pub code: Option<String>,
}

/// How a request ended.
pub enum Done {
    Code(String),
    NoCode,
    Error(String),
    Timeout,
}

/// What the sessions share: the cards, their slots, the free-card pool and the
/// per-session windows.
pub struct Shared {
    pub cards: Vec<Card>,
    pub by_msisdn: HashMap<String, usize>,
    pub slots: Vec<Mutex<Slot>>,
    pub free_tx: async_channel::Sender<usize>,
    pub free_rx: async_channel::Receiver<usize>,
    pub windows: Vec<Semaphore>,
    /// How many generations fit in a sequence number beside the card index.
    pub generations: u32,
    pub report: Mutex<Report>,
    pub sent: AtomicU64,
    pub submit_ok: AtomicU64,
    pub start: Instant,
    pub last_done: Mutex<Instant>,
    pub timeout: Duration,
    pub bar: ProgressBar,
}

impl Shared {
    pub fn seq(&self, idx: usize, generation: u32) -> u32 {
        let n = self.cards.len() as u32;
        1 + idx as u32 + n * (generation % self.generations)
    }

    /// The card and generation a sequence number names, if it is one of ours.
    pub fn card_of(&self, seq: u32) -> Option<(usize, u32)> {
        if seq == 0 || seq >= CONTROL_SEQ {
            return None;
        }
        let n = self.cards.len() as u32;
        let x = seq - 1;
        Some(((x % n) as usize, x / n))
    }

    /// Ends the request in flight on card `idx` (of `generation`, when known). False
    /// when there is none: a late or stray answer.
    pub fn complete(&self, idx: usize, generation: Option<u32>, done: Done) -> bool {
        let Some(slot) = self.slots.get(idx) else {
            return false;
        };
        let (scheduled, session) = {
            let mut slot = lock(slot);
            let current = slot.generation % self.generations;
            let (scheduled, session) = match slot.state {
                State::Waiting {
                    scheduled, session, ..
                } if generation.is_none_or(|g| g == current) => (scheduled, session),
                _ => return false,
            };
            slot.generation = slot.generation.wrapping_add(1);
            slot.state = if matches!(done, Done::Timeout) {
                State::Retired
            } else {
                State::Idle
            };
            if let Done::Code(code) = &done {
                slot.code = Some(code.clone());
            }
            (scheduled, session)
        };
        let now = Instant::now();
        {
            let mut r = lock(&self.report);
            match &done {
                Done::Code(_) => {
                    r.count("replies_with_code", 1);
                    r.latency.record(
                        scheduled.saturating_duration_since(self.start),
                        now - scheduled,
                    );
                }
                Done::NoCode => r.count("replies_without_code", 1),
                Done::Error(kind) => r.error(kind.clone()),
                Done::Timeout => r.error("timeout"),
            }
        }
        *lock(&self.last_done) = now;
        if !matches!(done, Done::Timeout) {
            // Capacity is the number of cards: never full.
            let _ = self.free_tx.try_send(idx);
        }
        if let Some(w) = self.windows.get(session) {
            w.add_permits(1);
        }
        self.bar.inc(1);
        true
    }

    /// Times out requests older than the timeout; returns how many are in flight.
    pub fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut waiting = 0;
        for (idx, slot) in self.slots.iter().enumerate() {
            let expired = match lock(slot).state {
                State::Waiting { sent, .. } => {
                    waiting += 1;
                    now.duration_since(sent) > self.timeout
                }
                _ => false,
            };
            if expired && self.complete(idx, None, Done::Timeout) {
                waiting -= 1;
            }
        }
        waiting
    }
}
