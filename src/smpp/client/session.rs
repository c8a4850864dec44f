//! One bound session of one operator connection, serving until the link is lost
//! or the gateway stops.
//!
//! Out: the submitting session takes its routes' messages (`crate::replies`) and
//! sends their submit_sm segments within the window and the connection's TPS
//! (segments, not messages). `ESME_RTHROTTLED`/`ESME_RMSGQFUL` put the segment back
//! in order and pause the session; other errors are final for the message (its
//! unsent segments are dropped). On loss, messages not acknowledged go back to
//! their route for this or another connection; of a long message only the
//! segments not acknowledged, under its first concatenation reference.
//!
//! In: `deliver.rs`. Answers of the inbound pipeline come back here: the
//! deliver_sm_resp is written first, then the reply queued.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rusmpp::pdus::SubmitSm;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::connection::Connection;
use super::Shared;
use crate::replies::{Outgoing, Resume, Taker, Target};

use crate::smpp::inbound::{Answer, Handling, Origin};
use crate::smpp::link::{self, answer_invalid, count_in, ok, refuse, Conn, Frame, Keepalive, Tick};
use crate::smpp::pdu::{self, BindKind, SourceAddress, SubmitOptions};

/// How long a throttled connection waits before it sends again.
const THROTTLE_PAUSE: Duration = Duration::from_secs(1);

/// A message taken from its target, shared by its segments.
struct Message {
    target: Target,
    msg: Outgoing,
    /// Its concatenation reference, and how many segments it was cut into.
    reference: u8,
    total: usize,
}

/// A submit_sm waiting to be sent (again), with what it belongs to.
struct Part {
    message: Arc<Message>,
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

pub(super) struct Session {
    pub(super) framed: Conn,
    pub(super) shared: Arc<Shared>,
    pub(super) conn: Arc<Connection>,
    pub(super) kind: BindKind,
    pub(super) origin: Origin,
    /// Takes the messages of this connection's routes (the submitting session).
    taker: Option<Taker>,
    keepalive: Keepalive,
    next_order: u64,
    /// Parts to send, in order, before anything new is taken.
    ready: VecDeque<Part>,
    in_flight: HashMap<u32, InFlight>,
    /// No submit_sm before this (throttled by the SMSC, or our own pacing).
    paused_until: Option<Instant>,
    /// Message tasks, whose answers the session loop writes.
    pub(super) handling: Handling,
    /// Writes to the SMSC wait at most this: an SMSC that stops reading must not
    /// freeze the session.
    deadline: Duration,
}

impl Session {
    pub(super) fn new(
        framed: Conn,
        shared: Arc<Shared>,
        conn: Arc<Connection>,
        kind: BindKind,
        sends: bool,
    ) -> Self {
        let deadline = conn
            .settings
            .response_timeout(shared.smpp.response_timeout_secs);
        let taker = sends.then(|| {
            let seats: Vec<_> = shared
                .replies
                .routes()
                .seats(conn.index)
                .into_iter()
                .map(|(route, rank)| (Target::Route(route), rank, Some(conn.index)))
                .collect();
            shared.replies.taker(&seats)
        });
        Self {
            keepalive: Keepalive::new(
                1,
                Duration::from_secs(conn.settings.enquire_link_secs),
                deadline,
            ),
            origin: Origin::Operator {
                name: conn.settings.name.clone(),
                index: conn.index,
            },
            framed,
            shared,
            conn,
            kind,
            taker,
            next_order: 0,
            ready: VecDeque::new(),
            in_flight: HashMap::new(),
            paused_until: None,
            handling: Handling::new(),
            deadline,
        }
    }

    fn room(&self) -> bool {
        self.taker.is_some()
            && self.in_flight.len() < self.conn.settings.window
            && self.paused_until.is_none_or(|t| t <= Instant::now())
    }

