//! One session of one operator connection, for as long as the gateway runs:
//! connect (with a timeout), bind, serve, and after any loss back off (capped
//! exponential with jitter) and start again.
//!
//! Serving: submit_sm go out from the outbox within the window and the
//! connection's TPS (segments, not messages); `ESME_RTHROTTLED`/`ESME_RMSGQFUL` put
//! the message back at the head and pause the whole session, so order is kept;
//! other errors are final for the message. A deliver_sm is a receipt (recorded
//! against the code whose message it names) or a customer's message (answered
//! with deliver_sm_resp only after the core decided; the reply goes out as a
//! submit_sm, preferably on this connection). On loss, messages not acknowledged
//! go back to the outbox for this or another connection of their route.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rusmpp::pdus::SubmitSm;
use rusmpp::values::InterfaceVersion;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Connection, Phase, Queued, Shared};
use crate::config::{ConnectionBind, SmppVersion};
use crate::core::{route_target, CoreError, Dispatch, Inbound, ReplyPath};
use crate::smpp::codec::{Frame, SmppCodec};
use crate::smpp::pdu::{self, BindKind, SourceAddress, SubmitOptions};
use crate::smpp::session::{answer_invalid, count_in, refusal, refuse, send, serves, Conn};
use crate::smpp::ussd;
use otpgw_parsers::receipt::ReceiptStat;
use otpgw_rules::vocab::{Channel, Delivery};

/// The sessions a connection runs, and whether each one submits.
pub(super) fn binds(bind: ConnectionBind) -> Vec<(BindKind, bool)> {
    match bind {
        ConnectionBind::Transceiver => vec![(BindKind::Transceiver, true)],
        ConnectionBind::TransmitterReceiver => {
            vec![(BindKind::Transmitter, true), (BindKind::Receiver, false)]
        }
    }
}

/// How long a throttled connection waits before it sends again.
const THROTTLE_PAUSE: Duration = Duration::from_secs(1);

/// Keeps one session of `conn` bound until `shutdown`.
pub(super) async fn maintain(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    kind: BindKind,
    sends: bool,
    shutdown: CancellationToken,
) {
    let mut failures: u32 = 0;
    loop {
        conn.set_phase(kind.as_str(), Phase::Connecting, None, sends);
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = connect_and_bind(&shared, &conn, kind) => r,
        };
        match attempt {
            Ok(framed) => {
                failures = 0;
                tracing::info!("bound to the operator's SMSC");
                conn.set_phase(kind.as_str(), Phase::Bound, None, sends);
                shared.work.notify_waiters();
                let mut session = Session::new(framed, shared.clone(), conn.clone(), kind, sends);
                let ended = session.serve(&shutdown).await;
                conn.set_phase(kind.as_str(), Phase::Down, Some(ended.clone()), sends);
                session.give_back();
                session.tasks.close();
                session.tasks.wait().await;
                if shutdown.is_cancelled() {
                    break;
                }
                tracing::warn!(reason = %ended, "session lost: reconnecting");
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %e, attempt = failures, "could not bind");
                conn.set_phase(kind.as_str(), Phase::BackingOff, Some(e), sends);
            }
        }
        metrics::counter!("otpgw_smpp_connection_retries_total", "connection" => conn.settings.name.clone()).increment(1);
        let delay = backoff(failures, conn.settings.max_backoff_secs);
        conn.set_phase(kind.as_str(), Phase::BackingOff, None, sends);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    conn.set_phase(kind.as_str(), Phase::Down, Some("shut down".into()), sends);
}

/// Capped exponential back-off with full jitter: 0.5–1 × min(cap, 2^n × 250 ms).
/// The first retry after a session that was up comes quickly.
fn backoff(failures: u32, cap_secs: u64) -> Duration {
    let cap = Duration::from_secs(cap_secs);
    let base = Duration::from_millis(250)
        .saturating_mul(1u32 << failures.min(16))
        .min(cap);
    base.mul_f64(0.5 + rand::random::<f64>() * 0.5)
}

