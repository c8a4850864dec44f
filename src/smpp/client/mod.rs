//! Client mode: otpgw binds out to operator SMSCs (or aggregators) as an ESME.
//! Customers' messages arrive as deliver_sm, replies and pushed codes leave as
//! submit_sm, delivery receipts come back as deliver_sm.
//!
//! * `mod.rs`        — [`Operators`]: the configured connections, their sessions'
//!   tasks, and what operations see of them.
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

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use connection::Connection;

use super::inbound::Pipeline;
use crate::config::{ServiceSettings, SmppSettings};
use crate::core::links::ConnectionStatus;
use crate::core::Core;
use crate::replies::{Replies, Target};

/// What every session of client mode shares.
pub(crate) struct Shared {
    pub pipeline: Pipeline,
    pub replies: Replies,
    pub service: ServiceSettings,
    pub smpp: SmppSettings,
    pub connections: Vec<Arc<Connection>>,
}

impl Shared {
    fn core(&self) -> &Core {
        self.pipeline.core()
    }
}

/// The operator connections, shared by `serve` and the status endpoints.
#[derive(Clone)]
pub struct Operators {
    shared: Arc<Shared>,
}

impl Operators {
    pub fn new(core: Core, replies: Replies, smpp: SmppSettings, service: ServiceSettings) -> Self {
        let connections = smpp
            .connections
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, c)| Arc::new(Connection::new(i, c)))
            .collect();
        Self {
            shared: Arc::new(Shared {
                pipeline: Pipeline::new(core, replies.clone(), service.clone(), smpp.clone()),
                replies,
                service,
                smpp,
                connections,
            }),
        }
    }

    /// Runs every connection's sessions until `shutdown`, then unbinds them.
    pub async fn run(self, shutdown: CancellationToken) {
        let sessions = TaskTracker::new();
        for conn in &self.shared.connections {
            for (kind, sends) in connect::binds(conn.settings.bind) {
                let span = tracing::info_span!("smsc", connection = %conn.settings.name, bind = kind.as_str());
                sessions.spawn(tracing::Instrument::instrument(
                    connect::maintain(
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
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    for c in &self.shared.connections {
                        c.forget_old_receipts();
                        c.forget_unanswered();
                    }
                    self.shared.pipeline.sweep();
                }
            }
        }
        sessions.wait().await;
    }

    pub fn status(&self) -> Vec<ConnectionStatus> {
        let replies = &self.shared.replies;
        self.shared
            .connections
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
