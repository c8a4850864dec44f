//! Verification: the payment switch asks whether a code (an SMS code or a token's)
//! is right for a card. The core reduces what was presented to hashes and an
//! amount, checks the ePIN off the async threads, and hands the rules' decision
//! (`otpgw_rules::tokens::decide::decide_tokens`) to the store, which runs it
//! under the card's lock and applies its effect in the same transaction.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use otpgw_rules::codes::{self, Code, Keys, Pan};
use otpgw_rules::payment::{Epin, Transaction};
use otpgw_rules::records::ApiKey;
use otpgw_rules::tokens::decide::{
    decide_tokens, normalise_code, Challenge, ChallengeState, TokenCheck,
};
use otpgw_rules::verify::{Effect, Presented};
use otpgw_rules::vocab::{CardStatus, Reason, Verdict};

use super::admission::{Admission, Refused};
use super::epin::Epins;
use super::live::Live;
use super::ports::{AuditStore, CardStore, NewEvent, VerifyAttempt, VerifyStore};
use super::{Clock, CoreError};
use crate::config::{Factor, PolicySettings, TokenSettings};

/// What a verify presents besides the code: the payment and the card's ePIN.
#[derive(Default, Clone, Copy)]
pub struct Factors<'a> {
    pub transaction: Option<&'a Transaction>,
    /// As typed; compared only when the card has an ePIN.
    pub epin: Option<&'a str>,
    /// The OCRA challenge `POST /v1/challenge` issued for `transaction`.
    pub challenge_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOutcome {
    pub verdict: Verdict,
    pub locked_now: bool,
    pub replayed: bool,
    /// Failures left before the card locks, on every rejection of an enrolled card
    /// (0 while locked or suspended).
    pub attempts_left: Option<i64>,
    /// The card is locked: until when (epoch ms), or `None` until re-activated.
    pub lock: Option<Option<i64>>,
}

#[derive(Clone)]
pub struct Verify(pub(super) Arc<Inner>);

pub(super) struct Inner {
    pub verifications: Arc<dyn VerifyStore>,
    pub cards: Arc<dyn CardStore>,
    pub audit: Arc<dyn AuditStore>,
    /// ePIN hashes, a few at a time (shared with enrolment).
    pub epins: Arc<Epins>,
    pub admission: Admission,
    pub keys: Keys,
    /// `[policy]`, as the last reload left it.
    pub policy: Live<PolicySettings>,
    pub tokens: TokenSettings,
    /// `[service] max_failures`, which `[policy] max_failures` overrides.
    pub service_max_failures: i64,
    pub clock: Arc<dyn Clock>,
}

impl Verify {
    /// Whether this API key may verify now (its rate, and the guessing guard):
    /// asked before anything is parsed or counted.
    pub fn admit(&self, key: ApiKey) -> Result<(), Refused> {
        self.0.admission.verify(key.id)
    }

    /// Verifies a code for a card, atomically in the database. A `request_id` seen
    /// before returns its first answer; reused for a different request, it is an error.
    ///
    /// With an ePIN on the card, the ePIN is checked here (argon2, off the async
    /// threads) against the hash read before the transaction; the rule then treats
    /// a wrong ePIN exactly as a wrong code, so the answer never tells them apart.
    pub async fn verify(
        &self,
        key: ApiKey,
        pan: &Pan,
        code: &str,
        request_id: &str,
        factors: Factors<'_>,
    ) -> Result<VerifyOutcome, CoreError> {
        let inner = &self.0;
        let keys = &inner.keys;
        let policy = inner.policy.get();
        if policy.require_transaction && factors.transaction.is_none() {
            return Err(CoreError::TransactionRequired);
        }
        let pan_hash = keys.pan_hash(pan);
        inner
            .admission
            .card_guess(key.id, &pan_hash)
            .map_err(|r| CoreError::Limited {
                retry_after: r.retry_after,
            })?;
        let fingerprint = keys.request_fingerprint(&pan_hash, code, factors.transaction);
        let epin_matched = match factors.epin {
            Some(raw) => self.check_epin(&pan_hash, raw).await?,
            None => None,
        };
        let presented = Presented {
            candidate: Code::parse(code).map(|c| keys.code_hash(&pan_hash, &c)),
            epin_matched,
            txn_hash: factors.transaction.map(|t| keys.transaction_hash(t)),
            // A cap is in whole units of one currency: another currency cannot be
            // shown to stay under it, so it counts as above.
            cap_amount: factors.transaction.map(|t| {
                if t.currency == policy.cap_currency {
                    i64::try_from(t.whole_units()).unwrap_or(i64::MAX)
                } else {
                    i64::MAX
                }
            }),
            require_transaction: policy.require_transaction,
        };
        let now = inner.clock.now_ms();
        let challenge = match factors.challenge_id {
            Some(id) => Some(
                self.presented_challenge(key, id, factors.transaction, now)
                    .await?,
            ),
            None => None,
        };
        let spends = challenge
            .as_ref()
            .filter(|p| {
                p.challenge
                    .as_ref()
                    .is_some_and(|c| c.state == ChallengeState::Live)
            })
            .map(|p| p.id);
        let check = self.token_check(code, challenge.and_then(|p| p.challenge));
        // Past the key's lock budget a wrong code counts nothing (and is refused
        // below); a right one still approves.
        let budget = inner.admission.lock_budget(key.id).err();
        let withheld = Arc::new(AtomicBool::new(false));
        let withholds = withheld.clone();
        let attempt = VerifyAttempt {
            api_key_id: key.id,
            request_id,
            fingerprint: &fingerprint,
            pan_hash: &pan_hash,
            now,
            max_failures: policy.max_failures.unwrap_or(inner.service_max_failures),
            lock_ms: policy.lock.timed_ms(),
            actor: &key.actor(),
        };
        let record = inner
            .verifications
            .verify(
                &attempt,
                Box::new(move |card, latest, tokens| {
                    let (verdict, effect) =
                        decide_tokens(card, latest, tokens, &check, &presented, now);
                    if budget.is_some() && effect == Effect::CountFailure {
                        withholds.store(true, Ordering::Relaxed);
                        return (verdict, Effect::None);
                    }
                    (verdict, effect)
                }),
            )
            .await?;
        if record.replayed && !codes::hashes_equal(&record.fingerprint, &fingerprint) {
            return Err(CoreError::RequestIdReused);
        }
        if let (Some(refused), true) = (budget, withheld.load(Ordering::Relaxed)) {
            metrics::counter!("otpgw_lock_budget_refusals_total").increment(1);
            crate::telemetry::sampled_by(
                crate::telemetry::Noisy::LockBudget,
                &key.id.to_string(),
                || {
                    tracing::warn!(
                    api_key_id = key.id,
                    "an API key past limits.locks_per_key sent a wrong code: not counted, refused"
                )
                },
            );
            return Err(CoreError::LockBudgetExceeded {
                retry_after: refused.retry_after,
            });
        }
        if let (Some(id), Verdict::Approved, false) = (spends, record.verdict, record.replayed) {
            inner.verifications.spend_challenge(id, now).await?;
        }
        if !record.replayed {
            if record.verdict == Verdict::Rejected(Reason::Invalid)
                && inner.admission.wrong_code(key.id, &pan_hash)
            {
                self.guard_tripped(key, now).await?;
            }
            let (result, reason) = match record.verdict {
                Verdict::Approved => ("approved", "none"),
                Verdict::Rejected(r) => ("rejected", r.as_str()),
            };
            metrics::counter!("otpgw_verifications_total", "result" => result, "reason" => reason)
                .increment(1);
            if record.locked_now {
                inner.admission.card_locked_by(key.id);
                metrics::counter!("otpgw_card_locks_total").increment(1);
                tracing::warn!(card_id = ?record.card_id, "card locked after consecutive failed verifications");
            }
        }
        Ok(VerifyOutcome {
            verdict: record.verdict,
            locked_now: record.locked_now,
            replayed: record.replayed,
            attempts_left: record.attempts_left,
            lock: record.lock,
        })
    }

