//! One SMPP connection, from bind to unbind.
//!
//! Before bind: only bind_*, enquire_link and unbind are served; anything else gets
//! ESME_RINVBNDSTS; no bind within `bind_timeout_secs` closes the connection.
//! Bound: subscriber messages are handed to the core in their own task (the session
//! keeps reading meanwhile); the response carries a message_id and goes out before
//! the reply deliver_sm. Outgoing deliver_sm are windowed and retried on another
//! session if this one dies before the peer answers. Idle links get enquire_link; a
//! shutdown sends unbind and waits briefly for unbind_resp.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::codec::{Frame, SmppCodec};
use super::pdu::{self, BindKind};
use super::{ussd, Context, Outgoing};
use crate::core::{CoreError, Dispatch, Inbound, ReplyPath};
use otpgw_rules::vocab::Channel;

pub(super) type Conn = Framed<TcpStream, SmppCodec>;

/// Initial read buffer of a session (tokio-util's default is 8 KiB).
pub(super) const READ_BUFFER: usize = 512;

struct Bound {
    system_id: String,
    kind: BindKind,
}

pub(super) async fn run(
    stream: TcpStream,
    addr: SocketAddr,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
    // Holds this connection's place under the caps until the session ends.
    _ticket: super::guard::Ticket,
) {
    // A small first read buffer: most PDUs are tens of bytes, and an idle bound
    // session should cost little (the buffer grows for a large PDU when one comes).
    let mut conn = Framed::with_capacity(
        stream,
        SmppCodec::new(ctx.settings.max_pdu_len),
        READ_BUFFER,
    );
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
    metrics::gauge!("otpgw_smpp_sessions", "system_id" => bound.system_id.clone()).increment(1.0);
    let system_id = bound.system_id.clone();
    let count = ctx.bound.clone();
    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let receiver = bound
        .kind
        .can_receive()
        .then(|| ctx.receivers.hold(&system_id));
    Session::new(conn, ctx, bound).serve(shutdown).await;
    drop(receiver);
    count.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    metrics::gauge!("otpgw_smpp_sessions", "system_id" => system_id).decrement(1.0);
    tracing::info!("session closed");
}

/// Writes one PDU; false when the connection must close. A peer that stops reading
/// fills its socket buffer and would block this write for ever (and with it the
/// session's timers), so the write has the response timeout as its deadline.
pub(super) async fn send(conn: &mut Conn, cmd: Command, deadline: Duration) -> bool {
    let id = cmd.id();
    let status = cmd.status();
    match timeout(deadline, conn.send(cmd)).await {
        Ok(Ok(())) => {
            metrics::counter!("otpgw_smpp_pdus_total", "direction" => "out", "command" => command_label(id), "status" => status_label(status)).increment(1);
            true
        }
        Ok(Err(e)) => {
            tracing::info!(error = %e, "write failed");
            false
        }
        Err(_) => {
            tracing::warn!(
                secs = deadline.as_secs(),
                "peer is not reading: write timed out, closing the link"
            );
            metrics::counter!("otpgw_smpp_write_timeouts_total").increment(1);
            false
        }
    }
}

fn write_deadline(ctx: &Context) -> Duration {
    Duration::from_secs(ctx.settings.response_timeout_secs)
}

/// Puts a reply on its system_id's queue for a receiving session.
///
/// Above the high-water mark only replies carrying a code are taken: notices ("not
/// registered", "try later") are what a flood of unknown senders produces, and they
/// must not take the room of the codes customers are waiting for.
pub(super) fn enqueue(ctx: &Context, system_id: &str, reply: Outgoing) {
    let (queue, _) = ctx.queue(system_id);
    let crowded = queue.len() >= super::QUEUE_HIGH_WATER && reply.code_id.is_none();
    if crowded || queue.try_send(reply).is_err() {
        metrics::counter!("otpgw_replies_dropped_total", "reason" => if crowded { "notice_over_high_water" } else { "full" }).increment(1);
        crate::telemetry::sampled(crate::telemetry::Noisy::ReplyQueueFull, || {
            tracing::error!(crowded, "reply queue full: reply dropped");
        });
    }
}