async fn connect_and_bind(
    shared: &Shared,
    conn: &Connection,
    kind: BindKind,
) -> Result<Conn, String> {
    let s = &conn.settings;
    let connect_timeout = Duration::from_secs(s.connect_timeout_secs);
    let stream = match timeout(
        connect_timeout,
        TcpStream::connect((s.host.as_str(), s.port)),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Err(_) => {
            return Err(format!(
                "connect: no answer within {}s",
                s.connect_timeout_secs
            ))
        }
    };
    let _ = stream.set_nodelay(true);
    let deadline = Duration::from_secs(shared.smpp.response_timeout_secs);
    let mut framed = Framed::with_capacity(
        stream,
        SmppCodec::new(shared.smpp.max_pdu_len),
        crate::smpp::session::READ_BUFFER,
    );
    let version = match s.version {
        SmppVersion::V34 => InterfaceVersion::Smpp3_4,
        SmppVersion::V50 => InterfaceVersion::Smpp5_0,
    };
    let bind = pdu::bind_request(&pdu::BindRequest {
        kind,
        system_id: &s.system_id,
        password: s.password.expose(),
        system_type: &s.system_type,
        version,
    })
    .map_err(|e| format!("bind: {e}"))?;
    if !send(
        &mut framed,
        Command::new(CommandStatus::EsmeRok, 1, bind),
        deadline,
    )
    .await
    {
        return Err("bind: write failed".into());
    }
    let wait = Duration::from_secs(shared.smpp.response_timeout_secs);
    let answer = timeout(wait, async {
        while let Some(frame) = framed.next().await {
            let cmd = match frame {
                Ok(Frame::Command(cmd)) => *cmd,
                Ok(Frame::Invalid(bad)) => {
                    if !answer_invalid(&mut framed, &bad, deadline).await {
                        return Err("bind: the SMSC's framing is broken".to_owned());
                    }
                    continue;
                }
                Err(e) => return Err(format!("bind: read failed: {e}")),
            };
            count_in(&cmd);
            let id = cmd.id();
            if matches!(
                id,
                CommandId::BindTransceiverResp
                    | CommandId::BindTransmitterResp
                    | CommandId::BindReceiverResp
            ) || (id == CommandId::GenericNack && cmd.sequence_number() == 1)
            {
                return Ok(cmd.status());
            }
            if id == CommandId::EnquireLink {
                let seq = cmd.sequence_number();
                send(
                    &mut framed,
                    Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLinkResp),
                    deadline,
                )
                .await;
            }
        }
        Err("bind: the SMSC closed the connection".to_owned())
    })
    .await
    .map_err(|_| format!("bind: no response within {}s", wait.as_secs()))??;
    if answer != CommandStatus::EsmeRok {
        return Err(format!("bind rejected: {answer:?}"));
    }
    Ok(framed)
}

/// A submit_sm waiting to be sent (again), with what it belongs to.
struct Part {
    message: Arc<Queued>,
    pdu: SubmitSm,
    /// The first segment: its message id is the one recorded for the code.
    first: bool,
    /// Segments it counts for against the TPS.
    segments: u32,
    /// Order of the message and of the segment in it, so parts put back keep their place.
    order: u64,
    index: usize,
}

struct InFlight {
    part: Part,
    sent_at: Instant,
}

struct Session {
    framed: Conn,
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    kind: BindKind,
    sends: bool,
    next_seq: u32,
    next_order: u64,
    /// Parts to send, in order, before anything new is taken from the outbox.
    ready: VecDeque<Part>,
    in_flight: HashMap<u32, InFlight>,
    /// No submit_sm before this (throttled by the SMSC, or our own pacing).
    paused_until: Option<Instant>,
    enquire: Option<(u32, Instant)>,
    last_heard: Instant,
    responses: (
        mpsc::UnboundedSender<Command>,
        mpsc::UnboundedReceiver<Command>,
    ),
    tasks: TaskTracker,
    /// Writes to the SMSC wait at most this: an SMSC that stops reading must not
    /// freeze the session.
    deadline: Duration,
}

