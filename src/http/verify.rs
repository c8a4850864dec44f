//! `POST /v1/verify`: the payment switch asks whether a code is the card's live one.
//! Every decision is a 200 with `approved` or `rejected` + reason + ISO 8583-style
//! response code; 4xx is kept for requests that are malformed or unauthorised.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::answers::VerifyErrors;
use super::caller::Verifier;
use super::error::Json;
use super::fields::{self, TransactionBody};
use super::{ApiError, AppState};
use crate::core::Factors;
use otpgw_rules::vocab::Verdict;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct VerifyRequest {
    /// The full card number (13–19 digits, any script, spaces or dashes allowed).
    #[schema(example = "6037990000004321", min_length = 13, max_length = 64)]
    pan: String,
    /// The code the customer typed: one sent by SMS or USSD, or one the card's
    /// active token made (a TOTP code, or an OCRA response over the challenge
    /// `challenge_id` names, see `POST /v1/challenge`), as `[policy] accept` allows.
    #[schema(example = "1234567")]
    code: String,
    /// The switch's id for this request (1–64 printable ASCII); a retry with the same
    /// id returns the first answer and counts nothing twice.
    #[schema(example = "txn-000123")]
    request_id: String,
    /// The payment being approved. Must equal the one a pushed code was bound to
    /// (else `transaction_mismatch`); a capped code needs it to compare the amount;
    /// required on every verify under `[policy] require_transaction`.
    #[serde(default)]
    transaction: Option<TransactionBody>,
    /// For an OCRA response: the `challenge_id` of `POST /v1/challenge`. The
    /// challenge approves only the `transaction` it was issued for, once, before it
    /// expires; an unknown id (or another key's) is 400 `unknown_challenge`.
    #[serde(default)]
    #[schema(example = 42, minimum = 1)]
    challenge_id: Option<i64>,
    /// The card's 4-digit ePIN, when the bank set one. A wrong or missing ePIN is
    /// answered exactly as a wrong code.
    #[serde(default)]
    #[schema(example = "2580")]
    epin: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VerifyResponse {
    /// `approved` or `rejected`.
    #[schema(example = "approved")]
    result: &'static str,
    /// For `rejected`: invalid, expired, used, locked, not_enrolled,
    /// transaction_mismatch, amount_exceeds_cap, transaction_required or
    /// not_activated.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    /// ISO 8583 field 39: 00 approved, 55 invalid, 54 expired, 94 used, 75 locked,
    /// 56 not enrolled, 12 transaction mismatch, 61 amount exceeds the customer's
    /// cap, 30 transaction required, 62 not activated.
    #[schema(example = "00")]
    response_code: &'static str,
    request_id: String,
    /// On every rejection of an enrolled card (all reasons but not_enrolled): failed
    /// verifications left before the card locks, after this one (0 while the card is
    /// locked or suspended; unchanged by a rejection that does not count), so the
    /// switch can warn the customer before the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts_left: Option<i64>,
    /// Present when the card is locked after this answer: when the lock ends by
    /// itself (epoch ms), or null when only the bank's re-activation ends it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>, nullable = true)]
    locked_until: Option<Option<i64>>,
}

/// Verify a code for a card (role `verifier`).
#[utoipa::path(post, path = "/v1/verify", tag = "verify", request_body = VerifyRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the decision, approved or rejected with a reason", body = VerifyResponse),
        VerifyErrors
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    Verifier { key, body, .. }: Verifier<Json<VerifyRequest>>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let Json(req) = body;
    // Before anything is parsed or counted: a throttled verify is no failure.
    state.core.verify.admit(key).map_err(ApiError::limited)?;
    let pan = fields::pan(&req.pan)?;
    let request_id = fields::request_id(&req.request_id)?;
    if req.code.trim().is_empty() || req.code.chars().count() > 32 {
        return Err(ApiError::bad_request(
            "invalid_code",
            "code must be 1 to 32 characters",
        ));
    }
    let transaction = TransactionBody::parse_some(&req.transaction)?;
    if req.epin.as_ref().is_some_and(|e| e.chars().count() > 32) {
        return Err(ApiError::bad_request(
            "invalid_epin",
            "epin must be at most 32 characters",
        ));
    }
    let factors = Factors {
        transaction: transaction.as_ref(),
        epin: req.epin.as_deref(),
        challenge_id: req.challenge_id,
    };
    let outcome = state
        .core
        .verify
        .verify(key, &pan, &req.code, request_id, factors)
        .await?;
    let (result, reason) = match outcome.verdict {
        Verdict::Approved => ("approved", None),
        Verdict::Rejected(r) => ("rejected", Some(r.as_str())),
    };
    Ok(Json(VerifyResponse {
        result,
        reason,
        response_code: outcome.verdict.response_code(),
        request_id: request_id.to_owned(),
        attempts_left: outcome.attempts_left,
        locked_until: outcome.lock,
    }))
}
