-- When a card's phone number last changed (POST /v1/cards/{id}/phone): pushed codes
-- to the new number may be held back for [policy] after_phone_change.hold_secs, the
-- window in which a fraudulent number change is most often used.
ALTER TABLE cards ADD COLUMN phone_changed_at INTEGER;
