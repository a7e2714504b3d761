//! Updates: the long-poll loop and what each message or button press does. Handlers are quick (database writes and
//! one or two messages); downloads and probes happen in the intake.

use std::sync::Arc;
use std::time::{Duration, Instant};

use autosub_service::policy::{self, Declared};
use autosub_store::{now_ms, NewRequest, RequestStatus, Tier, User};
use serde::{Deserialize, Serialize};
use teloxide_core::types::{
    CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, UpdateKind,
};
use tokio::sync::watch;

use crate::i18n::{t, Lang};
use crate::options::{self, Edit, Options, Press};
use crate::{admin, BotError, Ctx, FloodVerdict, TgError};

/// What a request processes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    /// A file sent to the bot.
    Telegram {
        file_id: String,
        file_name: Option<String>,
        mime: Option<String>,
        size: u64,
        duration_s: Option<u32>,
        /// A video (the result is a video); false for audio.
        video: bool,
    },
    /// A link, fetched by the worker.
    Link { url: String },
}

impl Source {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Option<Source> {
        serde_json::from_str(s).ok()
    }

    pub fn declared(&self) -> Declared {
        match self {
            Source::Telegram {
                size, duration_s, ..
            } => Declared {
                duration_s: duration_s.map(u64::from),
                size_bytes: Some(*size),
            },
            Source::Link { .. } => Declared::default(),
        }
    }

    fn has_video(&self) -> bool {
        match self {
            Source::Telegram { video, .. } => *video,
            Source::Link { .. } => true,
        }
    }
}

/// Long-polls Telegram and handles each update once. The offset moves past an update only after it is handled
/// and recorded; a failure (database down, Telegram unreachable) retries the same updates after a pause.
pub async fn poll_loop(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let mut offset = loop {
        match ctx.store.bot_last_update().await {
            Ok(last) => break last.map_or(0, |l| l + 1),
            Err(e) => {
                tracing::error!("bot: cannot read the last update: {e}");
                if crate::pause(&mut stop, Duration::from_secs(2)).await {
                    return;
                }
            }
        }
    };
    let mut failures = 0u32;
    let mut last_prune = Instant::now();
    while !*stop.borrow() {
        let got = tokio::select! {
            r = ctx.tg.get_updates(offset, 20) => r,
            _ = stop.changed() => break,
        };
        let updates = match got {
            Ok(u) => u,
            Err(TgError::RetryAfter(d)) => {
                if crate::pause(&mut stop, d).await {
                    break;
                }
                continue;
            }
            Err(e) => {
                failures += 1;
                tracing::warn!("bot: getUpdates failed ({failures} in a row): {e}");
                let wait = Duration::from_millis(500 * u64::from(failures.min(10)));
                if crate::pause(&mut stop, wait).await {
                    break;
                }
                continue;
            }
        };
        failures = 0;
        for u in updates {
            let id = i64::from(u.id.0);
            if id < offset {
                continue;
            }
            match handle_once(&ctx, u).await {
                Ok(()) => offset = id + 1,
                Err(e) => {
                    tracing::warn!(update = id, "bot: update not handled, retrying: {e}");
                    let _ = crate::pause(&mut stop, Duration::from_secs(1)).await;
                    break;
                }
            }
        }
        if last_prune.elapsed() > Duration::from_secs(3600) {
            last_prune = Instant::now();
            let _ = ctx.store.bot_prune_updates(now_ms() - 7 * 86_400_000).await;
            ctx.flood
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .prune(Instant::now());
        }
    }
}

/// Handles update `u` unless it was handled already, then records it.
pub async fn handle_once(ctx: &Ctx, u: Update) -> Result<(), BotError> {
    let id = i64::from(u.id.0);
    if ctx.store.bot_update_handled(id).await? {
        return Ok(());
    }
    let t0 = Instant::now();
    match u.kind {
        UpdateKind::Message(m) => on_message(ctx, id, &m).await?,
        UpdateKind::CallbackQuery(q) => on_callback(ctx, id, &q).await?,
        _ => {}
    }
    ctx.store.bot_mark_update(id, now_ms()).await?;
    tracing::debug!(
        update = id,
        ms = t0.elapsed().as_millis() as u64,
        "update handled"
    );
    Ok(())
}

/// Telegram errors that mean "try this update again later"; the others (a blocked user, a refused edit) are
/// logged and the update counts as handled.
pub(crate) fn soft(r: Result<(), TgError>) -> Result<(), BotError> {
    match r {
        Ok(()) => Ok(()),
        Err(e @ (TgError::Network(_) | TgError::RetryAfter(_))) => Err(e.into()),
        Err(e) => {
            tracing::info!("bot: Telegram refused: {e}");
            Ok(())
        }
    }
}

pub(crate) async fn say(ctx: &Ctx, chat: i64, text: &str) -> Result<(), BotError> {
    soft(ctx.tg.send(chat, text, None).await.map(|_| ()))
}

