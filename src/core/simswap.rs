//! The SIM-swap check before a code leaves (`[sim_swap]`): a duplicate SIM got by
//! social engineering, or a number moved to another operator, receives every SMS
//! code sent to the number, so a code is not sent to a SIM the operator says
//! changed lately. Asked only where a code would really be issued (a known, active
//! card within its limits), so strangers cannot make otpgw query the operator.
//! What the operator's answer costs (time-out, cache) is the adapter's business;
//! what an unanswered check means is the bank's (`on_error`).

use std::sync::Arc;

use otpgw_rules::records::Card;

use super::ports::{AuditStore, NewEvent, SimSwapAnswer, SimSwapCheck, SimSwapError};
use super::{Clock, CoreError};
use crate::config::{OnSimSwapError, SimSwapSettings};

/// Whether a code may go to a card's phone.
#[derive(Debug)]
pub(super) enum Clearance {
    Clear,
    /// Audited (`sim_swapped`): no code, the customer goes to the branch.
    Swapped,
    /// No answer and the bank refuses codes then.
    Unchecked(SimSwapError),
}

pub(super) struct SimSwapGuard {
    check: Arc<dyn SimSwapCheck>,
    on_error: OnSimSwapError,
    max_age_hours: u32,
    audit: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
}

impl SimSwapGuard {
    pub(super) fn new(
        check: Arc<dyn SimSwapCheck>,
        settings: &SimSwapSettings,
        audit: Arc<dyn AuditStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            check,
            on_error: settings.on_error,
            max_age_hours: settings.max_age_hours,
            audit,
            clock,
        }
    }

    /// Asks about `card`'s number before a code goes there by `channel` for
    /// `actor`. Fails only when the audit cannot be written.
    pub(super) async fn clear(
        &self,
        card: &Card,
        channel: &str,
        actor: &str,
    ) -> Result<Clearance, CoreError> {
        let answer = self.check.check(&card.msisdn).await;
        let result = match &answer {
            Ok(SimSwapAnswer::NotSwapped) => "not_swapped",
            Ok(SimSwapAnswer::Swapped) => "swapped",
            Err(_) => "error",
        };
        metrics::counter!("otpgw_sim_swap_checks_total", "result" => result).increment(1);
        match answer {
            Ok(SimSwapAnswer::NotSwapped) => Ok(Clearance::Clear),
            Ok(SimSwapAnswer::Swapped) => {
                tracing::warn!(
                    card_id = card.id,
                    channel,
                    "the operator says the SIM changed recently: no code sent"
                );
                // The number is in the audit (as a phone change's are): the trail must
                // say which SIM was refused even after the card's number changes.
                let detail = serde_json::json!({
                    "channel": channel,
                    "msisdn": card.msisdn,
                    "max_age_hours": self.max_age_hours,
                });
                self.audit
                    .audit(NewEvent {
                        card_id: Some(card.id),
                        kind: "sim_swapped",
                        actor,
                        detail,
                        at: self.clock.now_ms(),
                    })
                    .await?;
                Ok(Clearance::Swapped)
            }
            Err(e) => match self.on_error {
                OnSimSwapError::Allow => {
                    tracing::warn!(card_id = card.id, channel, error = %e, "SIM-swap check failed: code sent all the same (on_error = allow)");
                    Ok(Clearance::Clear)
                }
                OnSimSwapError::Refuse => {
                    tracing::warn!(card_id = card.id, channel, error = %e, "SIM-swap check failed: no code sent (on_error = refuse)");
                    Ok(Clearance::Unchecked(e))
                }
            },
        }
    }
}
