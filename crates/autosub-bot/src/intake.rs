//! The intake: started requests become queued tasks. A file sent to the bot is downloaded from Telegram into a
//! staging folder, probed (a renamed file is refused here, with nothing queued and nothing counted), checked
//! against the tier on its real duration and size, then queued with its input in the task's folder. A link is
//! queued as it is (the worker fetches and checks it).
//!
//! Every step can be repeated after a crash: the task is created with the request's key (`bot-request:ID`), so a
//! second pass finds it instead of counting another; the download is redone if it did not complete.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use autosub_core::job::JobInput;
use autosub_core::progress::NullSink;
use autosub_service::policy::{self, Declared};
use autosub_service::storage;
use autosub_store::{now_ms, BotRequest, NewTask, RequestStatus, StoreError};
use tokio::sync::watch;

use crate::handle::{refusal_text, Source};
use crate::i18n::{t, Lang};
use crate::options::{self, Options};
use crate::{BotError, Ctx, TgError};

/// Passes a request may fail for passing reasons (Telegram or the database unreachable) before it is refused.
const MAX_TRIES: u32 = 5;

/// What became of a request.
enum Outcome {
    Queued(i64),
    /// Told to the user (localised).
    Refused(String),
    /// No longer submitted when looked at again (its album was cancelled): nothing to do, nothing counted.
    Gone,
}

/// Runs until `stop`: takes started requests, oldest first.
pub async fn intake_loop(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let mut tries: HashMap<i64, u32> = HashMap::new();
    loop {
        tokio::select! {
            _ = ctx.intake_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        let requests = match ctx.store.bot_requests_submitted(20).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("intake: {e}");
                continue;
            }
        };
        for r in requests {
            if *stop.borrow() {
                return;
            }
            let lang = lang_for(&ctx, r.telegram_id).await;
            let result = take(&ctx, &r, lang).await;
            let now = now_ms();
            let finished = match result {
                Ok(Outcome::Queued(id)) => {
                    tries.remove(&r.id);
                    let finished = ctx
                        .store
                        .bot_request_finish(r.id, RequestStatus::Queued, Some(id), None, now)
                        .await;
                    if let Ok(false) = finished {
                        // Dropped while it was being checked (its album was cancelled): so is its task.
                        tracing::info!(
                            request = r.id,
                            task = id,
                            "intake: request dropped meanwhile"
                        );
                        if let Err(e) = ctx.store.cancel(id, now).await {
                            tracing::warn!(request = r.id, "intake: {e}");
                        }
                    }
                    finished.map(|_| true)
                }
                Ok(Outcome::Gone) => {
                    tries.remove(&r.id);
                    Ok(true)
                }
                Ok(Outcome::Refused(text)) => {
                    tries.remove(&r.id);
                    refuse_and_finish(&ctx, &r, &text, lang, now).await
                }
                Err(e) => {
                    let n = tries.entry(r.id).or_default();
                    *n += 1;
                    tracing::warn!(request = r.id, "intake: attempt {n} failed: {e}");
                    if *n < MAX_TRIES {
                        continue;
                    }
                    tries.remove(&r.id);
                    let text = t(
                        lang,
                        "failed",
                        &[("id", &format!("r{}", r.id)), ("reason", &e.to_string())],
                    );
                    let _ = ctx
                        .store
                        .log(
                            autosub_store::Level::Error,
                            "bot",
                            None,
                            &format!("request {} not queued: {e}", r.id),
                            now,
                        )
                        .await;
                    refuse_and_finish(&ctx, &r, &text, lang, now).await
                }
            };
            if let Err(e) = finished {
                tracing::warn!(request = r.id, "intake: {e}");
            }
            let _ = tokio::fs::remove_dir_all(staging_dir(&ctx, r.id)).await;
        }
    }
}

async fn lang_for(ctx: &Ctx, telegram_id: i64) -> Lang {
    let code = ctx
        .store
        .get_user(telegram_id)
        .await
        .ok()
        .flatten()
        .and_then(|u| u.language);
    ctx.lang_of(telegram_id, code.as_deref()).await
}

