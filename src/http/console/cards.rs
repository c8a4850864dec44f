//! The help desk's daily work: the home page (the health strip and the find
//! form), a card's page (its codes, verifications, lock, tokens) and the status
//! changes a clerk may make, each with a reason (phone, number and closure: `life.rs`).

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{post, MethodRouter};
use axum::Form;
use serde::Deserialize;

use super::{card, failure, forbidden, html, life, pages, Clerk};
use crate::core::ports::StatusChange;
use crate::core::{CoreError, DomainError, Proposed};
use crate::http::state::AppState;
use otpgw_rules::approvals::Guarded;
use otpgw_rules::codes::Pan;

pub(super) async fn home(clerk: Clerk) -> Response {
    html(clerk.lang, StatusCode::OK, pages::home(&clerk, None))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct FindForm {
    csrf: String,
    pan: String,
    msisdn: String,
}

pub(super) async fn find(
    State(state): State<AppState>,
    clerk: Clerk,
    form: Result<Form<FindForm>, FormRejection>,
) -> Result<Response, Response> {
    let form = clerk.posted(form, |f| &f.csrf)?;
    let t = clerk.lang.texts();
    let found = |status, error, cards: &[_]| {
        html(clerk.lang, status, pages::find_result(&clerk, error, cards))
    };
    let cards = if !form.pan.trim().is_empty() {
        // The number is parsed and hashed, then dropped; an error never quotes it.
        let Ok(pan) = Pan::parse(&form.pan) else {
            return Err(found(StatusCode::BAD_REQUEST, Some(t.invalid_pan), &[]));
        };
        match state.core.backoffice.lookup(&pan).await {
            Ok(card) => card.into_iter().collect::<Vec<_>>(),
            Err(e) => return Err(failure(clerk.lang, e)),
        }
    } else if !form.msisdn.trim().is_empty() {
        match state.core.backoffice.cards_by_msisdn(&form.msisdn).await {
            Ok(cards) => cards,
            Err(CoreError::Msisdn(_)) => {
                return Err(found(StatusCode::BAD_REQUEST, Some(t.invalid_msisdn), &[]))
            }
            Err(e) => return Err(failure(clerk.lang, e)),
        }
    } else {
        return Err(found(StatusCode::BAD_REQUEST, Some(t.give_one), &[]));
    };
    Ok(match cards.as_slice() {
        [card] => Redirect::to(&format!("/console/cards/{}", card.id)).into_response(),
        [] => found(StatusCode::NOT_FOUND, Some(t.no_card), &[]),
        many => found(StatusCode::OK, None, many),
    })
}

#[derive(Deserialize)]
pub(super) struct CardQuery {
    done: Option<String>,
}

pub(super) async fn card_page(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(id): Path<String>,
    Query(query): Query<CardQuery>,
) -> Result<Response, Response> {
    let id = clerk.id(&id)?;
    match state.core.backoffice.card_view(id).await {
        Ok(Some(view)) => {
            let standing = life::standing(&state, &view);
            Ok(html(
                clerk.lang,
                StatusCode::OK,
                card::page(&clerk, &view, &standing, query.done.as_deref()),
            ))
        }
        Ok(None) => Err(clerk.say(StatusCode::NOT_FOUND, clerk.lang.texts().not_found)),
        Err(e) => Err(failure(clerk.lang, e)),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ChangeForm {
    csrf: String,
    reason: String,
}

/// The route of one status change: the same form and checks for each.
pub(super) fn change(to: StatusChange) -> MethodRouter<AppState> {
    post(
        move |state: State<AppState>,
              clerk: Clerk,
              Path(id): Path<String>,
              form: Result<Form<ChangeForm>, FormRejection>| async move {
            change_status(state, clerk, &id, form, to).await
        },
    )
}

async fn change_status(
    State(state): State<AppState>,
    clerk: Clerk,
    id: &str,
    form: Result<Form<ChangeForm>, FormRejection>,
    change: StatusChange,
) -> Result<Response, Response> {
    let form = clerk.posted(form, |f| &f.csrf)?;
    let id = clerk.id(id)?;
    if change == StatusChange::Reactivate && clerk.guards(Guarded::LiftLock) {
        let proposed = Proposed::LiftLock { card_id: id };
        return Ok(super::propose(&state, &clerk, proposed, &form.reason).await);
    }
    let changed = state
        .core
        .backoffice
        .console_change(
            &clerk.who,
            id,
            change,
            &form.reason,
            clerk.source.as_deref(),
        )
        .await;
    match changed {
        Ok(_) => {
            let done = match change {
                StatusChange::Reactivate => "reactivated",
                StatusChange::Suspend => "suspended",
            };
            Ok(Redirect::to(&format!("/console/cards/{id}?done={done}")).into_response())
        }
        Err(CoreError::Forbidden | CoreError::Domain(DomainError::NotAllowed(_))) => {
            Err(forbidden(&clerk))
        }
        Err(CoreError::ReasonRequired) => {
            Err(clerk.say(StatusCode::BAD_REQUEST, clerk.lang.texts().reason_required))
        }
        Err(e) => Err(failure(clerk.lang, e)),
    }
}
