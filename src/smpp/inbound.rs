//! The inbound pipeline, the same for both directions: a customer's message (a
//! listener peer's submit_sm or deliver_sm, an operator SMSC's deliver_sm) or USSD
//! step goes through admission and the short-code check, then to the core in a task
//! of its own so that a slow database never stalls the link. The task hands back an
//! [`Answer`]: the PDU's response, and the reply it announces. The session writes
//! the response first and only then queues the reply (`crate::replies`), so a peer
//! never sees a reply before the response to the message that caused it.
//!
//! What differs by direction is the [`Origin`]: where the reply waits (the peer's
//! system_id, or the route serving the customer's number, preferring the connection
//! the message came in on), the response's message id, and the peer's name in
//! records and limits.

use std::sync::Arc;
use std::time::Duration;

use rusmpp::{Command, CommandId, CommandStatus};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_util::task::TaskTracker;

use super::link::within_deadline;
use super::link::{refusal, refuse, serves};
use super::{pdu, ussd};
use crate::config::{ServiceSettings, SmppSettings};
use crate::core::{Core, Dispatch, Inbound, ReplyPath};
use crate::replies::{Outgoing, Replies, Target};
use otpgw_rules::vocab::Channel;

/// Where a message came in.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// A peer bound to our listener.
    Peer { system_id: String },
    /// One of our operator connections (its configured name and index).
    Operator { name: String, index: usize },
}

impl Origin {
    /// The name limits count it under.
    fn limiter_key(&self) -> &str {
        match self {
            Origin::Peer { system_id } => system_id,
            Origin::Operator { name, .. } => name,
        }
    }

    /// The peer as codes record it.
    fn peer(&self) -> String {
        match self {
            Origin::Peer { system_id } => system_id.clone(),
            Origin::Operator { name, .. } => format!("smsc:{name}"),
        }
    }

    /// The connection a reply prefers (client mode).
    fn lane(&self) -> Option<usize> {
        match self {
            Origin::Peer { .. } => None,
            Origin::Operator { index, .. } => Some(*index),
        }
    }
}

/// A message task's result: the PDU's response, and the reply it announces.
pub(crate) struct Answer {
    pub response: Command,
    pub reply: Option<Queued>,
}

/// Answers written in one batch at most: the rest wait for the next loop turn.
const ANSWER_BATCH: usize = 64;

/// Writes `first`'s response and those of the answers already waiting in one
/// write, then queues the replies they announce: every response is out before
/// any of its replies can be delivered, on this link or a sibling. The replies
/// are queued even if the write failed (their codes are stored; a sibling
/// session can still bring them). False when the connection must close.
pub(crate) async fn answer_batch(
    first: Answer,
    handling: &mut Handling,
    conn: &mut super::link::Conn,
    deadline: Duration,
    pipeline: &Pipeline,
) -> bool {
    let mut written = true;
    let mut replies = Vec::new();
    let mut next = Some(first);
    let mut n = 0;
    while let Some(answer) = next.take() {
        written = written && super::link::queue(conn, answer.response, deadline).await;
        replies.extend(answer.reply);
        n += 1;
        if n < ANSWER_BATCH {
            next = handling.answered.try_recv().ok();
        }
    }
    written = written && super::link::flush(conn, deadline).await;
    for reply in replies {
        pipeline.queue(reply);
    }
    written
}

/// A reply to queue once the response is written.
pub(crate) struct Queued {
    pub target: Target,
    pub msg: Outgoing,
    pub prefer: Option<usize>,
}

/// One session's message tasks, and the channel their answers come back on.
pub(crate) struct Handling {
    pub tasks: TaskTracker,
    answers: mpsc::UnboundedSender<Answer>,
    pub answered: mpsc::UnboundedReceiver<Answer>,
}

impl Handling {
    pub(crate) fn new() -> Self {
        let (answers, answered) = mpsc::unbounded_channel();
        Self {
            tasks: TaskTracker::new(),
            answers,
            answered,
        }
    }

    /// At shutdown: lets the messages being handled finish (at most 5 s), so that
    /// their answers can still be written.
    pub(crate) async fn settle(&self) {
        self.tasks.close();
        if timeout(Duration::from_secs(5), self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("messages still being handled at shutdown");
        }
    }
}

impl From<Command> for Answer {
    fn from(response: Command) -> Self {
        Self {
            response,
            reply: None,
        }
    }
}

/// The pipeline of one transport (the listener, or client mode), with its USSD
/// dialogues. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Pipeline {
    inner: Arc<Inner>,
}

struct Inner {
    core: Core,
    replies: Replies,
    service: ServiceSettings,
    smpp: SmppSettings,
    dialogues: ussd::Dialogues,
}

