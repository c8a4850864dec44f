-- Bank policies: timed locks, ePINs, activation from the customer's phone (a new
-- `pending` status), codes bound to a payment or capped by the customer, and the
-- attempts left / lock end replayed with a verification's answer.
--
-- SQLite cannot change a CHECK constraint, so `cards` is rebuilt. `codes` refers to
-- `cards`, and with foreign keys on (sqlx's default, and migrations run inside a
-- transaction where the pragma cannot change) the old `cards` cannot be dropped while
-- codes point at it. So `codes` is rebuilt too, first pointing at `cards_new`; the
-- rename of `cards_new` to `cards` then rewrites that reference.
CREATE TABLE cards_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    pan_hash    TEXT    NOT NULL UNIQUE,
    last4       TEXT    NOT NULL,
    last6_hash  TEXT    NOT NULL,
    msisdn      TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'locked', 'suspended', 'pending')),
    failures    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    -- When a timed lock ends by itself (epoch ms); NULL for a lock only
    -- re-activation ends, and for a card that is not locked.
    locked_until INTEGER,
    -- Argon2id PHC string of the card's ePIN (peppered with a key from the config).
    epin_hash   TEXT,
    -- The pending activation: HMAC of its code, deadline, wrong attempts so far.
    activation_hash TEXT,
    activation_expires_at INTEGER,
    activation_failures INTEGER NOT NULL DEFAULT 0
);
INSERT INTO cards_new (id, pan_hash, last4, last6_hash, msisdn, status, failures, created_at, updated_at)
    SELECT id, pan_hash, last4, last6_hash, msisdn, status, failures, created_at, updated_at FROM cards;

CREATE TABLE codes_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    card_id     INTEGER NOT NULL REFERENCES cards_new (id),
    code_hash   TEXT    NOT NULL,
    channel     TEXT    NOT NULL CHECK (channel IN ('sms', 'ussd')),
    peer        TEXT    NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('live', 'used', 'superseded', 'expired', 'failed')),
    delivery    TEXT    CHECK (delivery IN ('queued', 'submitted', 'delivered', 'undelivered', 'expired')),
    used_at     INTEGER,
    route       TEXT,
    connection  TEXT,
    message_id  TEXT,
    message_key_dec TEXT,
    message_key_hex TEXT,
    submitted_at INTEGER,
    delivery_at INTEGER,
    -- HMAC(code_key, canonical transaction) of the payment a pushed code is bound
    -- to, and the customer's cap in whole units of `[policy] cap_currency`.
    txn_hash    TEXT,
    cap         INTEGER
);
INSERT INTO codes_new (id, card_id, code_hash, channel, peer, issued_at, expires_at, state, delivery, used_at,
                       route, connection, message_id, message_key_dec, message_key_hex, submitted_at, delivery_at)
    SELECT id, card_id, code_hash, channel, peer, issued_at, expires_at, state, delivery, used_at,
           route, connection, message_id, message_key_dec, message_key_hex, submitted_at, delivery_at FROM codes;
DROP TABLE codes;
DROP TABLE cards;
ALTER TABLE cards_new RENAME TO cards;
ALTER TABLE codes_new RENAME TO codes;
CREATE INDEX cards_by_msisdn ON cards (msisdn, last4);
CREATE UNIQUE INDEX codes_one_live_per_card ON codes (card_id) WHERE state = 'live';
CREATE INDEX codes_by_card ON codes (card_id, id);
CREATE INDEX codes_by_message_dec ON codes (connection, message_key_dec) WHERE message_key_dec IS NOT NULL;
CREATE INDEX codes_by_message_hex ON codes (connection, message_key_hex) WHERE message_key_hex IS NOT NULL;
CREATE INDEX codes_by_message_id ON codes (connection, message_id) WHERE message_id IS NOT NULL;

-- Replayed with the answer to a retried request_id.
ALTER TABLE verifications ADD COLUMN attempts_left INTEGER;
ALTER TABLE verifications ADD COLUMN locked INTEGER;
ALTER TABLE verifications ADD COLUMN locked_until INTEGER;
