//! Customer-held tokens, as pure arithmetic: HOTP's dynamic truncation (RFC 4226)
//! under TOTP (RFC 6238, `totp.rs`) and OCRA challenge/response (RFC 6287,
//! `ocra.rs`), the challenge otpgw derives from a payment, and the `otpauth://`
//! URI an authenticator app reads. No I/O, no clock, no panics on any input: the
//! core passes the time and the secrets in and gets digits or an error back.
//!
//! Written on RustCrypto's `hmac`/`sha1`/`sha2` rather than `totp-rs`: OCRA has no
//! well-kept crate, it needs the same truncation, and one small HOTP core shared by
//! both is easier to check against the RFC vectors than two implementations.

pub mod decide;
pub mod ocra;
pub mod totp;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};

/// What a token computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// RFC 6238 time-based codes (PKO's Token, UniCredit's hardware token).
    Totp,
    /// RFC 6287 responses over a payment's challenge (OTP banka's Appli 2).
    Ocra,
}

/// Where a token's secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenSource {
    /// A fresh secret from the OS CSPRNG, delivered once at activation.
    Software,
    /// Imported from the vendor's file with the device's serial.
    Hardware,
}

/// A token's life: `pending` (waiting for its two-part activation), `active`,
/// `suspended` (reversible), `revoked` (final; the secret is wiped), `locked` (too
/// many wrong activation codes; replace it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    Pending,
    Active,
    Suspended,
    Revoked,
    Locked,
}

crate::named!(TokenKind { Totp = "totp", Ocra = "ocra" });
crate::named!(TokenSource { Software = "software", Hardware = "hardware" });
crate::named!(TokenState { Pending = "pending", Active = "active", Suspended = "suspended", Revoked = "revoked", Locked = "locked" });

/// The HMAC hash of a token. SHA-1 is what most apps and hardware tokens ship
/// with (RFC 6238's default); SHA-256/512 are the RFC's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hash {
    Sha1,
    Sha256,
    Sha512,
}

impl Hash {
    pub const ALL: &'static [Hash] = &[Hash::Sha1, Hash::Sha256, Hash::Sha512];

    pub fn as_str(self) -> &'static str {
        match self {
            Hash::Sha1 => "sha1",
            Hash::Sha256 => "sha256",
            Hash::Sha512 => "sha512",
        }
    }

    /// Case-insensitive: OCRA suites spell it `SHA1`, the API `sha1`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|h| h.as_str().eq_ignore_ascii_case(s))
    }

    /// HMAC of `parts` under `key`. HMAC takes keys of any length.
    pub fn mac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            for p in parts {
                mac.update(p);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Hash::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
            Hash::Sha256 => run::<Hmac<sha2::Sha256>>(key, parts),
            Hash::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
        }
    }

    /// A plain digest (OCRA's hashed PIN).
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Hash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// RFC 4226 §5.3 dynamic truncation to `digits` decimal digits (zero-padded).
/// `digits` outside 1..=10 is clamped rather than panicking; callers validate it.
pub fn truncate(mac: &[u8], digits: u32) -> String {
    let digits = digits.clamp(1, 10);
    let Some(last) = mac.last() else {
        return "0".repeat(digits as usize);
    };
    let offset = usize::from(last & 0x0f);
    let Some(b) = mac.get(offset..offset + 4) else {
        return "0".repeat(digits as usize);
    };
    let bin = (u64::from(b[0] & 0x7f) << 24)
        | (u64::from(b[1]) << 16)
        | (u64::from(b[2]) << 8)
        | u64::from(b[3]);
    let value = bin % 10u64.pow(digits);
    format!("{value:0width$}", width = digits as usize)
}

/// HOTP (RFC 4226) with any of the hashes: the core of TOTP.
pub fn hotp(hash: Hash, key: &[u8], counter: u64, digits: u32) -> String {
    truncate(&hash.mac(key, &[&counter.to_be_bytes()]), digits)
}

/// The digits of an OCRA challenge otpgw issues for a payment (`QN08`), from a
/// random 64-bit number. The challenge carries no part of the payment: a derived
/// 8-digit challenge (as otpgw once used) is shared by one payment in 10^8, which
/// an attacker finds in seconds; an issued one is bound to its payment by the row
/// that records it, so no other payment can borrow its response (SECURITY.md, "OCRA
/// payment binding"). The bias of `mod 10^8` over 2^64 is below 10^-11.
pub fn challenge_digits(random: u64) -> String {
    format!("{:08}", random % 100_000_000)
}

/// RFC 4648 base32 without padding, as `otpauth://` URIs carry secrets.
pub fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Percent-encodes a label or parameter for an `otpauth://` URI.
fn uri_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The Key Uri Format standard authenticator apps read (Google Authenticator's
/// `otpauth://totp/ISSUER:LABEL?secret=…`). For an OCRA token the same scheme
/// with type `ocra` and the suite, which OCRA apps that take a URI accept.
pub fn otpauth_uri(
    kind: &str,
    issuer: &str,
    label: &str,
    secret: &[u8],
    params: &[(&str, String)],
) -> String {
    let mut uri = format!(
        "otpauth://{kind}/{}:{}?secret={}&issuer={}",
        uri_escape(issuer),
        uri_escape(label),
        base32(secret),
        uri_escape(issuer)
    );
    for (k, v) in params {
        uri.push_str(&format!("&{k}={}", uri_escape(v)));
    }
    uri
}

/// Parses a secret given as hex (vendor files usually carry hex) or base32 (what
/// apps export). Bounded: 16 to 64 bytes (RFC 4226 asks for at least 128 bits).
pub fn parse_secret(raw: &str) -> Option<Vec<u8>> {
    let raw = raw.trim();
    if raw.len() > 256 {
        return None;
    }
    let bytes = if raw.len() % 2 == 0 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(raw).ok()?
    } else {
        base32_decode(raw)?
    };
    (16..=64).contains(&bytes.len()).then_some(bytes)
}

fn base32_decode(raw: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in raw.trim_end_matches('=').chars() {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            ' ' | '-' => continue,
            _ => return None,
        };
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hotp_rfc4226_appendix_d() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(
                hotp(Hash::Sha1, b"12345678901234567890", counter as u64, 6),
                *code
            );
        }
    }

    #[test]
    fn base32_round_trip_and_secret_parsing() {
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(
            parse_secret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap(),
            b"12345678901234567890"
        );
        assert_eq!(
            parse_secret("3132333435363738393031323334353637383930").unwrap(),
            b"12345678901234567890"
        );
        assert_eq!(parse_secret("00"), None);
        assert_eq!(parse_secret("not a secret!"), None);
        assert_eq!(parse_secret(&"A".repeat(10_000)), None);
    }

    #[test]
    fn issued_challenges_are_eight_digits() {
        assert_eq!(challenge_digits(0), "00000000");
        assert_eq!(challenge_digits(123), "00000123");
        assert_eq!(challenge_digits(u64::MAX), "09551615");
        assert_eq!(challenge_digits(100_000_000), "00000000");
    }

    #[test]
    fn truncate_never_panics_on_short_macs() {
        assert_eq!(truncate(&[], 6), "000000");
        assert_eq!(truncate(&[0x0f], 6), "000000");
    }
}
