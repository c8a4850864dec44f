//! The SMPP listener: telcos and aggregators bind to us (SMPP 3.3/3.4/5.0 binds) and
//! send subscriber messages as submit_sm (or deliver_sm); replies go back as
//! deliver_sm to a receiver or transceiver bind of the same system_id.
//!
//! * `guard`   — who may hold a connection: caps in total and per address, and a
//!   back-off for addresses that keep failing to bind.
//! * `codec`   — framing that answers bad PDUs with generic_nack instead of dying.
//! * `pdu`     — PDUs ↔ plain values (addresses, decoded text, reply encoding).
//! * `session` — one connection: bind, then requests, replies, enquire_link, unbind.
//! * `ussd`    — USSD dialogues over SMPP, for the listener and client mode alike.
//! * `outbox`  — with several nodes, sends the replies this node can deliver that
//!   another node took in (or left behind when it died).
//! * `client`  — client mode: we bind out to operator SMSCs (same codec and PDUs).
//!
//! Replies wait in one queue per system_id that every receiving session of that
//! system_id drains, so a reply is delivered even if the customer's message came in
//! on a transmitter-only bind or the session that took it has since gone away.

pub mod client;
// Public so that `otpgw bench` and the criterion benches use the listener's own
// framing and PDU conversions instead of copies of them.
pub mod codec;
mod guard;
mod outbox;
pub mod pdu;
mod session;
mod ussd;

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
    /// A reply this node claimed from the outbox: not to be sent from this epoch
    /// ms on, when the claim may pass to another node (see `core::outbox`).
    pub send_before: Option<i64>,
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
    /// USSD dialogues over SMPP through this listener.
    pub ussd: ussd::Dialogues,
    pub guard: Arc<guard::Guard>,
    /// Receiving sessions bound here, per system_id: what this node can deliver.
    pub receivers: outbox::Receivers,
    /// Sessions bound on this node right now, for the console's health strip.
    pub bound: Arc<AtomicUsize>,
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

    /// Drops replies that can no longer be useful from every queue, so a system_id
    /// with no receiving bind does not pile them up.
    fn sweep(&self) {
        self.guard.sweep();
        self.ussd.sweep();
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
/// Above this many waiting replies, only replies carrying a code are queued.
const QUEUE_HIGH_WATER: usize = QUEUE_CAPACITY * 8 / 10;

pub struct Server {
    ctx: Arc<Context>,
}

impl Server {
    pub fn new(core: Core, settings: SmppSettings, service: ServiceSettings) -> Self {
        Self {
            ctx: Arc::new(Context {
                core,
                guard: guard::Guard::new(&settings),
                ussd: ussd::Dialogues::new(&settings),
                settings,
                service,
                queues: Mutex::new(HashMap::new()),
                receivers: outbox::Receivers::default(),
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
        if let Some(every) = self.ctx.core.delivery.outbox_poll() {
            sessions.spawn(outbox::run(self.ctx.clone(), every, shutdown.clone()));
        }
        let mut sweep = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = sweep.tick() => self.ctx.sweep(),
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        // Decided before a byte is read: over a cap, or from an address
                        // in back-off, the connection is closed at once.
                        let ticket = match self.ctx.guard.admit(addr.ip()) {
                            Ok(ticket) => ticket,
                            Err(refusal) => {
                                metrics::counter!("otpgw_smpp_connections_refused_total", "reason" => refusal.as_str()).increment(1);
                                crate::telemetry::sampled(crate::telemetry::Noisy::SmppConnectionRefused, || {
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

/// The bytes-to-values path of a session without its I/O, for the fuzz targets in
/// `fuzz/`: framing, the generic_nack a bad PDU gets, and the conversions a session
/// applies to each decoded PDU (bind, message, USSD string). Returns the number of
/// frames. Whatever the bytes, it must not panic: a panic here is a session a peer
/// can kill.
#[doc(hidden)]
pub fn decode_for_fuzzing(bytes: &[u8], max_pdu_len: usize) -> usize {
    use tokio_util::codec::{Decoder, Encoder};
    let mut codec = codec::SmppCodec::new(max_pdu_len.clamp(64, 65_536));
    let mut buf = bytes::BytesMut::from(bytes);
    let mut frames = 0;
    // Every frame consumes input, so this ends; the cap is a second guard.
    while frames < 100_000 {
        let Ok(Some(frame)) = codec.decode(&mut buf) else {
            break;
        };
        frames += 1;
        match frame {
            codec::Frame::Command(cmd) => {
                let mut out = bytes::BytesMut::new();
                if let Some(p) = cmd.pdu() {
                    let _ = pdu::bind(p);
                    if let Some(m) = pdu::message(p) {
                        let _ = otpgw_parsers::ussd::parse_ussd(&m.text);
                        let _ = otpgw_parsers::ussd::parse_ussd(&m.destination);
                    }
                }
                let _ = codec.encode(*cmd, &mut out);
            }
            codec::Frame::Invalid(bad) => {
                let mut out = bytes::BytesMut::new();
                let _ = codec.encode(bad.generic_nack(), &mut out);
                if bad.framing_lost {
                    break;
                }
            }
        }
    }
    frames
}

fn session_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// True when `addr` may bind as a peer whose `allow_from` is `allowed`.
fn address_allowed(allowed: &[std::net::IpAddr], addr: SocketAddr) -> bool {
    allowed.is_empty() || allowed.contains(&guard::canonical(addr.ip()))
}

/// What operations may ask about this node's SMPP links (`crate::core::links`):
/// client mode's connections and the listener's bound sessions.
pub struct LinkBoard {
    pub operators: Option<client::Operators>,
    pub listener_sessions: Arc<AtomicUsize>,
}

impl crate::core::links::Links for LinkBoard {
    fn connections(&self) -> Vec<crate::core::links::ConnectionStatus> {
        self.operators
            .as_ref()
            .map(client::Operators::status)
            .unwrap_or_default()
    }

    fn routes_down(&self) -> Vec<String> {
        self.operators
            .as_ref()
            .map(client::Operators::routes_down)
            .unwrap_or_default()
    }

    fn listener_sessions(&self) -> usize {
        self.listener_sessions
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn client_mode(&self) -> bool {
        self.operators.is_some()
    }
}

#[cfg(test)]
mod tests {
    /// The fuzz corpus (seeds, and every crash found, kept as a regression input) also
    /// runs here, on stable, with every test run.
    #[test]
    fn the_fuzz_corpus_decodes_without_panic() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/smpp_codec");
        let mut inputs = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            super::decode_for_fuzzing(&bytes, 512);
            inputs += 1;
        }
        assert!(inputs >= 5, "{inputs} inputs in {dir}");
    }
}
