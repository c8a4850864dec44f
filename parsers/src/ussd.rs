//! Parser for USSD strings such as `*720*1*1234#`.
//!
//! A USSD session starts with the string the subscriber dialled: a service
//! code and '*'-separated answers, ended by '#'. The network hands it over
//! as text; this module splits it so a menu can route on the segments.
//! Segments long enough to be a card number are refused rather than
//! returned, so a dialled card number cannot travel further. The menu's
//! "last digits" step reads its input here too ([`parse_card_input`]), with
//! the customer's cap after the digits as by SMS.

use std::fmt;

use nom::character::complete::{char, digit0, digit1};
use nom::combinator::eof;
use nom::multi::many0;
use nom::sequence::preceded;
use nom::Parser;

use crate::digits::normalize_digits;
use crate::sms::{cap_alone, parse_sms_capped, SmsGrammar, SmsRequest};

/// Segments this long may hold a card number (shortest PAN is 13 digits).
const PAN_MIN: usize = 13;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UssdString {
    pub service_code: String,
    pub path: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UssdError {
    Empty,
    /// Not of the form `*code*...#`.
    NotUssd,
    /// A character other than a digit, '*' or '#'.
    BadCharacter,
    /// A segment had 13 or more digits and may be a card number; the digits
    /// are dropped.
    FullPan,
}

impl fmt::Display for UssdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UssdError::Empty => "USSD string is empty",
            UssdError::NotUssd => "not a USSD string of the form *code*...#",
            UssdError::BadCharacter => {
                "USSD string contains a character other than digits, '*' or '#'"
            }
            UssdError::FullPan => "USSD string contains a segment that may be a card number",
        })
    }
}

impl std::error::Error for UssdError {}

/// Splits `*720*1*1234#` into service code "720" and path ["1", "1234"].
/// Digits in any script are returned as ASCII; empty segments (`*720**1#`)
/// are kept as empty strings.
///
/// # Errors
///
/// [`UssdError::Empty`] for blank input; [`UssdError::NotUssd`] unless it is
/// `*`, a non-empty service code, `*`-separated segments and a final `#`;
/// [`UssdError::BadCharacter`] for anything but digits, `*` and `#`;
/// [`UssdError::FullPan`] if any segment has 13 or more digits.
pub fn parse_ussd(s: &str) -> Result<UssdString, UssdError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(UssdError::Empty);
    }
    if !s.starts_with('*') {
        return Err(UssdError::NotUssd);
    }
    let s = normalize_digits(s);
    if !s
        .chars()
        .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
    {
        return Err(UssdError::BadCharacter);
    }
    let (_, (_, service_code, path, _, _)) = (
        char('*'),
        digit1,
        many0(preceded(char('*'), digit0)),
        char('#'),
        eof,
    )
        .parse(s.as_str())
        .map_err(|_: nom::Err<nom::error::Error<&str>>| UssdError::NotUssd)?;
    if iter_segments(service_code, &path).any(|seg| seg.len() >= PAN_MIN) {
        return Err(UssdError::FullPan);
    }
    Ok(UssdString {
        service_code: service_code.to_owned(),
        path: path.into_iter().map(str::to_owned).collect(),
    })
}

/// What the customer gave where the menu asks for the last digits of the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardInput {
    /// 4 digits (ASCII), and the maximum amount the customer set after them.
    Last4 { digits: String, cap: Option<u64> },
    /// 6 digits (ASCII), and the cap after them.
    Last6 { digits: String, cap: Option<u64> },
    /// 13 or more digits in a row: a card number. Its digits are not carried.
    FullPan,
    /// Anything else, menu choices included.
    Other,
}

/// Reads one input of the "last digits" step with the SMS grammar, keywords aside:
/// `4321`, `۴۳۲۱`, and with a cap `4321 2500000`, `۴۳۲۱ ۲٬۵۰۰٬۰۰۰`, `4321-2,500,000`
/// (see [`crate::sms::parse_sms_capped`]). One input of a dialogue may hold a space or
/// a comma; a dialled string cannot, so there the cap is a segment of its own
/// ([`parse_cap`]). Never panics, whatever the input.
#[must_use]
pub fn parse_card_input(input: &str) -> CardInput {
    let grammar = SmsGrammar {
        keywords: Vec::new(),
        help_keywords: Vec::new(),
    };
    match parse_sms_capped(input, &grammar) {
        (SmsRequest::Last4(digits), cap) => CardInput::Last4 { digits, cap },
        (SmsRequest::Last6(digits), cap) => CardInput::Last6 { digits, cap },
        (SmsRequest::FullPan, _) => CardInput::FullPan,
        _ => CardInput::Other,
    }
}

/// An input that is a cap alone (`2500000`, `2,500,000`, `۲۵۰۰۰۰۰`): 1 to
/// [`CAP_MAX`], grouped in threes or not, as by SMS. This is how a dialled string
/// carries one: `*720*1*4321*2500000#`.
#[must_use]
pub fn parse_cap(input: &str) -> Option<u64> {
    cap_alone(input)
}

