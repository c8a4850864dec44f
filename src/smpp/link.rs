//! The link layer every SMPP session stands on, whichever side bound: framing that
//! survives bad PDUs, writes with a deadline, answers to what we cannot decode or
//! do not serve, PDU counts with bounded labels, our sequence numbers, and the
//! keep-alive of an idle link.
//!
//! Framing: rusmpp's `CommandCodec` ends a `Framed` stream at its first error, so we
//! frame by `command_length` ourselves, hand rusmpp exactly one frame, and turn
//! every problem into [`Frame::Invalid`]: the session answers it with `generic_nack`
//! and keeps reading. Only a `command_length` below 16, or beyond any PDU (over
//! 64 KiB), loses the framing; then the session nacks and closes.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::SinkExt;
use rusmpp::decode::DecodeWithLength;
use rusmpp::tokio_codec::{CommandCodec, EncodeError};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_util::codec::{Decoder, Encoder, Framed};

use super::pdu;
use crate::core::CoreError;

const HEADER_LEN: usize = 16;

#[derive(Debug)]
pub enum Frame {
    Command(Box<Command>),
    Invalid(InvalidPdu),
}

#[derive(Debug)]
pub struct InvalidPdu {
    pub command_id: Option<u32>,
    pub sequence_number: Option<u32>,
    pub status: CommandStatus,
    /// The next PDU boundary cannot be found: nack, then close.
    pub framing_lost: bool,
    pub reason: String,
}

impl InvalidPdu {
    pub fn generic_nack(&self) -> Command {
        Command::new(
            self.status,
            self.sequence_number.unwrap_or(0),
            Pdu::GenericNack,
        )
    }

    /// A bad generic_nack is not answered: two peers must not nack each other forever.
    pub fn wants_nack(&self) -> bool {
        self.command_id != Some(u32::from(CommandId::GenericNack))
    }
}

#[derive(Debug)]
pub struct SmppCodec {
    max_len: usize,
    /// Bytes of an oversized PDU still to be skipped.
    discard: usize,
    encoder: CommandCodec,
}

impl SmppCodec {
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len,
            discard: 0,
            encoder: CommandCodec::new().with_max_length(max_len),
        }
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(word)
}

/// The longest `command_length` still skipped (and the session kept) when it is over
/// `max_pdu_len`: 64 KiB, far above any real PDU (a `message_payload` holds at most
/// 64 KiB). A longer one loses the framing.
const SKIPPABLE_LEN: usize = 65_536 + HEADER_LEN;