pub(crate) fn plan_name(lang: Lang, tier: Tier) -> String {
    t(
        lang,
        match tier {
            Tier::Free => "plan_free",
            Tier::Pro => "plan_pro",
            Tier::Creator => "plan_creator",
        },
        &[],
    )
}

pub(crate) fn duration_text(lang: Lang, s: u32) -> String {
    if s < 120 {
        t(lang, "seconds", &[("n", &s.to_string())])
    } else {
        t(lang, "minutes", &[("n", &(s / 60).to_string())])
    }
}

/// "2026-12-31" for a time in ms (UTC).
pub fn date_utc(ms: i64) -> String {
    let (y, m, d) = autosub_store::utc_date(ms);
    format!("{y:04}-{m:02}-{d:02}")
}

pub(crate) fn limits_text(lang: Lang, tier: Tier) -> String {
    tier_text(lang, "limits", tier)
}

/// A tier's limits and features with the text `key` (`limits`: the user's own plan; `plan_offer`: one for sale).
pub(crate) fn tier_text(lang: Lang, key: &str, tier: Tier) -> String {
    let l = tier.limits();
    let features = match tier {
        Tier::Free => "features_free",
        Tier::Pro => "features_pro",
        Tier::Creator => "features_creator",
    };
    t(
        lang,
        key,
        &[
            ("plan", &plan_name(lang, tier)),
            ("duration", &duration_text(lang, l.max_duration_s)),
            ("height", &l.max_height.to_string()),
            ("tasks", &l.tasks_per_day.to_string()),
            ("features", &t(lang, features, &[])),
        ],
    )
}

/// A refusal in the user's language.
pub fn refusal_text(lang: Lang, r: &policy::Refusal) -> String {
    use policy::{Feature, Refusal};
    match r {
        Refusal::Banned => t(lang, "refuse_banned", &[]),
        Refusal::DailyLimit { limit, tier, lift } => match lift {
            Some((l, more)) => t(
                lang,
                "refuse_daily_lift",
                &[
                    ("limit", &limit.to_string()),
                    ("plan", &plan_name(lang, *tier)),
                    ("lift", &plan_name(lang, *l)),
                    ("more", &more.to_string()),
                ],
            ),
            None => t(
                lang,
                "refuse_daily",
                &[
                    ("limit", &limit.to_string()),
                    ("plan", &plan_name(lang, *tier)),
                ],
            ),
        },
        Refusal::Lacks {
            feature,
            tier,
            lift,
        } => {
            let f = t(
                lang,
                match feature {
                    Feature::Translation => "feature_translation",
                    Feature::Voiceover => "feature_voiceover",
                    Feature::Styles => "feature_styles",
                },
                &[],
            );
            match lift {
                Some(l) => t(
                    lang,
                    "refuse_feature_lift",
                    &[
                        ("feature", &f),
                        ("plan", &plan_name(lang, *tier)),
                        ("lift", &plan_name(lang, *l)),
                    ],
                ),
                None => t(
                    lang,
                    "refuse_feature",
                    &[("feature", &f), ("plan", &plan_name(lang, *tier))],
                ),
            }
        }
        Refusal::TooLong {
            duration_s,
            max_s,
            tier,
            lift,
        } => {
            let (lift, more) = lift
                .map(|(l, m)| (plan_name(lang, l), duration_text(lang, m)))
                .unwrap_or_default();
            let key = if lift.is_empty() {
                "refuse_too_long"
            } else {
                "refuse_too_long_lift"
            };
            let args = [
                ("duration", duration_text(lang, *duration_s)),
                ("plan", plan_name(lang, *tier)),
                ("max", duration_text(lang, *max_s)),
                ("lift", lift),
                ("more", more),
            ];
            let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
            t(lang, key, &args)
        }
        Refusal::TooBig { size, max, tier } => t(
            lang,
            "refuse_too_big",
            &[
                ("size", &(size / 1_000_000).to_string()),
                ("plan", &plan_name(lang, *tier)),
                ("max", &(max / 1_000_000).to_string()),
            ],
        ),
    }
}

/// Checks options against the user's tier and counts, as the intake will (a draft's keyboard, a caption).
pub(crate) fn check(
    user: &User,
    o: &Options,
    source: &Source,
    now: i64,
) -> Result<(), policy::Refusal> {
    let tier = user.effective_tier(now);
    let mut job = options::to_job(
        o,
        autosub_core::job::JobInput::File {
            path: "input".into(),
        },
        source.has_video(),
    );
    policy::apply_tier(&mut job, tier, Some(user), source.declared(), now)
}

