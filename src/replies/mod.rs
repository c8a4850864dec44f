//! The one way out: every message otpgw sends over SMPP waits here until a session
//! that can carry it takes it. A reply to a listener peer waits for any receiving
//! session of that peer's system_id on this node; a reply to an operator's
//! customer, a pushed code or an activation message waits for its route, where the
//! bound connection first by priority takes it (a reply prefers the connection its
//! message came in on while that one can send).
//!
//! * `mod.rs`    — the queues per target, the sessions that take from them
//!   ([`Taker`]), the caps, the expiry sweep.
//! * `routes.rs` — which route serves a number (client mode's prefixes).
//! * `upkeep.rs` — the sweep of what expired, and with several nodes the outbox
//!   rows this node's sessions can carry, claimed every `outbox_poll_ms`.
//!
//! A session is woken only when its targets get work: one waiting taker per push
//! (the next in turn for a peer, the first by priority for a route), and a taker
//! that leaves work behind passes the wake-up on. Everything is bounded: a peer's
//! queue, all route queues together, and what a peer can make us queue (notices,
//! not codes, are refused past the high-water mark).

mod routes;
mod upkeep;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use routes::Routes;
pub use upkeep::run;

use crate::core::{peer_target, route_target, Clock, Outbound, Push};

/// Replies waiting for one listener peer; past this a reply is refused (counted).
const PEER_CAPACITY: usize = 10_000;
/// Above this many waiting replies for a peer, only replies carrying a code are
/// taken: notices ("not registered", "try later") are what a flood of unknown
/// senders produces, and they must not take the room of codes.
const PEER_HIGH_WATER: usize = PEER_CAPACITY * 8 / 10;
/// Messages waiting on all routes together; past this, pushes are refused (HTTP
/// 503) and replies dropped (counted), so a dead route cannot eat the memory.
/// One route holds at most its share (`ROUTE_CAPACITY` over the configured
/// routes), so an operator that stops taking its messages, or a hostile SMSC
/// making replies for its own route, cannot fill the room of the others.
const ROUTE_CAPACITY: usize = 50_000;

/// Where a message waits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A listener peer's system_id.
    Peer(String),
    /// An operator route ("" is the default route).
    Route(String),
}

impl Target {
    /// The target's name in the shared outbox.
    pub fn outbox_key(&self) -> String {
        match self {
            Target::Peer(system_id) => peer_target(system_id),
            Target::Route(route) => route_target(route),
        }
    }
}

/// What makes a message a USSD screen: continue or end, and the session to echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UssdMeta {
    pub end: bool,
    pub session_info: Option<(u8, u8)>,
}

/// A message on its way out.
#[derive(Clone)]
pub struct Outgoing {
    /// Our source_addr: the sender id for SMS, the dialled service for USSD; empty
    /// for the operator connection's configured source.
    pub source: String,
    pub to: String,
    pub text: String,
    /// What it says, for logs and metrics (a `ReplyKind` name, "code", "ussd").
    pub label: &'static str,
    pub code_id: Option<i64>,
    pub ussd: Option<UssdMeta>,
    /// Past this, delivering it is pointless (the code inside has expired).
    pub deliver_by: Instant,
    /// A message this node claimed from the outbox: not to be sent from this epoch
    /// ms on, when the claim may pass to another node.
    pub send_before: Option<i64>,
    /// A long message an SMSC acknowledged in part before the session was lost:
    /// only the rest is sent again, as the same message.
    pub resume: Option<Resume>,
}

/// The rest of a long message, so that the handset can join it to the segments it
/// already has: the same concatenation reference and segment numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The concatenation reference the first attempt used.
    pub reference: u8,
    /// How many segments the message was cut into.
    pub total: usize,
    /// The segments (from 0) the SMSC did not acknowledge.
    pub left: Vec<usize>,
}

