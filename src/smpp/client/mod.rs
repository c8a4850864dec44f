//! Client mode: otpgw binds out to operator SMSCs (or aggregators) as an ESME.
//! Customers' messages arrive as deliver_sm, replies and pushed codes leave as
//! submit_sm, delivery receipts come back as deliver_sm.
//!
//! * `mod.rs`     — [`Operators`]: the configured connections, their state, routing
//!   by MSISDN prefix with failover by priority, and the outbox they drain.
//! * `session.rs` — one session of one connection: connect, bind, serve, back off.
//!
//! The PDU conversions (`smpp::pdu`), framing (`smpp::codec`) and the rules (`core`)
//! are the listener's; only the direction of the bind differs.
//!
//! Routing: a message goes to the most specific route whose prefix its MSISDN starts
//! with (or the default route, connections with no `routes`). Within a route, the
//! bound connection with the lowest `priority` takes it. A reply to a customer's
//! message prefers the connection the message came in on. Messages wait in the
//! outbox while no connection of their route is bound, and are dropped (recorded
//! `undelivered`) when their code expires first.

mod session;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Outgoing;
use crate::config::{ConnectionSettings, ServiceSettings, SmppSettings};
use crate::core::links::{ConnectionStatus, Phase, SessionStatus};
use crate::core::{route_target, Clock, Core, Outbound, Push};
use otpgw_rules::vocab::Delivery;

/// Messages waiting in the outbox, over all routes; past this, pushes are refused
/// (HTTP 503) and replies dropped (counted), so a dead route cannot eat the memory.
const OUTBOX_CAPACITY: usize = 50_000;
/// Receipts that beat their submit_sm_resp, per connection, and how long we wait.
const HELD_RECEIPTS_MAX: usize = 10_000;
const HELD_RECEIPT_TTL: Duration = Duration::from_secs(30);

/// A message on its way out through client mode.
pub(crate) struct Queued {
    pub msg: Outgoing,
    /// The route that serves `msg.to` ("" = default route).
    pub route: String,
}

/// One configured operator connection, shared by its sessions.
pub(crate) struct Connection {
    pub index: usize,
    pub settings: ConnectionSettings,
    sessions: Mutex<Vec<SessionStatus>>,
    /// A session that can submit is bound (transceiver or transmitter).
    can_send: AtomicBool,
    pub window_in_use: AtomicUsize,
    pub submitted: AtomicU64,
    pub throttled: AtomicU64,
    pub failed: AtomicU64,
    pub receipts: AtomicU64,
    pub received: AtomicU64,
    /// Segments per second, when the operator set a TPS.
    pub pacing: Option<DefaultDirectRateLimiter>,
    /// Receipts whose message id we have not stored yet (they beat the response).
    held: Mutex<VecDeque<(String, Delivery, Instant)>>,
}

impl Connection {
    fn new(index: usize, settings: ConnectionSettings) -> Self {
        let binds: &[&'static str] = match settings.bind {
            crate::config::ConnectionBind::Transceiver => &["trx"],
            crate::config::ConnectionBind::TransmitterReceiver => &["tx", "rx"],
        };
        let now = crate::core::SystemClock.now_ms();
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
            can_send: AtomicBool::new(false),
            window_in_use: AtomicUsize::new(0),
            submitted: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            receipts: AtomicU64::new(0),
            received: AtomicU64::new(0),
            pacing,
            held: Mutex::new(VecDeque::new()),
        }
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    fn serves(&self, route: &str) -> bool {
        if route.is_empty() {
            self.settings.routes.is_empty()
        } else {
            self.settings.routes.iter().any(|r| r == route)
        }
    }

    pub fn can_send(&self) -> bool {
        self.can_send.load(Ordering::Acquire)
    }

    /// Records a session's new state; `sends` says whether it is the one that submits.
    pub fn set_phase(&self, bind: &str, state: Phase, error: Option<String>, sends: bool) {
        let now = crate::core::SystemClock.now_ms();
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
        if sends {
            self.can_send
                .store(state == Phase::Bound, Ordering::Release);
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

    fn forget_old_receipts(&self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let before = held.len();
        held.retain(|(_, _, at)| at.elapsed() < HELD_RECEIPT_TTL);
        let dropped = before - held.len();
        if dropped > 0 {
            tracing::info!(connection = %self.settings.name, dropped, "receipts for messages we never saw: dropped");
        }
    }

    fn status(&self, queued: usize) -> ConnectionStatus {
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
        }
    }
}

/// Messages waiting to go out: per connection (replies that prefer the connection
/// their message came in on) and per route (everything else).
#[derive(Default)]
struct Queues {
    by_connection: HashMap<usize, VecDeque<Queued>>,
    by_route: HashMap<String, VecDeque<Queued>>,
    len: usize,
}

pub(crate) struct Shared {
    pub core: Core,
    pub service: ServiceSettings,
    pub smpp: SmppSettings,
    pub connections: Vec<Arc<Connection>>,
    queues: Mutex<Queues>,
    /// Woken whenever a message is queued or a connection binds.
    pub work: Notify,
    /// USSD dialogues arriving through operator connections.
    pub ussd: super::ussd::Dialogues,
}

/// The operator connections, shared by `serve`, the HTTP API and the core.
#[derive(Clone)]
pub struct Operators {
    shared: Arc<Shared>,
}

impl Operators {
    pub fn new(core: Core, smpp: SmppSettings, service: ServiceSettings) -> Self {
        let connections = smpp
            .connections
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, c)| Arc::new(Connection::new(i, c)))
            .collect();
        Self {
            shared: Arc::new(Shared {
                core,
                service,
                ussd: super::ussd::Dialogues::new(&smpp),
                smpp,
                connections,
                queues: Mutex::new(Queues::default()),
                work: Notify::new(),
            }),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.shared.connections.is_empty()
    }