    /// Checks a presented ePIN against the card's hash. Returns the hash it matched
    /// (the rule compares it with the card's under lock), or `None`: no such card,
    /// not active, no ePIN on it, malformed, or wrong.
    ///
    /// The card's status is read first and the hash runs only for an active card:
    /// a locked card answers `locked` whatever is presented and counts nothing, so
    /// hashing there would let response times tell a right ePIN from a wrong one
    /// with no failure ever counted.
    async fn check_epin(&self, pan_hash: &str, raw: &str) -> Result<Option<String>, CoreError> {
        let Ok(epin) = Epin::parse(raw) else {
            return Ok(None);
        };
        let card = self.0.cards.card_by_pan_hash(pan_hash).await?;
        let Some(stored) = card
            .map(|c| c.as_of(self.0.clock.now_ms()))
            .filter(|c| c.status == CardStatus::Active)
            .and_then(|c| c.epin_hash)
        else {
            return Ok(None);
        };
        let matched = self.0.epins.matches(stored.clone(), epin).await?;
        Ok(matched.then_some(stored))
    }

    /// What the verification rule needs to read token codes, owned by its closure.
    fn token_check(&self, code: &str, challenge: Option<Challenge>) -> TokenCheck {
        let inner = &self.0;
        let policy = inner.policy.get();
        let accept = &policy.accept;
        TokenCheck {
            key: inner.keys.seal_key(super::tokens::SEAL_PURPOSE),
            candidate: normalise_code(code).filter(|c| (6..=8).contains(&c.len())),
            challenge,
            window: inner.tokens.window_steps,
            sms: accept.contains(&Factor::Sms),
            tokens: accept.contains(&Factor::Token),
        }
    }

    async fn guard_tripped(&self, key: ApiKey, now: i64) -> Result<(), CoreError> {
        tracing::warn!(
            api_key_id = key.id,
            "too many wrong codes from one API key: its verifies are refused for a while"
        );
        metrics::counter!("otpgw_verify_guard_trips_total").increment(1);
        let cooldown = self.0.admission.guard_cooldown().as_secs();
        let detail = serde_json::json!({"api_key_id": key.id, "cooldown_secs": cooldown});
        Ok(self
            .0
            .audit
            .audit(NewEvent {
                card_id: None,
                kind: "verify_guard_tripped",
                actor: &key.actor(),
                detail,
                at: now,
            })
            .await?)
    }

    /// Forgets verification answers past their retention (the request_id memory
    /// would otherwise grow for ever).
    pub(super) async fn prune(&self, retention_days: u64) {
        let retention = i64::try_from(retention_days)
            .unwrap_or(i64::MAX / 86_400_000)
            .saturating_mul(86_400_000);
        let before = self.0.clock.now_ms().saturating_sub(retention);
        match self.0.verifications.prune_verifications(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "old verification records pruned"),
            Err(e) => tracing::warn!(error = %e, "could not prune verification records"),
        }
    }
}
