-- Local console operators (issue 24): named people who sign in with a password and
-- a TOTP code, so that the audit says who did what (`operator:NAME`). API keys stay,
-- for machines.
--
-- `password_hash` and `old_password_hashes` are Argon2id PHC strings made with a
-- pepper derived from the code key; the old ones (a JSON array, newest first, at most
-- 4, so that with the current one the last 5 cannot be reused). `totp_secret` is
-- sealed (XChaCha20-Poly1305, purpose "operators", associated data naming the
-- operator's id) and hex-encoded; it is NULL until enrolment starts, and
-- `totp_enrolled` becomes 1 when the operator confirmed a code. `totp_last_step` is
-- the last step accepted: a code verifies once. `failed_signins` counts failures in a
-- row of either factor; the fifth sets `locked_at`, cleared only by an
-- administrator (reset or enable).
CREATE TABLE operators (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    role                TEXT    NOT NULL CHECK (role IN ('admin', 'helpdesk')),
    password_hash       TEXT    NOT NULL,
    old_password_hashes TEXT    NOT NULL DEFAULT '[]',
    totp_secret         TEXT,
    totp_enrolled       INTEGER NOT NULL DEFAULT 0,
    totp_last_step      INTEGER,
    failed_signins      INTEGER NOT NULL DEFAULT 0,
    locked_at           INTEGER,
    disabled_at         INTEGER,
    created_at          INTEGER NOT NULL,
    changed_at          INTEGER NOT NULL
);

-- A console session now belongs to an API key or to an operator. `stage` is 'in' for
-- a signed-in session; an operator's sign-in passes 'totp' (password accepted, code
-- asked) or 'enrol' (first sign-in: the secret is shown) first, under another id,
-- which is dropped when the session proper is made (no fixation). SQLite cannot drop
-- a NOT NULL, so the table is rebuilt; sessions are short-lived and are ended by the
-- upgrade (everyone signs in again).
DROP TABLE console_sessions;
CREATE TABLE console_sessions (
    id_hash      TEXT    PRIMARY KEY,
    api_key_id   INTEGER,
    operator_id  INTEGER REFERENCES operators (id),
    stage        TEXT    NOT NULL DEFAULT 'in' CHECK (stage IN ('in', 'totp', 'enrol')),
    csrf         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    CHECK ((api_key_id IS NULL) <> (operator_id IS NULL))
);
CREATE INDEX console_sessions_by_key ON console_sessions (api_key_id);
CREATE INDEX console_sessions_by_operator ON console_sessions (operator_id);
