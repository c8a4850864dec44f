//! What an operator's SMSC delivers: a receipt for one of our messages (recorded
//! against the code whose message it names, or held a while when it beats its
//! submit_sm_resp), or a customer's message or USSD step, which goes through the
//! inbound pipeline exactly as the listener's messages do.

use std::sync::atomic::Ordering;

use rusmpp::CommandId;

use super::session::Session;
use crate::smpp::pdu;
use otpgw_parsers::receipt::ReceiptStat;
use otpgw_rules::vocab::Delivery;

impl Session {
    /// A deliver_sm: a receipt for one of our messages, or a customer's message.
    pub(super) async fn on_deliver(
        &mut self,
        seq: u32,
        message: pdu::Message,
    ) -> Result<(), String> {
        if message.receipt {
            self.receipt(message).await;
            return self
                .write(pdu::message_resp(CommandId::DeliverSm, seq, ""))
                .await;
        }
        self.conn.received.fetch_add(1, Ordering::Relaxed);
        let (origin, handling) = (&self.origin, &self.handling);
        match (self.shared.pipeline).take(origin, CommandId::DeliverSm, seq, message, handling) {
            Some(response) => self.write(response).await,
            None => Ok(()),
        }
    }

    /// Records a receipt off the session loop, once one of the connection's
    /// receipt places is free: until then the loop waits here, neither answering
    /// nor reading, so a flood is held by the SMSC's window and TCP. One that names
    /// no message of this connection (yet) may be ahead of its submit_sm_resp: it
    /// is held a while, and looked up once more in case the response was recorded
    /// between the look-up and the hold (applying it twice changes nothing).
    async fn receipt(&self, message: pdu::Message) {
        self.conn.receipts.fetch_add(1, Ordering::Relaxed);
        let Some(info) = message
            .receipt_info
            .filter(|info| !info.message_id.trim().is_empty())
        else {
            // It names no message, so nothing could ever match it: counted, not held.
            self.conn.unmatched(1);
            return;
        };
        let delivery = match info.stat {
            Some(ReceiptStat::Delivered) => Delivery::Delivered,
            Some(ReceiptStat::Expired) => Delivery::Expired,
            Some(ReceiptStat::Undelivered) => Delivery::Undelivered,
            Some(ReceiptStat::Pending) | None => return,
        };
        let places = self.conn.receipt_places.clone();
        let place = match places.clone().try_acquire_owned() {
            Ok(place) => place,
            Err(_) => {
                metrics::counter!("otpgw_receipts_held_back_total", "connection" => self.conn.settings.name.clone())
                    .increment(1);
                let Ok(place) = places.acquire_owned().await else {
                    return;
                };
                place
            }
        };
        let recorder = self.shared.core().delivery.clone();
        let conn = self.conn.clone();
        let form = conn.settings.receipt_id.form();
        self.handling
            .tasks
            .spawn(tracing::Instrument::in_current_span(async move {
                let _place = place;
                match recorder
                    .receipt(conn.name(), &info.message_id, delivery, form)
                    .await
                {
                    Ok(Some(code_id)) => conn.receipt_came(code_id),
                    Ok(None) => {
                        conn.hold_receipt(info.message_id.clone(), delivery);
                        if let Ok(Some(code_id)) = recorder
                            .receipt(conn.name(), &info.message_id, delivery, form)
                            .await
                        {
                            conn.take_held(&info.message_id);
                            conn.receipt_came(code_id);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not record a receipt"),
                }
            }));
    }
}
