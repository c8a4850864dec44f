//! The back office's card API: enroll, show, look up by PAN, suspend, re-activate,
//! read a card's audit trail. Admin keys only. Responses carry the card's id, last 4
//! digits, MSISDN and status, never more of the card number.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::answers::{
    ActivateErrors, CardChangeErrors, CardErrors, EnrollErrors, PendingCardErrors, ReactivateErrors,
};
use super::caller::{Admin, AdminOn, Card, OptionalJson};
use super::error::Json;
use super::paths::CardId;
use super::views::{CardView, EnrolledView, EventView};
use super::{fields, ApiError, AppState};
use crate::core::ports::{Activation, StatusChange};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EnrollRequest {
    /// The full card number; only its keyed hash and last 4 digits are stored.
    #[schema(example = "6037990000004321", min_length = 13, max_length = 64)]
    pan: String,
    /// The customer's phone number, national or international form.
    #[schema(example = "09121234567")]
    msisdn: String,
    /// The customer's language for what is sent to the phone unasked (pushed
    /// codes, notices); absent: the service's.
    #[schema(value_type = Option<super::views::Language>)]
    language: Option<otpgw_rules::vocab::Language>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LookupRequest {
    #[schema(example = "6037990000004321", min_length = 13, max_length = 64)]
    pan: String,
}

/// Enroll a card for a phone number (role `admin`).
#[utoipa::path(post, path = "/v1/cards", tag = "cards", request_body = EnrollRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "enrolled; under `[policy] require_activation` the card is `pending` and `activation` says whether its code was sent", body = EnrolledView),
        EnrollErrors
    )
)]
pub async fn enroll(
    State(state): State<AppState>,
    admin: Admin<Json<EnrollRequest>>,
) -> Result<(StatusCode, Json<EnrolledView>), ApiError> {
    let Json(req) = &admin.body;
    let pan = fields::pan(&req.pan)?;
    let enrolled = state
        .core
        .enroll
        .card(&pan, &req.msisdn, req.language, &admin.key.actor())
        .await?;
    Ok((StatusCode::CREATED, Json::of(enrolled)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ActivateRequest {
    /// The activation code the customer received by SMS (digits, any script).
    #[schema(example = "1234567")]
    code: String,
}

/// Confirm a pending card's activation code: the card becomes active (role
/// `admin`, for the ATM, app or branch the customer types it into).
#[utoipa::path(post, path = "/v1/cards/{id}/activate", tag = "cards",
    params(CardId), request_body = ActivateRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "activated", body = CardView),
        ActivateErrors
    )
)]
pub async fn activate(
    State(state): State<AppState>,
    card: AdminOn<Card, Json<ActivateRequest>>,
) -> Result<Json<CardView>, ApiError> {
    let Json(req) = &card.body;
    if req.code.chars().count() > 32 {
        return Err(ApiError::bad_request(
            "invalid_code",
            "code must be at most 32 characters",
        ));
    }
    let enroll = &state.core.enroll;
    match enroll
        .activate(card.id, &req.code, &card.key.actor())
        .await?
    {
        Activation::Activated(active) => Ok(Json::of(*active)),
        Activation::Wrong { attempts_left } => Err(ApiError::wrong_activation_code(attempts_left)),
        Activation::Expired => Err(ApiError::activation_expired(
            "no activation code is waiting (expired or voided); send a new one",
        )),
    }
}

/// Send a pending card a new activation code (role `admin`): the bank's retry when
/// the first could not be sent, expired or was voided.
#[utoipa::path(post, path = "/v1/cards/{id}/activation", tag = "cards",
    params(CardId), security(("bearer" = [])),
    responses(
        (status = 200, description = "a new code; `activation.state` says whether it was sent", body = EnrolledView),
        PendingCardErrors
    )
)]
pub async fn resend_activation(
    State(state): State<AppState>,
    card: AdminOn<Card>,
) -> Result<Json<EnrolledView>, ApiError> {
    let enroll = &state.core.enroll;
    Ok(Json::of(
        enroll.resend_activation(card.id, &card.key.actor()).await?,
    ))
}

/// Show a card (role `admin`).
#[utoipa::path(get, path = "/v1/cards/{id}", tag = "cards",
    params(CardId), security(("bearer" = [])),
    responses((status = 200, body = CardView), CardErrors)
)]
pub async fn show(
    State(state): State<AppState>,
    card: AdminOn<Card>,
) -> Result<Json<CardView>, ApiError> {
    let found = state.core.backoffice.card(card.id).await?;
    found
        .map(Json::of)
        .ok_or_else(|| ApiError::not_found("no such card"))
}

