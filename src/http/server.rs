//! The accept loop: hyper's connection builder (what `axum::serve` uses), plus the
//! bounds `axum::serve` does not set. A connection must send its request headers
//! within `header_read_timeout_secs`, counted from the connection's start and from
//! each response (hyper starts the timer whenever it waits for a request head, so an
//! idle keep-alive connection is closed by it too), and at most `max_connections`
//! are held at once: more are closed at accept, so slow or idle clients cannot take
//! every file descriptor from `/v1/verify`. HTTP/2 is not served (see `run`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::HttpSettings;

/// Serves `router` until `shutdown`, then lets open connections finish their requests.
pub async fn run(
    listener: TcpListener,
    router: Router,
    settings: &HttpSettings,
    shutdown: CancellationToken,
) {
    let places = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    let header_read = Duration::from_secs(settings.header_read_timeout_secs);
    // HTTP/1.1 only: hyper's HTTP/2 server has no idle or header-read bound, so one
    // client with prior-knowledge HTTP/2 connections could hold every place while
    // answering pings. Payment switches speak HTTP/1.1; an HTTP/2 front end belongs
    // in the proxy that terminates TLS.
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read);
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            metrics::counter!("otpgw_http_connections_refused_total").increment(1);
            crate::telemetry::sampled(crate::telemetry::Noisy::HttpOverCap, || {
                tracing::warn!("http connection refused: http.max_connections are open")
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            // The builder reads the first bytes to tell HTTP/1 from HTTP/2 before any
            // of its timers run: a client that sends nothing is closed here.
            let mut first = [0u8; 1];
            if !matches!(
                tokio::time::timeout(header_read, stream.peek(&mut first)).await,
                Ok(Ok(1))
            ) {
                drop(place);
                return;
            }
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
            drop(place);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
