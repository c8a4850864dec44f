//! Secrets and the arithmetic on them: one-time codes from the OS CSPRNG, the keyed
//! hashes that stand in for card numbers and codes in the database, API-key hashing,
//! and the constant-time comparison every check goes through.
//!
//! Nothing here stores or logs anything: plaintext values enter and leave only as
//! return values, and the wrapper types redact themselves in `Debug`.

use argon2::PasswordHasher;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::{Rng, TryRngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::payment::{Epin, Transaction};

type HmacSha256 = Hmac<Sha256>;

/// Number of digits of a one-time code; codes are uniform over 0000000..=9999999.
pub const CODE_DIGITS: usize = 7;
const CODE_SPACE: u32 = 10_000_000;

/// Keys printed in this project's examples (the compose `secrets.env.example`).
const PUBLISHED_KEYS: [&str; 2] = [
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
];

/// The two keys the gateway hashes with. Both 32 random bytes.
#[derive(Clone)]
pub struct Keys {
    pan_key: [u8; 32],
    code_key: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0} must be 64 hex characters (32 bytes)")]
    BadKey(&'static str),
}

impl Keys {
    pub fn new(pan_key: [u8; 32], code_key: [u8; 32]) -> Self {
        Self { pan_key, code_key }
    }

    pub fn from_hex(pan_key: &str, code_key: &str) -> Result<Self, KeyError> {
        Ok(Self {
            pan_key: decode_key(pan_key, "pan_key")?,
            code_key: decode_key(code_key, "code_key")?,
        })
    }

    /// Fresh random keys, for a new embedded installation.
    pub fn generate() -> Self {
        Self {
            pan_key: random_bytes(),
            code_key: random_bytes(),
        }
    }

    pub fn pan_key_hex(&self) -> String {
        hex::encode(self.pan_key)
    }

    pub fn code_key_hex(&self) -> String {
        hex::encode(self.code_key)
    }

    /// The stable identifier of a card: HMAC-SHA256(pan_key, PAN digits).
    pub fn pan_hash(&self, pan: &Pan) -> String {
        mac_hex(&self.pan_key, &[b"pan|", pan.0.as_bytes()])
    }

    /// Lets the gateway tell apart two cards of one phone that share their last 4
    /// digits without storing a sixth digit in clear (PCI DSS allows last 4 only).
    pub fn last6_hash(&self, last6: &str) -> String {
        mac_hex(&self.pan_key, &[b"last6|", last6.as_bytes()])
    }

    /// What the database keeps instead of a code. Bound to the card so that a hash
    /// table of the 10^7 codes built for one card says nothing about another.
    pub fn code_hash(&self, pan_hash: &str, code: &Code) -> String {
        mac_hex(
            &self.code_key,
            &[b"code|", pan_hash.as_bytes(), b"|", code.0.as_bytes()],
        )
    }

    /// Fingerprint of a verify request, to tell a genuine retry of a `request_id`
    /// from a different request that reuses it. The transaction's canonical form is
    /// part of it; the ePIN is not (a stored fingerprint must not become a cheap
    /// test of 10^4 ePINs).
    pub fn request_fingerprint(
        &self,
        pan_hash: &str,
        code: &str,
        transaction: Option<&Transaction>,
    ) -> String {
        let canonical = transaction.map(Transaction::canonical);
        let mut parts: Vec<&[u8]> = vec![b"req|", pan_hash.as_bytes(), b"|", code.as_bytes()];
        if let Some(c) = &canonical {
            parts.extend([b"|".as_slice(), c.as_bytes()]);
        }
        mac_hex(&self.code_key, &parts)
    }

    /// What a pending card keeps of its activation code. A namespace of its own, so
    /// an activation code can never stand in for a one-time code or the reverse.
    pub fn activation_hash(&self, pan_hash: &str, code: &Code) -> String {
        mac_hex(
            &self.code_key,
            &[b"activation|", pan_hash.as_bytes(), b"|", code.0.as_bytes()],
        )
    }

    /// What a pending token keeps of its two-part activation code: a namespace of
    /// its own, bound to the token's row by its random `uid`.
    pub fn token_activation_hash(&self, token_uid: &str, code: &str) -> String {
        mac_hex(
            &self.code_key,
            &[
                b"token-activation|",
                token_uid.as_bytes(),
                b"|",
                code.as_bytes(),
            ],
        )
    }

    /// What a code keeps of the payment it is bound to: HMAC(code_key, canonical
    /// form), so the database shows neither amount nor payee, and a verify must
    /// present the same transaction to match.
    pub fn transaction_hash(&self, transaction: &Transaction) -> String {
        mac_hex(
            &self.code_key,
            &[b"txn|", transaction.canonical().as_bytes()],
        )
    }

    /// What a database records of the keys it was first started with, one entry per
    /// key: a keyed hash of a fixed label, so the entries tell whether another node's
    /// keys are the same and nothing about the keys themselves.
    pub fn fingerprints(&self) -> [(&'static str, String); 2] {
        [
            (
                "pan_key",
                mac_hex(&self.pan_key, &[b"fingerprint|v1"])[..32].to_owned(),
            ),
            (
                "code_key",
                mac_hex(&self.code_key, &[b"fingerprint|v1"])[..32].to_owned(),
            ),
        ]
    }

    /// The name of a key anyone could know: one published as an example, or one
    /// byte repeated. Such a key protects nothing.
    pub fn published(&self) -> Option<&'static str> {
        let known = |key: &[u8; 32]| {
            PUBLISHED_KEYS.contains(&hex::encode(key).as_str()) || key.iter().all(|b| *b == key[0])
        };
        if known(&self.pan_key) {
            Some("pan_key")
        } else if known(&self.code_key) {
            Some("code_key")
        } else {
            None
        }
    }

    /// A sealing key for one purpose (`"outbox"`, `"tokens"`), derived from the code
    /// key so that every node sharing the keys can open what another sealed, and so
    /// that a key for one purpose opens nothing sealed for another.
    pub fn seal_key(&self, purpose: &str) -> crate::seal::SealKey {
        let mut mac =
            HmacSha256::new_from_slice(&self.code_key).expect("HMAC takes any key length");
        mac.update(b"seal|v1|");
        mac.update(purpose.as_bytes());
        crate::seal::SealKey::new(mac.finalize().into_bytes().into())
    }

    /// The permutation of one kind of row id (`"codes"`) into the ids the API shows,
    /// derived from the code key so every node shows the same id for a row.
    pub fn id_cipher(&self, kind: &str) -> crate::ids::IdCipher {
        let mut mac =
            HmacSha256::new_from_slice(&self.code_key).expect("HMAC takes any key length");
        mac.update(b"public-id|v1|");
        mac.update(kind.as_bytes());
        crate::ids::IdCipher::new(mac.finalize().into_bytes().into())
    }

    /// The argon2 secret ("pepper") for ePIN hashes, derived from the code key so
    /// that a copy of the database alone cannot be searched for ePINs.
    fn epin_pepper(&self) -> [u8; 32] {
        let mut mac =
            HmacSha256::new_from_slice(&self.code_key).expect("HMAC takes any key length");
        mac.update(b"epin-pepper|v1");
        mac.finalize().into_bytes().into()
    }

    /// A slow keyed hash of an ePIN (PHC string): Argon2id, m = 19 MiB, t = 2, p = 1
    /// (OWASP's recommended minimum), a random 16-byte salt, and the pepper as the
    /// argon2 secret. Takes tens of milliseconds: call it from `spawn_blocking`.
    pub fn epin_hash(&self, epin: &Epin) -> String {
        let pepper = self.epin_pepper();
        let salt_bytes = random_bytes();
        let salt = argon2::password_hash::SaltString::encode_b64(&salt_bytes[..16])
            .expect("16 bytes is a valid salt");
        epin_argon2(&pepper)
            .hash_password(epin.expose().as_bytes(), &salt)
            .expect("argon2 with fixed valid parameters")
            .to_string()
    }

    /// Whether `epin` matches a hash made by [`Keys::epin_hash`]. Slow, like it;
    /// argon2's comparison is constant-time. A malformed stored hash never matches.
    pub fn epin_matches(&self, stored: &str, epin: &Epin) -> bool {
        use argon2::PasswordVerifier;
        let Ok(parsed) = argon2::PasswordHash::new(stored) else {
            return false;
        };
        epin_argon2(&self.epin_pepper())
            .verify_password(epin.expose().as_bytes(), &parsed)
            .is_ok()
    }
    /// The argon2 secret for console operators' passwords: another purpose than
    /// the ePINs', so one kind of hash can never stand for the other.
    fn password_pepper(&self) -> [u8; 32] {
        let mut mac =
            HmacSha256::new_from_slice(&self.code_key).expect("HMAC takes any key length");
        mac.update(b"operator-password|v1");
        mac.finalize().into_bytes().into()
    }

    /// An operator's password hash: the ePIN's Argon2id (same cost, same reasons),
    /// with its own pepper. Slow: call it from `spawn_blocking`.
    pub fn password_hash(&self, password: &crate::operators::Password) -> String {
        let salt_bytes = random_bytes();
        let salt = argon2::password_hash::SaltString::encode_b64(&salt_bytes[..16])
            .expect("16 bytes is a valid salt");
        epin_argon2(&self.password_pepper())
            .hash_password(password.expose().as_bytes(), &salt)
            .expect("argon2 with fixed valid parameters")
            .to_string()
    }

    /// Whether `password` matches a hash made by [`Keys::password_hash`]; a
    /// malformed stored hash never matches (and still costs a hash, so an unknown
    /// operator's sign-in takes as long as a known one's).
    pub fn password_matches(&self, stored: &str, password: &crate::operators::Password) -> bool {
        use argon2::PasswordVerifier;
        let pepper = self.password_pepper();
        let argon = epin_argon2(&pepper);
        match argon2::PasswordHash::new(stored) {
            Ok(parsed) => argon
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok(),
            Err(_) => {
                let salt = argon2::password_hash::SaltString::encode_b64(&[0; 16])
                    .expect("16 bytes is a valid salt");
                let _ = argon.hash_password(password.expose().as_bytes(), &salt);
                false
            }
        }
    }
}

/// Argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1) and the pepper.
fn epin_argon2(pepper: &[u8]) -> argon2::Argon2<'_> {
    let params =
        argon2::Params::new(19 * 1024, 2, 1, None).expect("constant argon2 parameters are valid");
    argon2::Argon2::new_with_secret(
        pepper,
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    )
    .expect("a 32-byte argon2 secret is valid")
}

