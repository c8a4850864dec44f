//! `otpgw bench verify`: an `sms` phase collects one code per card, then `--connections`
//! HTTP clients post `POST /v1/verify {pan, code, request_id}` with them, each code
//! once. Codes live 60 s by default, so the verify phase follows at once. Latency is
//! per request (closed loop: each connection sends its next request after the answer).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::output::{self, Output};
use crate::report::{lock, Report};
use crate::sms::{self, Phase};

#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub phase: Phase,
    /// A verifier API key.
    #[arg(long, env = "OTPGW_BENCH_VERIFIER_KEY", hide_env_values = true)]
    pub key: String,
    /// HTTP connections verifying at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub connections: u32,
    #[command(flatten)]
    pub out: Output,
}

pub async fn run(mut args: VerifyArgs, stop: CancellationToken) -> Result<()> {
    let Some(http) = args.phase.cards.http.clone() else {
        bail!("verify needs --http");
    };
    if args.phase.cards.fake_cards.is_some() {
        bail!("verify needs enrolled cards: --enroll N or --cards FILE");
    }
    args.phase.target.cpu.check()?;
    let cards = args.phase.cards.load(args.out.quiet).await?;
    if args.phase.load.count.is_none() && args.phase.load.duration.is_none() {
        // One code per card: each is verified once.
        args.phase.load.count = Some(cards.len() as u64);
    }
    let pans: Vec<String> = cards.iter().map(|c| c.pan.clone()).collect();
    let phase = sms::drive(
        &args.phase.target,
        &args.phase.load,
        cards,
        args.out.quiet,
        stop.clone(),
    )
    .await?;
    if !args.out.quiet && !args.out.json {
        eprint!("{}", phase.report.text());
    }
    // (card number, code) pairs; never printed.
    let jobs: Vec<(String, String)> = pans
        .into_iter()
        .zip(phase.codes)
        .filter_map(|(pan, code)| code.map(|c| (pan, c)))
        .collect();
    if jobs.is_empty() {
        bail!("the sms phase brought back no code to verify");
    }

    let connections = args.connections as usize;
    let mut report = Report::new("verify", "requests_done");
    report.params.insert("http", json!(http));
    report.params.insert("connections", json!(connections));
    report.params.insert("codes", json!(jobs.len()));
    report.params.insert("sms_phase", phase.report.json());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .build()?;
    let url = format!("{}/v1/verify", http.trim_end_matches('/'));
    let run_id: u64 = rand::random();
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let report = Arc::new(Mutex::new(report));
    let bar = output::progress(Some(jobs.len() as u64), "verify", args.out.quiet);
    let meter = crate::cpu::Meter::start(&args.phase.target.cpu);
    let start = Instant::now();
    lock(&report).started = Some(start);
    let last = Arc::new(Mutex::new(start));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (client, url, key, jobs, next, report, bar, last, stop) = (
            client.clone(),
            url.clone(),
            args.key.clone(),
            jobs.clone(),
            next.clone(),
            report.clone(),
            bar.clone(),
            last.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            while !stop.is_cancelled() {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((pan, code)) = jobs.get(i) else { break };
                let body = json!({"pan": pan, "code": code, "request_id": format!("bench-{run_id:x}-{i}")});
                let t0 = Instant::now();
                let result = client.post(&url).bearer_auth(&key).json(&body).send().await;
                let outcome = match result {
                    Ok(resp) if resp.status().is_success() => match resp.json::<Value>().await {
                        Ok(v) => Ok(v),
                        Err(_) => Err("bad_body".to_owned()),
                    },
                    Ok(resp) => Err(format!("http_{}", resp.status().as_u16())),
                    Err(e) if e.is_timeout() => Err("timeout".to_owned()),
                    Err(_) => Err("connection".to_owned()),
                };
                let now = Instant::now();
                let mut r = lock(&report);
                match outcome {
                    Ok(v) => {
                        r.count("requests_done", 1);
                        r.latency.record(t0 - start, now - t0);
                        match (v["result"].as_str(), v["reason"].as_str()) {
                            (Some("approved"), _) => r.count("approved", 1),
                            (_, Some("invalid")) => r.count("rejected_invalid", 1),
                            (_, Some("expired")) => r.count("rejected_expired", 1),
                            (_, Some("used")) => r.count("rejected_used", 1),
                            (_, Some("locked")) => r.count("rejected_locked", 1),
                            _ => r.count("rejected_other", 1),
                        }
                    }
                    Err(kind) => r.error(kind),
                }
                drop(r);
                *lock(&last) = now;
                bar.inc(1);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    bar.finish_and_clear();
    let mut report = Report::take(&report, start, &last, stop.is_cancelled());
    report.cpu = meter.stop();
    report.count("requests_done", 0);
    report.count("approved", 0);
    output::finish(&report, &args.out).context("report")
}
