//! `GET /v1/connections`: each operator connection's state, since when, window in
//! use, TPS and counters, and each route's queue, for operations and `otpgw status`.

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
    /// Each route and the messages waiting on it.
    routes: Vec<RouteView>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RouteView {
    /// The route's prefix ("" = the default route).
    route: String,
    /// Messages waiting on the route, those in a connection's own lane included.
    queued: usize,
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
    let routes = state
        .links
        .route_queues()
        .into_iter()
        .map(|(route, queued)| RouteView { route, queued })
        .collect();
    Ok(Json(ConnectionsView {
        connections,
        routes_down,
        routes,
    }))
}
