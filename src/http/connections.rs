//! `GET /v1/connections`: each operator connection's state, since when, window in
//! use, TPS and counters, for operations and `otpgw status`.

use axum::extract::State;

use super::answers::CommonErrors;
use super::caller::Admin;
use super::error::Json;
use super::views::ConnectionView;
use super::{ApiError, AppState};

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ConnectionsView {
    connections: Vec<ConnectionView>,
    /// Routes with no bound connection ("" = the default route).
    routes_down: Vec<String>,
}

/// The operator connections (role `admin`).
#[utoipa::path(
    get,
    path = "/v1/connections",
    tag = "ops",
    security(("bearer" = [])),
    responses((status = 200, body = ConnectionsView), CommonErrors)
)]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<ConnectionsView>, ApiError> {
    let connections = state
        .links
        .connections()
        .into_iter()
        .map(Into::into)
        .collect();
    let routes_down = state.links.routes_down();
    Ok(Json(ConnectionsView {
        connections,
        routes_down,
    }))
}
