//! What every SMPP link does, whichever side bound: write a PDU within a deadline,
//! answer an undecodable one, refuse an operation, count PDUs with bounded labels,
//! number our requests, and keep an idle link alive with enquire_link.

use std::time::Duration;

use futures::SinkExt;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_util::codec::Framed;

use super::codec::{InvalidPdu, SmppCodec};
use super::pdu;
use crate::core::CoreError;

pub(crate) type Conn = Framed<TcpStream, SmppCodec>;

/// Initial read buffer of a session (tokio-util's default is 8 KiB): most PDUs are
/// tens of bytes, and an idle bound session should cost little (the buffer grows
/// for a large PDU when one comes).
pub(crate) const READ_BUFFER: usize = 512;

/// Frames a connection with the codec and a small first buffer.
pub(crate) fn framed(stream: TcpStream, max_pdu_len: usize) -> Conn {
    Framed::with_capacity(stream, SmppCodec::new(max_pdu_len), READ_BUFFER)
}

/// Writes one PDU; false when the connection must close. A peer that stops reading
/// fills its socket buffer and would block this write for ever (and with it the
/// session's timers), so the write has a deadline.
pub(crate) async fn send(conn: &mut Conn, cmd: Command, deadline: Duration) -> bool {
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

/// Answers a PDU we could not decode; false when the connection must close.
pub(crate) async fn answer_invalid(conn: &mut Conn, bad: &InvalidPdu, deadline: Duration) -> bool {
    crate::telemetry::sampled(crate::telemetry::Noisy::UndecodablePdu, || {
        tracing::info!(reason = %bad.reason, status = ?bad.status, "undecodable PDU");
    });
    metrics::counter!("otpgw_smpp_pdus_total", "direction" => "in", "command" => "invalid", "status" => status_label(bad.status)).increment(1);
    if bad.wants_nack() && !send(conn, bad.generic_nack(), deadline).await {
        return false;
    }
    !bad.framing_lost
}

pub(crate) fn count_in(cmd: &Command) {
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

/// The error response to an operation we do not serve: its own *_resp with `status`
/// where SMPP defines one, generic_nack otherwise.
pub(crate) fn refuse(id: CommandId, status: CommandStatus, seq: u32) -> Command {
    match id {
        CommandId::Outbind | CommandId::AlertNotification => {
            Command::new(status, seq, Pdu::GenericNack)
        }
        id => pdu::header_only(id.matching_response(), status, seq),
    }
}

/// The refusal of a customer's message the core could not answer: a source that is
/// not a phone number is the peer's mistake; anything else is temporary (the peer
/// should retry; nothing was promised).
pub(crate) fn refusal(id: CommandId, seq: u32, e: &CoreError, what: &str) -> Command {
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

pub(crate) fn ok(seq: u32, pdu: impl Into<Pdu>) -> Command {
    Command::new(CommandStatus::EsmeRok, seq, pdu)
}

/// Our side of a link's keep-alive and numbering: sequence numbers for what we
/// send, the enquire_link waiting for its answer, and when the peer last spoke.
pub(crate) struct Keepalive {
    next_seq: u32,
    enquire: Option<(u32, Instant)>,
    last_heard: Instant,
    idle: Duration,
    response_timeout: Duration,
}

/// What the keep-alive asks for at a tick.
pub(crate) enum Tick {
    Quiet,
    /// Send an enquire_link with this sequence number.
    Enquire(u32),
    /// No enquire_link_resp in time: the link is dead.
    Dead,
}

impl Keepalive {
    pub(crate) fn new(first_seq: u32, idle: Duration, response_timeout: Duration) -> Self {
        Self {
            next_seq: first_seq,
            enquire: None,
            last_heard: Instant::now(),
            idle,
            response_timeout,
        }
    }

    /// The next sequence number of a PDU we originate.
    pub(crate) fn seq(&mut self) -> u32 {
        self.next_seq = if self.next_seq >= 0x7FFF_FFFF {
            1
        } else {
            self.next_seq + 1
        };
        self.next_seq
    }

    pub(crate) fn heard(&mut self) {
        self.last_heard = Instant::now();
    }

    /// An enquire_link_resp (or any response) with this sequence number came.
    pub(crate) fn answered(&mut self, seq: u32) -> bool {
        let ours = self.enquire.is_some_and(|(s, _)| s == seq);
        if ours {
            self.enquire = None;
        }
        ours
    }

    pub(crate) fn tick(&mut self) -> Tick {
        let now = Instant::now();
        if self
            .enquire
            .is_some_and(|(_, at)| now.duration_since(at) > self.response_timeout)
        {
            return Tick::Dead;
        }
        if self.enquire.is_none() && now.duration_since(self.last_heard) >= self.idle {
            let seq = self.seq();
            self.enquire = Some((seq, now));
            return Tick::Enquire(seq);
        }
        Tick::Quiet
    }
}

/// Whether a message to `destination` is for us: one of `service.short_codes` (any,
/// when the list is empty), with or without a leading '+'.
pub(crate) fn serves(short_codes: &[String], destination: &str) -> bool {
    let destination = destination.trim_start_matches('+');
    short_codes.is_empty()
        || short_codes
            .iter()
            .any(|c| c.trim_start_matches('+') == destination)
}
