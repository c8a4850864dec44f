//! What other pages draw for the two-person rules and the operators' accounts:
//! the header's links (open proposals with their count, an operator's password
//! page), the note on a guarded action's form, and an operator's role form. Apart
//! from `approvals.rs` and `account.rs`, which draw whole pages with `pages.rs`,
//! so that `pages.rs` can draw these without a circle. Its words in fa and en are
//! here.

use maud::{html, Markup};

use super::{csrf_input, Clerk};
use crate::core::ports::OperatorInfo;
use otpgw_rules::approvals::Guarded;
use otpgw_rules::records::Who;
use otpgw_rules::vocab::{Language, Role};

struct Words {
    approvals: &'static str,
    needs_second: &'static str,
    password: &'static str,
    role: &'static str,
    set_role: &'static str,
}

const EN: Words = Words {
    approvals: "Approvals",
    needs_second: "Needs a second person: sending this makes a proposal, done only when another clerk approves it.",
    password: "Password",
    role: "Role",
    set_role: "Change role",
};

const FA: Words = Words {
    approvals: "تأییدها",
    needs_second: "نیاز به نفر دوم: ارسال این فرم یک پیشنهاد می‌سازد که تنها با تأیید کارمند دیگری انجام می‌شود.",
    password: "گذرواژه",
    role: "نقش",
    set_role: "تغییر نقش",
};

fn words(clerk: &Clerk) -> &'static Words {
    match clerk.lang.lang {
        Language::Fa => &FA,
        Language::En => &EN,
    }
}

/// The header's links: the open proposals with their count (only when some
/// action is under two-person rules) and, for a local operator, their password.
pub(super) fn nav(clerk: &Clerk) -> Markup {
    let w = words(clerk);
    html! {
        @if let Some(n) = clerk.open_proposals {
            a href="/console/approvals" id="nav-approvals" { (w.approvals) " " span.count id="approvals-count" { (n) } }
        }
        @if matches!(clerk.who, Who::Operator { .. }) {
            a href="/console/password" id="nav-password" { (w.password) }
        }
    }
}

/// The note on a guarded action's form.
pub(super) fn note(clerk: &Clerk, action: Guarded) -> Markup {
    html! {
        @if clerk.guards(action) {
            p.four-eyes id={ "four-eyes-" (action.as_str()) } { (words(clerk).needs_second) }
        }
    }
}

/// The role form of one operator's row on the operators page.
pub(super) fn role_form(clerk: &Clerk, o: &OperatorInfo) -> Markup {
    let w = words(clerk);
    let id = format!("role-{}", o.name);
    html! {
        form method="post" action={ "/console/operators/" (o.name) "/role" } {
            (csrf_input(clerk))
            label for=(id) { (w.role) }
            select id=(id) name="role" {
                @for r in [Role::Helpdesk, Role::Admin] {
                    option value=(r.as_str()) selected[r == o.role] { (super::terms::role(clerk.lang.lang, r)) }
                }
            }
            button type="submit" aria-label={ (w.set_role) " " (o.name) } { (w.set_role) }
        }
    }
}
