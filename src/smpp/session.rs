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
use super::{Context, Outgoing, UssdDialogue};
use crate::config::DialledIn;
use crate::core::{CoreError, Inbound};
use crate::domain::Channel;

pub(super) type Conn = Framed<TcpStream, SmppCodec>;

struct Bound {
    system_id: String,
    kind: BindKind,
}

pub(super) async fn run(
    stream: TcpStream,
    addr: SocketAddr,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
) {
    let mut conn = Framed::new(stream, SmppCodec::new(ctx.settings.max_pdu_len));
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
    Session::new(conn, ctx, bound).serve(shutdown).await;
    count.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    metrics::gauge!("otpgw_smpp_sessions", "system_id" => system_id).decrement(1.0);
    tracing::info!("session closed");
}

pub(super) async fn send(conn: &mut Conn, cmd: Command) -> bool {
    let id = cmd.id();
    let status = cmd.status();
    match conn.send(cmd).await {
        Ok(()) => {
            metrics::counter!("otpgw_smpp_pdus_total", "direction" => "out", "command" => format!("{id:?}"), "status" => format!("{status:?}")).increment(1);
            true
        }
        Err(e) => {
            tracing::info!(error = %e, "write failed");
            false
        }
    }
}

/// Puts a reply on its system_id's queue for a receiving session.
fn enqueue(ctx: &Context, system_id: &str, reply: Outgoing) {
    let (queue, _) = ctx.queue(system_id);
    if queue.try_send(reply).is_err() {
        tracing::error!("reply queue full: reply dropped");
        metrics::counter!("otpgw_replies_dropped_total").increment(1);
    }
}

/// Answers a PDU we could not decode; false when the connection must close.
pub(super) async fn answer_invalid(conn: &mut Conn, bad: &super::codec::InvalidPdu) -> bool {
    tracing::info!(reason = %bad.reason, status = ?bad.status, "undecodable PDU");
    metrics::counter!("otpgw_smpp_pdus_total", "direction" => "in", "command" => "invalid", "status" => format!("{:?}", bad.status)).increment(1);
    if bad.wants_nack() && !send(conn, bad.generic_nack()).await {
        return false;
    }
    !bad.framing_lost
}

pub(super) fn count_in(cmd: &Command) {
    metrics::counter!("otpgw_smpp_pdus_total", "direction" => "in", "command" => format!("{:?}", cmd.id()), "status" => format!("{:?}", cmd.status())).increment(1);
}