/// The source of a message's media; `None` when it holds none the bot takes.
fn media_of(m: &Message) -> Option<Source> {
    if let Some(v) = m.video() {
        return Some(Source::Telegram {
            file_id: v.file.id.0.clone(),
            file_name: v.file_name.clone(),
            mime: v.mime_type.as_ref().map(ToString::to_string),
            size: u64::from(v.file.size),
            duration_s: Some(v.duration.seconds()),
            video: true,
        });
    }
    if let Some(v) = m.video_note() {
        return Some(Source::Telegram {
            file_id: v.file.id.0.clone(),
            file_name: None,
            mime: Some("video/mp4".into()),
            size: u64::from(v.file.size),
            duration_s: Some(v.duration.seconds()),
            video: true,
        });
    }
    if let Some(a) = m.audio() {
        return Some(Source::Telegram {
            file_id: a.file.id.0.clone(),
            file_name: a.file_name.clone(),
            mime: a.mime_type.as_ref().map(ToString::to_string),
            size: u64::from(a.file.size),
            duration_s: Some(a.duration.seconds()),
            video: false,
        });
    }
    if let Some(a) = m.voice() {
        return Some(Source::Telegram {
            file_id: a.file.id.0.clone(),
            file_name: None,
            mime: a.mime_type.as_ref().map(ToString::to_string),
            size: u64::from(a.file.size),
            duration_s: Some(a.duration.seconds()),
            video: false,
        });
    }
    if let Some(d) = m.document() {
        let mime = d.mime_type.as_ref().map(ToString::to_string);
        let audio = mime.as_deref().is_some_and(|m| m.starts_with("audio/"));
        return Some(Source::Telegram {
            file_id: d.file.id.0.clone(),
            file_name: d.file_name.clone(),
            mime,
            size: u64::from(d.file.size),
            duration_s: None,
            video: !audio,
        });
    }
    None
}

/// A document whose declared type is plainly not media (a PDF, a picture, text): refused before any download. Types
/// that may hide media (none, octet-stream) pass to the probe.
fn plainly_not_media(mime: Option<&str>, name: Option<&str>) -> bool {
    let by_type = match mime {
        Some(m) => {
            !(m.starts_with("video/")
                || m.starts_with("audio/")
                || m == "application/octet-stream"
                || m == "application/x-matroska"
                || m == "application/mp4"
                || m == "application/ogg")
        }
        None => false,
    };
    let by_name = name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .is_some_and(|e| {
            matches!(
                e.as_str(),
                "pdf"
                    | "txt"
                    | "doc"
                    | "docx"
                    | "zip"
                    | "rar"
                    | "7z"
                    | "jpg"
                    | "jpeg"
                    | "png"
                    | "gif"
                    | "webp"
                    | "apk"
                    | "exe"
                    | "srt"
                    | "vtt"
                    | "ass"
            )
        });
    by_type || by_name
}

