-- Single sign-on with OpenID Connect (issue 24): a console session may belong to a
-- person the bank's identity provider signed in, named by the ID token's subject
-- (`oidc:SUBJECT` in the audit) with their display name and the role their claims
-- gave at sign-in. The role is kept with the session: the identity provider is not
-- asked again until the next sign-in (at most 8 hours).
--
-- SQLite cannot change a CHECK, so the table is rebuilt as 0014 did; sessions are
-- short-lived and are ended by the upgrade (everyone signs in again).
DROP TABLE console_sessions;
CREATE TABLE console_sessions (
    id_hash      TEXT    PRIMARY KEY,
    api_key_id   INTEGER,
    operator_id  INTEGER REFERENCES operators (id),
    oidc_subject TEXT    CHECK (length(oidc_subject) BETWEEN 1 AND 255),
    oidc_name    TEXT,
    oidc_role    TEXT    CHECK (oidc_role IN ('admin', 'helpdesk')),
    stage        TEXT    NOT NULL DEFAULT 'in' CHECK (stage IN ('in', 'totp', 'enrol')),
    csrf         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    CHECK ((api_key_id IS NOT NULL) + (operator_id IS NOT NULL) + (oidc_subject IS NOT NULL) = 1),
    CHECK ((oidc_subject IS NULL) = (oidc_role IS NULL))
);
CREATE INDEX console_sessions_by_key ON console_sessions (api_key_id);
CREATE INDEX console_sessions_by_operator ON console_sessions (operator_id);

-- A sign-in sent to the identity provider and not yet back: the `state`, `nonce`
-- and PKCE verifier the callback is checked with, under the hash of a random id the
-- browser holds in its `otpgw_oidc` cookie. In the database rather than one node's
-- memory, so that the callback may reach any node. Taken (deleted) by the first
-- callback that names it; rows past `expires_at` (10 minutes) are deleted when a new
-- one is made.
CREATE TABLE oidc_logins (
    id_hash       TEXT    PRIMARY KEY,
    state         TEXT    NOT NULL,
    nonce         TEXT    NOT NULL,
    pkce_verifier TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX oidc_logins_by_expiry ON oidc_logins (expires_at);
