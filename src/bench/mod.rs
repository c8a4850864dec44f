//! `otpgw bench`: the load tool a telco engineer runs before routing traffic to this
//! gateway or any SMPP server, and the figures of BENCHMARKS.md.
//!
//! * `sms`       — N transceiver binds keep W customer messages in flight each, open or
//!   at a target rate, and time each one from its (scheduled) send to the code reply.
//! * `verify`    — an `sms` phase to collect codes, then `POST /v1/verify` with them.
//! * `transport` — an SMPP server that answers every submit_sm at once with a code: the
//!   transport limit of the client and the machine.
//! * `store`     — the write path alone: `Core::handle` on a database, no sockets.
//!
//! Every mode ends with a report (`report`): counts, errors by kind, throughput and
//! latency percentiles, as text or JSON, and Ctrl-C prints it for the part that ran.
//! It is a tool, so it uses `anyhow`; it prints counts only, never a card or a code.

mod cards;
mod plot;
mod report;
mod sms;
mod store;
mod transport;
mod verify;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

pub use cards::luhn_check_digit;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// SMPP load: customer messages in, code replies out, latency of each.
    Sms(sms::SmsArgs),
    /// Collect codes with an `sms` phase, then drive POST /v1/verify with them.
    Verify(verify::VerifyArgs),
    /// An SMPP server that binds anyone and answers every submit_sm at once with a
    /// submit_sm_resp and a deliver_sm carrying a fixed code (the transport limit).
    Transport(transport::TransportArgs),
    /// The write path alone: enroll fixture cards, then issue codes through the core.
    Store(store::StoreArgs),
}

/// Options every load mode shares.
#[derive(Debug, Clone, Args)]
pub struct Output {
    /// Print the report as one line of JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Draw latency over time (per-second p50, p99 and max) into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// No progress bar (it is drawn only on a terminal anyway).
    #[arg(long)]
    pub quiet: bool,
}

/// Runs one bench mode to its end, or until Ctrl-C.
pub async fn run(command: BenchCommand) -> Result<()> {
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
    }
}

/// Prints the report and draws the plot if asked.
fn finish(report: &report::Report, out: &Output) -> Result<()> {
    report.print(out.json);
    if let Some(path) = &out.plot {
        plot::draw(report, path)?;
        eprintln!("plot written to {}", path.display());
    }
    if report.interrupted {
        // A partial report must not pass for a complete one in a script.
        use std::io::Write;
        let _ = std::io::stdout().flush();
        std::process::exit(130);
    }
    Ok(())
}

/// A progress bar on stderr, drawn only on a terminal (indicatif hides it elsewhere);
/// a counter when the total is not known.
fn progress(len: Option<u64>, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    let template = if len.is_some() {
        "{prefix:>8} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} {msg}"
    } else {
        "{prefix:>8} [{elapsed_precise}] {pos} done {per_sec} {msg}"
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(what.to_owned());
    bar
}

/// "30s", "500ms", "2m", "1h" or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("not a duration: {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("not a duration: {s:?} (use 500ms, 30s, 2m or 1h)"),
    };
    if !(0.0..=86_400.0).contains(&secs) {
        bail!("duration {s:?} is out of range (at most a day)");
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("9999h").is_err());
    }
}
