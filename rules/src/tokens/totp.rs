//! RFC 6238 time-based codes and the gateway's acceptance rule for them: a window
//! of steps around the token's remembered drift, and no step at or before the last
//! one accepted (each step verifies once).
//!
//! Supported: HMAC-SHA-1/256/512, 6 to 8 digits, 30 or 60 s steps, T0 = 0. These
//! are what RFC 6238 specifies and what authenticator apps and the common hardware
//! tokens (30 s; some 60 s) implement; other steps or digit counts would enroll
//! tokens that no standard app can display.

use super::{hotp, Hash};

/// How a TOTP token makes its codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub hash: Hash,
    pub digits: u32,
    pub period: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("digits must be 6, 7 or 8")]
    Digits,
    #[error("period must be 30 or 60 seconds")]
    Period,
}

impl Params {
    pub fn new(hash: Hash, digits: u32, period: u32) -> Result<Self, ParamsError> {
        if !(6..=8).contains(&digits) {
            return Err(ParamsError::Digits);
        }
        if period != 30 && period != 60 {
            return Err(ParamsError::Period);
        }
        Ok(Self {
            hash,
            digits,
            period,
        })
    }

    /// The step counter T at `unix_ms` (floor division; before 1970 is step 0).
    pub fn step_at(&self, unix_ms: i64) -> u64 {
        let secs = u64::try_from(unix_ms.max(0) / 1000).unwrap_or(0);
        secs / u64::from(self.period.max(1))
    }

    pub fn code(&self, key: &[u8], step: u64) -> String {
        hotp(self.hash, key, step, self.digits)
    }
}

/// What the rule found for a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The code of step `step`, which is `drift` steps from now's.
    Fresh {
        step: u64,
        drift: i64,
    },
    /// A step at or before the last accepted one: a replay.
    Replayed,
    None,
}

/// Steps before the last accepted one a code is still recognised as a replay in
/// (rather than counted as a wrong code) once it has left the window.
pub const REPLAY_LOOKBACK: u64 = 10;

/// Looks for `candidate` among the steps `now + drift ± window`, then `now ±
/// window`. A window centred on the remembered drift follows a token whose clock
/// runs off slowly; now's own steps are always searched too, so codes from the
/// future that walked the drift away (7 of them moved it +7) cannot make the
/// token's real code a counted failure: it verifies, and the drift comes back.
/// The replay rule is applied after matching, so a replayed code is told apart
/// from a wrong one (it shows the customer holds the token: not a failure), also
/// once it has left the window (up to `REPLAY_LOOKBACK` steps before the last).
pub fn find(
    params: &Params,
    key: &[u8],
    candidate: &str,
    now_step: u64,
    drift: i64,
    window: u32,
    last_step: Option<u64>,
) -> Found {
    if candidate.len() != params.digits as usize || !candidate.bytes().all(|b| b.is_ascii_digit()) {
        return Found::None;
    }
    let centre = i128::from(now_step) + i128::from(drift);
    let w = i128::from(window);
    // Nearest steps first, so that the drift recorded is the smallest that fits;
    // then now's own steps, where the drift window does not reach them.
    let mut offsets: Vec<i128> = vec![0];
    for d in 1..=w {
        offsets.extend([-d, d]);
    }
    let now = i128::from(now_step);
    let steps = offsets.iter().map(|off| centre + off).chain(
        offsets
            .iter()
            .map(|off| now + off)
            .filter(|s| (s - centre).abs() > w),
    );
    for step in steps {
        let Ok(step) = u64::try_from(step) else {
            continue;
        };
        let code = params.code(key, step);
        if crate::codes::hashes_equal(&code, candidate) {
            if last_step.is_some_and(|last| step <= last) {
                return Found::Replayed;
            }
            let drift = i64::try_from(i128::from(step) - i128::from(now_step)).unwrap_or(0);
            return Found::Fresh { step, drift };
        }
    }
    let replayed = last_step.is_some_and(|last| {
        (last.saturating_sub(REPLAY_LOOKBACK)..=last)
            .any(|step| crate::codes::hashes_equal(&params.code(key, step), candidate))
    });
    if replayed {
        Found::Replayed
    } else {
        Found::None
    }
}

