//! The card system's file, as `otpgw card import` reads it from disk and
//! `POST /v1/cards/import` from a request body: CSV with a header line naming
//! `pan` and `msisdn` (and optionally `language`), or JSON lines with those keys,
//! chosen by the first byte (`{` is JSON). Lines come out a batch at a time, so a
//! file of millions of cards never sits in memory; a bad line is set aside with its
//! line number and a reason that never quotes it (it may hold a card number).

use std::io::{BufRead, BufReader, Read};

use crate::core::ImportLine;

/// How much of a line is read at most: a card line is under 100 bytes, so anything
/// far longer is not a card line (and must not fill memory).
pub const MAX_LINE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum CardFileError {
    #[error("failed to read the file: {0}")]
    Read(#[from] std::io::Error),
    #[error(
        "the first line must be a CSV header naming the columns pan and msisdn \
         (and optionally language), or the file JSON lines"
    )]
    Header,
}

/// A bad line: its number in the file and why.
pub type Rejected = (u64, String);

/// The file's lines, one batch at a time.
pub struct CardFile(Lines);

enum Lines {
    Csv {
        reader: csv::Reader<Box<dyn Read + Send>>,
        columns: (usize, usize, Option<usize>),
    },
    Json {
        reader: BufReader<Box<dyn Read + Send>>,
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

impl CardFile {
    /// Reads the first bytes to tell CSV from JSON lines, and a CSV file's header.
    pub fn open(input: Box<dyn Read + Send>) -> Result<Self, CardFileError> {
        let mut reader = BufReader::new(input);
        let first = reader.fill_buf()?;
        let json = first
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{');
        let reader: Box<dyn Read + Send> = Box::new(reader);
        if json {
            return Ok(Self(Lines::Json {
                reader: BufReader::new(reader),
                line: 0,
            }));
        }
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(true)
            .from_reader(reader);
        let header = match csv.headers() {
            Ok(h) => h.clone(),
            Err(e) if e.is_io_error() => return Err(into_io(e).into()),
            Err(_) => return Err(CardFileError::Header),
        };
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
        };
        let language = find("language");
        let (Some(pan), Some(msisdn)) = (find("pan"), find("msisdn")) else {
            return Err(CardFileError::Header);
        };
        Ok(Self(Lines::Csv {
            reader: csv,
            columns: (pan, msisdn, language),
        }))
    }

    /// Up to `n` lines; bad ones go to `rejected`. Empty at the end of the file.
    pub fn next_batch(
        &mut self,
        n: usize,
        rejected: &mut Vec<Rejected>,
    ) -> Result<Vec<ImportLine>, CardFileError> {
        match &mut self.0 {
            Lines::Csv { reader, columns } => csv_batch(reader, *columns, n, rejected),
            Lines::Json { reader, line } => json_batch(reader, line, n, rejected),
        }
    }
}

fn into_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        _ => std::io::Error::other("not a CSV file"),
    }
}

fn csv_batch(
    reader: &mut csv::Reader<Box<dyn Read + Send>>,
    columns: (usize, usize, Option<usize>),
    n: usize,
    rejected: &mut Vec<Rejected>,
) -> Result<Vec<ImportLine>, CardFileError> {
    let mut out = Vec::with_capacity(n);
    let mut record = csv::StringRecord::new();
    while out.len() < n {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) if e.is_io_error() => return Err(into_io(e).into()),
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
    Ok(out)
}

fn json_batch(
    reader: &mut BufReader<Box<dyn Read + Send>>,
    line: &mut u64,
    n: usize,
    rejected: &mut Vec<Rejected>,
) -> Result<Vec<ImportLine>, CardFileError> {
    let mut out = Vec::with_capacity(n);
    let mut buf = Vec::new();
    while out.len() < n {
        buf.clear();
        let read = reader
            .by_ref()
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)?;
        if read == 0 {
            break;
        }
        *line += 1;
        if read == MAX_LINE && buf.last() != Some(&b'\n') {
            rejected.push((*line, format!("longer than {MAX_LINE} bytes")));
            // The rest of the over-long line is skipped, a bounded piece at a time.
            loop {
                buf.clear();
                let more = reader
                    .by_ref()
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut buf)?;
                if more == 0 || buf.last() == Some(&b'\n') {
                    break;
                }
            }
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
            Err(_) => rejected.push((*line, "not a JSON object with pan and msisdn".to_owned())),
        }
    }
    Ok(out)
}
