//! Customer tokens over HTTP: enroll for a card, list a card's tokens, activate
//! with the two joined parts (the `otpauth://` URI comes back once), suspend,
//! re-activate, revoke, replace, resync (role `admin`), and the OCRA challenge of a
//! payment (role `verifier`, for the switch to show). Token codes themselves verify
//! on `POST /v1/verify`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::answers::{
    CardErrors, ChallengeErrors, ResyncErrors, TokenActivateErrors, TokenEnrollErrors, TokenErrors,
};
use super::caller::{AdminOn, TokensPath, Verifier};
use super::error::{ErrorBody, Json};
use super::paths::{CardId, TokenId};
use super::views::{ActivatedTokenView, EnrolledTokenView, TokenView};
use super::{ApiError, AppState};
use crate::core::ports::TokenChange;
use crate::core::{ActivatedTokenOutcome, TokenRequest};
use otpgw_rules::tokens::{Hash, TokenKind};

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
#[utoipa::path(post, path = "/v1/cards/{id}/tokens", tag = "tokens",
    params(CardId), request_body = EnrollTokenRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "enrolled", body = EnrolledTokenView),
        TokenEnrollErrors
    )
)]
pub async fn enroll(
    State(state): State<AppState>,
    card: AdminOn<TokensPath, Json<EnrollTokenRequest>>,
) -> Result<(StatusCode, Json<EnrolledTokenView>), ApiError> {
    let Json(req) = &card.body;
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
    let tokens = &state.core.tokens;
    let enrolled = tokens.enroll(card.id, &request, &card.key.actor()).await?;
    Ok((StatusCode::CREATED, Json::of(enrolled)))
}

/// A card's tokens, newest last (role `admin`). Never a secret.
#[utoipa::path(get, path = "/v1/cards/{id}/tokens", tag = "tokens",
    params(CardId), security(("bearer" = [])),
    responses((status = 200, body = [TokenView]), CardErrors)
)]
pub async fn list(
    State(state): State<AppState>,
    card: AdminOn<TokensPath>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json::of_each(state.core.tokens.of_card(card.id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ActivateTokenRequest {
    /// Both parts joined: the one the ATM printed, then the one from the SMS.
    #[schema(example = "123456654321")]
    activation_code: String,
}

/// Activate a software token with both parts of its activation code (role
/// `admin`, for the bank's app backend). Answers the `otpauth://` URI once.
#[utoipa::path(post, path = "/v1/tokens/{id}/activate", tag = "tokens",
    params(TokenId), request_body = ActivateTokenRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "activated; the URI carries the secret and is never shown again", body = ActivatedTokenView),
        TokenActivateErrors
    )
)]
pub async fn activate(
    State(state): State<AppState>,
    token: AdminOn<TokensPath, Json<ActivateTokenRequest>>,
) -> Result<Json<ActivatedTokenView>, ApiError> {
    let code = &token.body.0.activation_code;
    match state
        .core
        .tokens
        .activate(token.id, code, &token.key.actor())
        .await?
    {
        ActivatedTokenOutcome::Activated(a) => Ok(Json::of(a)),
        ActivatedTokenOutcome::Wrong { attempts_left } => {
            Err(ApiError::wrong_activation_code(attempts_left))
        }
        ActivatedTokenOutcome::Expired => Err(ApiError::activation_expired(
            "this token can no longer be activated; replace it",
        )),
    }
}

/// Endpoints that each make one change of a token's state: a path and a document
/// each, one handler.
macro_rules! state_changes {
    ($($(#[$doc:meta])* $name:ident: $path:tt => $change:ident, 409 $conflict:tt;)*) => {$(
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "tokens",
            params(TokenId), security(("bearer" = [])),
            responses((status = 200, body = TokenView), TokenErrors,
                (status = 409, description = $conflict, body = ErrorBody)))]
        pub async fn $name(
            State(state): State<AppState>,
            token: AdminOn<TokensPath>,
        ) -> Result<Json<TokenView>, ApiError> {
            let (change, actor) = (TokenChange::$change, token.key.actor());
            let changed = state.core.tokens.change(token.id, change, &actor, None).await?;
            Ok(Json::of(changed))
        }
    )*};
}

state_changes! {
    /// Suspend an active token (role `admin`); its codes stop verifying.
    suspend: "/v1/tokens/{id}/suspend" => Suspend, 409 "`wrong_token_state`";
    /// Re-activate a suspended token (role `admin`).
    reactivate: "/v1/tokens/{id}/reactivate" => Reactivate, 409 "`wrong_token_state`";
    /// Revoke a token for good (role `admin`); its sealed secret is wiped.
    revoke: "/v1/tokens/{id}/revoke" => Revoke, 409 "`wrong_token_state`: already revoked";
}

/// Replace a software token (a lost phone; role `admin`): the old one is revoked
/// and a new one of the same shape enrolled, with a new two-part activation.
#[utoipa::path(post, path = "/v1/tokens/{id}/replace", tag = "tokens",
    params(TokenId), security(("bearer" = [])),
    responses((status = 201, body = EnrolledTokenView), TokenErrors))]
pub async fn replace(
    State(state): State<AppState>,
    token: AdminOn<TokensPath>,
) -> Result<(StatusCode, Json<EnrolledTokenView>), ApiError> {
    let enrolled = state
        .core
        .tokens
        .replace(token.id, &token.key.actor())
        .await?;
    Ok((StatusCode::CREATED, Json::of(enrolled)))
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
    params(TokenId), request_body = ResyncRequest,
    security(("bearer" = [])),
    responses((status = 200, body = TokenView), ResyncErrors))]
pub async fn resync(
    State(state): State<AppState>,
    token: AdminOn<TokensPath, Json<ResyncRequest>>,
) -> Result<Json<TokenView>, ApiError> {
    let Json(req) = &token.body;
    let tokens = &state.core.tokens;
    let actor = token.key.actor();
    Ok(Json::of(
        tokens
            .resync(token.id, &req.first, &req.second, &actor)
            .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChallengeRequest {
    transaction: super::fields::TransactionBody,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChallengeResponse {
    /// 8 random digits (`QN08`), recorded with this payment. The customer types
    /// them into the OCRA token; verify then carries `challenge_id` and the same
    /// `transaction`.
    #[schema(example = "40527918")]
    challenge: String,
    /// What verify names the challenge by.
    #[schema(example = 42)]
    challenge_id: i64,
    /// When the challenge stops approving (epoch ms): `[tokens] challenge_ttl_secs`.
    expires_at: i64,
    /// The transaction's canonical form `v1|type|amount|currency|payee`.
    canonical: String,
}

/// An OCRA challenge for a payment (role `verifier`): what the payment page shows
/// for the customer's OCRA token to sign. It approves this payment only, once,
/// until `expires_at`.
#[utoipa::path(post, path = "/v1/challenge", tag = "tokens", request_body = ChallengeRequest,
    security(("bearer" = [])),
    responses((status = 200, body = ChallengeResponse), ChallengeErrors))]
pub async fn challenge(
    State(state): State<AppState>,
    Verifier { key, body, .. }: Verifier<Json<ChallengeRequest>>,
) -> Result<Json<ChallengeResponse>, ApiError> {
    state.core.verify.admit(key).map_err(ApiError::limited)?;
    let transaction = body.0.transaction.parse()?;
    let issued = state.core.verify.issue_challenge(key, &transaction).await?;
    Ok(Json(ChallengeResponse {
        challenge: issued.challenge,
        challenge_id: issued.id,
        expires_at: issued.expires_at,
        canonical: transaction.canonical(),
    }))
}