/// Answers a PDU we could not decode; false when the connection must close.
pub(super) async fn answer_invalid(
    conn: &mut Conn,
    bad: &super::codec::InvalidPdu,
    deadline: Duration,
) -> bool {
    crate::telemetry::sampled(crate::telemetry::Noisy::UndecodablePdu, || {
        tracing::info!(reason = %bad.reason, status = ?bad.status, "undecodable PDU");
    });
    metrics::counter!("otpgw_smpp_pdus_total", "direction" => "in", "command" => "invalid", "status" => status_label(bad.status)).increment(1);
    if bad.wants_nack() && !send(conn, bad.generic_nack(), deadline).await {
        return false;
    }
    !bad.framing_lost
}

pub(super) fn count_in(cmd: &Command) {
    metrics::counter!("otpgw_smpp_pdus_total", "direction" => "in", "command" => command_label(cmd.id()), "status" => status_label(cmd.status())).increment(1);
}

/// A metric label for a command_id. The peer chooses the value, even before bind, so
/// only the spec's names become labels: anything else is "other" (one series, not one
/// per value the peer can think of).
fn command_label(id: CommandId) -> String {
    match id {
        CommandId::Other(_) => "other".to_owned(),
        id => format!("{id:?}"),
    }
}

/// A metric label for a command_status, bounded as [`command_label`] is.
fn status_label(status: CommandStatus) -> String {
    match status {
        CommandStatus::Other(_) => "other".to_owned(),
        status => format!("{status:?}"),
    }
}

/// Reads until a successful bind (`Some`) or the connection ends (`None`).
async fn bind_phase(conn: &mut Conn, ctx: &Context, addr: SocketAddr) -> Option<Bound> {
    let deadline = write_deadline(ctx);
    while let Some(frame) = conn.next().await {
        let cmd = match frame {
            Ok(Frame::Command(cmd)) => *cmd,
            Ok(Frame::Invalid(bad)) => {
                if !answer_invalid(conn, &bad, deadline).await {
                    return None;
                }
                continue;
            }
            Err(e) => {
                tracing::info!(error = %e, "read failed before bind");
                return None;
            }
        };
        count_in(&cmd);
        let seq = cmd.sequence_number();
        if let Some(bind) = cmd.pdu().and_then(pdu::bind) {
            let status = check_bind(ctx, &bind, addr);
            let ok = status == CommandStatus::EsmeRok;
            if !ok {
                // One try per connection, and a few per address per window: a
                // password cannot be guessed at the speed of the link.
                ctx.guard.bind_failed(addr.ip());
                metrics::counter!("otpgw_smpp_bind_failures_total").increment(1);
                crate::telemetry::sampled(crate::telemetry::Noisy::BindRefused, || {
                    tracing::warn!(system_id = %crate::telemetry::escaped(bind.system_id), status = ?status, "bind refused: closing");
                });
            }
            let sent = send(
                conn,
                pdu::bind_resp(bind.kind, status, seq, bind.interface_version),
                deadline,
            )
            .await;
            if ok && sent {
                return Some(Bound {
                    system_id: bind.system_id.to_owned(),
                    kind: bind.kind,
                });
            }
            return None;
        }
        let reply = match cmd.pdu() {
            Some(Pdu::EnquireLink) => {
                Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLinkResp)
            }
            Some(Pdu::Unbind) => {
                send(
                    conn,
                    Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp),
                    deadline,
                )
                .await;
                return None;
            }
            _ if cmd.id().is_operation() => refuse(cmd.id(), CommandStatus::EsmeRinvbndsts, seq),
            _ => continue, // a stray response: nothing to answer
        };
        if !send(conn, reply, deadline).await {
            return None;
        }
    }
    None
}

fn check_bind(ctx: &Context, bind: &pdu::Bind<'_>, addr: SocketAddr) -> CommandStatus {
    let Some(peer) = ctx
        .settings
        .peers
        .iter()
        .find(|p| p.system_id == bind.system_id)
    else {
        return CommandStatus::EsmeRinvsysid;
    };
    // The address first, so a bind from elsewhere learns nothing about the password.
    if !super::address_allowed(&peer.allow_from, addr) {
        return CommandStatus::EsmeRbindfail;
    }
    if !otpgw_rules::codes::hashes_equal(peer.password.expose(), bind.password) {
        return CommandStatus::EsmeRinvpaswd;
    }
    CommandStatus::EsmeRok
}

