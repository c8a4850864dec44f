-- OCRA challenges issued for payments (POST /v1/challenge): each is random, bound
-- here to the exact payment it was shown for (a keyed hash of its canonical form)
-- and to the API key that asked, expires, and verifies one approval. The value is
-- unique while its row exists, so no other payment can be given a challenge a
-- captured response answers (SECURITY.md, "OCRA payment binding").
CREATE TABLE payment_challenges (
    id          BIGSERIAL PRIMARY KEY,
    value       TEXT    NOT NULL UNIQUE,
    txn_hash    TEXT    NOT NULL,
    api_key_id  BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT
);
CREATE INDEX payment_challenges_created ON payment_challenges (created_at);
