//! The back office's card API: enroll, show, look up by PAN, suspend, re-activate,
//! read a card's audit trail. Admin keys only. Responses carry the card's id, last 4
//! digits, MSISDN and status, never more of the card number.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::error::Json;
use super::views::{CardView, EnrolledView, EventView};
use super::{ApiError, AppState, Caller};
use crate::core::ports::{Activation, StatusChange};
use otpgw_rules::codes::Pan;
use otpgw_rules::vocab::Role;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EnrollRequest {
    /// The full card number; only its keyed hash and last 4 digits are stored.
    #[schema(example = "6037990000004321", min_length = 13, max_length = 64)]
    pan: String,
    /// The customer's phone number, national or international form.
    #[schema(example = "09121234567")]
    msisdn: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LookupRequest {
    #[schema(example = "6037990000004321", min_length = 13, max_length = 64)]
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
        (status = 201, description = "enrolled; under `[policy] require_activation` the card is `pending` and `activation` says whether its code was sent", body = EnrolledView),
        (status = 409, description = "already enrolled", body = super::error::ErrorBody),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody)
    )
)]
pub async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<EnrollRequest>,
) -> Result<(StatusCode, Json<EnrolledView>), ApiError> {
    caller.require(Role::Admin)?;
    let pan = parse_pan(&req.pan)?;
    let enrolled = state
        .core
        .enroll
        .card(&pan, &req.msisdn, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(enrolled.into())))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ActivateRequest {
    /// The activation code the customer received by SMS (digits, any script).
    #[schema(example = "1234567")]
    code: String,
}

/// Confirm a pending card's activation code: the card becomes active (role
/// `admin`, for the ATM, app or branch the customer types it into).
#[utoipa::path(
    post,
    path = "/v1/cards/{id}/activate",
    tag = "cards",
    params(("id" = i64, Path, description = "card id")),
    request_body = ActivateRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "activated", body = CardView),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody),
        (status = 409, description = "`wrong_status`: the card is not pending", body = super::error::ErrorBody),
        (status = 410, description = "`activation_expired`: no activation waits (expired, or voided by wrong codes); send a new one", body = super::error::ErrorBody),
        (status = 422, description = "`activation_invalid`: a wrong code (counted; the message says how many attempts are left)", body = super::error::ErrorBody)
    )
)]
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<ActivateRequest>,
) -> Result<Json<CardView>, ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    if req.code.chars().count() > 32 {
        return Err(ApiError::bad_request(
            "invalid_code",
            "code must be at most 32 characters",
        ));
    }
    match state
        .core
        .enroll
        .activate(id, &req.code, &caller.actor())
        .await?
    {
        Activation::Activated(card) => Ok(Json(card.into())),
        Activation::Wrong { attempts_left } => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "activation_invalid",
            format!("wrong activation code; {attempts_left} attempts left"),
        )),
        Activation::Expired => Err(ApiError::new(
            StatusCode::GONE,
            "activation_expired",
            "no activation code is waiting (expired or voided); send a new one",
        )),
    }
}

/// Send a pending card a new activation code (role `admin`): the bank's retry when
/// the first could not be sent, expired or was voided.
#[utoipa::path(
    post,
    path = "/v1/cards/{id}/activation",
    tag = "cards",
    params(("id" = i64, Path, description = "card id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "a new code; `activation.state` says whether it was sent", body = EnrolledView),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody),
        (status = 409, description = "`wrong_status`: the card is not pending", body = super::error::ErrorBody)
    )
)]
pub async fn resend_activation(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EnrolledView>, ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    Ok(Json(
        state
            .core
            .enroll
            .resend_activation(id, &caller.actor())
            .await?
            .into(),
    ))
}

/// Show a card (role `admin`).
#[utoipa::path(
    get,
    path = "/v1/cards/{id}",
    tag = "cards",
    params(("id" = i64, Path, description = "card id", minimum = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CardView),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody)
    )
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CardView>, ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    state
        .core
        .backoffice
        .card(id)
        .await?
        .map(|c| Json(c.into()))
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
        (status = 200, body = CardView),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody)
    )
)]
pub async fn lookup(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<LookupRequest>,
) -> Result<Json<CardView>, ApiError> {
    caller.require(Role::Admin)?;
    let pan = parse_pan(&req.pan)?;
    state
        .core
        .backoffice
        .lookup(&pan)
        .await?
        .map(|c| Json(c.into()))
        .ok_or_else(|| ApiError::not_found("no card with this number is enrolled"))
}

/// Re-activate a locked or suspended card; resets its failure count (role `admin`).
#[utoipa::path(
    post,
    path = "/v1/cards/{id}/reactivate",
    tag = "cards",
    params(("id" = i64, Path, description = "card id", minimum = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CardView),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody),
        (status = 409, description = "`lock_not_liftable`: a timed lock runs and nobody may lift it early; `wrong_status`: the card waits for activation", body = super::error::ErrorBody)
    )
)]
pub async fn reactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CardView>, ApiError> {
    change(state, caller, id, StatusChange::Reactivate).await
}

/// Suspend a card's OTP service (role `admin`).
#[utoipa::path(
    post,
    path = "/v1/cards/{id}/suspend",
    tag = "cards",
    params(("id" = i64, Path, description = "card id", minimum = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CardView),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody)
    )
)]
pub async fn suspend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CardView>, ApiError> {
    change(state, caller, id, StatusChange::Suspend).await
}

async fn change(
    state: AppState,
    caller: Caller,
    id: String,
    change: StatusChange,
) -> Result<Json<CardView>, ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    Ok(Json(
        state
            .core
            .backoffice
            .change_status(id, change, &caller.actor(), None)
            .await?
            .into(),
    ))
}

/// A card's audit trail, oldest first (role `admin`).
#[utoipa::path(
    get,
    path = "/v1/cards/{id}/events",
    tag = "cards",
    params(("id" = i64, Path, description = "card id", minimum = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<EventView>),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody)
    )
)]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<EventView>>, ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    if state.core.backoffice.card(id).await?.is_none() {
        return Err(ApiError::not_found("no such card"));
    }
    Ok(Json(
        state
            .core
            .backoffice
            .events(id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EpinRequest {
    /// Exactly 4 digits (any script). Refused when weak: four equal digits, or four
    /// consecutive ascending or descending ones (1234, 9876, 0123 …). Stored only
    /// as an Argon2id hash; never logged or returned.
    #[schema(example = "2580")]
    epin: String,
}

/// Set or change a card's ePIN, the second factor every verify must then carry
/// (role `admin`).
#[utoipa::path(
    put,
    path = "/v1/cards/{id}/epin",
    tag = "cards",
    params(("id" = i64, Path, description = "card id")),
    request_body = EpinRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "set; the card shows `has_epin: true`", body = CardView),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody)
    )
)]
pub async fn set_epin(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<EpinRequest>,
) -> Result<Json<CardView>, ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    Ok(Json(
        state
            .core
            .enroll
            .set_epin(id, Some(&req.epin), &caller.actor())
            .await?
            .into(),
    ))
}

/// Remove a card's ePIN (role `admin`).
#[utoipa::path(
    delete,
    path = "/v1/cards/{id}/epin",
    tag = "cards",
    params(("id" = i64, Path, description = "card id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CardView),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody)
    )
)]
pub async fn clear_epin(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CardView>, ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    Ok(Json(
        state
            .core
            .enroll
            .set_epin(id, None, &caller.actor())
            .await?
            .into(),
    ))
}