impl Decoder for SmppCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, std::io::Error> {
        if self.discard > 0 {
            let n = self.discard.min(src.len());
            src.advance(n);
            self.discard -= n;
            if self.discard > 0 {
                return Ok(None);
            }
        }
        if src.len() < 4 {
            return Ok(None);
        }
        let len = be32(src, 0) as usize;
        if len < HEADER_LEN {
            let header = (src.len() >= HEADER_LEN).then(|| (be32(src, 4), be32(src, 12)));
            src.clear();
            return Ok(Some(Frame::Invalid(InvalidPdu {
                command_id: header.map(|h| h.0),
                sequence_number: header.map(|h| h.1),
                status: CommandStatus::EsmeRinvcmdlen,
                framing_lost: true,
                reason: format!("command_length {len} is below 16"),
            })));
        }
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        let (id, seq) = (be32(src, 4), be32(src, 12));
        let invalid = |status, reason: String| InvalidPdu {
            command_id: Some(id),
            sequence_number: Some(seq),
            status,
            framing_lost: false,
            reason,
        };
        if len > SKIPPABLE_LEN.max(self.max_len) {
            // No real PDU is that long: skipping it would swallow the stream for as
            // long as the peer cares to send (up to 2 GiB). Treat it as lost framing:
            // nack, close.
            src.clear();
            return Ok(Some(Frame::Invalid(InvalidPdu {
                framing_lost: true,
                ..invalid(
                    CommandStatus::EsmeRinvcmdlen,
                    format!("command_length {len} is beyond any PDU"),
                )
            })));
        }
        if len > self.max_len {
            // Over our limit but PDU-sized: skip it without buffering it, and keep
            // the session.
            let n = len.min(src.len());
            src.advance(n);
            self.discard = len - n;
            return Ok(Some(Frame::Invalid(invalid(
                CommandStatus::EsmeRinvcmdlen,
                format!("command_length {len} exceeds the maximum {}", self.max_len),
            ))));
        }
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        // Whatever happens next, exactly this frame is consumed.
        let mut frame = src.split_to(len);
        frame.advance(4);
        Ok(Some(match Command::decode(&mut frame, len - 4) {
            Ok((cmd, _)) => match cmd.id() {
                // rusmpp decodes unknown ids as `Pdu::Other`; SMPP wants them refused.
                CommandId::Other(raw) => Frame::Invalid(invalid(
                    CommandStatus::EsmeRinvcmdid,
                    format!("unknown command_id {raw:#010x}"),
                )),
                // An operation whose body is missing or does not belong to it.
                id if cmd.pdu().is_none() && id.is_operation() => Frame::Invalid(invalid(
                    CommandStatus::EsmeRinvcmdlen,
                    "body missing or malformed".into(),
                )),
                _ => Frame::Command(Box::new(cmd)),
            },
            Err(e) => Frame::Invalid(invalid(
                CommandStatus::EsmeRinvcmdlen,
                format!("undecodable body: {e}"),
            )),
        }))
    }
}

impl Encoder<Command> for SmppCodec {
    type Error = EncodeError;

    fn encode(&mut self, item: Command, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encoder.encode(item, dst)
    }
}

pub(crate) type Conn = Framed<TcpStream, SmppCodec>;

/// Initial read buffer of a session (tokio-util's default is 8 KiB): most PDUs are
/// tens of bytes, and an idle bound session should cost little (the buffer grows
/// for a large PDU when one comes).
pub(crate) const READ_BUFFER: usize = 512;

/// Frames a connection with the codec and a small first buffer.
pub(crate) fn framed(stream: TcpStream, max_pdu_len: usize) -> Conn {
    Framed::with_capacity(stream, SmppCodec::new(max_pdu_len), READ_BUFFER)
}

/// Writes one PDU now; false when the connection must close.
pub(crate) async fn send(conn: &mut Conn, cmd: Command, deadline: Duration) -> bool {
    queue(conn, cmd, deadline).await && flush(conn, deadline).await
}

/// Puts one PDU in the connection's write buffer, for the next `flush` to write
/// with whatever else is ready in one system call (the buffer writes itself once
/// it holds 8 KiB); false when the connection must close. A session that queues
/// must flush before it waits for anything.
pub(crate) async fn queue(conn: &mut Conn, cmd: Command, deadline: Duration) -> bool {
    let id = cmd.id();
    let status = cmd.status();
    let queued = deadlined(deadline, conn.feed(cmd)).await;
    if queued {
        metrics::counter!("otpgw_smpp_pdus_total", "direction" => "out", "command" => command_label(id), "status" => status_label(status)).increment(1);
    }
    queued
}

/// Writes what `queue` left in the buffer; false when the connection must close.
pub(crate) async fn flush(conn: &mut Conn, deadline: Duration) -> bool {
    conn.write_buffer().is_empty() || deadlined(deadline, conn.flush()).await
}