impl Session {
    fn new(
        framed: Conn,
        shared: Arc<Shared>,
        conn: Arc<Connection>,
        kind: BindKind,
        sends: bool,
    ) -> Self {
        let deadline = Duration::from_secs(shared.smpp.response_timeout_secs);
        Self {
            framed,
            shared,
            conn,
            kind,
            sends,
            next_seq: 1,
            next_order: 0,
            ready: VecDeque::new(),
            in_flight: HashMap::new(),
            paused_until: None,
            enquire: None,
            last_heard: Instant::now(),
            responses: mpsc::unbounded_channel(),
            tasks: TaskTracker::new(),
            deadline,
        }
    }

    fn seq(&mut self) -> u32 {
        self.next_seq = if self.next_seq >= 0x7FFF_FFFF {
            1
        } else {
            self.next_seq + 1
        };
        self.next_seq
    }

    fn room(&self) -> bool {
        self.sends
            && self.in_flight.len() < self.conn.settings.window
            && self.paused_until.is_none_or(|t| t <= Instant::now())
    }

    /// Serves until the link is lost or `shutdown`; returns why it ended.
    async fn serve(&mut self, shutdown: &CancellationToken) -> String {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            // Registered before we look at the outbox, so no wake-up is missed.
            let shared = self.shared.clone();
            let work = shared.work.notified();
            tokio::pin!(work);
            work.as_mut().enable();
            if self.room() && self.send_next().await.is_err() {
                return "write failed".into();
            }
            let wake_at = self.paused_until.filter(|t| *t > Instant::now());
            let idle = self.room() && self.ready.is_empty();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    self.finish().await;
                    return "shut down".into();
                }
                Some(cmd) = self.responses.1.recv() => {
                    if !send(&mut self.framed, cmd, self.deadline).await {
                        return "write failed".into();
                    }
                }
                frame = self.framed.next() => match frame {
                    Some(Ok(Frame::Command(cmd))) => {
                        self.last_heard = Instant::now();
                        if let Err(reason) = self.on_command(*cmd).await {
                            return reason;
                        }
                    }
                    Some(Ok(Frame::Invalid(bad))) => {
                        self.last_heard = Instant::now();
                        if !answer_invalid(&mut self.framed, &bad, self.deadline).await {
                            return "undecodable PDU from the SMSC".into();
                        }
                    }
                    Some(Err(e)) => return format!("read failed: {e}"),
                    None => return "the SMSC closed the connection".into(),
                },
                _ = &mut work, if idle => {}
                _ = tokio::time::sleep_until(wake_at.unwrap_or_else(Instant::now)), if wake_at.is_some() => {
                    self.paused_until = None;
                }
                _ = tick.tick() => {
                    if let Err(reason) = self.on_tick().await {
                        return reason;
                    }
                }
            }
        }
    }

    /// Sends the next part if the window, the pause and the TPS allow it.
    async fn send_next(&mut self) -> Result<(), ()> {
        if self.ready.is_empty() {
            let Some(queued) = self.shared.pull(&self.conn) else {
                return Ok(());
            };
            self.prepare(queued).await;
        }
        let Some(part) = self.ready.front() else {
            return Ok(());
        };
        if part.message.msg.deliver_by <= Instant::now() {
            if let Some(part) = self.ready.pop_front() {
                self.expired(&part).await;
            }
            return Ok(());
        }
        if part.first
            && part
                .message
                .msg
                .send_before
                .is_some_and(|t| self.shared.core.now_ms() >= t)
        {
            // Our claim on it is running out: the outbox gives it to a node (maybe
            // this one again) with a fresh lease, so it is not sent twice.
            let order = part.order;
            self.ready.retain(|p| p.order != order);
            metrics::counter!("otpgw_outbox_lapsed_total").increment(1);
            tracing::info!("claimed message not sent within its lease: left to the outbox");
            return Ok(());
        }
        if let Some(pacing) = &self.conn.pacing {
            let n = std::num::NonZeroU32::new(part.segments).unwrap_or(std::num::NonZeroU32::MIN);
            match pacing.check_n(n) {
                Ok(Ok(())) => {}
                Ok(Err(not_until)) => {
                    let wait = not_until.wait_time_from(governor::clock::Clock::now(
                        &governor::clock::DefaultClock::default(),
                    ));
                    self.paused_until = Some(Instant::now() + wait);
                    return Ok(());
                }
                // More segments than the TPS allows in a second: send it anyway.
                Err(_) => {}
            }
        }
        let Some(part) = self.ready.pop_front() else {
            return Ok(());
        };
        let seq = self.seq();
        let cmd = Command::new(CommandStatus::EsmeRok, seq, part.pdu.clone());
        self.in_flight.insert(
            seq,
            InFlight {
                part,
                sent_at: Instant::now(),
            },
        );
        self.conn.window_in_use.fetch_add(1, Ordering::Relaxed);
        if send(&mut self.framed, cmd, self.deadline).await {
            Ok(())
        } else {
            Err(())
        }
    }

    /// Turns a queued message into its submit_sm parts.
    async fn prepare(&mut self, queued: Queued) {
        let s = &self.conn.settings;
        let source = s
            .source_addr
            .as_deref()
            .unwrap_or(&self.shared.service.sender_id);
        let options = SubmitOptions {
            source: SourceAddress {
                addr: if queued.msg.source.is_empty() {
                    source
                } else {
                    &queued.msg.source
                },
                ton: s.source_ton,
                npi: s.source_npi,
            },
            registered_delivery: s.registered_delivery && queued.msg.code_id.is_some(),
            split: s.split,
            reference: rand::random(),
        };
        let parts =
            match pdu::submit_sm(&queued.msg.to, &queued.msg.text, queued.msg.ussd, &options) {
                Ok(parts) => parts,
                Err(e) => {
                    tracing::error!(error = %e, "message cannot be put in a submit_sm");
                    if let Some(id) = queued.msg.code_id {
                        let _ = self.shared.core.delivery.undelivered(id).await;
                    }
                    return;
                }
            };
        let order = self.next_order;
        self.next_order += 1;
        let message = Arc::new(queued);
        for (i, mut pdu) in parts.into_iter().enumerate() {
            if i > 0 {
                // One receipt per message: the first segment's id is the one recorded.
                pdu.registered_delivery = rusmpp::values::RegisteredDelivery::from(0u8);
            }
            let segments = segments(&pdu);
            self.ready.push_back(Part {
                message: message.clone(),
                pdu,
                first: i == 0,
                segments,
                order,
                index: i,
            });
        }
    }

    async fn expired(&self, part: &Part) {
        metrics::counter!("otpgw_replies_expired_total").increment(1);
        if let (true, Some(id)) = (part.first, part.message.msg.code_id) {
            tracing::warn!(code_id = id, "code expired before it could be sent");
            let _ = self.shared.core.delivery.undelivered(id).await;
        }
    }

    async fn on_command(&mut self, cmd: Command) -> Result<(), String> {
        count_in(&cmd);
        let (id, seq, status) = (cmd.id(), cmd.sequence_number(), cmd.status());
        match cmd.pdu() {
            Some(Pdu::DeliverSm(_)) if !self.kind.can_receive() => {
                self.write(refuse(id, CommandStatus::EsmeRinvbndsts, seq))
                    .await
            }
            Some(pdu @ Pdu::DeliverSm(_)) => match pdu::message(pdu) {
                Some(message) => self.on_deliver(seq, message).await,
                None => {
                    self.write(refuse(id, CommandStatus::EsmeRsyserr, seq))
                        .await
                }
            },
            Some(Pdu::EnquireLink) => {
                self.write(Command::new(
                    CommandStatus::EsmeRok,
                    seq,
                    Pdu::EnquireLinkResp,
                ))
                .await
            }
            Some(Pdu::Unbind) => {
                self.write(Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp))
                    .await?;
                Err("the SMSC unbound".into())
            }
            Some(pdu) => {
                if let Some(message_id) = pdu::submit_resp_id(pdu) {
                    self.on_submit_resp(seq, status, Some(message_id)).await;
                    Ok(())
                } else if id == CommandId::EnquireLinkResp {
                    if self.enquire.is_some_and(|(s, _)| s == seq) {
                        self.enquire = None;
                    }
                    Ok(())
                } else if id.is_operation() {
                    self.write(refuse(id, CommandStatus::EsmeRinvcmdid, seq))
                        .await
                } else {
                    Ok(())
                }
            }
            // A response with no body: an error submit_sm_resp, or a generic_nack.
            None if self.in_flight.contains_key(&seq) => {
                self.on_submit_resp(seq, status, None).await;
                Ok(())
            }
            None if id == CommandId::EnquireLinkResp => {
                self.enquire = None;
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn write(&mut self, cmd: Command) -> Result<(), String> {
        if send(&mut self.framed, cmd, self.deadline).await {
            Ok(())
        } else {
            Err("write failed".into())
        }
    }

    async fn on_submit_resp(
        &mut self,
        seq: u32,
        status: CommandStatus,
        message_id: Option<String>,
    ) {
        let Some(f) = self.in_flight.remove(&seq) else {
            return;
        };
        self.conn.window_in_use.fetch_sub(1, Ordering::Relaxed);
        let name = self.conn.settings.name.clone();
        let outcome = match status {
            CommandStatus::EsmeRok => "ok",
            CommandStatus::EsmeRthrottled | CommandStatus::EsmeRmsgqful => "throttled",
            _ => "failed",
        };
        metrics::counter!("otpgw_smpp_submits_total", "connection" => name.clone(), "result" => outcome)
            .increment(1);
        metrics::histogram!("otpgw_submit_sm_seconds").record(f.sent_at.elapsed().as_secs_f64());
        match outcome {
            "ok" => {
                if f.part.first {
                    self.conn.submitted.fetch_add(1, Ordering::Relaxed);
                }
                let code_id = f.part.message.msg.code_id.filter(|_| f.part.first);
                if let (Some(code_id), Some(message_id)) = (code_id, message_id) {
                    let core = self.shared.core.clone();
                    let conn = self.conn.clone();
                    // Off the loop: a slow database must not stall the link.
                    self.tasks
                        .spawn(tracing::Instrument::in_current_span(async move {
                            if let Err(e) =
                                core.delivery.submitted(code_id, &name, &message_id).await
                            {
                                tracing::warn!(error = %e, "could not record delivery state");
                            }
                            for (id, delivery) in conn.take_held(&message_id) {
                                if let Err(e) = core.delivery.receipt(&name, &id, delivery).await {
                                    tracing::warn!(error = %e, "could not record a receipt");
                                }
                            }
                        }));
                }
            }
            "throttled" => {
                self.conn.throttled.fetch_add(1, Ordering::Relaxed);
                tracing::info!(status = ?status, "SMSC throttled us: pausing the connection");
                self.paused_until = Some(Instant::now() + THROTTLE_PAUSE);
                // Back at its place in the order, ahead of everything newer.
                let at = self
                    .ready
                    .iter()
                    .position(|p| (p.order, p.index) > (f.part.order, f.part.index))
                    .unwrap_or(self.ready.len());
                self.ready.insert(at, f.part);
            }
            _ => {
                self.conn.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(status = ?status, kind = f.part.message.msg.label, "SMSC refused a message");
                // The message is lost: its other segments, not yet sent, would reach
                // the customer as a fragment.
                self.ready.retain(|p| p.order != f.part.order);
                if let Some(code_id) = f.part.message.msg.code_id {
                    let core = self.shared.core.clone();
                    self.tasks.spawn(async move {
                        let _ = core.delivery.undelivered(code_id).await;
                    });
                }
            }
        }
    }

    /// A deliver_sm: a receipt for one of our messages, or a customer's message.
    async fn on_deliver(&mut self, seq: u32, message: pdu::Message) -> Result<(), String> {
        let ack = pdu::message_resp(CommandId::DeliverSm, seq, "");
        if message.receipt {
            self.conn.receipts.fetch_add(1, Ordering::Relaxed);
            let delivery = match message.receipt_info.as_ref().and_then(|r| r.stat) {
                Some(ReceiptStat::Delivered) => Some(Delivery::Delivered),
                Some(ReceiptStat::Expired) => Some(Delivery::Expired),
                Some(ReceiptStat::Undelivered) => Some(Delivery::Undelivered),
                Some(ReceiptStat::Pending) | None => None,
            };
            if let (Some(info), Some(delivery)) = (message.receipt_info, delivery) {
                let core = self.shared.core.clone();
                let conn = self.conn.clone();
                self.tasks
                    .spawn(tracing::Instrument::in_current_span(async move {
                        match core
                            .delivery
                            .receipt(conn.name(), &info.message_id, delivery)
                            .await
                        {
                            Ok(Some(_)) => {}
                            // Maybe ahead of its submit_sm_resp: keep it for a while.
                            // Then look once more, in case the response was recorded
                            // between our look-up and the hold (applying it twice
                            // changes nothing).
                            Ok(None) => {
                                conn.hold_receipt(info.message_id.clone(), delivery);
                                if let Ok(Some(_)) = core
                                    .delivery
                                    .receipt(conn.name(), &info.message_id, delivery)
                                    .await
                                {
                                    conn.take_held(&info.message_id);
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "could not record a receipt"),
                        }
                    }));
            }
            return self.write(ack).await;
        }
        self.conn.received.fetch_add(1, Ordering::Relaxed);
        if message.is_ussd() {
            return self.on_ussd(seq, message, ack).await;
        }
        if !serves(&self.shared.service.short_codes, &message.destination) {
            tracing::info!("message for a number we do not serve");
            return self
                .write(refuse(
                    CommandId::DeliverSm,
                    CommandStatus::EsmeRinvdstadr,
                    seq,
                ))
                .await;
        }
        if let Err(refused) = self.shared.core.admission.peer(&self.conn.settings.name) {
            tracing::debug!(rule = refused.rule, "throttled");
            return self
                .write(refuse(
                    CommandId::DeliverSm,
                    CommandStatus::EsmeRthrottled,
                    seq,
                ))
                .await;
        }
        let shared = self.shared.clone();
        let responses = self.responses.0.clone();
        let conn = self.conn.clone();
        let started = Instant::now();
        self.tasks
            .spawn(tracing::Instrument::in_current_span(async move {
                // The reply's route, for the outbox (several nodes): any node with
                // a bound connection of it may send the reply.
                let path = match shared
                    .core
                    .normalize_msisdn(&message.source)
                    .ok()
                    .and_then(|m| shared.route_for(&m))
                {
                    Some(route) => ReplyPath::Shared {
                        held_here: conn.can_send() || shared.holds(&route),
                        target: route_target(&route),
                    },
                    None => ReplyPath::Local,
                };
                let inbound = Inbound {
                    channel: Channel::Sms,
                    peer: format!("smsc:{}", conn.name()),
                    from: message.source,
                    text: message.text,
                    path,
                };
                // The same deadline as the listener's: past it the SMSC gets
                // ESME_RX_T_APPN and redelivers; nothing was promised.
                let deadline = Duration::from_secs(shared.smpp.message_timeout_secs);
                let handled = match timeout(deadline, shared.core.issue.sms(&inbound)).await {
                    Ok(result) => result,
                    Err(_) => {
                        metrics::counter!("otpgw_message_timeouts_total").increment(1);
                        Err(CoreError::Timeout)
                    }
                };
                let response = match handled {
                    Ok(None) => ack,
                    Ok(Some(reply)) => {
                        let ttl = Duration::from_secs(shared.service.code_ttl_secs);
                        // The code is stored: now the SMSC may consider the message handled.
                        let _ = responses.send(ack);
                        let send_before = match reply.dispatch {
                            Dispatch::Direct => None,
                            Dispatch::Claimed { send_before } => Some(send_before),
                            // In the outbox, for a node with a connection of its route.
                            Dispatch::Elsewhere => return,
                        };
                        let route = shared.route_for(&reply.to).unwrap_or_default();
                        let queued = Queued {
                            route,
                            msg: crate::smpp::Outgoing {
                                source: String::new(),
                                to: reply.to,
                                text: reply.text,
                                label: reply.kind.as_str(),
                                code_id: reply.code_id,
                                ussd: None,
                                deliver_by: started + ttl,
                                send_before,
                            },
                        };
                        if !shared.enqueue(queued, Some(conn.index)) && send_before.is_none() {
                            tracing::error!("outbox full: reply dropped");
                            if let Some(id) = reply.code_id {
                                let _ = shared.core.delivery.undelivered(id).await;
                            }
                        }
                        metrics::histogram!("otpgw_reply_seconds", "channel" => "sms")
                            .record(started.elapsed().as_secs_f64());
                        return;
                    }
                    Err(e) => refusal(CommandId::DeliverSm, seq, &e, "message"),
                };
                let _ = responses.send(response);
            }));
        Ok(())
    }

    /// A USSD step from the operator's USSD gateway, as on the listener
    /// (`smpp::ussd`); the screen goes back as a submit_sm with the USSD TLVs,
    /// preferably on this connection.
    async fn on_ussd(
        &mut self,
        seq: u32,
        message: pdu::Message,
        ack: Command,
    ) -> Result<(), String> {
        let Some(step) = ussd::step(&self.shared.ussd, &self.shared.smpp, &message) else {
            return self.write(ack).await;
        };
        let shared = self.shared.clone();
        let responses = self.responses.0.clone();
        let conn = self.conn.clone();
        let started = Instant::now();
        self.tasks
            .spawn(tracing::Instrument::in_current_span(async move {
                let peer = format!("smsc:{}", conn.name());
                let screen = ussd::answer(
                    &shared.core,
                    &shared.ussd,
                    &shared.smpp,
                    &peer,
                    &message,
                    step,
                )
                .await;
                let response = match screen {
                    Ok(screen) => {
                        let _ = responses.send(ack);
                        let ttl = Duration::from_secs(shared.smpp.ussd_session_timeout_secs);
                        let route = shared.route_for(&screen.reply.to).unwrap_or_default();
                        let queued = Queued {
                            route,
                            msg: crate::smpp::Outgoing {
                                source: screen.source,
                                to: screen.reply.to,
                                text: screen.reply.text,
                                label: "ussd",
                                code_id: screen.reply.code_id,
                                ussd: Some(screen.meta),
                                deliver_by: started + ttl,
                                send_before: None,
                            },
                        };
                        if !shared.enqueue(queued, Some(conn.index)) {
                            tracing::error!("outbox full: ussd screen dropped");
                        }
                        metrics::histogram!("otpgw_reply_seconds", "channel" => "ussd")
                            .record(started.elapsed().as_secs_f64());
                        return;
                    }
                    Err(e) => refusal(CommandId::DeliverSm, seq, &e, "ussd step"),
                };
                let _ = responses.send(response);
            }));
        Ok(())
    }

    async fn on_tick(&mut self) -> Result<(), String> {
        let wait = Duration::from_secs(self.shared.smpp.response_timeout_secs);
        let now = Instant::now();
        if self
            .enquire
            .is_some_and(|(_, at)| now.duration_since(at) > wait)
        {
            return Err("no enquire_link_resp".into());
        }
        if self
            .in_flight
            .values()
            .any(|f| now.duration_since(f.sent_at) > wait)
        {
            return Err("submit_sm without response".into());
        }
        let idle = Duration::from_secs(self.conn.settings.enquire_link_secs);
        if self.enquire.is_none() && now.duration_since(self.last_heard) >= idle {
            let seq = self.seq();
            self.enquire = Some((seq, now));
            self.write(Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLink))
                .await?;
        }
        Ok(())
    }

    /// Messages not acknowledged by the SMSC go back to the outbox (at least once:
    /// one the SMSC took without answering may reach the customer twice, never a
    /// different code).
    fn give_back(&mut self) {
        self.conn
            .window_in_use
            .fetch_sub(self.in_flight.len(), Ordering::Relaxed);
        let mut parts: Vec<Part> = self.in_flight.drain().map(|(_, f)| f.part).collect();
        parts.extend(self.ready.drain(..));
        parts.sort_by_key(|p| (p.order, p.index));
        let mut messages = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for part in parts {
            if seen.insert(part.order) {
                match Arc::try_unwrap(part.message) {
                    Ok(queued) => messages.push(queued),
                    Err(m) => {
                        // Another part still holds it: rebuild from the shared copy.
                        messages.push(Queued {
                            route: m.route.clone(),
                            msg: crate::smpp::Outgoing {
                                source: m.msg.source.clone(),
                                to: m.msg.to.clone(),
                                text: m.msg.text.clone(),
                                label: m.msg.label,
                                code_id: m.msg.code_id,
                                ussd: m.msg.ussd,
                                deliver_by: m.msg.deliver_by,
                                send_before: None,
                            },
                        });
                    }
                }
            }
        }
        if !messages.is_empty() {
            tracing::info!(
                count = messages.len(),
                "unacknowledged messages back to the outbox"
            );
        }
        self.shared.requeue_front(messages);
    }

    /// On shutdown: answer the customers' messages being handled, then unbind.
    async fn finish(&mut self) {
        self.tasks.close();
        if timeout(Duration::from_secs(5), self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("messages still being handled at shutdown");
        }
        while let Ok(cmd) = self.responses.1.try_recv() {
            if !send(&mut self.framed, cmd, self.deadline).await {
                return;
            }
        }
        let seq = self.seq();
        if !send(
            &mut self.framed,
            Command::new(CommandStatus::EsmeRok, seq, Pdu::Unbind),
            self.deadline,
        )
        .await
        {
            return;
        }
        let wait = async {
            while let Some(Ok(frame)) = self.framed.next().await {
                let Frame::Command(cmd) = frame else { continue };
                match cmd.id() {
                    CommandId::UnbindResp => return,
                    CommandId::SubmitSmResp => {
                        let (seq, status) = (cmd.sequence_number(), cmd.status());
                        let id = cmd.pdu().and_then(pdu::submit_resp_id);
                        self.on_submit_resp(seq, status, id).await;
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
        let _ = self.framed.close().await;
    }
}

/// How many SMS segments a submit_sm makes, for the TPS: one, or for
/// `message_payload` as many as the SMSC will cut it into.
fn segments(pdu: &SubmitSm) -> u32 {
    let payload = pdu.tlvs().iter().find_map(|t| match t.value() {
        Some(rusmpp::tlvs::TlvValue::MessagePayload(p)) => Some(p.value.as_ref().len()),
        _ => None,
    });
    match payload {
        Some(len) => u32::try_from(len.div_ceil(134)).unwrap_or(u32::MAX).max(1),
        None => 1,
    }
}