impl Pipeline {
    pub(crate) fn new(
        core: Core,
        replies: Replies,
        service: ServiceSettings,
        smpp: SmppSettings,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                dialogues: ussd::Dialogues::new(&smpp),
                core,
                replies,
                service,
                smpp,
            }),
        }
    }

    pub(crate) fn core(&self) -> &Core {
        &self.inner.core
    }

    /// Forgets idle USSD dialogues.
    pub(crate) fn sweep(&self) {
        self.inner.dialogues.sweep();
    }

    /// A customer's message or USSD step (not a receipt). Answers at once when it
    /// can (`Some`: a refusal, an acknowledged abort); otherwise the answer comes on
    /// `answers` from a task in `tasks`.
    pub(crate) fn take(
        &self,
        origin: &Origin,
        id: CommandId,
        seq: u32,
        message: pdu::Message,
        handling: &Handling,
    ) -> Option<Command> {
        let (tasks, answers) = (&handling.tasks, &handling.answers);
        let inner = &self.inner;
        let admitted = match origin {
            Origin::Peer { system_id } => inner.core.admission.peer(system_id),
            Origin::Operator { name, .. } => inner.core.admission.operator(name),
        };
        if let Err(refused) = admitted {
            tracing::debug!(rule = refused.rule, "throttled");
            return Some(refuse(id, CommandStatus::EsmeRthrottled, seq));
        }
        if let Origin::Operator { name, index } = origin {
            if !self.serves_sender(*index, &message.source) {
                metrics::counter!("otpgw_mo_foreign_numbers_total", "connection" => name.clone())
                    .increment(1);
                crate::telemetry::sampled_by(crate::telemetry::Noisy::ForeignNumber, name, || {
                    tracing::warn!(connection = %name, "a message from a number this operator connection's routes do not serve: refused, no code");
                });
                return Some(refuse(id, CommandStatus::EsmeRinvsrcadr, seq));
            }
        }
        let ack = pdu::message_resp(id, seq, &message_id(origin));
        if message.is_ussd() {
            let Some(step) = ussd::step(&inner.dialogues, &inner.smpp, &message) else {
                return Some(ack);
            };
            let (this, origin, answers) = (self.clone(), origin.clone(), answers.clone());
            tasks.spawn(tracing::Instrument::in_current_span(async move {
                let answer = this.ussd(&origin, id, seq, message, step, ack).await;
                let _ = answers.send(answer);
            }));
            return None;
        }
        if !serves(&inner.service.short_codes, &message.destination) {
            tracing::info!(destination = %crate::telemetry::escaped(&message.destination), "message for a number we do not serve");
            return Some(refuse(id, CommandStatus::EsmeRinvdstadr, seq));
        }
        let (this, origin, answers) = (self.clone(), origin.clone(), answers.clone());
        tasks.spawn(tracing::Instrument::in_current_span(async move {
            let answer = this.sms(&origin, id, seq, message, ack).await;
            let _ = answers.send(answer);
        }));
        None
    }

    /// Whether operator connection `index` serves the sender's number: its code
    /// would go out through this connection's route, so an SMSC may only ask for
    /// codes for its own customers (one claiming another operator's number would
    /// otherwise receive that customer's code). A number that does not parse is let
    /// through: no card has it, and the core answers it as it answers any.
    fn serves_sender(&self, index: usize, source: &str) -> bool {
        let Ok(msisdn) =
            otpgw_parsers::msisdn::normalize_msisdn(source, &self.inner.service.country_code)
        else {
            return true;
        };
        let routes = self.inner.replies.routes();
        routes
            .route_for(&msisdn)
            .is_some_and(|route| routes.serves(index, &route))
    }

    async fn sms(
        &self,
        origin: &Origin,
        id: CommandId,
        seq: u32,
        message: pdu::Message,
        ack: Command,
    ) -> Answer {
        let inner = &self.inner;
        let started = Instant::now();
        // This node's limiter let the PDU through; the cluster's may not (PostgreSQL).
        if let Err(refused) = inner
            .core
            .admission
            .peer_everywhere(origin.limiter_key())
            .await
        {
            tracing::debug!(rule = refused.rule, "throttled across the cluster");
            return refuse(id, CommandStatus::EsmeRthrottled, seq).into();
        }
        let inbound = Inbound {
            channel: Channel::Sms,
            peer: origin.peer(),
            path: self.reply_path(origin, &message.source),
            from: message.source,
            text: message.text,
        };
        let handled = within_deadline(
            inner.smpp.message_timeout_secs,
            "message",
            inner.core.issue.sms(&inbound),
        )
        .await;
        let reply = match handled {
            // Over a limit and already told: answer the PDU, send nothing.
            Ok(None) => return ack.into(),
            Ok(Some(reply)) => reply,
            Err(e) => return refusal(id, seq, &e, "message").into(),
        };
        tracing::info!(reply = reply.kind.as_str(), "message answered");
        metrics::histogram!("otpgw_reply_seconds", "channel" => "sms")
            .record(started.elapsed().as_secs_f64());
        let send_before = match reply.dispatch {
            Dispatch::Direct => None,
            Dispatch::Claimed { send_before } => Some(send_before),
            // In the outbox, for the node that holds a session of its target.
            Dispatch::Elsewhere => return ack.into(),
        };
        let ttl = Duration::from_secs(inner.service.code_ttl_secs);
        let msg = Outgoing {
            source: match origin {
                Origin::Peer { .. } => inner.service.sender_id.clone(),
                Origin::Operator { .. } => String::new(),
            },
            to: reply.to,
            text: reply.text,
            label: reply.kind.as_str(),
            code_id: reply.code_id,
            ussd: None,
            deliver_by: started + ttl,
            send_before,
            resume: None,
        };
        self.answer(origin, ack, msg)
    }

    /// One USSD step (see `ussd`): the dialogue moved in the session; the core's
    /// screen, within the message deadline, goes back as a reply like an SMS.
    async fn ussd(
        &self,
        origin: &Origin,
        id: CommandId,
        seq: u32,
        message: pdu::Message,
        step: ussd::Step,
        ack: Command,
    ) -> Answer {
        let inner = &self.inner;
        let started = Instant::now();
        let screen = ussd::answer(
            &inner.core,
            &inner.dialogues,
            &inner.smpp,
            &origin.peer(),
            &message,
            step,
        )
        .await;
        let screen = match screen {
            Ok(screen) => screen,
            Err(e) => return refusal(id, seq, &e, "ussd step").into(),
        };
        tracing::info!(end = screen.meta.end, "ussd screen sent");
        metrics::histogram!("otpgw_reply_seconds", "channel" => "ussd")
            .record(started.elapsed().as_secs_f64());
        let ttl = Duration::from_secs(inner.smpp.ussd_session_timeout_secs);
        let msg = Outgoing {
            source: screen.source,
            to: screen.reply.to,
            text: screen.reply.text,
            label: "ussd",
            code_id: screen.reply.code_id,
            ussd: Some(screen.meta),
            deliver_by: started + ttl,
            send_before: None,
            resume: None,
        };
        self.answer(origin, ack, msg)
    }

    /// The response, and the reply to queue after it.
    fn answer(&self, origin: &Origin, response: Command, msg: Outgoing) -> Answer {
        let target = match origin {
            Origin::Peer { system_id } => Target::Peer(system_id.clone()),
            Origin::Operator { .. } => Target::Route(
                self.inner
                    .replies
                    .routes()
                    .route_for(&msg.to)
                    .unwrap_or_default(),
            ),
        };
        Answer {
            response,
            reply: Some(Queued {
                target,
                msg,
                prefer: origin.lane(),
            }),
        }
    }

    /// Which nodes could send the reply: any holding a session of the peer, or a
    /// bound connection of the route serving the customer's number.
    fn reply_path(&self, origin: &Origin, source: &str) -> ReplyPath {
        let replies = &self.inner.replies;
        match origin {
            Origin::Peer { system_id } => {
                let target = Target::Peer(system_id.clone());
                ReplyPath::Shared {
                    held_here: replies.holds(&target),
                    target: target.outbox_key(),
                }
            }
            Origin::Operator { .. } => {
                let route = self
                    .inner
                    .core
                    .normalize_msisdn(source)
                    .ok()
                    .and_then(|m| replies.routes().route_for(&m));
                match route {
                    Some(route) => {
                        let target = Target::Route(route);
                        ReplyPath::Shared {
                            held_here: replies.holds(&target),
                            target: target.outbox_key(),
                        }
                    }
                    None => ReplyPath::Local,
                }
            }
        }
    }

    /// Queues a reply whose response is written. A code that cannot be queued will
    /// never be sent from here: recorded `undelivered` unless the outbox holds it
    /// (claimed: its lease lapses and it is claimed again).
    pub(crate) fn queue(&self, reply: Queued) {
        let (code_id, claimed) = (reply.msg.code_id, reply.msg.send_before.is_some());
        if let Err(refusal) = self
            .inner
            .replies
            .push(reply.target, reply.msg, reply.prefer)
        {
            crate::telemetry::sampled(crate::telemetry::Noisy::ReplyQueueFull, || {
                tracing::error!(reason = refusal.as_str(), "reply queue full: reply dropped");
            });
            if let (Some(id), false) = (code_id, claimed) {
                let delivery = self.inner.core.delivery.clone();
                tokio::spawn(async move {
                    let _ = delivery.undelivered(id).await;
                });
            }
        }
    }
}

/// The message id a response carries: ours for a listener peer's message (it may
/// match it against receipts it never gets), none on a deliver_sm_resp.
fn message_id(origin: &Origin) -> String {
    match origin {
        Origin::Peer { .. } => format!("{:016x}", rand::random::<u64>()),
        Origin::Operator { .. } => String::new(),
    }
}
