//! The USSD menu, as a pure function of the inputs so far. Transports keep (SMPP) or
//! receive (HTTP aggregators: `text` = inputs joined by `*`) the path; the core walks
//! it from the top every time, so a dialogue needs no server-side state here and a
//! one-shot string (`*720*1*1234#`) is just a path given at once.
//!
//! Menu: 1 dynamic password (ask the last 4 digits; the last 6 when two cards share
//! them), 2 help, 0 exit, 9 back. An invalid choice re-prompts once, then ends.
//! Every screen fits one USSD page: 182 GSM-7 characters or 80 UCS-2.

use otpgw_parsers::digits::normalize_digits;

use super::texts::{self, Params, ReplyKind};
use crate::config::Language;

/// Where a path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walk {
    /// Show a menu screen; `end` closes the session.
    Show {
        screen: Screen,
        end: bool,
    },
    /// The customer gave digits: issue a code for the card they name.
    Last4(String),
    Last6(String),
    /// Too many digits: a full card number, dropped here.
    FullPan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Root,
    RootAgain,
    AskLast4,
    AskLast4Again,
    /// Two cards share the last 4 digits: ask for 6.
    AskLast6,
    AskLast6Again,
    Help,
    Bye,
    InvalidEnd,
    Expired,
    UnknownService,
    /// Over a rate limit and already told so.
    TryLater,
}

#[derive(Clone, Copy)]
enum At {
    Root,
    Last4,
    Last6,
}

