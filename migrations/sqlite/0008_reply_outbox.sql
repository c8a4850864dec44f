-- Replies that carry a code, waiting to be sent (used on PostgreSQL, where several
-- nodes share the database). Written in the same transaction as the code; the node
-- that holds a session for `target` claims a row for a short lease, sends it, and
-- deletes it when the peer acknowledges. A lease that runs out (the node died, or
-- could not send in time) lets any other node claim it; rows past `deliver_by` (the
-- code's expiry) are never sent and are swept.
-- `sealed` is the reply (number, sender, text with the code) sealed with a key
-- derived from the code key (hex of XChaCha20-Poly1305 output): the table never
-- shows a code or a number in clear.
CREATE TABLE reply_outbox (
    code_id     BIGINT PRIMARY KEY,
    target      TEXT   NOT NULL,
    sealed      TEXT   NOT NULL,
    deliver_by  BIGINT NOT NULL,
    owner       TEXT,
    lease_until BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX reply_outbox_claimable ON reply_outbox (target, lease_until);
CREATE INDEX reply_outbox_owner ON reply_outbox (owner);
