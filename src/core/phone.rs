//! A card's phone number changes (the help desk's daily work: a new SIM, a new
//! operator, a lost phone). The live code is voided, the old number is told (a
//! customer whose number was changed by a fraudster learns of it there) and the new
//! one confirmed; `[policy] after_phone_change` holds back pushed codes to the new
//! number for a while, the window in which a fraudulent change is used.

use otpgw_rules::records::Card;
use otpgw_rules::texts::ReplyKind;

use super::backoffice::{clean_reason, BackOffice};
use super::handout::ActivationState;
use super::ports::Change;
use super::CoreError;

/// How long the notices of a phone change may wait for their route.
const NOTICE_DELIVER_WITHIN_MS: i64 = 3_600_000;

/// A phone change as the caller sees it: the card after, and what became of the
/// two notices (`sent`, `no_route` without client mode, `queue_full`).
#[derive(Debug, Clone)]
pub struct PhoneChanged {
    pub card: Card,
    pub old_notice: ActivationState,
    pub new_notice: ActivationState,
}

impl BackOffice {
    /// Moves card `id` to the phone number `raw` (normalised as enrolment does),
    /// with a mandatory reason; audited with both numbers (`phone_changed`).
    pub async fn change_phone(
        &self,
        id: i64,
        raw: &str,
        reason: &str,
        actor: &str,
        source: Option<&str>,
    ) -> Result<PhoneChanged, CoreError> {
        let inner = &self.0;
        let msisdn = super::normalize_msisdn(raw, &inner.country_code)?;
        let reason = clean_reason(reason)?;
        let now = inner.clock.now_ms();
        let change = Change {
            id,
            to: msisdn.as_str(),
            actor,
            reason: Some(&reason),
            source,
            now,
        };
        let (card, old) = inner.cards.change_phone(&change).await?;
        let card = card.as_of(now);
        let deliver_by = now.saturating_add(NOTICE_DELIVER_WITHIN_MS);
        let handout = &inner.handout;
        let old_notice = if old == card.msisdn {
            ActivationState::Sent
        } else {
            handout.notice(&old, ReplyKind::PhoneChangedOld, &card, deliver_by)
        };
        let new_notice =
            handout.notice(&card.msisdn, ReplyKind::PhoneChangedNew, &card, deliver_by);
        tracing::info!(
            card_id = id,
            actor,
            old_notice = old_notice.as_str(),
            new_notice = new_notice.as_str(),
            "card phone number changed"
        );
        Ok(PhoneChanged {
            card,
            old_notice,
            new_notice,
        })
    }
}

impl super::Issue {
    /// Until when pushed codes to `card`'s phone are held back after its number
    /// changed (`[policy] after_phone_change`), if they are now: the console shows
    /// the same hold that `push` applies.
    pub fn pushed_held_until(&self, card: &Card) -> Option<i64> {
        let inner = &self.0;
        let hold = inner.policy.get().after_phone_change;
        hold.holds_until(card.phone_changed_at, inner.now())
    }
}