fn decode_key(hex_key: &str, name: &'static str) -> Result<[u8; 32], KeyError> {
    let bytes = hex::decode(hex_key.trim()).map_err(|_| KeyError::BadKey(name))?;
    bytes.try_into().map_err(|_| KeyError::BadKey(name))
}

fn random_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut out)
        .expect("the operating system's random source failed");
    out
}

fn mac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time equality of two hashes, so that the time a comparison takes says
/// nothing about how many leading characters of a guess were right.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A full card number, digits only. Deliberately no `Display`; `Debug` redacts.
#[derive(Clone, PartialEq, Eq)]
pub struct Pan(String);

impl std::fmt::Debug for Pan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pan(****{})", self.last4())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PanError {
    #[error("pan must be 13 to 19 digits")]
    Length,
    #[error("pan may contain only digits, spaces and dashes")]
    Character,
    #[error("pan fails the Luhn check")]
    Luhn,
}

impl Pan {
    /// Accepts digits in any script (ASCII, Persian, Arabic-Indic, full-width) with
    /// spaces or dashes between groups, as back-office systems and people write them.
    pub fn parse(raw: &str) -> Result<Self, PanError> {
        let mut digits = String::with_capacity(19);
        for c in raw.trim().chars() {
            match otpgw_parsers::digits::digit_value(c) {
                Some(d) => digits.push(char::from(b'0' + d)),
                None if c == ' ' || c == '-' => {}
                None => return Err(PanError::Character),
            }
        }
        if !(13..=19).contains(&digits.len()) {
            return Err(PanError::Length);
        }
        if !luhn_ok(&digits) {
            return Err(PanError::Luhn);
        }
        Ok(Self(digits))
    }

    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }

    pub fn last6(&self) -> &str {
        &self.0[self.0.len() - 6..]
    }
}

