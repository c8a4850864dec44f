//! The machine's words in the clerk's language: states of cards, codes, deliveries
//! and tokens, verify results, roles, channels and event kinds. Every function
//! matches on the vocabulary's enum, so a new state or kind without its fa and en
//! words does not compile. The API keeps its tokens (`locked`, `invalid`); the
//! console never shows them to a Persian reader.

use otpgw_rules::events::EventKind;
use otpgw_rules::tokens::{TokenSource, TokenState};
use otpgw_rules::vocab::{CardStatus, CodeState, Delivery, Language, Reason, Role, Verdict};

/// One word in both languages.
fn pick(lang: Language, en: &'static str, fa: &'static str) -> &'static str {
    match lang {
        Language::En => en,
        Language::Fa => fa,
    }
}

pub fn card_status(lang: Language, s: CardStatus) -> &'static str {
    match s {
        CardStatus::Active => pick(lang, "active", "فعال"),
        CardStatus::Locked => pick(lang, "locked", "قفل"),
        CardStatus::Suspended => pick(lang, "suspended", "معلق"),
        CardStatus::Pending => pick(lang, "waiting for activation", "در انتظار فعال‌سازی"),
        CardStatus::Closed => pick(lang, "closed", "بسته"),
    }
}

pub fn code_state(lang: Language, s: CodeState) -> &'static str {
    match s {
        CodeState::Live => pick(lang, "live", "معتبر"),
        CodeState::Used => pick(lang, "used", "به‌کاررفته"),
        CodeState::Superseded => pick(lang, "replaced by a newer code", "جایگزین‌شده با رمز تازه‌تر"),
        CodeState::Expired => pick(lang, "expired", "منقضی"),
        CodeState::Failed => pick(lang, "voided by the lock", "باطل‌شده با قفل"),
    }
}

pub fn delivery(lang: Language, d: Option<Delivery>) -> &'static str {
    match d {
        None => "–",
        Some(Delivery::Queued) => pick(lang, "queued", "در صف"),
        Some(Delivery::Submitted) => pick(lang, "handed to the operator", "تحویل به اپراتور"),
        Some(Delivery::Delivered) => pick(lang, "delivered", "رسیده به گوشی"),
        Some(Delivery::Undelivered) => pick(lang, "not delivered", "نرسیده"),
        Some(Delivery::Expired) => pick(lang, "expired undelivered", "منقضی پیش از رسیدن"),
    }
}

pub fn reason(lang: Language, r: Reason) -> &'static str {
    match r {
        Reason::Invalid => pick(lang, "wrong code", "رمز نادرست"),
        Reason::Expired => pick(lang, "code expired", "رمز منقضی"),
        Reason::Used => pick(lang, "code already used", "رمز پیش‌تر به‌کاررفته"),
        Reason::Locked => pick(lang, "card locked or suspended", "کارت قفل یا معلق"),
        Reason::NotEnrolled => pick(lang, "card not enrolled", "کارت ثبت‌نشده"),
        Reason::TransactionMismatch => pick(lang, "another payment", "تراکنش دیگر"),
        Reason::AmountExceedsCap => pick(lang, "amount above the cap", "مبلغ بیش از سقف"),
        Reason::TransactionRequired => pick(lang, "no payment named", "بدون تراکنش"),
        Reason::NotActivated => pick(lang, "card not activated", "کارت فعال‌نشده"),
    }
}

pub fn verdict(lang: Language, v: Verdict) -> String {
    match v {
        Verdict::Approved => pick(lang, "approved", "تأیید شد").to_owned(),
        Verdict::Rejected(r) => format!("{}: {}", pick(lang, "rejected", "رد شد"), reason(lang, r)),
    }
}

pub fn token_state(lang: Language, s: TokenState) -> &'static str {
    match s {
        TokenState::Pending => pick(lang, "waiting for activation", "در انتظار فعال‌سازی"),
        TokenState::Active => pick(lang, "active", "فعال"),
        TokenState::Suspended => pick(lang, "suspended", "معلق"),
        TokenState::Revoked => pick(lang, "revoked", "باطل"),
        TokenState::Locked => pick(lang, "locked", "قفل"),
    }
}

pub fn token_source(lang: Language, s: TokenSource) -> &'static str {
    match s {
        TokenSource::Software => pick(lang, "app", "نرم‌افزاری"),
        TokenSource::Hardware => pick(lang, "hardware", "سخت‌افزاری"),
    }
}

pub fn role(lang: Language, r: Role) -> &'static str {
    match r {
        Role::Admin => pick(lang, "administrator", "مدیر"),
        Role::Helpdesk => pick(lang, "help desk", "پشتیبانی"),
        Role::Verifier => pick(lang, "verifier", "تأییدکننده"),
        Role::Ussd => pick(lang, "USSD gateway", "درگاه USSD"),
    }
}

/// A code's channel as stored (`sms`, `ussd`, `push`…); an unknown one as it is.
pub fn channel(lang: Language, c: &str) -> String {
    match c {
        "sms" => pick(lang, "SMS", "پیامک").to_owned(),
        "ussd" => "USSD".to_owned(),
        "push" | "api" => pick(lang, "sent by the bank", "ارسال از بانک").to_owned(),
        other => other.to_owned(),
    }
}

