//! Telling users how their tasks go: ONE status message per task, edited with the queue position, then stage and
//! percent (at most one edit per 3 s per chat; nothing while Telegram's flood control asks to wait); then the
//! results, each sent once (every sent item is recorded before the next is sent, so a restarted bot continues where
//! it stopped instead of sending the video again). A result over the upload limit is sent as a download link.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use autosub_store::{now_ms, BotTask, TaskRow, TaskStatus};
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

async fn step(ctx: &Ctx, bt: &BotTask, task: &TaskRow) -> StepResult {
    let lang = Lang::from_code(Some(&bt.lang));
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
                        ctx.edits
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(bt.chat_id, Instant::now());
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
        TaskStatus::Completed => deliver(ctx, bt, task, lang).await,
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

async fn deliver(ctx: &Ctx, bt: &BotTask, task: &TaskRow, lang: Lang) -> StepResult {
    let outputs: serde_json::Value = task
        .outputs
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok())
        .unwrap_or_default();
    let id = task.id.to_string();
    final_status(ctx, bt, &t(lang, "done", &[("id", &id)]), None).await?;
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
                .send_video(
                    bt.chat_id,
                    &path,
                    &caption(lang, task, &outputs),
                    buttons.clone(),
                )
                .await
                .map_err(at("video"))?;
        } else {
            let path = here(ctx, task.id, "video", Some(recorded))
                .await?
                .unwrap_or(path);
            ctx.tg
                .send_document(bt.chat_id, &path, Some(&caption(lang, task, &outputs)))
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
        send_file(ctx, bt, &p, "srt").await?;
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
                send_file(ctx, bt, &p, &item).await?;
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

async fn send_file(ctx: &Ctx, bt: &BotTask, path: &Path, item: &str) -> StepResult {
    ctx.tg
        .send_document(bt.chat_id, path, None)
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
