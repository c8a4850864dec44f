//! The audit trail as sentences a help-desk clerk reads: who did what to which card,
//! in fa or en, with the event's numbers, names and ids each isolated (`<bdi>`), so
//! a Latin actor or a number inside Persian text keeps its place. The raw detail
//! stays one click away, left-to-right, for engineers.

use maud::{html, Markup, PreEscaped};
use serde_json::Value;

use super::dates::{persian_digits, Dates};
use super::terms;
use otpgw_rules::events::EventKind;
use otpgw_rules::records::Event;
use otpgw_rules::vocab::{Language, Reason, Role, Verdict};

/// An event's sentence. A kind this build does not know (written by a newer node)
/// is shown by its stored name.
pub fn sentence(lang: Language, dates: &Dates, e: &Event) -> Markup {
    let Some(kind) = EventKind::parse(&e.kind) else {
        return html! { bdi { (e.kind) } };
    };
    let template = template(lang, kind);
    let reason = e.detail["reason"]
        .as_str()
        .filter(|_| free_text_reason(kind));
    html! {
        (fill(lang, dates, template, e))
        @if let Some(reason) = reason {
            " " (pick(lang, "Reason:", "دلیل:")) " " q { bdi { (reason) } }
        }
    }
}

fn pick(lang: Language, en: &'static str, fa: &'static str) -> &'static str {
    match lang {
        Language::En => en,
        Language::Fa => fa,
    }
}

/// Kinds whose `reason` is a clerk's own words (others carry a machine reason,
/// which the template names in the clerk's language).
fn free_text_reason(kind: EventKind) -> bool {
    use EventKind as K;
    matches!(
        kind,
        K::Reactivated
            | K::Suspended
            | K::PhoneChanged
            | K::Reissued
            | K::Closed
            | K::TokenSuspended
            | K::TokenReactivated
            | K::TokenRevoked
            | K::ApprovalProposed
            | K::ApprovalRefused
    )
}

/// Replaces each `{name}` of `template` with the event's value, isolated.
fn fill(lang: Language, dates: &Dates, template: &str, e: &Event) -> Markup {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&escape(&rest[..open]));
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        let value = value(lang, dates, name, e);
        out.push_str(&format!("<bdi>{}</bdi>", escape(&value)));
        rest = &rest[open + close + 1..];
    }
    out.push_str(&escape(rest));
    PreEscaped(out)
}

fn escape(s: &str) -> String {
    html! { (s) }.into_string()
}

/// One placeholder's text: counts in the clerk's digits, states in their words.
fn value(lang: Language, dates: &Dates, name: &str, e: &Event) -> String {
    let d = &e.detail;
    let number = |v: &Value| -> String {
        let n = v
            .as_i64()
            .map(|n| n.to_string())
            .unwrap_or_else(|| "–".into());
        match lang {
            Language::Fa => persian_digits(&n),
            Language::En => n,
        }
    };
    match name {
        "actor" => e.actor.clone(),
        "result" => {
            let reason = d["reason"].as_str().and_then(Reason::parse);
            let verdict = match (d["result"].as_str(), reason) {
                (Some("approved"), _) => Some(Verdict::Approved),
                (_, Some(r)) => Some(Verdict::Rejected(r)),
                _ => None,
            };
            verdict.map_or_else(|| "–".into(), |v| terms::verdict(lang, v))
        }
        "role" => d["role"]
            .as_str()
            .and_then(Role::parse)
            .map_or_else(|| "–".into(), |r| terms::role(lang, r).to_owned()),
        "channel" => terms::channel(lang, d["channel"].as_str().unwrap_or("–")),
        "until" => d["locked_until"]
            .as_i64()
            .or_else(|| d["expires_at"].as_i64())
            .map_or_else(|| "–".into(), |ms| dates.show(ms)),
        "operator" | "error" | "reason" | "proposer" => d[name].as_str().unwrap_or("–").to_owned(),
        "to" => d["to"]
            .as_str()
            .and_then(Role::parse)
            .map_or_else(|| "–".into(), |r| terms::role(lang, r).to_owned()),
        "action" => action(lang, d["action"].as_str().unwrap_or("–")).to_owned(),
        other => number(&d[other]),
    }
}

