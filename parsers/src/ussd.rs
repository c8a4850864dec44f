//! Parser for USSD strings such as `*720*1*1234#`.
//!
//! A USSD session starts with the string the subscriber dialled: a service
//! code and '*'-separated answers, ended by '#'. The network hands it over
//! as text; this module splits it so a menu can route on the segments.
//! Segments long enough to be a card number are refused rather than
//! returned, so a dialled card number cannot travel further.

use std::fmt;

use nom::character::complete::{char, digit0, digit1};
use nom::combinator::eof;
use nom::multi::many0;
use nom::sequence::preceded;
use nom::Parser;

use crate::digits::normalize_digits;

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

fn iter_segments<'a>(code: &'a str, path: &'a [&'a str]) -> impl Iterator<Item = &'a str> {
    std::iter::once(code).chain(path.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn pan_is_not_shown() {
        let e = parse_ussd("*720*6037991234567890#").unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("6037"), "{shown}");
    }
}
