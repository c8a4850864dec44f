//! Logs and metrics. Logs go to stdout through `tracing`, human-readable or JSON
//! (`log.format`); metrics through the `metrics` facade into a Prometheus recorder
//! that `/metrics` renders, each metric with its HELP text (`telemetry/help.rs`).
//!
//! Redaction is by construction first: card numbers, codes and secrets are held in
//! types whose `Debug` hides them (`Pan`, `Code`, `Secret`, `Reply`), no handler logs
//! a request body, and no event carries message text. Then every log line passes one
//! redaction point, [`redact`], which masks anything shaped like a card number or a
//! code, in case a future log line forgets. `tests/` greps the logs of full runs.

mod help;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Logs go to stdout for `serve` (where a supervisor collects them) and to stderr for
/// the other commands, whose stdout is their JSON result.
/// `Debug` for a value that carries a secret (a code in a text, a session id):
/// only the named fields print, and the output says that more exists.
macro_rules! debug_only {
    ($ty:ident { $($field:ident),+ }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &self.$field))+
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use debug_only;

pub fn init_logging(settings: &LogSettings, to_stdout: bool) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = EnvFilter::try_from_env("OTPGW_LOG")
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = if to_stdout {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    } else {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
    };
    // The filter sits in a reload layer, so `otpgw reload` can change the level.
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(move || -> Redacting {
            if to_stdout {
                Redacting(Box::new(std::io::stdout()))
            } else {
                Redacting(Box::new(std::io::stderr()))
            }
        });
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests running commands in-process) is harmless: keep the first.
    let first = match settings.format {
        LogFormat::Json => registry
            .with(fmt.json().flatten_event(true).with_current_span(true))
            .try_init(),
        LogFormat::Text => registry.with(fmt).try_init(),
    };
    if first.is_ok() {
        let _ = LOG_FILTER.set(handle);
    }
}

static LOG_FILTER: std::sync::OnceLock<
    tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>,
> = std::sync::OnceLock::new();

/// What a reload did with `log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelChange {
    Applied,
    /// `OTPGW_LOG` is set: it wins over the file, now as at start.
    KeptForEnvironment,
}

/// Sets the log filter to a reloaded `log.level` (checked when the file was
/// loaded), unless `OTPGW_LOG` chose the filter at start.
pub fn set_log_level(level: &str) -> Result<LevelChange, String> {
    if std::env::var_os("OTPGW_LOG").is_some() {
        return Ok(LevelChange::KeptForEnvironment);
    }
    let filter = EnvFilter::try_new(level).map_err(|e| format!("log.level: {e}"))?;
    match LOG_FILTER.get() {
        Some(handle) => handle.reload(filter).map_err(|e| e.to_string())?,
        None => return Err("logging was not set up by this process".into()),
    }
    Ok(LevelChange::Applied)
}

/// The one writer every log line goes through (tracing's formatter writes each event
/// with a single `write`).
pub struct Redacting(Box<dyn std::io::Write>);

impl std::io::Write for Redacting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(redact(text).as_bytes())?,
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Masks what looks like a code (7 digits) or a card number (13 to 19 digits, in any
/// script, possibly grouped with single spaces or dashes: `6037-9900-0000-4321`).
/// Digits glued to letters (hex ids) are left alone, and so are numbers that are the
/// value of a field named as an id, a time or a count (`code_id=1234567`,
/// `"at":1795238911512`): those are never secrets, and masking them helps nobody.
/// A masked JSON number becomes the string `"[redacted]"`, so a JSON line stays JSON.
pub fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    let is_digit = |c: char| otpgw_parsers::digits::digit_value(c).is_some();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(text.len(), |c| c.0);
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < chars.len() {
        if !is_digit(chars[i].1) {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = 0;
        let mut end;
        // A run of digit groups joined by single separators; the digits count, and
        // the run ends at the last digit.
        loop {
            while i < chars.len() && is_digit(chars[i].1) {
                i += 1;
                digits += 1;
            }
            end = i;
            let gap = separator_at(&chars, i);
            let joined = gap > 0 && chars.get(i + gap).is_some_and(|c| is_digit(c.1));
            if !joined {
                break;
            }
            i += gap;
        }
        let grouped = end - start != digits;
        // Grouped digits that are not card-sized are dates, times, phone numbers:
        // judge each group on its own (rescan from the first group's end).
        if grouped && !(13..=19).contains(&digits) {
            i = start;
            while i < chars.len() && is_digit(chars[i].1) {
                i += 1;
            }
            end = i;
            digits = end - start;
        }
        let before = start.checked_sub(1).map(|j| chars[j].1);
        let after = chars.get(end).map(|c| c.1);
        let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
        if !(digits == 7 || (13..=19).contains(&digits)) || glued(before) || glued(after) {
            continue;
        }
        let key = field_name(&text[..byte_at(start)]);
        let grouped = end - start != digits;
        if !grouped && key.is_some_and(|k| not_secret(k.name)) {
            continue;
        }
        let o = out.get_or_insert_with(String::new);
        o.push_str(&text[copied..byte_at(start)]);
        if key.is_some_and(|k| k.json_number) {
            o.push_str("\"[redacted]\"");
        } else {
            o.push_str("[redacted]");
        }
        copied = byte_at(end);
    }
    match out {
        None => std::borrow::Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            std::borrow::Cow::Owned(o)
        }
    }
}