async fn on_message(ctx: &Ctx, update_id: i64, m: &Message) -> Result<(), BotError> {
    let Some(from) = m.from.as_ref() else {
        return Ok(());
    };
    // Private chats only: in groups the bot would answer strangers' videos.
    if !m.chat.is_private() || from.is_bot {
        return Ok(());
    }
    let uid = from.id.0 as i64;
    let chat = m.chat.id.0;
    let verdict = ctx
        .flood
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .check(uid, Instant::now());
    let now = now_ms();
    let user = ctx
        .store
        .upsert_user(
            uid,
            from.username.as_deref(),
            from.language_code.as_deref(),
            now,
        )
        .await?;
    ctx.store.record_activity(user.id, now).await?;
    // One read of the user's bot state serves the language and the /settings defaults.
    let chat_state = ctx.store.bot_chat_touch(uid, chat, now).await?;
    let lang = match chat_state.lang.as_deref() {
        Some(l) => Lang::from_code(Some(l)),
        None => Lang::from_code(from.language_code.as_deref()),
    };
    match verdict {
        FloodVerdict::Ok => {}
        FloodVerdict::Warn => return say(ctx, chat, &t(lang, "flood", &[])).await,
        FloodVerdict::Drop => return Ok(()),
    }
    let text = m.text().or(m.caption()).unwrap_or_default().trim();
    if m.text().is_some() && text.starts_with('/') {
        return command(ctx, lang, &user, chat, text).await;
    }
    let parsed = match options::parse(text) {
        Ok(p) => p,
        Err(tok) => return say(ctx, chat, &t(lang, "refuse_option", &[("option", &tok)])).await,
    };
    let source = match (media_of(m), parsed.link.clone()) {
        (Some(s), _) => s,
        (None, Some(url)) => Source::Link { url },
        (None, None) => return say_for_file(ctx, m, uid, chat, &t(lang, "not_media", &[])).await,
    };
    if let Source::Telegram {
        size,
        mime,
        file_name,
        ..
    } = &source
    {
        if m.document().is_some() && plainly_not_media(mime.as_deref(), file_name.as_deref()) {
            return say_for_file(ctx, m, uid, chat, &t(lang, "refuse_not_media", &[])).await;
        }
        if let Some(max) = ctx.cfg.download_limit() {
            if *size > max {
                let text = t(
                    lang,
                    "refuse_download_limit",
                    &[
                        ("size", &size.div_ceil(1_000_000).to_string()),
                        ("max", &(max / 1_000_000).to_string()),
                    ],
                );
                return say_for_file(ctx, m, uid, chat, &text).await;
            }
        }
    }
    if let Source::Link { url } = &source {
        // The worker's fetch checks the address for real (private networks, size, duration); here only the shape.
        let ok = reqwest::Url::parse(url)
            .ok()
            .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if !ok {
            let reason = "not a web address";
            return say(ctx, chat, &t(lang, "refuse_link", &[("reason", reason)])).await;
        }
    }
    let settings: Options = serde_json::from_str(&chat_state.settings).unwrap_or_default();
    let submitted = parsed.options.is_some();
    let opts = parsed.options.unwrap_or(settings);
    if let Some(group) = m.media_group_id() {
        let file = AlbumFile {
            update_id,
            chat,
            group: &group.0,
            source: &source,
            opts: &opts,
            submitted,
        };
        return album_file(ctx, &user, lang, &file, now).await;
    }
    if submitted {
        if let Err(r) = check(&user, &opts, &source, now) {
            return say(ctx, chat, &refusal_text(lang, &r)).await;
        }
    } else if let Err(r @ (policy::Refusal::Banned | policy::Refusal::DailyLimit { .. })) =
        check(&user, &Options::default(), &source, now)
    {
        // No keyboard for a request that cannot be started whatever is chosen.
        return say(ctx, chat, &refusal_text(lang, &r)).await;
    }
    let (req, _) = ctx
        .store
        .bot_request_insert(
            &NewRequest {
                telegram_id: uid,
                chat_id: chat,
                update_id: Some(update_id),
                source: source.to_json(),
                options: serde_json::to_string(&opts).unwrap_or_default(),
                // Submitted only once its message is known: the intake turns that message into the status message.
                submitted: false,
                media_group: None,
            },
            now,
        )
        .await?;
    if req.keyboard_message_id.is_none() {
        let tier = user.effective_tier(now);
        let sent = if submitted {
            ctx.tg.send(chat, &t(lang, "received", &[]), None).await
        } else {
            let kb = options::keyboard(lang, Some(req.id), &opts, false, tier);
            ctx.tg.send(chat, &t(lang, "choose", &[]), Some(kb)).await
        };
        match sent {
            Ok(mid) => ctx.store.bot_request_set_keyboard(req.id, mid).await?,
            Err(e) => soft(Err(e))?,
        }
    }
    if submitted
        && req.status == RequestStatus::Draft
        && ctx
            .store
            .bot_request_advance(req.id, uid, RequestStatus::Submitted, now)
            .await?
    {
        ctx.intake_wake.notify_one();
    }
    Ok(())
}

/// Says why a file is refused before it becomes a request; for a file of an album (a photo among videos, say), once
/// per album and reason.
async fn say_for_file(
    ctx: &Ctx,
    m: &Message,
    uid: i64,
    chat: i64,
    text: &str,
) -> Result<(), BotError> {
    if let Some(group) = m.media_group_id() {
        let mut said = ctx.album_said.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if said.len() > 10_000 {
            said.retain(|_, at| now.duration_since(*at) < Duration::from_secs(3600));
        }
        let key = (uid, group.0.clone(), text.to_owned());
        if said.insert(key, now).is_some() {
            return Ok(());
        }
    }
    say(ctx, chat, text).await
}

/// A file that came in an album (a Telegram media group).
struct AlbumFile<'a> {
    update_id: i64,
    chat: i64,
    group: &'a str,
    source: &'a Source,
    /// The caption's options, else the user's defaults.
    opts: &'a Options,
    /// The caption gave options: the album starts at once.
    submitted: bool,
}

