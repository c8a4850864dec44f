//! `POST /v1/ussd`: USSD in the common aggregator form. A form POST per hop with
//! `sessionId`, `serviceCode`, `phoneNumber`, `networkCode` and `text` (every input
//! so far, joined by `*`; empty on the first hop); the answer is `text/plain`,
//! `CON …` to continue or `END …` to close. Stateless here: the path is in `text`.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use otpgw_parsers::ussd::parse_ussd;
use serde::Deserialize;

use super::answers::CommonErrors;
use super::{ApiError, AppState, Caller};
use otpgw_rules::vocab::Role;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UssdForm {
    #[schema(example = "ATUid_0e2f")]
    session_id: String,
    /// The code dialled, e.g. `*720#` (or `*720*1#`: its segments start the path).
    #[schema(example = "*720#")]
    service_code: String,
    #[schema(example = "+989121234567")]
    phone_number: String,
    #[serde(default)]
    network_code: Option<String>,
    /// The inputs so far joined by `*`, empty on the first hop. The customer's cap
    /// may follow the card digits: `1*4321*2500000`.
    #[serde(default)]
    #[schema(example = "1*4321")]
    text: String,
}

/// The longest dialogue we follow; more inputs than this is not a person.
const MAX_INPUTS: usize = 32;

/// One hop of a USSD dialogue (role `ussd`).
#[utoipa::path(
    post,
    path = "/v1/ussd",
    tag = "ussd",
    request_body(content = UssdForm, content_type = "application/x-www-form-urlencoded"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "`CON <screen>` to continue, `END <screen>` to close", content_type = "text/plain"),
        CommonErrors
    )
)]
pub async fn ussd(
    State(state): State<AppState>,
    caller: Caller,
    form: Result<Form<UssdForm>, FormRejection>,
) -> Result<Response, ApiError> {
    caller.require(Role::Ussd)?;
    let Form(form) = form.map_err(|e| ApiError::bad_request("invalid_form", e.body_text()))?;
    if form.session_id.is_empty() || form.session_id.len() > 128 {
        return Err(ApiError::bad_request(
            "invalid_form",
            "sessionId must be 1 to 128 characters",
        ));
    }
    let dialled = parse_ussd(&form.service_code).map_err(|e| {
        ApiError::bad_request(
            "invalid_service_code",
            format!("serviceCode is not a USSD string: {e}"),
        )
    })?;
    let mut path = dialled.path;
    if !form.text.is_empty() {
        path.extend(form.text.split('*').map(str::to_owned));
    }
    if path.len() > MAX_INPUTS {
        return Err(ApiError::bad_request(
            "invalid_form",
            "too many inputs in text",
        ));
    }
    let peer = format!("http:{}", form.network_code.as_deref().unwrap_or("-"));
    let reply = state
        .core
        .issue
        .ussd(&peer, &form.phone_number, &dialled.service_code, &path)
        .await?;
    let body = format!("{} {}", if reply.end { "END" } else { "CON" }, reply.text);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response())
}