    /// Runs every connection's sessions until `shutdown`, then unbinds them.
    pub async fn run(self, shutdown: CancellationToken) {
        let sessions = TaskTracker::new();
        for conn in &self.shared.connections {
            for (kind, sends) in session::binds(conn.settings.bind) {
                let span = tracing::info_span!("smsc", connection = %conn.settings.name, bind = kind.as_str());
                sessions.spawn(tracing::Instrument::instrument(
                    session::maintain(
                        self.shared.clone(),
                        conn.clone(),
                        kind,
                        sends,
                        shutdown.clone(),
                    ),
                    span,
                ));
            }
        }
        sessions.close();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        // Without an outbox (SQLite) the claim tick never fires.
        let mut claim = tokio::time::interval(
            self.shared
                .core
                .delivery
                .outbox_poll()
                .unwrap_or(Duration::from_secs(86_400 * 365)),
        );
        claim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let outbox = self.shared.core.delivery.outbox_poll().is_some();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => self.shared.sweep().await,
                _ = claim.tick(), if outbox => self.shared.claim_from_outbox().await,
            }
        }
        sessions.wait().await;
    }

    pub fn status(&self) -> Vec<ConnectionStatus> {
        let queues = self.shared.queues.lock().unwrap_or_else(|p| p.into_inner());
        self.shared
            .connections
            .iter()
            .map(|c| c.status(queues.by_connection.get(&c.index).map_or(0, VecDeque::len)))
            .collect()
    }

    /// Routes with no bound connection that can send: `/readyz` is not ready then.
    pub fn routes_down(&self) -> Vec<String> {
        let mut routes = self.shared.routes_of(|_| true);
        routes.retain(|r| {
            !self
                .shared
                .connections
                .iter()
                .any(|c| c.serves(r) && c.can_send())
        });
        routes
    }
}

impl Outbound for Operators {
    fn route_for(&self, msisdn: &str) -> Option<String> {
        self.shared.route_for(msisdn)
    }

    fn holds(&self, route: &str) -> bool {
        self.shared.holds(route)
    }

    fn send(&self, push: Push) -> bool {
        let now_ms = self.shared.core.now_ms();
        let left = Duration::from_millis(u64::try_from(push.expires_at - now_ms).unwrap_or(0));
        let queued = Queued {
            route: push.route,
            msg: Outgoing {
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
                deliver_by: Instant::now() + left,
                send_before: push.send_before,
            },
        };
        self.shared.enqueue(queued, None)
    }
}

impl Shared {
    /// Whether a connection of this node serving `route` can send now.
    pub fn holds(&self, route: &str) -> bool {
        self.connections
            .iter()
            .any(|c| c.serves(route) && c.can_send())
    }

    /// The routes the connections chosen by `which` serve, each once ("" is the
    /// default route).
    fn routes_of(&self, which: impl Fn(&Connection) -> bool) -> Vec<String> {
        let mut routes: Vec<String> = self
            .connections
            .iter()
            .filter(|c| which(c))
            .flat_map(|c| {
                if c.settings.routes.is_empty() {
                    vec![String::new()]
                } else {
                    c.settings.routes.clone()
                }
            })
            .collect();
        routes.sort();
        routes.dedup();
        routes
    }

