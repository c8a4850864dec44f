-- A keyed hash of each key the database was first started with (never the keys):
-- a node started with other keys is refused before it can issue a code that the
-- other nodes would count as wrong, or enroll a card they could never find.
CREATE TABLE key_fingerprints (
    name        TEXT    PRIMARY KEY,
    fingerprint TEXT    NOT NULL,
    recorded_at INTEGER NOT NULL
);
