//! Telling users how their tasks go: ONE status message per task, edited with the queue position, then stage and
//! percent (at most one edit per 3 s per chat; nothing while Telegram's flood control asks to wait); then the
//! results, each sent once (every sent item is recorded before the next is sent, so a restarted bot continues where
//! it stopped instead of sending the video again). A result over the upload limit is sent as a download link.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use autosub_store::{now_ms, AlbumItem, BotAlbum, BotTask, RequestStatus, TaskRow, TaskStatus};
use teloxide_core::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use tokio::sync::watch;

use crate::handle::result_buttons;
use crate::i18n::{t, Lang};
use crate::options::Press;
use crate::{Ctx, TgError, EDIT_EVERY};

/// Sends that fail this many times are given up (logged for the operator).
const MAX_SEND_FAILURES: u32 = 5;

/// Runs until `stop`: a pass every 500 ms over the tasks not finished.
pub async fn notify_loop(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let mut failures: HashMap<(i64, String), u32> = HashMap::new();
    let mut notices_unrecorded = std::collections::HashSet::new();
    loop {
        if crate::pause(&mut stop, Duration::from_millis(500)).await {
            return;
        }
        if ctx.tg.paused() {
            continue;
        }
        let open = match ctx.store.bot_tasks_open(500).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!("notify: {e}");
                continue;
            }
        };
        for (bt, task) in open {
            if *stop.borrow() || ctx.tg.paused() {
                break;
            }
            if let Err((item, e)) = step(&ctx, &bt, &task).await {
                match e {
                    Step::Telegram(TgError::RetryAfter(_)) => break,
                    Step::Storage(e) => {
                        tracing::warn!(task = bt.task_id, item = %item, "notify: {e}; tried again later");
                    }
                    Step::Telegram(TgError::Blocked) => {
                        // Nobody to tell: stop following the task.
                        let _ = ctx.store.bot_task_finish(bt.task_id, bt.round).await;
                    }
                    e => {
                        let n = failures.entry((bt.task_id, item.clone())).or_default();
                        *n += 1;
                        tracing::warn!(task = bt.task_id, item = %item, "notify: attempt {n}: {e}");
                        if *n >= MAX_SEND_FAILURES {
                            failures.remove(&(bt.task_id, item.clone()));
                            let msg = format!(
                                "task {}: could not send {item} to the user: {e}",
                                bt.task_id
                            );
                            let _ = ctx
                                .store
                                .log(
                                    autosub_store::Level::Error,
                                    "bot",
                                    Some(bt.task_id),
                                    &msg,
                                    now_ms(),
                                )
                                .await;
                            let _ = ctx.store.bot_task_sent(bt.task_id, bt.round, &item).await;
                        }
                    }
                }
            }
        }
        if !*stop.borrow() && !ctx.tg.paused() {
            albums_pass(&ctx, &mut failures).await;
        }
        if !*stop.borrow() {
            if let Err(e) = crate::pay::deliver_notices(&ctx, &mut notices_unrecorded).await {
                tracing::warn!("notices: {e}");
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Step {
    #[error("{0}")]
    Telegram(#[from] TgError),
    #[error("{0}")]
    Store(#[from] autosub_store::StoreError),
    /// The shared store did not answer: tried again later, not counted as a failed send.
    #[error("{0}")]
    Storage(String),
    /// The result is not in the shared store (any more).
    #[error("{0}")]
    Gone(String),
}

type StepResult = Result<(), (String, Step)>;

fn at<E: Into<Step>>(item: &str) -> impl FnOnce(E) -> (String, Step) + '_ {
    move |e| (item.to_owned(), e.into())
}

fn cancel_button(lang: Lang, task: i64) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback(
        t(lang, "btn_cancel", &[]),
        Press::Cancel(task).data(),
    )]])
}

fn stage_text(lang: Lang, stage: &str) -> String {
    let key = format!("stage_{stage}");
    let s = t(lang, &key, &[]);
    if s == key {
        stage.replace('_', " ")
    } else {
        s
    }
}

