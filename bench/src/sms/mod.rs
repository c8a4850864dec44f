//! `otpgw bench sms`: binds N transceiver sessions to an SMPP server and keeps W
//! customer messages ("the last 4 digits") in flight on each, open loop or at a target
//! rate, then times each from its send (its *scheduled* send at a target rate, so a
//! slow server cannot hide its queue: no coordinated omission) to the deliver_sm that
//! answers it.
//!
//! A reply can come back on any session of the system_id, and before or after its
//! submit_sm_resp, so requests are keyed by card, not by session: each card has its
//! own MSISDN and at most one request in flight. The submit_sm's sequence number
//! carries the card index and a generation, so a late response is never credited to
//! a newer request. "In flight" lasts until the reply (or the timeout), which is what
//! `--window` bounds.
//!
//! * `args`    — the options: target, load shape, where the cards come from.
//! * `drive`   — one run: bind, start the sessions, wait for the end, unbind, report.
//! * `flight`  — the requests in flight, keyed by card: completion and timeouts.
//! * `session` — one SMPP session: the bind, its writer and its reader.
//! * `send`    — one session's sender: the schedule, the window, the submit_sm.

mod args;
mod drive;
mod flight;
mod send;
mod session;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::output;
use crate::report::Report;

pub use args::{Phase, SmsArgs};
pub use drive::drive;

pub async fn run(args: SmsArgs, stop: CancellationToken) -> Result<()> {
    let phase = &args.phase;
    phase.target.cpu.check()?;
    let cards = phase.cards.load(args.out.quiet).await?;
    let outcome = drive(&phase.target, &phase.load, cards, args.out.quiet, stop).await?;
    output::finish(&outcome.report, &args.out)
}

/// What a run leaves: the report, and per card the last code it received (kept in
/// memory for `bench verify`, never printed).
pub struct Outcome {
    pub report: Report,
    pub codes: Vec<Option<String>>,
}
