-- The back-office console: a `helpdesk` API-key role, server-side console sessions,
-- and indexes for the console's audit search and health counts.

ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('admin', 'verifier', 'ussd', 'helpdesk'));

-- One row per signed-in console user. The cookie carries a random id; only its
-- SHA-256 is stored, so a copy of the database cannot be replayed as a session.
-- `csrf` is the per-session token every console form must echo.
CREATE TABLE console_sessions (
    id_hash      TEXT    PRIMARY KEY,
    api_key_id   BIGINT  NOT NULL,
    csrf         TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX console_sessions_by_key ON console_sessions (api_key_id);

-- Audit search by kind or actor, newest first (keyset on id); health counts by time.
CREATE INDEX events_by_kind ON events (kind, id);
CREATE INDEX events_by_actor ON events (actor, id);
CREATE INDEX codes_by_issued ON codes (issued_at);
CREATE INDEX verifications_by_created ON verifications (created_at);
CREATE INDEX verifications_by_card ON verifications (card_id, created_at);
