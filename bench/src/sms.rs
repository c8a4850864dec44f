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

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use futures::{SinkExt, StreamExt};
use indicatif::ProgressBar;
use rusmpp::pdus::{BindTransceiver, SubmitSm};
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, InterfaceVersion, Npi, Ton};
use rusmpp::{Command, CommandId, CommandStatus, Pdu};
use serde_json::json;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use crate::cards::{self, Card};
use crate::duration::parse_duration;
use crate::output::{self, Output};
use crate::report::Report;
use otpgw::smpp::codec::{Frame, SmppCodec};
use otpgw::smpp::pdu;

/// Largest PDU accepted from the server.
const MAX_PDU: usize = 64 * 1024;
/// Sequence numbers at or above this are the tool's own (bind, unbind, keep-alive).
const CONTROL_SEQ: u32 = 0x7000_0000;
/// PDUs written per flush at most; the writer flushes whenever its queue is empty.
const WRITE_BATCH: usize = 256;
/// How long the sessions together wait for their unbind_resp at the end.
const UNBIND_TIMEOUT: Duration = Duration::from_secs(2);
/// How early a paced send may leave (see `generate`).
const TIMER_SLACK: Duration = Duration::from_millis(1);
/// Connecting and binding each wait at most this long.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The SMPP server, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub smpp: String,
    #[arg(long)]
    pub system_id: String,
    #[arg(long, env = "OTPGW_BENCH_PASSWORD", hide_env_values = true)]
    pub password: String,
}

#[derive(Debug, Clone, Args)]
pub struct Load {
    /// Transceiver sessions to bind.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub binds: u32,
    /// Messages in flight per session (sent, reply not yet received).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub window: u32,
    /// Messages per second over all sessions, or `open` (as fast as the windows allow).
    #[arg(long, default_value = "open")]
    pub rate: String,
    /// How long to send (30s, 2m, …). Without it or --count: 30s.
    #[arg(long, conflicts_with = "count")]
    pub duration: Option<String>,
    /// How many messages to send.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub count: Option<u64>,
    /// The short code the messages go to.
    #[arg(long, default_value = "30003303")]
    pub to: String,
    /// A message without its reply after this long counts as a timeout (its card is
    /// not used again in this run).
    #[arg(long, default_value = "10s")]
    pub timeout: String,
}

#[derive(Debug, Clone, Args)]
pub struct CardSource {
    /// Fixture cards from a `pan,msisdn` CSV file. Numbers are normalised as the
    /// gateway does (national ones get --country-code), since replies are matched on
    /// the number the server sends back.
    #[arg(long, value_name = "FILE", group = "card_source")]
    pub cards: Option<std::path::PathBuf>,
    /// Generate this many Luhn-valid cards on distinct MSISDNs and enroll them through
    /// the admin API (--http, --admin-key).
    #[arg(long, value_name = "N", group = "card_source", requires_all = ["http", "admin_key"])]
    pub enroll: Option<usize>,
    /// Generate this many cards and enroll none: for a server that answers any number
    /// (`otpgw bench transport`).
    #[arg(long, value_name = "N", group = "card_source")]
    pub fake_cards: Option<usize>,
    /// The country code for national numbers in --cards.
    #[arg(long, default_value = "98")]
    pub country_code: String,
    /// Generated MSISDNs start with these digits and have 12 digits in all.
    #[arg(long, default_value = "98912")]
    pub from_prefix: String,
    /// The gateway's HTTP base URL (http://127.0.0.1:8080).
    #[arg(long)]
    pub http: Option<String>,
    /// An admin API key, to enroll the fixture cards.
    #[arg(long, env = "OTPGW_BENCH_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
}

impl CardSource {
    pub async fn load(&self, quiet: bool) -> Result<Vec<Card>> {
        if let Some(path) = &self.cards {
            return cards::read_csv(path, &self.country_code);
        }
        if let Some(n) = self.fake_cards {
            return cards::generate(n, &self.from_prefix);
        }
        let Some(n) = self.enroll else {
            bail!("give --cards FILE, --enroll N (with --http and --admin-key) or --fake-cards N");
        };
        let (Some(http), Some(key)) = (&self.http, &self.admin_key) else {
            bail!("--enroll needs --http and --admin-key");
        };
        let cards = cards::generate(n, &self.from_prefix)?;
        cards::enroll(http, key, &cards, quiet).await?;
        Ok(cards)
    }
}

