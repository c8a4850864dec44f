//! Replies that do not depend on one process (several nodes on PostgreSQL).
//!
//! A reply that carries a code is sealed and written to the outbox in the code's
//! own transaction. The node that took the customer's message sends it itself when
//! it holds a session that can (its claim is written with the row, no extra round
//! trip); otherwise, and whenever that node dies or cannot send within its lease, any
//! node holding such a session claims it (`OutboxStore::claim_replies`) and sends it. The
//! row goes when the peer acknowledges the message, in the same transaction as the
//! code's delivery state, so once acknowledged no node sends it again.
//!
//! Delivery is at least once: a node that dies after writing the message but before
//! the peer's acknowledgement is recorded leaves a row another node sends again.
//! Never after the code's expiry: rows carry it and are not claimed past it.

use otpgw_rules::codes::Keys;
use otpgw_rules::seal::SealKey;

use super::ports::{self, Claim, NewOutboxReply, OutboxStore};
use crate::config::ClusterSettings;

/// Where a transport can send the reply to a customer's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyPath {
    /// Only through this process (a USSD dialogue, client mode, SQLite).
    Local,
    /// Through any node holding a session for `target` (an SMPP peer's
    /// system_id); `held_here` when this node holds one now.
    Shared { target: String, held_here: bool },
}

/// How the transport must treat a reply carrying a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// Send it now; nothing else will.
    Direct,
    /// This node claimed it: send it only before `send_before` (epoch ms); past
    /// that, its claim may have passed to another node.
    Claimed { send_before: i64 },
    /// In the outbox for another node to claim: do not send it from here.
    Elsewhere,
}

/// A reply this node claimed from the outbox and must now send.
#[derive(Debug)]
pub struct ClaimedReply {
    pub code_id: i64,
    pub target: String,
    pub to: String,
    pub text: String,
    pub deliver_by: i64,
    pub send_before: i64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Sealed {
    to: String,
    text: String,
}

pub(super) struct Outbox {
    /// Off on SQLite: one node, nothing to share.
    enabled: bool,
    node: String,
    key: SealKey,
    lease_ms: i64,
    margin_ms: i64,
}

/// Replies claimed per target in one poll; the reply queues hold 10,000.
const CLAIM_BATCH: i64 = 500;

impl Outbox {
    /// `shared`: several nodes share the store (PostgreSQL); off, replies stay local.
    pub(super) fn new(shared: bool, keys: &Keys, settings: &ClusterSettings) -> Self {
        let node = settings.node_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().chars().take(40).collect::<String>())
                .unwrap_or_default();
            format!(
                "{host}-{}-{:06x}",
                std::process::id(),
                rand::random::<u32>() & 0xFF_FFFF
            )
        });
        Self {
            enabled: shared,
            node,
            key: keys.seal_key("outbox"),
            lease_ms: i64::try_from(settings.outbox_lease_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            margin_ms: i64::try_from(settings.outbox_margin_ms).unwrap_or(0),
        }
    }

    pub(super) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether a reply on `path` goes into the outbox.
    pub(super) fn wants(&self, path: &ReplyPath) -> bool {
        self.enabled && matches!(path, ReplyPath::Shared { .. })
    }

    pub(super) fn node(&self) -> &str {
        &self.node
    }

    /// The row to write with a code whose reply is `text` to `to`, and how the
    /// transport must then treat the reply; `None` when it stays local.
    pub(super) fn prepare(
        &self,
        path: &ReplyPath,
        to: &str,
        text: &str,
        deliver_by: i64,
        now: i64,
    ) -> Option<(NewOutboxReply, Dispatch)> {
        let ReplyPath::Shared { target, held_here } = path else {
            return None;
        };
        if !self.enabled {
            return None;
        }
        let body = serde_json::to_vec(&Sealed {
            to: to.to_owned(),
            text: text.to_owned(),
        })
        .expect("two strings serialize");
        let sealed = hex::encode(self.key.seal(aad(target).as_bytes(), &body));
        let lease_until = now.saturating_add(self.lease_ms);
        let (owner, lease_until, dispatch) = if *held_here {
            (
                Some(self.node.clone()),
                lease_until,
                Dispatch::Claimed {
                    send_before: lease_until - self.margin_ms,
                },
            )
        } else {
            (None, 0, Dispatch::Elsewhere)
        };
        Some((
            NewOutboxReply {
                target: target.clone(),
                sealed,
                deliver_by,
                owner,
                lease_until,
            },
            dispatch,
        ))
    }

    pub(super) async fn claim(
        &self,
        store: &dyn OutboxStore,
        target: &str,
        now: i64,
    ) -> ports::Result<Vec<ClaimedReply>> {
        if !self.enabled {
            return Ok(Vec::new());
        }
        let rows = store
            .claim_replies(&Claim {
                node: &self.node,
                target,
                now,
                lease_until: now.saturating_add(self.lease_ms),
                limit: CLAIM_BATCH,
            })
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let opened = hex::decode(&row.sealed)
                .ok()
                .and_then(|b| self.key.open(aad(&row.target).as_bytes(), &b).ok())
                .and_then(|b| serde_json::from_slice::<Sealed>(&b).ok());
            let Some(reply) = opened else {
                // Keys differ between nodes, or the row was altered: never send it,
                // and say so once per row (the lease keeps it from coming back soon).
                tracing::error!(
                    code_id = row.code_id,
                    "outbox reply does not open: are the nodes' code keys the same?"
                );
                metrics::counter!("otpgw_outbox_unreadable_total").increment(1);
                continue;
            };
            claimed.push(ClaimedReply {
                code_id: row.code_id,
                target: row.target,
                to: reply.to,
                text: reply.text,
                deliver_by: row.deliver_by,
                send_before: row.lease_until - self.margin_ms,
            });
        }
        Ok(claimed)
    }
}

/// The outbox target of a listener peer's replies (any node's receiving bind of it).
pub fn peer_target(system_id: &str) -> String {
    format!("peer:{system_id}")
}

/// The outbox target of a route's messages (any node's bound connection serving
/// it; "" is the default route).
pub fn route_target(route: &str) -> String {
    format!("route:{route}")
}

/// Binds a sealed reply to its target, so a row moved to another peer's target
/// does not open.
fn aad(target: &str) -> String {
    format!("outbox|v1|{target}")
}