/// The length in characters of a separator between digit groups at `i`: a space, a
/// dash, `+` or `%20` (a space in a URL or form), `.` or `_`; 0 for none.
fn separator_at(chars: &[(usize, char)], i: usize) -> usize {
    let at = |k: usize| chars.get(i + k).map(|c| c.1);
    match at(0) {
        Some(' ' | '-' | '+' | '.' | '_') => 1,
        Some('%') if at(1) == Some('2') && at(2) == Some('0') => 3,
        _ => 0,
    }
}

#[derive(Clone, Copy)]
struct Field<'a> {
    name: &'a str,
    /// The value is a bare JSON number (`"name":123`), not text.
    json_number: bool,
}

/// The field whose value starts right after `prefix`: `name=` (text logs) or
/// `"name":` (JSON logs).
fn field_name(prefix: &str) -> Option<Field<'_>> {
    if let Some(rest) = prefix.strip_suffix("\":") {
        let open = rest.rfind('"')?;
        return Some(Field {
            name: &rest[open + 1..],
            json_number: true,
        });
    }
    let rest = prefix.strip_suffix('=')?;
    let start = rest
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .map_or(0, |i| i + 1);
    let name = &rest[start..];
    (!name.is_empty()).then_some(Field {
        name,
        json_number: false,
    })
}

/// Fields whose numbers are identifiers, times or counts: never a code or card number.
fn not_secret(name: &str) -> bool {
    let name = name.rsplit('.').next().unwrap_or(name);
    name == "id"
        || name.ends_with("_id")
        || name == "at"
        || name.ends_with("_at")
        || name.ends_with("_ms")
        || [
            "ms",
            "count",
            "deleted",
            "failures",
            "len",
            "length",
            "seq",
            "bytes",
            "suppressed",
            "timestamp",
        ]
        .contains(&name)
}