/// Reads until a successful bind (`Some`) or the connection ends (`None`).
async fn bind_phase(conn: &mut Conn, ctx: &Context, addr: SocketAddr) -> Option<Bound> {
    while let Some(frame) = conn.next().await {
        let cmd = match frame {
            Ok(Frame::Command(cmd)) => *cmd,
            Ok(Frame::Invalid(bad)) => {
                if !answer_invalid(conn, &bad).await {
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
                tracing::warn!(system_id = %bind.system_id, status = ?status, "bind refused");
            }
            let sent = send(
                conn,
                pdu::bind_resp(bind.kind, status, seq, bind.interface_version),
            )
            .await;
            if ok && sent {
                return Some(Bound {
                    system_id: bind.system_id.to_owned(),
                    kind: bind.kind,
                });
            }
            if !sent {
                return None;
            }
            continue;
        }
        let reply = match cmd.pdu() {
            Some(Pdu::EnquireLink) => {
                Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLinkResp)
            }
            Some(Pdu::Unbind) => {
                send(
                    conn,
                    Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp),
                )
                .await;
                return None;
            }
            _ if cmd.id().is_operation() => refuse(cmd.id(), CommandStatus::EsmeRinvbndsts, seq),
            _ => continue, // a stray response: nothing to answer
        };
        if !send(conn, reply).await {
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
    if !crate::codes::hashes_equal(peer.password.expose(), bind.password) {
        return CommandStatus::EsmeRinvpaswd;
    }
    CommandStatus::EsmeRok
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
    /// Responses computed by message tasks, written by the session loop.
    responses: (
        mpsc::UnboundedSender<Command>,
        mpsc::UnboundedReceiver<Command>,
    ),
    tasks: TaskTracker,
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
            // Biased: a message's response is queued before its reply, and must be
            // written before it.
            let flow = tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    self.drain().await;
                    self.unbind().await;
                    Flow::Close
                }
                Some(cmd) = self.responses.1.recv() => {
                    if send(&mut self.conn, cmd).await { Flow::Continue } else { Flow::Close }
                }
                frame = self.conn.next() => match frame {
                    Some(Ok(Frame::Command(cmd))) => {
                        self.last_heard = Instant::now();
                        self.on_command(*cmd).await
                    }
                    Some(Ok(Frame::Invalid(bad))) => {
                        self.last_heard = Instant::now();
                        if answer_invalid(&mut self.conn, &bad).await { Flow::Continue } else { Flow::Close }
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
                Ok(reply) = queue.recv(), if room => self.deliver(reply).await,
                _ = tick.tick() => self.on_tick().await,
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
                if let Err(refused) = self.ctx.core.admit_peer(&self.bound.system_id) {
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

    async fn reply(&mut self, cmd: Command) -> Flow {
        if send(&mut self.conn, cmd).await {
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
        let short_codes = &self.ctx.service.short_codes;
        let destination = message.destination.trim_start_matches('+');
        if !short_codes.is_empty()
            && !short_codes
                .iter()
                .any(|c| c.trim_start_matches('+') == destination)
        {
            tracing::info!(destination = %message.destination, "message for a number we do not serve");
            return self
                .reply(refuse(id, CommandStatus::EsmeRinvdstadr, seq))
                .await;
        }
        let ctx = self.ctx.clone();
        let responses = self.responses.0.clone();
        let system_id = self.bound.system_id.clone();
        let started = Instant::now();
        self.tasks.spawn(tracing::Instrument::in_current_span(async move {
            let inbound = Inbound { channel: Channel::Sms, peer: system_id.clone(), from: message.source, text: message.text };
            let response = match ctx.core.handle(&inbound).await {
                Ok(None) => {
                    // Over a limit and already told: answer the PDU, send nothing.
                    let _ = responses.send(pdu::message_resp(id, seq, &message_id));
                    return;
                }
                Ok(Some(reply)) => {
                    let ttl = Duration::from_secs(ctx.service.code_ttl_secs);
                    // The response first (the biased loop writes it before any reply).
                    let _ = responses.send(pdu::message_resp(id, seq, &message_id));
                    tracing::info!(message_id = %message_id, reply = reply.kind.as_str(), "message answered");
                    enqueue(
                        &ctx,
                        &system_id,
                        Outgoing {
                            source: ctx.service.sender_id.clone(),
                            to: reply.to,
                            text: reply.text,
                            label: reply.kind.as_str(),
                            code_id: reply.code_id,
                            ussd: None,
                            deliver_by: started + ttl,
                        },
                    );
                    metrics::histogram!("otpgw_reply_seconds", "channel" => "sms").record(started.elapsed().as_secs_f64());
                    return;
                }
                Err(CoreError::Msisdn(e)) => {
                    tracing::info!(error = ?e, "source address is not a phone number");
                    refuse(id, CommandStatus::EsmeRinvsrcadr, seq)
                }
                Err(e) => {
                    // Temporary: the peer should retry, nothing was promised.
                    tracing::error!(error = %e, "message could not be handled");
                    refuse(id, CommandStatus::EsmeRxTAppn, seq)
                }
            };
            let _ = responses.send(response);
        }));
        Flow::Continue
    }

    /// One USSD step over SMPP: a PSSR indication opens a dialogue (the dialled string
    /// in short_message or destination_addr, as configured), a USSR confirm carries
    /// the next input, an abort ends it. Dialogues are keyed on the customer's number
    /// and the session number of `its_session_info`; the core walks the path.
    async fn on_ussd(
        &mut self,
        id: CommandId,
        seq: u32,
        message_id: String,
        message: pdu::Message,
    ) -> Flow {
        let key = (
            message.source.clone(),
            message.session_info.map_or(0, |s| s.0),
        );
        let op = message
            .ussd_op
            .unwrap_or(if message.text.trim_start().starts_with('*') {
                pdu::USSD_PSSR_INDICATION
            } else {
                pdu::USSD_USSR_CONFIRM
            });
        let step = match op {
            pdu::USSD_PSSR_INDICATION => {
                let dialled = match self.ctx.settings.ussd_dialled_in {
                    DialledIn::ShortMessage => &message.text,
                    DialledIn::DestinationAddr => &message.destination,
                };
                let (service_code, path) = match otpgw_parsers::ussd::parse_ussd(dialled) {
                    Ok(u) => (u.service_code, u.path),
                    // Not a USSD string: the core answers "unknown service".
                    Err(_) => (String::new(), Vec::new()),
                };
                let (service, path2) = (service_code.clone(), path.clone());
                self.ctx.ussd_dialogue(&key, |d| {
                    *d = Some(UssdDialogue {
                        service_code,
                        path,
                        touched: Instant::now(),
                    });
                });
                Some((service, path2))
            }
            pdu::USSD_USSR_CONFIRM => self.ctx.ussd_dialogue(&key, |d| {
                d.as_mut().map(|d| {
                    d.path.push(message.text.trim().to_owned());
                    (d.service_code.clone(), d.path.clone())
                })
            }),
            pdu::USSD_USER_ABORT => {
                self.ctx.ussd_dialogue(&key, |d| *d = None);
                tracing::info!("ussd dialogue aborted by the user");
                return self.reply(pdu::message_resp(id, seq, &message_id)).await;
            }
            other => {
                // Our own operations (USSR request, PSSR response, USSN) coming back:
                // acknowledge, nothing to answer.
                tracing::debug!(op = other, "ussd operation with nothing to answer");
                return self.reply(pdu::message_resp(id, seq, &message_id)).await;
            }
        };
        let ctx = self.ctx.clone();
        let responses = self.responses.0.clone();
        let system_id = self.bound.system_id.clone();
        let started = Instant::now();
        let ttl = Duration::from_secs(ctx.settings.ussd_session_timeout_secs);
        let source = if message.destination.is_empty() {
            ctx.service.ussd_code.clone()
        } else {
            message.destination.clone()
        };
        self.tasks.spawn(tracing::Instrument::in_current_span(async move {
            let result = match step {
                Some((service_code, path)) => ctx.core.ussd(&system_id, &message.source, &service_code, &path).await,
                None => ctx.core.normalize_msisdn(&message.source).map(|to| crate::core::UssdReply {
                    to,
                    text: ctx.core.ussd_expired(),
                    end: true,
                    code_id: None,
                }),
            };
            let response = match result {
                Ok(reply) => {
                    if reply.end {
                        ctx.ussd_dialogue(&key, |d| *d = None);
                    }
                    let _ = responses.send(pdu::message_resp(id, seq, &message_id));
                    tracing::info!(message_id = %message_id, end = reply.end, "ussd screen sent");
                    enqueue(
                        &ctx,
                        &system_id,
                        Outgoing {
                            source,
                            to: reply.to,
                            text: reply.text,
                            label: "ussd",
                            code_id: reply.code_id,
                            ussd: Some(pdu::UssdMeta { end: reply.end, session_info: message.session_info }),
                            deliver_by: started + ttl,
                        },
                    );
                    metrics::histogram!("otpgw_reply_seconds", "channel" => "ussd").record(started.elapsed().as_secs_f64());
                    return;
                }
                Err(CoreError::Msisdn(e)) => {
                    tracing::info!(error = ?e, "source address is not a phone number");
                    refuse(id, CommandStatus::EsmeRinvsrcadr, seq)
                }
                Err(e) => {
                    tracing::error!(error = %e, "ussd step could not be handled");
                    refuse(id, CommandStatus::EsmeRxTAppn, seq)
                }
            };
            let _ = responses.send(response);
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
            if let Err(e) = self.ctx.core.record_delivery(code_id, accepted).await {
                tracing::warn!(error = %e, "could not record delivery state");
            }
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
        while let Ok(cmd) = self.responses.1.try_recv() {
            if !send(&mut self.conn, cmd).await {
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
        if !send(
            &mut self.conn,
            Command::new(CommandStatus::EsmeRok, seq, Pdu::Unbind),
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
                        )
                        .await;
                        return;
                    }
                    // Crossed our unbind: refuse, so the peer knows to send it elsewhere.
                    id if id.is_operation() => {
                        send(
                            &mut self.conn,
                            refuse(id, CommandStatus::EsmeRinvbndsts, seq),
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
