//! Framing that survives bad PDUs. rusmpp's `CommandCodec` ends a `Framed` stream at
//! its first error, so we frame by `command_length` ourselves, hand rusmpp exactly one
//! frame, and turn every problem into [`Frame::Invalid`]: the session answers it with
//! `generic_nack` and keeps reading. Only a `command_length` below 16 loses the
//! framing; then the session nacks and closes.

use bytes::{Buf, BytesMut};
use rusmpp::decode::DecodeWithLength;
use rusmpp::tokio_codec::{CommandCodec, EncodeError};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio_util::codec::{Decoder, Encoder};

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
        if len >= 1 << 31 {
            // No real PDU is 2 GiB long: skipping it would swallow the stream for as
            // long as the peer cares to send. Treat it as lost framing: nack, close.
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
            // Skip it without buffering it.
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
        // 2^31 and above: nothing to skip to, framing is lost at once.
        let frames = decode_all(&[0x80, 0, 0, 0, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 4]);
        assert_eq!(frames.len(), 1);
        assert!(
            matches!(&frames[0], Frame::Invalid(b) if b.framing_lost && b.sequence_number == Some(4))
        );
    }
}
