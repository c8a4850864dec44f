//! Customer tokens over HTTP: enroll for a card, list a card's tokens, activate
//! with the two joined parts (the `otpauth://` URI comes back once), suspend,
//! re-activate, revoke, replace, resync (role `admin`), and the OCRA challenge of a
//! payment (role `verifier`, for the switch to show). Token codes themselves verify
//! on `POST /v1/verify`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::Json;
use super::views::{ActivatedTokenView, EnrolledTokenView, TokenView};
use super::{ApiError, AppState, Caller};
use crate::core::ports::TokenChange;
use crate::core::{ActivatedTokenOutcome, TokenRequest};
use otpgw_rules::tokens::{Hash, TokenKind};
use otpgw_rules::vocab::Role;

fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad_request("invalid_id", "id must be a positive integer"))
}

fn bounded(field: &'static str, value: &Option<String>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ApiError::bad_request(
            "invalid_token",
            format!("{field} must be at most {max} characters"),
        )),
        _ => Ok(()),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollTokenRequest {
    #[schema(value_type = super::views::TokenKind)]
    kind: TokenKind,
    /// TOTP: sha1 (default), sha256 or sha512.
    #[serde(default)]
    #[schema(value_type = Option<super::views::Hash>)]
    algorithm: Option<Hash>,
    /// TOTP: 6 (default), 7 or 8.
    #[serde(default)]
    #[schema(minimum = 6, maximum = 8)]
    digits: Option<u32>,
    /// TOTP: 30 (default) or 60 seconds.
    #[serde(default)]
    period: Option<u32>,
    /// OCRA: the suite, `OCRA-1:HOTP-SHA{1,256,512}-{6..8}:QN{08..64}[-T…]`;
    /// default `OCRA-1:HOTP-SHA256-8:QN08-T1M`.
    #[serde(default)]
    #[schema(example = "OCRA-1:HOTP-SHA256-8:QN08-T1M")]
    suite: Option<String>,
    /// Hardware token: the device's serial.
    #[serde(default)]
    serial: Option<String>,
    /// Hardware token: its secret from the vendor's file, hex or base32. Absent
    /// for a software token, whose secret the gateway makes.
    #[serde(default)]
    secret: Option<String>,
}

/// Enroll a token for a card (role `admin`). A software token answers with the
/// first half of its activation code (`activation_part`, for the ATM receipt or
/// the bank's screen); the second half goes to the card's phone by SMS. A hardware
/// token (`serial` + `secret`) is active at once.
#[utoipa::path(
    post,
    path = "/v1/cards/{id}/tokens",
    tag = "tokens",
    params(("id" = i64, Path, description = "card id")),
    request_body = EnrollTokenRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "enrolled", body = EnrolledTokenView),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody),
        (status = 409, description = "`serial_exists`", body = super::error::ErrorBody)
    )
)]
pub async fn enroll(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<EnrollTokenRequest>,
) -> Result<(StatusCode, Json<EnrolledTokenView>), ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    bounded("suite", &req.suite, 64)?;
    bounded("serial", &req.serial, 64)?;
    bounded("secret", &req.secret, 256)?;
    let request = TokenRequest {
        kind: Some(req.kind),
        algorithm: req.algorithm,
        digits: req.digits,
        period: req.period,
        suite: req.suite.as_deref(),
        serial: req.serial.as_deref(),
        secret: req.secret.as_deref(),
    };
    let enrolled = state
        .core
        .tokens
        .enroll(id, &request, &caller.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(enrolled.into())))
}

/// A card's tokens, newest last (role `admin`). Never a secret.
#[utoipa::path(
    get,
    path = "/v1/cards/{id}/tokens",
    tag = "tokens",
    params(("id" = i64, Path, description = "card id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = [TokenView]),
        super::error::CommonErrors,
        (status = 404, description = "no such card", body = super::error::ErrorBody)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    caller.require(Role::Admin)?;
    Ok(Json(
        state
            .core
            .tokens
            .of_card(parse_id(&id)?)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ActivateTokenRequest {
    /// Both parts joined: the one the ATM printed, then the one from the SMS.
    #[schema(example = "123456654321")]
    activation_code: String,
}

/// Activate a software token with both parts of its activation code (role
/// `admin`, for the bank's app backend). Answers the `otpauth://` URI once.
#[utoipa::path(
    post,
    path = "/v1/tokens/{id}/activate",
    tag = "tokens",
    params(("id" = i64, Path, description = "token id")),
    request_body = ActivateTokenRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "activated; the URI carries the secret and is never shown again", body = ActivatedTokenView),
        super::error::CommonErrors,
        (status = 404, description = "no such token", body = super::error::ErrorBody),
        (status = 409, description = "`wrong_token_state`: not pending (already activated, suspended, revoked)", body = super::error::ErrorBody),
        (status = 410, description = "`activation_expired`: too late, or locked by wrong codes; replace the token", body = super::error::ErrorBody),
        (status = 422, description = "`activation_invalid`: wrong code (counted)", body = super::error::ErrorBody)
    )
)]
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<ActivateTokenRequest>,
) -> Result<Json<ActivatedTokenView>, ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    match state
        .core
        .tokens
        .activate(id, &req.activation_code, &caller.actor())
        .await?
    {
        ActivatedTokenOutcome::Activated(a) => Ok(Json(a.into())),
        ActivatedTokenOutcome::Wrong { attempts_left } => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "activation_invalid",
            format!("wrong activation code; {attempts_left} attempts left"),
        )),
        ActivatedTokenOutcome::Expired => Err(ApiError::new(
            StatusCode::GONE,
            "activation_expired",
            "this token can no longer be activated; replace it",
        )),
    }
}

