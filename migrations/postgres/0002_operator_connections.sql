-- Client mode: codes sent through operator connections, their delivery receipts, and
-- codes the bank pushes through the API (column for column as on SQLite).

ALTER TABLE codes DROP CONSTRAINT codes_delivery_check;
ALTER TABLE codes ADD CONSTRAINT codes_delivery_check
    CHECK (delivery IN ('queued', 'submitted', 'delivered', 'undelivered', 'expired'));
ALTER TABLE codes
    ADD COLUMN route TEXT,
    ADD COLUMN connection TEXT,
    ADD COLUMN message_id TEXT,
    ADD COLUMN message_key_dec TEXT,
    ADD COLUMN message_key_hex TEXT,
    ADD COLUMN submitted_at BIGINT,
    ADD COLUMN delivery_at BIGINT;
CREATE INDEX codes_by_message_dec ON codes (connection, message_key_dec) WHERE message_key_dec IS NOT NULL;
CREATE INDEX codes_by_message_hex ON codes (connection, message_key_hex) WHERE message_key_hex IS NOT NULL;
CREATE INDEX codes_by_message_id ON codes (connection, message_id) WHERE message_id IS NOT NULL;

CREATE TABLE pushes (
    api_key_id  BIGINT  NOT NULL,
    request_id  TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    code_id     BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (api_key_id, request_id)
);
