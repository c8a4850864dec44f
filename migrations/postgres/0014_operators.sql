-- Local console operators (issue 24): named people who sign in with a password and
-- a TOTP code, so that the audit says who did what (`operator:NAME`). API keys stay,
-- for machines. See the SQLite migration for each column's meaning.
CREATE TABLE operators (
    id                  BIGSERIAL PRIMARY KEY,
    name                TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    role                TEXT    NOT NULL CHECK (role IN ('admin', 'helpdesk')),
    password_hash       TEXT    NOT NULL,
    old_password_hashes TEXT    NOT NULL DEFAULT '[]',
    totp_secret         TEXT,
    totp_enrolled       BIGINT  NOT NULL DEFAULT 0,
    totp_last_step      BIGINT,
    failed_signins      BIGINT  NOT NULL DEFAULT 0,
    locked_at           BIGINT,
    disabled_at         BIGINT,
    created_at          BIGINT  NOT NULL,
    changed_at          BIGINT  NOT NULL
);

-- A console session belongs to an API key or to an operator; `stage` as in SQLite's
-- migration. Sessions are ended by the upgrade, as there.
DELETE FROM console_sessions;
ALTER TABLE console_sessions ALTER COLUMN api_key_id DROP NOT NULL;
ALTER TABLE console_sessions ADD COLUMN operator_id BIGINT REFERENCES operators (id);
ALTER TABLE console_sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'in'
    CHECK (stage IN ('in', 'totp', 'enrol'));
ALTER TABLE console_sessions ADD CONSTRAINT console_sessions_one_holder
    CHECK ((api_key_id IS NULL) <> (operator_id IS NULL));
CREATE INDEX console_sessions_by_operator ON console_sessions (operator_id);
