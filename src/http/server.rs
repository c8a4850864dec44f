//! The accept loop: hyper's connection builder (what `axum::serve` uses), plus the
//! bounds `axum::serve` does not set. A connection must send its request headers
//! within `header_read_timeout_secs`, counted from the connection's start and from
//! each response (hyper starts the timer whenever it waits for a request head, so an
//! idle keep-alive connection is closed by it too); one older than
//! `keep_alive_max_secs` is closed after its response in flight, so a client that
//! keeps sending slowly cannot hold a place for ever; and who holds places is
//! `places.rs`'s: caps in total and per address, with a fair share. So slow, idle or
//! many clients cannot take every file descriptor from `/v1/verify`. Each request
//! carries its peer's address (`ConnectInfo`) for the bad-key budget. HTTP/2 is not
//! served (see `run`).

use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::add_extension::AddExtension;

use super::places::{Place, Places};
use crate::config::HttpSettings;

type Connection = hyper_util::server::conn::auto::Connection<
    'static,
    TokioIo<TcpStream>,
    TowerToHyperService<AddExtension<Router, ConnectInfo<SocketAddr>>>,
    TokioExecutor,
>;

/// How long each connection lives and winds down.
#[derive(Clone, Copy)]
struct Lifetime {
    header_read: Duration,
    max_age: Duration,
    /// A connection told to close finishes its response in flight within this
    /// (the request timeout and a head's time), then is dropped.
    wind_down: Duration,
}

/// Serves `router` until `shutdown`, then lets open connections finish their requests.
pub async fn run(
    listener: TcpListener,
    router: Router,
    settings: &HttpSettings,
    shutdown: CancellationToken,
) {
    let places = Places::new(settings, shutdown.clone());
    let connections = TaskTracker::new();
    let header_read = Duration::from_secs(settings.header_read_timeout_secs);
    let lifetime = Lifetime {
        header_read,
        max_age: Duration::from_secs(settings.keep_alive_max_secs),
        wind_down: header_read + Duration::from_secs(settings.request_timeout_secs),
    };
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
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let place = match places.admit(peer.ip()) {
            Ok(place) => place,
            Err(refusal) => {
                let reason = refusal.as_str();
                metrics::counter!("otpgw_http_connections_refused_total", "reason" => reason)
                    .increment(1);
                crate::telemetry::sampled_by(
                    crate::telemetry::Noisy::HttpOverCap,
                    &peer.ip().to_string(),
                    || tracing::warn!(peer = %peer.ip(), reason, "http connection refused at the caps"),
                );
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service =
            TowerToHyperService::new(AddExtension::new(router.clone(), ConnectInfo(peer)));
        let builder = builder.clone();
        connections.spawn(async move {
            // The builder reads the first bytes to tell HTTP/1 from HTTP/2 before any
            // of its timers run: a client that sends nothing is closed here.
            if !first_byte_within(&stream, lifetime.header_read).await {
                return;
            }
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            serve(conn.into_owned(), place, lifetime).await;
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn first_byte_within(stream: &TcpStream, within: Duration) -> bool {
    let mut first = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.peek(&mut first)).await,
        Ok(Ok(1))
    )
}

/// Runs one connection until it ends, or until it is told to close (shutdown, its
/// place given to another address) or outlives `max_age`: then it closes after the
/// response in flight, and is dropped if even that takes longer than `wind_down`.
async fn serve(conn: Connection, place: Place, lifetime: Lifetime) {
    let mut conn = pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => Some(ended),
        _ = place.close.cancelled() => None,
        _ = tokio::time::sleep(lifetime.max_age) => {
            metrics::counter!("otpgw_http_connections_closed_total", "reason" => "max_age")
                .increment(1);
            None
        }
    };
    let ended = match ended {
        Some(ended) => ended,
        None => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(lifetime.wind_down, conn).await {
                Ok(ended) => ended,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "http connection ended with an error");
    }
    drop(place);
}
