//! Operators for administrators: the list with disable, enable and reset, a form to
//! add one, and the live console sessions with revoke (the role form is
//! `marks.rs`'s). The core refuses acting on
//! oneself and disabling the last enabled admin; this page says why.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::pages::layout;
use super::session::CsrfForm;
use super::{csrf_input, failure, html, Clerk};
use crate::core::ports::{OperatorInfo, SessionInfo};
use crate::core::{Conflict, CoreError, DomainError, Existing, OperatorError};
use crate::http::state::AppState;
use otpgw_rules::codes;
use otpgw_rules::operators::PasswordError;
use otpgw_rules::vocab::Role;

pub(super) async fn page(
    State(state): State<AppState>,
    clerk: Clerk,
) -> Result<Response, Response> {
    clerk.admin_only()?;
    Ok(html(
        clerk.lang,
        StatusCode::OK,
        list(&state, &clerk).await?,
    ))
}

async fn list(state: &AppState, clerk: &Clerk) -> Result<Markup, Response> {
    let ops = state.core.operators.list().await;
    let ops = ops.map_err(|e| failure(clerk.lang, e))?;
    let sessions = state.core.operators.sessions().await;
    let sessions = sessions.map_err(|e| failure(clerk.lang, e))?;
    Ok(operators_page(clerk, &ops, &sessions))
}

