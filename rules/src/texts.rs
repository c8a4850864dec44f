//! Every word a customer reads, in one place, in Persian and English. The transport
//! picks GSM-7 or UCS-2 from the rendered text, so texts here are plain strings.

use crate::payment::Transaction;
use crate::vocab::{to_persian_digits, Language};

/// What a reply says; also the label on the `replies` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Code,
    NotEnrolled,
    NoSuchCard,
    Ambiguous,
    FullPan,
    Locked,
    Help,
    Unrecognised,
    /// Over a rate limit: when to try again.
    Limited,
    /// The card waits for activation (`[policy] require_activation`).
    NotActivated,
    /// The activation code sent to a newly enrolled card's phone.
    Activation,
    /// The second part of a token's activation code (the first is on the ATM
    /// receipt or the bank's screen).
    TokenActivation,
    /// To the old number after a phone change: the customer learns of a
    /// fraudulent change.
    PhoneChangedOld,
    /// To the new number after a phone change.
    PhoneChangedNew,
    /// The operator says the number's SIM changed lately (`[sim_swap]`): no code
    /// is sent to a SIM that may be a fraudster's; the customer must see the bank.
    SimSwapped,
    /// No code now for a reason that will pass (the SIM-swap check could not be
    /// made and the bank refuses codes then): try again later.
    Unavailable,
}

impl ReplyKind {
    pub const ALL: [ReplyKind; 16] = [
        Self::Code,
        Self::NotEnrolled,
        Self::NoSuchCard,
        Self::Ambiguous,
        Self::FullPan,
        Self::Locked,
        Self::Help,
        Self::Unrecognised,
        Self::Limited,
        Self::NotActivated,
        Self::Activation,
        Self::TokenActivation,
        Self::PhoneChangedOld,
        Self::PhoneChangedNew,
        Self::SimSwapped,
        Self::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::NotEnrolled => "not_enrolled",
            Self::NoSuchCard => "no_such_card",
            Self::Ambiguous => "ambiguous",
            Self::FullPan => "full_pan",
            Self::Locked => "locked",
            Self::Help => "help",
            Self::Unrecognised => "unrecognised",
            Self::Limited => "limited",
            Self::NotActivated => "not_activated",
            Self::Activation => "activation",
            Self::TokenActivation => "token_activation",
            Self::PhoneChangedOld => "phone_changed_old",
            Self::PhoneChangedNew => "phone_changed_new",
            Self::SimSwapped => "sim_swapped",
            Self::Unavailable => "unavailable",
        }
    }
}

/// The values a text may mention. Only `code` is secret, and it goes nowhere but
/// into the text of the reply.
#[derive(Default)]
pub struct Params<'a> {
    pub code: &'a str,
    pub ttl_secs: u64,
    pub digits: &'a str,
    pub short_code: &'a str,
    pub retry_secs: u64,
    /// The payment a code is bound to: the SMS names its type, amount and payee
    /// before the code, so the customer sees what the code will approve.
    pub transaction: Option<&'a Transaction>,
    /// The customer's cap (whole units) and its currency, restated in the reply.
    pub cap: Option<(u64, &'a str)>,
}

pub fn render(kind: ReplyKind, lang: Language, p: &Params<'_>) -> String {
    render_from(template(kind, lang), kind, lang, p)
}

/// As `render`, from the bank's own `template` (see `wording.rs`) in place of the
/// built-in one; the payment and cap lines before a code stay the gateway's.
pub fn render_from(template: &str, kind: ReplyKind, lang: Language, p: &Params<'_>) -> String {
    let body = fill(template, |name| value(p, lang, name));
    if kind != ReplyKind::Code {
        return body;
    }
    let mut head = String::new();
    if let Some(t) = p.transaction {
        let amount = crate::payment::format_amount(t.amount, &t.currency, lang);
        head.push_str(&match lang {
            Language::En => format!("{}: {} to {}\n", t.kind.label(lang), amount, t.payee),
            Language::Fa => format!("{}: {} به {}\n", t.kind.label(lang), amount, t.payee),
        });
    }
    if let Some((cap, currency)) = p.cap {
        head.push_str(&cap_line(cap, currency, lang));
        head.push('\n');
    }
    head + &body
}

/// The customer's cap restated, grouped in the language's digits: `Limit: 2,500,000
/// IRR` or `سقف مبلغ: ۲٬۵۰۰٬۰۰۰ IRR`. The SMS reply and the USSD screen say it alike.
pub fn cap_line(cap: u64, currency: &str, lang: Language) -> String {
    let sep = if lang == Language::Fa { '٬' } else { ',' };
    let mut amount = crate::payment::group_digits(cap, sep);
    if lang == Language::Fa {
        amount = to_persian_digits(&amount);
    }
    match lang {
        Language::En => format!("Limit: {amount} {currency}"),
        Language::Fa => format!("سقف مبلغ: {amount} {currency}"),
    }
}

