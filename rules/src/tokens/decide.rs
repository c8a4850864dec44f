//! The verification decision with customer tokens: a card's active tokens are tried
//! before its SMS code when `[policy] accept` allows both. Pure like `verify`: the
//! sealed secrets are opened with the key the core hands in, inside the store's
//! transaction, and nothing here reads a clock.

use super::{ocra, totp, Hash, TokenKind};
use crate::codes::hashes_equal;
use crate::records::TokenRecord;
use crate::seal::SealKey;
use crate::verify::{decide, Effect, LatestCode, LockedCard, Presented, TokenUse};
use crate::vocab::{CardStatus, Reason, Verdict};

/// The associated data that binds a sealed token secret to its row and card.
pub fn aad(uid: &str, card_id: i64) -> Vec<u8> {
    format!("tokens|v1|{uid}|{card_id}").into_bytes()
}

/// Digits only, any script mapped to ASCII, separators dropped; bounded.
pub fn normalise_code(raw: &str) -> Option<String> {
    if raw.chars().count() > 40 {
        return None;
    }
    let mut out = String::new();
    for c in raw.chars() {
        match c {
            ' ' | '-' => {}
            c => out.push(char::from(b'0' + otpgw_parsers::digits::digit_value(c)?)),
        }
    }
    Some(out)
}

/// A token's shape, checked: TOTP parameters, or an enrollable OCRA suite.
pub enum Shape {
    Totp(totp::Params),
    Ocra(ocra::Suite),
}

impl Shape {
    pub fn of(
        kind: TokenKind,
        hash: Hash,
        digits: i64,
        period: i64,
        suite: Option<&str>,
    ) -> Option<Self> {
        match kind {
            TokenKind::Totp => totp::Params::new(
                hash,
                u32::try_from(digits).ok()?,
                u32::try_from(period).ok()?,
            )
            .ok()
            .map(Shape::Totp),
            TokenKind::Ocra => ocra::Suite::parse(suite?).ok().map(Shape::Ocra),
        }
    }
}

/// A token code as the rule checks it.
pub struct TokenCheck {
    pub key: SealKey,
    pub candidate: Option<String>,
    /// The OCRA challenge otpgw issued for the presented payment (`POST
    /// /v1/challenge`), when the verify named one that is bound to that payment.
    pub challenge: Option<Challenge>,
    pub window: u32,
    pub sms: bool,
    pub tokens: bool,
}

/// An issued OCRA challenge as a verify presents it: its digits, and whether it
/// may still approve. A challenge approves once and only until it expires; a right
/// response over a spent one is answered `used` or `expired`, never counted, since
/// it shows the customer holds the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub value: String,
    pub state: ChallengeState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeState {
    Live,
    Used,
    Expired,
}

/// What one token made of the candidate.
enum TokenMatch {
    Fresh(TokenUse),
    Replayed,
    Expired,
    None,
}

fn check_one(
    check: &TokenCheck,
    candidate: &str,
    r: &TokenRecord,
    presented: &Presented,
    now: i64,
) -> TokenMatch {
    let t = &r.token;
    let Ok(secret) = check.key.open(&aad(&r.uid, t.card_id), &r.sealed) else {
        return TokenMatch::None;
    };
    let last = r.last_step.and_then(|s| u64::try_from(s).ok());
    let to_i64 = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
    match Shape::of(t.kind, t.algorithm, t.digits, t.period, t.suite.as_deref()) {
        Some(Shape::Totp(p)) => match totp::find(
            &p,
            &secret,
            candidate,
            p.step_at(now),
            t.drift,
            check.window,
            last,
        ) {
            totp::Found::Fresh { step, drift } => TokenMatch::Fresh(TokenUse {
                token_id: t.id,
                step: Some(to_i64(step)),
                drift,
                txn_hash: None,
            }),
            totp::Found::Replayed => TokenMatch::Replayed,
            totp::Found::None => TokenMatch::None,
        },
        Some(Shape::Ocra(suite)) => {
            let Some(issued) = &check.challenge else {
                return TokenMatch::None;
            };
            let found = ocra_match(&suite, &secret, &issued.value, r, presented, check, now);
            match (issued.state, found) {
                (_, TokenMatch::None) => TokenMatch::None,
                (ChallengeState::Live, found) => found,
                (ChallengeState::Used, _) => TokenMatch::Replayed,
                (ChallengeState::Expired, _) => TokenMatch::Expired,
            }
        }
        None => TokenMatch::None,
    }
}

