-- Verification records are pruned after a retention (housekeeping, every 60 s):
-- an index keeps that DELETE from scanning the table.
CREATE INDEX verifications_by_age ON verifications (created_at);
