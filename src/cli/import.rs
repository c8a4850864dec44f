//! `otpgw card import FILE` and `otpgw card export`: the bank's card base in and
//! out. Import streams the file (CSV with a header line `pan,msisdn[,language]`, or
//! JSON lines with those keys) in batches through the core's idempotent upsert,
//! draws a progress bar with rate and ETA on a terminal, lists bad lines on stderr
//! by line number (never their card number), and prints one JSON summary line.
//! Export writes every card without its number: id, last 4, the number's keyed
//! hash, phone, status, language.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use otpgw::core::{Core, ImportLine, ImportReport, IMPORT_BATCH};

/// How much of a line is read at most: a card line is under 100 bytes, so anything
/// far longer is not a card line (and must not fill memory).
const MAX_LINE: usize = 4096;

/// Cards per page of the export's walk.
const EXPORT_PAGE: i64 = 5000;

/// The file's lines, one batch at a time: CSV or JSON lines, chosen by the first
/// byte (`{` is JSON).
enum Lines {
    Csv {
        reader: csv::Reader<Box<dyn Read>>,
        columns: (usize, usize, Option<usize>),
    },
    Json {
        reader: BufReader<Box<dyn Read>>,
        line: u64,
    },
}

#[derive(serde::Deserialize)]
struct JsonLine {
    pan: serde_json::Value,
    msisdn: serde_json::Value,
    #[serde(default)]
    language: Option<String>,
}

/// A JSON value as the text of a field: card systems write numbers as numbers.
fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

impl Lines {
    fn open(input: Box<dyn Read>) -> Result<Self> {
        let mut reader = BufReader::new(input);
        let first = reader.fill_buf().context("Failed to read the file")?;
        let json = first
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{');
        let reader: Box<dyn Read> = Box::new(reader);
        if json {
            return Ok(Self::Json {
                reader: BufReader::new(reader),
                line: 0,
            });
        }
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(reader);
        let header = csv
            .headers()
            .context("Failed to read the CSV header line")?
            .clone();
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
        };
        let language = find("language");
        let (Some(pan), Some(msisdn)) = (find("pan"), find("msisdn")) else {
            bail!("the first line must be a CSV header naming the columns pan and msisdn (and optionally language), or the file JSON lines");
        };
        Ok(Self::Csv {
            reader: csv,
            columns: (pan, msisdn, language),
        })
    }

    /// Up to `n` lines; bad ones go to `rejected`. Empty at the end of the file.
    fn next_batch(
        &mut self,
        n: usize,
        rejected: &mut Vec<(u64, String)>,
    ) -> Result<Vec<ImportLine>> {
        let mut out = Vec::with_capacity(n);
        match self {
            Self::Csv { reader, columns } => {
                let mut record = csv::StringRecord::new();
                while out.len() < n {
                    let line = reader.position().line();
                    match reader.read_record(&mut record) {
                        Ok(false) => break,
                        Ok(true) => {}
                        Err(e) if e.is_io_error() => {
                            return Err(e).context("Failed to read the file")
                        }
                        Err(_) => {
                            rejected.push((line, "not a CSV line".to_owned()));
                            continue;
                        }
                    }
                    if record.iter().all(str::is_empty) {
                        continue;
                    }
                    let field = |i: usize| record.get(i).map(str::to_owned);
                    let (Some(pan), Some(msisdn)) = (field(columns.0), field(columns.1)) else {
                        rejected.push((line, "too few fields".to_owned()));
                        continue;
                    };
                    out.push(ImportLine {
                        line,
                        pan,
                        msisdn,
                        language: columns.2.and_then(field),
                    });
                }
            }
            Self::Json { reader, line } => {
                let mut buf = Vec::new();
                while out.len() < n {
                    buf.clear();
                    let read = reader
                        .by_ref()
                        .take(MAX_LINE as u64)
                        .read_until(b'\n', &mut buf)
                        .context("Failed to read the file")?;
                    if read == 0 {
                        break;
                    }
                    *line += 1;
                    if read == MAX_LINE && buf.last() != Some(&b'\n') {
                        rejected.push((*line, format!("longer than {MAX_LINE} bytes")));
                        // The rest of the over-long line is skipped.
                        let mut rest = Vec::new();
                        reader
                            .read_until(b'\n', &mut rest)
                            .context("Failed to read the file")?;
                        continue;
                    }
                    if buf.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match serde_json::from_slice::<JsonLine>(&buf) {
                        Ok(j) => out.push(ImportLine {
                            line: *line,
                            pan: text(&j.pan),
                            msisdn: text(&j.msisdn),
                            language: j.language,
                        }),
                        // serde's message may quote the value (a card number): not shown.
                        Err(_) => rejected
                            .push((*line, "not a JSON object with pan and msisdn".to_owned())),
                    }
                }
            }
        }
        Ok(out)
    }
}

fn progress(len: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    let template = "{spinner} [{elapsed_precise}] {wide_bar} {percent}% {msg} (ETA {eta})";
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// `otpgw card import`.
pub async fn import(core: &Core, file: &Path, initial_load: bool) -> Result<()> {
    let (input, len): (Box<dyn Read>, Option<u64>) = if file == Path::new("-") {
        (Box::new(std::io::stdin()), None)
    } else {
        let f = File::open(file).with_context(|| format!("Failed to open {}", file.display()))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len)
    };
    let bar = progress(len);
    // Progress by bytes read: the reader counts them as the parser pulls.
    let counted = bar.wrap_read(input);
    let mut lines = Lines::open(Box::new(counted))?;
    let started = std::time::Instant::now();
    let mut total = ImportReport::default();
    // Bad lines are printed batch by batch, not kept: a file of bad lines must not
    // fill memory.
    let mut rejected_count = 0usize;
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
        let batch = lines.next_batch(IMPORT_BATCH, &mut rejected)?;
        if batch.is_empty() {
            report_bad(rejected)?;
            break;
        }
        let mut report = core
            .enroll
            .import(&batch, initial_load, "cli:import")
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