fn digits_only(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

pub fn walk(path: &[String]) -> Walk {
    let mut at = At::Root;
    let mut invalid = false;
    for (i, raw) in path.iter().enumerate() {
        let input = normalize_digits(raw.trim());
        let last = i + 1 == path.len();
        let show = |screen, end| Walk::Show { screen, end };
        let mut retry = |again: Screen| {
            if invalid {
                Some(show(Screen::InvalidEnd, true))
            } else {
                invalid = true;
                last.then_some(show(again, false))
            }
        };
        match (at, input.as_str()) {
            (_, "0") => return show(Screen::Bye, true),
            (At::Root, "1") => at = At::Last4,
            (At::Root, "2") => return show(Screen::Help, true),
            (At::Last4 | At::Last6, "9") => at = At::Root,
            (At::Last4, d) if digits_only(d, 4) => {
                if last {
                    return Walk::Last4(input);
                }
                // The session went on after 4 digits: they were ambiguous.
                at = At::Last6;
            }
            (At::Last4 | At::Last6, d) if digits_only(d, 6) && last => return Walk::Last6(input),
            (At::Last4 | At::Last6, d)
                if d.len() >= 13 && d.bytes().all(|b| b.is_ascii_digit()) =>
            {
                return Walk::FullPan
            }
            (At::Root, _) => match retry(Screen::RootAgain) {
                Some(w) => return w,
                None => continue,
            },
            (At::Last4, _) => match retry(Screen::AskLast4Again) {
                Some(w) => return w,
                None => continue,
            },
            (At::Last6, _) => match retry(Screen::AskLast6Again) {
                Some(w) => return w,
                None => continue,
            },
        }
        invalid = false;
    }
    let screen = match at {
        At::Root => Screen::Root,
        At::Last4 => Screen::AskLast4,
        At::Last6 => Screen::AskLast6,
    };
    Walk::Show { screen, end: false }
}

pub fn render(screen: Screen, lang: Language, service_code: &str) -> String {
    let oneshot = format!("*{service_code}*1*");
    match lang {
        Language::En => match screen {
            Screen::Root => "Dynamic password\n1. Get password\n2. Help\n0. Exit".into(),
            Screen::RootAgain => "Invalid choice.\n1. Get password\n2. Help\n0. Exit".into(),
            Screen::AskLast4 => "Enter the last 4 digits of your card\n9. Back\n0. Exit".into(),
            Screen::AskLast4Again => {
                "Invalid. Enter the last 4 digits of your card\n9. Back\n0. Exit".into()
            }
            Screen::AskLast6 => {
                "More than one card ends in these digits. Enter the last 6 digits\n9. Back".into()
            }
            Screen::AskLast6Again => {
                "Invalid. Enter the last 6 digits of your card\n9. Back".into()
            }
            Screen::Help => format!(
                "Dial {oneshot}<last 4 card digits># for a dynamic password, valid 60 seconds."
            ),
            Screen::Bye => "Goodbye.".into(),
            Screen::InvalidEnd => "Invalid input. Please dial again.".into(),
            Screen::Expired => "Your session has expired. Please dial again.".into(),
            Screen::UnknownService => "Unknown service.".into(),
            Screen::TryLater => "Too many requests. Please try again later.".into(),
        },
        Language::Fa => match screen {
            Screen::Root => "رمز پویا\n1. دریافت رمز\n2. راهنما\n0. خروج".into(),
            Screen::RootAgain => "گزینه نامعتبر\n1. دریافت رمز\n2. راهنما\n0. خروج".into(),
            Screen::AskLast4 => "۴ رقم آخر کارت را وارد کنید\n9. بازگشت\n0. خروج".into(),
            Screen::AskLast4Again => "نامعتبر. ۴ رقم آخر کارت را وارد کنید\n9. بازگشت".into(),
            Screen::AskLast6 => {
                "چند کارت با این ارقام دارید. ۶ رقم آخر کارت را وارد کنید\n9. بازگشت".into()
            }
            Screen::AskLast6Again => "نامعتبر. ۶ رقم آخر کارت را وارد کنید\n9. بازگشت".into(),
            Screen::Help => format!("برای رمز پویا {oneshot}۴رقم‌آخرکارت# را بگیرید"),
            Screen::Bye => "خدانگهدار".into(),
            Screen::InvalidEnd => "ورودی نامعتبر. دوباره شماره‌گیری کنید.".into(),
            Screen::Expired => "زمان جلسه تمام شد. دوباره شماره‌گیری کنید.".into(),
            Screen::UnknownService => "سرویس نامعتبر".into(),
            Screen::TryLater => "درخواست بیش از حد. بعداً تلاش کنید.".into(),
        },
    }
}

/// The final screen after digits were entered: the same answers as by SMS, in words
/// short enough for one page.
pub fn render_answer(kind: ReplyKind, lang: Language, p: &Params<'_>) -> String {
    let ttl = p.ttl_secs;
    match lang {
        Language::En => match kind {
            ReplyKind::Code => format!(
                "Dynamic password: {}\nValid {ttl} seconds. Never share it.",
                p.code
            ),
            ReplyKind::NotEnrolled => "This number is not registered for dynamic passwords.".into(),
            ReplyKind::NoSuchCard => format!("No card ending in {} on this number.", p.digits),
            ReplyKind::Ambiguous => render(Screen::AskLast6, lang, ""),
            ReplyKind::FullPan => {
                "Never enter your full card number. Enter only the last 4 digits.".into()
            }
            ReplyKind::Locked => format!(
                "Dynamic password of card {} is disabled. Visit your bank.",
                p.digits
            ),
            ReplyKind::Limited => {
                format!("Too many requests. Try again in {} seconds.", p.retry_secs)
            }
            ReplyKind::Help | ReplyKind::Unrecognised => render(Screen::Help, lang, p.short_code),
            // Never a USSD answer; listed so every kind has a screen.
            ReplyKind::NotActivated | ReplyKind::Activation | ReplyKind::TokenActivation => {
                format!(
                    "Card {} is not activated yet. Confirm the activation code at your bank.",
                    p.digits
                )
            }
        },
        Language::Fa => match kind {
            ReplyKind::Code => format!(
                "رمز پویا: {}\nاعتبار {} ثانیه",
                p.code,
                texts::to_persian_digits(&ttl.to_string())
            ),
            ReplyKind::NotEnrolled => "این شماره برای رمز پویا ثبت نشده است.".into(),
            ReplyKind::NoSuchCard => format!("کارت {} برای این شماره ثبت نشده است.", p.digits),
            ReplyKind::Ambiguous => render(Screen::AskLast6, lang, ""),
            ReplyKind::FullPan => "شماره کامل کارت را وارد نکنید؛ فقط ۴ رقم آخر.".into(),
            ReplyKind::Locked => format!(
                "رمز پویای کارت {} غیرفعال است. به بانک مراجعه کنید.",
                p.digits
            ),
            ReplyKind::Limited => format!(
                "درخواست بیش از حد. {} ثانیه دیگر تلاش کنید.",
                texts::to_persian_digits(&p.retry_secs.to_string())
            ),
            ReplyKind::Help | ReplyKind::Unrecognised => render(Screen::Help, lang, p.short_code),
            ReplyKind::NotActivated | ReplyKind::Activation | ReplyKind::TokenActivation => {
                format!(
                    "رمز پویای کارت {} هنوز فعال نشده است. کد فعال‌سازی را در بانک تأیید کنید.",
                    p.digits
                )
            }
        },
    }
}

/// One USSD page: 182 GSM-7 septets, or 80 UCS-2 characters.
pub fn fits_one_page(text: &str) -> bool {
    match otpgw_parsers::text::gsm7_septets(text) {
        Some(septets) => septets <= 182,
        None => text.encode_utf16().count() <= 80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    fn check(p: &[&str], expected: Walk) {
        assert_eq!(walk(&path(p)), expected, "{p:?}");
    }

    fn show(screen: Screen, end: bool) -> Walk {
        Walk::Show { screen, end }
    }

    #[test]
    fn the_menu_table() {
        check(&[], show(Screen::Root, false));
        check(&["1"], show(Screen::AskLast4, false));
        check(&["1", "1234"], Walk::Last4("1234".into()));
        check(&["1", "۱۲۳۴"], Walk::Last4("1234".into()));
        check(&["1", "561234"], Walk::Last6("561234".into()));
        check(&["1", "1234", "561234"], Walk::Last6("561234".into()));
        check(&["1", "1234", "12"], show(Screen::AskLast6Again, false));
        check(&["1", "6037990000004321"], Walk::FullPan);
        check(&["2"], show(Screen::Help, true));
        check(&["0"], show(Screen::Bye, true));
        check(&["1", "0"], show(Screen::Bye, true));
        check(&["1", "9"], show(Screen::Root, false));
        check(&["1", "9", "1", "4321"], Walk::Last4("4321".into()));
        // Invalid choices re-prompt once, then end.
        check(&["7"], show(Screen::RootAgain, false));
        check(&["7", "8"], show(Screen::InvalidEnd, true));
        check(&["7", "1"], show(Screen::AskLast4, false));
        check(&["7", "1", "x"], show(Screen::AskLast4Again, false));
        check(&["1", "12"], show(Screen::AskLast4Again, false));
        check(&["1", "12", "34"], show(Screen::InvalidEnd, true));
        check(&["1", "12", "4321"], Walk::Last4("4321".into()));
    }

    #[test]
    fn every_screen_fits_one_page() {
        let screens = [
            Screen::Root,
            Screen::RootAgain,
            Screen::AskLast4,
            Screen::AskLast4Again,
            Screen::AskLast6,
            Screen::AskLast6Again,
            Screen::Help,
            Screen::Bye,
            Screen::InvalidEnd,
            Screen::Expired,
            Screen::UnknownService,
            Screen::TryLater,
        ];
        let p = Params {
            code: "1234567",
            ttl_secs: 60,
            digits: "123456",
            short_code: "720",
            retry_secs: 3600,
            ..Params::default()
        };
        for lang in [Language::En, Language::Fa] {
            let texts = screens
                .iter()
                .map(|s| render(*s, lang, "720"))
                .chain(ReplyKind::ALL.iter().map(|k| render_answer(*k, lang, &p)));
            for text in texts {
                assert!(
                    fits_one_page(&text),
                    "{lang:?}: {} chars: {text}",
                    text.chars().count()
                );
            }
        }
    }
}