/// Albums: the first file of a user's media group leads it. It gets the options keyboard (or its caption's options
/// start the album at once); the files after it show no keyboard of their own: they start with the leader, taking
/// its options, or at once when the album has started already (Telegram delivers an album as separate messages, and
/// the caption comes with the first). One task each; `notify` reports the album in one message.
async fn album_file(
    ctx: &Ctx,
    user: &User,
    lang: Lang,
    f: &AlbumFile<'_>,
    now: i64,
) -> Result<(), BotError> {
    let uid = user.telegram_id;
    let members = ctx.store.bot_group(uid, f.group).await?;
    let leads = members
        .first()
        .is_none_or(|first| first.update_id == Some(f.update_id));
    let new_request = |submitted: bool| NewRequest {
        telegram_id: uid,
        chat_id: f.chat,
        update_id: Some(f.update_id),
        source: f.source.to_json(),
        options: serde_json::to_string(f.opts).unwrap_or_default(),
        submitted,
        media_group: Some(f.group.to_owned()),
    };
    if !leads {
        let leader = &members[0];
        let (req, inserted) = ctx
            .store
            .bot_request_insert(&new_request(false), now)
            .await?;
        if req.status != RequestStatus::Draft {
            return Ok(());
        }
        return match leader.status {
            // Not started yet: it starts with the leader. The leader's message counts the files.
            RequestStatus::Draft => {
                let Some(kb_mid) = leader.keyboard_message_id else {
                    return Ok(());
                };
                // The group as read before this file's row (when this update made it).
                let n = members.len() + usize::from(inserted);
                let opts: Options = serde_json::from_str(&leader.options).unwrap_or_default();
                let kb = options::keyboard(
                    lang,
                    Some(leader.id),
                    &opts,
                    false,
                    user.effective_tier(now),
                );
                let text = t(lang, "album_choose", &[("n", &n.to_string())]);
                soft(ctx.tg.edit(f.chat, kb_mid, &text, Some(kb)).await)
            }
            RequestStatus::Dropped => {
                ctx.store
                    .bot_request_advance_with(req.id, RequestStatus::Dropped, &leader.options, now)
                    .await?;
                Ok(())
            }
            // Started already (or refused, which the intake tells once for the album): this file follows at once.
            RequestStatus::Submitted | RequestStatus::Queued | RequestStatus::Refused => {
                let cancelled = ctx
                    .store
                    .bot_album_find(uid, f.group)
                    .await?
                    .is_some_and(|a| a.cancelled);
                if cancelled {
                    ctx.store
                        .bot_request_advance_with(
                            req.id,
                            RequestStatus::Dropped,
                            &leader.options,
                            now,
                        )
                        .await?;
                    return Ok(());
                }
                ctx.store
                    .bot_album_open(uid, f.chat, f.group, lang.code(), None, now)
                    .await?;
                if ctx
                    .store
                    .bot_request_advance_with(
                        req.id,
                        RequestStatus::Submitted,
                        &leader.options,
                        now,
                    )
                    .await?
                {
                    ctx.intake_wake.notify_one();
                }
                Ok(())
            }
        };
    }
    // The leader: checked as a single file is — once: a redelivered update keeps the verdict it had.
    let seen = members
        .iter()
        .find(|r| r.update_id == Some(f.update_id))
        .map(|r| (r.status, r.note.clone()));
    let refusal = match seen {
        Some((RequestStatus::Refused, note)) => Some(note.unwrap_or_default()),
        Some(_) => None,
        None if f.submitted => check(user, f.opts, f.source, now)
            .err()
            .map(|r| refusal_text(lang, &r)),
        None => match check(user, &Options::default(), f.source, now) {
            Err(r @ (policy::Refusal::Banned | policy::Refusal::DailyLimit { .. })) => {
                Some(refusal_text(lang, &r))
            }
            _ => None,
        },
    };
    if let Some(text) = refusal {
        // Recorded as refused, so that the album's other files are told nothing more.
        ctx.store
            .bot_request_insert_refused(&new_request(false), &text, now)
            .await?;
        return say(ctx, f.chat, &text).await;
    }
    let (req, _) = ctx
        .store
        .bot_request_insert(&new_request(false), now)
        .await?;
    let mut message = req.keyboard_message_id;
    if message.is_none() {
        let tier = user.effective_tier(now);
        let sent = if f.submitted {
            ctx.tg
                .send(f.chat, &t(lang, "album_received", &[]), None)
                .await
        } else {
            let kb = options::keyboard(lang, Some(req.id), f.opts, false, tier);
            let text = t(lang, "album_choose", &[("n", "1")]);
            ctx.tg.send(f.chat, &text, Some(kb)).await
        };
        match sent {
            Ok(mid) => {
                ctx.store.bot_request_set_keyboard(req.id, mid).await?;
                message = Some(mid);
            }
            Err(e) => soft(Err(e))?,
        }
    }
    if f.submitted && req.status == RequestStatus::Draft {
        start_album(ctx, uid, f.chat, lang, f.group, &req.options, message, now).await?;
    }
    Ok(())
}

/// Starts an album: its drafts are submitted with the leader's options, and `message` becomes its status message
/// (nothing moves when it was started or dropped already).
#[allow(clippy::too_many_arguments)]
async fn start_album(
    ctx: &Ctx,
    uid: i64,
    chat: i64,
    lang: Lang,
    group: &str,
    options: &str,
    message: Option<i64>,
    now: i64,
) -> Result<(), BotError> {
    ctx.store
        .bot_album_open(uid, chat, group, lang.code(), message, now)
        .await?;
    let moved = ctx
        .store
        .bot_group_advance(uid, group, RequestStatus::Submitted, options, now)
        .await?;
    if moved > 0 {
        ctx.intake_wake.notify_one();
    }
    Ok(())
}