/// The status text of a waiting or running task.
fn status_text(lang: Lang, task: &TaskRow, position: Option<i64>) -> String {
    let id = task.id.to_string();
    match task.status {
        TaskStatus::Processing => match (&task.progress_stage, task.progress_percent) {
            (Some(stage), Some(p)) => t(
                lang,
                "running",
                &[
                    ("id", &id),
                    ("stage", &stage_text(lang, stage)),
                    (
                        "percent",
                        &format!("{}", p.clamp(0.0, 100.0).floor() as u32),
                    ),
                ],
            ),
            (Some(stage), None) => t(
                lang,
                "running_nopercent",
                &[("id", &id), ("stage", &stage_text(lang, stage))],
            ),
            _ => t(lang, "queued_soon", &[("id", &id)]),
        },
        _ => match position {
            Some(p) => t(lang, "queued", &[("id", &id), ("position", &p.to_string())]),
            None => t(lang, "queued_soon", &[("id", &id)]),
        },
    }
}

/// Whether a progress edit in `chat` may go now (and takes the slot).
fn may_edit(ctx: &Ctx, chat: i64) -> bool {
    let mut edits = ctx.edits.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    match edits.get(&chat) {
        Some(last) if now.duration_since(*last) < EDIT_EVERY => false,
        _ => {
            edits.insert(chat, now);
            if edits.len() > 10_000 {
                edits.retain(|_, t| now.duration_since(*t) < EDIT_EVERY);
            }
            true
        }
    }
}

/// A first status text went at once: the chat's next progress edit waits its turn after it.
fn take_edit_slot(ctx: &Ctx, chat: i64) {
    ctx.edits
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(chat, Instant::now());
}

async fn step(ctx: &Ctx, bt: &BotTask, task: &TaskRow) -> StepResult {
    let lang = Lang::from_code(Some(&bt.lang));
    if let Some((album, item)) = bt.album {
        return album_task_step(ctx, bt, task, lang, album, item).await;
    }
    match task.status {
        TaskStatus::Created => Ok(()),
        TaskStatus::Queued | TaskStatus::Processing => {
            let position = if task.status == TaskStatus::Queued {
                ctx.store
                    .queue_position(task.id)
                    .await
                    .map_err(at("status"))?
            } else {
                None
            };
            let text = status_text(lang, task, position);
            if bt.status_text.as_deref() == Some(text.as_str()) {
                return Ok(());
            }
            let markup = Some(cancel_button(lang, task.id));
            match bt.status_message_id {
                None => {
                    let mid = ctx
                        .tg
                        .send(bt.chat_id, &text, markup)
                        .await
                        .map_err(at("status"))?;
                    ctx.store
                        .bot_task_status(task.id, bt.round, mid, &text, now_ms())
                        .await
                        .map_err(at("status"))?;
                }
                Some(mid) => {
                    // The first text (replacing "checking the file") goes at once; later ones are rate-limited.
                    let first = bt.status_text.as_deref().is_none_or(str::is_empty);
                    if !first && !may_edit(ctx, bt.chat_id) {
                        return Ok(());
                    }
                    if first {
                        take_edit_slot(ctx, bt.chat_id);
                    }
                    ctx.tg
                        .edit(bt.chat_id, mid, &text, markup)
                        .await
                        .map_err(at("status"))?;
                    ctx.store
                        .bot_task_status(task.id, bt.round, mid, &text, now_ms())
                        .await
                        .map_err(at("status"))?;
                }
            }
            Ok(())
        }
        TaskStatus::Completed => deliver(ctx, bt, task, lang, None).await,
        TaskStatus::Failed => {
            let reason = task.error.clone().unwrap_or_else(|| "—".into());
            let text = t(
                lang,
                "failed",
                &[("id", &task.id.to_string()), ("reason", &reason)],
            );
            final_status(ctx, bt, &text, Some(result_buttons(lang, task.id, true))).await?;
            ctx.store
                .bot_task_finish(task.id, bt.round)
                .await
                .map_err(at("finish"))
        }
        TaskStatus::Cancelled => {
            let text = t(lang, "cancelled", &[("id", &task.id.to_string())]);
            final_status(ctx, bt, &text, None).await?;
            ctx.store
                .bot_task_finish(task.id, bt.round)
                .await
                .map_err(at("finish"))
        }
    }
}