/// A write with a deadline: a peer that stops reading fills its socket buffer and
/// would block the write for ever (and with it the session's timers).
async fn deadlined(
    deadline: Duration,
    write: impl std::future::Future<Output = Result<(), EncodeError>>,
) -> bool {
    match timeout(deadline, write).await {
        Ok(Ok(())) => true,
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

/// The core's answer to a customer's message or USSD step, given `secs` at most.
/// Past the deadline it is `Timeout`, so the peer gets "try again" rather than
/// nothing: a held lock or a stalled database must not leave a message unanswered.
pub(super) async fn within_deadline<T>(
    secs: u64,
    what: &str,
    handling: impl std::future::Future<Output = Result<T, CoreError>>,
) -> Result<T, CoreError> {
    timeout(Duration::from_secs(secs), handling)
        .await
        .unwrap_or_else(|_| {
            tracing::error!(secs, "{what} not handled within its deadline");
            metrics::counter!("otpgw_message_timeouts_total").increment(1);
            Err(CoreError::Timeout)
        })
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
    /// A request of ours has waited for its response longer than the timeout.
    Late,
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

    /// `oldest`: when the oldest of our requests still unanswered was sent.
    pub(crate) fn tick(&mut self, oldest: Option<Instant>) -> Tick {
        let now = Instant::now();
        let overdue = |at: Instant| now.duration_since(at) > self.response_timeout;
        if self.enquire.is_some_and(|(_, at)| overdue(at)) {
            return Tick::Dead;
        }
        if oldest.is_some_and(overdue) {
            return Tick::Late;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Vec<Frame> {
        let mut codec = SmppCodec::new(256);
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf).unwrap() {
            out.push(f);
        }
        out
    }

    const ENQUIRE_LINK: [u8; 16] = [0, 0, 0, 16, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 7];

    #[test]
    fn a_bad_pdu_is_skipped_and_the_next_one_decodes() {
        let mut bytes = vec![
            0, 0, 0, 20, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4,
        ]; // submit_sm, junk body
        bytes.extend_from_slice(&[0, 0, 0, 16, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6]); // unknown id
        bytes.extend_from_slice(&ENQUIRE_LINK);
        let frames = decode_all(&bytes);
        assert_eq!(frames.len(), 3);
        match &frames[0] {
            Frame::Invalid(bad) => {
                assert_eq!((bad.sequence_number, bad.framing_lost), (Some(5), false))
            }
            f => panic!("{f:?}"),
        }
        match &frames[1] {
            Frame::Invalid(bad) => assert_eq!(bad.status, CommandStatus::EsmeRinvcmdid),
            f => panic!("{f:?}"),
        }
        assert!(matches!(&frames[2], Frame::Command(c) if c.sequence_number() == 7));
    }

    #[test]
    fn oversized_pdus_are_skipped_and_tiny_lengths_lose_framing() {
        let mut bytes = vec![0, 0, 1, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 9];
        bytes.resize(256, 0xAA);
        bytes.extend_from_slice(&ENQUIRE_LINK);
        let frames = decode_all(&bytes);
        assert!(
            matches!(&frames[0], Frame::Invalid(b) if b.status == CommandStatus::EsmeRinvcmdlen && !b.framing_lost)
        );
        assert!(matches!(&frames[1], Frame::Command(_)));
        let frames = decode_all(&[0, 0, 0, 3, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(matches!(&frames[0], Frame::Invalid(b) if b.framing_lost));
        // Beyond any PDU (just over 64 KiB, just under 2^31, 2^31 and above):
        // nothing sensible to skip to, framing is lost at once.
        for length in [0x0001_0011_u32, 0x7fff_fff0, 0x8000_0000] {
            let mut header = length.to_be_bytes().to_vec();
            header.extend_from_slice(&[0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 4]);
            let frames = decode_all(&header);
            assert_eq!(frames.len(), 1, "{length:#x}");
            assert!(
                matches!(&frames[0], Frame::Invalid(b) if b.framing_lost && b.sequence_number == Some(4)),
                "{length:#x}"
            );
        }
        // Just within: skipped, the session kept.
        let mut header = 0x0001_0010_u32.to_be_bytes().to_vec();
        header.extend_from_slice(&[0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 5]);
        let frames = decode_all(&header);
        assert!(matches!(&frames[0], Frame::Invalid(b) if !b.framing_lost));
    }
}
