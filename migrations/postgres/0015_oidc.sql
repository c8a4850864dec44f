-- Single sign-on with OpenID Connect (issue 24): a console session may belong to a
-- person the bank's identity provider signed in. See the SQLite migration for each
-- column's meaning. Sessions are ended by the upgrade, as there.
DELETE FROM console_sessions;
ALTER TABLE console_sessions DROP CONSTRAINT console_sessions_one_holder;
ALTER TABLE console_sessions ADD COLUMN oidc_subject TEXT
    CHECK (length(oidc_subject) BETWEEN 1 AND 255);
ALTER TABLE console_sessions ADD COLUMN oidc_name TEXT;
ALTER TABLE console_sessions ADD COLUMN oidc_role TEXT
    CHECK (oidc_role IN ('admin', 'helpdesk'));
ALTER TABLE console_sessions ADD CONSTRAINT console_sessions_one_holder
    CHECK (num_nonnulls(api_key_id, operator_id, oidc_subject) = 1);
ALTER TABLE console_sessions ADD CONSTRAINT console_sessions_oidc_role
    CHECK ((oidc_subject IS NULL) = (oidc_role IS NULL));

CREATE TABLE oidc_logins (
    id_hash       TEXT   PRIMARY KEY,
    state         TEXT   NOT NULL,
    nonce         TEXT   NOT NULL,
    pkce_verifier TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX oidc_logins_by_expiry ON oidc_logins (expires_at);