async fn change(
    state: AppState,
    caller: Caller,
    id: String,
    change: TokenChange,
) -> Result<Json<TokenView>, ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    Ok(Json(
        state
            .core
            .tokens
            .change(id, change, &caller.actor(), None)
            .await?
            .into(),
    ))
}

/// Suspend an active token (role `admin`); its codes stop verifying.
#[utoipa::path(post, path = "/v1/tokens/{id}/suspend", tag = "tokens",
    params(("id" = i64, Path, description = "token id")), security(("bearer" = [])),
    responses((status = 200, body = TokenView), super::error::CommonErrors,
        (status = 404, description = "no such token", body = super::error::ErrorBody),
        (status = 409, description = "`wrong_token_state`", body = super::error::ErrorBody)))]
pub async fn suspend(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    change(state, caller, id, TokenChange::Suspend).await
}

/// Re-activate a suspended token (role `admin`).
#[utoipa::path(post, path = "/v1/tokens/{id}/reactivate", tag = "tokens",
    params(("id" = i64, Path, description = "token id")), security(("bearer" = [])),
    responses((status = 200, body = TokenView), super::error::CommonErrors,
        (status = 404, description = "no such token", body = super::error::ErrorBody),
        (status = 409, description = "`wrong_token_state`", body = super::error::ErrorBody)))]
pub async fn reactivate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    change(state, caller, id, TokenChange::Reactivate).await
}

/// Revoke a token for good (role `admin`); its sealed secret is wiped.
#[utoipa::path(post, path = "/v1/tokens/{id}/revoke", tag = "tokens",
    params(("id" = i64, Path, description = "token id")), security(("bearer" = [])),
    responses((status = 200, body = TokenView), super::error::CommonErrors,
        (status = 404, description = "no such token", body = super::error::ErrorBody),
        (status = 409, description = "`wrong_token_state`: already revoked", body = super::error::ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    change(state, caller, id, TokenChange::Revoke).await
}

/// Replace a software token (a lost phone; role `admin`): the old one is revoked
/// and a new one of the same shape enrolled, with a new two-part activation.
#[utoipa::path(post, path = "/v1/tokens/{id}/replace", tag = "tokens",
    params(("id" = i64, Path, description = "token id")), security(("bearer" = [])),
    responses((status = 201, body = EnrolledTokenView), super::error::CommonErrors,
        (status = 404, description = "no such token", body = super::error::ErrorBody)))]
pub async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<EnrolledTokenView>), ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    let enrolled = state.core.tokens.replace(id, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(enrolled.into())))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ResyncRequest {
    /// A code the token shows, then the next one.
    #[schema(example = "123456")]
    first: String,
    #[schema(example = "654321")]
    second: String,
}

/// Resynchronise a TOTP token from two consecutive codes (role `admin`): within
/// `[tokens] resync_steps` of now, the drift is remembered.
#[utoipa::path(post, path = "/v1/tokens/{id}/resync", tag = "tokens",
    params(("id" = i64, Path, description = "token id")), request_body = ResyncRequest,
    security(("bearer" = [])),
    responses((status = 200, body = TokenView), super::error::CommonErrors,
        (status = 404, description = "no such token", body = super::error::ErrorBody),
        (status = 422, description = "`resync_failed`", body = super::error::ErrorBody)))]
pub async fn resync(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<ResyncRequest>,
) -> Result<Json<TokenView>, ApiError> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id)?;
    Ok(Json(
        state
            .core
            .tokens
            .resync(id, &req.first, &req.second, &caller.actor())
            .await?
            .into(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChallengeRequest {
    transaction: super::codes::TransactionBody,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChallengeResponse {
    /// 8 digits: the first 8 bytes of SHA-256("otpgw-ocra|v1|" + canonical form),
    /// big-endian, mod 10^8, zero-padded. The customer types it into the OCRA
    /// token; verify then carries the same `transaction`.
    #[schema(example = "40527918")]
    challenge: String,
    /// The transaction's canonical form `v1|type|amount|currency|payee`.
    canonical: String,
}

/// The OCRA challenge of a payment (role `verifier`): what the payment page shows
/// for the customer's OCRA token to sign.
#[utoipa::path(post, path = "/v1/challenge", tag = "tokens", request_body = ChallengeRequest,
    security(("bearer" = [])),
    responses((status = 200, body = ChallengeResponse), super::error::CommonErrors))]
pub async fn challenge(
    caller: Caller,
    Json(req): Json<ChallengeRequest>,
) -> Result<Json<ChallengeResponse>, ApiError> {
    caller.require(Role::Verifier)?;
    let canonical = req.transaction.parse()?.canonical();
    Ok(Json(ChallengeResponse {
        challenge: otpgw_rules::tokens::payment_challenge(&canonical),
        canonical,
    }))
}
