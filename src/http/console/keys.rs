//! API keys for administrators: the list (never a key), a new key shown once, and
//! revocation.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::session::CsrfForm;
use super::{bad_form, failure, html, message, pages, parse_id, Clerk};
use crate::http::state::AppState;
use otpgw_rules::vocab::Role;

pub(super) async fn keys_page(State(state): State<AppState>, clerk: Clerk) -> Response {
    if let Some(resp) = clerk.refuse_non_admin() {
        return resp;
    }
    match state.core.access.keys().await {
        Ok(keys) => html(clerk.lang, StatusCode::OK, pages::keys(&clerk, &keys)),
        Err(e) => failure(clerk.lang, e),
    }
}

#[derive(Deserialize)]
pub(super) struct CreateKeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    label: String,
    /// The newest key id when the form was drawn (see `pages::keys`).
    #[serde(default)]
    after: String,
}

pub(super) async fn create_key(
    State(state): State<AppState>,
    clerk: Clerk,
    form: Result<Form<CreateKeyForm>, FormRejection>,
) -> Response {
    let lang = clerk.lang;
    let Form(form) = match form {
        Ok(f) => f,
        Err(r) => return bad_form(lang, r),
    };
    if let Some(resp) = clerk.refuse_csrf(&form.csrf) {
        return resp;
    }
    if let Some(resp) = clerk.refuse_non_admin() {
        return resp;
    }
    let Some(role) = Role::parse(&form.role) else {
        return message(
            lang,
            StatusCode::BAD_REQUEST,
            lang.texts().bad_form,
            Some(&clerk),
        );
    };
    // A form sent again (a reload of the page showing the new key re-posts it)
    // makes no second key: the newest key is no longer the one it was drawn after.
    let newest = match state.core.access.keys().await {
        Ok(keys) => keys.iter().map(|k| k.id).max().unwrap_or(0),
        Err(e) => return failure(lang, e),
    };
    if form.after.trim().parse::<i64>().ok() != Some(newest) {
        tracing::info!(
            api_key_id = clerk.key.id,
            "console key form refused: used or stale"
        );
        return message(
            lang,
            StatusCode::CONFLICT,
            lang.texts().key_form_used,
            Some(&clerk),
        );
    }
    let label: String = form.label.trim().chars().take(100).collect();
    let label = Some(label).filter(|l| !l.is_empty());
    match state
        .core
        .access
        .create_key(role, label.as_deref(), &clerk.key.actor())
        .await
    {
        // Shown once, on a page that is never cached (see `security_headers`).
        Ok((id, key)) => html(
            lang,
            StatusCode::CREATED,
            pages::new_key(&clerk, id, role, &key),
        ),
        Err(e) => failure(lang, e),
    }
}

pub(super) async fn revoke_key(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let lang = clerk.lang;
    let Form(form) = match form {
        Ok(f) => f,
        Err(r) => return bad_form(lang, r),
    };
    if let Some(resp) = clerk.refuse_csrf(&form.csrf) {
        return resp;
    }
    if let Some(resp) = clerk.refuse_non_admin() {
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
    match state.core.access.revoke(id, &clerk.key.actor()).await {
        Ok(_) => Redirect::to("/console/keys").into_response(),
        Err(e) => failure(lang, e),
    }
}
