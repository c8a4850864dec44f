//! The back office's card API: enroll, show, look up by PAN, suspend, re-activate,
//! read a card's audit trail. Admin keys only. Responses carry the card's id, last 4
//! digits, MSISDN and status, never more of the card number.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::error::Json;
use super::{ApiError, AppState, Caller};
use crate::codes::Pan;
use crate::domain::Role;
use crate::store::{Card, Event, StatusChange};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EnrollRequest {
    /// The full card number; only its keyed hash and last 4 digits are stored.
    #[schema(example = "6037990000004321")]
    pan: String,
    /// The customer's phone number, national or international form.
    #[schema(example = "09121234567")]
    msisdn: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LookupRequest {
    #[schema(example = "6037990000004321")]
    pan: String,
}

fn parse_pan(raw: &str) -> Result<Pan, ApiError> {
    Pan::parse(raw).map_err(|e| ApiError::bad_request("invalid_pan", e.to_string()))
}

fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_request("invalid_id", "card id must be a positive integer"))
}

/// Enroll a card for a phone number (role `admin`).
#[utoipa::path(
    post,
    path = "/v1/cards",
    tag = "cards",
    request_body = EnrollRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "enrolled", body = Card),
        (status = 409, description = "already enrolled", body = super::error::ErrorBody),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody)
    )
)]
pub async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<EnrollRequest>,
) -> Result<(StatusCode, Json<Card>), ApiError> {
    caller.require(Role::Admin)?;
    let pan = parse_pan(&req.pan)?;
    let card = state
        .core
        .enroll(&pan, &req.msisdn, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(card)))
}

/// Show a card (role `admin`).
#[utoipa::path(
    get,
    path = "/v1/cards/{id}",
    tag = "cards",
    params(("id" = i64, Path, description = "card id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Card),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody)
    )
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Card>, ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    state
        .core
        .card(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no such card"))
}

/// Find a card by its number (role `admin`).
#[utoipa::path(
    post,
    path = "/v1/cards/lookup",
    tag = "cards",
    request_body = LookupRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Card),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody)
    )
)]
pub async fn lookup(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<LookupRequest>,
) -> Result<Json<Card>, ApiError> {
    caller.require(Role::Admin)?;
    let pan = parse_pan(&req.pan)?;
    state
        .core
        .lookup(&pan)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no card with this number is enrolled"))
}

/// Re-activate a locked or suspended card; resets its failure count (role `admin`).
#[utoipa::path(
    post,
    path = "/v1/cards/{id}/reactivate",
    tag = "cards",
    params(("id" = i64, Path, description = "card id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Card),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody)
    )
)]
pub async fn reactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Card>, ApiError> {
    change(state, caller, id, StatusChange::Reactivate).await
}

/// Suspend a card's OTP service (role `admin`).
#[utoipa::path(
    post,
    path = "/v1/cards/{id}/suspend",
    tag = "cards",
    params(("id" = i64, Path, description = "card id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Card),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody)
    )
)]
pub async fn suspend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Card>, ApiError> {
    change(state, caller, id, StatusChange::Suspend).await
}

async fn change(
    state: AppState,
    caller: Caller,
    id: String,
    change: StatusChange,
) -> Result<Json<Card>, ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    Ok(Json(
        state
            .core
            .change_status(id, change, &caller.actor(), None)
            .await?,
    ))
}

/// A card's audit trail, oldest first (role `admin`).
#[utoipa::path(
    get,
    path = "/v1/cards/{id}/events",
    tag = "cards",
    params(("id" = i64, Path, description = "card id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Event>),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody)
    )
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<Event>>, ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    if state.core.card(id).await?.is_none() {
        return Err(ApiError::not_found("no such card"));
    }
    Ok(Json(state.core.events(id).await?))
}