fn luhn_ok(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 {
                    dd - 9
                } else {
                    dd
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// A plaintext one-time code. Lives only between generation and the reply PDU.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code(*******)")
    }
}

impl Code {
    /// A fresh code, uniform over the whole 7-digit space (rejection sampling in
    /// `random_range`, so no modulo bias), from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let n = OsRng.unwrap_err().random_range(0..CODE_SPACE);
        Self(format!("{n:0width$}", width = CODE_DIGITS))
    }

    /// A code as typed by a customer and forwarded by the switch: digits in any script.
    /// `None` when it holds anything but digits.
    pub fn parse(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 32 {
            return None;
        }
        trimmed
            .chars()
            .map(|c| otpgw_parsers::digits::digit_value(c).map(|d| char::from(b'0' + d)))
            .collect::<Option<String>>()
            .map(Self)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A bearer API key as handed to a client once; the store keeps only its SHA-256.
pub fn new_api_key() -> String {
    format!("otpgw_{}", hex::encode(random_bytes()))
}

/// A console session id (256 bits from the OS CSPRNG), or a session's CSRF token.
/// Session ids are stored as `api_key_hash` of them, like API keys.
pub fn new_session_token() -> String {
    hex::encode(random_bytes())
}

/// API keys are 256 random bits, so a plain SHA-256 (no salt, no stretching) is
/// enough to make the stored value useless to a reader of the database.
pub fn api_key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_tell_keys_apart_and_hide_them() {
        let keys = Keys::generate();
        let same = Keys::from_hex(&keys.pan_key_hex(), &keys.code_key_hex()).unwrap();
        assert_eq!(keys.fingerprints(), same.fingerprints());
        let other_code =
            Keys::from_hex(&keys.pan_key_hex(), &Keys::generate().code_key_hex()).unwrap();
        let (mine, theirs) = (keys.fingerprints(), other_code.fingerprints());
        assert_eq!(mine[0], theirs[0]);
        assert_ne!(mine[1], theirs[1]);
        for (_, fp) in &mine {
            assert_eq!(fp.len(), 32);
            assert!(
                !keys.pan_key_hex().contains(fp.as_str())
                    && !keys.code_key_hex().contains(fp.as_str())
            );
        }
    }

    #[test]
    fn published_and_repeated_keys_are_named() {
        let fresh = Keys::generate().pan_key_hex();
        for (pan, code, named) in [
            (PUBLISHED_KEYS[0].to_owned(), fresh.clone(), Some("pan_key")),
            (
                fresh.clone(),
                PUBLISHED_KEYS[1].to_owned(),
                Some("code_key"),
            ),
            (fresh.clone(), "00".repeat(32), Some("code_key")),
            ("ab".repeat(32), fresh.clone(), Some("pan_key")),
            (fresh.clone(), Keys::generate().code_key_hex(), None),
        ] {
            assert_eq!(Keys::from_hex(&pan, &code).unwrap().published(), named);
        }
    }

    #[test]
    fn codes_are_seven_digits_and_cover_the_space() {
        let mut first_digits = [0u32; 10];
        for _ in 0..5000 {
            let c = Code::generate();
            assert_eq!(c.expose().len(), CODE_DIGITS);
            assert!(c.expose().bytes().all(|b| b.is_ascii_digit()));
            first_digits[usize::from(c.expose().as_bytes()[0] - b'0')] += 1;
        }
        // Every leading digit, 0 included, shows up: leading zeros are kept.
        assert!(first_digits.iter().all(|&n| n > 0), "{first_digits:?}");
    }

    #[test]
    fn pan_parsing() {
        assert!(Pan::parse("4111111111111111").is_ok());
        assert!(Pan::parse("4111-1111 1111-1111").is_ok());
        assert!(Pan::parse("۴۱۱۱۱۱۱۱۱۱۱۱۱۱۱۱").is_ok());
        assert_eq!(Pan::parse("4111111111111112"), Err(PanError::Luhn));
        assert_eq!(Pan::parse("411111111111"), Err(PanError::Length));
        assert_eq!(Pan::parse("4111x11111111111"), Err(PanError::Character));
        let pan = Pan::parse("6037991234561235").unwrap();
        assert_eq!(pan.last4(), "1235");
        assert_eq!(pan.last6(), "561235");
        assert!(!format!("{pan:?}").contains("603799"));
    }

    #[test]
    fn hashes_depend_on_keys_and_card() {
        let k1 = Keys::generate();
        let k2 = Keys::generate();
        let pan = Pan::parse("4111111111111111").unwrap();
        assert_ne!(k1.pan_hash(&pan), k2.pan_hash(&pan));
        let code = Code::parse("0012345").unwrap();
        assert_ne!(k1.code_hash("a", &code), k1.code_hash("b", &code));
        assert!(hashes_equal(
            &k1.code_hash("a", &code),
            &k1.code_hash("a", &code)
        ));
        assert!(!hashes_equal("abc", "abd"));
        assert!(!hashes_equal("abc", "abcd"));
    }

    #[test]
    fn epin_hashes_are_salted_peppered_and_verify() {
        let keys = Keys::generate();
        let epin = Epin::parse("2580").unwrap();
        let h1 = keys.epin_hash(&epin);
        let h2 = keys.epin_hash(&epin);
        assert_ne!(h1, h2, "salted");
        assert!(h1.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h1}");
        assert!(!h1.contains("2580"));
        assert!(keys.epin_matches(&h1, &epin));
        assert!(!keys.epin_matches(&h1, &Epin::parse("2581").unwrap()));
        // Another installation's keys (another pepper) do not match.
        assert!(!Keys::generate().epin_matches(&h1, &epin));
        assert!(!keys.epin_matches("garbage", &epin));
    }

    #[test]
    fn transaction_hashes_and_fingerprints_follow_the_payment() {
        let keys = Keys::generate();
        let t1 = Transaction::new("purchase", 100, "IRR", "Shop").unwrap();
        let t2 = Transaction::new("purchase", 100, "IRR", "Shop2").unwrap();
        assert_ne!(keys.transaction_hash(&t1), keys.transaction_hash(&t2));
        assert_eq!(
            keys.transaction_hash(&t1),
            keys.transaction_hash(&t1.clone())
        );
        assert_ne!(
            keys.request_fingerprint("p", "1", Some(&t1)),
            keys.request_fingerprint("p", "1", None)
        );
    }

    #[test]
    fn code_parse_accepts_any_script_digits_only() {
        assert_eq!(Code::parse("۱۲۳۴۵۶۷").unwrap().expose(), "1234567");
        assert!(Code::parse("12a4567").is_none());
        assert!(Code::parse("").is_none());
    }
}
