//! `GET /v1/connections`: each operator connection's state, since when, window in
//! use, TPS and counters, each route's queue, and the listener's binds, for
//! operations and `otpgw status`.

use axum::extract::State;

use super::answers::CommonErrors;
use super::caller::Admin;
use super::error::Json;
use super::views::ConnectionView;
use super::{ApiError, AppState};
use crate::core::links::ListenerBind;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ConnectionsView {
    connections: Vec<ConnectionView>,
    /// Routes with no bound connection ("" = the default route).
    routes_down: Vec<String>,
    /// Each route and the messages waiting on it.
    routes: Vec<RouteView>,
    /// The sessions bound to this node's SMPP listener, oldest first.
    listener: Vec<ListenerBindView>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ListenerBindView {
    #[schema(example = "bank-smsc")]
    system_id: String,
    /// `trx`, `tx` or `rx`.
    #[schema(example = "trx")]
    bind_type: &'static str,
    /// The peer's address and port.
    #[schema(example = "10.1.2.3:40112")]
    address: String,
    /// Epoch milliseconds of the bind.
    since: i64,
    /// Our deliver_sm the peer has not answered yet.
    in_flight: usize,
}

impl From<ListenerBind> for ListenerBindView {
    fn from(b: ListenerBind) -> Self {
        Self {
            system_id: b.system_id,
            bind_type: b.bind_type,
            address: b.address,
            since: b.since,
            in_flight: b.in_flight,
        }
    }
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
    let listener = state
        .links
        .listener_binds()
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(ConnectionsView {
        connections,
        routes_down,
        routes,
        listener,
    }))
}