fn iter_segments<'a>(code: &'a str, path: &'a [&'a str]) -> impl Iterator<Item = &'a str> {
    std::iter::once(code).chain(path.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::CAP_MAX;
    use UssdError::*;

    #[test]
    fn parse_ussd_table() {
        type Case<'a> = (&'a str, Result<(&'a str, &'a [&'a str]), UssdError>);
        fn check(input: &str, expected: Result<(&str, &[&str]), UssdError>) {
            let expected = expected.map(|(code, path)| UssdString {
                service_code: code.to_owned(),
                path: path.iter().map(|p| (*p).to_owned()).collect(),
            });
            assert_eq!(parse_ussd(input), expected, "parse_ussd({input:?})");
        }
        let table: &[Case] = &[
            ("*720#", Ok(("720", &[]))),
            ("*720*1*1234#", Ok(("720", &["1", "1234"]))),
            ("*720*1#", Ok(("720", &["1"]))),
            ("  *720#\n", Ok(("720", &[]))),
            ("*۷۲۰#", Ok(("720", &[]))),
            ("*٧٢٠*١*١٢٣٤#", Ok(("720", &["1", "1234"]))),
            ("*７２０#", Ok(("720", &[]))),
            ("*۷۲۰*1*١٢３4#", Ok(("720", &["1", "1234"]))),
            ("*720**1#", Ok(("720", &["", "1"]))),
            ("*720*#", Ok(("720", &[""]))),
            ("*720*123456#", Ok(("720", &["123456"]))),
            ("*720*123456789012#", Ok(("720", &["123456789012"]))),
            ("", Err(Empty)),
            ("   ", Err(Empty)),
            ("720#", Err(NotUssd)),
            ("#720#", Err(NotUssd)),
            ("hello", Err(NotUssd)),
            ("*720", Err(NotUssd)),
            ("*720*1", Err(NotUssd)),
            ("*#", Err(NotUssd)),
            ("**720#", Err(NotUssd)),
            ("*#06#", Err(NotUssd)),
            ("*720#1#", Err(NotUssd)),
            ("*720##", Err(NotUssd)),
            ("*", Err(NotUssd)),
            ("*720*a#", Err(BadCharacter)),
            ("*720 *1#", Err(BadCharacter)),
            ("*720*1+#", Err(BadCharacter)),
            ("*720#abc", Err(BadCharacter)),
            ("*720*6037991234567890#", Err(FullPan)),
            ("*720*1*6037991234567#", Err(FullPan)),
            ("*720*۶۰۳۷۹۹۱۲۳۴۵۶۷۸۹۰#", Err(FullPan)),
            ("*6037991234567890#", Err(FullPan)),
        ];
        for &(input, ref expected) in table {
            check(input, expected.clone());
        }
    }

    #[test]
    fn card_input_table() {
        fn check(input: &str, expected: CardInput) {
            assert_eq!(
                parse_card_input(input),
                expected,
                "parse_card_input({input:?})"
            );
        }
        let l4 = |cap| CardInput::Last4 {
            digits: "5678".into(),
            cap,
        };
        let l6 = |cap| CardInput::Last6 {
            digits: "125678".into(),
            cap,
        };
        let table = [
            ("5678", l4(None)),
            ("۵۶۷۸", l4(None)),
            (" 5678 ", l4(None)),
            ("125678", l6(None)),
            ("5678 2500000", l4(Some(2_500_000))),
            ("5678 2,500,000", l4(Some(2_500_000))),
            ("۵۶۷۸ ۲٬۵۰۰٬۰۰۰", l4(Some(2_500_000))),
            ("۵۶۷۸ ۲۵۰۰۰۰۰", l4(Some(2_500_000))),
            ("٥٦٧٨ ٢٥٠٠٠٠٠", l4(Some(2_500_000))),
            ("５６７８ ２５００００００", l4(Some(25_000_000))),
            ("5678-2500000", l4(Some(2_500_000))),
            ("5678*2500000", l4(Some(2_500_000))),
            ("125678 999,999,999,999", l6(Some(CAP_MAX))),
            ("5678 0", CardInput::Other),
            ("5678 25,00,000", CardInput::Other),
            ("5678 1,000,000,000,000", CardInput::Other),
            ("567 2500000", CardInput::Other),
            ("1", CardInput::Other),
            ("12", CardInput::Other),
            ("x", CardInput::Other),
            ("", CardInput::Other),
            ("6037991234567890", CardInput::FullPan),
            ("6037 9912 3456 7890", CardInput::FullPan),
            ("1234 567890123", CardInput::FullPan),
        ];
        for (input, expected) in table {
            check(input, expected);
        }
    }

    #[test]
    fn cap_table() {
        let table = [
            ("2500000", Some(2_500_000)),
            ("2,500,000", Some(2_500_000)),
            ("۲٬۵۰۰٬۰۰۰", Some(2_500_000)),
            ("۲۵۰۰۰۰۰", Some(2_500_000)),
            ("1", Some(1)),
            ("999999999999", Some(CAP_MAX)),
            ("0", None),
            ("1000000000000", None),
            ("25,00,000", None),
            ("", None),
            ("12a", None),
            ("5678 2500000", None),
        ];
        for (input, expected) in table {
            assert_eq!(parse_cap(input), expected, "parse_cap({input:?})");
        }
    }

    #[test]
    fn a_dialled_cap_is_a_segment_of_its_own() {
        let u = parse_ussd("*۷۲۰*۱*۵۶۷۸*۲۵۰۰۰۰۰#").unwrap();
        assert_eq!(u.path, ["1", "5678", "2500000"]);
        assert_eq!(parse_cap(&u.path[2]), Some(2_500_000));
    }

    #[test]
    fn pan_is_not_shown() {
        let e = parse_ussd("*720*6037991234567890#").unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("6037"), "{shown}");
    }
}