/// Replaces the status message's text (or sends it) once, recorded as item "status".
async fn final_status(
    ctx: &Ctx,
    bt: &BotTask,
    text: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> StepResult {
    if bt.sent.iter().any(|s| s == "status") {
        return Ok(());
    }
    match bt.status_message_id {
        Some(mid) => match ctx.tg.edit(bt.chat_id, mid, text, markup.clone()).await {
            Ok(()) => {}
            // The status message is gone (deleted by the user): say it in a new one.
            Err(TgError::Api(_)) => {
                ctx.tg
                    .send(bt.chat_id, text, markup)
                    .await
                    .map_err(at("status"))?;
            }
            Err(e) => return Err(at("status")(e)),
        },
        None => {
            ctx.tg
                .send(bt.chat_id, text, markup)
                .await
                .map_err(at("status"))?;
        }
    }
    ctx.store
        .bot_task_sent(bt.task_id, bt.round, "status")
        .await
        .map_err(at("status"))
}

fn path_of(v: &serde_json::Value) -> Option<PathBuf> {
    v.as_str().map(PathBuf::from)
}

/// The caption of a result video: the language and what was done.
fn caption(lang: Lang, task: &TaskRow, outputs: &serde_json::Value) -> String {
    let mut what = vec![t(lang, "what_subtitles", &[])];
    if task.vertical_format {
        what.push(t(lang, "what_vertical", &[]));
    }
    if let Some(tr) = task.translate.as_deref().filter(|s| !s.is_empty()) {
        what.push(t(lang, "what_translated", &[("langs", tr)]));
    }
    if task.voiceover {
        what.push(t(lang, "what_voiceover", &[]));
    }
    let language = outputs["language"].as_str().unwrap_or("?");
    t(
        lang,
        "result_caption",
        &[("lang", language), ("what", &what.join(", "))],
    )
}

/// Sends a task's results. `label` ("2/3") for a file of an album: its results carry it, and the album's message
/// (not the task's) says it is done.
async fn deliver(
    ctx: &Ctx,
    bt: &BotTask,
    task: &TaskRow,
    lang: Lang,
    label: Option<&str>,
) -> StepResult {
    let outputs: serde_json::Value = task
        .outputs
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok())
        .unwrap_or_default();
    let id = task.id.to_string();
    if label.is_none() {
        final_status(ctx, bt, &t(lang, "done", &[("id", &id)]), None).await?;
    }
    let cap = match label {
        Some(l) => format!("{l} · {}", caption(lang, task, &outputs)),
        None => caption(lang, task, &outputs),
    };
    let sent = |item: &str| bt.sent.iter().any(|s| s == item);
    let record = |item: &'static str| async move {
        ctx.store
            .bot_task_sent(bt.task_id, bt.round, item)
            .await
            .map_err(at(item))
    };
    let buttons = Some(result_buttons(lang, task.id, false));
    // The video (or, for audio input with a voice-over, the audio), with the re-run button.
    let media = path_of(&outputs["video"]).or_else(|| path_of(&outputs["voiceover_audio"]));
    if let Some(recorded) = media.filter(|_| !sent("video")) {
        // The size first: a result too big to upload gets a link and is never fetched here.
        let (path, size) = sized(ctx, task.id, &recorded).await?;
        if size > ctx.cfg.upload_limit() {
            let text = match link_for(ctx, task.id, &path) {
                Some(url) => t(
                    lang,
                    "result_link",
                    &[
                        ("size", &(size / 1_000_000).to_string()),
                        ("limit", &(ctx.cfg.upload_limit() / 1_000_000).to_string()),
                        ("url", &url),
                    ],
                ),
                None => t(
                    lang,
                    "failed",
                    &[("id", &id), ("reason", "the video is too big to send")],
                ),
            };
            ctx.tg
                .send(bt.chat_id, &text, buttons.clone())
                .await
                .map_err(at("video"))?;
        } else if path_of(&outputs["video"]).is_some() {
            let path = here(ctx, task.id, "video", Some(recorded))
                .await?
                .unwrap_or(path);
            ctx.tg
                .send_video(bt.chat_id, &path, &cap, buttons.clone())
                .await
                .map_err(at("video"))?;
        } else {
            let path = here(ctx, task.id, "video", Some(recorded))
                .await?
                .unwrap_or(path);
            ctx.tg
                .send_document(bt.chat_id, &path, Some(&cap))
                .await
                .map_err(at("video"))?;
        }
        record("video").await?;
    }
    // The subtitles: the original's .srt, then each translation's.
    if let Some(p) = here(
        ctx,
        task.id,
        "srt",
        path_of(&outputs["files"]["srt"]).filter(|_| !sent("srt")),
    )
    .await?
    {
        send_file(ctx, bt, &p, "srt", label).await?;
    }
    if let Some(list) = outputs["translations"].as_array() {
        for tr in list {
            let l = tr["language"].as_str().unwrap_or("x");
            let item = format!("srt:{l}");
            if let Some(p) = here(
                ctx,
                task.id,
                &item,
                path_of(&tr["files"]["srt"]).filter(|_| !sent(&item)),
            )
            .await?
            {
                send_file(ctx, bt, &p, &item, label).await?;
            }
        }
    }
    ctx.store
        .bot_task_finish(task.id, bt.round)
        .await
        .map_err(at("finish"))
}