/// Find a card by its number (role `admin`).
#[utoipa::path(post, path = "/v1/cards/lookup", tag = "cards", request_body = LookupRequest,
    security(("bearer" = [])),
    responses((status = 200, body = CardView), CardErrors)
)]
pub async fn lookup(
    State(state): State<AppState>,
    admin: Admin<Json<LookupRequest>>,
) -> Result<Json<CardView>, ApiError> {
    let pan = fields::pan(&admin.body.0.pan)?;
    let found = state.core.backoffice.lookup(&pan).await?;
    found
        .map(Json::of)
        .ok_or_else(|| ApiError::not_found("no card with this number is enrolled"))
}

/// Re-activate a locked or suspended card; resets its failure count (role `admin`).
#[utoipa::path(post, path = "/v1/cards/{id}/reactivate", tag = "cards",
    params(CardId), request_body(content = Option<ReasonRequest>), security(("bearer" = [])),
    responses(
        (status = 200, body = CardView),
        ReactivateErrors
    )
)]
pub async fn reactivate(
    state: State<AppState>,
    card: AdminOn<Card, OptionalJson<ReasonRequest>>,
) -> Result<Json<CardView>, ApiError> {
    change(state, card, StatusChange::Reactivate).await
}

/// Suspend a card's OTP service (role `admin`).
#[utoipa::path(post, path = "/v1/cards/{id}/suspend", tag = "cards",
    params(CardId), request_body(content = Option<ReasonRequest>), security(("bearer" = [])),
    responses((status = 200, body = CardView), CardChangeErrors)
)]
pub async fn suspend(
    state: State<AppState>,
    card: AdminOn<Card, OptionalJson<ReasonRequest>>,
) -> Result<Json<CardView>, ApiError> {
    change(state, card, StatusChange::Suspend).await
}

/// The optional body of a status change.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReasonRequest {
    /// Why (audited with the change; anything shaped like a card number or code is
    /// masked). Optional here; the console always asks for one.
    #[schema(example = "customer reported a lost phone")]
    reason: Option<String>,
}

async fn change(
    State(state): State<AppState>,
    card: AdminOn<Card, OptionalJson<ReasonRequest>>,
    change: StatusChange,
) -> Result<Json<CardView>, ApiError> {
    let backoffice = &state.core.backoffice;
    let actor = card.key.actor();
    let reason = card.body.0.as_ref().and_then(|b| b.reason.as_deref());
    if reason.is_some_and(|r| r.chars().count() > 2000) {
        return Err(ApiError::bad_request(
            "invalid_body",
            "reason must be at most 2000 characters",
        ));
    }
    Ok(Json::of(
        backoffice
            .change_status(card.id, change, &actor, reason)
            .await?,
    ))
}

/// A card's audit trail, oldest first (role `admin`).
#[utoipa::path(get, path = "/v1/cards/{id}/events", tag = "cards",
    params(CardId), security(("bearer" = [])),
    responses((status = 200, body = Vec<EventView>), CardErrors)
)]
pub async fn events(
    State(state): State<AppState>,
    card: AdminOn<Card>,
) -> Result<Json<Vec<EventView>>, ApiError> {
    let backoffice = &state.core.backoffice;
    if backoffice.card(card.id).await?.is_none() {
        return Err(ApiError::not_found("no such card"));
    }
    Ok(Json::of_each(backoffice.events(card.id).await?))
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
#[utoipa::path(put, path = "/v1/cards/{id}/epin", tag = "cards",
    params(CardId), request_body = EpinRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "set; the card shows `has_epin: true`", body = CardView),
        CardChangeErrors
    )
)]
pub async fn set_epin(
    State(state): State<AppState>,
    card: AdminOn<Card, Json<EpinRequest>>,
) -> Result<Json<CardView>, ApiError> {
    let epin = Some(card.body.0.epin.as_str());
    let enroll = &state.core.enroll;
    Ok(Json::of(
        enroll.set_epin(card.id, epin, &card.key.actor()).await?,
    ))
}

/// Remove a card's ePIN (role `admin`).
#[utoipa::path(delete, path = "/v1/cards/{id}/epin", tag = "cards",
    params(CardId), security(("bearer" = [])),
    responses((status = 200, body = CardView), CardChangeErrors)
)]
pub async fn clear_epin(
    State(state): State<AppState>,
    card: AdminOn<Card>,
) -> Result<Json<CardView>, ApiError> {
    let enroll = &state.core.enroll;
    Ok(Json::of(
        enroll.set_epin(card.id, None, &card.key.actor()).await?,
    ))
}
