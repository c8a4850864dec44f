//! Client mode: otpgw binds out to operator SMSCs (or aggregators) as an ESME.
//! Customers' messages arrive as deliver_sm, replies and pushed codes leave as
//! submit_sm, delivery receipts come back as deliver_sm.
//!
//! * `mod.rs`        — [`Operators`]: the configured connections, their sessions'
//!   tasks (each connection's own stop, so a reload can add, remove or rebind one
//!   alone), and what operations see of them.
//! * `connection.rs` — one connection's state, counters, pacing and held receipts.
//! * `connect.rs`    — keeping one session bound: connect, bind, back off.
//! * `session.rs`    — a bound session: submit_sm out within window and TPS, their
//!   responses, keep-alive, unbind.
//! * `deliver.rs`    — what the SMSC delivers: receipts, and customers' messages
//!   through the inbound pipeline (`smpp::inbound`), as the listener's.
//!
//! The framing (`smpp::codec`), PDU conversions (`smpp::pdu`), the inbound pipeline
//! and the replies path (`crate::replies`) are the listener's; only the direction
//! of the bind differs. Messages wait for their route in `crate::replies`, where the
//! bound connection first by priority takes them; a reply to a customer's message
//! prefers the connection it came in on.

mod connect;
mod connection;
mod deliver;
mod session;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use connection::Connection;

use super::inbound::Pipeline;
use crate::config::{ConnectionSettings, ServiceSettings, SmppSettings};
use crate::core::links::ConnectionStatus;
use crate::core::reload::ConnectionsChanged;
use crate::core::Core;
use crate::replies::{Replies, Routes, Target};

/// What every session of client mode shares.
pub(crate) struct Shared {
    pub pipeline: Pipeline,
    pub replies: Replies,
    pub service: ServiceSettings,
    pub smpp: SmppSettings,
    /// The connections in force; a reload adds, removes and replaces them.
    running: Mutex<Vec<Running>>,
    /// Every connection that ran, by index; `None` once a reload removed it.
    /// Indices are never reused: a lane or a receipt of a removed connection
    /// cannot be taken for another's.
    slots: Mutex<Vec<Option<ConnectionSettings>>>,
    /// Set by `run`: connections started later stop with the gateway too.
    shutdown: OnceLock<CancellationToken>,
    sessions: TaskTracker,
}

/// One connection that runs, and what stops its sessions alone.
struct Running {
    conn: Arc<Connection>,
    stop: CancellationToken,
}

impl Shared {
    fn core(&self) -> &Core {
        self.pipeline.core()
    }

    fn connections(&self) -> Vec<Arc<Connection>> {
        lock(&self.running).iter().map(|r| r.conn.clone()).collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The operator connections, shared by `serve` and the status endpoints.
#[derive(Clone)]
pub struct Operators {
    shared: Arc<Shared>,
}

impl Operators {
    pub fn new(core: Core, replies: Replies, smpp: SmppSettings, service: ServiceSettings) -> Self {
        let running = smpp
            .connections
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, c)| Running {
                conn: Arc::new(Connection::new(i, c)),
                stop: CancellationToken::new(),
            })
            .collect();
        Self {
            shared: Arc::new(Shared {
                pipeline: Pipeline::new(core, replies.clone(), service.clone(), smpp.clone()),
                replies,
                service,
                slots: Mutex::new(smpp.connections.iter().cloned().map(Some).collect()),
                smpp,
                running: Mutex::new(running),
                shutdown: OnceLock::new(),
                sessions: TaskTracker::new(),
            }),
        }
    }

    /// Runs every connection's sessions until `shutdown`, then unbinds them.
    pub async fn run(self, shutdown: CancellationToken) {
        let _ = self.shared.shutdown.set(shutdown.clone());
        for r in lock(&self.shared.running).iter_mut() {
            // Stopped by the gateway's shutdown, or by a reload alone.
            r.stop = shutdown.child_token();
            self.start(&r.conn, &r.stop);
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    for c in self.shared.connections() {
                        c.forget_old_receipts();
                        c.forget_unanswered();
                    }
                    self.shared.pipeline.sweep();
                }
            }
        }
        self.shared.sessions.close();
        self.shared.sessions.wait().await;
    }

    fn start(&self, conn: &Arc<Connection>, stop: &CancellationToken) {
        for (kind, sends) in connect::binds(conn.settings.bind) {
            let span =
                tracing::info_span!("smsc", connection = %conn.settings.name, bind = kind.as_str());
            self.shared.sessions.spawn(tracing::Instrument::instrument(
                connect::maintain(self.shared.clone(), conn.clone(), kind, sends, stop.clone()),
                span,
            ));
        }
    }

    /// Takes a reload's `[[smpp.connections]]`, by name: a new one binds, a removed
    /// one unbinds, a changed one unbinds and binds again with its new settings;
    /// the others are not touched. The routes follow.
    pub fn reconfigure(&self, wanted: &[ConnectionSettings]) -> ConnectionsChanged {
        let same = |a: &ConnectionSettings, b: &ConnectionSettings| {
            serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
        };
        let mut done = ConnectionsChanged::default();
        let mut running = lock(&self.shared.running);
        let mut slots = lock(&self.shared.slots);
        running.retain(|r| {
            let name = &r.conn.settings.name;
            match wanted.iter().find(|w| &w.name == name) {
                Some(w) if same(w, &r.conn.settings) => true,
                found => {
                    r.stop.cancel();
                    slots[r.conn.index] = None;
                    if found.is_some() {
                        done.rebound.push(name.clone());
                    } else {
                        done.removed.push(name.clone());
                    }
                    false
                }
            }
        });
        for w in wanted {
            if running.iter().any(|r| r.conn.settings.name == w.name) {
                continue;
            }
            if !done.rebound.contains(&w.name) {
                done.added.push(w.name.clone());
            }
            let conn = Arc::new(Connection::new(slots.len(), w.clone()));
            slots.push(Some(w.clone()));
            let stop = match self.shared.shutdown.get() {
                Some(shutdown) => {
                    let stop = shutdown.child_token();
                    self.start(&conn, &stop);
                    stop
                }
                None => CancellationToken::new(),
            };
            running.push(Running { conn, stop });
        }
        // Configured order, as at start: status lists them so.
        running.sort_by_key(|r| wanted.iter().position(|w| w.name == r.conn.settings.name));
        self.shared
            .replies
            .set_routes(Routes::indexed(slots.iter().map(Option::as_ref)));
        done
    }

    pub fn status(&self) -> Vec<ConnectionStatus> {
        let replies = &self.shared.replies;
        self.shared
            .connections()
            .iter()
            .map(|c| c.status(replies.waiting_in_lane(c.index)))
            .collect()
    }

    /// Each route and the messages waiting on it.
    pub fn route_queues(&self) -> Vec<(String, usize)> {
        let replies = &self.shared.replies;
        replies
            .routes()
            .all()
            .into_iter()
            .map(|r| {
                let waiting = replies.waiting(&Target::Route(r.clone()));
                (r, waiting)
            })
            .collect()
    }

    /// Routes with no bound connection that can send: `/readyz` is not ready then.
    pub fn routes_down(&self) -> Vec<String> {
        let replies = &self.shared.replies;
        replies
            .routes()
            .all()
            .into_iter()
            .filter(|r| !replies.holds(&Target::Route(r.clone())))
            .collect()
    }
}
