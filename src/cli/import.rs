//! `otpgw card import FILE` and `otpgw card export`: the bank's card base in and
//! out. Import streams the file (CSV with a header line `pan,msisdn[,language]`, or
//! JSON lines with those keys) in batches through the core's idempotent upsert,
//! draws a progress bar with rate and ETA on a terminal, lists bad lines on stderr
//! by line number (never their card number), and prints one JSON summary line.
//! Export writes every card without its number: id, last 4, the number's keyed
//! hash, phone, status, language.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use otpgw::cardfile::CardFile;
use otpgw::core::{Core, ImportReport, ImportRun};

/// Cards per page of the export's walk.
const EXPORT_PAGE: i64 = 5000;

fn progress(len: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    let template = "{spinner} [{elapsed_precise}] {wide_bar} {percent}% {msg} (ETA {eta})";
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// `otpgw card import`.
pub async fn import(core: &Core, file: &Path, initial_load: bool, batch: usize) -> Result<()> {
    let (input, len): (Box<dyn Read + Send>, Option<u64>) = if file == Path::new("-") {
        (Box::new(std::io::stdin()), None)
    } else {
        let f = File::open(file).with_context(|| format!("Failed to open {}", file.display()))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len)
    };
    let bar = progress(len);
    // Progress by bytes read: the reader counts them as the parser pulls.
    let counted = bar.wrap_read(input);
    let mut lines = CardFile::open(Box::new(counted))?;
    let started = std::time::Instant::now();
    let mut total = ImportReport::default();
    // Bad lines are printed batch by batch, not kept: a file of bad lines must not
    // fill memory.
    let mut rejected_count = 0usize;
    let mut run = ImportRun::default();
    let mut report_bad = |mut bad: Vec<(u64, String)>| -> Result<()> {
        bad.sort_unstable();
        rejected_count += bad.len();
        bar.suspend(|| {
            let mut err = std::io::stderr().lock();
            bad.iter()
                .try_for_each(|(line, why)| writeln!(err, "line {line}: {why}"))
        })?;
        Ok(())
    };
    loop {
        let mut rejected = Vec::new();
        let batch = lines.next_batch(batch, &mut rejected)?;
        if batch.is_empty() {
            report_bad(rejected)?;
            break;
        }
        let mut report = core
            .enroll
            .import(&mut run, &batch, initial_load, "cli:import")
            .await
            .with_context(|| {
                format!(
                    "Failed to store the lines from {} on; everything before is stored, and \
                     a rerun from the start finishes without duplicates",
                    batch[0].line
                )
            })?;
        rejected.append(&mut report.rejected);
        report_bad(rejected)?;
        total.add(report);
        let done = total.created + total.unchanged + total.updated;
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!("{done} cards, {rate:.0}/s"));
    }
    bar.finish_and_clear();
    let summary = serde_json::json!({
        "created": total.created,
        "unchanged": total.unchanged,
        "updated": total.updated,
        "rejected": rejected_count,
        "seconds": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
    });
    println!("{summary}");
    Ok(())
}

/// `otpgw card export`: CSV to `out` (or standard output).
pub async fn export(core: &Core, out: Option<PathBuf>) -> Result<()> {
    let sink: Box<dyn Write> =
        match &out {
            Some(path) => Box::new(File::create_new(path).with_context(|| {
                format!("Failed to create {} (it must not exist)", path.display())
            })?),
            None => Box::new(std::io::stdout().lock()),
        };
    let mut csv = csv::Writer::from_writer(std::io::BufWriter::new(sink));
    csv.write_record([
        "id",
        "last4",
        "pan_hash",
        "msisdn",
        "status",
        "language",
        "closed_at",
    ])?;
    let mut after = 0;
    loop {
        let page = core.backoffice.cards_after(after, EXPORT_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for c in &page {
            // A closed card's number hash is not kept in the record: it shows none.
            let hash = if c.closed_at.is_some() {
                ""
            } else {
                c.pan_hash.as_str()
            };
            csv.write_record([
                c.id.to_string().as_str(),
                &c.last4,
                hash,
                &c.msisdn,
                c.status.as_str(),
                c.language.map_or("", |l| l.as_str()),
                &c.closed_at.map_or(String::new(), |t| t.to_string()),
            ])?;
        }
    }
    csv.flush()?;
    Ok(())
}
