//! The SMPP listener: telcos and aggregators bind to us (SMPP 3.3/3.4/5.0 binds) and
//! send subscriber messages as submit_sm (or deliver_sm); replies go back as
//! deliver_sm to any receiver or transceiver bind of the same system_id on this
//! node (`crate::replies`), so a reply is delivered even if the message came in on a
//! transmitter-only bind or its session has since gone away.
//!
//! * `mod.rs`     — [`Server`]: the accept loop under the guard's caps.
//! * `guard.rs`   — who may hold a connection: caps in total and per address, and a
//!   back-off for addresses that keep failing to bind.
//! * `board.rs`   — who is bound right now, for operations.
//! * `bind.rs`    — the bind phase: only bind, enquire_link and unbind are served.
//! * `session.rs` — a bound session: messages in (through `smpp::inbound`),
//!   replies out within the window, keep-alive, unbind.
//! * `state.rs`   — which PDU is served in which state, without I/O (both phases
//!   ask it; the `smpp_session` fuzz target drives it).

mod bind;
mod board;
mod guard;
mod session;
pub(super) mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

pub use board::Board;

use super::inbound::Pipeline;
use crate::config::{PeerSettings, ServiceSettings, SmppSettings};
use crate::core::{Core, Live};
use crate::replies::Replies;

/// What every session of the listener shares.
pub(crate) struct Context {
    pub settings: SmppSettings,
    /// Who may bind: `smpp.peers` as the last reload left it.
    pub peers: Live<Vec<PeerSettings>>,
    pub pipeline: Pipeline,
    pub replies: Replies,
    pub guard: Arc<guard::Guard>,
    /// Sessions bound on this node right now, for operations and the console.
    pub board: Arc<board::Board>,
}

impl Context {
    fn core(&self) -> &Core {
        self.pipeline.core()
    }
}

pub struct Server {
    ctx: Arc<Context>,
}

impl Server {
    pub fn new(
        core: Core,
        replies: Replies,
        settings: SmppSettings,
        service: ServiceSettings,
    ) -> Self {
        Self {
            ctx: Arc::new(Context {
                pipeline: Pipeline::new(core, replies.clone(), service, settings.clone()),
                guard: guard::Guard::new(&settings),
                peers: Live::new(settings.peers.clone()),
                replies,
                settings,
                board: Arc::new(board::Board::default()),
            }),
        }
    }

    /// The sessions bound to this listener, kept current by the sessions.
    pub fn bound_sessions(&self) -> Arc<Board> {
        self.ctx.board.clone()
    }

    /// The peers who may bind, for a reload to replace.
    pub fn peers(&self) -> Peers {
        Peers {
            ctx: self.ctx.clone(),
        }
    }

    /// Accepts connections until `shutdown`, then waits for every session to unbind.
    pub async fn run(self, listener: TcpListener, shutdown: CancellationToken) {
        let sessions = TaskTracker::new();
        let mut sweep = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = sweep.tick() => {
                    self.ctx.guard.sweep();
                    self.ctx.pipeline.sweep();
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        // Decided before a byte is read: over a cap, or from an address
                        // in back-off, the connection is closed at once.
                        let ticket = match self.ctx.guard.admit(addr.ip()) {
                            Ok(ticket) => ticket,
                            Err(refusal) => {
                                metrics::counter!("otpgw_smpp_connections_refused_total", "reason" => refusal.as_str()).increment(1);
                                crate::telemetry::sampled_by(crate::telemetry::Noisy::SmppConnectionRefused, &addr.ip().to_string(), || {
                                    tracing::warn!(peer_addr = %addr, reason = refusal.as_str(), "smpp connection refused");
                                });
                                continue;
                            }
                        };
                        let _ = stream.set_nodelay(true);
                        let span = tracing::info_span!("smpp", session = %session_id(), peer_addr = %addr);
                        sessions.spawn(session::run(stream, addr, self.ctx.clone(), shutdown.clone(), ticket).instrument(span));
                    }
                    Err(e) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e, "smpp accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
        drop(listener);
        sessions.close();
        sessions.wait().await;
    }
}

/// The listener's peers, as a reload changes them.
#[derive(Clone)]
pub struct Peers {
    ctx: Arc<Context>,
}

impl Peers {
    /// Takes a reloaded `smpp.peers`: new peers may bind at once; the sessions of
    /// a peer that is gone, whose password changed, or whose address it no longer
    /// allows are unbound (as on shutdown); every other bind stays. Returns how
    /// many sessions were asked to unbind.
    pub fn replace(&self, peers: Vec<PeerSettings>) -> usize {
        let old = self.ctx.peers.get();
        let still_allowed = |system_id: &str, addr: SocketAddr| {
            let was = old.iter().find(|p| p.system_id == system_id);
            let now = peers.iter().find(|p| p.system_id == system_id);
            match (was, now) {
                (Some(was), Some(now)) => {
                    was.password == now.password && address_allowed(&now.allow_from, addr)
                }
                // Bound under the embedded default or a peer never configured: keep
                // it only if the new file still names it.
                (None, Some(now)) => address_allowed(&now.allow_from, addr),
                (_, None) => false,
            }
        };
        self.ctx.peers.set(peers.clone());
        let unbound = self
            .ctx
            .board
            .unbind_where(|system_id, addr| !still_allowed(system_id, addr));
        if unbound > 0 {
            tracing::info!(
                sessions = unbound,
                "reload: unbinding the sessions of removed or changed peers"
            );
        }
        unbound
    }
}

fn session_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// True when `addr` may bind as a peer whose `allow_from` is `allowed`.
fn address_allowed(allowed: &[std::net::IpAddr], addr: SocketAddr) -> bool {
    allowed.is_empty() || allowed.contains(&guard::canonical(addr.ip()))
}
