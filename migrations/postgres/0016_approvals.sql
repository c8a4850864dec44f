-- Two-person rules (issue 24): see the SQLite migration for each column's meaning.
CREATE TABLE approvals (
    id            BIGSERIAL PRIMARY KEY,
    action        TEXT    NOT NULL
                  CHECK (action IN ('lift_lock', 'apikey_create', 'phone_change', 'card_close')),
    card_id       BIGINT  REFERENCES cards (id),
    params        TEXT    NOT NULL DEFAULT '{}',
    reason        TEXT    NOT NULL,
    proposer      TEXT    NOT NULL,
    proposer_name TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    decided_at    BIGINT,
    decided_by    TEXT,
    outcome       TEXT
                  CHECK (outcome IN ('approved', 'refused', 'withdrawn', 'expired', 'failed')),
    refusal       TEXT
);
CREATE INDEX approvals_open ON approvals (decided_at, id);