// The text may hold a code: never print it.
crate::telemetry::debug_only!(Outgoing { label, code_id });

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its queue (a peer's, or all routes') is full.
    Full,
    /// A notice refused above the peer's high-water mark.
    Crowded,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Full => "full",
            Refusal::Crowded => "notice_over_high_water",
        }
    }
}

/// One session's standing on a target: its rank (lower takes first) and its own
/// lane (client mode: replies that prefer its connection).
struct Seat {
    taker: u64,
    rank: (u32, usize),
    lane: Option<usize>,
    notify: Arc<Notify>,
}

#[derive(Default)]
struct Slot {
    queue: VecDeque<Outgoing>,
    lanes: HashMap<usize, VecDeque<Outgoing>>,
    seats: Vec<Seat>,
    /// The next seat to wake on a peer target (round robin).
    turn: usize,
}

impl Slot {
    fn len(&self) -> usize {
        self.queue.len() + self.lanes.values().map(VecDeque::len).sum::<usize>()
    }

    /// The seats that may take from the shared queue: every seat of a peer, the
    /// first by rank of a route.
    fn first_rank(&self) -> Option<(u32, usize)> {
        self.seats.iter().map(|s| s.rank).min()
    }

    /// Wakes one seat that may take from the queue, other than `except`.
    fn wake(&mut self, except: Option<u64>) {
        let Some(best) = self.first_rank() else {
            return;
        };
        let eligible: Vec<usize> = (0..self.seats.len())
            .filter(|i| self.seats[*i].rank == best && Some(self.seats[*i].taker) != except)
            .collect();
        if eligible.is_empty() {
            return;
        }
        let pick = eligible[self.turn % eligible.len()];
        self.turn = self.turn.wrapping_add(1);
        self.seats[pick].notify.notify_one();
    }
}

#[derive(Default)]
struct State {
    slots: HashMap<Target, Slot>,
    /// Messages on all routes, lanes included.
    on_routes: usize,
}

struct Inner {
    state: Mutex<State>,
    /// Client mode's routes; a reload that changes the operator connections
    /// replaces them whole.
    routes: ArcSwap<Routes>,
    /// What one route may hold (`ROUTE_CAPACITY` shared by the routes).
    route_share: AtomicUsize,
    /// The core's clock: codes' expiries and claims' leases are in its time.
    clock: Arc<dyn Clock>,
    next_taker: AtomicU64,
}

/// What one route may hold: `ROUTE_CAPACITY` shared by the routes.
fn share(routes: &Routes) -> usize {
    ROUTE_CAPACITY / routes.all().len().max(1)
}

/// The queues of this node's outgoing messages. Cheap to clone.
#[derive(Clone)]
pub struct Replies {
    inner: Arc<Inner>,
}

