//! Delivery: what became of the messages carrying codes. A transport reports that
//! its peer accepted or refused a reply, an operator's SMSC its message id and
//! later a receipt; with several nodes the outbox's replies are claimed, handed
//! back and swept here. None of it changes whether a code verifies: it is what the
//! back office sees, and what keeps a reply from being sent twice.

mod batch;

use std::sync::Arc;
use std::time::Duration;

use otpgw_parsers::receipt::IdForm;
use otpgw_rules::vocab::Delivery as State;

use super::outbox::{ClaimedReply, Outbox};
use super::ports::{CodeStore, MessageRef, OutboxStore};
use super::{Clock, CoreError};

#[derive(Clone)]
pub struct Delivery(pub(super) Arc<Inner>);

pub(super) struct Inner {
    pub codes: Arc<dyn CodeStore>,
    pub outbox_store: Arc<dyn OutboxStore>,
    pub outbox: Arc<Outbox>,
    pub outbox_poll: Duration,
    pub clock: Arc<dyn Clock>,
    pub batch: batch::Batch,
}

impl Inner {
    pub(super) fn new(
        codes: Arc<dyn CodeStore>,
        outbox_store: Arc<dyn OutboxStore>,
        outbox: Arc<Outbox>,
        outbox_poll: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            codes,
            outbox_store,
            outbox,
            outbox_poll,
            clock,
            batch: batch::Batch::default(),
        }
    }
}

/// An SMSC's message id, with the numbers it may stand for.
fn message_ref<'a>(
    connection: &'a str,
    message_id: &'a str,
    keys: &'a (Option<String>, Option<String>),
) -> MessageRef<'a> {
    MessageRef {
        connection,
        message_id,
        key_dec: keys.0.as_deref(),
        key_hex: keys.1.as_deref(),
    }
}

impl Delivery {
    fn now(&self) -> i64 {
        self.0.clock.now_ms()
    }

    /// Whether the transport's peer accepted the message carrying a code. Either
    /// answer is final: its outbox row, if any, goes with it. Written in a batch
    /// with others (see `batch`), or here if that queue is full.
    pub async fn answered(&self, code_id: i64, accepted: bool) -> Result<(), CoreError> {
        let state = if accepted {
            State::Submitted
        } else {
            State::Undelivered
        };
        let i = &self.0;
        if i.batch.record(&i.codes, &i.clock, code_id, state) {
            return Ok(());
        }
        Ok(i.codes.set_delivery(code_id, state, self.now()).await?)
    }

    /// Writes the delivery states still queued (at shutdown, before the store closes).
    pub async fn flush(&self) {
        self.0.batch.flush().await;
    }

    /// A message carrying a code that will never reach the customer: refused for
    /// good by the SMSC, or not sent before the code expired.
    pub async fn undelivered(&self, code_id: i64) -> Result<(), CoreError> {
        Ok(self
            .0
            .codes
            .set_delivery(code_id, State::Undelivered, self.now())
            .await?)
    }

    /// An operator's SMSC accepted the message carrying a code, under its id (of
    /// the connection's `form`).
    pub async fn submitted(
        &self,
        code_id: i64,
        connection: &str,
        message_id: &str,
        form: IdForm,
    ) -> Result<(), CoreError> {
        let keys = otpgw_parsers::receipt::submit_keys(message_id, form);
        let message = message_ref(connection, message_id, &keys);
        Ok(self
            .0
            .codes
            .set_submitted(code_id, &message, self.now())
            .await?)
    }

    /// A delivery receipt from an operator connection. Returns the code it was
    /// about, or `None` when no message of that connection has this id (yet).
    pub async fn receipt(
        &self,
        connection: &str,
        message_id: &str,
        delivery: State,
        form: IdForm,
    ) -> Result<Option<i64>, CoreError> {
        let keys = otpgw_parsers::receipt::receipt_keys(message_id, form);
        let message = message_ref(connection, message_id, &keys);
        let code_id = self
            .0
            .codes
            .apply_receipt(&message, delivery, self.now())
            .await?;
        if code_id.is_some() {
            metrics::counter!("otpgw_receipts_total", "delivery" => delivery.as_str()).increment(1);
        }
        Ok(code_id)
    }

    /// Whether replies are shared through the outbox (several nodes), and how often
    /// a transport should look for replies it can send.
    pub fn outbox_poll(&self) -> Option<Duration> {
        self.0.outbox.enabled().then_some(self.0.outbox_poll)
    }

    /// Claims replies waiting for `target` that this node may now send.
    pub async fn claim(&self, target: &str) -> Result<Vec<ClaimedReply>, CoreError> {
        let i = &self.0;
        Ok(i.outbox.claim(&*i.outbox_store, target, self.now()).await?)
    }

    /// Hands this node's unsent claimed replies back at shutdown.
    pub async fn release(&self) {
        let i = &self.0;
        if !i.outbox.enabled() {
            return;
        }
        match i.outbox_store.release_replies(i.outbox.node()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(replies = n, "unsent replies handed back to other nodes"),
            Err(e) => tracing::warn!(error = %e, "could not hand back claimed replies"),
        }
    }

    /// Forgets outbox replies whose codes expired unsent.
    pub(super) async fn sweep(&self) {
        let i = &self.0;
        if !i.outbox.enabled() {
            return;
        }
        match i.outbox_store.sweep_replies(self.now()).await {
            Ok(0) => {}
            Ok(n) => {
                // Nobody held a session for them while their codes were valid.
                metrics::counter!("otpgw_outbox_expired_total").increment(n);
                tracing::warn!(replies = n, "replies expired in the outbox unsent");
            }
            Err(e) => tracing::warn!(error = %e, "could not sweep the outbox"),
        }
    }
}
