//! Normalisation of subscriber numbers (MSISDNs) to E.164.
//!
//! Numbers reach the gateway from the SMSC, from the bank's back office and
//! from operators typing them in, in every national and international style.
//! Rate limits and OTP records are keyed by the result, so one subscriber must
//! always map to the same digits: E.164 without the leading '+'.

use std::fmt;

use crate::digits::{ascii_digit, digit_value};

/// E.164 caps a number at 15 digits.
const E164_MAX: usize = 15;
/// Shorter results are service codes or typos, not subscribers.
const MIN_LEN: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsisdnError {
    Empty,
    InvalidCharacter,
    TooShort,
    TooLong,
}

impl fmt::Display for MsisdnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MsisdnError::Empty => "MSISDN has no digits",
            MsisdnError::InvalidCharacter => {
                "MSISDN contains a character other than digits, '+', spaces, dashes, dots or parentheses"
            }
            MsisdnError::TooShort => "MSISDN is shorter than 8 digits",
            MsisdnError::TooLong => "MSISDN is longer than 15 digits",
        })
    }
}

impl std::error::Error for MsisdnError {}

/// Formatting characters people and systems put inside numbers. Bidi and
/// zero-width marks are included because numbers copied on Persian-language
/// phones routinely carry them around the digits.
fn is_ignorable(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '.'
                | '('
                | ')'
                | '\u{2010}'..='\u{2015}'
                | '\u{2212}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Normalises `raw` to E.164 digits without '+', e.g. "0912 123 4567" with
/// country code "98" gives "989121234567".
///
/// A leading '+' or "00" marks an international number, kept as is; a single
/// leading '0' is the trunk prefix and is replaced by `country_code`; a number
/// that already starts with `country_code` is kept; anything else is taken as
/// a national number without trunk prefix. `country_code` is configuration:
/// only its digits are used, so "+98" and "98" behave the same.
///
/// # Errors
///
/// [`MsisdnError::InvalidCharacter`] for anything but digits (any script),
/// one leading '+', whitespace, dashes, dots, parentheses and invisible
/// direction marks; [`MsisdnError::Empty`] if there are no digits;
/// [`MsisdnError::TooLong`] / [`MsisdnError::TooShort`] if the result has
/// more than 15 or fewer than 8 digits.
pub fn normalize_msisdn(raw: &str, country_code: &str) -> Result<String, MsisdnError> {
    let mut digits = String::with_capacity(raw.len().min(32));
    let mut international = false;
    for c in raw.chars() {
        if let Some(d) = digit_value(c) {
            digits.push(ascii_digit(d));
        } else if c == '+' && digits.is_empty() && !international {
            international = true;
        } else if !is_ignorable(c) {
            return Err(MsisdnError::InvalidCharacter);
        }
    }
    if digits.is_empty() {
        return Err(MsisdnError::Empty);
    }
    let cc: String = country_code
        .chars()
        .filter_map(digit_value)
        .map(ascii_digit)
        .collect();
    let e164 = if international {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else if let Some(rest) = digits.strip_prefix('0') {
        format!("{cc}{rest}")
    } else if digits.starts_with(&cc) {
        digits
    } else {
        format!("{cc}{digits}")
    };
    if e164.len() > E164_MAX {
        Err(MsisdnError::TooLong)
    } else if e164.len() < MIN_LEN {
        Err(MsisdnError::TooShort)
    } else {
        Ok(e164)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MsisdnError::*;

    #[test]
    fn iran_table() {
        fn check(input: &str, expected: Result<&str, MsisdnError>) {
            assert_eq!(
                normalize_msisdn(input, "98"),
                expected.map(str::to_owned),
                "normalize_msisdn({input:?}, \"98\")"
            );
        }
        let ok = "989121234567";
        let table = [
            ("09121234567", Ok(ok)),
            ("+989121234567", Ok(ok)),
            ("00989121234567", Ok(ok)),
            ("989121234567", Ok(ok)),
            ("9121234567", Ok(ok)),
            ("۰۹۱۲۱۲۳۴۵۶۷", Ok(ok)),
            ("٠٩١٢١٢٣٤٥٦٧", Ok(ok)),
            ("０９１２１２３４５６７", Ok(ok)),
            ("+۹۸۹۱۲۱۲۳۴۵۶۷", Ok(ok)),
            ("0912 123 4567", Ok(ok)),
            ("0912-123-4567", Ok(ok)),
            ("0912.123.4567", Ok(ok)),
            ("(0912) 123-4567", Ok(ok)),
            ("+98 (912) 123 4567", Ok(ok)),
            ("  +98 912 123 4567  ", Ok(ok)),
            ("(+98) 9121234567", Ok(ok)),
            ("+ 98 912 123 4567", Ok(ok)),
            ("00 98 912 123 4567", Ok(ok)),
            ("\u{202A}+98 912 123 4567\u{202C}", Ok(ok)),
            ("\u{200E}09121234567", Ok(ok)),
            ("0912\u{A0}123\u{A0}4567", Ok(ok)),
            ("02188776655", Ok("982188776655")),
            ("+442071234567", Ok("442071234567")),
            ("00442071234567", Ok("442071234567")),
            ("+1 (202) 555-0123", Ok("12025550123")),
            ("", Err(Empty)),
            ("   ", Err(Empty)),
            ("+", Err(Empty)),
            ("()-.", Err(Empty)),
            ("abc", Err(InvalidCharacter)),
            ("0912a234567", Err(InvalidCharacter)),
            ("0912/1234567", Err(InvalidCharacter)),
            ("0912_1234567", Err(InvalidCharacter)),
            ("+98+9121234567", Err(InvalidCharacter)),
            ("98+9121234567", Err(InvalidCharacter)),
            ("++989121234567", Err(InvalidCharacter)),
            ("tel:+989121234567", Err(InvalidCharacter)),
            ("12345", Err(TooShort)),    // 98 + 12345 = 7 digits
            ("+1234567", Err(TooShort)), // 7 digits
            ("0", Err(TooShort)),
            ("00", Err(TooShort)),
            ("+12345678", Ok("12345678")),
            ("+123456789012345", Ok("123456789012345")),
            ("+1234567890123456", Err(TooLong)),
            ("0912123456789012", Err(TooLong)), // 98 + 15
            ("6037991234567890", Err(TooLong)),
        ];
        for (input, expected) in table {
            check(input, expected);
        }
    }

    #[test]
    fn other_country_codes_table() {
        fn check(input: (&str, &str), expected: Result<&str, MsisdnError>) {
            let (raw, cc) = input;
            assert_eq!(
                normalize_msisdn(raw, cc),
                expected.map(str::to_owned),
                "normalize_msisdn({raw:?}, {cc:?})"
            );
        }
        let table = [
            (("07700900123", "44"), Ok("447700900123")),
            (("7700900123", "44"), Ok("447700900123")),
            (("447700900123", "44"), Ok("447700900123")),
            (("+989121234567", "44"), Ok("989121234567")),
            (("09121234567", "+98"), Ok("989121234567")),
            (("09121234567", "۹۸"), Ok("989121234567")),
            (("0501234567", "971"), Ok("971501234567")),
            (("501234567", "971"), Ok("971501234567")),
        ];
        for (input, expected) in table {
            check(input, expected);
        }
    }

    #[test]
    fn errors_display_without_digits() {
        for e in [Empty, InvalidCharacter, TooShort, TooLong] {
            let shown = format!("{e} {e:?}");
            assert!(!shown.is_empty());
        }
        let e = normalize_msisdn("6037991234567890", "98").unwrap_err();
        assert!(!format!("{e} {e:?}").contains("6037"));
    }
}