impl Replies {
    pub fn new(routes: Routes, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                route_share: AtomicUsize::new(share(&routes)),
                routes: ArcSwap::from_pointee(routes),
                clock,
                next_taker: AtomicU64::new(1),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn routes(&self) -> Arc<Routes> {
        self.inner.routes.load_full()
    }

    /// Takes a reload's routes. Messages already queued stay on their route (a
    /// route no connection serves any more keeps them until they expire, and
    /// a lane whose connection is gone is moved by `sweep`).
    pub fn set_routes(&self, routes: Routes) {
        self.inner
            .route_share
            .store(share(&routes), Ordering::Relaxed);
        self.inner.routes.store(Arc::new(routes));
    }

    /// Now, in the core's time (epoch ms).
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Queues a message for `target`, or for the lane of connection `prefer` when
    /// that connection takes from `target` now.
    pub fn push(
        &self,
        target: Target,
        msg: Outgoing,
        prefer: Option<usize>,
    ) -> Result<(), Refusal> {
        let mut state = self.lock();
        let on_routes = state.on_routes;
        let is_route = matches!(target, Target::Route(_));
        let slot = state.slots.entry(target).or_default();
        let refusal = if is_route {
            (on_routes >= ROUTE_CAPACITY
                || slot.len() >= self.inner.route_share.load(Ordering::Relaxed))
            .then_some(Refusal::Full)
        } else if slot.len() >= PEER_CAPACITY {
            Some(Refusal::Full)
        } else if slot.len() >= PEER_HIGH_WATER && msg.code_id.is_none() {
            Some(Refusal::Crowded)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            metrics::counter!("otpgw_replies_dropped_total", "reason" => refusal.as_str())
                .increment(1);
            return Err(refusal);
        }
        match prefer.and_then(|lane| slot.seats.iter().find(|s| s.lane == Some(lane))) {
            Some(seat) => {
                let (lane, notify) = (seat.lane.unwrap_or_default(), seat.notify.clone());
                slot.lanes.entry(lane).or_default().push_back(msg);
                notify.notify_one();
            }
            None => {
                slot.queue.push_back(msg);
                slot.wake(None);
            }
        }
        if is_route {
            state.on_routes += 1;
        }
        Ok(())
    }

    /// Puts back messages a session took and could not finish, ahead of newer ones.
    pub fn push_front(&self, target: &Target, messages: Vec<Outgoing>) {
        if messages.is_empty() {
            return;
        }
        let mut state = self.lock();
        let n = messages.len();
        let slot = state.slots.entry(target.clone()).or_default();
        for msg in messages.into_iter().rev() {
            slot.queue.push_front(msg);
        }
        slot.wake(None);
        if matches!(target, Target::Route(_)) {
            state.on_routes += n;
        }
    }

    /// Whether a session of this node takes from `target` now.
    pub fn holds(&self, target: &Target) -> bool {
        self.lock()
            .slots
            .get(target)
            .is_some_and(|s| !s.seats.is_empty())
    }

    /// The targets some session of this node takes from now.
    pub fn held(&self) -> Vec<Target> {
        self.lock()
            .slots
            .iter()
            .filter(|(_, s)| !s.seats.is_empty())
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Messages waiting for `target` (lanes included).
    pub fn waiting(&self, target: &Target) -> usize {
        self.lock().slots.get(target).map_or(0, Slot::len)
    }

    /// Messages waiting in connection `lane`'s own queue, over all routes.
    pub fn waiting_in_lane(&self, lane: usize) -> usize {
        self.lock()
            .slots
            .values()
            .filter_map(|s| s.lanes.get(&lane))
            .map(VecDeque::len)
            .sum()
    }

    /// A session that takes from `seats`: (target, rank, own lane).
    pub fn taker(&self, seats: &[(Target, (u32, usize), Option<usize>)]) -> Taker {
        let id = self.inner.next_taker.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        let mut state = self.lock();
        for (target, rank, lane) in seats {
            let slot = state.slots.entry(target.clone()).or_default();
            slot.seats.push(Seat {
                taker: id,
                rank: *rank,
                lane: *lane,
                notify: notify.clone(),
            });
            // Work may be waiting for it already.
            if !slot.queue.is_empty() || lane.is_some_and(|l| slot.lanes.contains_key(&l)) {
                notify.notify_one();
            }
        }
        Taker {
            replies: self.clone(),
            id,
            notify,
            targets: seats.iter().map(|(t, _, _)| t.clone()).collect(),
        }
    }

    /// Drops messages that can no longer be useful and returns them (the caller
    /// records codes that were never sent); moves the lane of a connection that no
    /// longer takes back to its route; forgets empty targets nobody takes from.
    pub fn sweep(&self) -> Vec<(Target, Outgoing)> {
        let now = Instant::now();
        let mut state = self.lock();
        let mut expired = Vec::new();
        let mut route_drop = 0;
        for (target, slot) in state.slots.iter_mut() {
            let orphaned: Vec<usize> = slot
                .lanes
                .keys()
                .filter(|lane| !slot.seats.iter().any(|s| s.lane == Some(**lane)))
                .copied()
                .collect();
            for lane in orphaned {
                if let Some(q) = slot.lanes.remove(&lane) {
                    slot.queue.extend(q);
                }
            }
            let before = slot.len();
            let mut keep = |msg: Outgoing| {
                if msg.deliver_by > now {
                    Some(msg)
                } else {
                    expired.push((target.clone(), msg));
                    None
                }
            };
            slot.queue = std::mem::take(&mut slot.queue)
                .into_iter()
                .filter_map(&mut keep)
                .collect();
            for lane in slot.lanes.values_mut() {
                *lane = std::mem::take(lane)
                    .into_iter()
                    .filter_map(&mut keep)
                    .collect();
            }
            if matches!(target, Target::Route(_)) {
                route_drop += before - slot.len();
            }
            if !slot.queue.is_empty() {
                slot.wake(None);
            }
        }
        state.on_routes -= route_drop;
        state
            .slots
            .retain(|_, s| !s.seats.is_empty() || s.len() > 0);
        metrics::counter!("otpgw_replies_expired_total").increment(expired.len() as u64);
        expired
    }

    fn leave(&self, taker: u64, targets: &[Target]) {
        let mut state = self.lock();
        for target in targets {
            if let Some(slot) = state.slots.get_mut(target) {
                slot.seats.retain(|s| s.taker != taker);
                // Another session may take what is left now.
                if !slot.queue.is_empty() {
                    slot.wake(None);
                }
            }
        }
    }
}

/// One session's place among the takers of its targets, until dropped.
pub struct Taker {
    replies: Replies,
    id: u64,
    notify: Arc<Notify>,
    targets: Vec<Target>,
}

impl Taker {
    /// The next message for this session: its own lane first, then the shared
    /// queue of each target where it is first in line. Work left behind wakes
    /// another session.
    pub fn pull(&self) -> Option<(Target, Outgoing)> {
        let mut state = self.replies.lock();
        let mut taken = None;
        for target in &self.targets {
            let Some(slot) = state.slots.get_mut(target) else {
                continue;
            };
            let Some(seat) = slot.seats.iter().find(|s| s.taker == self.id) else {
                continue;
            };
            let lane = seat.lane;
            if let Some(msg) = lane.and_then(|l| slot.lanes.get_mut(&l)?.pop_front()) {
                taken = Some((target.clone(), msg));
                break;
            }
            if slot.first_rank() != Some(seat.rank) {
                continue;
            }
            if let Some(msg) = slot.queue.pop_front() {
                if !slot.queue.is_empty() {
                    slot.wake(Some(self.id));
                }
                taken = Some((target.clone(), msg));
                break;
            }
        }
        if let Some((Target::Route(_), _)) = &taken {
            state.on_routes -= 1;
        }
        taken
    }

    /// Waits until one of this session's targets may have work for it.
    pub async fn ready(&self) {
        self.notify.notified().await;
    }

    /// Puts messages back at the head of their target (a session that could not
    /// finish them).
    pub fn give_back(&self, target: &Target, messages: Vec<Outgoing>) {
        self.replies.push_front(target, messages);
    }
}

impl Drop for Taker {
    fn drop(&mut self) {
        self.replies.leave(self.id, &self.targets);
    }
}

/// Pushed codes and activation messages, handed out by the core.
impl Outbound for Replies {
    fn route_for(&self, msisdn: &str) -> Option<String> {
        self.inner.routes.load().route_for(msisdn)
    }

    fn holds(&self, route: &str) -> bool {
        Replies::holds(self, &Target::Route(route.to_owned()))
    }

    fn send(&self, push: Push) -> bool {
        let left = push.expires_at.saturating_sub(self.now_ms());
        let msg = Outgoing {
            source: String::new(),
            to: push.to,
            text: push.text,
            label: if push.code_id.is_some() {
                "code"
            } else {
                "activation"
            },
            code_id: push.code_id,
            ussd: None,
            deliver_by: deadline_in(left),
            send_before: push.send_before,
            resume: None,
        };
        self.push(Target::Route(push.route), msg, None).is_ok()
    }
}

/// The instant `ms` milliseconds from now (none left: now).
pub fn deadline_in(ms: i64) -> Instant {
    Instant::now() + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests;