/// Tells the refusal and records it. A single file's "checking" message is edited (harmless to repeat after a
/// crash); a file of an album is recorded refused first and then told in a new message, so that a crash in between
/// cannot tell it twice (and a file dropped meanwhile, its album cancelled, is told nothing).
async fn refuse_and_finish(
    ctx: &Ctx,
    r: &BotRequest,
    text: &str,
    lang: Lang,
    now: i64,
) -> Result<bool, StoreError> {
    if r.media_group.is_some() {
        let finished = ctx
            .store
            .bot_request_finish(r.id, RequestStatus::Refused, None, Some(text), now)
            .await?;
        if finished {
            refuse(ctx, r, text, lang).await;
        }
        return Ok(finished);
    }
    refuse(ctx, r, text, lang).await;
    ctx.store
        .bot_request_finish(r.id, RequestStatus::Refused, None, Some(text), now)
        .await
}

/// Where request `r` is in its album (1-based), for a file sent in one; with the album's requests as they are now.
async fn album_place(
    ctx: &Ctx,
    r: &BotRequest,
) -> Result<Option<(Vec<BotRequest>, i64)>, StoreError> {
    let Some(g) = &r.media_group else {
        return Ok(None);
    };
    let group: Vec<BotRequest> = ctx.store.bot_group(r.telegram_id, g).await?;
    let item = group.iter().position(|o| o.id == r.id).unwrap_or(0) as i64 + 1;
    Ok(Some((group, item)))
}

/// Tells the user why: the request's message (the "checking" one) is edited, or a new one is sent. A file of an
/// album is named by its place in a new message (the album's message reports the album), and a reason already told
/// for another file of the album is not told again.
async fn refuse(ctx: &Ctx, r: &BotRequest, text: &str, lang: Lang) {
    match album_place(ctx, r).await {
        Ok(Some((group, item))) => {
            let told = group.iter().any(|o| {
                o.id != r.id
                    && o.status == RequestStatus::Refused
                    && o.note.as_deref() == Some(text)
            });
            if !told {
                let text = t(
                    lang,
                    "album_item",
                    &[("item", &item.to_string()), ("text", text)],
                );
                if let Err(e) = ctx.tg.send(r.chat_id, &text, None).await {
                    tracing::info!(request = r.id, "intake: could not tell the refusal: {e}");
                }
            }
            return;
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(request = r.id, "intake: could not tell the refusal: {e}");
            if r.media_group.is_some() {
                return;
            }
        }
    }
    let res = match r.keyboard_message_id {
        Some(mid) => ctx.tg.edit(r.chat_id, mid, text, None).await,
        None => ctx.tg.send(r.chat_id, text, None).await.map(|_| ()),
    };
    if let Err(e) = res {
        tracing::info!(request = r.id, "intake: could not tell the refusal: {e}");
    }
}

fn staging_dir(ctx: &Ctx, request: i64) -> PathBuf {
    ctx.data_dir
        .join("incoming")
        .join(format!("request_{request}"))
}

