-- Cluster-wide rate limits (used on PostgreSQL, where several nodes share the
-- database): one row per limited key with its theoretical arrival time (GCRA), in
-- epoch milliseconds. Rows whose time has passed carry no state and are swept.
CREATE TABLE limit_state (
    key TEXT   PRIMARY KEY,
    tat BIGINT NOT NULL
);
CREATE INDEX limit_state_by_tat ON limit_state (tat);