/// Where a result the worker recorded as `recorded` is (or goes) on this machine, and its size: this machine's copy,
/// else the shared store's object (not fetched), else the recorded path.
async fn sized(ctx: &Ctx, task: i64, recorded: &Path) -> Result<(PathBuf, u64), (String, Step)> {
    let Some(name) = recorded.file_name() else {
        return Ok((recorded.to_owned(), 0));
    };
    let local = autosub_service::storage::task_dir(&ctx.data_dir, task)
        .join("out")
        .join(name);
    if let Ok(m) = tokio::fs::metadata(&local).await {
        return Ok((local, m.len()));
    }
    match &ctx.shared {
        Some(s) => {
            let key = autosub_service::storage::Storage::task_key(
                task,
                &format!("out/{}", name.to_string_lossy()),
            );
            match s.size(&key).await {
                Ok(Some(n)) => Ok((local, n)),
                Ok(None) => Err((
                    "video".into(),
                    Step::Gone(format!("result of task {task} is not in the shared store")),
                )),
                Err(e) => Err((
                    "video".into(),
                    Step::Storage(format!("result of task {task} from the shared store: {e}")),
                )),
            }
        }
        None => {
            let n = tokio::fs::metadata(recorded).await.map_or(0, |m| m.len());
            Ok((recorded.to_owned(), n))
        }
    }
}

/// A result the worker recorded as `p`, as a file on this machine (fetched from the shared store when it is there).
async fn here(
    ctx: &Ctx,
    task: i64,
    item: &str,
    p: Option<PathBuf>,
) -> Result<Option<PathBuf>, (String, Step)> {
    let Some(p) = p else {
        return Ok(None);
    };
    autosub_service::storage::local_output(&ctx.data_dir, ctx.shared.as_ref(), task, &p)
        .await
        .map(Some)
        .map_err(|e| {
            let text = format!("result of task {task} from the shared store: {e}");
            let step = match e {
                autosub_service::storage::StorageError::NotFound(_) => Step::Gone(text),
                _ => Step::Storage(text),
            };
            (item.to_owned(), step)
        })
}

async fn send_file(
    ctx: &Ctx,
    bt: &BotTask,
    path: &Path,
    item: &str,
    label: Option<&str>,
) -> StepResult {
    ctx.tg
        .send_document(bt.chat_id, path, label)
        .await
        .map_err(at(item))?;
    ctx.store
        .bot_task_sent(bt.task_id, bt.round, item)
        .await
        .map_err(at(item))
}

/// A signed download link for a result too big to upload, when the HTTP server's public address is known.
fn link_for(ctx: &Ctx, task: i64, path: &Path) -> Option<String> {
    let base = ctx.public_url.as_deref()?;
    let rel = path
        .strip_prefix(autosub_service::storage::task_dir(&ctx.data_dir, task))
        .ok()?;
    let token = autosub_service::links::sign(
        ctx.cfg.token.expose().as_bytes(),
        task,
        &rel.to_string_lossy(),
        now_ms() + 24 * 3_600_000,
    );
    Some(format!("{}/d/{token}", base.trim_end_matches('/')))
}

