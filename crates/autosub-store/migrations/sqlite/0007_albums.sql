-- Albums: several videos sent together (one Telegram media group) become one task each and are reported together.
-- A request remembers its group; the first request of a user's group leads it (its keyboard or caption chooses the
-- options of all). The album keeps its one status message; each followed task knows its album and its place in it.
ALTER TABLE bot_requests ADD COLUMN media_group TEXT;
CREATE INDEX bot_requests_group_idx ON bot_requests (telegram_id, media_group);

CREATE TABLE bot_albums (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    telegram_id       BIGINT NOT NULL,
    chat_id           BIGINT NOT NULL,
    media_group       TEXT   NOT NULL,
    lang              TEXT   NOT NULL,
    status_message_id BIGINT,
    status_text       TEXT,
    -- 1 once every file of the album is told about (a retry of one of its tasks, or a file joining, opens it again).
    finished          BIGINT NOT NULL DEFAULT 0 CHECK (finished IN (0, 1)),
    -- Bumped by every reopening: a pass that read an older generation cannot close the album.
    generation        BIGINT NOT NULL DEFAULT 0,
    -- 1 once the user cancelled the album: a file arriving later is dropped.
    cancelled         BIGINT NOT NULL DEFAULT 0 CHECK (cancelled IN (0, 1)),
    created_at        BIGINT NOT NULL,
    UNIQUE (telegram_id, media_group)
);
CREATE INDEX bot_albums_finished_idx ON bot_albums (finished);

ALTER TABLE bot_tasks ADD COLUMN album_id BIGINT;
ALTER TABLE bot_tasks ADD COLUMN album_item BIGINT;
