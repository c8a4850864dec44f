//! The listener's side of the reply outbox (several nodes on PostgreSQL; see
//! `core::outbox`): which system_ids this node can deliver to right now, and a task
//! that claims the replies waiting for them, whichever node took the customer's
//! message, and puts them on the local reply queues.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{session, Context, Outgoing};

/// Receiving sessions (receiver or transceiver binds) on this node, per system_id.
/// Only configured peers bind, so the map is as small as the peer list.
#[derive(Default, Clone)]
pub(crate) struct Receivers(Arc<Mutex<HashMap<String, usize>>>);

/// Counts one receiving session until dropped.
pub(crate) struct Held {
    receivers: Receivers,
    system_id: String,
}

impl Receivers {
    pub fn hold(&self, system_id: &str) -> Held {
        *self.lock().entry(system_id.to_owned()).or_default() += 1;
        Held {
            receivers: self.clone(),
            system_id: system_id.to_owned(),
        }
    }

    pub fn any(&self, system_id: &str) -> bool {
        self.lock().get(system_id).is_some_and(|n| *n > 0)
    }

    fn system_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut map = self.receivers.lock();
        if let Some(n) = map.get_mut(&self.system_id) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.system_id);
            }
        }
    }
}

/// Every `every`, claims what this node can deliver. A claim it cannot send within
/// the lease (its receiver went away) lapses and is claimed again, here or elsewhere.
pub(crate) async fn run(ctx: Arc<Context>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for system_id in ctx.receivers.system_ids() {
            let claimed = match ctx
                .core
                .delivery
                .claim(&crate::core::peer_target(&system_id))
                .await
            {
                Ok(claimed) => claimed,
                Err(e) => {
                    crate::telemetry::sampled(crate::telemetry::Noisy::OutboxClaim, || {
                        tracing::warn!(error = %e, "could not claim replies from the outbox");
                    });
                    break;
                }
            };
            if claimed.is_empty() {
                continue;
            }
            metrics::counter!("otpgw_outbox_claimed_total").increment(claimed.len() as u64);
            tracing::info!(system_id = %system_id, replies = claimed.len(), "replies claimed from the outbox");
            let now_ms = ctx.core.now_ms();
            let now = tokio::time::Instant::now();
            for reply in claimed {
                let left = u64::try_from(reply.deliver_by.saturating_sub(now_ms)).unwrap_or(0);
                session::enqueue(
                    &ctx,
                    &system_id,
                    Outgoing {
                        source: ctx.service.sender_id.clone(),
                        to: reply.to,
                        text: reply.text,
                        label: "code",
                        code_id: Some(reply.code_id),
                        ussd: None,
                        deliver_by: now + Duration::from_millis(left),
                        send_before: Some(reply.send_before),
                    },
                );
            }
        }
    }
}
