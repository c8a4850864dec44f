//! `otpgw serve` under a process manager: SIGTERM or Ctrl-C stops the gateway
//! gracefully (a second one exits at once), and SIGHUP, which would otherwise end the
//! process on the spot (no unbind, no log line), reloads the configuration
//! (`reload.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

use super::{App, AppError};
use crate::config::Settings;
use crate::core::reload::Reload;

/// Builds the gateway and serves until a stop signal has been handled.
pub async fn serve(settings: Settings, file: Option<PathBuf>) -> Result<(), AppError> {
    // Installed before anything is bound: from the first log line on, a signal is
    // handled, not fatal.
    let hangups = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let app = App::build(settings).await?.reloading(file, Some(hangups));
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        stop_requested(&mut term).await;
        tracing::info!("shutdown requested; a second signal exits at once");
        signals.cancel();
        stop_requested(&mut term).await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    app.run_until_stopped(shutdown).await
}

async fn stop_requested(term: &mut Signal) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// SIGHUP reloads the configuration, as `otpgw reload` does. (Operators also send
/// it to reopen log files; logs go to standard output here, so there is none.)
pub(super) async fn answer_hangups(
    mut hangups: Signal,
    reloader: Arc<dyn Reload>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            hup = hangups.recv() => if hup.is_none() { return },
        }
        tracing::info!("SIGHUP received: reloading the configuration");
        // The reloader logs and audits the outcome, refusals included.
        let _ = reloader.reload("signal:SIGHUP").await;
    }
}