/// A refusal the administrator can act on, as a page; anything else as `failure`.
fn refused(clerk: &Clerk, e: CoreError) -> Response {
    let t = clerk.lang.texts();
    let text = match &e {
        CoreError::Operator(OperatorError::OneSelf(_)) => t.not_yourself,
        CoreError::Operator(OperatorError::Name(_)) => t.invalid_name,
        CoreError::Operator(OperatorError::Role) => t.bad_form,
        CoreError::Operator(OperatorError::Password(p)) => match p {
            PasswordError::TooShort => t.password_short,
            PasswordError::TooLong => t.password_long,
            PasswordError::OneClass => t.password_one_class,
            PasswordError::HoldsName => t.password_name,
            PasswordError::Reused => t.password_reused,
        },
        CoreError::Domain(DomainError::WrongState(Conflict::LastAdmin)) => t.last_admin,
        CoreError::Domain(DomainError::Exists(Existing::Operator)) => t.operator_exists,
        CoreError::Domain(DomainError::NotFound(_)) => t.not_found,
        _ => return failure(clerk.lang, e),
    };
    tracing::info!(actor = %clerk.who.actor(), error = %e, "console operator action refused");
    let status = match e {
        CoreError::Domain(DomainError::NotFound(_)) => StatusCode::NOT_FOUND,
        CoreError::Domain(_) => StatusCode::CONFLICT,
        CoreError::Operator(OperatorError::OneSelf(_)) => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    clerk.say(status, text)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct AddForm {
    csrf: String,
    name: String,
    role: String,
    password: String,
}

crate::telemetry::debug_only!(AddForm { name, role });

pub(super) async fn add(
    State(state): State<AppState>,
    clerk: Clerk,
    form: Result<Form<AddForm>, FormRejection>,
) -> Result<Response, Response> {
    let form = clerk.posted(form, |f| &f.csrf)?;
    clerk.admin_only()?;
    let Some(role) = Role::parse(&form.role) else {
        return Err(clerk.say(StatusCode::BAD_REQUEST, clerk.lang.texts().bad_form));
    };
    let added = state
        .core
        .operators
        .add(form.name.trim(), role, &form.password, &clerk.who.actor())
        .await;
    added.map_err(|e| refused(&clerk, e))?;
    Ok(Redirect::to("/console/operators").into_response())
}

/// Disable or enable, by the operator's name in the path.
pub(super) fn set_disabled(disabled: bool) -> axum::routing::MethodRouter<AppState> {
    axum::routing::post(
        move |State(state): State<AppState>,
              clerk: Clerk,
              Path(name): Path<String>,
              form: Result<Form<CsrfForm>, FormRejection>| async move {
            clerk.posted(form, |f| &f.csrf)?;
            clerk.admin_only()?;
            let changed = state
                .core
                .operators
                .set_disabled(&name, disabled, &clerk.who.actor())
                .await;
            changed.map_err(|e| refused(&clerk, e))?;
            Ok::<_, Response>(Redirect::to("/console/operators").into_response())
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ResetForm {
    csrf: String,
    password: String,
}

pub(super) async fn reset(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(name): Path<String>,
    form: Result<Form<ResetForm>, FormRejection>,
) -> Result<Response, Response> {
    let form = clerk.posted(form, |f| &f.csrf)?;
    clerk.admin_only()?;
    let reset = state
        .core
        .operators
        .reset(&name, &form.password, &clerk.who.actor())
        .await;
    reset.map_err(|e| refused(&clerk, e))?;
    Ok(Redirect::to("/console/operators").into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RevokeForm {
    csrf: String,
    session: String,
}

pub(super) async fn revoke_session(
    State(state): State<AppState>,
    clerk: Clerk,
    form: Result<Form<RevokeForm>, FormRejection>,
) -> Result<Response, Response> {
    let form = clerk.posted(form, |f| &f.csrf)?;
    clerk.admin_only()?;
    let handle = form.session.trim();
    if handle.len() != 64 || !handle.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(clerk.say(StatusCode::BAD_REQUEST, clerk.lang.texts().bad_form));
    }
    let revoked = state
        .core
        .operators
        .revoke_session(handle, &clerk.session_id, &clerk.who.actor())
        .await;
    revoked.map_err(|e| refused(&clerk, e))?;
    Ok(Redirect::to("/console/operators").into_response())
}

fn operators_page(clerk: &Clerk, ops: &[OperatorInfo], sessions: &[SessionInfo]) -> Markup {
    let t = clerk.lang.texts();
    let own = codes::api_key_hash(&clerk.session_id);
    layout(
        clerk.lang,
        Some(clerk),
        "/console/operators",
        t.operators,
        html! {
            h1 { (t.operators) }
            div.scroll tabindex="0" { table id="operators" {
                thead { tr {
                    th { (t.operator_name) } th { (t.role) } th { (t.state) } th { (t.totp) }
                    th { (t.failures) } th { (t.updated) } th { span.sr { (t.actions) } }
                } }
                tbody {
                    @for o in ops {
                        tr id={ "operator-" (o.name) } {
                            td { bdi { (o.name) } }
                            td data-role=(o.role.as_str()) { (super::terms::role(clerk.lang.lang, o.role)) }
                            td.state {
                                @if o.disabled_at.is_some() { (t.disabled) }
                                @else if o.locked_at.is_some() { (super::terms::card_status(clerk.lang.lang, otpgw_rules::vocab::CardStatus::Locked)) }
                                @else { (t.enabled) }
                            }
                            td { @if o.totp_enrolled { (t.totp_enrolled) } @else { (t.totp_not_enrolled) } }
                            td { (o.failed_signins) }
                            td { (clerk.dates.show(o.changed_at)) }
                            td { (actions(clerk, o)) }
                        }
                    }
                }
            } }
            p { (t.reset_hint) }
            section aria-labelledby="add-title" {
                h2 id="add-title" { (t.add_operator) }
                form method="post" action="/console/operators" id="add-operator" {
                    (csrf_input(clerk))
                    label for="op-name" { (t.operator_name) }
                    input type="text" id="op-name" name="name" maxlength="64" dir="ltr" autocomplete="off" required;
                    label for="op-role" { (t.role) }
                    select id="op-role" name="role" {
                        @for r in [Role::Helpdesk, Role::Admin] { option value=(r.as_str()) { (super::terms::role(clerk.lang.lang, r)) } }
                    }
                    label for="op-password" { (t.password) }
                    input type="password" id="op-password" name="password" autocomplete="new-password" maxlength="256" required;
                    button type="submit" { (t.create) }
                }
            }
            section aria-labelledby="sessions-title" {
                h2 id="sessions-title" { (t.sessions) }
                div.scroll tabindex="0" { table id="sessions" {
                    thead { tr { th { (t.actor) } th { (t.role) } th { (t.created) } th { (t.last_seen) } th { span.sr { (t.actions) } } } }
                    tbody {
                        @for s in sessions {
                            tr.session {
                                td { bdi { (s.actor) } }
                                td data-role=(s.role.as_str()) { (super::terms::role(clerk.lang.lang, s.role)) }
                                td { (clerk.dates.show(s.created_at)) }
                                td { (clerk.dates.show(s.last_seen_at)) }
                                td {
                                    @if codes::hashes_equal(&s.handle, &own) {
                                        (t.this_session)
                                    } @else {
                                        form method="post" action="/console/sessions/revoke" {
                                            (csrf_input(clerk))
                                            input type="hidden" name="session" value=(s.handle);
                                            button type="submit" class="danger" aria-label={ (t.revoke) " " (s.actor) } { (t.revoke) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        },
    )
}

fn actions(clerk: &Clerk, o: &OperatorInfo) -> Markup {
    let t = clerk.lang.texts();
    let base = format!("/console/operators/{}", o.name);
    html! {
        @if o.disabled_at.is_none() {
            form method="post" action={ (base) "/disable" } {
                (csrf_input(clerk))
                button type="submit" class="danger" aria-label={ (t.disable) " " (o.name) } { (t.disable) }
            }
        }
        @if o.disabled_at.is_some() || o.locked_at.is_some() {
            form method="post" action={ (base) "/enable" } {
                (csrf_input(clerk))
                button type="submit" aria-label={ (t.enable) " " (o.name) } { (t.enable) }
            }
        }
        (super::marks::role_form(clerk, o))
        form method="post" action={ (base) "/reset" } {
            (csrf_input(clerk))
            label for={ "reset-" (o.name) } { (t.new_password) }
            input type="password" id={ "reset-" (o.name) } name="password" autocomplete="new-password" maxlength="256" required;
            button type="submit" aria-label={ (t.reset) " " (o.name) } { (t.reset) }
        }
    }
}
