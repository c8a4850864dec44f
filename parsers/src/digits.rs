//! Digit folding shared by every other parser.
//!
//! Iranian phones send digits in Persian (U+06F0..), Arabic-Indic (U+0660..)
//! or full-width (U+FF10..) forms as often as in ASCII, so every parser in this
//! crate maps them to ASCII first and then only ever deals with `'0'..='9'`.

/// The value of `c` if it is a decimal digit in ASCII, Persian, Arabic-Indic
/// or full-width form.
#[must_use]
pub fn digit_value(c: char) -> Option<u8> {
    let zero = match c {
        '0'..='9' => '0',
        '\u{06F0}'..='\u{06F9}' => '\u{06F0}',
        '\u{0660}'..='\u{0669}' => '\u{0660}',
        '\u{FF10}'..='\u{FF19}' => '\u{FF10}',
        _ => return None,
    };
    // `c >= zero` is guaranteed by the match arm, so this cannot underflow;
    // `checked_sub` keeps that argument out of the panic-freedom proof anyway.
    let v = u32::from(c).checked_sub(u32::from(zero))?;
    u8::try_from(v).ok()
}

/// Maps a digit value 0..=9 to its ASCII character.
pub(crate) fn ascii_digit(v: u8) -> char {
    char::from(b'0'.saturating_add(v.min(9)))
}

/// Replaces every digit recognised by [`digit_value`] with its ASCII form,
/// leaving all other characters untouched.
#[must_use]
pub fn normalize_digits(s: &str) -> String {
    s.chars()
        .map(|c| digit_value(c).map_or(c, ascii_digit))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_value_table() {
        // Every digit of each accepted script, and the neighbours on either side of
        // its range, which must not leak in.
        for zero in ['0', '۰', '٠', '０'].map(u32::from) {
            for v in 0..10u8 {
                let c = char::from_u32(zero + u32::from(v)).unwrap();
                assert_eq!(digit_value(c), Some(v), "digit_value({c:?})");
            }
            for c in [zero - 1, zero + 10].map(|n| char::from_u32(n).unwrap()) {
                assert_eq!(digit_value(c), None, "digit_value({c:?})");
            }
        }
        // Other scripts' digits are deliberately not accepted.
        for c in ['\u{0966}', 'a', '²', ' '] {
            assert_eq!(digit_value(c), None, "digit_value({c:?})");
        }
    }

    #[test]
    fn normalize_digits_table() {
        fn check(input: &str, expected: &str) {
            assert_eq!(
                normalize_digits(input),
                expected,
                "normalize_digits({input:?})"
            );
        }
        let table: &[(&str, &str)] = &[
            ("", ""),
            ("1234", "1234"),
            ("۱۲۳۴", "1234"),
            ("١٢٣٤", "1234"),
            ("１２３４", "1234"),
            ("۰۹۱۲ ١٢٣ 4５６７", "0912 123 4567"),
            ("رمز ۱۲۳۴", "رمز 1234"),
            ("abc", "abc"),
            ("a۱b٢c３", "a1b2c3"),
            ("*۷۲۰#", "*720#"),
        ];
        for &(input, expected) in table {
            check(input, expected);
        }
    }
}
