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
}

impl ReplyKind {
    pub const ALL: [ReplyKind; 12] = [
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
    let body = match lang {
        Language::En => render_en(kind, p),
        Language::Fa => render_fa(kind, p),
    };
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

fn render_en(kind: ReplyKind, p: &Params<'_>) -> String {
    match kind {
        ReplyKind::Code => format!(
            "Your dynamic password: {}\nValid {} seconds. Never share it with anyone.",
            p.code, p.ttl_secs
        ),
        ReplyKind::NotEnrolled => {
            "This number is not registered for dynamic passwords. Register at your bank's ATM or branch.".into()
        }
        ReplyKind::NoSuchCard => format!(
            "No card ending in {} is registered for this number. Send the last 4 digits of your card.",
            p.digits
        ),
        ReplyKind::Ambiguous => format!(
            "More than one of your cards ends in {}. Send the last 6 digits of the card.",
            p.digits
        ),
        ReplyKind::FullPan => {
            "Never send your full card number by SMS. Send only the last 4 digits of your card.".into()
        }
        ReplyKind::Locked => format!(
            "The dynamic password service of your card ending in {} is disabled. Re-activate it at your bank's ATM or branch.",
            p.digits
        ),
        ReplyKind::Help => format!(
            "For a dynamic password send the last 4 digits of your card to {}. The password is valid {} seconds.",
            p.short_code, p.ttl_secs
        ),
        ReplyKind::Unrecognised => format!(
            "Message not understood. Send only the last 4 digits of your card to {}.",
            p.short_code
        ),
        ReplyKind::Limited => format!("Too many requests. Try again in {} seconds.", p.retry_secs),
        ReplyKind::NotActivated => format!(
            "Your card ending in {} is not activated yet. Confirm the activation code we sent at your bank's ATM, app or branch.",
            p.digits
        ),
        ReplyKind::Activation => format!(
            "Activation code for dynamic passwords of card {}: {}\nValid {} hours. Enter it only at your bank's ATM, app or branch.",
            p.digits,
            p.code,
            p.ttl_secs / 3600
        ),
        ReplyKind::TokenActivation => format!(
            "Token activation code for card {}, part 2: {}\nType it in the app after part 1 from the bank. Valid {} hours. Tell no one.",
            p.digits,
            p.code,
            p.ttl_secs / 3600
        ),
    }
}

fn render_fa(kind: ReplyKind, p: &Params<'_>) -> String {
    let ttl = to_persian_digits(&p.ttl_secs.to_string());
    match kind {
        // The code itself stays in ASCII digits: phones offer those for copy and autofill.
        ReplyKind::Code => format!(
            "رمز پویا: {}\nاعتبار: {} ثانیه. این رمز را در اختیار هیچ‌کس قرار ندهید.",
            p.code, ttl
        ),
        ReplyKind::NotEnrolled => {
            "این شماره برای رمز پویا ثبت نشده است. برای ثبت به خودپرداز یا شعبه بانک مراجعه کنید.".into()
        }
        ReplyKind::NoSuchCard => format!(
            "کارتی با چهار رقم پایانی {} برای این شماره ثبت نشده است. چهار رقم آخر کارت خود را ارسال کنید.",
            to_persian_digits(p.digits)
        ),
        ReplyKind::Ambiguous => format!(
            "بیش از یک کارت شما به {} ختم می‌شود. شش رقم آخر کارت را ارسال کنید.",
            to_persian_digits(p.digits)
        ),
        ReplyKind::FullPan => {
            "هرگز شماره کامل کارت را پیامک نکنید. فقط چهار رقم آخر کارت را ارسال کنید.".into()
        }
        ReplyKind::Locked => format!(
            "سرویس رمز پویای کارت {} غیرفعال است. برای فعال‌سازی به خودپرداز یا شعبه بانک مراجعه کنید.",
            to_persian_digits(p.digits)
        ),
        ReplyKind::Help => format!(
            "برای دریافت رمز پویا، چهار رقم آخر کارت را به {} بفرستید. رمز {} ثانیه اعتبار دارد.",
            to_persian_digits(p.short_code),
            ttl
        ),
        ReplyKind::Unrecognised => format!(
            "پیام نامعتبر است. فقط چهار رقم آخر کارت را به {} بفرستید.",
            to_persian_digits(p.short_code)
        ),
        ReplyKind::Limited => format!(
            "درخواست‌های شما بیش از حد مجاز است. {} ثانیه دیگر دوباره تلاش کنید.",
            to_persian_digits(&p.retry_secs.to_string())
        ),
        ReplyKind::NotActivated => format!(
            "رمز پویای کارت {} هنوز فعال نشده است. کد فعال‌سازی ارسال‌شده را در خودپرداز، برنامه یا شعبه بانک تأیید کنید.",
            to_persian_digits(p.digits)
        ),
        ReplyKind::Activation => format!(
            "کد فعال‌سازی رمز پویای کارت {}: {}\nاعتبار: {} ساعت. فقط در خودپرداز، برنامه یا شعبه بانک وارد کنید.",
            to_persian_digits(p.digits),
            p.code,
            to_persian_digits(&(p.ttl_secs / 3600).to_string())
        ),
        ReplyKind::TokenActivation => format!(
            "بخش ۲ کد فعال‌سازی رمزساز کارت {}: {}\nپس از بخش ۱ (از بانک) در برنامه وارد کنید. اعتبار: {} ساعت. به کسی نگویید.",
            to_persian_digits(p.digits),
            p.code,
            to_persian_digits(&(p.ttl_secs / 3600).to_string())
        ),
    }
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

    #[test]
    fn every_text_fits_one_sms_of_its_encoding() {
        let p = Params {
            code: "1234567",
            ttl_secs: 60,
            digits: "123456",
            short_code: "30003303",
            retry_secs: 3600,
            ..Params::default()
        };
        for kind in ReplyKind::ALL {
            for lang in [Language::En, Language::Fa] {
                let t = render(kind, lang, &p);
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
        let p = Params {
            code: "1234567",
            ttl_secs: 60,
            digits: "1234",
            short_code: "30003303",
            retry_secs: 3600,
            ..Params::default()
        };
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
