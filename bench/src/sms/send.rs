//! One session's sender in `bench sms`: draws tickets from the run's plan (a count, a
//! deadline, a target rate), waits for its scheduled time, a place in the session's
//! window and a free card, marks the card in flight and queues its submit_sm.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rusmpp::pdus::SubmitSm;
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, Npi, Ton};
use rusmpp::{Command, CommandStatus};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::flight::{Done, Shared, State};
use crate::cards::Card;
use crate::report::lock;

/// How early a paced send may leave (see `generate`).
const TIMER_SLACK: Duration = Duration::from_millis(1);

/// The send plan every session's generator draws tickets from.
pub struct Plan {
    pub next: AtomicU64,
    pub count: Option<u64>,
    /// At a target rate: the time between two scheduled sends.
    pub interval: Option<Duration>,
    pub end: Option<Instant>,
}

fn submit_sm(card: &Card, to: &str) -> Result<SubmitSm> {
    let address =
        |a: &str| COctetString::from_str(a).map_err(|_| anyhow::anyhow!("bad address {a:?}"));
    Ok(SubmitSm::builder()
        .source_addr_ton(Ton::International)
        .source_addr_npi(Npi::Isdn)
        .source_addr(address(&card.msisdn)?)
        .dest_addr_ton(Ton::Unknown)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(address(to)?)
        .esm_class(EsmClass::from(0x00u8))
        .data_coding(DataCoding::from(0x00u8))
        .short_message(
            OctetString::from_str(card.last4()).map_err(|_| anyhow::anyhow!("bad text"))?,
        )
        .build())
}

/// One session's sender: draws tickets from the plan, waits for its schedule, a
/// window slot and a free card, then sends.
pub async fn generate(
    shared: Arc<Shared>,
    plan: Arc<Plan>,
    session: usize,
    tx: mpsc::Sender<Command>,
    to: String,
    stop: CancellationToken,
) -> Result<()> {
    let window = shared
        .windows
        .get(session)
        .context("no window for this session")?;
    // Every wait is bounded: with no card freed for this long, the run has stalled.
    let stall = shared.timeout * 2 + Duration::from_secs(1);
    loop {
        let k = plan.next.fetch_add(1, Ordering::Relaxed);
        if plan.count.is_some_and(|c| k >= c) {
            return Ok(());
        }
        let scheduled = plan.interval.map(|iv| shared.start + iv.mul_f64(k as f64));
        let now = Instant::now();
        if plan.end.is_some_and(|end| scheduled.unwrap_or(now) >= end) {
            return Ok(());
        }
        if let Some(at) = scheduled {
            // tokio's timer rounds a deadline up to its next 1 ms tick, so waking at
            // `at` would send ~1 ms late and charge that to the server. Wake up to
            // TIMER_SLACK early instead; an early send is timed from the send itself.
            let wake = at.checked_sub(TIMER_SLACK).unwrap_or(at);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = stop.cancelled() => return Ok(()),
            }
        }
        tokio::select! {
            permit = window.acquire() => permit?.forget(),
            _ = stop.cancelled() => return Ok(()),
        }
        let idx = tokio::select! {
            idx = tokio::time::timeout(stall, shared.free_rx.recv()) => match idx {
                Ok(idx) => idx?,
                Err(_) => {
                    window.add_permits(1);
                    lock(&shared.report).error("stalled_no_free_card");
                    return Ok(());
                }
            },
            _ = stop.cancelled() => { window.add_permits(1); return Ok(()) }
        };
        let card = shared.cards.get(idx).context("card index")?;
        let now = Instant::now();
        let generation = {
            let mut slot = lock(shared.slots.get(idx).context("slot index")?);
            slot.state = State::Waiting {
                // Late: from the schedule (no coordinated omission); early: from now.
                scheduled: scheduled.map_or(now, |at| at.min(now)),
                sent: now,
                session,
            };
            slot.generation
        };
        let cmd = Command::new(
            CommandStatus::EsmeRok,
            shared.seq(idx, generation),
            submit_sm(card, &to)?,
        );
        if tx.send(cmd).await.is_err() {
            shared.complete(idx, None, Done::Error("connection_closed".into()));
            bail!("session {session}: the connection closed");
        }
        shared.sent.fetch_add(1, Ordering::Relaxed);
    }
}
