//! The end of a card's life: closure (the customer left the bank, the card was
//! cancelled) and reissue (a new card number for the same customer after expiry or
//! loss), and the help desk's list of a phone number's cards. Both changes need a
//! reason and are audited with who; a closed card's digits get "not registered" and
//! its number may be enrolled again as a new card.

use otpgw_rules::codes::Pan;
use otpgw_rules::records::Card;
use otpgw_rules::vocab::CardStatus;

use super::backoffice::{clean_reason, BackOffice};
use super::ports::{Change, NewNumber};
use super::CoreError;

/// The most cards one page of a phone number's list holds.
pub const MAX_PAGE: i64 = 100;

/// One page of a phone number's cards; `next` is the cursor for the next page.
#[derive(Debug, Clone)]
pub struct CardPage {
    pub cards: Vec<Card>,
    pub next: Option<i64>,
}

impl BackOffice {
    /// Closes card `id` with a mandatory reason: its live code voided, its tokens
    /// revoked, its history kept; audited `closed`.
    pub async fn close(
        &self,
        id: i64,
        reason: &str,
        actor: &str,
        source: Option<&str>,
    ) -> Result<Card, CoreError> {
        let reason = clean_reason(reason)?;
        let now = self.0.clock.now_ms();
        let change = Change {
            id,
            to: (),
            actor,
            reason: Some(&reason),
            source,
            now,
        };
        let card = self.0.cards.close(&change).await?;
        tracing::info!(card_id = id, actor, "card closed");
        Ok(card)
    }

    /// Gives card `id` the card number `pan`: the card keeps its id, phone, ePIN,
    /// tokens and policy state; the old number becomes a closed card.
    pub async fn reissue(
        &self,
        id: i64,
        pan: &Pan,
        reason: &str,
        actor: &str,
    ) -> Result<Card, CoreError> {
        let reason = clean_reason(reason)?;
        let keys = &self.0.keys;
        let now = self.0.clock.now_ms();
        let (pan_hash, last6_hash) = (keys.pan_hash(pan), keys.last6_hash(pan.last6()));
        let change = Change {
            id,
            to: NewNumber {
                pan_hash: &pan_hash,
                last4: pan.last4(),
                last6_hash: &last6_hash,
            },
            actor,
            reason: Some(&reason),
            source: None,
            now,
        };
        let card = self.0.cards.reissue(&change).await?.as_of(now);
        tracing::info!(card_id = id, actor, "card reissued");
        Ok(card)
    }

    /// Every card (closed ones too) by id after `after`, `limit` at most: the
    /// export's walk.
    pub async fn cards_after(&self, after: i64, limit: i64) -> Result<Vec<Card>, CoreError> {
        Ok(self.0.cards.cards_after(after, limit).await?)
    }

    /// A phone number's cards (closed ones too), `limit` at most, after the cursor;
    /// only those in `status` (as of now: a timed lock that ended is active) when
    /// one is given.
    pub async fn cards_page(
        &self,
        raw: &str,
        status: Option<CardStatus>,
        after: Option<i64>,
        limit: i64,
    ) -> Result<CardPage, CoreError> {
        let msisdn = super::normalize_msisdn(raw, &self.0.country_code)?;
        let limit = limit.clamp(1, MAX_PAGE);
        let now = self.0.clock.now_ms();
        // The status is read as of now, which SQL does not know (a timed lock ends
        // by itself), so the filter is here: a phone number has few cards, and the
        // walk reads pages of them until one more than asked matched (which says
        // whether another page follows) or none are left.
        let mut cards = Vec::new();
        let mut cursor = after.unwrap_or(0);
        loop {
            let page = self.0.cards.cards_page(&msisdn, cursor, limit + 1).await?;
            let exhausted = (page.len() as i64) <= limit;
            let Some(last) = page.last() else { break };
            cursor = last.id;
            cards.extend(
                page.into_iter()
                    .map(|c| c.as_of(now))
                    .filter(|c| status.is_none_or(|s| c.status == s)),
            );
            if exhausted || cards.len() as i64 > limit {
                break;
            }
        }
        let next = if cards.len() as i64 > limit {
            cards.truncate(limit as usize);
            cards.last().map(|c| c.id)
        } else {
            None
        };
        Ok(CardPage { cards, next })
    }
}
