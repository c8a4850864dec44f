//! API keys for administrators: the list (never a key), a new key shown once, and
//! revocation.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::session::CsrfForm;
use super::{failure, html, pages, Clerk};
use crate::core::Proposed;
use crate::http::state::AppState;
use otpgw_rules::approvals::Guarded;
use otpgw_rules::records::Who;
use otpgw_rules::vocab::Role;

pub(super) async fn keys_page(
    State(state): State<AppState>,
    clerk: Clerk,
) -> Result<Response, Response> {
    clerk.admin_only()?;
    let keys = state.core.access.keys().await;
    let keys = keys.map_err(|e| failure(clerk.lang, e))?;
    Ok(html(clerk.lang, StatusCode::OK, pages::keys(&clerk, &keys)))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CreateKeyForm {
    csrf: String,
    role: String,
    label: String,
    /// The newest key id when the form was drawn (see `pages::keys`).
    after: String,
    /// Asked when two-person rules guard key creation.
    reason: String,
}

pub(super) async fn create_key(
    State(state): State<AppState>,
    clerk: Clerk,
    form: Result<Form<CreateKeyForm>, FormRejection>,
) -> Result<Response, Response> {
    let form = clerk.posted(form, |f| &f.csrf)?;
    clerk.admin_only()?;
    let lang = clerk.lang;
    let Some(role) = Role::parse(&form.role) else {
        return Err(clerk.say(StatusCode::BAD_REQUEST, lang.texts().bad_form));
    };
    // A form sent again (a reload of the page showing the new key re-posts it)
    // makes no second key: the newest key is no longer the one it was drawn after.
    let keys = state.core.access.keys().await;
    let keys = keys.map_err(|e| failure(lang, e))?;
    let newest = keys.iter().map(|k| k.id).max().unwrap_or(0);
    if form.after.trim().parse::<i64>().ok() != Some(newest) {
        tracing::info!(
            actor = %clerk.who.actor(),
            "console key form refused: used or stale"
        );
        return Err(clerk.say(StatusCode::CONFLICT, lang.texts().key_form_used));
    }
    let label: String = form.label.trim().chars().take(100).collect();
    let label = Some(label).filter(|l| !l.is_empty());
    if clerk.guards(Guarded::ApikeyCreate) {
        let proposed = Proposed::ApikeyCreate { role, label };
        return Ok(super::propose(&state, &clerk, proposed, &form.reason).await);
    }
    let created = state
        .core
        .access
        .create_key(
            role,
            label.as_deref(),
            &clerk.who.actor(),
            clerk.source.as_deref(),
        )
        .await;
    let (id, key) = created.map_err(|e| failure(lang, e))?;
    // Shown once, on a page that is never cached (see `security_headers`).
    let page = pages::new_key(&clerk, id, role, &key);
    Ok(html(lang, StatusCode::CREATED, page))
}

pub(super) async fn revoke_key(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(id): Path<String>,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, Response> {
    clerk.posted(form, |f| &f.csrf)?;
    clerk.admin_only()?;
    let id = clerk.id(&id)?;
    // The key this session signed in with: revoking it would end the session
    // mid-action; another administrator does it.
    if matches!(&clerk.who, Who::Key(key) if key.id == id) {
        return Err(clerk.say(StatusCode::FORBIDDEN, clerk.lang.texts().not_yourself));
    }
    let revoked = state.core.access.revoke(id, &clerk.who.actor()).await;
    revoked.map_err(|e| failure(clerk.lang, e))?;
    Ok(Redirect::to("/console/keys").into_response())
}