    /// Serves until the link is lost or `shutdown`; returns why it ended.
    pub(super) async fn serve(&mut self, shutdown: &CancellationToken) -> String {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            // Bound after the shutdown began (see `connect::maintain`): send nothing,
            // unbind.
            if shutdown.is_cancelled() {
                self.finish().await;
                return "shut down".into();
            }
            // Every part the window, the pause and the TPS allow now, then one write.
            while self.room() {
                match self.send_next().await {
                    Err(()) => return "write failed".into(),
                    Ok(false) => break,
                    Ok(true) => {}
                }
            }
            if !link::flush(&mut self.framed, self.deadline).await {
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
                Some(answer) = self.handling.answered.recv() => {
                    if let Err(reason) = self.answer(answer).await {
                        return reason;
                    }
                }
                frame = self.framed.next() => match frame {
                    Some(Ok(Frame::Command(cmd))) => {
                        self.keepalive.heard();
                        if let Err(reason) = self.on_command(*cmd).await {
                            return reason;
                        }
                    }
                    Some(Ok(Frame::Invalid(bad))) => {
                        self.keepalive.heard();
                        if !answer_invalid(&mut self.framed, &bad, self.deadline).await {
                            return "undecodable PDU from the SMSC".into();
                        }
                    }
                    Some(Err(e)) => return format!("read failed: {e}"),
                    None => return "the SMSC closed the connection".into(),
                },
                _ = ready(self.taker.as_ref()), if idle => {}
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

    /// Writes a message's deliver_sm_resp, then queues the reply it announces: the
    /// SMSC hears that its message was handled before our answer to it leaves. The
    /// answers already waiting go out with it in one write.
    pub(super) async fn answer(&mut self, first: Answer) -> Result<(), String> {
        let written = crate::smpp::inbound::answer_batch(
            first,
            &mut self.handling,
            &mut self.framed,
            self.deadline,
            &self.shared.pipeline,
        )
        .await;
        if written {
            Ok(())
        } else {
            Err("write failed".into())
        }
    }

    /// Queues the next part if the window, the pause and the TPS allow it (the
    /// caller flushes); true when it took a part (sent, or dropped as expired or
    /// lapsed), so another may follow in the same write.
    async fn send_next(&mut self) -> Result<bool, ()> {
        if self.ready.is_empty() {
            let Some((target, msg)) = self.taker.as_ref().and_then(Taker::pull) else {
                return Ok(false);
            };
            self.prepare(target, msg).await;
        }
        let Some(part) = self.ready.front() else {
            return Ok(false);
        };
        if part.message.msg.deliver_by <= Instant::now() {
            if let Some(part) = self.ready.pop_front() {
                self.expired(&part).await;
            }
            return Ok(true);
        }
        let now_ms = self.shared.core().now_ms();
        if part.first && part.message.msg.send_before.is_some_and(|t| now_ms >= t) {
            // Our claim on it is running out: the outbox gives it to a node (maybe
            // this one again) with a fresh lease, so it is not sent twice.
            let order = part.order;
            self.ready.retain(|p| p.order != order);
            metrics::counter!("otpgw_outbox_lapsed_total").increment(1);
            tracing::info!("claimed message not sent within its lease: left to the outbox");
            return Ok(true);
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
                    return Ok(false);
                }
                // More segments than the TPS allows in a second: send it anyway.
                Err(_) => {}
            }
        }
        let Some(part) = self.ready.pop_front() else {
            return Ok(false);
        };
        let seq = self.keepalive.seq();
        let cmd = ok(seq, part.pdu.clone());
        self.in_flight.insert(
            seq,
            InFlight {
                part,
                sent_at: Instant::now(),
            },
        );
        self.conn.window_in_use.fetch_add(1, Ordering::Relaxed);
        if link::queue(&mut self.framed, cmd, self.deadline).await {
            Ok(true)
        } else {
            Err(())
        }
    }

