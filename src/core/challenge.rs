//! OCRA challenges for payments: `POST /v1/challenge` issues one, verify presents it.
//!
//! A challenge is random (never derived from the payment: an 8-digit digest of a
//! payment is shared by one payment in 10^8, found in seconds), recorded with the
//! keyed hash of the exact payment it was shown for and the API key that asked,
//! and it approves that payment once, until it expires. Its digits are unique
//! while its row exists, so no other payment can be handed digits a captured
//! response answers. SECURITY.md ("OCRA payment binding") has the arithmetic.

use otpgw_rules::payment::Transaction;
use otpgw_rules::records::ApiKey;
use otpgw_rules::tokens::challenge_digits;
use otpgw_rules::tokens::decide::{Challenge, ChallengeState};
use rand::Rng;

use super::ports::NewChallenge;
use super::verify::Verify;
use super::CoreError;

/// Draws before giving up: with 10^8 digits and a bank's daily volume kept for the
/// retention days, one draw in many thousands collides; eight in a row means the
/// space is exhausted (an attack), and the caller is told to retry later.
const DRAWS: usize = 8;

/// A challenge as the payment page gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedChallengeView {
    pub id: i64,
    pub challenge: String,
    pub expires_at: i64,
}

/// A challenge a verify named, as the rule will see it, and whether an approval
/// spends it.
pub(super) struct Presented {
    pub id: i64,
    pub challenge: Option<Challenge>,
}

impl Verify {
    /// Issues a challenge for `transaction` (role `verifier`): random digits,
    /// recorded with the payment, valid `[tokens] challenge_ttl_secs`.
    pub async fn issue_challenge(
        &self,
        key: ApiKey,
        transaction: &Transaction,
    ) -> Result<IssuedChallengeView, CoreError> {
        let inner = &self.0;
        let txn_hash = inner.keys.transaction_hash(transaction);
        let now = inner.clock.now_ms();
        let ttl_ms =
            i64::try_from(inner.tokens.challenge_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let expires_at = now.saturating_add(ttl_ms);
        for _ in 0..DRAWS {
            let value = challenge_digits(rand::rng().random());
            let new = NewChallenge {
                value: &value,
                txn_hash: &txn_hash,
                api_key_id: key.id,
                now,
                expires_at,
            };
            if let Some(id) = inner.verifications.issue_challenge(&new).await? {
                metrics::counter!("otpgw_challenges_issued_total").increment(1);
                return Ok(IssuedChallengeView {
                    id,
                    challenge: value,
                    expires_at,
                });
            }
        }
        tracing::warn!("no free OCRA challenge digits after {DRAWS} draws");
        Err(CoreError::Busy)
    }

    /// The challenge a verify named: unknown (or another key's) is an error; one
    /// bound to another payment, or presented without one, gives the rule nothing
    /// (an OCRA response then matches nothing); else its digits and state.
    pub(super) async fn presented_challenge(
        &self,
        key: ApiKey,
        id: i64,
        transaction: Option<&Transaction>,
        now: i64,
    ) -> Result<Presented, CoreError> {
        let inner = &self.0;
        let issued = inner
            .verifications
            .challenge(id)
            .await?
            .filter(|c| c.api_key_id == key.id)
            .ok_or(CoreError::UnknownChallenge)?;
        let bound = transaction.is_some_and(|t| {
            otpgw_rules::codes::hashes_equal(&inner.keys.transaction_hash(t), &issued.txn_hash)
        });
        if !bound {
            metrics::counter!("otpgw_challenge_mismatches_total").increment(1);
            return Ok(Presented {
                id,
                challenge: None,
            });
        }
        let state = if issued.used_at.is_some() {
            ChallengeState::Used
        } else if now >= issued.expires_at {
            ChallengeState::Expired
        } else {
            ChallengeState::Live
        };
        Ok(Presented {
            id,
            challenge: Some(Challenge {
                value: issued.value,
                state,
            }),
        })
    }
}
