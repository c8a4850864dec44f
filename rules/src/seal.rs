//! Secrets the gateway must keep and read back (token seeds, replies that carry a
//! code while they wait in the outbox) are sealed with an AEAD before they reach the
//! database, so a copy of the database alone shows none of them.
//!
//! XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`): a random 192-bit nonce per
//! message is safe without a counter, which several nodes sharing one key could not
//! keep. The associated data binds a sealed value to its row (for example
//! `"outbox|<code id>"`), so a value copied into another row does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const NONCE_LEN: usize = 24;

/// A 256-bit sealing key. Derived per purpose from the configured keys
/// ([`crate::codes::Keys::seal_key`]); never printed.
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(***)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Wrong key, wrong associated data, or a damaged value: AEAD cannot tell which.
    #[error("sealed value does not open (wrong key or damaged)")]
    Open,
}

impl SealKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// `nonce || ciphertext+tag`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory input");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_what_it_sealed_and_nothing_else() {
        let key = SealKey::new([7; 32]);
        let sealed = key.seal(b"row|1", b"your code is 1234567");
        assert!(!sealed.windows(7).any(|w| w == b"1234567"));
        assert_eq!(
            key.open(b"row|1", &sealed).unwrap(),
            b"your code is 1234567"
        );
        assert_eq!(key.open(b"row|2", &sealed), Err(SealError::Open));
        assert_eq!(
            SealKey::new([8; 32]).open(b"row|1", &sealed),
            Err(SealError::Open)
        );
        let mut damaged = sealed.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert_eq!(key.open(b"row|1", &damaged), Err(SealError::Open));
        assert_eq!(key.open(b"row|1", &sealed[..10]), Err(SealError::Open));
    }

    #[test]
    fn two_seals_of_one_value_differ() {
        let key = SealKey::new([1; 32]);
        assert_ne!(key.seal(b"", b"x"), key.seal(b"", b"x"));
    }
}
