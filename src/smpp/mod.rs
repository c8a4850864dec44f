//! The SMPP listener: telcos and aggregators bind to us (SMPP 3.3/3.4/5.0 binds) and
//! send subscriber messages as submit_sm (or deliver_sm); replies go back as
//! deliver_sm to a receiver or transceiver bind of the same system_id.
//!
//! * `codec`   — framing that answers bad PDUs with generic_nack instead of dying.
//! * `pdu`     — PDUs ↔ plain values (addresses, decoded text, reply encoding).
//! * `session` — one connection: bind, then requests, replies, enquire_link, unbind.
//! * `client`  — client mode: we bind out to operator SMSCs (same codec and PDUs).
//!
//! Replies wait in one queue per system_id that every receiving session of that
//! system_id drains, so a reply is delivered even if the customer's message came in
//! on a transmitter-only bind or the session that took it has since gone away.

pub mod client;
mod codec;
mod pdu;
mod session;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::{ServiceSettings, SmppSettings};
use crate::core::Core;

/// A reply waiting for a receiving session.
pub(crate) struct Outgoing {
    /// Our source_addr: the sender id for SMS, the dialled service for USSD.
    pub source: String,
    pub to: String,
    pub text: String,
    /// What it says, for logs and metrics (a `ReplyKind` name, or "ussd").
    pub label: &'static str,
    pub code_id: Option<i64>,
    pub ussd: Option<pdu::UssdMeta>,
    /// Past this, delivering it is pointless (the code inside has expired).
    pub deliver_by: tokio::time::Instant,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("label", &self.label)
            .field("code_id", &self.code_id)
            .finish()
    }
}

type Queue = (
    async_channel::Sender<Outgoing>,
    async_channel::Receiver<Outgoing>,
);

pub(crate) struct Context {
    pub core: Core,
    pub settings: SmppSettings,
    pub service: ServiceSettings,
    queues: Mutex<HashMap<String, Queue>>,
    /// USSD dialogues over SMPP, by (customer's source_addr, session number).
    ussd: Mutex<HashMap<(String, u8), UssdDialogue>>,
    /// Sessions bound on this node right now, for the console's health strip.
    pub bound: Arc<AtomicUsize>,
}

/// Where a USSD dialogue over SMPP stands: the service dialled and the inputs so far.
pub(crate) struct UssdDialogue {
    pub service_code: String,
    pub path: Vec<String>,
    pub touched: tokio::time::Instant,
}

impl Context {
    /// The reply queue of a system_id, created on first use.
    pub fn queue(&self, system_id: &str) -> Queue {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        queues
            .entry(system_id.to_owned())
            .or_insert_with(|| async_channel::bounded(QUEUE_CAPACITY))
            .clone()
    }

    /// The dialogue state for a key, after `f` changed it; `None` when unknown or idle
    /// past the timeout (then it is forgotten).
    pub fn ussd_dialogue<T>(
        &self,
        key: &(String, u8),
        f: impl FnOnce(&mut Option<UssdDialogue>) -> T,
    ) -> T {
        let mut dialogues = self.ussd.lock().unwrap_or_else(|p| p.into_inner());
        let timeout = Duration::from_secs(self.settings.ussd_session_timeout_secs);
        let mut entry = dialogues
            .remove(key)
            .filter(|d| d.touched.elapsed() < timeout);
        let out = f(&mut entry);
        if let Some(mut d) = entry {
            d.touched = tokio::time::Instant::now();
            dialogues.insert(key.clone(), d);
        }
        out
    }

    /// Drops replies that can no longer be useful from every queue, so a system_id
    /// with no receiving bind does not pile them up.
    fn sweep(&self) {
        let timeout = Duration::from_secs(self.settings.ussd_session_timeout_secs);
        self.ussd
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, d| d.touched.elapsed() < timeout);
        let queues: Vec<Queue> = self
            .queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let now = tokio::time::Instant::now();
        for (tx, rx) in queues {
            for _ in 0..rx.len() {
                match rx.try_recv() {
                    Ok(reply) if reply.deliver_by > now => {
                        let _ = tx.try_send(reply);
                    }
                    Ok(_) => metrics::counter!("otpgw_replies_expired_total").increment(1),
                    Err(_) => break,
                }
            }
        }
    }
}

/// Replies waiting per system_id; beyond this a reply is dropped (and counted).
const QUEUE_CAPACITY: usize = 10_000;

pub struct Server {
    ctx: Arc<Context>,
}

impl Server {
    pub fn new(core: Core, settings: SmppSettings, service: ServiceSettings) -> Self {
        Self {
            ctx: Arc::new(Context {
                core,
                settings,
                service,
                queues: Mutex::new(HashMap::new()),
                ussd: Mutex::new(HashMap::new()),
                bound: Arc::new(AtomicUsize::new(0)),
            }),
        }
    }

    /// The number of sessions bound to this listener, kept current by the sessions.
    pub fn bound_sessions(&self) -> Arc<AtomicUsize> {
        self.ctx.bound.clone()
    }

    /// Accepts connections until `shutdown`, then waits for every session to unbind.
    pub async fn run(self, listener: TcpListener, shutdown: CancellationToken) {
        let sessions = TaskTracker::new();
        let mut sweep = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = sweep.tick() => self.ctx.sweep(),
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let _ = stream.set_nodelay(true);
                        let span = tracing::info_span!("smpp", session = %session_id(), peer_addr = %addr);
                        sessions.spawn(session::run(stream, addr, self.ctx.clone(), shutdown.clone()).instrument(span));
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

fn session_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// True when `addr` may bind as a peer whose `allow_from` is `allowed`.
fn address_allowed(allowed: &[std::net::IpAddr], addr: SocketAddr) -> bool {
    let ip = match addr.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    allowed.is_empty() || allowed.contains(&ip)
}
