//! The Telegram bot's tables: handled updates, per-user chat state, requests (media waiting for options or being
//! checked), what has been told and sent about each task, broadcasts, and admin statistics. The bot crate owns the
//! meaning; this module owns the SQL (both databases).

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::error::{Result, StoreError};
use crate::queue::TaskRow;
use crate::store::Store;

/// Per-user bot state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BotChat {
    pub telegram_id: i64,
    pub chat_id: i64,
    /// Chosen with /lang; `None`: from the user's Telegram language.
    pub lang: Option<String>,
    /// The /settings defaults (JSON).
    pub settings: String,
    pub last_seen_at: i64,
}

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestStatus {
    Draft,
    Submitted,
    Queued,
    Refused,
    Dropped,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Draft => "draft",
            RequestStatus::Submitted => "submitted",
            RequestStatus::Queued => "queued",
            RequestStatus::Refused => "refused",
            RequestStatus::Dropped => "dropped",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "draft" => RequestStatus::Draft,
            "submitted" => RequestStatus::Submitted,
            "queued" => RequestStatus::Queued,
            "refused" => RequestStatus::Refused,
            "dropped" => RequestStatus::Dropped,
            other => {
                return Err(StoreError::InvalidInput(format!(
                    "unknown request status {other:?}"
                )))
            }
        })
    }
}

/// A piece of media (or a link) and the options chosen for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BotRequest {
    pub id: i64,
    pub telegram_id: i64,
    pub chat_id: i64,
    pub update_id: Option<i64>,
    /// JSON: what to process.
    pub source: String,
    /// JSON: the options.
    pub options: String,
    pub status: RequestStatus,
    pub keyboard_message_id: Option<i64>,
    pub task_id: Option<i64>,
    pub note: Option<String>,
    /// The Telegram media group (album) the media came in, if any.
    pub media_group: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewRequest {
    pub telegram_id: i64,
    pub chat_id: i64,
    /// The update that made it: inserting twice for one update returns the first request.
    pub update_id: Option<i64>,
    pub source: String,
    pub options: String,
    /// Submitted at once (options given) instead of a draft waiting for its keyboard.
    pub submitted: bool,
    /// The Telegram media group (album) the media came in.
    pub media_group: Option<String>,
}

/// What the bot has told and sent about a task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BotTask {
    pub task_id: i64,
    pub request_id: i64,
    pub telegram_id: i64,
    pub chat_id: i64,
    pub lang: String,
    pub status_message_id: Option<i64>,
    pub status_text: Option<String>,
    pub edited_at: Option<i64>,
    /// JSON list of the result items already sent.
    pub sent: Vec<String>,
    pub finished: bool,
    /// Bumped by a retry: writes made for an older round are ignored.
    pub round: i64,
    pub created_at: i64,
    /// The album the task belongs to and its place in it (1-based), for a file sent in an album.
    pub album: Option<(i64, i64)>,
}

/// Several files sent together (one media group), reported together in one status message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BotAlbum {
    pub id: i64,
    pub telegram_id: i64,
    pub chat_id: i64,
    pub media_group: String,
    pub lang: String,
    pub status_message_id: Option<i64>,
    pub status_text: Option<String>,
    pub finished: bool,
    /// Bumped by every reopening: closing with an older generation does nothing.
    pub generation: i64,
    /// The user cancelled the album: files arriving later are dropped.
    pub cancelled: bool,
    pub created_at: i64,
}

/// One file of an album: its request, and its task once queued (with what the bot has sent of it).
#[derive(Debug, Clone, PartialEq)]
pub struct AlbumItem {
    pub request: BotRequest,
    pub task: Option<TaskRow>,
    pub followed: Option<BotTask>,
}

/// An admin's broadcast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Broadcast {
    pub id: i64,
    pub admin_id: i64,
    pub text: String,
    pub done: bool,
    pub cursor: i64,
    pub delivered: i64,
    pub blocked: i64,
    pub failed: i64,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

/// Numbers for the admin's /stats.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct BotStats {
    pub users: i64,
    pub paid_users: i64,
    /// Tasks created since the start of the UTC day, by status.
    pub tasks_today: Vec<(String, i64)>,
    pub failures_24h: i64,
}

