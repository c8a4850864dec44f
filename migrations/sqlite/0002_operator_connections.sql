-- Client mode: codes sent through operator connections, their delivery receipts, and
-- codes the bank pushes through the API. SQLite cannot change a CHECK constraint, so
-- `codes` is rebuilt with the wider delivery states and the delivery columns.

CREATE TABLE codes_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    card_id     INTEGER NOT NULL REFERENCES cards (id),
    code_hash   TEXT    NOT NULL,
    channel     TEXT    NOT NULL CHECK (channel IN ('sms', 'ussd')),
    peer        TEXT    NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('live', 'used', 'superseded', 'expired', 'failed')),
    delivery    TEXT    CHECK (delivery IN ('queued', 'submitted', 'delivered', 'undelivered', 'expired')),
    used_at     INTEGER,
    -- The route (MSISDN prefix, '' for the default route) and operator connection
    -- that carried it, when it went out through client mode.
    route       TEXT,
    connection  TEXT,
    -- The SMSC's id for the message, and the numbers it may stand for (decimal and
    -- hexadecimal readings), so a receipt in either form finds it.
    message_id  TEXT,
    message_key_dec TEXT,
    message_key_hex TEXT,
    submitted_at INTEGER,
    delivery_at INTEGER
);
INSERT INTO codes_new (id, card_id, code_hash, channel, peer, issued_at, expires_at, state, delivery, used_at)
    SELECT id, card_id, code_hash, channel, peer, issued_at, expires_at, state, delivery, used_at FROM codes;
DROP TABLE codes;
ALTER TABLE codes_new RENAME TO codes;
CREATE UNIQUE INDEX codes_one_live_per_card ON codes (card_id) WHERE state = 'live';
CREATE INDEX codes_by_card ON codes (card_id, id);
CREATE INDEX codes_by_message_dec ON codes (connection, message_key_dec) WHERE message_key_dec IS NOT NULL;
CREATE INDEX codes_by_message_hex ON codes (connection, message_key_hex) WHERE message_key_hex IS NOT NULL;
CREATE INDEX codes_by_message_id ON codes (connection, message_id) WHERE message_id IS NOT NULL;

-- Codes pushed through POST /v1/codes, by the caller's request_id (idempotency).
CREATE TABLE pushes (
    api_key_id  INTEGER NOT NULL,
    request_id  TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    code_id     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, request_id)
);