/// The text of `kind` in `lang`, with `{name}` where a value of [`values`] goes.
fn template(kind: ReplyKind, lang: Language) -> &'static str {
    use Language::{En, Fa};
    use ReplyKind::*;
    match (kind, lang) {
        (Code, En) => {
            "Your dynamic password: {code}\nValid {ttl} seconds. Never share it with anyone."
        }
        (Code, Fa) => {
            "رمز پویا: {code}\nاعتبار: {ttl} ثانیه. این رمز را در اختیار هیچ‌کس قرار ندهید."
        }
        (NotEnrolled, En) => {
            "This number is not registered for dynamic passwords. Register at your bank's ATM or branch."
        }
        (NotEnrolled, Fa) => {
            "این شماره برای رمز پویا ثبت نشده است. برای ثبت به خودپرداز یا شعبه بانک مراجعه کنید."
        }
        (NoSuchCard, En) => {
            "No card ending in {digits} is registered for this number. Send the last 4 digits of your card."
        }
        (NoSuchCard, Fa) => {
            "کارتی با چهار رقم پایانی {digits} برای این شماره ثبت نشده است. چهار رقم آخر کارت خود را ارسال کنید."
        }
        (Ambiguous, En) => {
            "More than one of your cards ends in {digits}. Send the last 6 digits of the card."
        }
        (Ambiguous, Fa) => {
            "بیش از یک کارت شما به {digits} ختم می‌شود. شش رقم آخر کارت را ارسال کنید."
        }
        (FullPan, En) => {
            "Never send your full card number by SMS. Send only the last 4 digits of your card."
        }
        (FullPan, Fa) => {
            "هرگز شماره کامل کارت را پیامک نکنید. فقط چهار رقم آخر کارت را ارسال کنید."
        }
        (Locked, En) => {
            "The dynamic password service of your card ending in {digits} is disabled. Re-activate it at your bank's ATM or branch."
        }
        (Locked, Fa) => {
            "سرویس رمز پویای کارت {digits} غیرفعال است. برای فعال‌سازی به خودپرداز یا شعبه بانک مراجعه کنید."
        }
        (Help, En) => {
            "For a dynamic password send the last 4 digits of your card to {short_code}. The password is valid {ttl} seconds."
        }
        (Help, Fa) => {
            "برای دریافت رمز پویا، چهار رقم آخر کارت را به {short_code} بفرستید. رمز {ttl} ثانیه اعتبار دارد."
        }
        (Unrecognised, En) => {
            "Message not understood. Send only the last 4 digits of your card to {short_code}."
        }
        (Unrecognised, Fa) => "پیام نامعتبر است. فقط چهار رقم آخر کارت را به {short_code} بفرستید.",
        (Limited, En) => "Too many requests. Try again in {retry} seconds.",
        (Limited, Fa) => {
            "درخواست‌های شما بیش از حد مجاز است. {retry} ثانیه دیگر دوباره تلاش کنید."
        }
        (NotActivated, En) => {
            "Your card ending in {digits} is not activated yet. Confirm the activation code we sent at your bank's ATM, app or branch."
        }
        (NotActivated, Fa) => {
            "رمز پویای کارت {digits} هنوز فعال نشده است. کد فعال‌سازی ارسال‌شده را در خودپرداز، برنامه یا شعبه بانک تأیید کنید."
        }
        (Activation, En) => {
            "Activation code for dynamic passwords of card {digits}: {code}\nValid {hours} hours. Enter it only at your bank's ATM, app or branch."
        }
        (Activation, Fa) => {
            "کد فعال‌سازی رمز پویای کارت {digits}: {code}\nاعتبار: {hours} ساعت. فقط در خودپرداز، برنامه یا شعبه بانک وارد کنید."
        }
        (TokenActivation, En) => {
            "Token activation code for card {digits}, part 2: {code}\nType it in the app after part 1 from the bank. Valid {hours} hours. Tell no one."
        }
        (TokenActivation, Fa) => {
            "بخش ۲ کد فعال‌سازی رمزساز کارت {digits}: {code}\nپس از بخش ۱ (از بانک) در برنامه وارد کنید. اعتبار: {hours} ساعت. به کسی نگویید."
        }
        (PhoneChangedOld, En) => {
            "The phone number for dynamic passwords of card {digits} was changed. If you did not ask for this, call your bank now."
        }
        (PhoneChangedOld, Fa) => {
            "شماره همراه رمز پویای کارت {digits} تغییر کرد. اگر شما درخواست نکرده‌اید، فوراً با بانک تماس بگیرید."
        }
        (PhoneChangedNew, En) => {
            "This number now receives dynamic passwords for card {digits}. If you did not ask for this, call your bank."
        }
        (PhoneChangedNew, Fa) => {
            "رمز پویای کارت {digits} از این پس به این شماره فرستاده می‌شود. اگر شما درخواست نکرده‌اید، با بانک تماس بگیرید."
        }
        (SimSwapped, En) => {
            "The SIM card of this number was changed recently, so no dynamic password is sent for card {digits}. Visit a branch of your bank with your ID."
        }
        (SimSwapped, Fa) => {
            "سیم‌کارت این شماره به‌تازگی تعویض شده است و رمز پویای کارت {digits} ارسال نمی‌شود. با کارت شناسایی به شعبه بانک مراجعه کنید."
        }
        (Unavailable, En) => {
            "Dynamic passwords cannot be sent right now. Try again in a few minutes."
        }
        (Unavailable, Fa) => "ارسال رمز پویا در حال حاضر ممکن نیست. چند دقیقه دیگر دوباره تلاش کنید.",
    }
}

