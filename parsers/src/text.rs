//! Decoding of SMPP `short_message` / `message_payload` octets into text.
//!
//! The SMSC tells us the alphabet through `data_coding`; this module maps the
//! values seen in practice to a `String` and rejects the rest, and also
//! answers the reverse question for replies: does a text fit GSM-7, and how
//! many septets does it take. Any user data header must already be stripped.
//!
//! Choice for data_coding 0: octets below 0x80 are GSM 03.38 septets, one per
//! octet (SMPP never packs them), but octets 0x80 and above cannot be septets,
//! and the SMSCs that send them under 0 are sending Latin-1/ASCII; decoding
//! them as Latin-1 keeps such messages readable instead of failing them.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    UnsupportedDataCoding(u8),
    OddUcs2Length,
    InvalidUcs2,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnsupportedDataCoding(dc) => {
                write!(f, "unsupported SMPP data_coding 0x{dc:02X}")
            }
            DecodeError::OddUcs2Length => f.write_str("UCS-2 message has an odd number of octets"),
            DecodeError::InvalidUcs2 => f.write_str("UCS-2 message contains an unpaired surrogate"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// GSM 03.38 default alphabet. Slot 0x1B is the escape to the extension
/// table; on its own it is shown as a space, as 03.38 asks of receivers.
const GSM_BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', ' ', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

const GSM_ESCAPE: u8 = 0x1B;

/// GSM 03.38 extension table: (septet after the escape, character).
const GSM_EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{000C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

enum Alphabet {
    Gsm7,
    Ia5,
    Latin1,
    Ucs2,
}

fn alphabet(data_coding: u8) -> Option<Alphabet> {
    match data_coding {
        0x00 => Some(Alphabet::Gsm7),
        0x01 => Some(Alphabet::Ia5),
        0x03 => Some(Alphabet::Latin1),
        0x08 => Some(Alphabet::Ucs2),
        // SMPP gives the rest of 0x00..=0x0F its own meanings (octet data,
        // JIS, Cyrillic, ...) that a bank's SMS service never receives.
        0x02 | 0x04..=0x07 | 0x09..=0x0F => None,
        // GSM general data coding with a message class (e.g. flash SMS),
        // uncompressed; bits 3..2 name the alphabet.
        0x10..=0x1F => match (data_coding >> 2) & 0b11 {
            0b00 => Some(Alphabet::Gsm7),
            0b10 => Some(Alphabet::Ucs2),
            _ => None,
        },
        // Data coding / message class group: bit 2 clear is GSM-7, set is
        // 8-bit data.
        0xF0..=0xF3 => Some(Alphabet::Gsm7),
        _ => None,
    }
}

/// Decodes SMPP message octets according to `data_coding`.
///
/// Supported: 0 (GSM-7 unpacked, Latin-1 above 0x7F), 1 (IA5/ASCII), 3
/// (Latin-1), 8 (UCS-2 big-endian, surrogate pairs accepted), 0x10..=0x1F
/// with a GSM-7 or UCS-2 alphabet, and 0xF0..=0xF3 (GSM-7).
///
/// # Errors
///
/// [`DecodeError::UnsupportedDataCoding`] for any other `data_coding`;
/// for UCS-2, [`DecodeError::OddUcs2Length`] or [`DecodeError::InvalidUcs2`]
/// (an unpaired surrogate).
pub fn decode_short_message(data_coding: u8, bytes: &[u8]) -> Result<String, DecodeError> {
    match alphabet(data_coding) {
        Some(Alphabet::Gsm7) => Ok(decode_gsm7(bytes)),
        Some(Alphabet::Ia5) => Ok(bytes
            .iter()
            .map(|&b| {
                if b.is_ascii() {
                    char::from(b)
                } else {
                    '\u{FFFD}'
                }
            })
            .collect()),
        Some(Alphabet::Latin1) => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        Some(Alphabet::Ucs2) => decode_ucs2(bytes),
        None => Err(DecodeError::UnsupportedDataCoding(data_coding)),
    }
}

fn gsm_basic(septet: u8) -> char {
    GSM_BASIC
        .get(usize::from(septet))
        .copied()
        .unwrap_or('\u{FFFD}')
}

fn gsm_extension(septet: u8) -> Option<char> {
    GSM_EXTENSION
        .iter()
        .find(|&&(code, _)| code == septet)
        .map(|&(_, c)| c)
}

fn decode_gsm7(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut octets = bytes.iter().copied().peekable();
    while let Some(b) = octets.next() {
        if b == GSM_ESCAPE {
            match octets.peek().copied() {
                Some(next) if next < 0x80 => {
                    octets.next();
                    // 03.38: an escape sequence with no extension character
                    // is shown as the basic-table character.
                    out.push(gsm_extension(next).unwrap_or_else(|| gsm_basic(next)));
                }
                // An escape with nothing septet-like after it is shown as a
                // space; the following Latin-1 octet is decoded on its own.
                _ => out.push(' '),
            }
        } else if b < 0x80 {
            out.push(gsm_basic(b));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

fn decode_ucs2(bytes: &[u8]) -> Result<String, DecodeError> {
    if bytes.len() % 2 != 0 {
        return Err(DecodeError::OddUcs2Length);
    }
    let units = bytes.chunks_exact(2).map(|pair| match *pair {
        [hi, lo] => u16::from_be_bytes([hi, lo]),
        // chunks_exact(2) yields nothing else; U+FFFD keeps this total.
        _ => 0xFFFD,
    });
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| DecodeError::InvalidUcs2)
}

/// Septets `c` takes in GSM-7: 1 in the basic table, 2 via the escape.
fn char_septets(c: char) -> Option<usize> {
    // The escape slot shows as a space, which is also at 0x20, so searching
    // the whole table still gives the right answer for ' '.
    if GSM_BASIC.contains(&c) {
        Some(1)
    } else if GSM_EXTENSION.iter().any(|&(_, e)| e == c) {
        Some(2)
    } else {
        None
    }
}

/// True if every character of `s` can be sent in the GSM-7 default alphabet
/// (basic or extension table).
#[must_use]
pub fn gsm7_fits(s: &str) -> bool {
    s.chars().all(|c| char_septets(c).is_some())
}

/// Number of septets `s` takes in GSM-7, extension characters counting two;
/// `None` if some character has no GSM-7 form.
#[must_use]
pub fn gsm7_septets(s: &str) -> Option<usize> {
    s.chars()
        .try_fold(0usize, |n, c| n.checked_add(char_septets(c)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use DecodeError::*;

    #[test]
    fn decode_table() {
        type Case<'a> = ((u8, &'a [u8]), Result<&'a str, DecodeError>);
        fn check(input: (u8, &[u8]), expected: Result<&str, DecodeError>) {
            let (dc, bytes) = input;
            assert_eq!(
                decode_short_message(dc, bytes),
                expected.map(str::to_owned),
                "decode_short_message(0x{dc:02X}, {bytes:02X?})"
            );
        }
        let table: &[Case] = &[
            // GSM-7, unpacked
            ((0x00, b""), Ok("")),
            ((0x00, b"1234"), Ok("1234")),
            ((0x00, b"OTP 1234"), Ok("OTP 1234")),
            ((0x00, &[0x00, 0x01, 0x02, 0x03]), Ok("@£$¥")),
            ((0x00, &[0x10, 0x12, 0x13, 0x18, 0x1A]), Ok("ΔΦΓΣΞ")),
            ((0x00, &[0x24, 0x40, 0x5F, 0x60, 0x7F]), Ok("¤¡§¿à")),
            ((0x00, &[0x1C, 0x1D, 0x1E, 0x1F]), Ok("ÆæßÉ")),
            ((0x00, &[0x0A, 0x0D]), Ok("\n\r")),
            ((0x00, &[0x1B, 0x14]), Ok("^")),
            ((0x00, &[0x1B, 0x28, 0x1B, 0x29]), Ok("{}")),
            ((0x00, &[0x1B, 0x2F]), Ok("\\")),
            ((0x00, &[0x1B, 0x3C, 0x1B, 0x3D, 0x1B, 0x3E]), Ok("[~]")),
            ((0x00, &[0x1B, 0x40]), Ok("|")),
            ((0x00, &[0x1B, 0x65]), Ok("€")),
            ((0x00, &[0x1B, 0x0A]), Ok("\u{000C}")),
            ((0x00, &[0x31, 0x1B, 0x65, 0x32]), Ok("1€2")),
            ((0x00, &[0x1B, 0x41]), Ok("A")), // unknown extension
            ((0x00, &[0x1B, 0x1B]), Ok(" ")),
            ((0x00, &[0x31, 0x1B]), Ok("1 ")), // trailing escape
            ((0x00, &[0x1B, 0xE9]), Ok(" é")),
            // Latin-1 above 0x7F under data_coding 0
            ((0x00, &[0xE9, 0xFC, 0xA3]), Ok("éü£")),
            ((0x00, &[0x80, 0xFF]), Ok("\u{80}ÿ")),
            // IA5
            ((0x01, b"OTP 1234"), Ok("OTP 1234")),
            ((0x01, b"a@b$_"), Ok("a@b$_")),
            ((0x01, &[0x41, 0x80, 0xFF]), Ok("A\u{FFFD}\u{FFFD}")),
            // Latin-1
            ((0x03, b"1234"), Ok("1234")),
            ((0x03, &[0xE9, 0xA9, 0x24]), Ok("é©$")),
            // UCS-2
            ((0x08, b""), Ok("")),
            ((0x08, &[0x00, 0x31, 0x00, 0x32]), Ok("12")),
            ((0x08, &[0x06, 0x31, 0x06, 0x45, 0x06, 0x32]), Ok("رمز")),
            (
                (0x08, &[0x06, 0xF1, 0x06, 0xF2, 0x06, 0xF3, 0x06, 0xF4]),
                Ok("۱۲۳۴"),
            ),
            ((0x08, &[0xD8, 0x3D, 0xDE, 0x42]), Ok("🙂")),
            ((0x08, &[0x00]), Err(OddUcs2Length)),
            ((0x08, &[0x00, 0x31, 0x00]), Err(OddUcs2Length)),
            ((0x08, &[0xD8, 0x3D]), Err(InvalidUcs2)),
            ((0x08, &[0xDE, 0x42, 0xD8, 0x3D]), Err(InvalidUcs2)),
            ((0x08, &[0xD8, 0x3D, 0x00, 0x31]), Err(InvalidUcs2)),
            // General data coding with message class
            ((0x10, b"1234"), Ok("1234")),
            ((0x11, &[0x1B, 0x65]), Ok("€")),
            ((0x18, &[0x06, 0xF1]), Ok("۱")),
            ((0x19, &[0x06, 0xF1]), Ok("۱")),
            ((0x14, b"1234"), Err(UnsupportedDataCoding(0x14))),
            ((0x1C, b"1234"), Err(UnsupportedDataCoding(0x1C))),
            // Data coding / message class group
            ((0xF0, b"1234"), Ok("1234")),
            ((0xF1, &[0x1B, 0x65]), Ok("€")),
            ((0xF3, b"1234"), Ok("1234")),
            ((0xF4, b"1234"), Err(UnsupportedDataCoding(0xF4))),
            ((0xF7, b"1234"), Err(UnsupportedDataCoding(0xF7))),
            // Everything else
            ((0x02, b"1234"), Err(UnsupportedDataCoding(0x02))),
            ((0x04, b"1234"), Err(UnsupportedDataCoding(0x04))),
            ((0x05, b"1234"), Err(UnsupportedDataCoding(0x05))),
            ((0x06, b""), Err(UnsupportedDataCoding(0x06))),
            ((0x07, b""), Err(UnsupportedDataCoding(0x07))),
            ((0x09, b""), Err(UnsupportedDataCoding(0x09))),
            ((0x0E, b""), Err(UnsupportedDataCoding(0x0E))),
            ((0x0F, b""), Err(UnsupportedDataCoding(0x0F))),
            ((0x20, b""), Err(UnsupportedDataCoding(0x20))),
            ((0xC0, b""), Err(UnsupportedDataCoding(0xC0))),
            ((0xF8, b""), Err(UnsupportedDataCoding(0xF8))),
            ((0xFF, b""), Err(UnsupportedDataCoding(0xFF))),
        ];
        for &(input, ref expected) in table {
            check(input, expected.clone());
        }
    }

    #[test]
    fn gsm7_table() {
        fn check(input: &str, expected: Option<usize>) {
            assert_eq!(gsm7_septets(input), expected, "gsm7_septets({input:?})");
            assert_eq!(gsm7_fits(input), expected.is_some(), "gsm7_fits({input:?})");
        }
        let table: &[(&str, Option<usize>)] = &[
            ("", Some(0)),
            ("1234567", Some(7)),
            ("Your code: 1234567", Some(18)),
            ("@£$¥èéùìòÇ\nØø\rÅå", Some(16)),
            ("ΔΦΓΛΩΠΨΣΘΞ", Some(10)),
            ("ÆæßÉ ¤¡ÄÖÑÜ§¿äöñüà", Some(18)),
            ("€", Some(2)),
            ("^{}\\[~]|€", Some(18)),
            ("\u{000C}", Some(2)),
            ("a€b", Some(4)),
            ("رمز", None),
            ("۱۲۳۴", None),
            ("code ۱", None),
            ("`", None),
            ("\u{1B}", None),
            ("\t", None),
            ("ç", None),
            ("🙂", None),
        ];
        for &(input, expected) in table {
            check(input, expected);
        }
    }

    #[test]
    fn gsm7_round_trip_of_every_septet() {
        // Every basic character except the escape slot must be encodable,
        // and decoding a single septet must give a character that fits.
        for septet in 0u8..0x80 {
            let decoded = decode_short_message(0, &[septet]).unwrap_or_default();
            assert!(gsm7_fits(&decoded), "septet 0x{septet:02X} -> {decoded:?}");
        }
        for &(code, c) in &GSM_EXTENSION {
            let decoded = decode_short_message(0, &[GSM_ESCAPE, code]).unwrap_or_default();
            assert_eq!(decoded, c.to_string());
            assert_eq!(gsm7_septets(&decoded), Some(2));
        }
    }

    #[test]
    fn error_display() {
        assert_eq!(
            UnsupportedDataCoding(4).to_string(),
            "unsupported SMPP data_coding 0x04"
        );
        assert!(!OddUcs2Length.to_string().is_empty());
        assert!(!InvalidUcs2.to_string().is_empty());
    }
}
