-- AutoSub service schema, SQLite flavour.
--
-- Portable conventions shared with migrations/postgres/0001_init.sql:
--   * timestamps are BIGINT milliseconds since the Unix epoch, computed by the application;
--   * booleans are BIGINT 0/1, JSON is TEXT;
--   * ids are 64-bit. SQLite spells the auto-increment key `INTEGER PRIMARY KEY AUTOINCREMENT`
--     (only that exact spelling aliases the rowid; AUTOINCREMENT keeps ids from ever being
--     reused, which matters because output directories are named after task ids).

CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    telegram_id     BIGINT  NOT NULL UNIQUE,
    username        TEXT,
    language        TEXT,
    tier            TEXT    NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'pro', 'creator')),
    tier_expires_at BIGINT,
    tasks_today     BIGINT  NOT NULL DEFAULT 0,
    tasks_day       BIGINT  NOT NULL DEFAULT 0,
    tasks_total     BIGINT  NOT NULL DEFAULT 0,
    banned          BIGINT  NOT NULL DEFAULT 0 CHECK (banned IN (0, 1)),
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);

CREATE TABLE tasks (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id            BIGINT  REFERENCES users (id),
    kind               TEXT    NOT NULL,
    spec               TEXT    NOT NULL,
    spec_version       BIGINT  NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('created', 'queued', 'processing', 'completed', 'failed', 'cancelled')),
    input_type         TEXT    NOT NULL,
    input_url          TEXT,
    generate_subtitles BIGINT  NOT NULL DEFAULT 1 CHECK (generate_subtitles IN (0, 1)),
    translate          TEXT,
    voiceover          BIGINT  NOT NULL DEFAULT 0 CHECK (voiceover IN (0, 1)),
    vertical_format    BIGINT  NOT NULL DEFAULT 0 CHECK (vertical_format IN (0, 1)),
    tier               TEXT    NOT NULL CHECK (tier IN ('free', 'pro', 'creator')),
    priority           BIGINT  NOT NULL,
    sort_key           BIGINT  NOT NULL,
    attempts           BIGINT  NOT NULL DEFAULT 0,
    max_attempts       BIGINT  NOT NULL DEFAULT 3,
    run_at             BIGINT  NOT NULL,
    timeout_ms         BIGINT  NOT NULL,
    lease_owner        TEXT,
    lease_expires_at   BIGINT,
    heartbeat_at       BIGINT,
    cancel_requested   BIGINT  NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    progress_stage     TEXT,
    progress_percent   REAL,
    outputs            TEXT,
    error              TEXT,
    error_detail       TEXT,
    created_at         BIGINT  NOT NULL,
    queued_at          BIGINT,
    started_at         BIGINT,
    finished_at        BIGINT,
    updated_at         BIGINT  NOT NULL,
    -- A processing task always has an owner: every worker write is guarded by it.
    CHECK (status <> 'processing' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- The claim query: WHERE status = 'queued' AND run_at <= now ORDER BY sort_key, id.
CREATE INDEX tasks_status_sort_idx ON tasks (status, sort_key, id);
-- The janitor: tasks finished before a cutoff.
CREATE INDEX tasks_finished_at_idx ON tasks (finished_at);
CREATE INDEX tasks_user_id_idx ON tasks (user_id);

CREATE TABLE payments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     BIGINT  NOT NULL REFERENCES users (id),
    amount      BIGINT  NOT NULL CHECK (amount >= 0),
    currency    TEXT    NOT NULL DEFAULT 'RUB',
    tier        TEXT    NOT NULL CHECK (tier IN ('free', 'pro', 'creator')),
    period      TEXT    NOT NULL CHECK (period IN ('month', 'year')),
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'confirmed', 'canceled', 'chargebacked', 'expired')),
    external_id TEXT    UNIQUE,
    payload     TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE INDEX payments_user_id_idx ON payments (user_id);

-- No foreign key to tasks: log rows outlive the tasks they mention.
CREATE TABLE system_logs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    level      TEXT    NOT NULL CHECK (level IN ('INFO', 'WARNING', 'ERROR', 'CRITICAL')),
    source     TEXT    NOT NULL,
    task_id    BIGINT,
    message    TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);

CREATE INDEX system_logs_created_at_idx ON system_logs (created_at);
CREATE INDEX system_logs_task_id_idx ON system_logs (task_id);
