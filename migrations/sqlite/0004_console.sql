-- The back-office console: a `helpdesk` API-key role, server-side console sessions,
-- and indexes for the console's audit search and health counts. SQLite cannot change
-- a CHECK constraint, so `api_keys` is rebuilt with the wider role list (ids kept).

CREATE TABLE api_keys_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    role        TEXT    NOT NULL CHECK (role IN ('admin', 'verifier', 'ussd', 'helpdesk')),
    key_hash    TEXT    NOT NULL UNIQUE,
    label       TEXT,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
INSERT INTO api_keys_new (id, role, key_hash, label, created_at, revoked_at)
    SELECT id, role, key_hash, label, created_at, revoked_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_new RENAME TO api_keys;

-- One row per signed-in console user. The cookie carries a random id; only its
-- SHA-256 is stored, so a copy of the database cannot be replayed as a session.
-- `csrf` is the per-session token every console form must echo.
CREATE TABLE console_sessions (
    id_hash      TEXT    PRIMARY KEY,
    api_key_id   INTEGER NOT NULL,
    csrf         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX console_sessions_by_key ON console_sessions (api_key_id);

-- Audit search by kind or actor, newest first (keyset on id); health counts by time.
CREATE INDEX events_by_kind ON events (kind, id);
CREATE INDEX events_by_actor ON events (actor, id);
CREATE INDEX codes_by_issued ON codes (issued_at);
CREATE INDEX verifications_by_created ON verifications (created_at);
CREATE INDEX verifications_by_card ON verifications (card_id, created_at);
