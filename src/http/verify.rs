//! `POST /v1/verify`: the payment switch asks whether a code is the card's live one.
//! Every decision is a 200 with `approved` or `rejected` + reason + ISO 8583-style
//! response code; 4xx is kept for requests that are malformed or unauthorised.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::error::Json;
use super::{ApiError, AppState, Caller};
use crate::codes::Pan;
use crate::domain::{Role, Verdict};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct VerifyRequest {
    /// The full card number (13–19 digits, any script, spaces or dashes allowed).
    #[schema(example = "6037990000004321", min_length = 13, max_length = 64)]
    pan: String,
    /// The code the customer typed.
    #[schema(example = "1234567")]
    code: String,
    /// The switch's id for this request (1–64 printable ASCII); a retry with the same
    /// id returns the first answer and counts nothing twice.
    #[schema(example = "txn-000123")]
    request_id: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifyResponse {
    /// `approved` or `rejected`.
    #[schema(example = "approved")]
    result: &'static str,
    /// For `rejected`: invalid, expired, used, locked or not_enrolled.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    /// ISO 8583 field 39: 00 approved, 55 invalid, 54 expired, 94 used, 75 locked,
    /// 56 not enrolled.
    #[schema(example = "00")]
    response_code: &'static str,
    request_id: String,
}

/// Verify a code for a card (role `verifier`).
#[utoipa::path(
    post,
    path = "/v1/verify",
    tag = "verify",
    request_body = VerifyRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the decision, approved or rejected with a reason", body = VerifyResponse),
        super::error::CommonErrors,
        (status = 409, description = "request_id already used for a different request", body = super::error::ErrorBody),
        (status = 429, description = "over the key's rate, or held by the guessing guard; see Retry-After", body = super::error::ErrorBody)
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<VerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let key = caller.require(Role::Verifier)?;
    // Before anything is parsed or counted: a throttled verify is no failure.
    state.core.admit_verify(key).map_err(ApiError::limited)?;
    let pan =
        Pan::parse(&req.pan).map_err(|e| ApiError::bad_request("invalid_pan", e.to_string()))?;
    let request_id = req.request_id.trim();
    if request_id.is_empty()
        || request_id.len() > 64
        || !request_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::bad_request(
            "invalid_request_id",
            "request_id must be 1 to 64 printable ASCII characters",
        ));
    }
    if req.code.trim().is_empty() || req.code.chars().count() > 32 {
        return Err(ApiError::bad_request(
            "invalid_code",
            "code must be 1 to 32 characters",
        ));
    }
    let outcome = state.core.verify(key, &pan, &req.code, request_id).await?;
    let (result, reason) = match outcome.verdict {
        Verdict::Approved => ("approved", None),
        Verdict::Rejected(r) => ("rejected", Some(r.as_str())),
    };
    Ok(Json(VerifyResponse {
        result,
        reason,
        response_code: outcome.verdict.response_code(),
        request_id: request_id.to_owned(),
    }))
}
