//! Logs and metrics. Logs go to stdout through `tracing`, human-readable or JSON
//! (`log.format`); metrics through the `metrics` facade into a Prometheus recorder
//! that `/metrics` renders.
//!
//! Redaction is by construction: card numbers, codes and secrets are held in types
//! whose `Debug` hides them (`Pan`, `Code`, `Secret`, `Reply`), no handler logs a
//! request body, and no event carries message text. `tests/` greps the logs of full
//! runs for card numbers and codes to keep it so.

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
        .with_writer(move || -> Box<dyn std::io::Write> {
            if to_stdout {
                Box::new(std::io::stdout())
            } else {
                Box::new(std::io::stderr())
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
