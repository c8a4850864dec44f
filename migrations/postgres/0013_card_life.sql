-- A card's life (issue 25): closed and reissued cards, and the customer's language.
-- keeps its row, codes, verifications and audit; its number is moved aside into
-- `closed_pan_hash` so the same card number can be enrolled again as a new card
-- (`pan_hash` stays NOT NULL UNIQUE and becomes 'closed:<id>', which no HMAC equals).
--
-- SQLite cannot change the `status` CHECK without rebuilding `cards` and the four
-- tables that refer to it, so closure is `closed_at`, not a status value: a closed
-- card's `status` column is set to 'suspended', which every code and verification
-- path already refuses, and the store reports it as `closed`. PostgreSQL does the same
-- so that both backends share one set of statements.
ALTER TABLE cards ADD COLUMN closed_at BIGINT;
ALTER TABLE cards ADD COLUMN closed_pan_hash TEXT;
-- A reissued card keeps its row (its id, tokens, whose sealed secrets name that id,
-- ePIN, phone and lock state) and takes the new number; the old number is kept as
-- a closed row of its own that points at the card that replaced it.
ALTER TABLE cards ADD COLUMN replaced_by BIGINT;
-- The customer's language for what is sent to the card's phone unasked (pushed
-- codes, notices), set at enrolment or import; NULL: the service's language.
ALTER TABLE cards ADD COLUMN language TEXT CHECK (language IN ('fa', 'en'));
-- Bulk import looks cards up by number in batches, and export walks them by id;
-- both use the existing unique index on pan_hash and the primary key.
