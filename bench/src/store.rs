//! `otpgw bench store`: the write path alone. It builds a core on the given database
//! (the same `Issue::sms` the SMPP sessions call: card look-up, limits, then the
//! store's `issue_code`, which commits before it returns), enrolls fixture cards, then
//! issues `--count` codes from `--concurrency` tasks. No sockets, no SMPP: what is left
//! is the database and the core.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use futures::StreamExt;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cards;
use crate::output::{self, Output};
use crate::report::{lock, Report};
use otpgw::config::{DatabaseSettings, LimitSettings, Rate, Secret, Settings};
use otpgw::core::{Inbound, ReplyPath, SystemClock};
use otpgw_rules::codes::{Keys, Pan};
use otpgw_rules::texts::ReplyKind;
use otpgw_rules::vocab::Channel;

#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// A scratch database (sqlite:///tmp/bench.db or postgres://…/bench): fixture cards
    /// are written into it.
    #[arg(long)]
    pub database: String,
    /// Codes to issue.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub count: u64,
    /// Tasks issuing codes at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Fixture cards to enroll (each task uses its own share, so no two tasks write
    /// one card at once).
    #[arg(long, default_value_t = 1000)]
    pub cards: usize,
    /// The pool size (the gateway's `database.max_connections`, default 10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=200))]
    pub max_connections: u32,
    /// Generated MSISDNs start with these digits.
    #[arg(long, default_value = "98913")]
    pub from_prefix: String,
    #[command(flatten)]
    pub out: Output,
}

/// Limits that never refuse: the run measures the store, not governor.
fn open_limits() -> LimitSettings {
    let wide = Rate {
        count: u32::MAX / 2,
        per_secs: 1,
    };
    LimitSettings {
        msisdn: vec![wide],
        card: wide,
        unknown_sender: wide,
        peer_tps: 0,
        global_per_second: 0,
        verify_per_key_per_second: 0,
        guard_max_failures: u32::MAX / 2,
        ..LimitSettings::default()
    }
}

pub async fn run(args: StoreArgs, stop: CancellationToken) -> Result<()> {
    let concurrency = args.concurrency as usize;
    if args.cards < concurrency {
        bail!("--cards must be at least --concurrency");
    }
    let keys = Keys::generate();
    let mut settings = Settings {
        database: DatabaseSettings {
            url: args.database.clone(),
            max_connections: args.max_connections,
            acquire_timeout_secs: 30,
            ..DatabaseSettings::default()
        },
        limits: open_limits(),
        ..Settings::default()
    };
    // Fresh keys for a scratch database: no key file is written beside it.
    settings.secrets.pan_key = Some(Secret::new(keys.pan_key_hex()));
    settings.secrets.code_key = Some(Secret::new(keys.code_key_hex()));
    let (core, store) = otpgw::app::build(&settings, Arc::new(SystemClock))
        .await
        .context("Failed to open the database")?;

    let fixtures = cards::generate(args.cards, &args.from_prefix)?;
    let bar = output::progress(Some(fixtures.len() as u64), "enroll", args.out.quiet);
    let mut enrolled = futures::stream::iter(&fixtures)
        .map(|c| {
            let core = core.clone();
            async move {
                let pan = Pan::parse(&c.pan).map_err(|_| anyhow::anyhow!("fixture card"))?;
                core.enroll.card(&pan, &c.msisdn, None, "bench").await?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(16);
    while let Some(r) = enrolled.next().await {
        r.context("enrolling a fixture card")?;
        bar.inc(1);
    }
    drop(enrolled);
    bar.finish_and_clear();

    let mut report = Report::new("store", "codes_issued");
    report.params.insert(
        "database",
        json!(if args.database.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        }),
    );
    report.params.insert("count", json!(args.count));
    report.params.insert("concurrency", json!(concurrency));
    report.params.insert("cards", json!(args.cards));
    report
        .params
        .insert("max_connections", json!(args.max_connections));
    let report = Arc::new(Mutex::new(report));
    let next = Arc::new(AtomicU64::new(0));
    let bar = output::progress(Some(args.count), "store", args.out.quiet);
    let start = Instant::now();
    let last = Arc::new(Mutex::new(start));
    let fixtures = Arc::new(fixtures);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (core, report, next, bar, last, fixtures, stop) = (
            core.clone(),
            report.clone(),
            next.clone(),
            bar.clone(),
            last.clone(),
            fixtures.clone(),
            stop.clone(),
        );
        let count = args.count;
        tasks.spawn(async move {
            // This task's cards: worker, worker + C, worker + 2C, …
            let mine: Vec<&cards::Card> =
                fixtures.iter().skip(worker).step_by(concurrency).collect();
            let mut turn = 0usize;
            while !stop.is_cancelled() {
                if next.fetch_add(1, Ordering::Relaxed) >= count {
                    break;
                }
                let Some(card) = mine.get(turn % mine.len()) else {
                    break;
                };
                turn += 1;
                let inbound = Inbound {
                    channel: Channel::Sms,
                    peer: "bench".into(),
                    from: card.msisdn.clone(),
                    text: card.last4().to_owned(),
                    path: ReplyPath::Local,
                };
                let t0 = Instant::now();
                let result =
                    tokio::time::timeout(Duration::from_secs(30), core.issue.sms(&inbound)).await;
                let now = Instant::now();
                let mut r = lock(&report);
                match result {
                    Ok(Ok(Some(reply))) if reply.kind == ReplyKind::Code => {
                        r.count("codes_issued", 1);
                        r.latency.record(t0 - start, now - t0);
                    }
                    Ok(Ok(Some(reply))) => r.error(format!("reply_{}", reply.kind.as_str())),
                    Ok(Ok(None)) => r.error("no_reply"),
                    Ok(Err(e)) => {
                        r.error(format!("core: {e}").chars().take(120).collect::<String>())
                    }
                    Err(_) => r.error("timeout"),
                }
                drop(r);
                *lock(&last) = now;
                bar.inc(1);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    bar.finish_and_clear();
    store.close().await;
    let mut report = Report::take(&report, start, &last, stop.is_cancelled());
    report.count("codes_issued", 0);
    output::finish(&report, &args.out)
}
