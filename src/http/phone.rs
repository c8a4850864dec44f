//! `POST /v1/cards/{id}/phone`: the help desk moves a card to another phone number.
//! The live code is voided, both numbers get a notice (client mode), and pushed
//! codes wait out `[policy] after_phone_change`.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::answers::PhoneErrors;
use super::caller::{AdminOn, Card};
use super::error::Json;
use super::paths::CardId;
use super::views::CardView;
use super::{ApiError, AppState};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PhoneRequest {
    /// The new number, national or international (normalised as at enrolment).
    #[schema(example = "09121234567")]
    msisdn: String,
    /// Why (audited; anything shaped like a card number or code is masked).
    #[schema(example = "new SIM, customer at branch 112 with ID")]
    reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PhoneChangedView {
    card: CardView,
    /// The notice to the old number: `sent` (queued), `no_route` (no operator
    /// connection serves it, or no client mode), `queue_full`.
    #[schema(example = "sent")]
    old_number_notice: &'static str,
    /// The confirmation to the new number, as above.
    #[schema(example = "sent")]
    new_number_notice: &'static str,
}

/// Change a card's phone number (role `admin`). Audited `phone_changed` with both
/// numbers, the reason and who.
#[utoipa::path(post, path = "/v1/cards/{id}/phone", tag = "cards",
    params(CardId), request_body = PhoneRequest,
    security(("bearer" = [])),
    responses((status = 200, body = PhoneChangedView), PhoneErrors))]
pub async fn change_phone(
    State(state): State<AppState>,
    card: AdminOn<Card, Json<PhoneRequest>>,
) -> Result<Json<PhoneChangedView>, ApiError> {
    let Json(req) = &card.body;
    if req.msisdn.chars().count() > 32 || req.reason.chars().count() > 2000 {
        return Err(ApiError::bad_request(
            "invalid_body",
            "msisdn at most 32 and reason at most 2000 characters",
        ));
    }
    let actor = card.key.actor();
    let changed = state
        .core
        .backoffice
        .change_phone(card.id, &req.msisdn, &req.reason, &actor, None)
        .await?;
    Ok(Json(PhoneChangedView {
        card: changed.card.into(),
        old_number_notice: changed.old_notice.as_str(),
        new_number_notice: changed.new_notice.as_str(),
    }))
}
