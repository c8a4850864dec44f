//! The fuzz driver of the listener's state machine: arbitrary bytes from a peer,
//! framed by the real codec, go through [`super::step`] as a session takes them,
//! with the session's effects modelled in memory (one known system_id and
//! password, a pipeline that answers at once or throttles, replies waiting for the
//! peer delivered within the window, our enquire_link every few frames). It checks
//! what a session promises: no message handled before a bind, every request
//! answered at once with its own sequence number (or the connection closed), never
//! more deliver_sm in flight than the window, and output bounded by the input.

use std::collections::HashSet;
use std::time::Duration;

use bytes::BytesMut;
use rusmpp::values::InterfaceVersion;
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use tokio_util::codec::{Decoder, Encoder};

use super::{step, Phase, Step};
use crate::smpp::link::{ok, refuse, Frame, Keepalive, SmppCodec};
use crate::smpp::pdu;

/// The one peer the model knows.
pub const SYSTEM_ID: &str = "fuzz";
pub const PASSWORD: &str = "secret";

/// Replies that may wait for the peer at once (the model's queue cap).
const MAX_QUEUED: usize = 64;

/// What one run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Run {
    pub frames: usize,
    pub written: usize,
    pub messages: usize,
    pub delivered: usize,
    pub bound: bool,
    pub closed: bool,
}

/// The model of one listener connection.
struct Model {
    phase: Phase,
    codec: SmppCodec,
    keepalive: Keepalive,
    /// Our deliver_sm not yet answered, by sequence number.
    in_flight: HashSet<u32>,
    window: usize,
    queued: usize,
    /// Every `throttle_every`th message is refused ESME_RTHROTTLED (0: none).
    throttle_every: usize,
    run: Run,
    /// What was written for the PDU being handled.
    answers: Vec<Command>,
}

/// Runs `bytes` through the model: the first byte sets the window (1 to 4), the
/// replies already waiting (0 to 7) and the throttling; the rest is the peer's.
pub fn run(bytes: &[u8]) -> Run {
    let Some((&setup, input)) = bytes.split_first() else {
        return Run::default();
    };
    let mut m = Model {
        phase: Phase::Open,
        codec: SmppCodec::new(512),
        // Idle at once and never late: the model sends enquire_link when it chooses.
        keepalive: Keepalive::new(0, Duration::ZERO, Duration::from_secs(86_400)),
        in_flight: HashSet::new(),
        window: 1 + usize::from(setup & 0x03),
        queued: usize::from((setup >> 2) & 0x07),
        throttle_every: usize::from(setup >> 5),
        run: Run::default(),
        answers: Vec::new(),
    };
    let mut buf = BytesMut::from(input);
    // Every frame consumes input, so this ends; the cap is a second guard.
    while m.run.frames < 100_000 && !m.run.closed {
        let Ok(Some(frame)) = m.codec.decode(&mut buf) else {
            break;
        };
        m.run.frames += 1;
        m.answers.clear();
        match frame {
            Frame::Invalid(bad) => {
                if bad.wants_nack() {
                    m.write(bad.generic_nack());
                }
                m.run.closed = bad.framing_lost;
            }
            Frame::Command(cmd) => m.take(&cmd),
        }
        if !m.run.closed {
            m.deliver();
            if m.run.frames % 8 == 0 {
                m.enquire();
            }
        }
        assert!(
            m.in_flight.len() <= m.window,
            "more in flight than the window"
        );
    }
    // Output is bounded by the input: per frame one answer, one enquire_link and
    // what the window let out, which came from the queue and from answered messages.
    assert!(m.run.delivered <= usize::from((setup >> 2) & 0x07) + m.run.messages);
    assert!(m.run.written <= 2 * m.run.frames + m.run.delivered);
    m.run
}

impl Model {
    fn write(&mut self, cmd: Command) {
        let mut out = BytesMut::new();
        // Everything the session answers must encode.
        self.codec
            .encode(cmd.clone(), &mut out)
            .expect("an answer that encodes");
        self.run.written += 1;
        self.answers.push(cmd);
    }

