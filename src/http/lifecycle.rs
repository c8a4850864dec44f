//! The end of a card's life over HTTP: `POST /v1/cards/{id}/close`,
//! `POST /v1/cards/{id}/reissue`, and `GET /v1/cards?msisdn=` (a phone number's
//! cards, closed ones too, a page at a time) for the help desk and the card system.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use otpgw_rules::vocab::CardStatus;
use serde::{Deserialize, Serialize};

use super::answers::{CardErrors, LifecycleErrors};
use super::caller::{Admin, AdminOn, Card};
use super::error::Json;
use super::fields;
use super::paths::CardId;
use super::views::CardView;
use super::{ApiError, AppState};

/// Reasons are for people; the core cuts them shorter still.
const MAX_REASON_CHARS: usize = 2000;

fn check_reason(reason: &str) -> Result<(), ApiError> {
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::bad_request(
            "invalid_body",
            "reason must be at most 2000 characters",
        ));
    }
    Ok(())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CloseRequest {
    /// Why (audited; anything shaped like a card number or code is masked).
    #[schema(example = "account closed at the customer's request")]
    reason: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReissueRequest {
    /// The new card number (13 to 19 digits).
    #[schema(example = "6037991234567890")]
    pan: String,
    #[schema(example = "card expired, reissued by the card system")]
    reason: String,
}

/// Close a card (role `admin`): its last 4 digits get "not registered", verify
/// answers `not_enrolled`, its live code is voided and its tokens revoked; its
/// history is kept and its number may be enrolled again as a new card. Audited
/// `closed`.
#[utoipa::path(post, path = "/v1/cards/{id}/close", tag = "cards",
    params(CardId), request_body = CloseRequest,
    security(("bearer" = [])),
    responses((status = 200, body = CardView), LifecycleErrors))]
pub async fn close(
    State(state): State<AppState>,
    card: AdminOn<Card, Json<CloseRequest>>,
) -> Result<Json<CardView>, ApiError> {
    let Json(req) = &card.body;
    check_reason(&req.reason)?;
    let actor = card.key.actor();
    let closed = state
        .core
        .backoffice
        .close(card.id, &req.reason, &actor, None)
        .await?;
    Ok(Json::of(closed))
}

/// Give a card a new card number (role `admin`): the card keeps its id, phone,
/// ePIN, tokens and lock state; the old number becomes a closed card of its own
/// (`replaced_by` this one) whose digits get "not registered"; the live code is
/// voided. Audited `reissued` (and `closed` on the old number).
#[utoipa::path(post, path = "/v1/cards/{id}/reissue", tag = "cards",
    params(CardId), request_body = ReissueRequest,
    security(("bearer" = [])),
    responses((status = 200, body = CardView), LifecycleErrors))]
pub async fn reissue(
    State(state): State<AppState>,
    card: AdminOn<Card, Json<ReissueRequest>>,
) -> Result<Json<CardView>, ApiError> {
    let Json(req) = &card.body;
    check_reason(&req.reason)?;
    let pan = fields::pan(&req.pan)?;
    let actor = card.key.actor();
    let backoffice = &state.core.backoffice;
    let reissued = backoffice
        .reissue(card.id, &pan, &req.reason, &actor)
        .await?;
    Ok(Json::of(reissued))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// The phone number, national or international (normalised as at enrolment).
    msisdn: String,
    /// Only cards in this status, as of now (a timed lock that ended is `active`).
    #[param(value_type = Option<super::views::CardStatus>)]
    status: Option<CardStatus>,
    /// `next_cursor` of the page before; absent for the first page.
    cursor: Option<String>,
    /// Cards per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CardList {
    cards: Vec<CardView>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// A phone number's cards, closed ones included, oldest first (role `admin`).
#[utoipa::path(get, path = "/v1/cards", tag = "cards",
    params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = CardList), CardErrors))]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListParams>, QueryRejection>,
    _admin: Admin,
) -> Result<Json<CardList>, ApiError> {
    let Query(params) = query.map_err(|_| {
        ApiError::bad_request(
            "invalid_query",
            "msisdn is required; status (active, locked, suspended, pending, closed), cursor and limit are optional",
        )
    })?;
    let after =
        match params.cursor.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(raw.parse::<i64>().ok().filter(|c| *c >= 0).ok_or_else(|| {
                ApiError::bad_request("invalid_cursor", "not a cursor of this list")
            })?),
        };
    let limit = params.limit.unwrap_or(20);
    if !(1..=crate::core::MAX_CARD_PAGE).contains(&limit) || params.msisdn.len() > 32 {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be 1 to 100 and msisdn at most 32 characters",
        ));
    }
    let page = state
        .core
        .backoffice
        .cards_page(&params.msisdn, params.status, after, limit)
        .await?;
    Ok(Json(CardList {
        cards: page.cards.into_iter().map(CardView::from).collect(),
        next_cursor: page.next.map(|n| n.to_string()),
    }))
}
