//! Pushed codes: `POST /v1/codes` issues a code for a card and sends it by SMS to
//! the card's phone through the operator connection its number routes to (the
//! payment page's "send me a code"). `GET /v1/codes/{id}` shows the back office where
//! a code went and what became of it, never the code.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::Json;
use super::{ApiError, AppState, Caller};
use otpgw_rules::codes::Pan;
use otpgw_rules::vocab::{CodeState, Delivery, Role};

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

/// A payment a code is bound to.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct TransactionBody {
    /// purchase, transfer, bill or topup.
    #[serde(rename = "type")]
    #[schema(example = "purchase")]
    kind: String,
    /// A positive whole number of the currency's minor units, at most 10^15
    /// (IRR has none: rials; EUR has 2: cents; KWD has 3).
    #[schema(example = 2500000)]
    amount: u64,
    /// ISO 4217 alphabetic code, upper case.
    #[schema(example = "IRR")]
    currency: String,
    /// Who is paid, as the customer should see it: 1–64 printable characters.
    #[schema(example = "Digikala")]
    payee: String,
}

impl TransactionBody {
    pub(super) fn parse(&self) -> Result<otpgw_rules::payment::Transaction, ApiError> {
        otpgw_rules::payment::Transaction::new(&self.kind, self.amount, &self.currency, &self.payee)
            .map_err(|e| ApiError::bad_request("invalid_transaction", e.to_string()))
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PushResponse {
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

/// A code as the back office sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CodeView {
    id: i64,
    card_id: i64,
    /// `sms` or `ussd`.
    channel: String,
    /// Who asked: an SMPP system_id, `smsc:<connection>`, or `api:<key id>`.
    requested_by: String,
    #[schema(value_type = String, example = "live")]
    state: CodeState,
    #[schema(value_type = Option<String>, example = "delivered")]
    delivery: Option<Delivery>,
    /// The MSISDN prefix route ("" = default route), for codes sent in client mode.
    route: Option<String>,
    /// The operator connection that took it.
    connection: Option<String>,
    /// The SMSC's id for the message.
    message_id: Option<String>,
    issued_at: i64,
    expires_at: i64,
    submitted_at: Option<i64>,
    delivery_at: Option<i64>,
    used_at: Option<i64>,
}

fn request_id(raw: &str) -> Result<&str, ApiError> {
    let id = raw.trim();
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_request_id",
            "request_id must be 1 to 64 printable ASCII characters",
        ));
    }
    Ok(id)
}

/// Issue a code and send it to the card's phone (role `verifier`).
#[utoipa::path(
    post,
    path = "/v1/codes",
    tag = "codes",
    request_body = PushRequest,
    security(("bearer" = [])),
    responses(
        (status = 202, description = "issued and queued for its route; never contains the code", body = PushResponse),
        (status = 200, description = "a retry of an earlier request_id: its answer, nothing sent again", body = PushResponse),
        super::error::CommonErrors,
        (status = 404, description = "no card with this number is enrolled", body = super::error::ErrorBody),
        (status = 409, description = "card locked, suspended or pending activation, or request_id used for another card or payment", body = super::error::ErrorBody),
        (status = 422, description = "no operator connection serves the card's phone number", body = super::error::ErrorBody),
        (status = 429, description = "too many codes for this card; see Retry-After", body = super::error::ErrorBody),
        (status = 503, description = "the outgoing queue is full; see Retry-After", body = super::error::ErrorBody)
    )
)]
pub async fn push(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<PushRequest>,
) -> Result<(StatusCode, Json<PushResponse>), ApiError> {
    let key = caller.require(Role::Verifier)?;
    let pan =
        Pan::parse(&req.pan).map_err(|e| ApiError::bad_request("invalid_pan", e.to_string()))?;
    let request_id = request_id(&req.request_id)?;
    let transaction = req
        .transaction
        .as_ref()
        .map(TransactionBody::parse)
        .transpose()?;
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
#[utoipa::path(
    get,
    path = "/v1/codes/{id}",
    tag = "codes",
    params(("id" = i64, Path, description = "code id", minimum = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CodeView),
        super::error::CommonErrors,
        (status = 404, description = "no such code", body = super::error::ErrorBody)
    )
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CodeView>, ApiError> {
    caller.require(Role::Admin)?;
    let id =
        id.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
            ApiError::bad_request("invalid_id", "code id must be a positive integer")
        })?;
    let c = state
        .core
        .issue
        .code(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such code"))?;
    Ok(Json(CodeView {
        id: c.id,
        card_id: c.card_id,
        channel: c.channel,
        requested_by: c.peer,
        state: c.state,
        delivery: c.delivery,
        route: c.route,
        connection: c.connection,
        message_id: c.message_id,
        issued_at: c.issued_at,
        expires_at: c.expires_at,
        submitted_at: c.submitted_at,
        delivery_at: c.delivery_at,
        used_at: c.used_at,
    }))
}
