//! Public ids: a row id as the outside sees it. The database keeps ordered row ids
//! (the latest code of a card is the highest); the API hands out their image under
//! a keyed permutation of the numbers 1 to 2^52 (a four-round Feistel network whose
//! round function is HMAC-SHA256), so an id says nothing of how many codes were
//! issued or in which order. Every node sharing the code key agrees on the images.
//! 2^52 keeps the ids exact in JSON numbers (JavaScript's doubles hold 2^53).

use hmac::{Hmac, Mac};
use sha2::Sha256;

const HALF_BITS: u32 = 26;
const HALF_MASK: u64 = (1 << HALF_BITS) - 1;
/// The largest id either side of the permutation: 2^52.
pub const MAX_ID: i64 = 1 << (2 * HALF_BITS);
/// Four rounds make a Feistel network a strong pseudo-random permutation (Luby and
/// Rackoff); more buy nothing here.
const ROUNDS: u8 = 4;

/// A keyed permutation of 1..=2^52 and its inverse.
#[derive(Clone)]
pub struct IdCipher {
    key: [u8; 32],
}

impl std::fmt::Debug for IdCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdCipher(..)")
    }
}

impl IdCipher {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn round(&self, round: u8, half: u64) -> u64 {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(&[round]);
        mac.update(&half.to_be_bytes());
        let out = mac.finalize().into_bytes();
        u64::from_be_bytes(out[..8].try_into().expect("32 bytes")) & HALF_MASK
    }

    /// The public image of row id `id` (1 to 2^52; row ids never come near).
    pub fn hide(&self, id: i64) -> i64 {
        debug_assert!((1..=MAX_ID).contains(&id), "a row id out of range");
        let x = (id - 1) as u64 & ((1 << (2 * HALF_BITS)) - 1);
        let (mut l, mut r) = (x >> HALF_BITS, x & HALF_MASK);
        for round in 0..ROUNDS {
            (l, r) = (r, l ^ self.round(round, r));
        }
        ((l << HALF_BITS | r) + 1) as i64
    }

    /// The row id whose image is `public`; `None` for a number no id maps to.
    pub fn reveal(&self, public: i64) -> Option<i64> {
        if !(1..=MAX_ID).contains(&public) {
            return None;
        }
        let x = (public - 1) as u64;
        let (mut l, mut r) = (x >> HALF_BITS, x & HALF_MASK);
        for round in (0..ROUNDS).rev() {
            (l, r) = (r ^ self.round(round, l), l);
        }
        Some(((l << HALF_BITS | r) + 1) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reveal_undoes_hide_and_the_images_are_not_in_order() {
        let c = IdCipher::new([7; 32]);
        let images: Vec<i64> = (1..=1000).map(|id| c.hide(id)).collect();
        for (id, image) in (1..=1000).zip(&images) {
            assert!((1..=MAX_ID).contains(image));
            assert_eq!(c.reveal(*image), Some(id));
        }
        // Consecutive ids land far apart, in no order: no more than chance rises.
        let rising = images.windows(2).filter(|w| w[1] > w[0]).count();
        assert!((400..=600).contains(&rising), "{rising} of 999 rise");
        let distinct: std::collections::HashSet<_> = images.iter().collect();
        assert_eq!(distinct.len(), 1000);
        assert_eq!(c.hide(MAX_ID).clamp(1, MAX_ID), c.hide(MAX_ID));
        assert_eq!(c.reveal(c.hide(MAX_ID)), Some(MAX_ID));
    }

    #[test]
    fn another_key_is_another_permutation_and_out_of_range_reveals_nothing() {
        let (a, b) = (IdCipher::new([1; 32]), IdCipher::new([2; 32]));
        assert_ne!(
            (1..=20).map(|i| a.hide(i)).collect::<Vec<_>>(),
            (1..=20).map(|i| b.hide(i)).collect::<Vec<_>>()
        );
        for bad in [0, -1, MAX_ID + 1, i64::MAX, i64::MIN] {
            assert_eq!(a.reveal(bad), None);
        }
    }
}