// ------------------------------------------------------------------------------------------------------------- albums

/// A task that is one file of an album: no status message of its own (the album's tells how it goes); its results
/// are sent as it finishes, labelled with its place ("2/3"); a failure is said in a message of its own, with a retry.
async fn album_task_step(
    ctx: &Ctx,
    bt: &BotTask,
    task: &TaskRow,
    lang: Lang,
    album: i64,
    item: i64,
) -> StepResult {
    match task.status {
        TaskStatus::Created | TaskStatus::Queued | TaskStatus::Processing => Ok(()),
        TaskStatus::Completed => {
            // The album's size as it is now (a file may still join). A database error here is passing: the label
            // goes without the total rather than counting as a failed send of the video.
            let label = match album_size(ctx, album).await {
                Ok(size) => format!("{item}/{}", size.max(item)),
                Err(e) => {
                    tracing::warn!(task = task.id, "notify: album size: {e}");
                    item.to_string()
                }
            };
            deliver(ctx, bt, task, lang, Some(&label)).await
        }
        TaskStatus::Failed => {
            let reason = task.error.clone().unwrap_or_else(|| "—".into());
            let failed = t(
                lang,
                "failed",
                &[("id", &task.id.to_string()), ("reason", &reason)],
            );
            let text = t(
                lang,
                "album_item",
                &[("item", &item.to_string()), ("text", &failed)],
            );
            final_status(ctx, bt, &text, Some(result_buttons(lang, task.id, true))).await?;
            ctx.store
                .bot_task_finish(task.id, bt.round)
                .await
                .map_err(at("finish"))
        }
        // The album's message counts it.
        TaskStatus::Cancelled => ctx
            .store
            .bot_task_finish(task.id, bt.round)
            .await
            .map_err(at("finish")),
    }
}

/// How many files album `id` has (so far: a file may still join).
async fn album_size(ctx: &Ctx, id: i64) -> Result<i64, autosub_store::StoreError> {
    let Some(album) = ctx.store.bot_album(id).await? else {
        return Ok(0);
    };
    Ok(ctx
        .store
        .bot_group(album.telegram_id, &album.media_group)
        .await?
        .len() as i64)
}

/// One pass over the albums with news: each album's message is brought up to date.
async fn albums_pass(ctx: &Ctx, failures: &mut HashMap<(i64, String), u32>) {
    let albums = match ctx.store.bot_albums_open(200).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("notify: albums: {e}");
            return;
        }
    };
    for album in albums {
        if ctx.tg.paused() {
            return;
        }
        // Keyed apart from tasks' items (task ids are positive).
        let key = (-album.id, "album".to_owned());
        match album_step(ctx, &album).await {
            Ok(()) => {
                failures.remove(&key);
            }
            Err(Step::Telegram(TgError::RetryAfter(_))) => return,
            Err(Step::Telegram(TgError::Blocked)) => {
                let _ = ctx
                    .store
                    .bot_album_status(album.id, album.generation, None, None, true)
                    .await;
            }
            Err(e) => {
                let n = failures.entry(key.clone()).or_default();
                *n += 1;
                tracing::warn!(album = album.id, "notify: album message, attempt {n}: {e}");
                if *n >= MAX_SEND_FAILURES {
                    failures.remove(&key);
                    let msg = format!("album {}: could not tell the user: {e}", album.id);
                    let _ = ctx
                        .store
                        .log(autosub_store::Level::Error, "bot", None, &msg, now_ms())
                        .await;
                    let _ = ctx
                        .store
                        .bot_album_status(album.id, album.generation, None, None, true)
                        .await;
                }
            }
        }
    }
}

fn cancel_album_button(lang: Lang, album: i64) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback(
        t(lang, "btn_cancel_album", &[]),
        Press::CancelAlbum(album).data(),
    )]])
}

/// What an album's message says.
#[derive(Debug, PartialEq)]
struct AlbumReport {
    text: String,
    /// Files still being checked, waiting or running (the message offers to cancel them).
    open: bool,
    /// Nothing more to tell: every file ended and every result was sent.
    told: bool,
}