    /// Claims the outbox's messages (several nodes, PostgreSQL) for the routes this
    /// node's connections can send on: pushed codes and replies another node took
    /// in, or left behind when it died.
    async fn claim_from_outbox(&self) {
        for route in self.routes_of(Connection::can_send) {
            let claimed = match self.core.delivery.claim(&route_target(&route)).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    crate::telemetry::sampled(crate::telemetry::Noisy::OutboxClaim, || {
                        tracing::warn!(error = %e, "could not claim messages from the outbox");
                    });
                    return;
                }
            };
            if claimed.is_empty() {
                continue;
            }
            metrics::counter!("otpgw_outbox_claimed_total").increment(claimed.len() as u64);
            tracing::info!(route = %route, messages = claimed.len(), "messages claimed from the outbox");
            let now_ms = self.core.now_ms();
            let now = Instant::now();
            for m in claimed {
                let left = u64::try_from(m.deliver_by.saturating_sub(now_ms)).unwrap_or(0);
                // A full queue leaves it to the outbox: its claim lapses and it is
                // claimed again.
                self.enqueue(
                    Queued {
                        route: route.clone(),
                        msg: Outgoing {
                            source: String::new(),
                            to: m.to,
                            text: m.text,
                            label: "code",
                            code_id: Some(m.code_id),
                            ussd: None,
                            deliver_by: now + Duration::from_millis(left),
                            send_before: Some(m.send_before),
                        },
                    },
                    None,
                );
            }
        }
    }

    /// The most specific route whose prefix `msisdn` starts with, else the default
    /// route when one exists.
    pub fn route_for(&self, msisdn: &str) -> Option<String> {
        let mut best: Option<&str> = None;
        let mut default = false;
        for c in &self.connections {
            default |= c.settings.routes.is_empty();
            for r in &c.settings.routes {
                if msisdn.starts_with(r.as_str()) && best.is_none_or(|b| r.len() > b.len()) {
                    best = Some(r);
                }
            }
        }
        best.map(str::to_owned)
            .or_else(|| default.then(String::new))
    }

    /// Queues a message for its route, or for `prefer` (a connection) when that one
    /// is bound. `false` when the outbox is full (the message is dropped).
    pub fn enqueue(&self, queued: Queued, prefer: Option<usize>) -> bool {
        {
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            if queues.len >= OUTBOX_CAPACITY {
                metrics::counter!("otpgw_replies_dropped_total").increment(1);
                return false;
            }
            queues.len += 1;
            match prefer.filter(|i| self.connections.get(*i).is_some_and(|c| c.can_send())) {
                Some(i) => queues.by_connection.entry(i).or_default().push_back(queued),
                None => queues
                    .by_route
                    .entry(queued.route.clone())
                    .or_default()
                    .push_back(queued),
            }
        }
        self.work.notify_waiters();
        true
    }

    /// Puts back messages a session could not finish, ahead of newer ones.
    pub fn requeue_front(&self, messages: Vec<Queued>) {
        if messages.is_empty() {
            return;
        }
        {
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            for q in messages.into_iter().rev() {
                queues.len += 1;
                queues
                    .by_route
                    .entry(q.route.clone())
                    .or_default()
                    .push_front(q);
            }
        }
        self.work.notify_waiters();
    }

    /// The next message for this connection: its own first, then those of each
    /// route it serves where no bound connection comes before it by priority.
    pub fn pull(&self, conn: &Connection) -> Option<Queued> {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let mut taken = queues
            .by_connection
            .get_mut(&conn.index)
            .and_then(VecDeque::pop_front);
        if taken.is_none() {
            let routes: Vec<String> = if conn.settings.routes.is_empty() {
                vec![String::new()]
            } else {
                conn.settings.routes.clone()
            };
            for route in routes {
                let first_in_line = !self.connections.iter().any(|other| {
                    other.index != conn.index
                        && other.serves(&route)
                        && other.can_send()
                        && (other.settings.priority, other.index)
                            < (conn.settings.priority, conn.index)
                });
                if !first_in_line {
                    continue;
                }
                taken = queues
                    .by_route
                    .get_mut(&route)
                    .and_then(VecDeque::pop_front);
                if taken.is_some() {
                    break;
                }
            }
        }
        if taken.is_some() {
            queues.len -= 1;
        }
        taken
    }

    /// Every second: drops messages whose code expired (recording them
    /// `undelivered`), hands the own queue of a connection that is down to its
    /// route, and forgets receipts that never found their message.
    async fn sweep(&self) {
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            let Queues {
                by_connection,
                by_route,
                len,
            } = &mut *queues;
            for (index, queue) in by_connection.iter_mut() {
                if self.connections.get(*index).is_some_and(|c| c.can_send()) {
                    continue;
                }
                for q in queue.drain(..) {
                    by_route.entry(q.route.clone()).or_default().push_back(q);
                }
            }
            for queue in by_route.values_mut() {
                queue.retain_mut(|q| {
                    if q.msg.deliver_by > now {
                        return true;
                    }
                    expired.push(q.msg.code_id);
                    false
                });
            }
            *len -= expired.len();
        }
        for code_id in expired {
            metrics::counter!("otpgw_replies_expired_total").increment(1);
            if let Some(id) = code_id {
                tracing::warn!(
                    code_id = id,
                    "code expired before any connection of its route could send it"
                );
                if let Err(e) = self.core.delivery.undelivered(id).await {
                    tracing::warn!(error = %e, "could not record delivery state");
                }
            }
        }
        for c in &self.connections {
            c.forget_old_receipts();
        }
        self.ussd.sweep();
        self.work.notify_waiters();
    }
}
