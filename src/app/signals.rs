//! `otpgw serve` under a process manager: SIGTERM or Ctrl-C stops the gateway
//! gracefully (a second one exits at once), and SIGHUP, which would otherwise end the
//! process on the spot (no unbind, no log line), is answered and changes nothing.

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

use super::{App, AppError};
use crate::config::Settings;

/// Builds the gateway and serves until a stop signal has been handled.
pub async fn serve(settings: Settings) -> Result<(), AppError> {
    // Installed before anything is bound: from the first log line on, a signal is
    // handled, not fatal.
    let hangups = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let app = App::build(settings).await?;
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
    tokio::spawn(answer_hangups(hangups));
    app.run_until_stopped(shutdown).await
}

async fn stop_requested(term: &mut Signal) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Operators send SIGHUP to reopen logs. Logs go to standard output here, so there
/// is nothing to reopen, and the configuration is read at start only: say so, and
/// keep serving.
async fn answer_hangups(mut hangups: Signal) {
    while hangups.recv().await.is_some() {
        tracing::warn!(
            "SIGHUP received: nothing changed (the configuration is read at start only, and \
             logs go to standard output, so there is no file to reopen); still serving"
        );
    }
}