/// The refusal of a customer's message the core could not answer: a source that is
/// not a phone number is the peer's mistake; anything else is temporary (the peer
/// should retry; nothing was promised).
pub(super) fn refusal(id: CommandId, seq: u32, e: &CoreError, what: &str) -> Command {
    match e {
        CoreError::Msisdn(e) => {
            tracing::info!(error = ?e, "source address is not a phone number");
            refuse(id, CommandStatus::EsmeRinvsrcadr, seq)
        }
        e => {
            tracing::error!(error = %e, "{what} could not be handled");
            refuse(id, CommandStatus::EsmeRxTAppn, seq)
        }
    }
}

/// Whether a message to `destination` is for us: one of `service.short_codes` (any,
/// when the list is empty), with or without a leading '+'.
pub(super) fn serves(short_codes: &[String], destination: &str) -> bool {
    let destination = destination.trim_start_matches('+');
    short_codes.is_empty()
        || short_codes
            .iter()
            .any(|c| c.trim_start_matches('+') == destination)
}

/// The error response to an operation we do not serve: its own *_resp with `status`
/// where SMPP defines one, generic_nack otherwise.
pub(super) fn refuse(id: CommandId, status: CommandStatus, seq: u32) -> Command {
    match id {
        CommandId::Outbind | CommandId::AlertNotification => {
            Command::new(status, seq, Pdu::GenericNack)
        }
        id => pdu::header_only(id.matching_response(), status, seq),
    }
}

struct InFlight {
    reply: Outgoing,
    sent_at: Instant,
}

struct Session {
    conn: Conn,
    ctx: Arc<Context>,
    bound: Bound,
    next_seq: u32,
    in_flight: HashMap<u32, InFlight>,
    enquire: Option<(u32, Instant)>,
    last_heard: Instant,
    /// Responses computed by message tasks, written by the session loop; the reply
    /// each one announces is queued only once the response is written.
    responses: (
        mpsc::UnboundedSender<Answer>,
        mpsc::UnboundedReceiver<Answer>,
    ),
    tasks: TaskTracker,
}

/// A message task's result: the PDU's response, and the reply it announces.
struct Answer {
    response: Command,
    reply: Option<Outgoing>,
}

impl From<Command> for Answer {
    fn from(response: Command) -> Self {
        Self {
            response,
            reply: None,
        }
    }
}

enum Flow {
    Continue,
    Close,
}

impl Session {
    fn new(conn: Conn, ctx: Arc<Context>, bound: Bound) -> Self {
        Self {
            conn,
            ctx,
            bound,
            next_seq: 0,
            in_flight: HashMap::new(),
            enquire: None,
            last_heard: Instant::now(),
            responses: mpsc::unbounded_channel(),
            tasks: TaskTracker::new(),
        }
    }

    /// Outstanding deliver_sm of this system_id on this node (the window in use).
    fn window_gauge(&self, delta: f64) {
        metrics::gauge!("otpgw_smpp_window_in_use", "system_id" => self.bound.system_id.clone())
            .increment(delta);
    }

    fn seq(&mut self) -> u32 {
        self.next_seq = if self.next_seq >= 0x7FFF_FFFF {
            1
        } else {
            self.next_seq + 1
        };
        self.next_seq
    }