/// The album's message from its files: how many are done, running (with the first running file's stage and
/// percent), waiting, failed, not started and cancelled.
fn album_report(lang: Lang, items: &[AlbumItem]) -> AlbumReport {
    let (mut done, mut running, mut waiting, mut failed, mut refused, mut cancelled) =
        (0, 0, 0, 0, 0, 0);
    let mut progress = None;
    let mut open = false;
    let mut sent_all = true;
    for (i, it) in items.iter().enumerate() {
        match (it.request.status, &it.task) {
            (RequestStatus::Draft | RequestStatus::Submitted, _) => {
                waiting += 1;
                open = true;
            }
            (RequestStatus::Refused, _) => refused += 1,
            (RequestStatus::Queued, Some(task)) => {
                match task.status {
                    TaskStatus::Completed => done += 1,
                    TaskStatus::Failed => failed += 1,
                    TaskStatus::Cancelled => cancelled += 1,
                    TaskStatus::Created | TaskStatus::Queued => waiting += 1,
                    TaskStatus::Processing => {
                        running += 1;
                        if progress.is_none() {
                            progress = task.progress_stage.as_deref().map(|stage| {
                                let item = (i + 1).to_string();
                                let stage = stage_text(lang, stage);
                                match task.progress_percent {
                                    Some(p) => t(
                                        lang,
                                        "album_progress",
                                        &[
                                            ("item", &item),
                                            ("stage", &stage),
                                            (
                                                "percent",
                                                &format!("{}", p.clamp(0.0, 100.0).floor() as u32),
                                            ),
                                        ],
                                    ),
                                    None => t(
                                        lang,
                                        "album_progress_nopercent",
                                        &[("item", &item), ("stage", &stage)],
                                    ),
                                }
                            });
                        }
                    }
                }
                open |= !task.status.is_finished();
            }
            // Dropped after the album started: the user cancelled the album while it was being checked.
            (RequestStatus::Dropped, _) => cancelled += 1,
            // Queued, but the task is gone (deleted by an operator): nothing to count.
            (RequestStatus::Queued, None) => {}
        }
        if it.followed.as_ref().is_some_and(|f| !f.finished) {
            sent_all = false;
        }
    }
    let told = !open && sent_all;
    let mut lines = vec![t(lang, "album_title", &[("n", &items.len().to_string())])];
    for (key, n) in [
        ("album_done", done),
        ("album_running", running),
        ("album_waiting", waiting),
        ("album_failed", failed),
        ("album_refused", refused),
        ("album_cancelled", cancelled),
    ] {
        if n > 0 {
            let mut line = t(lang, key, &[("n", &n.to_string())]);
            if key == "album_running" {
                if let Some(p) = &progress {
                    line = format!("{line} ({p})");
                }
            }
            lines.push(line);
        }
    }
    if told {
        lines.push(t(lang, "album_finished", &[]));
    }
    AlbumReport {
        text: lines.join("\n"),
        open,
        told,
    }
}