    /// One decoded PDU, as `bind.rs` and `session.rs` take it.
    fn take(&mut self, cmd: &Command) {
        let (id, seq) = (cmd.id(), cmd.sequence_number());
        match step(self.phase, cmd) {
            Step::Bind(bind) => {
                assert_eq!(self.phase, Phase::Open, "a bind served while bound");
                let accepted = bind.system_id == SYSTEM_ID && bind.password == PASSWORD;
                let status = if accepted {
                    CommandStatus::EsmeRok
                } else {
                    CommandStatus::EsmeRinvpaswd
                };
                let kind = bind.kind;
                self.write(pdu::bind_resp(kind, status, seq, bind.interface_version));
                if accepted {
                    self.phase = Phase::Bound(kind);
                    self.run.bound = true;
                } else {
                    self.run.closed = true;
                }
            }
            Step::AlreadyBound(kind) => {
                assert_ne!(self.phase, Phase::Open, "ESME_RALYBND before a bind");
                let resp = pdu::bind_resp(
                    kind,
                    CommandStatus::EsmeRalybnd,
                    seq,
                    InterfaceVersion::Smpp3_4,
                );
                self.write(resp);
            }
            Step::Message(message) => {
                let Phase::Bound(kind) = self.phase else {
                    panic!("a message handled before a bind");
                };
                assert!(id != CommandId::SubmitSm || kind.can_submit());
                self.run.messages += 1;
                let _ = otpgw_parsers::ussd::parse_ussd(&message.text);
                if self.throttle_every > 0 && self.run.messages % self.throttle_every == 0 {
                    self.write(refuse(id, CommandStatus::EsmeRthrottled, seq));
                } else {
                    self.write(pdu::message_resp(id, seq, "00000000000000a1"));
                    self.queued = (self.queued + 1).min(MAX_QUEUED);
                }
            }
            Step::Receipt => {
                assert_ne!(self.phase, Phase::Open, "a receipt taken before a bind");
                self.write(pdu::message_resp(id, seq, "00000000000000a2"));
            }
            Step::Refuse(status) => self.write(refuse(id, status, seq)),
            Step::EnquireLink => self.write(ok(seq, Pdu::EnquireLinkResp)),
            Step::Unbind => {
                self.write(ok(seq, Pdu::UnbindResp));
                self.run.closed = true;
            }
            Step::Response => {
                if self.phase != Phase::Open && !self.keepalive.answered(seq) {
                    self.in_flight.remove(&seq);
                }
            }
        }
        if id.is_operation() {
            // Answered at once, once, with the request's own sequence number.
            let answer = match self.answers.as_slice() {
                [answer] => answer,
                other => panic!("{} answers to one request", other.len()),
            };
            assert_eq!(answer.sequence_number(), seq);
            assert!(
                !answer.id().is_operation(),
                "a request answered by a request"
            );
        } else {
            assert!(self.answers.is_empty(), "a response answered");
        }
    }

    /// Replies waiting for a receiving bind go out within the window.
    fn deliver(&mut self) {
        let Phase::Bound(kind) = self.phase else {
            return;
        };
        if !kind.can_receive() {
            return;
        }
        while self.in_flight.len() < self.window && self.queued > 0 {
            let seq = self.keepalive.seq();
            let dsm = pdu::deliver_sm("BankOTP", "989121110001", "Your code", None)
                .expect("a reply that fits a deliver_sm");
            self.write(ok(seq, dsm));
            self.in_flight.insert(seq);
            self.queued -= 1;
            self.run.delivered += 1;
        }
    }

    /// Our enquire_link, when none is waiting for its answer.
    fn enquire(&mut self) {
        if let crate::smpp::link::Tick::Enquire(seq) = self.keepalive.tick(None) {
            self.write(ok(seq, Pdu::EnquireLink));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed corpus (and every crash found, kept as a regression input) runs here
    /// on stable with every test run; the seeds reach the bound state.
    #[test]
    fn the_session_fuzz_corpus_runs_without_panic() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/smpp_session");
        let (mut inputs, mut bound, mut messages) = (0, 0, 0);
        for entry in std::fs::read_dir(dir).unwrap() {
            let run = run(&std::fs::read(entry.unwrap().path()).unwrap());
            inputs += 1;
            bound += usize::from(run.bound);
            messages += run.messages;
        }
        assert!(inputs >= 5, "{inputs} inputs in {dir}");
        assert!(
            bound >= 3 && messages >= 2,
            "{bound} bound, {messages} messages"
        );
    }
}
