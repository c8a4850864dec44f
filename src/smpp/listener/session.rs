//! One listener connection, from bind to unbind.
//!
//! Bound: subscriber messages go through the inbound pipeline (`smpp::inbound`),
//! whose answers come back here: the response is written, then the reply queued.
//! A receiving bind takes replies of its system_id (`crate::replies`) within the
//! window and hands back the unanswered ones if it dies. Idle links get
//! enquire_link; a shutdown answers what is in hand and sends unbind.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::bind::{bind_phase, Bound};
use super::state::{step, Phase, Step};
use super::Context;
use crate::replies::{Outgoing, Taker, Target};

use crate::smpp::inbound::{Answer, Handling, Origin};
use crate::smpp::link::{self, answer_invalid, count_in, ok, refuse, Conn, Frame, Keepalive, Tick};
use crate::smpp::pdu;

pub(super) async fn run(
    stream: TcpStream,
    addr: SocketAddr,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
    // Holds this connection's place under the caps until the session ends.
    _ticket: super::guard::Ticket,
) {
    let mut conn = link::framed(stream, ctx.settings.max_pdu_len);
    let bind_timeout = Duration::from_secs(ctx.settings.bind_timeout_secs);
    let bound = tokio::select! {
        _ = shutdown.cancelled() => return,
        r = timeout(bind_timeout, bind_phase(&mut conn, &ctx, addr)) => match r {
            Ok(Some(bound)) => bound,
            Ok(None) => return,
            Err(_) => {
                tracing::info!("no bind within {}s: closing", bind_timeout.as_secs());
                return;
            }
        },
    };
    tracing::info!(system_id = %bound.system_id, bind = bound.kind.as_str(), "bound");
    let system_id = bound.system_id.clone();
    metrics::gauge!("otpgw_smpp_sessions", "system_id" => system_id.clone()).increment(1.0);
    // Shutdown, or a reload that removed this peer, ends the session the same way.
    let unbind = shutdown.child_token();
    let entry = ctx.board.enter(
        &system_id,
        bound.kind.as_str(),
        addr,
        ctx.core().now_ms(),
        unbind.clone(),
    );
    Session::new(conn, ctx.clone(), bound, entry)
        .serve(unbind)
        .await;
    metrics::gauge!("otpgw_smpp_sessions", "system_id" => system_id).decrement(1.0);
    tracing::info!("session closed");
}

/// Waits for work for `taker`; never, without one.
async fn ready(taker: Option<&Taker>) {
    match taker {
        Some(taker) => taker.ready().await,
        None => std::future::pending().await,
    }
}

struct InFlight {
    msg: Outgoing,
    sent_at: Instant,
}

struct Session {
    conn: Conn,
    ctx: Arc<Context>,
    bound: Bound,
    origin: Origin,
    /// Takes the replies of this system_id (receiving binds only).
    taker: Option<Taker>,
    keepalive: Keepalive,
    in_flight: HashMap<u32, InFlight>,
    /// This session on the listener's board (leaves it when the session ends).
    entry: super::board::Entry,
    /// Message tasks, whose answers the session loop writes.
    handling: Handling,
    deadline: Duration,
}

enum Flow {
    Continue,
    Close,
}

impl Session {
    fn new(conn: Conn, ctx: Arc<Context>, bound: Bound, entry: super::board::Entry) -> Self {
        let s = &ctx.settings;
        let target = Target::Peer(bound.system_id.clone());
        let taker = bound
            .kind
            .can_receive()
            .then(|| ctx.replies.taker(&[(target, (0, 0), None)]));
        Self {
            keepalive: Keepalive::new(
                0,
                Duration::from_secs(s.enquire_link_secs),
                Duration::from_secs(s.response_timeout_secs),
            ),
            deadline: Duration::from_secs(s.response_timeout_secs),
            origin: Origin::Peer {
                system_id: bound.system_id.clone(),
            },
            conn,
            ctx,
            bound,
            taker,
            in_flight: HashMap::new(),
            entry,
            handling: Handling::new(),
        }
    }

    /// Outstanding deliver_sm of this system_id on this node (the window in use).
    fn window_gauge(&self, delta: f64) {
        // The board's count moves with the gauge (this session's share of it).
        let n = delta.abs() as usize;
        if delta >= 0.0 {
            self.entry.in_flight.fetch_add(n, Ordering::Relaxed);
        } else {
            self.entry.in_flight.fetch_sub(n, Ordering::Relaxed);
        }
        metrics::gauge!("otpgw_smpp_window_in_use", "system_id" => self.bound.system_id.clone())
            .increment(delta);
    }

    fn room(&self) -> bool {
        self.taker.is_some() && self.in_flight.len() < self.ctx.settings.window
    }