    /// Turns a message taken from its target into its submit_sm parts.
    async fn prepare(&mut self, target: Target, mut msg: Outgoing) {
        let resume = msg.resume.take();
        let reference = resume.as_ref().map_or_else(rand::random, |r| r.reference);
        let s = &self.conn.settings;
        let source = s
            .source_addr
            .as_deref()
            .unwrap_or(&self.shared.service.sender_id);
        let options = SubmitOptions {
            source: SourceAddress {
                addr: if msg.source.is_empty() {
                    source
                } else {
                    &msg.source
                },
                ton: s.source_ton,
                npi: s.source_npi,
            },
            registered_delivery: s.registered_delivery && msg.code_id.is_some(),
            split: s.split,
            reference,
        };
        let parts = match pdu::submit_sm(&msg.to, &msg.text, msg.ussd, &options) {
            Ok(parts) => parts,
            Err(e) => {
                tracing::error!(error = %e, "message cannot be put in a submit_sm");
                if let Some(id) = msg.code_id {
                    let _ = self.shared.core().delivery.undelivered(id).await;
                }
                return;
            }
        };
        let order = self.next_order;
        self.next_order += 1;
        let total = parts.len();
        // The rest of a message cut the same way; cut otherwise (a connection that
        // sends one message_payload), it goes whole.
        let left = resume.filter(|r| r.total == total).map(|r| r.left);
        let message = Arc::new(Message {
            target,
            msg,
            reference,
            total,
        });
        for (i, mut pdu) in parts.into_iter().enumerate() {
            if left.as_ref().is_some_and(|left| !left.contains(&i)) {
                continue;
            }
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
            let _ = self.shared.core().delivery.undelivered(id).await;
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
            Some(Pdu::EnquireLink) => self.write(ok(seq, Pdu::EnquireLinkResp)).await,
            Some(Pdu::Unbind) => {
                self.write(ok(seq, Pdu::UnbindResp)).await?;
                Err("the SMSC unbound".into())
            }
            Some(pdu) => {
                if let Some(message_id) = pdu::submit_resp_id(pdu) {
                    self.on_submit_resp(seq, status, Some(message_id));
                    Ok(())
                } else if id == CommandId::EnquireLinkResp {
                    self.keepalive.answered(seq);
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
                self.on_submit_resp(seq, status, None);
                Ok(())
            }
            None if id == CommandId::EnquireLinkResp => {
                self.keepalive.answered(seq);
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub(super) async fn write(&mut self, cmd: Command) -> Result<(), String> {
        if link::send(&mut self.framed, cmd, self.deadline).await {
            Ok(())
        } else {
            Err("write failed".into())
        }
    }

    fn on_submit_resp(&mut self, seq: u32, status: CommandStatus, message_id: Option<String>) {
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
        let delivery = self.shared.core().delivery.clone();
        match outcome {
            "ok" => {
                if f.part.first {
                    self.conn.submitted.fetch_add(1, Ordering::Relaxed);
                }
                let code_id = f.part.message.msg.code_id.filter(|_| f.part.first);
                // An empty id names nothing a receipt could name back: the message is
                // submitted, and not tracked further (matching "" would find the
                // wrong code).
                let message_id = message_id.filter(|id| !id.trim().is_empty());
                if let (Some(code_id), None) = (code_id, &message_id) {
                    self.conn.untracked.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("otpgw_submits_untracked_total", "connection" => name.clone())
                        .increment(1);
                    self.handling
                        .tasks
                        .spawn(tracing::Instrument::in_current_span(async move {
                            if let Err(e) = delivery.answered(code_id, true).await {
                                tracing::warn!(error = %e, "could not record delivery state");
                            }
                        }));
                } else if let (Some(code_id), Some(message_id)) = (code_id, message_id) {
                    let conn = self.conn.clone();
                    let form = conn.settings.receipt_id.form();
                    conn.awaiting_receipt(code_id);
                    // Off the loop: a slow database must not stall the link.
                    self.handling
                        .tasks
                        .spawn(tracing::Instrument::in_current_span(async move {
                            if let Err(e) =
                                delivery.submitted(code_id, &name, &message_id, form).await
                            {
                                tracing::warn!(error = %e, "could not record delivery state");
                            }
                            for (id, state) in conn.take_held(&message_id) {
                                match delivery.receipt(&name, &id, state, form).await {
                                    Ok(Some(code_id)) => conn.receipt_came(code_id),
                                    Ok(None) => {}
                                    Err(e) => {
                                        tracing::warn!(error = %e, "could not record a receipt")
                                    }
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
                    self.handling.tasks.spawn(async move {
                        let _ = delivery.undelivered(code_id).await;
                    });
                }
            }
        }
    }

    async fn on_tick(&mut self) -> Result<(), String> {
        let oldest = self.in_flight.values().map(|f| f.sent_at).min();
        match self.keepalive.tick(oldest) {
            Tick::Dead => Err("no enquire_link_resp".into()),
            Tick::Late => Err("submit_sm without response".into()),
            Tick::Enquire(seq) => self.write(ok(seq, Pdu::EnquireLink)).await,
            Tick::Quiet => Ok(()),
        }
    }

    /// After the session: messages not acknowledged by the SMSC go back to their
    /// targets (at least once: one the SMSC took without answering may reach the
    /// customer twice, never a different code), then the tasks finish.
    pub(super) async fn end(&mut self) {
        self.conn
            .window_in_use
            .fetch_sub(self.in_flight.len(), Ordering::Relaxed);
        let mut parts: Vec<Part> = self.in_flight.drain().map(|(_, f)| f.part).collect();
        parts.extend(self.ready.drain(..));
        parts.sort_by_key(|p| (p.order, p.index));
        // What is left of each message: the parts the SMSC did not acknowledge.
        let mut left: HashMap<u64, Vec<usize>> = HashMap::new();
        for part in &parts {
            left.entry(part.order).or_default().push(part.index);
        }
        let mut back: Vec<(Target, Outgoing)> = Vec::new();
        for part in parts {
            let Some(left) = left.remove(&part.order) else {
                continue;
            };
            let (reference, total) = (part.message.reference, part.message.total);
            let (target, mut msg) = match Arc::try_unwrap(part.message) {
                Ok(m) => (m.target, m.msg),
                // Another part still holds it: a copy, never sent under a claim
                // that may have lapsed.
                Err(m) => (
                    m.target.clone(),
                    Outgoing {
                        send_before: None,
                        ..m.msg.clone()
                    },
                ),
            };
            if total > 1 {
                msg.resume = Some(Resume {
                    reference,
                    total,
                    left,
                });
            }
            back.push((target, msg));
        }
        if !back.is_empty() {
            tracing::info!(
                count = back.len(),
                "unacknowledged messages back to their routes"
            );
        }
        if let Some(taker) = self.taker.take() {
            let mut by_target: Vec<(Target, Vec<Outgoing>)> = Vec::new();
            for (target, msg) in back {
                match by_target.iter_mut().find(|(t, _)| *t == target) {
                    Some((_, msgs)) => msgs.push(msg),
                    None => by_target.push((target, vec![msg])),
                }
            }
            for (target, msgs) in by_target {
                taker.give_back(&target, msgs);
            }
        }
        self.handling.tasks.close();
        self.handling.tasks.wait().await;
    }

    /// On shutdown: answer the customers' messages being handled, then unbind.
    async fn finish(&mut self) {
        self.handling.settle().await;
        while let Ok(answer) = self.handling.answered.try_recv() {
            if self.answer(answer).await.is_err() {
                return;
            }
        }
        let seq = self.keepalive.seq();
        if self.write(ok(seq, Pdu::Unbind)).await.is_err() {
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
                        self.on_submit_resp(seq, status, id);
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

/// Waits for work for `taker`; never, without one.
async fn ready(taker: Option<&Taker>) {
    match taker {
        Some(taker) => taker.ready().await,
        None => std::future::pending().await,
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
