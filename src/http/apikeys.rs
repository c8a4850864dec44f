//! `GET /v1/apikeys` and `POST /v1/apikeys/{id}/revoke`: the back office lists keys
//! (never the keys themselves, only id, role, label and dates) and revokes one,
//! which takes effect at once on this node and within `cluster.api_key_cache_ms`
//! on the others. Admin keys only.

use axum::extract::State;

use super::answers::{CommonErrors, KeyErrors};
use super::caller::{Admin, AdminOn, Key};
use super::error::Json;
use super::paths::KeyId;
use super::views::ApiKeyView;
use super::{ApiError, AppState};

/// Every API key, revoked ones included (role `admin`).
#[utoipa::path(get, path = "/v1/apikeys", tag = "apikeys", security(("bearer" = [])),
    responses((status = 200, body = Vec<ApiKeyView>), CommonErrors)
)]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    Ok(Json::of_each(state.core.access.keys().await?))
}

/// Revoke an API key: refused from the next request on this node, and on every
/// other node within `cluster.api_key_cache_ms` (500 ms by default); its console
/// sessions end; audited as `api_key_revoked` (role `admin`). Revoking a revoked key
/// changes nothing.
#[utoipa::path(post, path = "/v1/apikeys/{id}/revoke", tag = "apikeys",
    params(KeyId), security(("bearer" = [])),
    responses((status = 200, body = ApiKeyView), KeyErrors)
)]
pub async fn revoke(
    State(state): State<AppState>,
    apikey: AdminOn<Key>,
) -> Result<Json<ApiKeyView>, ApiError> {
    Ok(Json::of(
        state
            .core
            .access
            .revoke(apikey.id, &apikey.key.actor())
            .await?,
    ))
}
