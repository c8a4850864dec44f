//! Enrolling cards for the bank's back office: a card and its phone, under
//! `[policy] require_activation` an activation code sent to that phone and
//! confirmed from the ATM, app or branch, and the card's ePIN.

use std::sync::Arc;

use otpgw_rules::codes::{Code, Keys, Pan};
use otpgw_rules::payment::Epin;
use otpgw_rules::records::Card;
use otpgw_rules::vocab::Language;

use super::epin::Epins;
use super::handout::{Activating, ActivationNotice, ActivationSms, HandOut};
use super::live::Live;
use super::ports::{Act, Activation, CardStore, CodeAttempt, NewActivation, NewCard};
use super::{Clock, CoreError, Missing};
use crate::config::PolicySettings;

/// An enrolled card, and under `[policy] require_activation` what became of its
/// activation code.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub card: Card,
    pub activation: Option<ActivationNotice>,
}

#[derive(Clone)]
pub struct Enroll(pub(super) Arc<Inner>);

pub(super) struct Inner {
    pub cards: Arc<dyn CardStore>,
    pub keys: Keys,
    /// `[policy]`, as the last reload left it.
    pub policy: Live<PolicySettings>,
    pub country_code: String,
    pub epins: Arc<Epins>,
    pub handout: Arc<HandOut>,
    pub clock: Arc<dyn Clock>,
}

impl Enroll {
    fn now(&self) -> i64 {
        self.0.clock.now_ms()
    }

    /// The card an activation is about.
    async fn pending(&self, id: i64) -> Result<Card, CoreError> {
        let card = self.0.cards.card(id).await?;
        card.ok_or(CoreError::not_found(Missing::Card))
    }

    fn activation_ttl_ms(&self) -> i64 {
        i64::try_from(self.0.policy.get().activation_ttl_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX)
    }

    /// Enrolls a card. Under `[policy] require_activation` it starts `pending`, and
    /// an activation code (valid `activation_ttl_secs`) is committed with it, then
    /// sent to its phone through client mode's operator connections; the answer
    /// says whether that worked, so the bank can send again (`resend_activation`).
    pub async fn card(
        &self,
        pan: &Pan,
        msisdn_raw: &str,
        language: Option<Language>,
        actor: &str,
    ) -> Result<Enrolled, CoreError> {
        let inner = &self.0;
        let keys = &inner.keys;
        let msisdn = super::normalize_msisdn(msisdn_raw, &inner.country_code)?;
        let pan_hash = keys.pan_hash(pan);
        let now = self.now();
        let activation = inner.policy.get().require_activation.then(|| {
            let code = Code::generate();
            let hash = keys.activation_hash(&pan_hash, &code);
            (code, hash, now.saturating_add(self.activation_ttl_ms()))
        });
        let card = inner
            .cards
            .enroll(
                NewCard {
                    pan_hash: &pan_hash,
                    last4: pan.last4(),
                    last6_hash: &keys.last6_hash(pan.last6()),
                    msisdn: &msisdn,
                    language,
                    activation: activation
                        .as_ref()
                        .map(|(_, hash, expires_at)| NewActivation {
                            code_hash: hash,
                            expires_at: *expires_at,
                        }),
                },
                actor,
                now,
            )
            .await?;
        tracing::info!(
            card_id = card.id,
            actor,
            status = card.status.as_str(),
            "card enrolled"
        );
        let activation = match activation {
            Some((code, _, expires_at)) => Some(
                self.send_activation(&card, &code, expires_at, actor)
                    .await?,
            ),
            None => None,
        };
        Ok(Enrolled { card, activation })
    }

    /// A new activation code for a pending card (the first could not be sent, or
    /// expired, or was voided by wrong attempts), sent as at enrollment.
    pub async fn resend_activation(&self, id: i64, actor: &str) -> Result<Enrolled, CoreError> {
        let inner = &self.0;
        let card = self.pending(id).await?;
        let code = Code::generate();
        let now = self.now();
        let expires_at = now.saturating_add(self.activation_ttl_ms());
        let card = inner
            .cards
            .renew_activation(
                id,
                NewActivation {
                    code_hash: &inner.keys.activation_hash(&card.pan_hash, &code),
                    expires_at,
                },
                Act { by: actor, at: now },
            )
            .await?;
        let activation = Some(
            self.send_activation(&card, &code, expires_at, actor)
                .await?,
        );
        Ok(Enrolled { card, activation })
    }

    /// Confirms a pending card's activation code (the customer read it from the
    /// SMS to the ATM, app or branch). Wrong codes are counted and audited; at
    /// `[policy] activation_max_failures` the activation is voided.
    pub async fn activate(
        &self,
        id: i64,
        code: &str,
        actor: &str,
    ) -> Result<Activation, CoreError> {
        let inner = &self.0;
        let card = self.pending(id).await?;
        let candidate = Code::parse(code).map(|c| inner.keys.activation_hash(&card.pan_hash, &c));
        let outcome = inner
            .cards
            .activate(CodeAttempt {
                id,
                candidate,
                max_failures: inner.policy.get().activation_max_failures,
                actor,
                now: self.now(),
            })
            .await?;
        match &outcome {
            Activation::Activated(_) => tracing::info!(card_id = id, actor, "card activated"),
            other => tracing::info!(card_id = id, actor, outcome = ?other, "activation refused"),
        }
        Ok(outcome)
    }

    /// Hands an activation SMS to client mode's route for the card's number. The
    /// code is already committed; the message carries no code record.
    async fn send_activation(
        &self,
        card: &Card,
        code: &Code,
        expires_at: i64,
        actor: &str,
    ) -> Result<ActivationNotice, CoreError> {
        let sms = ActivationSms {
            of: Activating::Card,
            code: code.expose(),
            ttl_secs: self.0.policy.get().activation_ttl_secs,
        };
        self.0
            .handout
            .activation(card, sms, expires_at, actor)
            .await
    }

    /// Sets a card's ePIN (refusing weak ones) or clears it (`None`). The slow hash
    /// runs off the async threads; the ePIN goes nowhere but into it.
    pub async fn set_epin(
        &self,
        id: i64,
        epin: Option<&str>,
        actor: &str,
    ) -> Result<Card, CoreError> {
        let hash = match epin {
            Some(raw) => Some(self.0.epins.hash(Epin::new_strong(raw)?).await?),
            None => None,
        };
        let set = hash.is_some();
        let card = self.0.cards.set_epin(id, hash, actor, self.now()).await?;
        tracing::info!(card_id = id, actor, set, "card ePIN changed");
        Ok(card.as_of(self.now()))
    }
}