/// A safe file name for the input: the sender's name when it is usable, else `video.mp4` / `audio.<ext>`.
pub fn input_name(file_name: Option<&str>, mime: Option<&str>, video: bool) -> String {
    let cleaned: String = file_name
        .and_then(|n| Path::new(n).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches(['.', '_']).to_owned();
    let has_ext = cleaned
        .rsplit_once('.')
        .is_some_and(|(s, e)| !s.is_empty() && !e.is_empty());
    if has_ext && cleaned.chars().count() <= 80 {
        return cleaned;
    }
    let ext = match mime {
        Some("video/quicktime") => "mov",
        Some("video/webm") => "webm",
        Some("video/x-matroska") => "mkv",
        Some("audio/mpeg") => "mp3",
        Some("audio/ogg") => "ogg",
        Some("audio/x-wav" | "audio/wav") => "wav",
        Some("audio/mp4" | "audio/x-m4a") => "m4a",
        _ if video => "mp4",
        _ => "ogg",
    };
    format!("{}.{ext}", if video { "video" } else { "audio" })
}

#[derive(Debug, thiserror::Error)]
enum Transient {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Telegram(#[from] TgError),
    #[error("{0}")]
    Io(String),
}

impl From<BotError> for Transient {
    fn from(e: BotError) -> Self {
        match e {
            BotError::Store(s) => Transient::Store(s),
            BotError::Telegram(t) => Transient::Telegram(t),
        }
    }
}

/// Whether request `id` is still submitted: a pass took a batch, and an album's cancel may have dropped some since.
async fn still_submitted(ctx: &Ctx, id: i64) -> Result<bool, StoreError> {
    Ok(ctx.store.bot_request(id).await?.map(|r| r.status) == Some(RequestStatus::Submitted))
}

async fn take(ctx: &Ctx, r: &BotRequest, lang: Lang) -> Result<Outcome, Transient> {
    if !still_submitted(ctx, r.id).await? {
        return Ok(Outcome::Gone);
    }
    let now = now_ms();
    let user = ctx
        .store
        .upsert_user(r.telegram_id, None, None, now)
        .await?;
    let tier = user.effective_tier(now);
    let opts: Options = serde_json::from_str(&r.options).unwrap_or_default();
    let Some(source) = Source::from_json(&r.source) else {
        return Ok(Outcome::Refused(t(lang, "not_media", &[])));
    };
    let key = format!("bot-request:{}", r.id);
    // A task made by an earlier pass (a crash after it was created) is not checked or counted again.
    let existing = ctx.store.task_id_by_key(&key).await?;
    let policy_user = if existing.is_some() {
        None
    } else {
        Some(&user)
    };
    let (mut job, declared, staged) = match &source {
        Source::Link { url } => (
            options::to_job(&opts, JobInput::Url { url: url.clone() }, true),
            Declared::default(),
            None,
        ),
        Source::Telegram {
            file_id,
            file_name,
            mime,
            video,
            ..
        } => {
            let dir = staging_dir(ctx, r.id);
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| Transient::Io(format!("{}: {e}", dir.display())))?;
            let name = input_name(file_name.as_deref(), mime.as_deref(), *video);
            let dst = dir.join(&name);
            if !dst.is_file() {
                let part = dir.join(format!(".{name}.part"));
                match ctx.tg.download(file_id, &part).await {
                    Ok(_) => {}
                    Err(TgError::FileTooBig) => {
                        let max = ctx.cfg.download_limit().unwrap_or_default();
                        return Ok(Outcome::Refused(t(
                            lang,
                            "refuse_download_limit",
                            &[("size", "> 20"), ("max", &(max / 1_000_000).to_string())],
                        )));
                    }
                    Err(e @ TgError::Api(_)) => {
                        tracing::info!(request = r.id, "intake: download refused: {e}");
                        return Ok(Outcome::Refused(t(lang, "refuse_not_media", &[])));
                    }
                    Err(e) => return Err(e.into()),
                }
                tokio::fs::rename(&part, &dst)
                    .await
                    .map_err(|e| Transient::Io(format!("{}: {e}", dst.display())))?;
            }
            let tools = ctx.tools.clone();
            let probe_path = dst.clone();
            let info = tokio::task::spawn_blocking(move || {
                autosub_core::media::probe(&tools, &probe_path, &NullSink)
            })
            .await
            .map_err(|e| Transient::Io(e.to_string()))?;
            let info = match info {
                Ok(i) if i.audio.is_some() || i.video.is_some() => i,
                Ok(_) => return Ok(Outcome::Refused(t(lang, "refuse_not_media", &[]))),
                Err(e) => {
                    tracing::info!(
                        request = r.id,
                        "intake: probe refused the file: {}",
                        e.user_message()
                    );
                    return Ok(Outcome::Refused(t(lang, "refuse_not_media", &[])));
                }
            };
            let size = tokio::fs::metadata(&dst).await.map(|m| m.len()).ok();
            let has_video = *video && info.video.is_some();
            let mut job = options::to_job(
                &opts,
                JobInput::File {
                    path: Path::new("input").join(&name),
                },
                has_video,
            );
            job.name = Some(autosub_core::job::stem_of(&dst));
            (
                job,
                Declared {
                    duration_s: info.duration_ms.map(|d| d.div_ceil(1000)),
                    size_bytes: size,
                },
                Some(dst),
            )
        }
    };
    if let Err(refusal) = policy::apply_tier(&mut job, tier, policy_user, declared, now) {
        return Ok(Outcome::Refused(refusal_text(lang, &refusal)));
    }
    let task = NewTask {
        user_telegram_id: Some(r.telegram_id),
        kind: "process".into(),
        spec: job.to_json(),
        spec_version: i64::from(job.version),
        input_type: match source {
            Source::Link { .. } => "url".into(),
            Source::Telegram { .. } => "telegram".into(),
        },
        input_url: match &source {
            Source::Link { url } => Some(url.clone()),
            Source::Telegram { .. } => None,
        },
        generate_subtitles: true,
        translate: job.translate.as_ref().map(|t| t.targets.join(",")),
        voiceover: job.voiceover.is_some(),
        vertical_format: job.vertical(),
        tier,
        daily_limit: Some(i64::from(tier.limits().tasks_per_day)),
        hold: staged.is_some(),
        idem_key: Some(key),
        ..Default::default()
    };
    // Looked at again just before the task is made (and counted): a download may have taken a while.
    if existing.is_none() && !still_submitted(ctx, r.id).await? {
        return Ok(Outcome::Gone);
    }
    let id = match ctx.store.enqueue(&task, now).await {
        Ok(id) => id,
        Err(StoreError::QuotaExceeded { .. }) => {
            return Ok(Outcome::Refused(refusal_text(
                lang,
                &policy::daily_limit(tier),
            )));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(file) = staged {
        let data_dir = ctx.data_dir.clone();
        tokio::task::spawn_blocking(move || storage::store_input(&data_dir, id, &file))
            .await
            .map_err(|e| Transient::Io(e.to_string()))?
            .map_err(|e| Transient::Io(format!("task {id} input: {e}")))?;
        if let Some(shared) = &ctx.shared {
            storage::put_inputs(shared, &ctx.data_dir, id)
                .await
                .map_err(|e| Transient::Io(format!("task {id} input to the shared store: {e}")))?;
        }
        ctx.store
            .queue_created(id, &job.to_json(), now_ms())
            .await?;
    }
    let album = match (&r.media_group, album_place(ctx, r).await?) {
        (Some(g), Some((_, item))) => {
            let a = ctx
                .store
                .bot_album_open(r.telegram_id, r.chat_id, g, lang.code(), None, now)
                .await?;
            Some((a.id, item))
        }
        _ => None,
    };
    ctx.store
        .bot_task_insert(id, r, lang.code(), album, now)
        .await?;
    if let (Some(mid), None) = (r.keyboard_message_id, album) {
        // The "checking" message becomes the task's status message.
        ctx.store.bot_task_status(id, 0, mid, "", now).await?;
    }
    ctx.intake_wake.notify_one();
    Ok(Outcome::Queued(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_names_are_safe() {
        assert_eq!(input_name(Some("My clip.MP4"), None, true), "My_clip.MP4");
        assert_eq!(
            input_name(Some("../../etc/passwd"), None, true),
            "video.mp4"
        );
        assert_eq!(input_name(Some(".hidden.mp4"), None, true), "hidden.mp4");
        assert_eq!(input_name(None, Some("video/webm"), true), "video.webm");
        assert_eq!(input_name(None, Some("audio/mpeg"), false), "audio.mp3");
        assert_eq!(input_name(Some("noext"), None, false), "audio.ogg");
        assert_eq!(input_name(Some("Видео.mov"), None, true), "Видео.mov");
    }
}
