//! The HTTP error type and the JSON extractor whose rejections use it, so every
//! failure, ours or axum's, answers with one body shape:
//! `{"error": {"code": "...", "message": "..."}}`. Database failures show as
//! "internal error" only; the detail goes to the log.

use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequest;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::core::{Conflict, CoreError, DomainError, Existing, Missing};

/// `Retry-After` of a 503: long enough for a pool timeout or a failover to pass.
const RETRY_UNAVAILABLE_SECS: u64 = 5;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required (Authorization: Bearer <key>)",
        )
    }
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this API key's role may not do that",
        )
    }
    /// Over a rate limit or held by the guessing guard: 429 with `Retry-After`.
    pub fn limited(refused: crate::core::Refused) -> Self {
        let secs =
            refused.retry_after.as_secs() + u64::from(refused.retry_after.subsec_nanos() > 0);
        let (code, message) = match refused.rule {
            "guard" => (
                "too_many_failures",
                "too many wrong codes from this API key; verification is paused",
            ),
            "lock_budget" => (
                "lock_budget_exceeded",
                "this API key's wrong codes have locked limits.locks_per_key cards; they count no more for now",
            ),
            "bad_keys" => (
                "too_many_bad_keys",
                "too many requests without a valid API key from this address",
            ),
            _ => ("rate_limited", "too many requests"),
        };
        Self {
            retry_after: Some(secs.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    /// The database is unreachable or too slow: nothing was decided, retry later.
    pub fn unavailable() -> Self {
        Self {
            retry_after: Some(RETRY_UNAVAILABLE_SECS),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service is temporarily unavailable; nothing was decided, retry later",
            )
        }
    }

    /// A wrong activation code, of a card or a token: counted.
    pub fn wrong_activation_code(attempts_left: i64) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "activation_invalid",
            format!("wrong activation code; {attempts_left} attempts left"),
        )
    }

    /// No activation waits any more: what to do instead is in `message`.
    pub fn activation_expired(message: &'static str) -> Self {
        Self::new(StatusCode::GONE, "activation_expired", message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

/// An error answer's `code`, on the response for the request log (`mod.rs`).
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// The one error body of the API.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: invalid_pan, unauthorized, rate_limited, …
    #[schema(example = "invalid_pan")]
    code: &'static str,
    /// For people; never contains a card number.
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response.extensions_mut().insert(ErrorCode(self.code));
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Msisdn(m) => Self::bad_request(
                "invalid_msisdn",
                format!("msisdn is not a valid phone number ({m:?})"),
            ),
            CoreError::RequestIdReused => Self::new(
                StatusCode::CONFLICT,
                "request_id_reused",
                "request_id was already used for a different request",
            ),
            CoreError::Domain(DomainError::Exists(Existing::Card(id))) => Self::new(
                StatusCode::CONFLICT,
                "card_exists",
                format!("this card is already enrolled as card {id}"),
            ),
            CoreError::Domain(DomainError::NotFound(Missing::Card)) => {
                Self::not_found("no such card")
            }
            CoreError::Domain(DomainError::WrongState(Conflict::LockNotLiftable { until })) => Self::new(
                StatusCode::CONFLICT,
                "lock_not_liftable",
                format!(
                    "the bank's policy locks this card until {until} (epoch ms); nobody can lift the lock earlier"
                ),
            ),
            CoreError::Domain(DomainError::WrongState(Conflict::Card(status))) => Self::new(
                StatusCode::CONFLICT,
                "wrong_status",
                format!("the card is {}; this change does not apply", status.as_str()),
            ),
            CoreError::PhoneRecentlyChanged { until } => Self::new(
                StatusCode::CONFLICT,
                "phone_recently_changed",
                format!("the card's phone number changed recently; pushed codes are held back until {until} (epoch ms): use another factor"),
            ),
            CoreError::SimSwapped => Self::new(
                StatusCode::CONFLICT,
                "sim_swapped",
                "the operator says the SIM of the card's phone number changed recently; no code was sent: use another factor",
            ),
            CoreError::SimSwapUnchecked(_) => Self {
                retry_after: Some(RETRY_UNAVAILABLE_SECS),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "sim_swap_unavailable",
                    "the operator's SIM-swap check did not answer and this bank sends no code then; nothing was sent",
                )
            },
            CoreError::UnknownChallenge => Self::bad_request(
                "unknown_challenge",
                "no such challenge_id for this API key",
            ),
            CoreError::TransactionRequired => Self::bad_request(
                "transaction_required",
                "this bank's policy requires a transaction {type, amount, currency, payee}",
            ),
            CoreError::Policy(e) => {
                use otpgw_rules::payment::PolicyError as P;
                let code = match e {
                    P::EpinFormat => "invalid_epin",
                    P::EpinWeak => "weak_epin",
                    _ => "invalid_transaction",
                };
                Self::bad_request(code, e.to_string())
            }
            CoreError::Domain(DomainError::NotFound(Missing::ApiKey)) => {
                Self::not_found("no such API key")
            }
            CoreError::Domain(DomainError::NotFound(Missing::Token)) => {
                Self::not_found("no such token")
            }
            CoreError::Domain(DomainError::WrongState(Conflict::Token(state))) => Self::new(
                StatusCode::CONFLICT,
                "wrong_token_state",
                format!("the token is {}; this change does not apply", state.as_str()),
            ),
            CoreError::Domain(DomainError::Exists(Existing::TokenSerial)) => Self::new(
                StatusCode::CONFLICT,
                "serial_exists",
                "a token with this serial is already enrolled",
            ),
            CoreError::Token(crate::core::TokenError::NoResync) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "resync_failed",
                "the two codes do not match the token anywhere near now",
            ),
            CoreError::Token(e) => Self::bad_request("invalid_token", e.to_string()),
            // Operators are managed from the CLI and the console only.
            CoreError::Operator(e) => Self::bad_request("invalid_operator", e.to_string()),
            // Two-person rules are the console's; the JSON API never proposes.
            CoreError::Approval(e) => Self::new(StatusCode::CONFLICT, "approval", e.to_string()),
            CoreError::Forbidden | CoreError::Domain(DomainError::NotAllowed(_)) => {
                Self::forbidden()
            }
            CoreError::ReasonRequired => {
                Self::bad_request("reason_required", "a reason is required")
            }
            CoreError::NotEnrolled => Self::new(
                StatusCode::NOT_FOUND,
                "not_enrolled",
                "no card with this number is enrolled",
            ),
            CoreError::CardNotActive(status) => Self::new(
                StatusCode::CONFLICT,
                "card_not_active",
                format!(
                    "the card is {}; the bank must re-activate it first",
                    status.as_str()
                ),
            ),
            CoreError::Limited { retry_after } => Self::limited(crate::core::Refused {
                retry_after,
                rule: "card",
            }),
            CoreError::LockBudgetExceeded { retry_after } => {
                Self::limited(crate::core::Refused {
                    retry_after,
                    rule: "lock_budget",
                })
            }
            CoreError::NoRoute => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_route",
                "no operator connection serves this card's phone number",
            ),
            CoreError::Busy => Self {
                retry_after: Some(1),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "the outgoing queue is full; the code was not sent",
                )
            },
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable: answered 503");
                Self::unavailable()
            }
            CoreError::Timeout | CoreError::IdentityProvider => Self::unavailable(),
            CoreError::Domain(e) => {
                tracing::error!(error = %e, "store failure");
                Self::internal()
            }
        }
    }
}