async fn command(
    ctx: &Ctx,
    lang: Lang,
    user: &User,
    chat: i64,
    text: &str,
) -> Result<(), BotError> {
    let mut words = text.split_whitespace();
    let head = words.next().unwrap_or_default();
    let cmd = head
        .trim_start_matches('/')
        .split('@')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let rest: Vec<&str> = words.collect();
    let now = now_ms();
    let tier = user.effective_tier(now);
    match cmd.as_str() {
        "start" => {
            // `t.me/BOT?start=ref_CODE`: an invitation (recorded for new users only; anything else ignored).
            if let Some(code) = rest.first().and_then(|a| a.strip_prefix("ref_")) {
                if ctx.store.record_referral(user.id, code, now).await? {
                    tracing::info!(user = user.telegram_id, "joined through an invitation");
                }
            }
            say(
                ctx,
                chat,
                &t(lang, "start", &[("limits", &limits_text(lang, tier))]),
            )
            .await
        }
        "help" => {
            say(
                ctx,
                chat,
                &t(lang, "help", &[("limits", &limits_text(lang, tier))]),
            )
            .await
        }
        "lang" => {
            let next = lang.other();
            ctx.store
                .bot_chat_set_lang(user.telegram_id, next.code())
                .await?;
            say(ctx, chat, &t(next, "lang_switched", &[])).await
        }
        "me" | "account" => {
            let l = tier.limits();
            let used = user.tasks_today_at(now);
            let until = match (tier, user.tier_expires_at) {
                (Tier::Free, _) | (_, None) => t(lang, "until_never", &[]),
                (_, Some(at)) => date_utc(at),
            };
            let text = t(
                lang,
                "me",
                &[
                    ("plan", &plan_name(lang, tier)),
                    ("until", &until),
                    ("used", &used.to_string()),
                    ("limit", &l.tasks_per_day.to_string()),
                    (
                        "left",
                        &(i64::from(l.tasks_per_day) - used).max(0).to_string(),
                    ),
                    ("total", &user.tasks_total.to_string()),
                ],
            );
            say(ctx, chat, &text).await
        }
        "settings" => {
            let settings: Options = ctx
                .store
                .bot_chat(user.telegram_id)
                .await?
                .and_then(|c| serde_json::from_str(&c.settings).ok())
                .unwrap_or_default();
            let kb = options::keyboard(lang, None, &settings, false, tier);
            soft(
                ctx.tg
                    .send(chat, &t(lang, "settings", &[]), Some(kb))
                    .await
                    .map(|_| ()),
            )
        }
        "cancel" => {
            let tasks = ctx.store.user_tasks(user.telegram_id, 20).await?;
            let active = tasks.iter().find(|t| {
                matches!(
                    t.status,
                    autosub_store::TaskStatus::Queued
                        | autosub_store::TaskStatus::Processing
                        | autosub_store::TaskStatus::Created
                )
            });
            match active {
                None => say(ctx, chat, &t(lang, "cancel_none", &[])).await,
                Some(task) => {
                    let id = task.id.to_string();
                    let key = match ctx.store.cancel(task.id, now).await? {
                        autosub_store::CancelOutcome::Requested => "cancel_asked",
                        _ => "cancel_done",
                    };
                    say(ctx, chat, &t(lang, key, &[("id", &id)])).await
                }
            }
        }
        "plans" | "subscribe" => crate::pay::plans(ctx, lang, user, chat).await,
        "invite" => crate::pay::invite(ctx, lang, user, chat).await,
        "apikey" => crate::keys::command(ctx, lang, user, chat, &rest).await,
        "stats" | "logs" | "user" | "grant" | "ban" | "unban" | "broadcast" => {
            if !ctx.cfg.is_admin(user.telegram_id) {
                return say(ctx, chat, &t(lang, "not_admin", &[])).await;
            }
            let raw_rest = text[head.len()..].trim();
            admin::command(ctx, lang, user.telegram_id, chat, &cmd, &rest, raw_rest).await
        }
        _ => say(ctx, chat, &t(lang, "unknown_command", &[])).await,
    }
}

/// The buttons under a result: re-run with other options (and retry, for a failure).
pub fn result_buttons(lang: Lang, task_id: i64, failed: bool) -> InlineKeyboardMarkup {
    let mut row = vec![];
    if failed {
        row.push(InlineKeyboardButton::callback(
            t(lang, "btn_retry", &[]),
            Press::Retry(task_id).data(),
        ));
    }
    row.push(InlineKeyboardButton::callback(
        t(lang, "btn_rerun", &[]),
        Press::Rerun(task_id).data(),
    ));
    InlineKeyboardMarkup::new(vec![row])
}

