//! The help desk's daily work: the home page (the health strip and the find
//! form), a card's page (its codes, verifications, lock, tokens) and the status
//! changes a clerk may make, each with a reason.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::{bad_form, failure, forbidden, html, message, pages, parse_id, Clerk};
use crate::core::ports::StatusChange;
use crate::core::{CoreError, DomainError};
use crate::http::state::AppState;
use otpgw_rules::codes::Pan;

pub(super) async fn home(State(state): State<AppState>, clerk: Clerk) -> Response {
    let health = match state.core.backoffice.health().await {
        Ok(h) => h,
        Err(e) => return failure(clerk.lang, e),
    };
    let strip = pages::HealthStrip {
        numbers: health,
        smpp_sessions: state.links.listener_sessions(),
        connections: state.links.client_mode().then(|| {
            state
                .links
                .connections()
                .into_iter()
                .map(|c| (c.name, c.state))
                .collect()
        }),
    };
    html(
        clerk.lang,
        StatusCode::OK,
        pages::home(&clerk, &strip, None),
    )
}

#[derive(Deserialize)]
pub(super) struct FindForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pan: String,
    #[serde(default)]
    msisdn: String,
}

pub(super) async fn find(
    State(state): State<AppState>,
    clerk: Clerk,
    form: Result<Form<FindForm>, FormRejection>,
) -> Response {
    let lang = clerk.lang;
    let t = lang.texts();
    let Form(form) = match form {
        Ok(f) => f,
        Err(r) => return bad_form(lang, r),
    };
    if let Some(resp) = clerk.refuse_csrf(&form.csrf) {
        return resp;
    }
    let cards = if !form.pan.trim().is_empty() {
        // The number is parsed and hashed, then dropped; an error never quotes it.
        let Ok(pan) = Pan::parse(&form.pan) else {
            return html(
                lang,
                StatusCode::BAD_REQUEST,
                pages::find_result(&clerk, Some(t.invalid_pan), &[]),
            );
        };
        match state.core.backoffice.lookup(&pan).await {
            Ok(card) => card.into_iter().collect::<Vec<_>>(),
            Err(e) => return failure(lang, e),
        }
    } else if !form.msisdn.trim().is_empty() {
        match state.core.backoffice.cards_by_msisdn(&form.msisdn).await {
            Ok(cards) => cards,
            Err(CoreError::Msisdn(_)) => {
                return html(
                    lang,
                    StatusCode::BAD_REQUEST,
                    pages::find_result(&clerk, Some(t.invalid_msisdn), &[]),
                )
            }
            Err(e) => return failure(lang, e),
        }
    } else {
        return html(
            lang,
            StatusCode::BAD_REQUEST,
            pages::find_result(&clerk, Some(t.give_one), &[]),
        );
    };
    match cards.as_slice() {
        [card] => Redirect::to(&format!("/console/cards/{}", card.id)).into_response(),
        [] => html(
            lang,
            StatusCode::NOT_FOUND,
            pages::find_result(&clerk, Some(t.no_card), &[]),
        ),
        many => html(lang, StatusCode::OK, pages::find_result(&clerk, None, many)),
    }
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
) -> Response {
    let lang = clerk.lang;
    let Some(id) = parse_id(&id) else {
        return message(
            lang,
            StatusCode::NOT_FOUND,
            lang.texts().not_found,
            Some(&clerk),
        );
    };
    match state.core.backoffice.card_view(id).await {
        Ok(Some(view)) => html(
            lang,
            StatusCode::OK,
            pages::card(&clerk, &view, query.done.as_deref()),
        ),
        Ok(None) => message(
            lang,
            StatusCode::NOT_FOUND,
            lang.texts().not_found,
            Some(&clerk),
        ),
        Err(e) => failure(lang, e),
    }
}

#[derive(Deserialize)]
pub(super) struct ChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub(super) async fn reactivate(
    state: State<AppState>,
    clerk: Clerk,
    id: Path<String>,
    form: Result<Form<ChangeForm>, FormRejection>,
) -> Response {
    change(state, clerk, id, form, StatusChange::Reactivate).await
}

pub(super) async fn suspend(
    state: State<AppState>,
    clerk: Clerk,
    id: Path<String>,
    form: Result<Form<ChangeForm>, FormRejection>,
) -> Response {
    change(state, clerk, id, form, StatusChange::Suspend).await
}

async fn change(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(id): Path<String>,
    form: Result<Form<ChangeForm>, FormRejection>,
    change: StatusChange,
) -> Response {
    let lang = clerk.lang;
    let Form(form) = match form {
        Ok(f) => f,
        Err(r) => return bad_form(lang, r),
    };
    if let Some(resp) = clerk.refuse_csrf(&form.csrf) {
        return resp;
    }
    let Some(id) = parse_id(&id) else {
        return message(
            lang,
            StatusCode::NOT_FOUND,
            lang.texts().not_found,
            Some(&clerk),
        );
    };
    match state
        .core
        .backoffice
        .console_change(clerk.key, id, change, &form.reason)
        .await
    {
        Ok(_) => {
            let done = match change {
                StatusChange::Reactivate => "reactivated",
                StatusChange::Suspend => "suspended",
            };
            Redirect::to(&format!("/console/cards/{id}?done={done}")).into_response()
        }
        Err(CoreError::Forbidden | CoreError::Domain(DomainError::NotAllowed(_))) => {
            forbidden(&clerk)
        }
        Err(CoreError::ReasonRequired) => message(
            lang,
            StatusCode::BAD_REQUEST,
            lang.texts().reason_required,
            Some(&clerk),
        ),
        Err(e) => failure(lang, e),
    }
}