/// `axum::Json` with our error body on rejection.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The answer of a core value, in its view.
    pub fn of<U: Into<T>>(value: U) -> Self {
        Self(value.into())
    }
}

impl<T> Json<Vec<T>> {
    /// The answer of core values, each in its view.
    pub fn of_each<U: Into<T>>(values: Vec<U>) -> Self {
        Self(values.into_iter().map(Into::into).collect())
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let code = match &r {
            JsonRejection::MissingJsonContentType(_) => "content_type",
            JsonRejection::JsonSyntaxError(_) => "invalid_json",
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            _ => "invalid_body",
        };
        Self::new(r.status(), code, without_quoted_values(&r.body_text()))
    }
}

/// serde quotes offending values in backticks (`invalid type: integer `4111…``);
/// a value could be a card number, so quoted text with a digit in it is dropped, while
/// field names (`missing field `pan``) stay.
fn without_quoted_values(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for (i, part) in msg.split('`').enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
        } else if part.chars().any(char::is_numeric) {
            out.push_str("`…`");
        } else {
            out.push('`');
            out.push_str(part);
            out.push('`');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoted_values_are_dropped_and_field_names_kept() {
        assert_eq!(
            super::without_quoted_values(
                "pan: invalid type: integer `4111111111111111`, expected a string"
            ),
            "pan: invalid type: integer `…`, expected a string"
        );
        assert_eq!(
            super::without_quoted_values("missing field `pan`"),
            "missing field `pan`"
        );
    }
}