async fn on_callback(ctx: &Ctx, update_id: i64, q: &CallbackQuery) -> Result<(), BotError> {
    let uid = q.from.id.0 as i64;
    let lang = ctx.lang_of(uid, q.from.language_code.as_deref()).await;
    let answer = |text: Option<String>, alert: bool| async move {
        soft(ctx.tg.answer(&q.id.0, text.as_deref(), alert).await)
    };
    let stale = || answer(Some(t(lang, "stale_button", &[])), false);
    let Some(press) = q.data.as_deref().and_then(Press::parse) else {
        return stale().await;
    };
    let Some(msg) = q.message.as_ref() else {
        return stale().await;
    };
    let chat = msg.chat().id.0;
    let message_id = i64::from(msg.id().0);
    let now = now_ms();
    let user = ctx
        .store
        .upsert_user(uid, q.from.username.as_deref(), None, now)
        .await?;
    ctx.store.record_activity(user.id, now).await?;
    let tier = user.effective_tier(now);
    match press {
        Press::Buy { tier, period } => {
            answer(None, false).await?;
            crate::pay::buy(ctx, lang, uid, chat, update_id, tier, period).await
        }
        Press::Edit { draft, edit } => {
            let mut album_size = None;
            let (mut opts, source) = match draft {
                Some(d) => match ctx.store.bot_request(d).await? {
                    Some(r) if r.telegram_id == uid && r.status == RequestStatus::Draft => {
                        match keyboard_of(ctx, &r).await? {
                            None => return stale().await,
                            Some(KeyboardOf::Album { files }) => album_size = Some(files),
                            Some(KeyboardOf::File) => {}
                        }
                        (
                            serde_json::from_str::<Options>(&r.options).unwrap_or_default(),
                            Source::from_json(&r.source),
                        )
                    }
                    _ => return stale().await,
                },
                None => (
                    ctx.store
                        .bot_chat(uid)
                        .await?
                        .and_then(|c| serde_json::from_str(&c.settings).ok())
                        .unwrap_or_default(),
                    None,
                ),
            };
            let before = opts.clone();
            edit.apply(&mut opts);
            // Paid options are checked here, not trusted from the button: a forged press changes nothing.
            let probe_src = source
                .clone()
                .unwrap_or(Source::Link { url: String::new() });
            let job = options::to_job(
                &opts,
                autosub_core::job::JobInput::File {
                    path: "input".into(),
                },
                probe_src.has_video(),
            );
            if let Err(r) = policy::check_features(&job, tier) {
                return answer(Some(refusal_text(lang, &r)), true).await;
            }
            if opts != before {
                let json = serde_json::to_string(&opts).unwrap_or_default();
                match draft {
                    Some(d) => {
                        if !ctx
                            .store
                            .bot_request_set_options(d, uid, &json, now)
                            .await?
                        {
                            return stale().await;
                        }
                    }
                    None => ctx.store.bot_chat_set_settings(uid, &json).await?,
                }
            }
            let picker = edit == Edit::Languages;
            let kb = options::keyboard(lang, draft, &opts, picker, tier);
            let text = match (draft, picker) {
                (_, true) => t(lang, "pick_language", &[]),
                (Some(_), false) => match album_size {
                    Some(n) => t(lang, "album_choose", &[("n", &n.to_string())]),
                    None => t(lang, "choose", &[]),
                },
                (None, false) => t(lang, "settings", &[]),
            };
            soft(ctx.tg.edit(chat, message_id, &text, Some(kb)).await)?;
            answer(None, false).await
        }
        Press::Start(d) => {
            let Some(r) = ctx.store.bot_request(d).await? else {
                return stale().await;
            };
            if r.telegram_id != uid
                || r.status != RequestStatus::Draft
                || keyboard_of(ctx, &r).await?.is_none()
            {
                return stale().await;
            }
            let opts: Options = serde_json::from_str(&r.options).unwrap_or_default();
            let Some(source) = Source::from_json(&r.source) else {
                return stale().await;
            };
            if let Err(refusal) = check(&user, &opts, &source, now) {
                return answer(Some(refusal_text(lang, &refusal)), true).await;
            }
            if let Some(g) = &r.media_group {
                let text = t(lang, "album_received", &[]);
                soft(ctx.tg.edit(chat, message_id, &text, None).await)?;
                start_album(ctx, uid, chat, lang, g, &r.options, Some(message_id), now).await?;
                return answer(None, false).await;
            }
            if ctx
                .store
                .bot_request_advance(d, uid, RequestStatus::Submitted, now)
                .await?
            {
                soft(
                    ctx.tg
                        .edit(chat, message_id, &t(lang, "received", &[]), None)
                        .await,
                )?;
                ctx.store.bot_request_set_keyboard(d, message_id).await?;
                ctx.intake_wake.notify_one();
            }
            answer(None, false).await
        }
        Press::Drop(d) => {
            let (group, status) = match ctx.store.bot_request(d).await? {
                Some(r) if r.telegram_id == uid && keyboard_of(ctx, &r).await?.is_some() => {
                    (r.media_group, r.status)
                }
                _ => return stale().await,
            };
            let dropped = match &group {
                // The leader is still a draft: so is the whole album.
                Some(g) if status == RequestStatus::Draft => {
                    ctx.store.bot_group_drop(uid, g, now).await? > 0
                }
                Some(_) => false,
                None => {
                    ctx.store
                        .bot_request_advance(d, uid, RequestStatus::Dropped, now)
                        .await?
                }
            };
            if dropped {
                soft(
                    ctx.tg
                        .edit(chat, message_id, &t(lang, "draft_dropped", &[]), None)
                        .await,
                )?;
                answer(None, false).await
            } else {
                stale().await
            }
        }
        Press::CancelAlbum(a) => {
            let Some(album) = ctx.store.bot_album(a).await? else {
                return stale().await;
            };
            if album.telegram_id != uid {
                return answer(Some(t(lang, "not_yours", &[])), true).await;
            }
            // Files still being checked are not queued any more: the intake cancels a task it is making meanwhile,
            // and a task an earlier pass made for one (then stopped: a crash) is cancelled here. Files arriving
            // later are dropped.
            ctx.store.bot_album_cancel(album.id).await?;
            ctx.store
                .bot_group_drop(uid, &album.media_group, now)
                .await?;
            for item in ctx.store.bot_album_items(&album).await? {
                let task = match (&item.task, item.request.status) {
                    (Some(task), _) => (!task.status.is_finished()).then_some(task.id),
                    (None, RequestStatus::Refused) => None,
                    // Not recorded with a task: one an earlier pass made by its key (safe to repeat: a redelivered
                    // press after a crash finds it too).
                    (None, _) => {
                        let key = format!("bot-request:{}", item.request.id);
                        ctx.store.task_id_by_key(&key).await?
                    }
                };
                if let Some(task) = task {
                    ctx.store.cancel(task, now).await?;
                }
            }
            answer(None, false).await
        }
        Press::Cancel(task) | Press::Retry(task) | Press::Rerun(task) => {
            let Some(bt) = ctx.store.bot_task(task).await? else {
                return stale().await;
            };
            if bt.telegram_id != uid {
                return answer(Some(t(lang, "not_yours", &[])), true).await;
            }
            match press {
                Press::Cancel(_) => {
                    ctx.store.cancel(task, now).await?;
                    answer(None, false).await
                }
                Press::Retry(_) => {
                    if ctx.store.retry_for_bot(task, now).await? {
                        answer(None, false).await
                    } else {
                        stale().await
                    }
                }
                _ => {
                    let Some(r) = ctx.store.bot_request(bt.request_id).await? else {
                        return stale().await;
                    };
                    let (req, inserted) = ctx
                        .store
                        .bot_request_insert(
                            &NewRequest {
                                telegram_id: uid,
                                chat_id: chat,
                                update_id: Some(update_id),
                                source: r.source.clone(),
                                options: r.options.clone(),
                                submitted: false,
                                media_group: None,
                            },
                            now,
                        )
                        .await?;
                    if inserted || req.keyboard_message_id.is_none() {
                        let opts: Options = serde_json::from_str(&r.options).unwrap_or_default();
                        let kb = options::keyboard(lang, Some(req.id), &opts, false, tier);
                        match ctx.tg.send(chat, &t(lang, "choose", &[]), Some(kb)).await {
                            Ok(mid) => ctx.store.bot_request_set_keyboard(req.id, mid).await?,
                            Err(e) => soft(Err(e))?,
                        }
                    }
                    answer(None, false).await
                }
            }
        }
    }
}

