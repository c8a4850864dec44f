//! What every mode shares at its edges: the output options (`--json`, `--plot`,
//! `--quiet`), the progress bar while it runs, and printing the report at its end
//! (exit status 130 when Ctrl-C cut the run short).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::plot;
use crate::report::Report;

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

/// Prints the report and draws the plot if asked.
pub fn finish(report: &Report, out: &Output) -> Result<()> {
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
pub fn progress(len: Option<u64>, what: &str, quiet: bool) -> ProgressBar {
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