/// A peer-supplied string fit for a log line: control characters (newlines, escape
/// sequences) escaped, and at most 64 characters kept, so a hostile `system_id` or
/// address can neither forge log lines nor fill the log.
pub fn escaped(s: &str) -> String {
    const KEEP: usize = 64;
    let mut out = String::with_capacity(s.len().min(KEEP + 8));
    for (n, c) in s.chars().enumerate() {
        if n == KEEP {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Log lines a peer can cause at will. Each kind is logged at most `SAMPLE_FIRST`
/// times per `SAMPLE_INTERVAL` per source (an address, a connection, a key: see
/// [`sampled_by`]), so one flooding source cannot hide everyone else's lines of
/// that kind; the rest are counted and summarised in one line when the source's
/// kind next occurs after the interval. At most `MAX_SOURCES` sources are tracked
/// at once; past them, new sources share their kind's one bucket.
#[derive(Debug, Clone, Copy)]
pub enum Noisy {
    UndecodablePdu,
    BindRefused,
    SmppConnectionRefused,
    ReplyQueueFull,
    BadApiKey,
    HttpOverCap,
    OutboxClaim,
    UnknownRoute,
    LockBudget,
    ForeignNumber,
    BadKeysOverBudget,
    ConsoleVisitor,
}

impl Noisy {
    const ALL: usize = 12;

    fn as_str(self) -> &'static str {
        match self {
            Noisy::UndecodablePdu => "undecodable_pdu",
            Noisy::BindRefused => "bind_refused",
            Noisy::SmppConnectionRefused => "smpp_connection_refused",
            Noisy::ReplyQueueFull => "reply_queue_full",
            Noisy::BadApiKey => "bad_api_key",
            Noisy::HttpOverCap => "http_connection_refused",
            Noisy::OutboxClaim => "outbox_claim_failed",
            Noisy::UnknownRoute => "unknown_route",
            Noisy::LockBudget => "lock_budget_exceeded",
            Noisy::ForeignNumber => "mo_foreign_number",
            Noisy::BadKeysOverBudget => "bad_keys_over_budget",
            Noisy::ConsoleVisitor => "console_visitor",
        }
    }
}

const SAMPLE_FIRST: u32 = 10;
const SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
const MAX_SOURCES: usize = 512;

#[derive(Clone, Copy)]
struct Bucket {
    since: Option<std::time::Instant>,
    logged: u32,
    suppressed: u64,
}

impl Bucket {
    const NEW: Bucket = Bucket {
        since: None,
        logged: 0,
        suppressed: 0,
    };

    /// Counts one line at `now`: whether to emit it, and the suppressed count of
    /// the interval that just ended, if any.
    fn take(&mut self, now: std::time::Instant) -> (bool, Option<u64>) {
        let mut summary = None;
        if self
            .since
            .is_none_or(|t| now.duration_since(t) >= SAMPLE_INTERVAL)
        {
            summary = (self.suppressed > 0).then_some(self.suppressed);
            *self = Bucket {
                since: Some(now),
                ..Bucket::NEW
            };
        }
        let emit = self.logged < SAMPLE_FIRST;
        if emit {
            self.logged += 1;
        } else {
            self.suppressed += 1;
        }
        (emit, summary)
    }

    fn ended(&self, now: std::time::Instant) -> bool {
        self.since
            .is_none_or(|t| now.duration_since(t) >= SAMPLE_INTERVAL)
    }
}

struct Buckets {
    /// Per kind, for lines without a source and sources past `MAX_SOURCES`.
    shared: [Bucket; Noisy::ALL],
    by_source: Option<std::collections::HashMap<(usize, String), Bucket>>,
}

static BUCKETS: std::sync::Mutex<Buckets> = std::sync::Mutex::new(Buckets {
    shared: [Bucket::NEW; Noisy::ALL],
    by_source: None,
});

/// Runs `log` unless this kind of line was logged `SAMPLE_FIRST` times already in
/// the current interval (for lines with no source to tell apart).
pub fn sampled(kind: Noisy, log: impl FnOnce()) {
    sampled_by(kind, "", log)
}

/// Runs `log` unless this kind of line from `source` was logged `SAMPLE_FIRST`
/// times already in the current interval.
pub fn sampled_by(kind: Noisy, source: &str, log: impl FnOnce()) {
    let now = std::time::Instant::now();
    let mut summaries: Vec<(String, u64)> = Vec::new();
    let emit = {
        let mut buckets = BUCKETS.lock().unwrap_or_else(|p| p.into_inner());
        let Buckets { shared, by_source } = &mut *buckets;
        let map = by_source.get_or_insert_with(std::collections::HashMap::new);
        let key = (kind as usize, source.to_owned());
        if !source.is_empty() && map.len() >= MAX_SOURCES && !map.contains_key(&key) {
            map.retain(|(k, s), b| {
                let keep = !b.ended(now);
                if !keep && b.suppressed > 0 && *k == kind as usize {
                    summaries.push((s.clone(), b.suppressed));
                }
                keep
            });
        }
        let own = !source.is_empty() && (map.contains_key(&key) || map.len() < MAX_SOURCES);
        let bucket = if own {
            map.entry(key).or_insert(Bucket::NEW)
        } else {
            &mut shared[kind as usize]
        };
        let (emit, summary) = bucket.take(now);
        if let Some(n) = summary {
            summaries.push((source.to_owned(), n));
        }
        emit
    };
    for (source, suppressed) in summaries {
        tracing::warn!(
            kind = kind.as_str(),
            source = %escaped(&source),
            suppressed,
            "similar log lines suppressed in the last interval"
        );
    }
    if emit {
        log();
    }
}

/// The process's own figures in Prometheus' standard names (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`,
/// `process_threads`, `process_start_time_seconds`, …), read from /proc at each
/// scrape by the `metrics-process` crate.
static PROCESS: std::sync::LazyLock<metrics_process::Collector> =
    std::sync::LazyLock::new(metrics_process::Collector::default);

/// Reads the process figures now (before `/metrics` renders).
pub fn collect_process_metrics() {
    PROCESS.collect();
}

/// Installs the global Prometheus recorder; `None` if one is installed already.
pub fn init_metrics() -> Option<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ])
        .ok()?
        // A batch's size in requests, not seconds (store/group.rs, up to 256).
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("otpgw_store_batch_size".into()),
            &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
        )
        .ok()?
        .install_recorder()
        .ok()?;
    help::describe();
    PROCESS.describe();
    Some(handle)
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn card_numbers_and_codes_are_masked_and_nothing_else() {
        for (input, want) in [
            ("pan 6037990000004321 seen", "pan [redacted] seen"),
            ("code=1234567,", "code=[redacted],"),
            ("persian ۶۰۳۷۹۹۰۰۰۰۰۰۴۳۲۱.", "persian [redacted]."),
            ("msisdn 989121234567 ok", "msisdn 989121234567 ok"),
            (
                "2026-11-21T05:26:52.467674Z card_id=12",
                "2026-11-21T05:26:52.467674Z card_id=12",
            ),
            ("message_id=00a1234567b0c1d2", "message_id=00a1234567b0c1d2"),
            ("", ""),
            // Card numbers with separators.
            (
                "path=/v1/cards/6037-9900-0000-4321 x",
                "path=/v1/cards/[redacted] x",
            ),
            ("pan 6037 9900 0000 4321.", "pan [redacted]."),
            ("q=6037%209900%200000%204321&x", "q=[redacted]&x"),
            ("q=6037+9900+0000+4321 ", "q=[redacted] "),
            ("pan 6037.9900.0000.4321!", "pan [redacted]!"),
            ("pan 6037_9900_0000_4321", "pan [redacted]"),
            // A version or an address in dotted groups is not card-sized: it stays.
            (
                "v1.24.3 from 192.168.100.200",
                "v1.24.3 from 192.168.100.200",
            ),
            // Dates and numbers in groups that are not card-sized stay.
            ("on 2026-11-21 at 12 34", "on 2026-11-21 at 12 34"),
            ("ids 1234567-1 stay? no", "ids [redacted]-1 stay? no"),
            // Ids, times and counts by field name stay, in text and JSON.
            (
                "code_id=1234567 api_key_id=7654321",
                "code_id=1234567 api_key_id=7654321",
            ),
            ("deleted=1000000", "deleted=1000000"),
            (
                r#"{"code_id":1234567,"at":1795238911512,"expires_at":1795238971745}"#,
                r#"{"code_id":1234567,"at":1795238911512,"expires_at":1795238971745}"#,
            ),
            // Other numbers in JSON are masked as strings: the line stays JSON.
            (
                r#"{"code":1234567,"x":1}"#,
                r#"{"code":"[redacted]","x":1}"#,
            ),
            (r#"{"pan":"6037990000004321"}"#, r#"{"pan":"[redacted]"}"#),
            (
                r#"{"message":"got 6037-9900-0000-4321"}"#,
                r#"{"message":"got [redacted]"}"#,
            ),
        ] {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn json_lines_stay_json() {
        for line in [
            r#"{"code_id":1234567,"n":7654321,"pan":6037990000004321,"s":"6037 9900 0000 4321"}"#,
            r#"{"fields":{"id":9999999,"card":1234567890123}}"#,
        ] {
            let out = redact(line);
            let v: serde_json::Value = serde_json::from_str(&out).expect(&out);
            let text = v.to_string();
            assert!(
                !text.contains("7654321") && !text.contains("6037"),
                "{text}"
            );
        }
    }

    #[test]
    fn peer_strings_are_escaped_and_capped() {
        assert_eq!(super::escaped("ab\ncd\u{1b}[31m"), "ab\\ncd\\u{1b}[31m");
        assert_eq!(super::escaped(&"x".repeat(100)).chars().count(), 65);
        assert_eq!(super::escaped("kannel"), "kannel");
    }
}