    async fn serve(mut self, shutdown: CancellationToken) {
        let (_, queue) = self.ctx.queue(&self.bound.system_id);
        let receives = self.bound.kind.can_receive();
        let window = self.ctx.settings.window;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let room = receives && self.in_flight.len() < window;
            // Biased, with the peer's next PDU last: under steady inbound traffic the
            // answers, the replies and the keep-alive tick still get their turn.
            let flow = tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    self.drain().await;
                    self.unbind().await;
                    Flow::Close
                }
                Some(answer) = self.responses.1.recv() => self.answer(answer).await,
                Ok(reply) = queue.recv(), if room => self.deliver(reply).await,
                _ = tick.tick() => self.on_tick().await,
                frame = self.conn.next() => match frame {
                    Some(Ok(Frame::Command(cmd))) => {
                        self.last_heard = Instant::now();
                        self.on_command(*cmd).await
                    }
                    Some(Ok(Frame::Invalid(bad))) => {
                        self.last_heard = Instant::now();
                        if answer_invalid(&mut self.conn, &bad, write_deadline(&self.ctx)).await { Flow::Continue } else { Flow::Close }
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
        let (requeue, _) = self.ctx.queue(&self.bound.system_id);
        self.window_gauge(-(self.in_flight.len() as f64));
        for (_, f) in self.in_flight.drain() {
            if f.reply.deliver_by > Instant::now() {
                let _ = requeue.try_send(f.reply);
            }
        }
        self.tasks.close();
        self.tasks.wait().await;
    }

    async fn on_command(&mut self, cmd: Command) -> Flow {
        count_in(&cmd);
        let seq = cmd.sequence_number();
        let id = cmd.id();
        match cmd.pdu() {
            Some(pdu @ (Pdu::SubmitSm(_) | Pdu::DeliverSm(_))) => {
                if id == CommandId::SubmitSm && !self.bound.kind.can_submit() {
                    return self
                        .reply(refuse(id, CommandStatus::EsmeRinvbndsts, seq))
                        .await;
                }
                if let Err(refused) = self.ctx.core.admission.peer(&self.bound.system_id) {
                    tracing::debug!(rule = refused.rule, "throttled");
                    return self
                        .reply(refuse(id, CommandStatus::EsmeRthrottled, seq))
                        .await;
                }
                match pdu::message(pdu) {
                    Some(message) => self.on_message(id, seq, message).await,
                    None => {
                        self.reply(refuse(id, CommandStatus::EsmeRsyserr, seq))
                            .await
                    }
                }
            }
            Some(Pdu::EnquireLink) => {
                self.reply(Command::new(
                    CommandStatus::EsmeRok,
                    seq,
                    Pdu::EnquireLinkResp,
                ))
                .await
            }
            Some(Pdu::Unbind) => {
                self.reply(Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp))
                    .await;
                tracing::info!("peer unbound");
                Flow::Close
            }
            Some(pdu) if pdu::bind(pdu).is_some() => {
                let kind = pdu::bind(pdu).map_or(BindKind::Transceiver, |b| b.kind);
                let resp = pdu::bind_resp(
                    kind,
                    CommandStatus::EsmeRalybnd,
                    seq,
                    rusmpp::values::InterfaceVersion::Smpp3_4,
                );
                self.reply(resp).await
            }
            _ if id.is_operation() => {
                self.reply(refuse(id, CommandStatus::EsmeRinvcmdid, seq))
                    .await
            }
            _ => {
                self.on_response(id, cmd.status(), seq).await;
                Flow::Continue
            }
        }
    }

    /// Writes a message's response, then queues the reply it announces, so no
    /// session of the peer can deliver the reply before the response is out. The
    /// reply is queued even if this link just failed: its code is stored, and a
    /// sibling session can still bring it to the customer.
    async fn answer(&mut self, answer: Answer) -> Flow {
        let flow = self.reply(answer.response).await;
        if let Some(reply) = answer.reply {
            enqueue(&self.ctx, &self.bound.system_id, reply);
        }
        flow
    }

    async fn reply(&mut self, cmd: Command) -> Flow {
        if send(&mut self.conn, cmd, write_deadline(&self.ctx)).await {
            Flow::Continue
        } else {
            Flow::Close
        }
    }

