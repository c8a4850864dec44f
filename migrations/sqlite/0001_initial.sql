-- otpgw schema, SQLite. Times are Unix epoch milliseconds (INTEGER) so that the same
-- queries run on SQLite and PostgreSQL. No column ever holds a full card number or a
-- plaintext code: cards keep HMAC(pan_key, PAN) and the last 4 digits, codes keep
-- HMAC(code_key, card, code).

CREATE TABLE cards (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    pan_hash    TEXT    NOT NULL UNIQUE,
    last4       TEXT    NOT NULL,
    last6_hash  TEXT    NOT NULL,
    msisdn      TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'locked', 'suspended')),
    failures    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX cards_by_msisdn ON cards (msisdn, last4);

CREATE TABLE codes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    card_id     INTEGER NOT NULL REFERENCES cards (id),
    code_hash   TEXT    NOT NULL,
    channel     TEXT    NOT NULL CHECK (channel IN ('sms', 'ussd')),
    peer        TEXT    NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('live', 'used', 'superseded', 'expired', 'failed')),
    delivery    TEXT    CHECK (delivery IN ('submitted', 'delivered', 'undelivered')),
    used_at     INTEGER
);
-- The database, not the gateway process, guarantees one live code per card.
CREATE UNIQUE INDEX codes_one_live_per_card ON codes (card_id) WHERE state = 'live';
CREATE INDEX codes_by_card ON codes (card_id, id);

CREATE TABLE verifications (
    api_key_id    INTEGER NOT NULL,
    request_id    TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL,
    card_id       INTEGER,
    result        TEXT    NOT NULL,
    reason        TEXT,
    response_code TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, request_id)
);

CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    role        TEXT    NOT NULL CHECK (role IN ('admin', 'verifier', 'ussd')),
    key_hash    TEXT    NOT NULL UNIQUE,
    label       TEXT,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    card_id     INTEGER,
    kind        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    detail      TEXT    NOT NULL DEFAULT '{}',
    at          INTEGER NOT NULL
);
CREATE INDEX events_by_card ON events (card_id, id);

-- The audit trail is append-only.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