/// Resynchronisation from two consecutive codes: the step of the second within
/// `±range` of now, or `None`. A wide range is safe here because two codes must
/// match in a row and only an administrator calls it.
pub fn resync(
    params: &Params,
    key: &[u8],
    first: &str,
    second: &str,
    now_step: u64,
    range: u32,
) -> Option<u64> {
    let lo = now_step.saturating_sub(u64::from(range));
    let hi = now_step.saturating_add(u64::from(range));
    (lo..hi).find_map(|s| {
        (crate::codes::hashes_equal(&params.code(key, s), first)
            && crate::codes::hashes_equal(&params.code(key, s + 1), second))
        .then_some(s + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED20: &[u8] = b"12345678901234567890";
    const SEED32: &[u8] = b"12345678901234567890123456789012";
    const SEED64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    /// RFC 6238 Appendix B (8 digits, 30 s, T0 = 0).
    #[test]
    fn rfc6238_appendix_b() {
        let table: &[(i64, &str, &str, &str)] = &[
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (secs, sha1, sha256, sha512) in table {
            for (hash, seed, expected) in [
                (Hash::Sha1, SEED20, sha1),
                (Hash::Sha256, SEED32, sha256),
                (Hash::Sha512, SEED64, sha512),
            ] {
                let p = Params::new(hash, 8, 30).unwrap();
                assert_eq!(
                    &p.code(seed, p.step_at(secs * 1000)),
                    expected,
                    "{secs} {hash:?}"
                );
            }
        }
        let p = Params::new(Hash::Sha1, 8, 30).unwrap();
        assert_eq!(p.code(SEED20, p.step_at(1_234_567_890_000)), "89005924");
    }

    #[test]
    fn window_drift_and_replay() {
        let p = Params::new(Hash::Sha1, 6, 30).unwrap();
        let now = 1000;
        let code = |s| p.code(SEED20, s);
        assert_eq!(
            find(&p, SEED20, &code(now), now, 0, 1, None),
            Found::Fresh {
                step: now,
                drift: 0
            }
        );
        assert_eq!(
            find(&p, SEED20, &code(now - 1), now, 0, 1, None),
            Found::Fresh {
                step: now - 1,
                drift: -1
            }
        );
        assert_eq!(
            find(&p, SEED20, &code(now - 2), now, 0, 1, None),
            Found::None
        );
        // Remembered drift moves the window.
        assert_eq!(
            find(&p, SEED20, &code(now - 2), now, -1, 1, None),
            Found::Fresh {
                step: now - 2,
                drift: -2
            }
        );
        assert_eq!(
            find(&p, SEED20, &code(now), now, 0, 1, Some(now)),
            Found::Replayed
        );
        // Walked away by codes from the future, the drift does not keep now's own
        // code out: it verifies, and the drift is back to 0.
        assert_eq!(
            find(&p, SEED20, &code(now + 1), now, 7, 1, Some(now - 1)),
            Found::Fresh {
                step: now + 1,
                drift: 1
            }
        );
        // A replay is told apart after it left the window, and only that far back.
        assert_eq!(
            find(&p, SEED20, &code(now - 5), now, 0, 1, Some(now - 3)),
            Found::Replayed
        );
        assert_eq!(
            find(&p, SEED20, &code(now - 14), now, 0, 1, Some(now - 3)),
            Found::None,
            "beyond REPLAY_LOOKBACK"
        );
        assert_eq!(find(&p, SEED20, "12345", now, 0, 1, None), Found::None);
        assert_eq!(find(&p, SEED20, "abcdef", now, 0, 1, None), Found::None);
        // A drift window before step 0 is skipped; now's own step still counts.
        assert_eq!(
            find(&p, SEED20, &code(0), 0, -5, 1, None),
            Found::Fresh { step: 0, drift: 0 }
        );
        assert_eq!(find(&p, SEED20, &code(3), 0, -5, 1, None), Found::None);
        assert_eq!(
            resync(&p, SEED20, &code(now + 40), &code(now + 41), now, 100),
            Some(now + 41)
        );
        assert_eq!(
            resync(&p, SEED20, &code(now + 40), &code(now + 42), now, 100),
            None
        );
    }

    #[test]
    fn only_supported_shapes() {
        assert_eq!(Params::new(Hash::Sha1, 5, 30), Err(ParamsError::Digits));
        assert_eq!(Params::new(Hash::Sha1, 9, 30), Err(ParamsError::Digits));
        assert_eq!(Params::new(Hash::Sha1, 6, 45), Err(ParamsError::Period));
        assert!(Params::new(Hash::Sha512, 8, 60).is_ok());
    }
}
