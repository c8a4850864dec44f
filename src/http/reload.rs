//! `POST /v1/admin/reload`: the running gateway reads its configuration again and
//! applies what can change live (as SIGHUP does); what takes a restart is listed
//! and kept, and an invalid file changes nothing. Admin keys only; the reload is
//! audited with the key that asked.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::answers::ReloadErrors;
use super::caller::Admin;
use super::error::Json;
use super::{ApiError, AppState};
use crate::core::reload::{ReloadRefused, Reloaded};

/// What a reload did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReloadView {
    /// Settings that changed and are in force now, as `section.key`
    /// (`smpp.peers`, `limits.peer_tps`, `policy.…`, `messages.…`, `log.level`).
    #[schema(example = json!(["smpp.peers", "limits.peer_tps"]))]
    applied: Vec<String>,
    /// Settings that changed in the file but take a restart: the running values
    /// stay (`http.listen`, `database.url`, `smpp.connections`, …).
    #[schema(example = json!(["http.listen"]))]
    kept: Vec<String>,
    /// Listener sessions of removed or changed peers that were asked to unbind.
    #[schema(minimum = 0)]
    unbound: usize,
    /// Operator connections (client mode) the reload added, removed, or unbound
    /// and bound again because their settings changed; the others were not touched.
    connections: ConnectionsView,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConnectionsView {
    added: Vec<String>,
    removed: Vec<String>,
    rebound: Vec<String>,
}

impl From<Reloaded> for ReloadView {
    fn from(r: Reloaded) -> Self {
        Self {
            applied: r.applied,
            kept: r.kept,
            unbound: r.unbound,
            connections: ConnectionsView {
                added: r.connections.added,
                removed: r.connections.removed,
                rebound: r.connections.rebound,
            },
        }
    }
}

/// Reload the configuration file (role `admin`): peers, limits, policy, message
/// texts and the log level change live, without dropping the binds the change does
/// not concern; the answer lists what took effect and what needs a restart.
/// `otpgw reload` and SIGHUP do the same. Audited as `config_reloaded`.
#[utoipa::path(post, path = "/v1/admin/reload", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = ReloadView), ReloadErrors)
)]
pub async fn reload(
    State(state): State<AppState>,
    admin: Admin,
) -> Result<Json<ReloadView>, ApiError> {
    let Some(reloader) = &state.reload else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this server cannot reload its configuration",
        ));
    };
    match reloader.reload(&admin.key.actor()).await {
        Ok(done) => Ok(Json::of(done)),
        Err(ReloadRefused::Invalid(why)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_config",
            format!("the configuration was not reloaded; the running one stays: {why}"),
        )),
        Err(ReloadRefused::Busy) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "reload_running",
            "another reload is in progress",
        )),
    }
}
