-- otpgw schema, PostgreSQL. Kept column-for-column equal to migrations/sqlite so the
-- same queries serve both. Times are Unix epoch milliseconds (BIGINT).

CREATE TABLE cards (
    id          BIGSERIAL PRIMARY KEY,
    pan_hash    TEXT    NOT NULL UNIQUE,
    last4       TEXT    NOT NULL,
    last6_hash  TEXT    NOT NULL,
    msisdn      TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'locked', 'suspended')),
    failures    BIGINT  NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX cards_by_msisdn ON cards (msisdn, last4);

CREATE TABLE codes (
    id          BIGSERIAL PRIMARY KEY,
    card_id     BIGINT  NOT NULL REFERENCES cards (id),
    code_hash   TEXT    NOT NULL,
    channel     TEXT    NOT NULL CHECK (channel IN ('sms', 'ussd')),
    peer        TEXT    NOT NULL,
    issued_at   BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('live', 'used', 'superseded', 'expired', 'failed')),
    delivery    TEXT    CHECK (delivery IN ('submitted', 'delivered', 'undelivered')),
    used_at     BIGINT
);
CREATE UNIQUE INDEX codes_one_live_per_card ON codes (card_id) WHERE state = 'live';
CREATE INDEX codes_by_card ON codes (card_id, id);

CREATE TABLE verifications (
    api_key_id    BIGINT  NOT NULL,
    request_id    TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL,
    card_id       BIGINT,
    result        TEXT    NOT NULL,
    reason        TEXT,
    response_code TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (api_key_id, request_id)
);

CREATE TABLE api_keys (
    id          BIGSERIAL PRIMARY KEY,
    role        TEXT    NOT NULL CHECK (role IN ('admin', 'verifier', 'ussd')),
    key_hash    TEXT    NOT NULL UNIQUE,
    label       TEXT,
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE events (
    id          BIGSERIAL PRIMARY KEY,
    card_id     BIGINT,
    kind        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    detail      TEXT    NOT NULL DEFAULT '{}',
    at          BIGINT  NOT NULL
);
CREATE INDEX events_by_card ON events (card_id, id);

CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END;
$$;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