/// Whether request `r` may show and use a keyboard — a single file, or the first file of its album (the others have
/// none; a forged press naming one of them is stale: `None`).
async fn keyboard_of(
    ctx: &Ctx,
    r: &autosub_store::BotRequest,
) -> Result<Option<KeyboardOf>, BotError> {
    let Some(g) = &r.media_group else {
        return Ok(Some(KeyboardOf::File));
    };
    let members = ctx.store.bot_group(r.telegram_id, g).await?;
    Ok(members
        .first()
        .is_some_and(|first| first.id == r.id)
        .then_some(KeyboardOf::Album {
            files: members.len(),
        }))
}

/// Whose keyboard a request shows: a single file's, or its album's (with how many files the album has so far).
enum KeyboardOf {
    File,
    Album { files: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_types() {
        assert_eq!(date_utc(0), "1970-01-01");
        assert_eq!(date_utc(1_798_675_200_000), "2026-12-31");
        assert_eq!(date_utc(951_782_400_000), "2000-02-29");
        assert!(plainly_not_media(Some("application/pdf"), Some("a.pdf")));
        assert!(plainly_not_media(Some("video/mp4"), Some("cat.jpg")));
        assert!(plainly_not_media(Some("image/png"), None));
        assert!(!plainly_not_media(Some("video/mp4"), Some("a.mp4")));
        assert!(!plainly_not_media(
            Some("application/octet-stream"),
            Some("clip.mkv")
        ));
        assert!(!plainly_not_media(None, None));
    }
}