    /// A subscriber message: check the address here, hand the rest to the core in its
    /// own task so that a slow database does not stall the link.
    async fn on_message(&mut self, id: CommandId, seq: u32, message: pdu::Message) -> Flow {
        let message_id = format!("{:016x}", rand::random::<u64>());
        if message.receipt {
            // A delivery receipt for something the peer sent earlier: acknowledge only.
            return self.reply(pdu::message_resp(id, seq, &message_id)).await;
        }
        if message.is_ussd() {
            return self.on_ussd(id, seq, message_id, message).await;
        }
        if !serves(&self.ctx.service.short_codes, &message.destination) {
            tracing::info!(destination = %crate::telemetry::escaped(&message.destination), "message for a number we do not serve");
            return self
                .reply(refuse(id, CommandStatus::EsmeRinvdstadr, seq))
                .await;
        }
        let ctx = self.ctx.clone();
        let responses = self.responses.0.clone();
        let system_id = self.bound.system_id.clone();
        let started = Instant::now();
        let deadline = Duration::from_secs(ctx.settings.message_timeout_secs);
        self.tasks.spawn(tracing::Instrument::in_current_span(async move {
            // This node's limiter let the PDU through; the cluster's may not (PostgreSQL).
            if let Err(refused) = ctx.core.admission.peer_everywhere(&system_id).await {
                tracing::debug!(rule = refused.rule, "throttled across the cluster");
                let _ = responses.send(refuse(id, CommandStatus::EsmeRthrottled, seq).into());
                return;
            }
            let path = ReplyPath::Shared { target: crate::core::peer_target(&system_id), held_here: ctx.receivers.any(&system_id) };
            let inbound = Inbound { channel: Channel::Sms, peer: system_id.clone(), from: message.source, text: message.text, path };
            // Past the deadline the peer gets "try again" rather than nothing: a held
            // lock or a stalled database must not leave a submit_sm unanswered.
            let handled = timeout(deadline, ctx.core.issue.sms(&inbound)).await.unwrap_or_else(|_| {
                tracing::error!(secs = deadline.as_secs(), "message not handled within its deadline");
                metrics::counter!("otpgw_message_timeouts_total").increment(1);
                Err(CoreError::Timeout)
            });
            let response = match handled {
                Ok(None) => {
                    // Over a limit and already told: answer the PDU, send nothing.
                    let _ = responses.send(pdu::message_resp(id, seq, &message_id).into());
                    return;
                }
                Ok(Some(reply)) => {
                    let ttl = Duration::from_secs(ctx.service.code_ttl_secs);
                    tracing::info!(message_id = %message_id, reply = reply.kind.as_str(), "message answered");
                    let send_before = match reply.dispatch {
                        Dispatch::Direct => None,
                        Dispatch::Claimed { send_before } => Some(send_before),
                        // In the outbox, for the node that holds a receiver.
                        Dispatch::Elsewhere => {
                            let _ = responses.send(pdu::message_resp(id, seq, &message_id).into());
                            return;
                        }
                    };
                    // The session writes the response, then queues the reply.
                    let _ = responses.send(Answer {
                        response: pdu::message_resp(id, seq, &message_id),
                        reply: Some(Outgoing {
                            source: ctx.service.sender_id.clone(),
                            to: reply.to,
                            text: reply.text,
                            label: reply.kind.as_str(),
                            code_id: reply.code_id,
                            ussd: None,
                            deliver_by: started + ttl,
                            send_before,
                        }),
                    });
                    metrics::histogram!("otpgw_reply_seconds", "channel" => "sms").record(started.elapsed().as_secs_f64());
                    return;
                }
                Err(e) => refusal(id, seq, &e, "message"),
            };
            let _ = responses.send(response.into());
        }));
        Flow::Continue
    }

    /// One USSD step over SMPP (see `smpp::ussd`): the dialogue moves in the session,
    /// the core's screen is computed in a task of its own, like an SMS.
    async fn on_ussd(
        &mut self,
        id: CommandId,
        seq: u32,
        message_id: String,
        message: pdu::Message,
    ) -> Flow {
        let Some(step) = ussd::step(&self.ctx.ussd, &self.ctx.settings, &message) else {
            return self.reply(pdu::message_resp(id, seq, &message_id)).await;
        };
        let ctx = self.ctx.clone();
        let responses = self.responses.0.clone();
        let system_id = self.bound.system_id.clone();
        let started = Instant::now();
        let ttl = Duration::from_secs(ctx.settings.ussd_session_timeout_secs);
        self.tasks.spawn(tracing::Instrument::in_current_span(async move {
            let screen = ussd::answer(&ctx.core, &ctx.ussd, &ctx.settings, &system_id, &message, step).await;
            let response = match screen {
                Ok(screen) => {
                    tracing::info!(message_id = %message_id, end = screen.meta.end, "ussd screen sent");
                    let _ = responses.send(Answer {
                        response: pdu::message_resp(id, seq, &message_id),
                        reply: Some(Outgoing {
                            source: screen.source,
                            to: screen.reply.to,
                            text: screen.reply.text,
                            label: "ussd",
                            code_id: screen.reply.code_id,
                            ussd: Some(screen.meta),
                            deliver_by: started + ttl,
                            send_before: None,
                        }),
                    });
                    metrics::histogram!("otpgw_reply_seconds", "channel" => "ussd").record(started.elapsed().as_secs_f64());
                    return;
                }
                Err(e) => refusal(id, seq, &e, "ussd step"),
            };
            let _ = responses.send(response.into());
        }));
        Flow::Continue
    }

