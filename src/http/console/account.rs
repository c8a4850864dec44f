//! An operator's own account and an administrator's role change: the
//! self-service password change of a signed-in local operator (the current
//! password, the new one twice; the rules of `otpgw_rules::operators`, none of the
//! last five; the operator's other sessions end), and the role form on the
//! operators page (`Operators::set_role`: not oneself, not the last enabled
//! admin; the operator's sessions end; the form is `marks.rs`'s). Its words in fa
//! and en are here.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::pages::layout;
use super::{csrf_input, failure, html, Clerk, Lang};
use crate::core::{Conflict, CoreError, DomainError, OperatorError};
use crate::http::state::AppState;
use otpgw_rules::operators::PasswordError;
use otpgw_rules::records::Who;
use otpgw_rules::vocab::{Language, Role};

struct Words {
    title: &'static str,
    current: &'static str,
    new: &'static str,
    again: &'static str,
    change: &'static str,
    changed: &'static str,
    mismatch: &'static str,
    wrong_current: &'static str,
    only_operators: &'static str,
    last_admin: &'static str,
}

const EN: Words = Words {
    title: "Change your password",
    current: "Current password",
    new: "New password",
    again: "New password again",
    change: "Change password",
    changed: "Your password was changed. Your other console sessions have ended.",
    mismatch: "The two new passwords differ.",
    wrong_current: "The current password is wrong.",
    only_operators:
        "Only a named operator has a password here; API keys are managed on the keys page.",
    last_admin: "The last enabled administrator cannot be disabled or demoted.",
};

const FA: Words = Words {
    title: "تغییر گذرواژهٔ شما",
    current: "گذرواژهٔ کنونی",
    new: "گذرواژهٔ تازه",
    again: "تکرار گذرواژهٔ تازه",
    change: "تغییر گذرواژه",
    changed: "گذرواژهٔ شما تغییر کرد. نشست‌های دیگر شما در کنسول پایان یافت.",
    mismatch: "دو گذرواژهٔ تازه یکسان نیستند.",
    wrong_current: "گذرواژهٔ کنونی نادرست است.",
    only_operators:
        "فقط کاربر نام‌دار در این‌جا گذرواژه دارد؛ کلیدهای API در صفحهٔ کلیدها مدیریت می‌شوند.",
    last_admin: "آخرین مدیر فعال را نمی‌توان غیرفعال یا کم‌اختیار کرد.",
};

fn words(lang: Lang) -> &'static Words {
    match lang.lang {
        Language::Fa => &FA,
        Language::En => &EN,
    }
}

fn name_of(clerk: &Clerk) -> Option<&str> {
    match &clerk.who {
        Who::Operator { name, .. } => Some(name),
        _ => None,
    }
}

fn page_of(clerk: &Clerk, notice: Option<&str>, error: Option<&str>) -> Markup {
    let w = words(clerk.lang);
    layout(
        clerk.lang,
        Some(clerk),
        "/console/password",
        w.title,
        html! {
            @if let Some(n) = notice { p.notice role="status" id="notice" { (n) } }
            h1 { (w.title) }
            @if let Some(e) = error { p.error role="alert" id="error" { (e) } }
            form method="post" action="/console/password" id="change-password" {
                (csrf_input(clerk))
                label for="current" { (w.current) }
                input type="password" id="current" name="current" autocomplete="current-password" maxlength="256" required;
                label for="new" { (w.new) }
                input type="password" id="new" name="new" autocomplete="new-password" maxlength="256" required;
                label for="again" { (w.again) }
                input type="password" id="again" name="again" autocomplete="new-password" maxlength="256" required;
                button type="submit" { (w.change) }
            }
        },
    )
}

pub(super) async fn password_page(clerk: Clerk) -> Response {
    if name_of(&clerk).is_none() {
        return clerk.say(StatusCode::FORBIDDEN, words(clerk.lang).only_operators);
    }
    html(clerk.lang, StatusCode::OK, page_of(&clerk, None, None))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    again: String,
}

pub(super) async fn change_password(
    State(state): State<AppState>,
    clerk: Clerk,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Result<Response, Response> {
    let form = clerk.posted(form, |f| &f.csrf)?;
    let (w, t) = (words(clerk.lang), clerk.lang.texts());
    let Some(name) = name_of(&clerk) else {
        return Err(clerk.say(StatusCode::FORBIDDEN, w.only_operators));
    };
    let again = |status, text: &str| html(clerk.lang, status, page_of(&clerk, None, Some(text)));
    if form.new != form.again {
        return Err(again(StatusCode::BAD_REQUEST, w.mismatch));
    }
    if form.current.len() > 256 || form.new.len() > 256 {
        return Err(again(StatusCode::BAD_REQUEST, t.password_long));
    }
    let changed = state
        .core
        .operators
        .change_password(name, &form.current, &form.new, &clerk.session_id)
        .await;
    match changed {
        Ok(()) => Ok(html(
            clerk.lang,
            StatusCode::OK,
            page_of(&clerk, Some(w.changed), None),
        )),
        Err(CoreError::Operator(e)) => {
            let text = match e {
                OperatorError::CurrentPassword => w.wrong_current,
                OperatorError::Password(p) => match p {
                    PasswordError::TooShort => t.password_short,
                    PasswordError::TooLong => t.password_long,
                    PasswordError::OneClass => t.password_one_class,
                    PasswordError::HoldsName => t.password_name,
                    PasswordError::Reused => t.password_reused,
                },
                _ => t.bad_form,
            };
            Err(again(StatusCode::BAD_REQUEST, text))
        }
        Err(e) => Err(failure(clerk.lang, e)),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RoleForm {
    csrf: String,
    role: String,
}

pub(super) async fn set_role(
    State(state): State<AppState>,
    clerk: Clerk,
    Path(name): Path<String>,
    form: Result<Form<RoleForm>, FormRejection>,
) -> Result<Response, Response> {
    let form = clerk.posted(form, |f| &f.csrf)?;
    clerk.admin_only()?;
    let t = clerk.lang.texts();
    let Some(role) = Role::parse(&form.role) else {
        return Err(clerk.say(StatusCode::BAD_REQUEST, t.bad_form));
    };
    let changed = state
        .core
        .operators
        .set_role(&name, role, &clerk.who.actor())
        .await;
    match changed {
        Ok(_) => Ok(Redirect::to("/console/operators").into_response()),
        Err(e) => {
            tracing::info!(actor = %clerk.who.actor(), error = %e, "console role change refused");
            Err(match e {
                CoreError::Domain(DomainError::WrongState(Conflict::LastAdmin)) => {
                    clerk.say(StatusCode::CONFLICT, words(clerk.lang).last_admin)
                }
                CoreError::Operator(OperatorError::OneSelf(_)) => {
                    clerk.say(StatusCode::FORBIDDEN, t.not_yourself)
                }
                CoreError::Operator(_) => clerk.say(StatusCode::BAD_REQUEST, t.bad_form),
                CoreError::Domain(DomainError::NotFound(_)) => {
                    clerk.say(StatusCode::NOT_FOUND, t.not_found)
                }
                e => failure(clerk.lang, e),
            })
        }
    }
}
