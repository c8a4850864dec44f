//! The reply outbox (PostgreSQL, several nodes): replies that carry a code wait here,
//! written in the same transaction as their code, until a node that holds a session
//! for their target claims one for a lease, sends it and deletes it on the peer's
//! acknowledgement. `FOR UPDATE SKIP LOCKED` lets every node claim at once without
//! two of them taking the same row; the lease lets another node take over from one
//! that died. What a row says is sealed by the core: the store moves opaque text.

use sqlx::{AnyConnection, Row};

use async_trait::async_trait;

use super::error::StoreError;
use super::port;
use super::Store;
use crate::core::ports::{Claim, ClaimedRow, NewOutboxReply, OutboxStore};
use crate::core::DomainError;

/// Inside the issuing transaction.
pub(super) async fn insert(
    conn: &mut AnyConnection,
    code_id: i64,
    reply: &NewOutboxReply,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO reply_outbox (code_id, target, sealed, deliver_by, owner, lease_until, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(code_id)
    .bind(&reply.target)
    .bind(&reply.sealed)
    .bind(reply.deliver_by)
    .bind(reply.owner.as_deref())
    .bind(reply.lease_until)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inside the transaction that records the peer's answer to the reply.
pub(super) async fn remove(conn: &mut AnyConnection, code_id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM reply_outbox WHERE code_id = $1")
        .bind(code_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[async_trait]
impl OutboxStore for Store {
    /// Claims up to `limit` unexpired replies for `target` that nobody holds (never
    /// claimed, or a lease that ran out), oldest first. PostgreSQL only: rows another
    /// node is claiming at this instant are skipped, not waited for.
    async fn claim_replies(&self, claim: &Claim<'_>) -> Result<Vec<ClaimedRow>, DomainError> {
        let Claim { node, target, .. } = *claim;
        let (now, lease_until, limit) = (claim.now, claim.lease_until, claim.limit);
        let query = sqlx::query(
            "UPDATE reply_outbox SET owner = $1, lease_until = $2 WHERE code_id IN ( \
               SELECT code_id FROM reply_outbox \
               WHERE target = $3 AND lease_until < $4 AND deliver_by > $4 \
               ORDER BY code_id LIMIT $5 FOR UPDATE SKIP LOCKED) \
             RETURNING code_id, target, sealed, deliver_by, lease_until",
        )
        .bind(node)
        .bind(lease_until)
        .bind(target)
        .bind(now)
        .bind(limit);
        port(self.read_all(query, |r| {
            Ok(record!(r => ClaimedRow { code_id, target, sealed, deliver_by, lease_until; }))
        }))
        .await
    }

    /// Gives up every claim of `node` (it is shutting down): other nodes may send
    /// those replies at once instead of after the lease.
    async fn release_replies(&self, node: &str) -> Result<u64, DomainError> {
        port(async move {
            let node = node.to_owned();
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    Ok(sqlx::query(
                        "UPDATE reply_outbox SET owner = NULL, lease_until = 0 WHERE owner = $1",
                    )
                    .bind(&node)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected())
                })
            })
            .await
        })
        .await
    }

    /// Forgets replies whose code has expired: nobody may send them any more.
    async fn sweep_replies(&self, now: i64) -> Result<u64, DomainError> {
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    Ok(
                        sqlx::query("DELETE FROM reply_outbox WHERE deliver_by <= $1")
                            .bind(now)
                            .execute(&mut *conn)
                            .await?
                            .rows_affected(),
                    )
                })
            })
            .await
        })
        .await
    }
}
