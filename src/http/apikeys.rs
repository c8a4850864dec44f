//! `GET /v1/apikeys` and `POST /v1/apikeys/{id}/revoke`: the back office lists keys
//! (never the keys themselves, only id, role, label and dates) and revokes one,
//! which takes effect at once on every node. Admin keys only.

use axum::extract::{Path, State};

use super::error::Json;
use super::views::ApiKeyView;
use super::{ApiError, AppState, Caller};
use otpgw_rules::vocab::Role;

/// Every API key, revoked ones included (role `admin`).
#[utoipa::path(
    get,
    path = "/v1/apikeys",
    tag = "apikeys",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<ApiKeyView>), super::error::CommonErrors)
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(
        state
            .core
            .access
            .keys()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Revoke an API key: refused from the next request on, on every node; its console
/// sessions end; audited as `api_key_revoked` (role `admin`). Revoking a revoked key
/// changes nothing.
#[utoipa::path(
    post,
    path = "/v1/apikeys/{id}/revoke",
    tag = "apikeys",
    params(("id" = i64, Path, description = "API key id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ApiKeyView),
        super::error::CommonErrors,
        (status = 404, description = "no such key", body = super::error::ErrorBody)
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    caller.require(Role::Admin)?;
    let id =
        id.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
            ApiError::bad_request("invalid_id", "key id must be a positive integer")
        })?;
    Ok(Json(
        state.core.access.revoke(id, &caller.actor()).await?.into(),
    ))
}
