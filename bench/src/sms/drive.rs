//! One `bench sms` run: checks the options, binds the sessions, starts a writer, a
//! reader and a sender per session and a sweeper for timeouts, waits until every
//! message is sent and answered (or timed out, or Ctrl-C), unbinds and returns the
//! report with the codes received.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rusmpp::{Command, CommandStatus, Pdu};
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::args::{Load, Target};
use super::flight::{Shared, Slot, State, CONTROL_SEQ};
use super::send::{generate, Plan};
use super::session::{bind_all, read_loop, write_loop, SETUP_TIMEOUT};
use super::Outcome;
use crate::cards::Card;
use crate::duration::parse_duration;
use crate::output;
use crate::report::{lock, Report};

/// How long the sessions together wait for their unbind_resp at the end.
const UNBIND_TIMEOUT: Duration = Duration::from_secs(2);

fn parse_rate(rate: &str) -> Result<Option<f64>> {
    if rate.eq_ignore_ascii_case("open") {
        return Ok(None);
    }
    let r: f64 = rate
        .trim_end_matches("/s")
        .parse()
        .with_context(|| format!("--rate {rate:?}: a number per second or `open`"))?;
    if !(0.1..=10_000_000.0).contains(&r) {
        bail!("--rate {rate} is out of range");
    }
    Ok(Some(r))
}

/// Runs the load on `cards` and returns the report (complete, or partial after Ctrl-C).
pub async fn drive(
    target: &Target,
    load: &Load,
    cards: Vec<Card>,
    quiet: bool,
    stop: CancellationToken,
) -> Result<Outcome> {
    let rate = parse_rate(&load.rate)?;
    let timeout = parse_duration(&load.timeout)?;
    if timeout.is_zero() {
        bail!("--timeout must be positive");
    }
    let duration = match (&load.duration, load.count) {
        (Some(d), _) => Some(parse_duration(d)?),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(30)),
    };
    let binds = load.binds as usize;
    let window = load.window as usize;
    let n = cards.len();
    if n >= CONTROL_SEQ as usize {
        bail!("too many cards");
    }
    if n < binds * window {
        eprintln!(
            "note: {n} cards for {binds} binds x window {window}: at most {n} messages can be in flight"
        );
    }
    let by_msisdn: HashMap<String, usize> = cards
        .iter()
        .enumerate()
        .map(|(i, c)| (c.msisdn.clone(), i))
        .collect();
    if by_msisdn.len() != n {
        bail!("the cards must have distinct MSISDNs (one request in flight per number)");
    }

    let mut report = Report::new("sms", "replies_with_code");
    report.params.insert("smpp", json!(target.smpp));
    report.params.insert("binds", json!(binds));
    report.params.insert("window", json!(window));
    report
        .params
        .insert("rate", rate.map_or(json!("open"), |r| json!(r)));
    if let Some(d) = duration {
        report.params.insert("duration_s", json!(d.as_secs_f64()));
    }
    if let Some(c) = load.count {
        report.params.insert("count", json!(c));
    }
    report.params.insert("cards", json!(n));

    let sessions = bind_all(target, binds).await?;

    let (free_tx, free_rx) = async_channel::bounded(n);
    for i in 0..n {
        free_tx.try_send(i).ok();
    }
    // CPU from here: the binds and any enrolment before are not the codes' cost.
    let meter = crate::cpu::Meter::start(&target.cpu);
    let start = Instant::now();
    report.started = Some(start);
    let bar = output::progress(load.count, "sms", quiet);
    let shared = Arc::new(Shared {
        slots: (0..n)
            .map(|_| {
                Mutex::new(Slot {
                    state: State::Idle,
                    generation: 0,
                    code: None,
                })
            })
            .collect(),
        generations: ((CONTROL_SEQ - 1) / n as u32).clamp(1, 1 << 16),
        cards,
        by_msisdn,
        free_tx,
        free_rx,
        windows: (0..binds).map(|_| Semaphore::new(window)).collect(),
        report: Mutex::new(report),
        sent: AtomicU64::new(0),
        submit_ok: AtomicU64::new(0),
        start,
        last_done: Mutex::new(start),
        timeout,
        bar,
    });
    let plan = Arc::new(Plan {
        next: AtomicU64::new(0),
        count: load.count,
        interval: rate.map(|r| Duration::from_secs_f64(1.0 / r)),
        end: duration.map(|d| start + d),
    });

    // Sessions: a writer, a reader and a generator each.
    let closed = CancellationToken::new();
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    let mut generators = tokio::task::JoinSet::new();
    let mut senders = Vec::new();
    for (i, (read, write)) in sessions.into_iter().enumerate() {
        let (tx, rx) = mpsc::channel::<Command>(window.max(64) * 2);
        writers.push(tokio::spawn(write_loop(write, rx)));
        // Ends this session's generator: on Ctrl-C, or when the server drops it.
        let lost = stop.child_token();
        readers.push(tokio::spawn(read_loop(
            shared.clone(),
            read,
            tx.clone(),
            closed.clone(),
            lost.clone(),
        )));
        generators.spawn(generate(
            shared.clone(),
            plan.clone(),
            i,
            tx.clone(),
            load.to.clone(),
            lost,
        ));
        senders.push(tx);
    }
    let sweeper = {
        let shared = shared.clone();
        let closed = closed.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tokio::select! {
                    _ = closed.cancelled() => break,
                    _ = tick.tick() => { shared.sweep(); }
                }
            }
        })
    };

    // Until every generator has sent its share (or Ctrl-C) ...
    while let Some(joined) = generators.join_next().await {
        if let Ok(Err(e)) = joined {
            eprintln!("a session stopped sending: {e:#}");
            lock(&shared.report).error("session_lost");
        }
    }
    // ... then until every reply is in or timed out (a moment only after Ctrl-C).
    let drain_until = Instant::now()
        + if stop.is_cancelled() {
            Duration::from_secs(1)
        } else {
            timeout + Duration::from_millis(200)
        };
    while shared.sweep() > 0 && Instant::now() < drain_until {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            _ = stop.cancelled(), if !stop.is_cancelled() => {}
        }
    }
    let interrupted = stop.is_cancelled();
    shared.bar.finish_and_clear();

    // Unbind politely; the readers end on unbind_resp or after UNBIND_TIMEOUT.
    for tx in &senders {
        let _ = tx
            .send(Command::new(
                CommandStatus::EsmeRok,
                CONTROL_SEQ + 1,
                Pdu::Unbind,
            ))
            .await;
    }
    drop(senders);
    let unbound_by = Instant::now() + UNBIND_TIMEOUT;
    for r in readers {
        let _ = tokio::time::timeout_at(unbound_by, r).await;
    }
    closed.cancel();
    let _ = sweeper.await;
    for w in writers {
        let _ = tokio::time::timeout(SETUP_TIMEOUT, w).await;
    }

    let mut report = Report::take(&shared.report, start, &shared.last_done, interrupted);
    report.cpu = meter.stop();
    report.count("sent", shared.sent.load(Ordering::Relaxed));
    report.count(
        "submit_sm_resp_ok",
        shared.submit_ok.load(Ordering::Relaxed),
    );
    for name in ["replies_with_code", "replies_without_code", "late_replies"] {
        report.count(name, 0);
    }
    let codes = shared.slots.iter().map(|s| lock(s).code.take()).collect();
    Ok(Outcome { report, codes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert!(parse_rate("open").unwrap().is_none());
        assert_eq!(parse_rate("500").unwrap(), Some(500.0));
        assert!(parse_rate("0").is_err());
    }
}
