//! The bank's back office and help desk: cards looked up, re-activated and
//! suspended, their audit trail, what the console shows about one card, and the
//! health numbers. Every rule about who may do what to a card lives here, not in
//! the transport (the JSON API and the console both call these).

use std::sync::Arc;

use otpgw_rules::codes::{Keys, Pan};
use otpgw_rules::records::{Card, CodeRecord, Event, Token, VerificationEntry, Who};
use otpgw_rules::vocab::{CardStatus, Role};

use super::ports::{
    Activity, AuditFilter, AuditStore, CardStore, Change, CodeStore, StatusChange, TokenStore,
};
use super::{Clock, CoreError};

/// How much history the card view shows.
const RECENT: i64 = 20;
/// Reasons are for people; a longer text is cut.
const MAX_REASON_CHARS: usize = 500;

/// A reason as the audit keeps it: trimmed, cut to `MAX_REASON_CHARS`, anything
/// shaped like a card number or a code masked (clerks paste things); an empty one
/// is refused.
pub(super) fn clean_reason(reason: &str) -> Result<String, CoreError> {
    let reason: String = crate::telemetry::redact(reason.trim())
        .chars()
        .take(MAX_REASON_CHARS)
        .collect();
    if reason.is_empty() {
        return Err(CoreError::ReasonRequired);
    }
    Ok(reason)
}
/// How many events of a card the JSON API lists.
const MAX_EVENTS: i64 = 1000;

/// What the console shows about one card.
#[derive(Debug, Clone)]
pub struct CardView {
    pub card: Card,
    pub codes: Vec<CodeRecord>,
    pub verifications: Vec<VerificationEntry>,
    /// The latest `locked` event: when, by whose verifies, after how many failures.
    pub last_lock: Option<Event>,
    /// The latest `suspended` event.
    pub last_suspension: Option<Event>,
    /// The latest `sim_swapped` event (only refusals are audited).
    pub last_sim_swap: Option<Event>,
    /// The card's tokens (kind, serial, state, last use; never a secret).
    pub tokens: Vec<Token>,
}

/// The console's health strip, from the database (all nodes), plus what the
/// transport adds about its own SMPP sessions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Health {
    pub last_hour: Activity,
    /// Cards locked since 00:00 UTC today.
    pub locks_today: i64,
}

#[derive(Clone)]
pub struct BackOffice(pub(super) Arc<Inner>);

pub(super) struct Inner {
    pub cards: Arc<dyn CardStore>,
    pub codes: Arc<dyn CodeStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub audit: Arc<dyn AuditStore>,
    pub keys: Keys,
    pub country_code: String,
    /// The way out for the notices of a phone change.
    pub handout: Arc<super::handout::HandOut>,
    pub clock: Arc<dyn Clock>,
}

impl BackOffice {
    fn now(&self) -> i64 {
        self.0.clock.now_ms()
    }

    /// A card as it stands now (a timed lock whose time is up has ended).
    pub async fn card(&self, id: i64) -> Result<Option<Card>, CoreError> {
        let now = self.now();
        Ok(self.0.cards.card(id).await?.map(|c| c.as_of(now)))
    }

    pub async fn lookup(&self, pan: &Pan) -> Result<Option<Card>, CoreError> {
        let now = self.now();
        let pan_hash = self.0.keys.pan_hash(pan);
        Ok(self
            .0
            .cards
            .card_by_pan_hash(&pan_hash)
            .await?
            .map(|c| c.as_of(now)))
    }

    pub async fn cards_by_msisdn(&self, raw: &str) -> Result<Vec<Card>, CoreError> {
        let msisdn = super::normalize_msisdn(raw, &self.0.country_code)?;
        let now = self.now();
        let cards = self.0.cards.cards_by_msisdn(&msisdn).await?;
        Ok(cards.into_iter().map(|c| c.as_of(now)).collect())
    }

