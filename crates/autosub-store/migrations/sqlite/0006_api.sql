-- The HTTP API (/v1/jobs): keys and per-key request counts. A key is shown once when it is made; only the SHA-256
-- of it (hex) is kept, with its first characters (prefix) to tell keys apart in lists.
CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    key_hash     TEXT   NOT NULL UNIQUE,
    prefix       TEXT   NOT NULL,
    name         TEXT,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- Requests per key and fixed window (the window's start in ms): one row per key and minute, shared by every API
-- process on the database, so a limit holds however many processes serve the API.
CREATE TABLE api_usage (
    key_id       BIGINT NOT NULL REFERENCES api_keys (id),
    window_start BIGINT NOT NULL,
    requests     BIGINT NOT NULL,
    PRIMARY KEY (key_id, window_start)
);
