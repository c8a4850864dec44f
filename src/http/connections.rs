//! `GET /v1/connections`: each operator connection's state, since when, window in
//! use, TPS and counters, for operations and `otpgw status`.

use axum::extract::State;

use super::error::Json;
use super::{ApiError, AppState, Caller};
use crate::smpp::client::ConnectionStatus;
use otpgw_rules::vocab::Role;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ConnectionsView {
    connections: Vec<ConnectionStatus>,
    /// Routes with no bound connection ("" = the default route).
    routes_down: Vec<String>,
}

/// The operator connections (role `admin`).
#[utoipa::path(
    get,
    path = "/v1/connections",
    tag = "ops",
    security(("bearer" = [])),
    responses((status = 200, body = ConnectionsView), super::error::CommonErrors)
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ConnectionsView>, ApiError> {
    caller.require(Role::Admin)?;
    let (connections, routes_down) = match &state.operators {
        Some(ops) => (ops.status(), ops.routes_down()),
        None => (Vec::new(), Vec::new()),
    };
    Ok(Json(ConnectionsView {
        connections,
        routes_down,
    }))
}