/// The short name of an event kind (the audit filter's choices, the table's column).
pub fn kind(lang: Language, k: EventKind) -> &'static str {
    use EventKind as K;
    match k {
        K::Enrolled => pick(lang, "card enrolled", "ثبت کارت"),
        K::ActivationIssued => pick(lang, "activation code made", "ساخت کد فعال‌سازی"),
        K::ActivationSent => pick(lang, "activation code sent", "ارسال کد فعال‌سازی"),
        K::ActivationFailed => pick(lang, "wrong activation code", "کد فعال‌سازی نادرست"),
        K::Activated => pick(lang, "card activated", "فعال‌سازی کارت"),
        K::CodeIssued => pick(lang, "code issued", "صدور رمز"),
        K::Verified => pick(lang, "code verified", "بررسی رمز"),
        K::Locked => pick(lang, "card locked", "قفل کارت"),
        K::LockExpired => pick(lang, "timed lock ended", "پایان قفل زمان‌دار"),
        K::Reactivated => pick(lang, "card re-activated", "فعال‌سازی دوباره کارت"),
        K::Suspended => pick(lang, "card suspended", "تعلیق کارت"),
        K::PhoneChanged => pick(lang, "phone number changed", "تغییر شماره تلفن"),
        K::SimSwapped => pick(lang, "refused: SIM changed", "رد به‌سبب تعویض سیم‌کارت"),
        K::EpinSet => pick(lang, "ePIN set", "تعیین رمز اینترنتی"),
        K::EpinCleared => pick(lang, "ePIN removed", "حذف رمز اینترنتی"),
        K::Reissued => pick(lang, "new card number", "شماره کارت تازه"),
        K::Closed => pick(lang, "card closed", "بستن کارت"),
        K::VerifyGuardTripped => pick(lang, "guessing guard tripped", "فعال‌شدن محافظ حدس رمز"),
        K::TokenEnrolled => pick(lang, "token enrolled", "ثبت توکن"),
        K::TokenActivationSent => pick(lang, "token activation sent", "ارسال کد فعال‌سازی توکن"),
        K::TokenActivationFailed => pick(lang, "token activation failed", "فعال‌سازی ناموفق توکن"),
        K::TokenActivated => pick(lang, "token activated", "فعال‌سازی توکن"),
        K::TokenSuspended => pick(lang, "token suspended", "تعلیق توکن"),
        K::TokenReactivated => pick(lang, "token re-activated", "فعال‌سازی دوباره توکن"),
        K::TokenRevoked => pick(lang, "token revoked", "ابطال توکن"),
        K::TokenResynced => pick(lang, "token resynchronised", "همگام‌سازی توکن"),
        K::ApiKeyCreated => pick(lang, "API key created", "ساخت کلید API"),
        K::ApiKeyRevoked => pick(lang, "API key revoked", "ابطال کلید API"),
        K::ConsoleSigninRefused => pick(lang, "single sign-on refused", "رد ورود یکپارچه"),
        K::ConsoleSignedIn => pick(lang, "console sign-in", "ورود به کنسول"),
        K::ConsoleSessionRevoked => pick(lang, "console session ended", "پایان نشست کنسول"),
        K::OperatorAdded => pick(lang, "operator added", "افزودن کاربر"),
        K::OperatorDisabled => pick(lang, "operator disabled", "غیرفعال‌کردن کاربر"),
        K::OperatorEnabled => pick(lang, "operator enabled", "فعال‌کردن کاربر"),
        K::OperatorReset => pick(lang, "operator reset", "بازنشانی کاربر"),
        K::OperatorLocked => pick(lang, "operator locked", "قفل کاربر"),
        K::ConsoleSignInFailed => pick(lang, "console sign-in refused", "رد ورود به کنسول"),
        K::OperatorPasswordChanged => pick(lang, "password changed", "تغییر گذرواژه"),
        K::OperatorRoleChanged => pick(lang, "operator role changed", "تغییر نقش کاربر"),
        K::ApprovalProposed => pick(lang, "two-person proposal", "پیشنهاد دو نفره"),
        K::ApprovalApproved => pick(lang, "proposal approved", "تأیید پیشنهاد"),
        K::ApprovalRefused => pick(lang, "proposal refused", "رد پیشنهاد"),
        K::ApprovalWithdrawn => pick(lang, "proposal withdrawn", "پس‌گرفتن پیشنهاد"),
        K::ApprovalDenied => pick(lang, "approval not allowed", "تأیید نامجاز"),
        K::ApprovalFailed => pick(lang, "approved action refused", "رد کار تأییدشده"),
        K::ApprovalExpired => pick(lang, "proposal expired", "انقضای پیشنهاد"),
        K::ConfigReloaded => pick(lang, "configuration reloaded", "بارگذاری دوباره پیکربندی"),
        K::ConfigReloadRefused => {
            pick(lang, "configuration reload refused", "رد بارگذاری پیکربندی")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_name_in_each_language() {
        for lang in [Language::En, Language::Fa] {
            let mut names: Vec<&str> = EventKind::ALL.iter().map(|k| kind(lang, *k)).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), EventKind::ALL.len());
        }
    }
}