/// Brings one album's message up to date (sent when it has none, else edited; progress edits rate-limited per chat
/// as a task's are), and closes the album once everything is told.
async fn album_step(ctx: &Ctx, album: &BotAlbum) -> Result<(), Step> {
    let items = ctx.store.bot_album_items(album).await?;
    if items.is_empty() {
        return Ok(());
    }
    let lang = Lang::from_code(Some(&album.lang));
    let report = album_report(lang, &items);
    if album.status_message_id.is_none() && items.iter().all(|i| i.task.is_none()) {
        // No message yet and no file a task yet: nothing to report until one is (and when none becomes one, the
        // refusals were told: an album message would only repeat them).
        if !report.open {
            ctx.store
                .bot_album_status(album.id, album.generation, None, None, true)
                .await?;
        }
        return Ok(());
    }
    if album.status_text.as_deref() == Some(report.text.as_str()) {
        if report.told {
            ctx.store
                .bot_album_status(album.id, album.generation, None, None, true)
                .await?;
        }
        return Ok(());
    }
    let markup = report.open.then(|| cancel_album_button(lang, album.id));
    let first = album.status_text.is_none();
    let mid = match album.status_message_id {
        None => ctx.tg.send(album.chat_id, &report.text, markup).await?,
        Some(mid) => {
            if !first && !report.told && !may_edit(ctx, album.chat_id) {
                return Ok(());
            }
            match ctx
                .tg
                .edit(album.chat_id, mid, &report.text, markup.clone())
                .await
            {
                Ok(()) => mid,
                // The message is gone (deleted by the user): a new one.
                Err(TgError::Api(_)) => ctx.tg.send(album.chat_id, &report.text, markup).await?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    if first {
        take_edit_slot(ctx, album.chat_id);
    }
    ctx.store
        .bot_album_status(
            album.id,
            album.generation,
            Some(mid),
            Some(&report.text),
            report.told,
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use autosub_store::{BotRequest, Tier};

    fn item(n: i64, request: RequestStatus, task: Option<TaskStatus>, sent: bool) -> AlbumItem {
        let task = task.map(|status| TaskRow {
            id: n,
            user_id: Some(1),
            kind: "process".into(),
            spec: "{}".into(),
            spec_version: 1,
            status,
            input_type: "telegram".into(),
            input_url: None,
            generate_subtitles: true,
            translate: None,
            voiceover: false,
            vertical_format: false,
            tier: Tier::Free,
            priority: 0,
            sort_key: 0,
            attempts: 0,
            max_attempts: 3,
            run_at: 0,
            timeout_ms: 0,
            lease_owner: None,
            lease_expires_at: None,
            heartbeat_at: None,
            cancel_requested: false,
            progress_stage: (status == TaskStatus::Processing).then(|| "transcribe".into()),
            progress_percent: (status == TaskStatus::Processing).then_some(41.7),
            outputs: None,
            error: None,
            error_detail: None,
            created_at: 0,
            queued_at: None,
            started_at: None,
            finished_at: None,
            updated_at: 0,
        });
        let followed = task.as_ref().map(|t| BotTask {
            task_id: t.id,
            request_id: n,
            telegram_id: 1,
            chat_id: 1,
            lang: "en".into(),
            status_message_id: None,
            status_text: None,
            edited_at: None,
            sent: vec![],
            finished: sent,
            round: 0,
            created_at: 0,
            album: Some((1, n)),
        });
        AlbumItem {
            request: BotRequest {
                id: n,
                telegram_id: 1,
                chat_id: 1,
                update_id: Some(n),
                source: "{}".into(),
                options: "{}".into(),
                status: request,
                keyboard_message_id: None,
                task_id: task.as_ref().map(|t| t.id),
                note: None,
                media_group: Some("g".into()),
                created_at: 0,
                updated_at: 0,
            },
            task,
            followed,
        }
    }

    #[test]
    fn an_album_is_reported_in_one_text() {
        use RequestStatus as R;
        use TaskStatus as T;
        let items = vec![
            item(1, R::Queued, Some(T::Completed), true),
            item(2, R::Queued, Some(T::Processing), false),
            item(3, R::Queued, Some(T::Queued), false),
            item(4, R::Submitted, None, false),
            item(5, R::Refused, None, false),
            item(6, R::Queued, Some(T::Failed), true),
        ];
        let r = album_report(Lang::En, &items);
        assert_eq!(
            r.text,
            "📦 Album: 6 files\n✅ done: 1\n⚙️ processing: 1 (file 2: recognising the speech… 41%)\n\
             ⏳ waiting: 2\n❌ failed: 1\n🚫 not started: 1"
        );
        assert!(r.open && !r.told);

        // Every file ended, but a result is still being sent: not told yet (and nothing left to cancel).
        // A file dropped while it was being checked (the album cancelled) counts as cancelled.
        let mut items = vec![
            item(1, R::Queued, Some(T::Completed), true),
            item(2, R::Queued, Some(T::Completed), false),
            item(3, R::Queued, Some(T::Cancelled), true),
            item(4, R::Dropped, None, false),
        ];
        let r = album_report(Lang::Ru, &items);
        assert_eq!(r.text, "📦 Альбом, файлов: 4\n✅ готово: 2\n✖️ отменено: 2");
        assert!(!r.open && !r.told);
        items[1].followed.as_mut().unwrap().finished = true;
        let r = album_report(Lang::Ru, &items);
        assert!(r.told);
        assert!(r.text.ends_with("\nАльбом завершён."), "{}", r.text);
    }
}
