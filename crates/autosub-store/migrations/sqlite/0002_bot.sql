-- The Telegram bot's state (conventions as in 0001_init.sql). Everything the bot must not forget across a restart
-- lives here: handled updates, per-user settings, requests waiting for options or being checked, what has been told
-- and sent about each task, broadcasts in progress.

-- A task created for a request carries the request's key: creating it again (a redelivered update, a restarted
-- intake) finds the first one instead of counting a second task.
ALTER TABLE tasks ADD COLUMN idem_key TEXT;
CREATE UNIQUE INDEX tasks_idem_key_idx ON tasks (idem_key);

-- Updates the bot has handled: getUpdates resumes after the highest, and a redelivered update is skipped.
CREATE TABLE bot_updates (
    update_id  BIGINT PRIMARY KEY,
    handled_at BIGINT NOT NULL
);

-- Per-user bot state: the chat to write to, the language chosen with /lang, the /settings defaults (JSON).
CREATE TABLE bot_chats (
    telegram_id  BIGINT PRIMARY KEY,
    chat_id      BIGINT NOT NULL,
    lang         TEXT,
    settings     TEXT   NOT NULL DEFAULT '{}',
    last_seen_at BIGINT NOT NULL
);

-- A piece of media and the options chosen for it: 'draft' while its keyboard is shown, 'submitted' once started
-- (the intake downloads, probes and checks it), then 'queued' (task_id set), 'refused' or 'dropped'.
CREATE TABLE bot_requests (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    telegram_id         BIGINT NOT NULL,
    chat_id             BIGINT NOT NULL,
    update_id           BIGINT UNIQUE,
    source              TEXT   NOT NULL,
    options             TEXT   NOT NULL,
    status              TEXT   NOT NULL CHECK (status IN ('draft', 'submitted', 'queued', 'refused', 'dropped')),
    keyboard_message_id BIGINT,
    task_id             BIGINT,
    note                TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX bot_requests_status_idx ON bot_requests (status);
CREATE INDEX bot_requests_user_idx ON bot_requests (telegram_id);

-- What the bot has told about a task (its one status message) and which of its results it has sent: each result
-- once, also across restarts. 'finished' once the last word about the task is said.
CREATE TABLE bot_tasks (
    task_id           BIGINT PRIMARY KEY,
    request_id        BIGINT NOT NULL,
    telegram_id       BIGINT NOT NULL,
    chat_id           BIGINT NOT NULL,
    lang              TEXT   NOT NULL,
    status_message_id BIGINT,
    status_text       TEXT,
    edited_at         BIGINT,
    sent              TEXT   NOT NULL DEFAULT '[]',
    finished          BIGINT NOT NULL DEFAULT 0 CHECK (finished IN (0, 1)),
    -- Bumped when the user retries the task: writes of a pass that read an older round are ignored.
    round             BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL
);
CREATE INDEX bot_tasks_finished_idx ON bot_tasks (finished);

-- An admin's /broadcast: sent to users in telegram_id order; 'cursor' is the last id done, so a restart resumes.
CREATE TABLE bot_broadcasts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    admin_id    BIGINT NOT NULL,
    text        TEXT   NOT NULL,
    status      TEXT   NOT NULL CHECK (status IN ('running', 'done')),
    cursor      BIGINT NOT NULL DEFAULT 0,
    delivered   BIGINT NOT NULL DEFAULT 0,
    blocked     BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    finished_at BIGINT
);

-- Small named values (the last system log an alert was sent for).
CREATE TABLE bot_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