    async fn deliver(&mut self, reply: Outgoing) -> Flow {
        if reply.deliver_by <= Instant::now() {
            tracing::warn!(
                kind = reply.label,
                "reply expired before a receiver took it"
            );
            metrics::counter!("otpgw_replies_expired_total").increment(1);
            return Flow::Continue;
        }
        if reply
            .send_before
            .is_some_and(|t| self.ctx.core.now_ms() >= t)
        {
            // Our claim on it is running out: the outbox gives it to a node (maybe
            // this one again) with a fresh lease, so it is not sent twice.
            metrics::counter!("otpgw_outbox_lapsed_total").increment(1);
            tracing::info!(
                kind = reply.label,
                "claimed reply not sent within its lease: left to the outbox"
            );
            return Flow::Continue;
        }
        let dsm = match pdu::deliver_sm(&reply.source, &reply.to, &reply.text, reply.ussd) {
            Ok(dsm) => dsm,
            Err(e) => {
                tracing::error!(error = %e, "reply cannot be put in a deliver_sm");
                return Flow::Continue;
            }
        };
        let seq = self.seq();
        self.window_gauge(1.0);
        self.in_flight.insert(
            seq,
            InFlight {
                reply,
                sent_at: Instant::now(),
            },
        );
        self.reply(Command::new(CommandStatus::EsmeRok, seq, dsm))
            .await
    }

    async fn on_response(&mut self, id: CommandId, status: CommandStatus, seq: u32) {
        if self.enquire.is_some_and(|(s, _)| s == seq) {
            self.enquire = None;
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
            tracing::warn!(status = ?status, command = ?id, kind = f.reply.label, "peer refused a reply");
        }
        metrics::histogram!("otpgw_deliver_sm_seconds").record(f.sent_at.elapsed().as_secs_f64());
        if let Some(code_id) = f.reply.code_id {
            // Off the session loop: a slow write must not stall the link.
            let ctx = self.ctx.clone();
            self.tasks
                .spawn(tracing::Instrument::in_current_span(async move {
                    if let Err(e) = ctx.core.delivery.answered(code_id, accepted).await {
                        tracing::warn!(error = %e, "could not record delivery state");
                    }
                }));
        }
    }

    async fn on_tick(&mut self) -> Flow {
        let timeout = Duration::from_secs(self.ctx.settings.response_timeout_secs);
        let now = Instant::now();
        if self
            .enquire
            .is_some_and(|(_, at)| now.duration_since(at) > timeout)
        {
            tracing::warn!("no enquire_link_resp: closing the link");
            return Flow::Close;
        }
        let late: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, f)| now.duration_since(f.sent_at) > timeout)
            .map(|(s, _)| *s)
            .collect();
        if !late.is_empty() {
            // The peer is not answering deliver_sm: hand them to another session.
            tracing::warn!(
                count = late.len(),
                "deliver_sm without response: closing the link"
            );
            return Flow::Close;
        }
        let idle = Duration::from_secs(self.ctx.settings.enquire_link_secs);
        if self.enquire.is_none() && now.duration_since(self.last_heard) >= idle {
            let seq = self.seq();
            self.enquire = Some((seq, now));
            return self
                .reply(Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLink))
                .await;
        }
        Flow::Continue
    }

    /// Lets messages being handled finish and writes their responses, so that no
    /// committed code goes unanswered because we were shutting down.
    async fn drain(&mut self) {
        self.tasks.close();
        if timeout(Duration::from_secs(5), self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("messages still being handled at shutdown");
        }
        while let Ok(answer) = self.responses.1.try_recv() {
            if let Flow::Close = self.answer(answer).await {
                return;
            }
        }
        // And the replies waiting for this system_id, as far as the window allows.
        if self.bound.kind.can_receive() {
            let (_, queue) = self.ctx.queue(&self.bound.system_id);
            while self.in_flight.len() < self.ctx.settings.window {
                let Ok(reply) = queue.try_recv() else { break };
                if let Flow::Close = self.deliver(reply).await {
                    return;
                }
            }
        }
    }

    /// Tells the peer we are going and waits briefly for its unbind_resp.
    async fn unbind(&mut self) {
        let seq = self.seq();
        let deadline = write_deadline(&self.ctx);
        if !send(
            &mut self.conn,
            Command::new(CommandStatus::EsmeRok, seq, Pdu::Unbind),
            deadline,
        )
        .await
        {
            return;
        }
        let wait = async {
            while let Some(Ok(frame)) = self.conn.next().await {
                let Frame::Command(cmd) = frame else { continue };
                let (id, seq) = (cmd.id(), cmd.sequence_number());
                match id {
                    CommandId::UnbindResp => return,
                    CommandId::Unbind => {
                        send(
                            &mut self.conn,
                            Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp),
                            deadline,
                        )
                        .await;
                        return;
                    }
                    // Crossed our unbind: refuse, so the peer knows to send it elsewhere.
                    id if id.is_operation() => {
                        send(
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
