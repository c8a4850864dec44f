//! Pushed codes: `POST /v1/codes` issues a code for a card and sends it by SMS to
//! the card's phone through the operator connection its number routes to (the
//! payment page's "send me a code"). `GET /v1/codes/{id}` shows the back office where
//! a code went and what became of it, never the code.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::answers::{CodeErrors, PushErrors};
use super::caller::{AdminOn, Code, Verifier};
use super::error::Json;
use super::fields::{self, TransactionBody};
use super::paths::CodeId;
use super::views::CodeView;
use super::{ApiError, AppState};
use otpgw_rules::vocab::Delivery;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PushRequest {
    /// The full card number (13–19 digits, any script, spaces or dashes allowed).
    #[schema(example = "6037990000004321", min_length = 13, max_length = 64)]
    pan: String,
    /// The caller's id for this request (1–64 printable ASCII); a retry with the
    /// same id returns the first answer and sends nothing again.
    #[schema(example = "pay-000123")]
    request_id: String,
    /// The payment this code approves. The SMS shows its type, amount and payee,
    /// and a verify of this code must carry the same transaction.
    #[serde(default)]
    transaction: Option<TransactionBody>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PushResponse {
    /// The code's id for `GET /v1/codes/{id}`: a number from 1 to 2^52 that says
    /// nothing of how many codes were issued (ids are not handed out in order).
    #[schema(minimum = 1, maximum = 4503599627370496_i64)]
    code_id: i64,
    /// Epoch milliseconds after which the code is void.
    expires_at: i64,
    /// `queued` when just handed to the route; on a retry, where it stands now.
    #[schema(value_type = Option<String>, example = "queued")]
    delivery: Option<Delivery>,
    request_id: String,
    /// True when this answers an earlier request with the same request_id.
    replayed: bool,
}

/// Issue a code and send it to the card's phone (role `verifier`).
#[utoipa::path(post, path = "/v1/codes", tag = "codes", request_body = PushRequest,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "issued and queued for its route; never contains the code", body = PushResponse),
        (status = 200, description = "a retry of an earlier request_id: its answer, nothing sent again", body = PushResponse),
        PushErrors
    )
)]
pub async fn push(
    State(state): State<AppState>,
    Verifier { key, body, .. }: Verifier<Json<PushRequest>>,
) -> Result<(StatusCode, Json<PushResponse>), ApiError> {
    let Json(req) = body;
    let pan = fields::pan(&req.pan)?;
    let request_id = fields::request_id(&req.request_id)?;
    let transaction = TransactionBody::parse_some(&req.transaction)?;
    let pushed = state
        .core
        .issue
        .push(key, &pan, request_id, transaction.as_ref())
        .await?;
    let status = if pushed.replayed {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(PushResponse {
            code_id: pushed.code_id,
            expires_at: pushed.expires_at,
            delivery: pushed.delivery,
            request_id: request_id.to_owned(),
            replayed: pushed.replayed,
        }),
    ))
}

/// Show a code's channel, route, connection, states and times (role `admin`).
#[utoipa::path(get, path = "/v1/codes/{id}", tag = "codes",
    params(CodeId), security(("bearer" = [])),
    responses((status = 200, body = CodeView), CodeErrors)
)]
pub async fn show(
    State(state): State<AppState>,
    code: AdminOn<Code>,
) -> Result<Json<CodeView>, ApiError> {
    let found = state.core.issue.code(code.id).await?;
    found
        .map(Json::of)
        .ok_or_else(|| ApiError::not_found("no such code"))
}
