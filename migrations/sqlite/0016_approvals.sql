-- Two-person rules (issue 24): a console action the bank lists in
-- `[console] four_eyes` is proposed by one clerk and done only when a second,
-- different clerk approves it. One row per proposal.
--
-- `action` is a guarded action's name; `card_id` the card it concerns (NULL for an
-- API key); `params` a JSON object of what the action needs besides the card (a new
-- phone number, a key's role and label; never a secret). `proposer` and `decided_by`
-- are `actor()` names (`operator:NAME`, `apikey:N`, …), `proposer_name` the display
-- name. `decided_at`/`outcome` are NULL while the proposal is open; approval claims
-- the row with `decided_at IS NULL AND expires_at > now` in one statement, so two
-- approvers at once do the action once. `outcome` 'failed': approved, but the action
-- was refused at that time; `refusal` is the refuser's reason.
CREATE TABLE approvals (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    action        TEXT    NOT NULL
                  CHECK (action IN ('lift_lock', 'apikey_create', 'phone_change', 'card_close')),
    card_id       INTEGER REFERENCES cards (id),
    params        TEXT    NOT NULL DEFAULT '{}',
    reason        TEXT    NOT NULL,
    proposer      TEXT    NOT NULL,
    proposer_name TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    decided_at    INTEGER,
    decided_by    TEXT,
    outcome       TEXT
                  CHECK (outcome IN ('approved', 'refused', 'withdrawn', 'expired', 'failed')),
    refusal       TEXT
);
CREATE INDEX approvals_open ON approvals (decided_at, id);
