//! Logs and metrics. Logs go to stdout through `tracing`, human-readable or JSON
//! (`log.format`); metrics through the `metrics` facade into a Prometheus recorder
//! that `/metrics` renders.
//!
//! Redaction is by construction first: card numbers, codes and secrets are held in
//! types whose `Debug` hides them (`Pan`, `Code`, `Secret`, `Reply`), no handler logs
//! a request body, and no event carries message text. Then every log line passes one
//! redaction point, [`redact`], which masks anything shaped like a card number or a
//! code, in case a future log line forgets. `tests/` greps the logs of full runs.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Logs go to stdout for `serve` (where a supervisor collects them) and to stderr for
/// the other commands, whose stdout is their JSON result.
pub fn init_logging(settings: &LogSettings, to_stdout: bool) {
    let filter = EnvFilter::try_from_env("OTPGW_LOG")
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = if to_stdout {
        std::io::IsTerminal::is_terminal(&std::io::stdout())
    } else {
        std::io::IsTerminal::is_terminal(&std::io::stderr())
    };
    let builder = tracing_subscriber::fmt()
        .with_ansi(ansi)
        .with_env_filter(filter)
        .with_writer(move || -> Redacting {
            if to_stdout {
                Redacting(Box::new(std::io::stdout()))
            } else {
                Redacting(Box::new(std::io::stderr()))
            }
        });
    // A second init (tests running commands in-process) is harmless: keep the first.
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
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

/// Masks standalone runs of digits (any script) that look like a code (7 digits) or a
/// card number (13 to 19): runs next to letters, like parts of hex ids, are left alone.
pub fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    let is_digit = |c: char| otpgw_parsers::digits::digit_value(c).is_some();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < chars.len() {
        if !is_digit(chars[i].1) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && is_digit(chars[i].1) {
            i += 1;
        }
        let len = i - start;
        let before = start.checked_sub(1).map(|j| chars[j].1);
        let after = chars.get(i).map(|c| c.1);
        let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
        if (len == 7 || (13..=19).contains(&len)) && !glued(before) && !glued(after) {
            let from = chars[start].0;
            let to = chars.get(i).map_or(text.len(), |c| c.0);
            let o = out.get_or_insert_with(String::new);
            o.push_str(&text[copied..from]);
            o.push_str("[redacted]");
            copied = to;
        }
    }
    match out {
        None => std::borrow::Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            std::borrow::Cow::Owned(o)
        }
    }
}

/// Installs the global Prometheus recorder; `None` if one is installed already.
pub fn init_metrics() -> Option<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ])
        .ok()?
        .install_recorder()
        .ok()?;
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
        ] {
            assert_eq!(redact(input), want, "{input}");
        }
    }
}
