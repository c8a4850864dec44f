//! The USSD menu, as a pure function of the inputs so far. Transports keep (SMPP) or
//! receive (HTTP aggregators: `text` = inputs joined by `*`) the path; the core walks
//! it from the top every time, so a dialogue needs no server-side state here and a
//! one-shot string (`*720*1*1234#`) is just a path given at once.
//!
//! Menu: 1 dynamic password (ask the last 4 digits; the last 6 when two cards share
//! them), 2 help, 0 exit, 9 back. An invalid choice re-prompts once, then ends. The
//! customer may set a cap after the digits, as by SMS: in the same input
//! (`4321 2500000`) or as the next segment (`*720*1*4321*2500000#`); the code's
//! screen restates it.
//! Every screen fits one USSD page: 182 GSM-7 characters or 80 UCS-2.

use otpgw_parsers::digits::normalize_digits;
use otpgw_parsers::ussd::{parse_cap, parse_card_input, CardInput};

use crate::texts::{self, Params, ReplyKind};
use crate::vocab::Language;

/// Where a path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walk {
    /// Show a menu screen; `end` closes the session.
    Show {
        screen: Screen,
        end: bool,
    },
    /// The customer gave digits: issue a code for the card they name, with the cap
    /// they set, if any.
    Last4(String, Option<u64>),
    Last6(String, Option<u64>),
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

#[derive(Clone)]
enum At {
    Root,
    Last4,
    /// 4 digits were given and the path goes on: the cap of a dialled string
    /// (`*720*1*4321*2500000#`), or the 6 digits the menu asked for because two
    /// cards share those 4.
    After4 {
        last4: String,
        cap: Option<u64>,
    },
    /// Only 6 digits will do; a cap given earlier stays.
    Last6 {
        cap: Option<u64>,
    },
}