/// A two-person action's name in the clerk's words.
fn action(lang: Language, name: &str) -> &'static str {
    match name {
        "lift_lock" => pick(lang, "lifting a lock", "رفع قفل"),
        "phone_change" => pick(lang, "a phone change", "تغییر شمارهٔ تلفن"),
        "card_close" => pick(lang, "closing a card", "بستن کارت"),
        "apikey_create" => pick(lang, "a new API key", "ساخت کلید API"),
        _ => "–",
    }
}

fn template(lang: Language, k: EventKind) -> &'static str {
    use EventKind as K;
    match k {
        K::Enrolled => pick(
            lang,
            "{actor} enrolled the card.",
            "{actor} کارت را ثبت کرد.",
        ),
        K::ActivationIssued => pick(
            lang,
            "An activation code was made, valid until {until}.",
            "کد فعال‌سازی ساخته شد، معتبر تا {until}.",
        ),
        K::ActivationSent => pick(
            lang,
            "The activation code was sent to the customer's phone.",
            "کد فعال‌سازی به تلفن مشتری فرستاده شد.",
        ),
        K::ActivationFailed => pick(
            lang,
            "A wrong activation code was entered ({failures} so far).",
            "کد فعال‌سازی نادرست وارد شد (تاکنون {failures} بار).",
        ),
        K::Activated => pick(
            lang,
            "The customer activated the card.",
            "مشتری کارت را فعال کرد.",
        ),
        K::CodeIssued => pick(
            lang,
            "A code was issued by {channel} at {actor}'s request.",
            "رمز پویا از راه {channel} به درخواست {actor} صادر شد.",
        ),
        K::Verified => pick(
            lang,
            "{actor} checked a code: {result}. Attempts left: {attempts_left}.",
            "{actor} رمزی را بررسی کرد: {result}. تلاش‌های باقی‌مانده: {attempts_left}.",
        ),
        K::Locked => pick(
            lang,
            "The card was locked after {failures} failed verifications.",
            "کارت پس از {failures} بررسی ناموفق قفل شد.",
        ),
        K::LockExpired => pick(
            lang,
            "The timed lock ended by itself.",
            "قفل زمان‌دار خودبه‌خود پایان یافت.",
        ),
        K::Reactivated => pick(
            lang,
            "{actor} re-activated the card.",
            "{actor} کارت را دوباره فعال کرد.",
        ),
        K::Suspended => pick(
            lang,
            "{actor} suspended the card.",
            "{actor} کارت را معلق کرد.",
        ),
        K::PhoneChanged => pick(
            lang,
            "{actor} changed the card's phone number.",
            "{actor} شماره تلفن کارت را تغییر داد.",
        ),
        K::SimSwapped => pick(
            lang,
            "A code was refused: the phone's SIM changed lately.",
            "صدور رمز رد شد: سیم‌کارت این شماره به‌تازگی عوض شده است.",
        ),
        K::EpinSet => pick(
            lang,
            "{actor} set the card's ePIN.",
            "{actor} رمز اینترنتی کارت را تعیین کرد.",
        ),
        K::EpinCleared => pick(
            lang,
            "{actor} removed the card's ePIN.",
            "{actor} رمز اینترنتی کارت را حذف کرد.",
        ),
        K::Reissued => pick(
            lang,
            "{actor} gave the card a new number.",
            "{actor} برای کارت شماره تازه گذاشت.",
        ),
        K::Closed => pick(lang, "{actor} closed the card.", "{actor} کارت را بست."),
        K::VerifyGuardTripped => pick(
            lang,
            "Too many wrong codes from {actor}: the guessing guard held them back.",
            "رمزهای نادرست بسیار از {actor}: محافظ حدس رمز آن‌ها را نگه داشت.",
        ),
        K::TokenEnrolled => pick(
            lang,
            "{actor} enrolled token {token_id}.",
            "{actor} توکن {token_id} را ثبت کرد.",
        ),
        K::TokenActivationSent => pick(
            lang,
            "The activation code of token {token_id} was sent.",
            "کد فعال‌سازی توکن {token_id} فرستاده شد.",
        ),
        K::TokenActivationFailed => pick(
            lang,
            "Activating token {token_id} failed.",
            "فعال‌سازی توکن {token_id} ناموفق بود.",
        ),
        K::TokenActivated => pick(
            lang,
            "Token {token_id} was activated.",
            "توکن {token_id} فعال شد.",
        ),
        K::TokenSuspended => pick(
            lang,
            "{actor} suspended token {token_id}.",
            "{actor} توکن {token_id} را معلق کرد.",
        ),
        K::TokenReactivated => pick(
            lang,
            "{actor} re-activated token {token_id}.",
            "{actor} توکن {token_id} را دوباره فعال کرد.",
        ),
        K::TokenRevoked => pick(
            lang,
            "{actor} revoked token {token_id}.",
            "{actor} توکن {token_id} را باطل کرد.",
        ),
        K::TokenResynced => pick(
            lang,
            "{actor} resynchronised token {token_id} (drift {drift} steps).",
            "{actor} توکن {token_id} را همگام کرد (رانش {drift} گام).",
        ),
        K::ApiKeyCreated => pick(
            lang,
            "{actor} created API key {api_key_id} ({role}).",
            "{actor} کلید API شمارهٔ {api_key_id} ({role}) را ساخت.",
        ),
        K::ApiKeyRevoked => pick(
            lang,
            "{actor} revoked API key {api_key_id}.",
            "{actor} کلید API شمارهٔ {api_key_id} را باطل کرد.",
        ),
        K::ConsoleSigninRefused => pick(
            lang,
            "A single sign-on by {actor} was refused ({reason}).",
            "ورود یکپارچهٔ {actor} رد شد ({reason}).",
        ),
        K::ConsoleSignedIn => pick(
            lang,
            "{actor} signed in to the console.",
            "{actor} وارد کنسول شد.",
        ),
        K::ConsoleSessionRevoked => pick(
            lang,
            "{actor} ended a console session.",
            "{actor} یک نشست کنسول را پایان داد.",
        ),
        K::OperatorAdded => pick(
            lang,
            "{actor} added operator {operator} ({role}).",
            "{actor} کاربر {operator} ({role}) را افزود.",
        ),
        K::OperatorDisabled => pick(
            lang,
            "{actor} disabled operator {operator}.",
            "{actor} کاربر {operator} را غیرفعال کرد.",
        ),
        K::OperatorEnabled => pick(
            lang,
            "{actor} enabled operator {operator}.",
            "{actor} کاربر {operator} را فعال کرد.",
        ),
        K::OperatorReset => pick(
            lang,
            "{actor} reset the password and second factor of operator {operator}.",
            "{actor} گذرواژه و عامل دوم کاربر {operator} را بازنشانی کرد.",
        ),
        K::OperatorLocked => pick(
            lang,
            "Operator {operator} was locked after {failed_signins} failed sign-ins.",
            "کاربر {operator} پس از {failed_signins} ورود ناموفق قفل شد.",
        ),
        K::ConsoleSignInFailed => pick(
            lang,
            "A console sign-in as {actor} was refused.",
            "ورود به کنسول به نام {actor} رد شد.",
        ),
        K::OperatorPasswordChanged => pick(
            lang,
            "{actor} changed their own password.",
            "{actor} گذرواژهٔ خود را تغییر داد.",
        ),
        K::OperatorRoleChanged => pick(
            lang,
            "{actor} gave operator {operator} the role {to}.",
            "{actor} به کاربر {operator} نقش {to} داد.",
        ),
        K::ApprovalProposed => pick(
            lang,
            "{actor} proposed {action} (proposal {proposal}); it waits for a second person.",
            "{actor} {action} را پیشنهاد داد (پیشنهاد {proposal})؛ در انتظار نفر دوم است.",
        ),
        K::ApprovalApproved => pick(
            lang,
            "{actor} approved proposal {proposal} ({action}) of {proposer}.",
            "{actor} پیشنهاد {proposal} ({action}) از {proposer} را تأیید کرد.",
        ),
        K::ApprovalRefused => pick(
            lang,
            "{actor} refused proposal {proposal} ({action}) of {proposer}.",
            "{actor} پیشنهاد {proposal} ({action}) از {proposer} را رد کرد.",
        ),
        K::ApprovalWithdrawn => pick(
            lang,
            "{actor} withdrew proposal {proposal} ({action}).",
            "{actor} پیشنهاد {proposal} ({action}) را پس گرفت.",
        ),
        K::ApprovalDenied => pick(
            lang,
            "{actor} may not approve proposal {proposal} ({action}) of {proposer}.",
            "{actor} اجازهٔ تأیید پیشنهاد {proposal} ({action}) از {proposer} را ندارد.",
        ),
        K::ApprovalFailed => pick(
            lang,
            "{actor} approved proposal {proposal} ({action}), but the action was refused then.",
            "{actor} پیشنهاد {proposal} ({action}) را تأیید کرد، اما انجام کار در آن زمان رد شد.",
        ),
        K::ApprovalExpired => pick(
            lang,
            "Proposal {proposal} ({action}) of {proposer} expired undecided.",
            "پیشنهاد {proposal} ({action}) از {proposer} بی‌تصمیم منقضی شد.",
        ),
        K::ConfigReloaded => pick(
            lang,
            "{actor} reloaded the configuration.",
            "{actor} پیکربندی را دوباره بارگذاری کرد.",
        ),
        K::ConfigReloadRefused => pick(
            lang,
            "A reload asked by {actor} was refused: {error}",
            "بارگذاری دوباره به درخواست {actor} رد شد: {error}",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, actor: &str, detail: Value) -> Event {
        Event {
            id: 1,
            card_id: Some(7),
            kind: kind.into(),
            actor: actor.into(),
            detail,
            at: 0,
        }
    }

    #[test]
    fn a_verify_reads_as_a_sentence_with_its_values_isolated() {
        let dates = Dates::new(Language::Fa, jiff::tz::TimeZone::UTC);
        let e = event(
            "verified",
            "apikey:3",
            json!({"result": "rejected", "reason": "invalid", "attempts_left": 2}),
        );
        let fa = sentence(Language::Fa, &dates, &e).into_string();
        assert_eq!(
            fa,
            "<bdi>apikey:3</bdi> رمزی را بررسی کرد: <bdi>رد شد: رمز نادرست</bdi>. تلاش‌های باقی‌مانده: <bdi>۲</bdi>."
        );
        let en = sentence(Language::En, &dates, &e).into_string();
        assert!(en.contains("<bdi>rejected: wrong code</bdi>"), "{en}");
    }

    #[test]
    fn a_clerks_reason_is_quoted_and_escaped() {
        let dates = Dates::new(Language::En, jiff::tz::TimeZone::UTC);
        let e = event(
            "suspended",
            "operator:sara",
            json!({"reason": "<b>fraud</b>"}),
        );
        let en = sentence(Language::En, &dates, &e).into_string();
        assert!(en.contains("&lt;b&gt;fraud&lt;/b&gt;"), "{en}");
        assert!(
            en.starts_with("<bdi>operator:sara</bdi> suspended the card."),
            "{en}"
        );
    }
}