/// The candidate (`check.candidate`, which the caller has let through) as an OCRA
/// response over an issued challenge: in the suite's time window (each step once),
/// or, without a time step, once per payment.
fn ocra_match(
    suite: &ocra::Suite,
    secret: &[u8],
    challenge: &str,
    r: &TokenRecord,
    presented: &Presented,
    check: &TokenCheck,
    now: i64,
) -> TokenMatch {
    let Some(candidate) = check.candidate.as_deref() else {
        return TokenMatch::None;
    };
    let t = &r.token;
    let last = r.last_step.and_then(|s| u64::try_from(s).ok());
    let to_i64 = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
    let respond = |step: Option<u64>| {
        ocra::response(
            suite,
            secret,
            &ocra::Input {
                question: challenge,
                time_step: step,
                ..ocra::Input::default()
            },
        )
        .is_ok_and(|r| hashes_equal(&r, candidate))
    };
    match suite.step_at(now) {
        Some(now_step) => {
            let params = (
                i128::from(now_step),
                i128::from(t.drift),
                i128::from(check.window),
            );
            let centre = params.0 + params.1;
            let mut offsets = vec![0i128];
            for d in 1..=params.2 {
                offsets.extend([-d, d]);
            }
            for off in offsets {
                let Ok(step) = u64::try_from(centre + off) else {
                    continue;
                };
                if respond(Some(step)) {
                    if last.is_some_and(|l| step <= l) {
                        return TokenMatch::Replayed;
                    }
                    return TokenMatch::Fresh(TokenUse {
                        token_id: t.id,
                        step: Some(to_i64(step)),
                        drift: i64::try_from(i128::from(step) - params.0).unwrap_or(0),
                        txn_hash: presented.txn_hash.clone(),
                    });
                }
            }
            TokenMatch::None
        }
        None if respond(None) => {
            // No time step: a response answers one payment, once.
            let replay = matches!((&r.last_txn_hash, &presented.txn_hash), (Some(a), Some(b)) if hashes_equal(a, b));
            if replay {
                TokenMatch::Replayed
            } else {
                TokenMatch::Fresh(TokenUse {
                    token_id: t.id,
                    step: None,
                    drift: 0,
                    txn_hash: presented.txn_hash.clone(),
                })
            }
        }
        None => TokenMatch::None,
    }
}