const REQUEST_COLUMNS: &str = "id, telegram_id, chat_id, update_id, source, options, status, \
     keyboard_message_id, task_id, note, media_group, created_at, updated_at";
const BOT_TASK_COLUMNS: &str =
    "task_id, request_id, telegram_id, chat_id, lang, status_message_id, \
     status_text, edited_at, sent, finished, round, created_at, album_id, album_item";
const ALBUM_COLUMNS: &str =
    "id, telegram_id, chat_id, media_group, lang, status_message_id, status_text, \
     finished, generation, cancelled, created_at";
const BROADCAST_COLUMNS: &str =
    "id, admin_id, text, status, cursor, delivered, blocked, failed, created_at, finished_at";

fn chat_from_row(row: &AnyRow) -> Result<BotChat> {
    Ok(BotChat {
        telegram_id: row.try_get("telegram_id")?,
        chat_id: row.try_get("chat_id")?,
        lang: row.try_get("lang")?,
        settings: row.try_get("settings")?,
        last_seen_at: row.try_get("last_seen_at")?,
    })
}

fn request_from_row(row: &AnyRow) -> Result<BotRequest> {
    Ok(BotRequest {
        id: row.try_get("id")?,
        telegram_id: row.try_get("telegram_id")?,
        chat_id: row.try_get("chat_id")?,
        update_id: row.try_get("update_id")?,
        source: row.try_get("source")?,
        options: row.try_get("options")?,
        status: RequestStatus::parse(&row.try_get::<String, _>("status")?)?,
        keyboard_message_id: row.try_get("keyboard_message_id")?,
        task_id: row.try_get("task_id")?,
        note: row.try_get("note")?,
        media_group: row.try_get("media_group")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn bot_task_from_row(row: &AnyRow) -> Result<BotTask> {
    let sent: String = row.try_get("sent")?;
    Ok(BotTask {
        task_id: row.try_get("task_id")?,
        request_id: row.try_get("request_id")?,
        telegram_id: row.try_get("telegram_id")?,
        chat_id: row.try_get("chat_id")?,
        lang: row.try_get("lang")?,
        status_message_id: row.try_get("status_message_id")?,
        status_text: row.try_get("status_text")?,
        edited_at: row.try_get("edited_at")?,
        sent: serde_json::from_str(&sent).unwrap_or_default(),
        finished: row.try_get::<i64, _>("finished")? != 0,
        round: row.try_get("round")?,
        created_at: row.try_get("created_at")?,
        album: match (
            row.try_get::<Option<i64>, _>("album_id")?,
            row.try_get::<Option<i64>, _>("album_item")?,
        ) {
            (Some(a), Some(i)) => Some((a, i)),
            _ => None,
        },
    })
}

fn album_from_row(row: &AnyRow) -> Result<BotAlbum> {
    Ok(BotAlbum {
        id: row.try_get("id")?,
        telegram_id: row.try_get("telegram_id")?,
        chat_id: row.try_get("chat_id")?,
        media_group: row.try_get("media_group")?,
        lang: row.try_get("lang")?,
        status_message_id: row.try_get("status_message_id")?,
        status_text: row.try_get("status_text")?,
        finished: row.try_get::<i64, _>("finished")? != 0,
        generation: row.try_get("generation")?,
        cancelled: row.try_get::<i64, _>("cancelled")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

fn broadcast_from_row(row: &AnyRow) -> Result<Broadcast> {
    Ok(Broadcast {
        id: row.try_get("id")?,
        admin_id: row.try_get("admin_id")?,
        text: row.try_get("text")?,
        done: row.try_get::<String, _>("status")? == "done",
        cursor: row.try_get("cursor")?,
        delivered: row.try_get("delivered")?,
        blocked: row.try_get("blocked")?,
        failed: row.try_get("failed")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

impl Store {
    // ----------------------------------------------------------------------------- updates

    /// True when update `update_id` was handled already (a redelivery after a restart).
    pub async fn bot_update_handled(&self, update_id: i64) -> Result<bool> {
        let n: Option<i64> =
            sqlx::query_scalar("SELECT update_id FROM bot_updates WHERE update_id = $1")
                .bind(update_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(n.is_some())
    }

    /// Records update `update_id` as handled (again: no effect).
    pub async fn bot_mark_update(&self, update_id: i64, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO bot_updates (update_id, handled_at) VALUES ($1, $2) \
             ON CONFLICT (update_id) DO NOTHING",
        )
        .bind(update_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The highest handled update id: getUpdates resumes after it.
    pub async fn bot_last_update(&self) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(update_id) FROM bot_updates")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Forgets handled updates older than `cutoff` but the newest (Telegram keeps unconfirmed updates 24 h).
    pub async fn bot_prune_updates(&self, cutoff: i64) -> Result<u64> {
        let r = sqlx::query(
            "DELETE FROM bot_updates WHERE handled_at < $1 \
             AND update_id < (SELECT MAX(update_id) FROM bot_updates)",
        )
        .bind(cutoff)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    // ----------------------------------------------------------------------------- chats

    /// The user's bot state, created on first contact; refreshes the chat id and last-seen time.
    pub async fn bot_chat_touch(
        &self,
        telegram_id: i64,
        chat_id: i64,
        now: i64,
    ) -> Result<BotChat> {
        let row = sqlx::query(
            "INSERT INTO bot_chats (telegram_id, chat_id, last_seen_at) VALUES ($1, $2, $3) \
             ON CONFLICT (telegram_id) DO UPDATE SET chat_id = excluded.chat_id, \
               last_seen_at = excluded.last_seen_at \
             RETURNING telegram_id, chat_id, lang, settings, last_seen_at",
        )
        .bind(telegram_id)
        .bind(chat_id)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        chat_from_row(&row)
    }

    /// The user's bot state, if they ever wrote.
    pub async fn bot_chat(&self, telegram_id: i64) -> Result<Option<BotChat>> {
        let row = sqlx::query(
            "SELECT telegram_id, chat_id, lang, settings, last_seen_at FROM bot_chats \
             WHERE telegram_id = $1",
        )
        .bind(telegram_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(chat_from_row).transpose()
    }

    /// Sets the language chosen with /lang.
    pub async fn bot_chat_set_lang(&self, telegram_id: i64, lang: &str) -> Result<()> {
        sqlx::query("UPDATE bot_chats SET lang = $2 WHERE telegram_id = $1")
            .bind(telegram_id)
            .bind(lang)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sets the /settings defaults (JSON).
    pub async fn bot_chat_set_settings(&self, telegram_id: i64, settings: &str) -> Result<()> {
        sqlx::query("UPDATE bot_chats SET settings = $2 WHERE telegram_id = $1")
            .bind(telegram_id)
            .bind(settings)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Chats after `after` (by telegram id), for a broadcast: `(telegram_id, chat_id)`.
    pub async fn bot_chats_after(&self, after: i64, limit: i64) -> Result<Vec<(i64, i64)>> {
        let rows = sqlx::query(
            "SELECT telegram_id, chat_id FROM bot_chats WHERE telegram_id > $1 \
             ORDER BY telegram_id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("telegram_id")?, r.try_get("chat_id")?)))
            .collect()
    }

    // ----------------------------------------------------------------------------- requests

    /// Inserts a request; for an update already seen, returns the request it made. `(request, inserted)`.
    pub async fn bot_request_insert(&self, r: &NewRequest, now: i64) -> Result<(BotRequest, bool)> {
        self.insert_request(r, None, now).await
    }

    /// Inserts a request refused at once with `note` (the reason told), in one statement: it is never seen
    /// submitted. For an update already seen, returns the request it made.
    pub async fn bot_request_insert_refused(
        &self,
        r: &NewRequest,
        note: &str,
        now: i64,
    ) -> Result<(BotRequest, bool)> {
        self.insert_request(r, Some(note), now).await
    }

    async fn insert_request(
        &self,
        r: &NewRequest,
        refused: Option<&str>,
        now: i64,
    ) -> Result<(BotRequest, bool)> {
        if let Some(update_id) = r.update_id {
            if let Some(existing) = self.bot_request_by_update(update_id).await? {
                return Ok((existing, false));
            }
        }
        let sql = format!(
            "INSERT INTO bot_requests (telegram_id, chat_id, update_id, source, options, status, \
               media_group, created_at, updated_at, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) \
             RETURNING {REQUEST_COLUMNS}"
        );
        let status = if refused.is_some() {
            RequestStatus::Refused
        } else if r.submitted {
            RequestStatus::Submitted
        } else {
            RequestStatus::Draft
        };
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(r.telegram_id)
            .bind(r.chat_id)
            .bind(r.update_id)
            .bind(r.source.as_str())
            .bind(r.options.as_str())
            .bind(status.as_str())
            .bind(r.media_group.as_deref())
            .bind(now)
            .bind(refused)
            .fetch_one(&self.pool)
            .await?;
        Ok((request_from_row(&row)?, true))
    }

    async fn bot_request_by_update(&self, update_id: i64) -> Result<Option<BotRequest>> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM bot_requests WHERE update_id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(update_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// One request.
    pub async fn bot_request(&self, id: i64) -> Result<Option<BotRequest>> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM bot_requests WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// Requests submitted and not yet checked, oldest first (the intake's work).
    pub async fn bot_requests_submitted(&self, limit: i64) -> Result<Vec<BotRequest>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM bot_requests WHERE status = 'submitted' ORDER BY id LIMIT $1"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(request_from_row).collect()
    }

    /// Sets a draft's options; false unless the request is a draft of `telegram_id`.
    pub async fn bot_request_set_options(
        &self,
        id: i64,
        telegram_id: i64,
        options: &str,
        now: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE bot_requests SET options = $3, updated_at = $4 \
             WHERE id = $1 AND telegram_id = $2 AND status = 'draft'",
        )
        .bind(id)
        .bind(telegram_id)
        .bind(options)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Moves a draft of `telegram_id` on: to `submitted` (start) or `dropped`. False when it is not such a draft
    /// (started already, someone else's, unknown).
    pub async fn bot_request_advance(
        &self,
        id: i64,
        telegram_id: i64,
        to: RequestStatus,
        now: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE bot_requests SET status = $3, updated_at = $4 \
             WHERE id = $1 AND telegram_id = $2 AND status = 'draft'",
        )
        .bind(id)
        .bind(telegram_id)
        .bind(to.as_str())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Ends a submitted request: `queued` with its task, or `refused` with the reason told.
    pub async fn bot_request_finish(
        &self,
        id: i64,
        to: RequestStatus,
        task_id: Option<i64>,
        note: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE bot_requests SET status = $2, task_id = $3, note = $4, updated_at = $5 \
             WHERE id = $1 AND status = 'submitted'",
        )
        .bind(id)
        .bind(to.as_str())
        .bind(task_id)
        .bind(note)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Remembers the message that shows a draft's keyboard.
    pub async fn bot_request_set_keyboard(&self, id: i64, message_id: i64) -> Result<()> {
        sqlx::query("UPDATE bot_requests SET keyboard_message_id = $2 WHERE id = $1")
            .bind(id)
            .bind(message_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ----------------------------------------------------------------------------- albums

    /// The requests of a user's media group (album), in the order they came.
    pub async fn bot_group(&self, telegram_id: i64, media_group: &str) -> Result<Vec<BotRequest>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM bot_requests WHERE telegram_id = $1 AND media_group = $2 ORDER BY id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(telegram_id)
            .bind(media_group)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(request_from_row).collect()
    }

    /// Moves the drafts of a user's media group on together: to `submitted` with `options` (the album started), or
    /// to `dropped`. Returns how many moved.
    pub async fn bot_group_advance(
        &self,
        telegram_id: i64,
        media_group: &str,
        to: RequestStatus,
        options: &str,
        now: i64,
    ) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE bot_requests SET status = $3, options = $4, updated_at = $5 \
             WHERE telegram_id = $1 AND media_group = $2 AND status = 'draft'",
        )
        .bind(telegram_id)
        .bind(media_group)
        .bind(to.as_str())
        .bind(options)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Drops the files of a user's media group not queued yet (drafts and files being checked): the album was
    /// cancelled. Returns how many.
    pub async fn bot_group_drop(
        &self,
        telegram_id: i64,
        media_group: &str,
        now: i64,
    ) -> Result<u64> {
        let r = sqlx::query(
            "UPDATE bot_requests SET status = 'dropped', updated_at = $3 \
             WHERE telegram_id = $1 AND media_group = $2 AND status IN ('draft', 'submitted')",
        )
        .bind(telegram_id)
        .bind(media_group)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Moves one draft on with the options given (a file joining an album that has started already).
    pub async fn bot_request_advance_with(
        &self,
        id: i64,
        to: RequestStatus,
        options: &str,
        now: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE bot_requests SET status = $2, options = $3, updated_at = $4 \
             WHERE id = $1 AND status = 'draft'",
        )
        .bind(id)
        .bind(to.as_str())
        .bind(options)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The album of a user's media group, made on first use and (re)opened: it has news to tell (a file started,
    /// joined or queued). `message`: its status message, when it has none yet (one statement, so that a notifier
    /// pass never sees the album without the message it is to have).
    pub async fn bot_album_open(
        &self,
        telegram_id: i64,
        chat_id: i64,
        media_group: &str,
        lang: &str,
        message: Option<i64>,
        now: i64,
    ) -> Result<BotAlbum> {
        sqlx::query(
            "INSERT INTO bot_albums (telegram_id, chat_id, media_group, lang, status_message_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (telegram_id, media_group) DO UPDATE SET \
               finished = 0, generation = bot_albums.generation + 1, \
               status_message_id = COALESCE(bot_albums.status_message_id, excluded.status_message_id)",
        )
        .bind(telegram_id)
        .bind(chat_id)
        .bind(media_group)
        .bind(lang)
        .bind(message)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.bot_album_find(telegram_id, media_group)
            .await?
            .ok_or_else(|| StoreError::InvalidState(format!("album {media_group:?} vanished")))
    }

    /// The album of a user's media group, if it has one.
    pub async fn bot_album_find(
        &self,
        telegram_id: i64,
        media_group: &str,
    ) -> Result<Option<BotAlbum>> {
        let sql = format!(
            "SELECT {ALBUM_COLUMNS} FROM bot_albums WHERE telegram_id = $1 AND media_group = $2"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(telegram_id)
            .bind(media_group)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(album_from_row).transpose()
    }

    /// Marks an album cancelled by its user.
    pub async fn bot_album_cancel(&self, id: i64) -> Result<()> {
        sqlx::query("UPDATE bot_albums SET cancelled = 1 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One album.
    pub async fn bot_album(&self, id: i64) -> Result<Option<BotAlbum>> {
        let sql = format!("SELECT {ALBUM_COLUMNS} FROM bot_albums WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(album_from_row).transpose()
    }

    /// Albums with news still to tell, oldest first.
    pub async fn bot_albums_open(&self, limit: i64) -> Result<Vec<BotAlbum>> {
        let sql = format!(
            "SELECT {ALBUM_COLUMNS} FROM bot_albums WHERE finished = 0 ORDER BY id LIMIT $1"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(album_from_row).collect()
    }

    /// The files of an album in the order they came (dropped ones too), each with its task and what was sent.
    pub async fn bot_album_items(&self, album: &BotAlbum) -> Result<Vec<AlbumItem>> {
        let mut out = vec![];
        for request in self
            .bot_group(album.telegram_id, &album.media_group)
            .await?
        {
            let (task, followed) = match request.task_id {
                Some(id) => (self.get_task(id).await?, self.bot_task(id).await?),
                None => (None, None),
            };
            out.push(AlbumItem {
                request,
                task,
                followed,
            });
        }
        Ok(out)
    }

    /// Records the album's status message and its text; `finished` when it is the last word — unless the album was
    /// reopened since `generation` was read (a file joined, a task was retried): then it stays open.
    pub async fn bot_album_status(
        &self,
        id: i64,
        generation: i64,
        message_id: Option<i64>,
        text: Option<&str>,
        finished: bool,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE bot_albums SET status_message_id = COALESCE($2, status_message_id), \
               status_text = COALESCE($3, status_text), \
               finished = CASE WHEN generation = $5 THEN $4 ELSE finished END WHERE id = $1",
        )
        .bind(id)
        .bind(message_id)
        .bind(text)
        .bind(i64::from(finished))
        .bind(generation)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ----------------------------------------------------------------------------- tasks told about

    /// Starts following task `task_id`, made for `request`, in the request's chat (again: no effect). `album`: the
    /// album and the file's place in it.
    pub async fn bot_task_insert(
        &self,
        task_id: i64,
        request: &BotRequest,
        lang: &str,
        album: Option<(i64, i64)>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO bot_tasks (task_id, request_id, telegram_id, chat_id, lang, created_at, album_id, \
               album_item) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (task_id) DO NOTHING",
        )
        .bind(task_id)
        .bind(request.id)
        .bind(request.telegram_id)
        .bind(request.chat_id)
        .bind(lang)
        .bind(now)
        .bind(album.map(|a| a.0))
        .bind(album.map(|a| a.1))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One followed task.
    pub async fn bot_task(&self, task_id: i64) -> Result<Option<BotTask>> {
        let sql = format!("SELECT {BOT_TASK_COLUMNS} FROM bot_tasks WHERE task_id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(task_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(bot_task_from_row).transpose()
    }

    /// Followed tasks not finished, with their task rows, oldest first.
    pub async fn bot_tasks_open(&self, limit: i64) -> Result<Vec<(BotTask, TaskRow)>> {
        let sql = format!(
            "SELECT {BOT_TASK_COLUMNS} FROM bot_tasks WHERE finished = 0 ORDER BY task_id LIMIT $1"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let b = bot_task_from_row(row)?;
            match self.get_task(b.task_id).await? {
                Some(t) => out.push((b, t)),
                // The task is gone (deleted by an operator): nothing more to say about it.
                None => self.bot_task_finish(b.task_id, b.round).await?,
            }
        }
        Ok(out)
    }

    /// Records the status message shown for a task and its text.
    pub async fn bot_task_status(
        &self,
        task_id: i64,
        round: i64,
        message_id: i64,
        text: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE bot_tasks SET status_message_id = $2, status_text = $3, edited_at = $4 \
             WHERE task_id = $1 AND round = $5",
        )
        .bind(task_id)
        .bind(message_id)
        .bind(text)
        .bind(now)
        .bind(round)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that result `item` of a task was sent.
    pub async fn bot_task_sent(&self, task_id: i64, round: i64, item: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT sent FROM bot_tasks WHERE task_id = $1 AND round = $2{}",
            self.for_update()
        );
        let Some(sent): Option<String> = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(task_id)
            .bind(round)
            .fetch_optional(&mut *tx)
            .await?
        else {
            // Retried meanwhile: this pass's news is stale.
            return Ok(());
        };
        let mut list: Vec<String> = serde_json::from_str(&sent).unwrap_or_default();
        if !list.iter().any(|s| s == item) {
            list.push(item.to_owned());
        }
        sqlx::query("UPDATE bot_tasks SET sent = $2 WHERE task_id = $1")
            .bind(task_id)
            .bind(serde_json::to_string(&list).unwrap_or_else(|_| "[]".into()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Nothing more will be said about this round of a task.
    pub async fn bot_task_finish(&self, task_id: i64, round: i64) -> Result<()> {
        sqlx::query("UPDATE bot_tasks SET finished = 1 WHERE task_id = $1 AND round = $2")
            .bind(task_id)
            .bind(round)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A user's "try again" on a failed task: the task is queued again (attempts reset) and the bot follows it
    /// afresh (a new status message, results not yet sent). False when the task is not failed.
    pub async fn retry_for_bot(&self, task_id: i64, now: i64) -> Result<bool> {
        // One transaction: the task queued again, the bot following it afresh and its album (if any) reopened —
        // never one without the others (a crash between would lose the retried task's news, or tell the failure
        // again).
        let mut tx = self.begin_write().await?;
        match self.retry_in(&mut tx, task_id, now, "the user").await {
            Ok(crate::queue::TaskStatus::Failed) => {}
            Ok(_) | Err(StoreError::InvalidState(_) | StoreError::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        sqlx::query(
            "UPDATE bot_tasks SET finished = 0, sent = '[]', status_message_id = NULL, \
               status_text = NULL, edited_at = NULL, round = round + 1 WHERE task_id = $1",
        )
        .bind(task_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE bot_albums SET finished = 0, generation = generation + 1 \
             WHERE id = (SELECT album_id FROM bot_tasks WHERE task_id = $1)",
        )
        .bind(task_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The task created with idempotency key `key`, if any.
    pub async fn task_id_by_key(&self, key: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM tasks WHERE idem_key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Tasks of a user, newest first.
    pub async fn user_tasks(&self, telegram_id: i64, limit: i64) -> Result<Vec<TaskRow>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT t.id FROM tasks t JOIN users u ON u.id = t.user_id \
             WHERE u.telegram_id = $1 ORDER BY t.id DESC LIMIT $2",
        )
        .bind(telegram_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(t) = self.get_task(id).await? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// The place of a queued task in the queue: 1 when it is next. `None` when it is not queued.
    pub async fn queue_position(&self, task_id: i64) -> Result<Option<i64>> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) + 1 FROM tasks q, tasks t \
             WHERE t.id = $1 AND t.status = 'queued' AND q.status = 'queued' \
               AND (q.sort_key < t.sort_key OR (q.sort_key = t.sort_key AND q.id < t.id)) \
             GROUP BY t.id",
        )
        .bind(task_id)
        .fetch_optional(&self.pool)
        .await?;
        if n.is_some() {
            return Ok(n);
        }
        // COUNT over no earlier task yields no group: the task is first when it is queued at all.
        let queued: Option<i64> =
            sqlx::query_scalar("SELECT id FROM tasks WHERE id = $1 AND status = 'queued'")
                .bind(task_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(queued.map(|_| 1))
    }

    // ----------------------------------------------------------------------------- broadcasts

    /// Starts a broadcast.
    pub async fn broadcast_create(&self, admin_id: i64, text: &str, now: i64) -> Result<Broadcast> {
        let sql = format!(
            "INSERT INTO bot_broadcasts (admin_id, text, status, created_at) \
             VALUES ($1, $2, 'running', $3) RETURNING {BROADCAST_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(admin_id)
            .bind(text)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        broadcast_from_row(&row)
    }

    /// Broadcasts still running, oldest first.
    pub async fn broadcasts_running(&self) -> Result<Vec<Broadcast>> {
        let sql = format!(
            "SELECT {BROADCAST_COLUMNS} FROM bot_broadcasts WHERE status = 'running' ORDER BY id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(broadcast_from_row).collect()
    }

    /// Records progress: the last user done and the counts so far.
    pub async fn broadcast_progress(&self, b: &Broadcast) -> Result<()> {
        sqlx::query(
            "UPDATE bot_broadcasts SET cursor = $2, delivered = $3, blocked = $4, failed = $5 \
             WHERE id = $1",
        )
        .bind(b.id)
        .bind(b.cursor)
        .bind(b.delivered)
        .bind(b.blocked)
        .bind(b.failed)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a broadcast done; false when it was done already (the report is sent once).
    pub async fn broadcast_finish(&self, id: i64, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE bot_broadcasts SET status = 'done', finished_at = $2 \
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    // ----------------------------------------------------------------------------- state and stats

    /// A named value of the bot's.
    pub async fn bot_state_get(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM bot_state WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Sets a named value.
    pub async fn bot_state_set(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO bot_state (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Users, paid users, today's tasks by status and failures in the last 24 h.
    pub async fn bot_stats(&self, now: i64) -> Result<BotStats> {
        let day_start = crate::store::utc_day(now) * 86_400_000;
        let users: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM users")
            .fetch_one(&self.pool)
            .await?;
        let paid_users: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM users WHERE tier <> 'free' \
             AND (tier_expires_at IS NULL OR tier_expires_at > $1)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let rows = sqlx::query(
            "SELECT status, CAST(COUNT(*) AS BIGINT) AS n FROM tasks WHERE created_at >= $1 \
             GROUP BY status ORDER BY status",
        )
        .bind(day_start)
        .fetch_all(&self.pool)
        .await?;
        let tasks_today = rows
            .iter()
            .map(|r| Ok((r.try_get::<String, _>("status")?, r.try_get::<i64, _>("n")?)))
            .collect::<Result<Vec<_>>>()?;
        let failures_24h: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM tasks WHERE status = 'failed' AND finished_at >= $1",
        )
        .bind(now - 86_400_000)
        .fetch_one(&self.pool)
        .await?;
        Ok(BotStats {
            users,
            paid_users,
            tasks_today,
            failures_24h,
        })
    }
}