/// The value a template names, as `lang` writes it: Persian texts give every
/// number in Persian digits but the code, which stays in ASCII digits because
/// phones offer those for copy and autofill.
/// The placeholders a text may use (`{code}` and these).
pub const PLACEHOLDERS: [&str; 6] = ["code", "ttl", "hours", "digits", "short_code", "retry"];

fn value(p: &Params<'_>, lang: Language, name: &str) -> Option<String> {
    let digits = |s: &str| match lang {
        Language::En => s.to_owned(),
        Language::Fa => to_persian_digits(s),
    };
    Some(match name {
        "code" => p.code.to_owned(),
        "ttl" => digits(&p.ttl_secs.to_string()),
        "hours" => digits(&(p.ttl_secs / 3600).to_string()),
        "digits" => digits(p.digits),
        "short_code" => digits(p.short_code),
        "retry" => digits(&p.retry_secs.to_string()),
        _ => return None,
    })
}

/// `template` with each `{name}` that `value` knows replaced, in one pass: a value
/// is never read again as a template, and only the values a text uses are made
/// (this runs for every reply).
fn fill(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let filled = after
            .find('}')
            .and_then(|close| Some((close, value(&after[..close])?)));
        match filled {
            Some((close, value)) => {
                out.push_str(&value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The language of a reply: the script the customer wrote in, else the default.
pub fn detect_language(text: &str, default: Language) -> Language {
    let mut latin = false;
    for c in text.chars() {
        if ('\u{0600}'..='\u{06FF}').contains(&c) || ('\u{FB50}'..='\u{FEFF}').contains(&c) {
            return Language::Fa;
        }
        latin |= c.is_ascii_alphabetic();
    }
    if latin {
        Language::En
    } else {
        default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values as long as a reply carries them, for the card ending in `digits`.
    fn params(digits: &str) -> Params<'_> {
        Params {
            code: "1234567",
            ttl_secs: 60,
            digits,
            short_code: "30003303",
            retry_secs: 3600,
            ..Params::default()
        }
    }

    #[test]
    fn every_text_fits_one_sms_of_its_encoding() {
        let p = params("123456");
        for kind in ReplyKind::ALL {
            for lang in [Language::En, Language::Fa] {
                let t = render(kind, lang, &p);
                // A misspelt placeholder would reach the customer as `{name}`.
                assert!(!t.contains(['{', '}']), "{kind:?} {lang:?}: {t}");
                let fits = match otpgw_parsers::text::gsm7_septets(&t) {
                    Some(septets) => septets <= 160,
                    None => t.encode_utf16().count() <= 70 * 2, // at most two UCS-2 parts
                };
                assert!(fits, "{kind:?} {lang:?} too long: {t}");
            }
        }
    }

    #[test]
    fn english_texts_are_gsm7() {
        let p = params("1234");
        for kind in ReplyKind::ALL {
            assert!(
                otpgw_parsers::text::gsm7_fits(&render(kind, Language::En, &p)),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_bound_code_names_the_payment_in_both_languages() {
        let t = Transaction::new("purchase", 2_500_000, "IRR", "Digikala").unwrap();
        let p = Params {
            code: "1234567",
            ttl_secs: 60,
            transaction: Some(&t),
            cap: Some((3_000_000, "IRR")),
            ..Params::default()
        };
        let en = render(ReplyKind::Code, Language::En, &p);
        assert!(
            en.starts_with("Purchase: 2,500,000 IRR to Digikala\nLimit: 3,000,000 IRR\n"),
            "{en}"
        );
        let fa = render(ReplyKind::Code, Language::Fa, &p);
        assert!(
            fa.starts_with("خرید: ۲٬۵۰۰٬۰۰۰ IRR به Digikala\nسقف مبلغ: ۳٬۰۰۰٬۰۰۰ IRR\n"),
            "{fa}"
        );
        assert!(en.contains("1234567") && fa.contains("1234567"));
    }

    #[test]
    fn language_follows_the_script() {
        assert_eq!(detect_language("1234", Language::Fa), Language::Fa);
        assert_eq!(detect_language("1234", Language::En), Language::En);
        assert_eq!(detect_language("OTP 1234", Language::Fa), Language::En);
        assert_eq!(detect_language("۱۲۳۴", Language::En), Language::Fa);
        assert_eq!(detect_language("رمز 1234", Language::En), Language::Fa);
    }
}
