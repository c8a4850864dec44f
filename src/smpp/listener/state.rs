//! The listener session's state machine without its I/O: which PDU is served in
//! which state, and how. `bind.rs` (open) and `session.rs` (bound) ask [`step`]
//! what a PDU means and do it (write, check a password, hand a message to the
//! pipeline); [`fuzz`] drives the same table with the codec over arbitrary bytes,
//! so the table is fuzzed as the sessions use it.
//!
//! open ─bind ok─► bound as transmitter, receiver or transceiver ─unbind─► closed
//!  │  └bind refused, unbind, framing lost─► closed
//!  └ only bind, enquire_link and unbind are served; any other request gets
//!    ESME_RINVBNDSTS, stray responses are ignored.
//!
//! Bound: messages (a receiver may not submit_sm), receipts, enquire_link,
//! unbind; a second bind gets ESME_RALYBND; an unknown request ESME_RINVCMDID;
//! responses are matched against what we sent.

use rusmpp::{Command, CommandStatus, Pdu};

use crate::smpp::pdu::{self, BindKind};

/// Where a listener connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connected, not bound.
    Open,
    Bound(BindKind),
}

/// What one PDU from the peer asks of the session.
pub(crate) enum Step<'a> {
    /// A bind while open: check it, answer bind_resp; bound if accepted, else close.
    Bind(pdu::Bind<'a>),
    /// A bind while bound: bind_resp with ESME_RALYBND.
    AlreadyBound(BindKind),
    /// A customer's message for the inbound pipeline (bound only).
    Message(pdu::Message),
    /// A delivery receipt for something the peer sent earlier: acknowledged only.
    Receipt,
    /// A request answered with this error status and nothing else.
    Refuse(CommandStatus),
    /// enquire_link_resp.
    EnquireLink,
    /// unbind_resp, then close.
    Unbind,
    /// A response: matched against our requests when bound, ignored when open.
    Response,
}

/// What `cmd` means in `phase`.
pub(crate) fn step(phase: Phase, cmd: &Command) -> Step<'_> {
    let id = cmd.id();
    match (phase, cmd.pdu()) {
        (_, Some(Pdu::EnquireLink)) => Step::EnquireLink,
        (_, Some(Pdu::Unbind)) => Step::Unbind,
        (Phase::Open, Some(p)) if pdu::bind(p).is_some() => {
            pdu::bind(p).map_or(Step::Refuse(CommandStatus::EsmeRinvbndsts), Step::Bind)
        }
        (Phase::Open, _) if id.is_operation() => Step::Refuse(CommandStatus::EsmeRinvbndsts),
        (Phase::Open, _) => Step::Response,
        (Phase::Bound(kind), Some(p @ (Pdu::SubmitSm(_) | Pdu::DeliverSm(_)))) => {
            if id == rusmpp::CommandId::SubmitSm && !kind.can_submit() {
                return Step::Refuse(CommandStatus::EsmeRinvbndsts);
            }
            match pdu::message(p) {
                Some(m) if m.receipt => Step::Receipt,
                Some(m) => Step::Message(m),
                None => Step::Refuse(CommandStatus::EsmeRsyserr),
            }
        }
        (Phase::Bound(_), Some(p)) if pdu::bind(p).is_some() => {
            Step::AlreadyBound(pdu::bind(p).map_or(BindKind::Transceiver, |b| b.kind))
        }
        (Phase::Bound(_), _) if id.is_operation() => Step::Refuse(CommandStatus::EsmeRinvcmdid),
        (Phase::Bound(_), _) => Step::Response,
    }
}

#[doc(hidden)]
pub mod fuzz;