/// The verification rule with tokens: the card's status first (as `decide`), then
/// the card's active tokens when `[policy] accept` names `"token"`, then its SMS
/// code when it names `"sms"`. A wrong code counts as a failure whenever the card
/// has an active token (its code is always "live"), so wrong token codes lock a
/// card under the same policy as wrong SMS codes. A replayed step is `used`, not a
/// failure: it shows the customer holds the token.
pub fn decide_tokens(
    card: &LockedCard,
    latest: Option<&LatestCode>,
    tokens: &[TokenRecord],
    check: &TokenCheck,
    presented: &Presented,
    now: i64,
) -> (Verdict, Effect) {
    match card.status {
        CardStatus::Active => {}
        _ => return decide(card, latest, presented, now),
    }
    let epin_ok = match &card.epin_hash {
        None => true,
        Some(h) => presented.epin_matched.as_deref() == Some(h.as_str()),
    };
    let tokens: &[TokenRecord] = if check.tokens { tokens } else { &[] };
    if let Some(candidate) = check.candidate.as_deref().filter(|_| epin_ok) {
        let (mut replayed, mut expired) = (false, false);
        for r in tokens {
            match check_one(check, candidate, r, presented, now) {
                TokenMatch::Fresh(u) => {
                    let ocra = r.token.kind == TokenKind::Ocra;
                    if presented.require_transaction && !ocra {
                        // A time-based code names no payment.
                        return (Verdict::Rejected(Reason::TransactionRequired), Effect::None);
                    }
                    return (Verdict::Approved, Effect::UseToken(u));
                }
                TokenMatch::Replayed => replayed = true,
                TokenMatch::Expired => expired = true,
                TokenMatch::None => {}
            }
        }
        if replayed {
            return (Verdict::Rejected(Reason::Used), Effect::None);
        }
        if expired {
            return (Verdict::Rejected(Reason::Expired), Effect::None);
        }
    }
    let (verdict, effect) = if check.sms {
        decide(card, latest, presented, now)
    } else {
        (Verdict::Rejected(Reason::Invalid), Effect::None)
    };
    match (verdict, &effect) {
        (Verdict::Rejected(Reason::Invalid), Effect::None) if !tokens.is_empty() => {
            (verdict, Effect::CountFailure)
        }
        _ => (verdict, effect),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Token;
    use crate::tokens::{TokenSource, TokenState};
    use crate::verify::tests::{card, plain};

    const SEED: &[u8] = b"12345678901234567890";
    const NOW: i64 = 1_111_111_109_000; // step 0x23523EC at 30 s

    fn record(key: &SealKey, kind: TokenKind, last_step: Option<i64>) -> TokenRecord {
        let (digits, period, suite) = match kind {
            TokenKind::Totp => (8, 30, None),
            TokenKind::Ocra => (6, 0, Some("OCRA-1:HOTP-SHA1-6:QN08".to_owned())),
        };
        TokenRecord {
            token: Token {
                id: 9,
                card_id: 1,
                kind,
                source: TokenSource::Hardware,
                serial: None,
                algorithm: Hash::Sha1,
                digits,
                period,
                suite,
                state: TokenState::Active,
                drift: 0,
                activation_expires_at: None,
                created_at: 0,
                updated_at: 0,
                last_used_at: None,
            },
            uid: "u".into(),
            sealed: key.seal(&aad("u", 1), SEED),
            last_step,
            last_txn_hash: None,
        }
    }

    fn check(key: &SealKey, code: &str, challenge: Option<&str>) -> TokenCheck {
        TokenCheck {
            key: key.clone(),
            candidate: normalise_code(code),
            challenge: challenge.map(|c| Challenge {
                value: c.to_owned(),
                state: ChallengeState::Live,
            }),
            window: 1,
            sms: true,
            tokens: true,
        }
    }

    fn presented(txn: Option<&str>) -> Presented {
        Presented {
            txn_hash: txn.map(str::to_owned),
            ..plain(None)
        }
    }

    #[test]
    fn token_decision_table() {
        let key = SealKey::new([3; 32]);
        let step = 0x23523EC_i64;
        let totp = record(&key, TokenKind::Totp, None);
        let active = card(CardStatus::Active);
        let run = |c: &LockedCard, r: &TokenRecord, code: &str| {
            decide_tokens(
                c,
                None,
                std::slice::from_ref(r),
                &check(&key, code, None),
                &presented(None),
                NOW,
            )
        };
        // RFC 6238's vector at this time, approved with its step remembered.
        assert_eq!(
            run(&active, &totp, "07081804"),
            (
                Verdict::Approved,
                Effect::UseToken(TokenUse {
                    token_id: 9,
                    step: Some(step),
                    drift: 0,
                    txn_hash: None
                })
            )
        );
        // The same step again is a replay: used, not counted.
        let used = record(&key, TokenKind::Totp, Some(step));
        assert_eq!(
            run(&active, &used, "07081804"),
            (Verdict::Rejected(Reason::Used), Effect::None)
        );
        // A wrong code counts while the card has an active token, with no SMS code live.
        assert_eq!(
            run(&active, &totp, "12345678"),
            (Verdict::Rejected(Reason::Invalid), Effect::CountFailure)
        );
        // A locked card is answered before anything is compared.
        assert_eq!(
            run(&card(CardStatus::Locked), &totp, "07081804"),
            (Verdict::Rejected(Reason::Locked), Effect::None)
        );
        // A sealed secret moved to another row does not open: no match.
        let moved = TokenRecord {
            uid: "v".into(),
            ..totp.clone()
        };
        assert_eq!(
            run(&active, &moved, "07081804").0,
            Verdict::Rejected(Reason::Invalid)
        );
        // With tokens not accepted, a token's right code is just a wrong code.
        let mut off = check(&key, "07081804", None);
        off.tokens = false;
        assert_eq!(
            decide_tokens(
                &active,
                None,
                std::slice::from_ref(&totp),
                &off,
                &presented(None),
                NOW
            ),
            (Verdict::Rejected(Reason::Invalid), Effect::None)
        );

        // OCRA: RFC 6287's QN08 vector for challenge 00000000, only with that challenge.
        let ocra = record(&key, TokenKind::Ocra, None);
        let with = |challenge: Option<&str>, txn: Option<&str>| {
            decide_tokens(
                &active,
                None,
                std::slice::from_ref(&ocra),
                &check(&key, "237653", challenge),
                &presented(txn),
                NOW,
            )
        };
        assert_eq!(
            with(Some("00000000"), Some("T")),
            (
                Verdict::Approved,
                Effect::UseToken(TokenUse {
                    token_id: 9,
                    step: None,
                    drift: 0,
                    txn_hash: Some("T".into())
                })
            )
        );
        assert_eq!(
            with(Some("11111111"), Some("U")).0,
            Verdict::Rejected(Reason::Invalid)
        );
        assert_eq!(with(None, None).0, Verdict::Rejected(Reason::Invalid));
        let answered = TokenRecord {
            last_txn_hash: Some("T".into()),
            ..ocra.clone()
        };
        assert_eq!(
            decide_tokens(
                &active,
                None,
                std::slice::from_ref(&answered),
                &check(&key, "237653", Some("00000000")),
                &presented(Some("T")),
                NOW
            ),
            (Verdict::Rejected(Reason::Used), Effect::None)
        );
        // A spent challenge: the right response is `used` or `expired`, not counted;
        // a wrong one over it is still a wrong code.
        for (state, reason) in [
            (ChallengeState::Used, Reason::Used),
            (ChallengeState::Expired, Reason::Expired),
        ] {
            let spent = |code: &str| {
                let mut c = check(&key, code, Some("00000000"));
                c.challenge.as_mut().expect("a challenge").state = state;
                decide_tokens(
                    &active,
                    None,
                    std::slice::from_ref(&ocra),
                    &c,
                    &presented(Some("T")),
                    NOW,
                )
            };
            assert_eq!(spent("237653"), (Verdict::Rejected(reason), Effect::None));
            assert_eq!(
                spent("237654"),
                (Verdict::Rejected(Reason::Invalid), Effect::CountFailure)
            );
        }
    }

    #[test]
    fn activation_codes_are_normalised_and_bounded() {
        assert_eq!(
            normalise_code("123 456-789012").as_deref(),
            Some("123456789012")
        );
        assert_eq!(normalise_code("۱۲۳۴۵۶").as_deref(), Some("123456"));
        assert_eq!(normalise_code("12a4"), None);
        assert_eq!(normalise_code(&"1".repeat(41)), None);
    }
}
