-- Customer-held tokens (issue 15): app and hardware tokens making TOTP (RFC 6238)
-- or OCRA (RFC 6287) codes that verify on /v1/verify beside SMS codes.
--
-- The secret is sealed (XChaCha20-Poly1305, key derived for purpose "tokens") with
-- associated data "tokens|v1|<uid>|<card_id>", so a sealed secret copied into
-- another row does not open. `uid` is random, chosen before the insert.
-- A pending software token waits for its two-part activation code (HMAC only).
-- `last_step` is the replay rule: a time step at or before it never verifies again.
CREATE TABLE tokens (
    id          BIGSERIAL PRIMARY KEY,
    uid         TEXT    NOT NULL UNIQUE,
    card_id     BIGINT   NOT NULL REFERENCES cards (id),
    kind        TEXT    NOT NULL CHECK (kind IN ('totp', 'ocra')),
    source      TEXT    NOT NULL CHECK (source IN ('software', 'hardware')),
    serial      TEXT,
    algorithm   TEXT    NOT NULL CHECK (algorithm IN ('sha1', 'sha256', 'sha512')),
    digits      BIGINT   NOT NULL,
    -- Seconds per time step (TOTP, or an OCRA suite's T); 0 for OCRA without T.
    period      BIGINT   NOT NULL,
    suite       TEXT,
    secret      TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'active', 'suspended', 'revoked', 'locked')),
    activation_hash       TEXT,
    activation_expires_at BIGINT ,
    activation_failures   BIGINT  NOT NULL DEFAULT 0,
    last_step   BIGINT ,
    drift       BIGINT   NOT NULL DEFAULT 0,
    -- OCRA without a time step: HMAC of the last payment answered (its replay rule).
    last_txn_hash TEXT,
    created_at  BIGINT   NOT NULL,
    updated_at  BIGINT   NOT NULL,
    last_used_at BIGINT 
);
CREATE INDEX tokens_by_card ON tokens (card_id, state);
CREATE UNIQUE INDEX tokens_by_serial ON tokens (serial) WHERE serial IS NOT NULL AND state <> 'revoked';