/// Folds the inputs. In the "last digits" step an input may carry a cap after the
/// digits (`4321 2500000`, read as by SMS); after 4 digits a segment of its own is a
/// cap, unless it is 6 digits ending in those 4 (the last 6 the menu asked for).
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
        let card = parse_card_input(&input);
        if card == CardInput::FullPan && !matches!(at, At::Root) {
            return Walk::FullPan;
        }
        match (at.clone(), input.as_str()) {
            (_, "0") => return show(Screen::Bye, true),
            (At::Root, "1") => at = At::Last4,
            (At::Root, "2") => return show(Screen::Help, true),
            (At::Last4 | At::After4 { .. } | At::Last6 { .. }, "9") => at = At::Root,
            (At::Root, _) => match retry(Screen::RootAgain) {
                Some(w) => return w,
                None => continue,
            },
            (At::Last4, _) => match card {
                CardInput::Last4 { digits, cap } if last => return Walk::Last4(digits, cap),
                CardInput::Last4 { digits, cap } => at = At::After4 { last4: digits, cap },
                CardInput::Last6 { digits, cap } if last => return Walk::Last6(digits, cap),
                _ => match retry(Screen::AskLast4Again) {
                    Some(w) => return w,
                    None => continue,
                },
            },
            (At::After4 { last4, cap: None }, d)
                if !(d.len() == 6 && d.ends_with(last4.as_str())) && parse_cap(d).is_some() =>
            {
                let cap = parse_cap(d);
                if last {
                    return Walk::Last4(last4, cap);
                }
                at = At::After4 { last4, cap };
            }
            (At::After4 { cap: earlier, .. } | At::Last6 { cap: earlier }, _) => {
                at = At::Last6 { cap: earlier };
                match card {
                    CardInput::Last6 { digits, cap } if last => {
                        return Walk::Last6(digits, cap.or(earlier))
                    }
                    _ => match retry(Screen::AskLast6Again) {
                        Some(w) => return w,
                        None => continue,
                    },
                }
            }
        }
        invalid = false;
    }
    let screen = match at {
        At::Root => Screen::Root,
        At::Last4 => Screen::AskLast4,
        At::After4 { .. } | At::Last6 { .. } => Screen::AskLast6,
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
    // The cap the customer set, on a line of its own before the validity.
    let cap = p
        .cap
        .map(|(cap, currency)| format!("{}\n", texts::cap_line(cap, currency, lang)))
        .unwrap_or_default();
    match lang {
        Language::En => match kind {
            ReplyKind::Code => format!(
                "Dynamic password: {}\n{cap}Valid {ttl} seconds. Never share it.",
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
            // Sent unasked by SMS, never a USSD answer; listed so every kind has one.
            ReplyKind::PhoneChangedOld | ReplyKind::PhoneChangedNew => {
                format!("The phone number of card {} was changed.", p.digits)
            }
            ReplyKind::SimSwapped => {
                "This number's SIM card was changed recently. Visit a branch of your bank.".into()
            }
            ReplyKind::Unavailable => "Not available right now. Try again in a few minutes.".into(),
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
                "رمز پویا: {}\n{cap}اعتبار {} ثانیه",
                p.code,
                crate::vocab::to_persian_digits(&ttl.to_string())
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
                crate::vocab::to_persian_digits(&p.retry_secs.to_string())
            ),
            ReplyKind::Help | ReplyKind::Unrecognised => render(Screen::Help, lang, p.short_code),
            ReplyKind::PhoneChangedOld | ReplyKind::PhoneChangedNew => {
                format!("شماره همراه کارت {} تغییر کرد.", p.digits)
            }
            ReplyKind::SimSwapped => {
                "سیم‌کارت این شماره به‌تازگی تعویض شده است. به شعبه بانک مراجعه کنید.".into()
            }
            ReplyKind::Unavailable => "در حال حاضر ممکن نیست. چند دقیقه دیگر تلاش کنید.".into(),
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
        let l4 = |d: &str| Walk::Last4(d.into(), None);
        let l6 = |d: &str| Walk::Last6(d.into(), None);
        check(&[], show(Screen::Root, false));
        check(&["1"], show(Screen::AskLast4, false));
        check(&["1", "1234"], l4("1234"));
        check(&["1", "۱۲۳۴"], l4("1234"));
        check(&["1", "561234"], l6("561234"));
        check(&["1", "1234", "561234"], l6("561234"));
        check(&["1", "1234", "x"], show(Screen::AskLast6Again, false));
        check(&["1", "1234", "x", "y"], show(Screen::InvalidEnd, true));
        check(&["1", "1234", "x", "561234"], l6("561234"));
        check(&["1", "6037990000004321"], Walk::FullPan);
        check(&["1", "6037 9900 0000 4321"], Walk::FullPan);
        check(&["1", "1234", "6037990000004321"], Walk::FullPan);
        check(&["2"], show(Screen::Help, true));
        check(&["0"], show(Screen::Bye, true));
        check(&["1", "0"], show(Screen::Bye, true));
        check(&["1", "9"], show(Screen::Root, false));
        check(&["1", "1234", "9"], show(Screen::Root, false));
        check(&["1", "9", "1", "4321"], l4("4321"));
        // Invalid choices re-prompt once, then end.
        check(&["7"], show(Screen::RootAgain, false));
        check(&["7", "8"], show(Screen::InvalidEnd, true));
        check(&["7", "1"], show(Screen::AskLast4, false));
        check(&["7", "1", "x"], show(Screen::AskLast4Again, false));
        check(&["1", "12"], show(Screen::AskLast4Again, false));
        check(&["1", "12", "34"], show(Screen::InvalidEnd, true));
        check(&["1", "12", "4321"], l4("4321"));
    }

    #[test]
    fn the_cap_table() {
        let l4 = |d: &str, cap| Walk::Last4(d.into(), Some(cap));
        let l6 = |d: &str, cap| Walk::Last6(d.into(), Some(cap));
        // In one input of the digits step, as by SMS.
        check(&["1", "5678 2500000"], l4("5678", 2_500_000));
        check(&["1", "۵۶۷۸ ۲٬۵۰۰٬۰۰۰"], l4("5678", 2_500_000));
        check(&["1", "5678-2,500,000"], l4("5678", 2_500_000));
        check(&["1", "125678 2,500,000"], l6("125678", 2_500_000));
        // 6 digits, a space and 7 more are 13 in a row: a card number, as by SMS.
        check(&["1", "125678 2500000"], Walk::FullPan);
        // A segment of its own, as a dialled string carries it.
        check(&["1", "5678", "2500000"], l4("5678", 2_500_000));
        check(&["1", "۵۶۷۸", "۲۵۰۰۰۰۰"], l4("5678", 2_500_000));
        check(&["1", "5678", "250000"], l4("5678", 250_000));
        // Two cards end in 5678: the menu asks for 6 digits, the cap stays.
        check(&["1", "5678", "2500000", "125678"], l6("125678", 2_500_000));
        check(&["1", "5678 2500000", "125678"], l6("125678", 2_500_000));
        check(&["1", "5678 2500000", "125678 1000"], l6("125678", 1_000));
        check(&["1", "5678", "125678 1000"], l6("125678", 1_000));
        check(
            &["1", "5678", "2500000", "x"],
            show(Screen::AskLast6Again, false),
        );
        // 6 digits ending in the 4 just given are the last 6, not a cap.
        check(&["1", "5678", "125678"], Walk::Last6("125678".into(), None));
        // Not caps.
        check(&["1", "5678 0"], show(Screen::AskLast4Again, false));
        check(&["1", "5678 25,00,000"], show(Screen::AskLast4Again, false));
        check(&["1", "1234 567890123"], Walk::FullPan);
        check(
            &["1", "5678", "2500000", "3"],
            show(Screen::AskLast6Again, false),
        );
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
            // The longest cap, in the longest currency code.
            cap: Some((otpgw_parsers::sms::CAP_MAX, "IRR")),
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