#[derive(Debug, Clone, Args)]
pub struct SmsArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub load: Load,
    #[command(flatten)]
    pub cards: CardSource,
    #[command(flatten)]
    pub out: Output,
}

pub async fn run(args: SmsArgs, stop: CancellationToken) -> Result<()> {
    let cards = args.cards.load(args.out.quiet).await?;
    let outcome = drive(&args.target, &args.load, cards, args.out.quiet, stop).await?;
    output::finish(&outcome.report, &args.out)
}

/// What a run leaves: the report, and per card the last code it received (kept in
/// memory for `bench verify`, never printed).
pub struct Outcome {
    pub report: Report,
    pub codes: Vec<Option<String>>,
}

enum State {
    Idle,
    Waiting {
        scheduled: Instant,
        sent: Instant,
        session: usize,
    },
    /// Timed out: its late reply must not be credited to a new request.
    Retired,
}

struct Slot {
    state: State,
    generation: u32,
    code: Option<String>,
}

enum Done {
    Code(String),
    NoCode,
    Error(String),
    Timeout,
}

/// What the sessions share: the cards, their slots, the free-card pool and the
/// per-session windows.
struct Shared {
    cards: Vec<Card>,
    by_msisdn: HashMap<String, usize>,
    slots: Vec<Mutex<Slot>>,
    free_tx: async_channel::Sender<usize>,
    free_rx: async_channel::Receiver<usize>,
    windows: Vec<Semaphore>,
    /// How many generations fit in a sequence number beside the card index.
    generations: u32,
    report: Mutex<Report>,
    sent: AtomicU64,
    submit_ok: AtomicU64,
    start: Instant,
    last_done: Mutex<Instant>,
    timeout: Duration,
    bar: ProgressBar,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not hide the report.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `EsmeRthrottled` → `ESME_RTHROTTLED`, the spec's spelling.
pub fn status_name(status: CommandStatus) -> String {
    let debug = format!("{status:?}");
    match debug.strip_prefix("Esme") {
        Some(rest) => format!("ESME_{}", rest.to_uppercase()),
        None => format!("status_{:#x}", u32::from(status)),
    }
}

/// The 7-digit code in a reply text, if there is exactly one.
fn code_in(text: &str) -> Option<String> {
    let mut found = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| s.len() == otpgw_rules::codes::CODE_DIGITS);
    let code = found.next()?;
    found.next().is_none().then(|| code.to_owned())
}

impl Shared {
    fn seq(&self, idx: usize, generation: u32) -> u32 {
        let n = self.cards.len() as u32;
        1 + idx as u32 + n * (generation % self.generations)
    }

    /// The card and generation a sequence number names, if it is one of ours.
    fn card_of(&self, seq: u32) -> Option<(usize, u32)> {
        if seq == 0 || seq >= CONTROL_SEQ {
            return None;
        }
        let n = self.cards.len() as u32;
        let x = seq - 1;
        Some(((x % n) as usize, x / n))
    }

    /// Ends the request in flight on card `idx` (of `generation`, when known). False
    /// when there is none: a late or stray answer.
    fn complete(&self, idx: usize, generation: Option<u32>, done: Done) -> bool {
        let Some(slot) = self.slots.get(idx) else {
            return false;
        };
        let (scheduled, session) = {
            let mut slot = lock(slot);
            let current = slot.generation % self.generations;
            let (scheduled, session) = match slot.state {
                State::Waiting {
                    scheduled, session, ..
                } if generation.is_none_or(|g| g == current) => (scheduled, session),
                _ => return false,
            };
            slot.generation = slot.generation.wrapping_add(1);
            slot.state = if matches!(done, Done::Timeout) {
                State::Retired
            } else {
                State::Idle
            };
            if let Done::Code(code) = &done {
                slot.code = Some(code.clone());
            }
            (scheduled, session)
        };
        let now = Instant::now();
        {
            let mut r = lock(&self.report);
            match &done {
                Done::Code(_) => {
                    r.count("replies_with_code", 1);
                    r.latency.record(
                        scheduled.saturating_duration_since(self.start),
                        now - scheduled,
                    );
                }
                Done::NoCode => r.count("replies_without_code", 1),
                Done::Error(kind) => r.error(kind.clone()),
                Done::Timeout => r.error("timeout"),
            }
        }
        *lock(&self.last_done) = now;
        if !matches!(done, Done::Timeout) {
            // Capacity is the number of cards: never full.
            let _ = self.free_tx.try_send(idx);
        }
        if let Some(w) = self.windows.get(session) {
            w.add_permits(1);
        }
        self.bar.inc(1);
        true
    }

