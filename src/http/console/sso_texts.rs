//! Single sign-on's words in fa and en, and the sign-in page's link to it: a leaf
//! that `pages.rs` and `oidc.rs` both read (kept out of `i18n.rs`'s big table).

use maud::{html, Markup};
use otpgw_rules::vocab::Language;

pub(super) struct Words {
    pub(super) sign_in_with: &'static str,
    pub(super) sso_title: &'static str,
    pub(super) sso_intro: &'static str,
    pub(super) signed_in: &'static str,
    pub(super) go_on: &'static str,
    pub(super) login_ended: &'static str,
    pub(super) provider_refused: &'static str,
    pub(super) no_role: &'static str,
    pub(super) try_again: &'static str,
    pub(super) signed_out: &'static str,
    pub(super) sign_out_there: &'static str,
    pub(super) not_configured: &'static str,
}

const EN: Words = Words {
    sign_in_with: "Sign in with the bank's single sign-on",
    sso_title: "Single sign-on",
    sso_intro: "Staff with an account in the bank's directory sign in there.",
    signed_in: "Signed in",
    go_on: "Continue to the console",
    login_ended: "This sign-in has ended or was not started in this browser. Sign in again.",
    provider_refused: "The identity provider's answer was refused. Sign in again, or ask the administrators.",
    no_role: "Your account has no role in this console. Ask the administrators to add you to a group that has one.",
    try_again: "Back to sign-in",
    signed_out: "Signed out of the console",
    sign_out_there: "Sign out of the bank's single sign-on too",
    not_configured: "Single sign-on is not configured.",
};

const FA: Words = Words {
    sign_in_with: "ورود با ورود یکپارچهٔ بانک",
    sso_title: "ورود یکپارچه",
    sso_intro: "کارکنانی که در فهرست کاربران بانک حساب دارند از آنجا وارد می‌شوند.",
    signed_in: "وارد شدید",
    go_on: "ادامه به کنسول",
    login_ended: "این ورود به پایان رسیده یا در این مرورگر آغاز نشده است. دوباره وارد شوید.",
    provider_refused: "پاسخ سامانهٔ هویت پذیرفته نشد. دوباره وارد شوید یا از مدیران بپرسید.",
    no_role: "حساب شما در این کنسول نقشی ندارد. از مدیران بخواهید شما را به گروهی با نقش بیفزایند.",
    try_again: "بازگشت به ورود",
    signed_out: "از کنسول خارج شدید",
    sign_out_there: "از ورود یکپارچهٔ بانک هم خارج شوید",
    not_configured: "ورود یکپارچه پیکربندی نشده است.",
};

pub(super) fn words(lang: Language) -> &'static Words {
    match lang {
        Language::Fa => &FA,
        Language::En => &EN,
    }
}

/// The sign-in page's section that links to single sign-on.
pub(super) fn sign_in_link(lang: Language) -> Markup {
    let w = words(lang);
    html! {
        section aria-labelledby="sso-title" {
            h2 id="sso-title" { (w.sso_title) }
            p { (w.sso_intro) }
            p { a href="/console/oidc/login" id="sso" { (w.sign_in_with) } }
        }
    }
}
