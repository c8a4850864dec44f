//! Request fields several endpoints take, each checked one way with one 400: the
//! card number, the caller's `request_id`, and the payment a code is bound to.

use serde::Deserialize;

use super::ApiError;
use otpgw_rules::codes::Pan;
use otpgw_rules::payment::Transaction;

/// The number is never quoted back: the error says only what is wrong with it.
pub fn pan(raw: &str) -> Result<Pan, ApiError> {
    Pan::parse(raw).map_err(|e| ApiError::bad_request("invalid_pan", e.to_string()))
}

/// The caller's id of a request, which a retry repeats.
pub fn request_id(raw: &str) -> Result<&str, ApiError> {
    let id = raw.trim();
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_request_id",
            "request_id must be 1 to 64 printable ASCII characters",
        ));
    }
    Ok(id)
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
    pub fn parse(&self) -> Result<Transaction, ApiError> {
        Transaction::new(&self.kind, self.amount, &self.currency, &self.payee)
            .map_err(|e| ApiError::bad_request("invalid_transaction", e.to_string()))
    }

    /// An optional payment, parsed when present.
    pub fn parse_some(body: &Option<Self>) -> Result<Option<Transaction>, ApiError> {
        body.as_ref().map(Self::parse).transpose()
    }
}