    /// Times out requests older than the timeout; returns how many are in flight.
    fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut waiting = 0;
        for (idx, slot) in self.slots.iter().enumerate() {
            let expired = match lock(slot).state {
                State::Waiting { sent, .. } => {
                    waiting += 1;
                    now.duration_since(sent) > self.timeout
                }
                _ => false,
            };
            if expired && self.complete(idx, None, Done::Timeout) {
                waiting -= 1;
            }
        }
        waiting
    }
}

/// The send plan every session's generator draws tickets from.
struct Plan {
    next: AtomicU64,
    count: Option<u64>,
    /// At a target rate: the time between two scheduled sends.
    interval: Option<Duration>,
    end: Option<Instant>,
}

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
    let start = Instant::now();
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

    let mut report = std::mem::take(&mut *lock(&shared.report));
    report.interrupted = interrupted;
    report.elapsed = lock(&shared.last_done).saturating_duration_since(start);
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

type Halves = (
    FramedRead<OwnedReadHalf, SmppCodec>,
    FramedWrite<OwnedWriteHalf, SmppCodec>,
);

async fn bind_all(target: &Target, binds: usize) -> Result<Vec<Halves>> {
    let system_id = COctetString::from_str(&target.system_id)
        .map_err(|_| anyhow::anyhow!("--system-id must be 1 to 15 ASCII characters"))?;
    let password = COctetString::from_str(&target.password)
        .map_err(|_| anyhow::anyhow!("--password must be 1 to 8 ASCII characters"))?;
    let mut out = Vec::with_capacity(binds);
    for i in 0..binds {
        let stream = tokio::time::timeout(SETUP_TIMEOUT, TcpStream::connect(&target.smpp))
            .await
            .with_context(|| format!("connecting to {} timed out", target.smpp))?
            .with_context(|| format!("Failed to connect to {}", target.smpp))?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        let mut read = FramedRead::new(r, SmppCodec::new(MAX_PDU));
        let mut write = FramedWrite::new(w, SmppCodec::new(MAX_PDU));
        let bind = BindTransceiver::builder()
            .system_id(system_id.clone())
            .password(password.clone())
            .interface_version(InterfaceVersion::Smpp3_4)
            .build();
        let seq = CONTROL_SEQ + 2 + i as u32;
        write
            .send(Command::new(CommandStatus::EsmeRok, seq, bind))
            .await
            .map_err(|e| anyhow::anyhow!("sending bind_transceiver: {e}"))?;
        let resp = tokio::time::timeout(SETUP_TIMEOUT, async {
            while let Some(frame) = read.next().await {
                if let Frame::Command(cmd) = frame? {
                    if cmd.id() == CommandId::BindTransceiverResp
                        || cmd.id() == CommandId::GenericNack
                    {
                        return Ok::<_, std::io::Error>(Some(cmd));
                    }
                }
            }
            Ok(None)
        })
        .await
        .with_context(|| format!("no bind_transceiver_resp from {} in time", target.smpp))??;
        let Some(resp) = resp else {
            bail!("{} closed the connection during the bind", target.smpp);
        };
        if resp.status() != CommandStatus::EsmeRok {
            bail!(
                "bind {} of {binds} refused by {}: {} ({:#010x})",
                i + 1,
                target.smpp,
                status_name(resp.status()),
                u32::from(resp.status())
            );
        }
        out.push((read, write));
    }
    Ok(out)
}

