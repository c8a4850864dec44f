//! `otpgw-bench`, which `otpgw bench` runs: the load tool a telco engineer runs before
//! routing traffic to this gateway or any SMPP server, and the figures of BENCHMARKS.md.
//! This file is its command line: the modes, the runtime and Ctrl-C.
//!
//! * `sms`       — N transceiver binds keep W customer messages in flight each, open or
//!   at a target rate, and time each one from its (scheduled) send to the code reply.
//! * `verify`    — an `sms` phase to collect codes, then `POST /v1/verify` with them.
//! * `transport` — an SMPP server that answers every submit_sm at once with a code: the
//!   transport limit of the client and the machine.
//! * `store`     — the write path alone: `Issue::sms` on a database, no sockets.
//! * `cardfile`  — writes a generated card file for an import benchmark.
//!
//! Every mode ends with a report (`report`): counts, errors by kind, throughput and
//! latency percentiles, as text or JSON, and Ctrl-C prints it for the part that ran.
//! It uses the gateway library's public API only (`otpgw::smpp::{codec, pdu}`, and
//! `otpgw::app::build` for `store`). It is a tool, so it uses `anyhow`; it prints
//! counts only, never a card or a code.

mod cardfile;
mod cards;
mod cpu;
mod duration;
mod output;
mod plot;
mod report;
mod sms;
mod store;
mod transport;
mod verify;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

// The allocator the tool had while it ran inside the `otpgw` executable, so that its
// figures stay comparable with those in BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// `otpgw bench` runs this executable with `otpgw bench` as its program name (argv[0]),
// which clap takes for the usage lines: they read as the user typed the command.
#[derive(Debug, Parser)]
#[command(
    name = "otpgw-bench",
    version,
    about = "Load tools: SMPP and verify load against a gateway (or any SMPP server), an \
             instant SMPP server (the transport limit), and the store's write path alone."
)]
struct Cli {
    /// Ignored: the tool reads no gateway configuration. Accepted because `otpgw bench`
    /// always took otpgw's global `--config`.
    #[arg(
        long = "config",
        short = 'c',
        global = true,
        hide = true,
        value_name = "FILE"
    )]
    _config: Option<PathBuf>,
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// SMPP load: customer messages in, code replies out, latency of each.
    Sms(sms::SmsArgs),
    /// Collect codes with an `sms` phase, then drive POST /v1/verify with them.
    Verify(verify::VerifyArgs),
    /// An SMPP server that binds anyone and answers every submit_sm at once with a
    /// submit_sm_resp and a deliver_sm carrying a fixed code (the transport limit).
    Transport(transport::TransportArgs),
    /// The write path alone: enroll fixture cards, then issue codes through the core.
    Store(store::StoreArgs),
    /// Write a generated card file (`pan,msisdn,language`) for an import benchmark.
    Cardfile(cardfile::CardFileArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // No gateway configuration; warnings only (the core's, under `store`).
    let log = otpgw::config::LogSettings {
        level: "warn".into(),
        ..Default::default()
    };
    otpgw::telemetry::init_logging(&log, false);
    let runtime = tokio::runtime::Runtime::new().context("Failed to start the async runtime")?;
    runtime.block_on(run(cli.command))
}

/// Runs one bench mode to its end, or until Ctrl-C.
async fn run(command: BenchCommand) -> Result<()> {
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: stopping and printing the partial report");
            on_signal.cancel();
        }
    });
    match command {
        BenchCommand::Sms(args) => sms::run(args, stop).await,
        BenchCommand::Verify(args) => verify::run(args, stop).await,
        BenchCommand::Transport(args) => transport::run(args, stop).await,
        BenchCommand::Store(args) => store::run(args, stop).await,
        BenchCommand::Cardfile(args) => cardfile::run(args),
    }
}
