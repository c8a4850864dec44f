//! SMPP, both directions: the listener (telcos and aggregators bind to us) and
//! client mode (we bind out to operator SMSCs). They differ in who binds and little
//! else: one codec, one PDU conversion, one inbound pipeline, one replies path.
//!
//! * `link`     — the link layer: framing that answers bad PDUs with generic_nack
//!   instead of dying, writes with a deadline, refusals, keep-alive.
//! * `pdu`      — PDUs ↔ plain values (addresses, decoded text, reply encoding).
//! * `inbound`  — a customer's message or USSD step → core → response, then reply;
//!   the same pipeline for both directions.
//! * `ussd`     — USSD dialogues over SMPP, for both directions.
//! * `listener` — the listener: accept under caps, bind, sessions.
//! * `client`   — client mode: operator connections, their sessions and receipts.
//!
//! Replies leave through `crate::replies`, per target: a peer's system_id, or an
//! operator route.

pub mod client;
mod inbound;
mod link;
mod listener;
// Public so that the load tool and the criterion benches use the gateway's own
// framing and PDU conversions instead of copies of them.
pub mod pdu;
mod ussd;

use std::sync::Arc;

pub use listener::{Peers as ListenerPeers, Server};

/// The framing, for the load tool, the benches and the fuzz target.
pub mod codec {
    pub use crate::smpp::link::{Frame, InvalidPdu, SmppCodec};
}

/// The bytes-to-values path of a session without its I/O, for the fuzz targets in
/// `fuzz/`: framing, the generic_nack a bad PDU gets, and the conversions a session
/// applies to each decoded PDU (bind, message, USSD string). Returns the number of
/// frames. Whatever the bytes, it must not panic: a panic here is a session a peer
/// can kill.
#[doc(hidden)]
pub fn decode_for_fuzzing(bytes: &[u8], max_pdu_len: usize) -> usize {
    use tokio_util::codec::{Decoder, Encoder};
    let mut codec = codec::SmppCodec::new(max_pdu_len.clamp(64, 65_536));
    let mut buf = bytes::BytesMut::from(bytes);
    let mut frames = 0;
    // Every frame consumes input, so this ends; the cap is a second guard.
    while frames < 100_000 {
        let Ok(Some(frame)) = codec.decode(&mut buf) else {
            break;
        };
        frames += 1;
        match frame {
            codec::Frame::Command(cmd) => {
                let mut out = bytes::BytesMut::new();
                if let Some(p) = cmd.pdu() {
                    let _ = pdu::bind(p);
                    if let Some(m) = pdu::message(p) {
                        let _ = otpgw_parsers::ussd::parse_ussd(&m.text);
                        let _ = otpgw_parsers::ussd::parse_ussd(&m.destination);
                    }
                }
                let _ = codec.encode(*cmd, &mut out);
            }
            codec::Frame::Invalid(bad) => {
                let mut out = bytes::BytesMut::new();
                let _ = codec.encode(bad.generic_nack(), &mut out);
                if bad.framing_lost {
                    break;
                }
            }
        }
    }
    frames
}

/// The listener session's state machine over the codec, for the `smpp_session`
/// fuzz target: the first byte sets up the model, the rest is a peer's bytes. It
/// panics when a session's promise breaks (see `listener::state::fuzz`); returns the
/// number of frames.
#[doc(hidden)]
pub fn session_for_fuzzing(bytes: &[u8]) -> usize {
    listener::state::fuzz::run(bytes).frames
}

/// What operations may ask about this node's SMPP links (`crate::core::links`):
/// client mode's connections and the listener's bound sessions.
pub struct LinkBoard {
    pub operators: Option<client::Operators>,
    pub listener_sessions: Arc<listener::Board>,
}

impl crate::core::links::Links for LinkBoard {
    fn connections(&self) -> Vec<crate::core::links::ConnectionStatus> {
        self.operators
            .as_ref()
            .map(client::Operators::status)
            .unwrap_or_default()
    }

    fn routes_down(&self) -> Vec<String> {
        self.operators
            .as_ref()
            .map(client::Operators::routes_down)
            .unwrap_or_default()
    }

    fn route_queues(&self) -> Vec<(String, usize)> {
        self.operators
            .as_ref()
            .map(client::Operators::route_queues)
            .unwrap_or_default()
    }

    fn listener_sessions(&self) -> usize {
        self.listener_sessions.len()
    }

    fn listener_binds(&self) -> Vec<crate::core::links::ListenerBind> {
        self.listener_sessions.binds()
    }

    fn client_mode(&self) -> bool {
        self.operators.is_some()
    }
}

#[cfg(test)]
mod tests {
    /// The fuzz corpus (seeds, and every crash found, kept as a regression input) also
    /// runs here, on stable, with every test run.
    #[test]
    fn the_fuzz_corpus_decodes_without_panic() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/smpp_codec");
        let mut inputs = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            super::decode_for_fuzzing(&bytes, 512);
            inputs += 1;
        }
        assert!(inputs >= 5, "{inputs} inputs in {dir}");
    }
}