async fn write_loop(
    mut sink: FramedWrite<OwnedWriteHalf, SmppCodec>,
    mut rx: mpsc::Receiver<Command>,
) -> Result<()> {
    while let Some(cmd) = rx.recv().await {
        sink.feed(cmd).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        // Whatever else is queued goes out in the same write.
        let mut n = 1;
        while n < WRITE_BATCH {
            match rx.try_recv() {
                Ok(cmd) => sink.feed(cmd).await.map_err(|e| anyhow::anyhow!("{e}"))?,
                Err(_) => break,
            }
            n += 1;
        }
        sink.flush().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// Reads one session until it ends. If the server ends it (closes, unbinds, or the
/// framing is lost) before our unbind, that is an error of the run, and the session's
/// generator stops: the other sessions take over its share.
async fn read_loop(
    shared: Arc<Shared>,
    stream: FramedRead<OwnedReadHalf, SmppCodec>,
    tx: mpsc::Sender<Command>,
    closed: CancellationToken,
    lost: CancellationToken,
) {
    if let Some(reason) = read_frames(&shared, stream, &tx, &closed).await {
        lock(&shared.report).error(reason);
        lost.cancel();
    }
}

/// `None` when the session ended as the tool asked, else why it ended.
async fn read_frames(
    shared: &Shared,
    mut stream: FramedRead<OwnedReadHalf, SmppCodec>,
    tx: &mpsc::Sender<Command>,
    closed: &CancellationToken,
) -> Option<String> {
    loop {
        let frame = tokio::select! {
            f = stream.next() => f,
            _ = closed.cancelled() => return None,
        };
        let cmd = match frame {
            None => return Some("connection_closed_by_server".into()),
            Some(Err(e)) => return Some(format!("io: {}", e.kind())),
            Some(Ok(Frame::Invalid(bad))) => {
                lock(&shared.report).error("invalid_pdu");
                if bad.wants_nack() {
                    let _ = tx.send(bad.generic_nack()).await;
                }
                if bad.framing_lost {
                    return Some("framing_lost".into());
                }
                continue;
            }
            Some(Ok(Frame::Command(cmd))) => cmd,
        };
        let seq = cmd.sequence_number();
        if matches!(cmd.id(), CommandId::SubmitSmResp | CommandId::GenericNack) {
            // Error responses have no body: match on the id, not the PDU.
            on_submit_resp(shared, seq, cmd.status());
            continue;
        }
        match cmd.pdu() {
            Some(p @ Pdu::DeliverSm(_)) => {
                let _ = tx
                    .send(pdu::message_resp(CommandId::DeliverSm, seq, ""))
                    .await;
                on_reply(shared, p);
            }
            Some(Pdu::EnquireLink) => {
                let _ = tx
                    .send(Command::new(
                        CommandStatus::EsmeRok,
                        seq,
                        Pdu::EnquireLinkResp,
                    ))
                    .await;
            }
            Some(Pdu::Unbind) => {
                let _ = tx
                    .send(Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp))
                    .await;
                return Some("unbound_by_server".into());
            }
            // The answer to our unbind at the end of the run.
            Some(Pdu::UnbindResp) => return None,
            _ => {}
        }
    }
}

fn on_submit_resp(shared: &Shared, seq: u32, status: CommandStatus) {
    if status == CommandStatus::EsmeRok {
        shared.submit_ok.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let name = status_name(status);
    let credited = shared
        .card_of(seq)
        .is_some_and(|(idx, g)| shared.complete(idx, Some(g), Done::Error(name.clone())));
    if !credited {
        // Still an error the server returned; it just ended no request of ours.
        lock(&shared.report).error(name);
    }
}

fn on_reply(shared: &Shared, p: &Pdu) {
    let Some(msg) = pdu::message(p) else { return };
    if msg.receipt {
        lock(&shared.report).count("delivery_receipts", 1);
        return;
    }
    let Some(&idx) = shared.by_msisdn.get(&msg.destination) else {
        lock(&shared.report).count("replies_to_unknown_numbers", 1);
        return;
    };
    let done = match code_in(&msg.text) {
        Some(code) => Done::Code(code),
        None => Done::NoCode,
    };
    if !shared.complete(idx, None, done) {
        lock(&shared.report).count("late_replies", 1);
    }
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
async fn generate(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        assert_eq!(
            status_name(CommandStatus::EsmeRthrottled),
            "ESME_RTHROTTLED"
        );
        assert_eq!(status_name(CommandStatus::EsmeRbindfail), "ESME_RBINDFAIL");
        assert_eq!(
            code_in("Your code: 1234567 (60 s)").as_deref(),
            Some("1234567")
        );
        assert_eq!(code_in("send 4321 to 30003303"), None);
        assert_eq!(code_in("1234567 7654321"), None);
        assert!(parse_rate("open").unwrap().is_none());
        assert_eq!(parse_rate("500").unwrap(), Some(500.0));
        assert!(parse_rate("0").is_err());
    }
}
