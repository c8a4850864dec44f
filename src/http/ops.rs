//! Operations endpoints: liveness, readiness (database reachable, migrated and
//! writable) and
//! Prometheus metrics. No authentication: bind HTTP to an internal address.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "{\"status\":\"ok\"}")))]
pub async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// Ready when the database answers within 2 s with every migration applied and a
/// write committed (a one-row table rewritten), the
/// SMPP listener is accepting (it is, for as long as the process serves HTTP), and
/// every route of client mode has a bound operator connection.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "ready: {ready, database, smpp, routes_down}"),
    (status = 503, description = "not ready: database unreachable, slow, not writable, or migrations pending, or a route with no bound connection")
))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let check = tokio::time::timeout(Duration::from_secs(2), state.readiness.ready());
    let database = match check.await {
        Ok(Ok(true)) => "ok",
        Ok(Ok(false)) => "migrations pending",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            "unreachable"
        }
        Err(_) => "timeout",
    };
    let routes_down = state.links.routes_down();
    let ready = database == "ok" && state.smpp_listening && routes_down.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let smpp = if state.smpp_listening {
        "listening"
    } else {
        "not listening"
    };
    (
        status,
        axum::Json(
            json!({"ready": ready, "database": database, "smpp": smpp, "routes_down": routes_down}),
        ),
    )
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (size, idle) = state.readiness.pool_stats();
    metrics::gauge!("otpgw_db_pool_connections", "state" => "open").set(f64::from(size));
    metrics::gauge!("otpgw_db_pool_connections", "state" => "idle").set(idle as f64);
    crate::telemetry::collect_process_metrics();
    let body = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}