    async fn serve(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            if self.room() {
                if let Some((_, msg)) = self.taker.as_ref().and_then(Taker::pull) {
                    if let Flow::Close = self.deliver(msg).await {
                        break;
                    }
                    continue;
                }
            }
            // The replies just queued leave in one write, before the loop waits.
            if !link::flush(&mut self.conn, self.deadline).await {
                break;
            }
            let room = self.room();
            // Biased, with the peer's next PDU last: under steady inbound traffic the
            // answers, the replies and the keep-alive tick still get their turn.
            let flow = tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    self.drain().await;
                    self.unbind().await;
                    Flow::Close
                }
                Some(answer) = self.handling.answered.recv() => self.answer(answer).await,
                _ = ready(self.taker.as_ref()), if room => Flow::Continue,
                _ = tick.tick() => self.on_tick().await,
                frame = self.conn.next() => match frame {
                    Some(Ok(Frame::Command(cmd))) => {
                        self.keepalive.heard();
                        self.on_command(*cmd).await
                    }
                    Some(Ok(Frame::Invalid(bad))) => {
                        self.keepalive.heard();
                        if answer_invalid(&mut self.conn, &bad, self.deadline).await { Flow::Continue } else { Flow::Close }
                    }
                    Some(Err(e)) => {
                        tracing::info!(error = %e, "read failed");
                        Flow::Close
                    }
                    None => {
                        tracing::info!("peer closed the connection");
                        Flow::Close
                    }
                },
            };
            if let Flow::Close = flow {
                break;
            }
        }
        // Replies the peer never acknowledged go to another session of this system_id.
        self.window_gauge(-(self.in_flight.len() as f64));
        let now = Instant::now();
        let mut unanswered: Vec<(u32, InFlight)> = self.in_flight.drain().collect();
        unanswered.sort_by_key(|(seq, _)| *seq);
        let back = unanswered
            .into_iter()
            .map(|(_, f)| f.msg)
            .filter(|m| m.deliver_by > now)
            .collect();
        if let Some(taker) = self.taker.take() {
            taker.give_back(&Target::Peer(self.bound.system_id.clone()), back);
        }
        self.handling.tasks.close();
        self.handling.tasks.wait().await;
    }

    async fn on_command(&mut self, cmd: Command) -> Flow {
        count_in(&cmd);
        let seq = cmd.sequence_number();
        let id = cmd.id();
        match step(Phase::Bound(self.bound.kind), &cmd) {
            Step::Message(message) => {
                let (origin, handling) = (&self.origin, &self.handling);
                match self.ctx.pipeline.take(origin, id, seq, message, handling) {
                    Some(response) => self.write(response).await,
                    None => Flow::Continue,
                }
            }
            Step::Receipt => {
                let message_id = format!("{:016x}", rand::random::<u64>());
                self.write(pdu::message_resp(id, seq, &message_id)).await
            }
            Step::Refuse(status) => self.write(refuse(id, status, seq)).await,
            Step::EnquireLink => self.write(ok(seq, Pdu::EnquireLinkResp)).await,
            Step::Unbind => {
                self.write(ok(seq, Pdu::UnbindResp)).await;
                tracing::info!("peer unbound");
                Flow::Close
            }
            // `step` answers a bind while bound with `AlreadyBound`.
            Step::AlreadyBound(kind) | Step::Bind(pdu::Bind { kind, .. }) => {
                let resp = pdu::bind_resp(
                    kind,
                    CommandStatus::EsmeRalybnd,
                    seq,
                    rusmpp::values::InterfaceVersion::Smpp3_4,
                );
                self.write(resp).await
            }
            Step::Response => {
                self.on_response(id, cmd.status(), seq);
                Flow::Continue
            }
        }
    }

    /// Writes a message's response, then queues the reply it announces, so no
    /// session of the peer can deliver the reply before the response is out. The
    /// reply is queued even if this link just failed: its code is stored, and a
    /// sibling session can still bring it to the customer. The answers already
    /// waiting go out with it in one write (`inbound::answer_batch`).
    async fn answer(&mut self, first: Answer) -> Flow {
        let (conn, deadline) = (&mut self.conn, self.deadline);
        let written = crate::smpp::inbound::answer_batch(
            first,
            &mut self.handling,
            conn,
            deadline,
            &self.ctx.pipeline,
        )
        .await;
        if written {
            Flow::Continue
        } else {
            Flow::Close
        }
    }

    async fn write(&mut self, cmd: Command) -> Flow {
        if link::send(&mut self.conn, cmd, self.deadline).await {
            Flow::Continue
        } else {
            Flow::Close
        }
    }

    async fn deliver(&mut self, msg: Outgoing) -> Flow {
        if msg.deliver_by <= Instant::now() {
            tracing::warn!(kind = msg.label, "reply expired before a receiver took it");
            metrics::counter!("otpgw_replies_expired_total").increment(1);
            return Flow::Continue;
        }
        if msg
            .send_before
            .is_some_and(|t| self.ctx.core().now_ms() >= t)
        {
            // Our claim on it is running out: the outbox gives it to a node (maybe
            // this one again) with a fresh lease, so it is not sent twice.
            metrics::counter!("otpgw_outbox_lapsed_total").increment(1);
            tracing::info!(
                kind = msg.label,
                "claimed reply not sent within its lease: left to the outbox"
            );
            return Flow::Continue;
        }
        let dsm = match pdu::deliver_sm(&msg.source, &msg.to, &msg.text, msg.ussd) {
            Ok(dsm) => dsm,
            Err(e) => {
                tracing::error!(error = %e, "reply cannot be put in a deliver_sm");
                return Flow::Continue;
            }
        };
        let seq = self.keepalive.seq();
        self.window_gauge(1.0);
        self.in_flight.insert(
            seq,
            InFlight {
                msg,
                sent_at: Instant::now(),
            },
        );
        // Written by the flush before the session loop waits, with the other
        // replies it took in this turn.
        if link::queue(&mut self.conn, ok(seq, dsm), self.deadline).await {
            Flow::Continue
        } else {
            Flow::Close
        }
    }

    fn on_response(&mut self, id: CommandId, status: CommandStatus, seq: u32) {
        if self.keepalive.answered(seq) {
            return;
        }
        let Some(f) = self.in_flight.remove(&seq) else {
            if id != CommandId::UnbindResp {
                tracing::debug!(command = ?id, seq, "response to nothing we sent");
            }
            return;
        };
        self.window_gauge(-1.0);
        let accepted = status == CommandStatus::EsmeRok && id == CommandId::DeliverSmResp;
        if !accepted {
            tracing::warn!(status = ?status, command = ?id, kind = f.msg.label, "peer refused a reply");
        }
        metrics::histogram!("otpgw_deliver_sm_seconds").record(f.sent_at.elapsed().as_secs_f64());
        if let Some(code_id) = f.msg.code_id {
            // Off the session loop: a slow write must not stall the link.
            let delivery = self.ctx.core().delivery.clone();
            self.handling
                .tasks
                .spawn(tracing::Instrument::in_current_span(async move {
                    if let Err(e) = delivery.answered(code_id, accepted).await {
                        tracing::warn!(error = %e, "could not record delivery state");
                    }
                }));
        }
    }

    async fn on_tick(&mut self) -> Flow {
        let oldest = self.in_flight.values().map(|f| f.sent_at).min();
        match self.keepalive.tick(oldest) {
            Tick::Dead => {
                tracing::warn!("no enquire_link_resp: closing the link");
                Flow::Close
            }
            Tick::Late => {
                // The peer is not answering deliver_sm: hand them to another session.
                tracing::warn!("deliver_sm without response: closing the link");
                Flow::Close
            }
            Tick::Enquire(seq) => self.write(ok(seq, Pdu::EnquireLink)).await,
            Tick::Quiet => Flow::Continue,
        }
    }

    /// Lets messages being handled finish and writes their answers, so that no
    /// committed code goes unanswered because we were shutting down; then sends
    /// what waits for this system_id, as far as the window allows.
    async fn drain(&mut self) {
        self.handling.settle().await;
        while let Ok(answer) = self.handling.answered.try_recv() {
            if let Flow::Close = self.answer(answer).await {
                return;
            }
        }
        while self.room() {
            let Some((_, msg)) = self.taker.as_ref().and_then(Taker::pull) else {
                break;
            };
            if let Flow::Close = self.deliver(msg).await {
                return;
            }
        }
    }

    /// Tells the peer we are going and waits briefly for its unbind_resp.
    async fn unbind(&mut self) {
        let seq = self.keepalive.seq();
        if let Flow::Close = self.write(ok(seq, Pdu::Unbind)).await {
            return;
        }
        let deadline = self.deadline;
        let wait = async {
            while let Some(Ok(frame)) = self.conn.next().await {
                let Frame::Command(cmd) = frame else { continue };
                let (id, seq) = (cmd.id(), cmd.sequence_number());
                match id {
                    CommandId::UnbindResp => return,
                    CommandId::Unbind => {
                        link::send(&mut self.conn, ok(seq, Pdu::UnbindResp), deadline).await;
                        return;
                    }
                    // Crossed our unbind: refuse, so the peer knows to send it elsewhere.
                    id if id.is_operation() => {
                        link::send(
                            &mut self.conn,
                            refuse(id, CommandStatus::EsmeRinvbndsts, seq),
                            deadline,
                        )
                        .await;
                    }
                    _ => {}
                }
            }
        };
        if timeout(Duration::from_secs(2), wait).await.is_err() {
            tracing::info!("no unbind_resp within 2s");
        } else {
            tracing::info!("unbound on shutdown");
        }
    }
}