    /// Re-activates or suspends a card for the JSON API and the CLI (admin, any
    /// status); the console goes through `console_change`, which adds role limits
    /// and a mandatory reason.
    pub async fn change_status(
        &self,
        id: i64,
        change: StatusChange,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<Card, CoreError> {
        // Optional here: an empty reason is none, a given one is cleaned as always.
        let reason = reason
            .filter(|r| !r.trim().is_empty())
            .map(clean_reason)
            .transpose()?;
        let change = Change {
            id,
            to: change,
            actor,
            reason: reason.as_deref(),
            source: None,
            now: self.now(),
        };
        self.apply(change, &[], "card status changed").await
    }

    /// Applies a status change and logs it (`what` says where it came from).
    async fn apply(
        &self,
        change: Change<'_, StatusChange>,
        allowed_from: &[CardStatus],
        what: &'static str,
    ) -> Result<Card, CoreError> {
        let card = self.0.cards.change_status(&change, allowed_from).await?;
        let (card_id, actor, status) = (change.id, change.actor, card.status.as_str());
        tracing::info!(card_id, actor, status, "{what}");
        Ok(card)
    }

    /// A status change from the console. `helpdesk` may only re-activate a card
    /// locked by failures; suspending, and lifting a suspension, are `admin` only.
    /// The reason is mandatory and goes into the audit event (with anything shaped
    /// like a card number or a code masked: clerks paste things).
    pub async fn console_change(
        &self,
        who: &Who,
        id: i64,
        change: StatusChange,
        reason: &str,
        source: Option<&str>,
    ) -> Result<Card, CoreError> {
        let reason = clean_reason(reason)?;
        let allowed_from: &[CardStatus] = match (who.role(), change) {
            (Role::Admin, _) => &[],
            (Role::Helpdesk, StatusChange::Reactivate) => &[CardStatus::Locked],
            _ => return Err(CoreError::Forbidden),
        };
        let actor = who.actor();
        let change = Change {
            id,
            to: change,
            actor: &actor,
            reason: Some(&reason),
            source,
            now: self.now(),
        };
        self.apply(change, allowed_from, "card status changed from the console")
            .await
    }

    /// A card's audit trail, oldest first.
    pub async fn events(&self, id: i64) -> Result<Vec<Event>, CoreError> {
        let events = self.0.audit.events(id, MAX_EVENTS).await?;
        Ok(self.public_ids(events))
    }

    /// Events as the outside sees them: a code's row id in a detail becomes the
    /// public id `POST /v1/codes` answered and `GET /v1/codes/{id}` takes.
    fn public_ids(&self, mut events: Vec<Event>) -> Vec<Event> {
        let cipher = self.0.keys.id_cipher(super::issue::CODE_IDS);
        for e in &mut events {
            if let Some(id) = e.detail.get_mut("code_id") {
                if let Some(row) = id.as_i64().filter(|r| *r > 0) {
                    *id = serde_json::Value::from(cipher.hide(row));
                }
            }
        }
        events
    }

    pub async fn card_view(&self, id: i64) -> Result<Option<CardView>, CoreError> {
        let i = &self.0;
        let Some(card) = i.cards.card(id).await? else {
            return Ok(None);
        };
        let latest = |kind: &str| AuditFilter {
            card_id: Some(id),
            kind: Some(kind.to_owned()),
            ..AuditFilter::default()
        };
        let cipher = i.keys.id_cipher(super::issue::CODE_IDS);
        let codes = i.codes.recent_codes(id, RECENT).await?;
        Ok(Some(CardView {
            codes: codes
                .into_iter()
                .map(|c| CodeRecord {
                    id: cipher.hide(c.id),
                    ..c
                })
                .collect(),
            // From the `verified` events, which say whether each counted a failure.
            verifications: i
                .audit
                .search_events(&latest("verified"), RECENT)
                .await?
                .iter()
                .filter_map(VerificationEntry::from_event)
                .collect(),
            last_lock: i.audit.search_events(&latest("locked"), 1).await?.pop(),
            last_suspension: i.audit.search_events(&latest("suspended"), 1).await?.pop(),
            last_sim_swap: i
                .audit
                .search_events(&latest("sim_swapped"), 1)
                .await?
                .pop(),
            tokens: i.tokens.tokens_of_card(id).await?,
            card: card.as_of(self.now()),
        }))
    }

    /// Records an event about the gateway itself (no card), e.g. a reload.
    pub async fn note(
        &self,
        kind: &str,
        actor: &str,
        detail: serde_json::Value,
    ) -> Result<(), CoreError> {
        let event = super::ports::NewEvent {
            card_id: None,
            kind,
            actor,
            detail,
            at: self.now(),
        };
        Ok(self.0.audit.audit(event).await?)
    }

    pub async fn search_audit(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<Event>, CoreError> {
        let events = self.0.audit.search_events(filter, limit).await?;
        Ok(self.public_ids(events))
    }

    pub async fn health(&self) -> Result<Health, CoreError> {
        let now = self.now();
        let day_ms = 24 * 3600 * 1000;
        let audit = &self.0.audit;
        Ok(Health {
            last_hour: audit.activity_since(now - 3600 * 1000).await?,
            locks_today: audit
                .count_events_since("locked", now - now.rem_euclid(day_ms))
                .await?,
        })
    }
}
