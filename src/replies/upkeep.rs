//! The replies path's own task: every second, drop what expired (recording the
//! pushed codes and operator replies that never left as `undelivered`); and with
//! several nodes, every `outbox_poll_ms`, claim the outbox rows this node's
//! sessions can carry now, whichever node took the customer's message (or left
//! them behind when it died), and queue them here with their lease.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{deadline_in, Outgoing, Replies, Target};
use crate::core::Delivery;

/// Runs until `shutdown`. `sender_id` is the source of claimed listener replies.
pub async fn run(
    replies: Replies,
    delivery: Delivery,
    sender_id: String,
    shutdown: CancellationToken,
) {
    let poll = delivery.outbox_poll();
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    // Without an outbox (SQLite) the claim tick never fires.
    let mut claim = tokio::time::interval(poll.unwrap_or(Duration::from_secs(86_400 * 365)));
    claim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = sweep.tick() => expire(&replies, &delivery).await,
            _ = claim.tick(), if poll.is_some() => claim_held(&replies, &delivery, &sender_id).await,
        }
    }
}

async fn expire(replies: &Replies, delivery: &Delivery) {
    for (target, msg) in replies.sweep() {
        let (Target::Route(_), Some(code_id)) = (&target, msg.code_id) else {
            continue;
        };
        tracing::warn!(
            code_id,
            "code expired before any connection of its route could send it"
        );
        if let Err(e) = delivery.undelivered(code_id).await {
            tracing::warn!(error = %e, "could not record delivery state");
        }
    }
}

async fn claim_held(replies: &Replies, delivery: &Delivery, sender_id: &str) {
    for target in replies.held() {
        let claimed = match delivery.claim(&target.outbox_key()).await {
            Ok(claimed) => claimed,
            Err(e) => {
                crate::telemetry::sampled(crate::telemetry::Noisy::OutboxClaim, || {
                    tracing::warn!(error = %e, "could not claim replies from the outbox");
                });
                return;
            }
        };
        if claimed.is_empty() {
            continue;
        }
        metrics::counter!("otpgw_outbox_claimed_total").increment(claimed.len() as u64);
        match &target {
            Target::Peer(system_id) => {
                tracing::info!(system_id = %system_id, replies = claimed.len(), "replies claimed from the outbox")
            }
            Target::Route(route) => {
                tracing::info!(route = %route, messages = claimed.len(), "messages claimed from the outbox")
            }
        }
        let now_ms = replies.now_ms();
        for reply in claimed {
            let source = match target {
                Target::Peer(_) => sender_id.to_owned(),
                Target::Route(_) => String::new(),
            };
            let msg = Outgoing {
                source,
                to: reply.to,
                text: reply.text,
                label: "code",
                code_id: Some(reply.code_id),
                ussd: None,
                deliver_by: deadline_in(reply.deliver_by.saturating_sub(now_ms)),
                send_before: Some(reply.send_before),
                resume: None,
            };
            // A full queue leaves it to the outbox: its claim lapses and it is
            // claimed again.
            let _ = replies.push(target.clone(), msg, None);
        }
    }
}
