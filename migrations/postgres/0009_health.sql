-- One row that `/readyz` rewrites: readiness means a write would succeed (a
-- read-only file, a full disk or a read-only replica answer not ready).
CREATE TABLE health (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL
);
INSERT INTO health (id, at) VALUES (1, 0);
