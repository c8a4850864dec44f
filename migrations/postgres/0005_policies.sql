-- Bank policies: timed locks, ePINs, activation from the customer's phone (a new
-- `pending` status), codes bound to a payment or capped by the customer, and the
-- attempts left / lock end replayed with a verification's answer. Column for column
-- the same as migrations/sqlite/0005_policies.sql.
ALTER TABLE cards DROP CONSTRAINT cards_status_check;
ALTER TABLE cards ADD CONSTRAINT cards_status_check
    CHECK (status IN ('active', 'locked', 'suspended', 'pending'));
ALTER TABLE cards
    ADD COLUMN locked_until BIGINT,
    ADD COLUMN epin_hash TEXT,
    ADD COLUMN activation_hash TEXT,
    ADD COLUMN activation_expires_at BIGINT,
    ADD COLUMN activation_failures BIGINT NOT NULL DEFAULT 0;

ALTER TABLE codes ADD COLUMN txn_hash TEXT, ADD COLUMN cap BIGINT;

ALTER TABLE verifications
    ADD COLUMN attempts_left BIGINT,
    ADD COLUMN locked BIGINT,
    ADD COLUMN locked_until BIGINT;
