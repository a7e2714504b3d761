//! A stand-in Telegram Bot API server for tests and benchmarks.
//!
//! The bot under test runs in another process and talks to this server exactly as it would
//! talk to `https://api.telegram.org` (teloxide-core: `Bot::new(token).set_api_url(url)`).
//! The test process owns the [`StandIn`], plays the users ([`StandIn::send_text`],
//! [`StandIn::send_video`], [`StandIn::press`], ...) and inspects everything the bot did
//! ([`StandIn::calls`], [`StandIn::wait_until`], [`StandIn::message`]).
//!
//! The API is synchronous: the server runs on its own thread with its own tokio runtime, so
//! it works from plain `#[test]` functions and from inside a tokio runtime alike (the
//! waiting methods block the calling thread).
//!
//! What the server does, following <https://core.telegram.org/bots/api>:
//! - URLs `{url}/bot{TOKEN}/{method}` (POST with a JSON, urlencoded or multipart body, or GET
//!   with a query string) and `{url}/file/bot{TOKEN}/{file_path}` for downloads. Method names
//!   match case-insensitively, as on Telegram. A wrong token answers 401 `Unauthorized`, an
//!   unknown method 404 `Not Found`.
//! - `getUpdates` with offsets (an offset confirms every update below it), limit and long
//!   polling; unconfirmed updates are delivered again (to a restarted bot, say). A newer
//!   `getUpdates` ends a still-waiting older one with 409 `Conflict: terminated by other
//!   getUpdates request...`, as Telegram does.
//! - `sendMessage`, `editMessageText`, `editMessageCaption`, `editMessageReplyMarkup`,
//!   `deleteMessage`, `answerCallbackQuery`, `getFile`, `sendVideo`, `sendDocument`,
//!   `sendAudio`, `sendPhoto`, `sendAnimation`, `sendVoice`, `getMe`, `sendChatAction` and
//!   the set-up methods (`deleteWebhook`, `setMyCommands`, `getMyCommands`, ...).
//! - Telegram's checks that a bot can trip over: messages go only to users who wrote to the
//!   bot (`chat not found`), text over 4096 and captions over 1024 UTF-16 code units
//!   (counted after HTML parsing), malformed HTML with `parse_mode=HTML` (`can't parse
//!   entities: ...`, tdlib's wording), callback data over 64 bytes (`BUTTON_DATA_INVALID`),
//!   edits that change nothing (`message is not modified`), a callback query answered
//!   twice, downloads over 20 MiB (`file is too big`) and uploads over 50 MiB (413).
//! - Failures on demand: [`StandIn::fail_next`] (429 with `retry_after`) and
//!   [`StandIn::block`] (403 `Forbidden: bot was blocked by the user`).
//!
//! - Uploads as teloxide-core sends them (the file field holds `attach://<part>` and the
//!   bytes come in the part so named) and as plain clients do (the part named like the
//!   field); JSON bodies that re-send a known `file_id`.
//!
//! Not modelled: groups and channels, inline mode, webhooks, `allowed_updates` filtering,
//! MarkdownV2 validation, rate limits other than the ones asked for. A long poll whose
//! client went away (a killed bot) is still answered, into the closed connection, when an
//! update arrives: it shows as a successful `getUpdates` in [`StandIn::calls`], and since
//! only a later `offset` confirms updates, they are delivered again to the next poller.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::future::IntoFuture;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;

/// The first update id handed out; later ones increase by 1.
const FIRST_UPDATE_ID: i64 = 1000;
/// Files over this size cannot be downloaded by bots (`getFile` answers "file is too big").
const DOWNLOAD_LIMIT: u64 = 20 * 1024 * 1024;
/// Files over this size cannot be uploaded by bots (413 "Request Entity Too Large").
const UPLOAD_LIMIT: usize = 50 * 1024 * 1024;
/// Longest message text, in UTF-16 code units after entity parsing.
const TEXT_LIMIT: usize = 4096;
/// Longest caption, in UTF-16 code units after entity parsing.
const CAPTION_LIMIT: usize = 1024;
/// Longest `callback_data` of an inline button, in bytes.
const CALLBACK_DATA_LIMIT: usize = 64;
/// Longest long-poll `timeout` honoured, in seconds.
const MAX_POLL_TIMEOUT_S: u64 = 50;
/// What `fail_next` answers, as Telegram words it.
const TOO_MANY_REQUESTS: &str = "Too Many Requests: retry after";
const BLOCKED: &str = "Forbidden: bot was blocked by the user";
const NOT_MODIFIED: &str = "message is not modified: specified new message content and reply \
                            markup are exactly the same as a current content and reply markup of \
                            the message";
const INVALID_QUERY_ID: &str =
    "query is too old and response timeout expired or query id is invalid";
const TERMINATED_BY_OTHER: &str = "Conflict: terminated by other getUpdates request; make sure \
                                   that only one bot instance is running";
/// HTML tags that Telegram's `parse_mode=HTML` accepts.
/// Bot API method names as the documentation spells them; [`Call::method`] uses these
/// (teloxide-core writes `SendMessage`, Telegram matches names case-insensitively).
const METHODS: &[&str] = &[
    "getMe",
    "getUpdates",
    "deleteWebhook",
    "getWebhookInfo",
    "setMyCommands",
    "deleteMyCommands",
    "getMyCommands",
    "setMyDescription",
    "setMyShortDescription",
    "setMyName",
    "setChatMenuButton",
    "setMyDefaultAdministratorRights",
    "sendChatAction",
    "sendMessage",
    "editMessageText",
    "editMessageCaption",
    "editMessageReplyMarkup",
    "deleteMessage",
    "answerCallbackQuery",
    "getFile",
    "sendVideo",
    "sendDocument",
    "sendAudio",
    "sendPhoto",
    "sendAnimation",
    "sendVoice",
];
/// HTML tags that Telegram's `parse_mode=HTML` accepts.
const HTML_TAGS: &[&str] = &[
    "a",
    "b",
    "strong",
    "i",
    "em",
    "s",
    "strike",
    "del",
    "u",
    "ins",
    "tg-spoiler",
    "tg-emoji",
    "span",
    "pre",
    "code",
    "blockquote",
];

/// A Telegram user played by the test (always in a private chat whose id is the user id).
#[derive(Clone, Debug)]
pub struct TgUser {
    /// User id, also the id of the private chat with the bot.
    pub id: i64,
    /// First name shown in the chat.
    pub first_name: String,
    /// `@username`, without the `@`.
    pub username: Option<String>,
    /// IETF language tag of the user's client (`"en"`, `"ru"`, ...).
    pub language_code: Option<String>,
}

impl TgUser {
    /// A user named `User{id}` with username `user{id}`; an empty `language_code` means none.
    pub fn new(id: i64, language_code: &str) -> TgUser {
        TgUser {
            id,
            first_name: format!("User{id}"),
            username: Some(format!("user{id}")),
            language_code: (!language_code.is_empty()).then(|| language_code.to_owned()),
        }
    }

    /// The user as a Bot API `User` object.
    fn to_json(&self) -> Value {
        let mut user = json!({ "id": self.id, "is_bot": false, "first_name": self.first_name });
        if let Some(username) = &self.username {
            user["username"] = json!(username);
        }
        if let Some(language_code) = &self.language_code {
            user["language_code"] = json!(language_code);
        }
        user
    }

    /// The private chat with this user as a Bot API `Chat` object.
    fn chat_json(&self) -> Value {
        let mut chat = json!({ "id": self.id, "type": "private", "first_name": self.first_name });
        if let Some(username) = &self.username {
            chat["username"] = json!(username);
        }
        chat
    }
}

/// One file of an album sent with [`StandIn::send_album`].
#[derive(Clone, Debug)]
pub struct AlbumFile {
    pub bytes: Vec<u8>,
    pub file_name: String,
    pub duration_s: u32,
    pub kind: AlbumKind,
}

/// What an album's file is sent as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlbumKind {
    /// `video/mp4`.
    Video,
    /// An audio file (MIME type guessed from the name).
    Audio,
    /// A photo (`image/jpeg`): albums mix photos and videos.
    Photo,
}

/// One request the bot made, successful or not.
#[derive(Clone, Debug)]
pub struct Call {
    /// The method as the Bot API documentation spells it, e.g. `"sendMessage"`, whatever
    /// the case in the URL path (teloxide-core sends `SendMessage`); a method the stand-in
    /// does not know is kept as it appeared. File downloads (`GET /file/bot.../path`) are
    /// recorded as `"downloadFile"`.
    pub method: String,
    /// The `chat_id` parameter, when numeric.
    pub chat_id: Option<i64>,
    /// For edits and deletes the message concerned; for successful sends the id the
    /// stand-in gave the new message (`None` when the send failed).
    pub message_id: Option<i64>,
    /// The `text` parameter, else `caption`, as sent (before HTML parsing).
    pub text: Option<String>,
    /// The `reply_markup` parameter, parsed.
    pub reply_markup: Option<Value>,
    /// For uploads: the name of the uploaded file (`None` when the client gave none). For
    /// sends that re-use a `file_id`: the stored name of that file.
    pub file_name: Option<String>,
    /// For uploads: the number of bytes uploaded.
    pub file_bytes: Option<usize>,
    /// For media sends: the `file_id` of the file sent (new for uploads); read the bytes
    /// with [`StandIn::file_content`].
    pub file_id: Option<String>,
    /// The `callback_query_id` parameter.
    pub callback_query_id: Option<String>,
    /// When the request arrived.
    pub at: Instant,
    /// Every parameter as received: JSON bodies as they are, query strings, urlencoded
    /// forms and multipart text parts as strings (`"attach://..."` for uploaded files).
    pub params: Value,
    /// The HTTP status answered (200 on success).
    pub status: u16,
    /// The `description` of an error answer.
    pub error: Option<String>,
}

impl Call {
    fn new(method: &str, at: Instant) -> Call {
        let canonical = METHODS
            .iter()
            .find(|known| known.eq_ignore_ascii_case(method));
        Call {
            method: canonical.map_or_else(|| method.to_owned(), |known| (*known).to_owned()),
            chat_id: None,
            message_id: None,
            text: None,
            reply_markup: None,
            file_name: None,
            file_bytes: None,
            file_id: None,
            callback_query_id: None,
            at,
            params: Value::Object(Map::new()),
            status: 0,
            error: None,
        }
    }

    /// Fills the fields that come straight from the parameters.
    fn take_params(&mut self, params: &Map<String, Value>) {
        self.chat_id = param_i64(params, "chat_id");
        self.message_id = param_i64(params, "message_id");
        self.text = param_str(params, "text").or_else(|| param_str(params, "caption"));
        self.reply_markup = param_json(params, "reply_markup").and_then(Result::ok);
        self.callback_query_id = param_str(params, "callback_query_id");
        self.params = Value::Object(params.clone());
    }

    /// Whether the call was answered with success.
    pub fn ok(&self) -> bool {
        self.status == 200
    }
}

/// The current state of a message in a chat.
#[derive(Clone, Debug)]
pub struct SentMessage {
    /// Text or caption as last sent or edited (before HTML parsing).
    pub text: Option<String>,
    /// The inline keyboard under the message (`None` when it has none).
    pub reply_markup: Option<Value>,
    /// How many successful edits the message had.
    pub edits: usize,
}

/// The stand-in server; dropping it stops the server.
pub struct StandIn {
    shared: Arc<Shared>,
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StandIn {
    /// Binds 127.0.0.1:0 and serves on its own thread with its own tokio runtime (works from
    /// sync code and from inside a tokio runtime).
    ///
    /// # Panics
    /// If the port cannot be bound or the thread or runtime cannot be started.
    pub fn spawn(token: &str) -> StandIn {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("stand-in: cannot bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("stand-in: cannot make the listener non-blocking");
        let addr = listener
            .local_addr()
            .expect("stand-in: listener has no address");
        let shared = Arc::new(Shared::new(token));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared))
            .layer(DefaultBodyLimit::max(UPLOAD_LIMIT + 1024 * 1024));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("telegram-stand-in".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("stand-in: cannot build a tokio runtime");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("stand-in: cannot register the listener");
                    tokio::select! {
                        served = axum::serve(listener, app).into_future() => {
                            if let Err(e) = served {
                                eprintln!("stand-in: server stopped: {e}");
                            }
                        }
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here cancels the connections still open (long polls).
            })
            .expect("stand-in: cannot start its thread");
        StandIn {
            shared,
            url: format!("http://{addr}"),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`: what the bot's API URL is set to.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The bot token the server accepts.
    pub fn token(&self) -> String {
        self.shared.token.clone()
    }

    /// The user sends a text message; returns the update id. A text starting with `/`
    /// carries a `bot_command` entity over its first word.
    pub fn send_text(&self, user: &TgUser, text: &str) -> i64 {
        let mut content = Map::new();
        content.insert("text".into(), json!(text));
        if text.starts_with('/') {
            let command = text.split_whitespace().next().unwrap_or(text);
            content.insert(
                "entities".into(),
                json!([{ "type": "bot_command", "offset": 0, "length": utf16_len(command) }]),
            );
        }
        self.user_message(user, content)
    }

    /// The user sends a video (`video/mp4`, 640x360); returns the update id.
    pub fn send_video(
        &self,
        user: &TgUser,
        bytes: Vec<u8>,
        file_name: &str,
        duration_s: u32,
        caption: Option<&str>,
    ) -> i64 {
        let upload = NewFile::with_bytes(MediaKind::Video, bytes, file_name, "video/mp4");
        self.user_media(user, upload, duration_s, caption, None)
    }

    /// The user sends a file as a document; returns the update id.
    pub fn send_document(
        &self,
        user: &TgUser,
        bytes: Vec<u8>,
        file_name: &str,
        mime: &str,
        caption: Option<&str>,
    ) -> i64 {
        let upload = NewFile::with_bytes(MediaKind::Document, bytes, file_name, mime);
        self.user_media(user, upload, 0, caption, None)
    }

    /// The user sends an audio file (MIME type guessed from the name); returns the update id.
    pub fn send_audio(
        &self,
        user: &TgUser,
        bytes: Vec<u8>,
        file_name: &str,
        duration_s: u32,
        caption: Option<&str>,
    ) -> i64 {
        let mime = guess_mime(file_name, "audio/mpeg");
        let upload = NewFile::with_bytes(MediaKind::Audio, bytes, file_name, mime);
        self.user_media(user, upload, duration_s, caption, None)
    }

    /// The user sends a video declared `file_size` bytes long (named `video.mp4`); no bytes
    /// are kept. Over 20 MiB `getFile` refuses it ("file is too big") as Telegram does; at or
    /// under 20 MiB it downloads as zeros. teloxide-core reads `file_size` as a `u32`, so keep
    /// it under 4 GiB. Returns the update id.
    pub fn send_big_video(
        &self,
        user: &TgUser,
        file_size: u64,
        duration_s: u32,
        caption: Option<&str>,
    ) -> i64 {
        let data = (file_size <= DOWNLOAD_LIMIT)
            .then(|| {
                usize::try_from(file_size)
                    .map(|n| Arc::new(vec![0; n]))
                    .ok()
            })
            .flatten();
        let upload = NewFile {
            kind: MediaKind::Video,
            size: file_size,
            data,
            file_name: Some("video.mp4".into()),
            mime: "video/mp4".into(),
        };
        self.user_media(user, upload, duration_s, caption, None)
    }

    /// The user presses an inline button with callback data `data` under message
    /// `message_id` of their chat; returns the update id. The callback query carries the
    /// message as currently stored (after edits). The button need not exist (a stale client
    /// can press a button that is gone).
    ///
    /// # Panics
    /// If the chat has no message `message_id` (never sent, or deleted).
    pub fn press(&self, user: &TgUser, message_id: i64, data: &str) -> i64 {
        let id = {
            let mut inner = self.shared.lock();
            inner.users.insert(user.id, user.clone());
            let Some(message) = inner
                .chats
                .get(&user.id)
                .and_then(|chat| chat.messages.get(&message_id))
            else {
                panic!(
                    "stand-in: press: chat {} has no message {message_id}",
                    user.id
                );
            };
            let message = message.json.clone();
            inner.next_callback += 1;
            let query_id = format!("cq{}", inner.next_callback);
            inner.callback_queries.insert(query_id.clone(), false);
            let query = json!({
                "id": query_id,
                "from": user.to_json(),
                "message": message,
                "chat_instance": format!("ci{}", user.id),
                "data": data,
            });
            inner.push_update("callback_query", query)
        };
        self.shared.updates_changed.notify_waiters();
        id
    }

    /// Everything the bot did, in arrival order (a long poll is recorded when it arrives).
    pub fn calls(&self) -> Vec<Call> {
        self.calls_snapshot().as_ref().clone()
    }

    /// The calls so far without copying them (copy-on-write: the server copies the list
    /// only if it records a call while a snapshot is alive).
    fn calls_snapshot(&self) -> Arc<Vec<Call>> {
        Arc::clone(&self.shared.lock().calls)
    }

    /// Waits (polling every 20 ms) until `pred(&calls)` is true or `timeout` passes; returns
    /// the calls at that moment.
    ///
    /// # Panics
    /// On timeout, with a readable dump of the calls.
    pub fn wait_until(&self, timeout: Duration, pred: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = Instant::now() + timeout;
        loop {
            let calls = self.calls_snapshot();
            if pred(&calls) {
                return calls.as_ref().clone();
            }
            if Instant::now() >= deadline {
                panic!(
                    "stand-in: condition not met within {timeout:?}\n{}",
                    self.dump_calls(&calls)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The calls as readable lines, times relative to the server's start, with consecutive
    /// successful `getUpdates` folded into one line. Used by [`StandIn::wait_until`].
    pub fn dump_calls(&self, calls: &[Call]) -> String {
        let (pending, confirmed) = {
            let inner = self.shared.lock();
            (inner.pending.len(), inner.confirmed_up_to)
        };
        let mut out = format!(
            "{} calls; {pending} updates pending, confirmed up to {confirmed}:\n",
            calls.len()
        );
        let mut polls = 0usize;
        for (i, call) in calls.iter().enumerate() {
            let is_poll = call.method.eq_ignore_ascii_case("getUpdates") && call.status == 200;
            if is_poll {
                polls += 1;
                let next_is_poll = calls.get(i + 1).is_some_and(|next| {
                    next.method.eq_ignore_ascii_case("getUpdates") && next.status == 200
                });
                if next_is_poll {
                    continue;
                }
            }
            let since = call
                .at
                .saturating_duration_since(self.shared.started)
                .as_secs_f64();
            let _ = match call.status {
                0 => write!(out, "  +{since:8.3}s {} (waiting)", call.method),
                status => write!(out, "  +{since:8.3}s {} {status}", call.method),
            };
            if is_poll {
                if polls > 1 {
                    let _ = write!(out, " x{polls}");
                }
                polls = 0;
            }
            if let Some(chat_id) = call.chat_id {
                let _ = write!(out, " chat={chat_id}");
            }
            if let Some(message_id) = call.message_id {
                let _ = write!(out, " msg={message_id}");
            }
            if let Some(text) = &call.text {
                let _ = write!(out, " text={:?}", shorten(text, 300));
            }
            if let Some(markup) = &call.reply_markup {
                let _ = write!(out, " markup={}", shorten(&markup.to_string(), 300));
            }
            if let Some(name) = &call.file_name {
                let _ = write!(out, " file={name:?}");
            }
            if let Some(bytes) = call.file_bytes {
                let _ = write!(out, " bytes={bytes}");
            }
            if let Some(id) = &call.callback_query_id {
                let _ = write!(out, " query={id}");
            }
            if let Some(error) = &call.error {
                let _ = write!(out, " error={error:?}");
            }
            if call.method.eq_ignore_ascii_case("getUpdates") || call.method == "downloadFile" {
                let _ = write!(out, " params={}", call.params);
            }
            out.push('\n');
        }
        out
    }

    /// The current state of a message in a chat (sent by the bot or by the user).
    pub fn message(&self, chat_id: i64, message_id: i64) -> Option<SentMessage> {
        let inner = self.shared.lock();
        let message = inner.chats.get(&chat_id)?.messages.get(&message_id)?;
        Some(SentMessage {
            text: message.raw_text.clone(),
            reply_markup: message.json.get("reply_markup").cloned(),
            edits: message.edits,
        })
    }

    /// The bytes of a stored file (sent by a user or uploaded by the bot), by `file_id`.
    pub fn file_content(&self, file_id: &str) -> Option<Vec<u8>> {
        let inner = self.shared.lock();
        inner
            .files
            .get(file_id)?
            .data
            .as_ref()
            .map(|data| data.as_ref().clone())
    }

    /// The next `n` calls of `method` (case-insensitive) answer HTTP 429 `Too Many
    /// Requests: retry after S` with `parameters.retry_after = S`. Replaces an earlier
    /// setting for the same method; `n = 0` clears it.
    pub fn fail_next(&self, method: &str, n: usize, retry_after_s: u32) {
        self.shared
            .lock()
            .fail_next
            .insert(method.to_ascii_lowercase(), (n, retry_after_s));
    }

    /// Every call aimed at this user's chat (sends, edits, chat actions...) answers 403
    /// `Forbidden: bot was blocked by the user`.
    pub fn block(&self, user_id: i64) {
        self.shared.lock().blocked.insert(user_id);
    }

    /// Undoes [`StandIn::block`].
    pub fn unblock(&self, user_id: i64) {
        self.shared.lock().blocked.remove(&user_id);
    }

    /// The highest update id the bot confirmed (its highest `offset` - 1); 0 before any.
    pub fn confirmed_up_to(&self) -> i64 {
        self.shared.lock().confirmed_up_to
    }

    /// How many updates are queued and not confirmed yet.
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().pending.len()
    }

    /// When update `update_id` was made available to `getUpdates`.
    pub fn update_time(&self, update_id: i64) -> Option<Instant> {
        self.shared.lock().update_times.get(&update_id).copied()
    }

    fn user_message(&self, user: &TgUser, content: Map<String, Value>) -> i64 {
        let id = self.shared.lock().push_user_message(user, content);
        self.shared.updates_changed.notify_waiters();
        id
    }

    /// The user sends several files as one album (media group `group`): one message each, sharing its
    /// `media_group_id`, the caption on the first, as Telegram's clients send albums. Sending again with the same
    /// `group` adds files to the album (a late message of it). Returns the update ids.
    pub fn send_album(
        &self,
        user: &TgUser,
        group: &str,
        files: Vec<AlbumFile>,
        caption: Option<&str>,
    ) -> Vec<i64> {
        files
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let (kind, mime) = match f.kind {
                    AlbumKind::Video => (MediaKind::Video, "video/mp4"),
                    AlbumKind::Audio => (MediaKind::Audio, guess_mime(&f.file_name, "audio/mpeg")),
                    AlbumKind::Photo => (MediaKind::Photo, "image/jpeg"),
                };
                let upload = NewFile::with_bytes(kind, f.bytes, &f.file_name, mime);
                let caption = if i == 0 { caption } else { None };
                self.user_media(user, upload, f.duration_s, caption, Some(group))
            })
            .collect()
    }

    fn user_media(
        &self,
        user: &TgUser,
        upload: NewFile,
        duration_s: u32,
        caption: Option<&str>,
        group: Option<&str>,
    ) -> i64 {
        let id = {
            let mut inner = self.shared.lock();
            let kind = upload.kind;
            let file_id = inner.store_file(upload);
            let mut content = Map::new();
            let media = inner.media_json(&file_id, kind, duration_s, (640, 360));
            content.insert(kind.field().into(), media);
            if let Some(caption) = caption {
                content.insert("caption".into(), json!(caption));
            }
            if let Some(group) = group {
                content.insert("media_group_id".into(), json!(group));
            }
            inner.push_user_message(user, content)
        };
        self.shared.updates_changed.notify_waiters();
        id
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// State shared by the server and the test-side handle.
struct Shared {
    token: String,
    started: Instant,
    /// The bot as a `User` object (the `from` of its messages).
    bot_user: Value,
    /// Woken whenever updates are queued or a newer `getUpdates` arrives.
    updates_changed: Notify,
    inner: Mutex<Inner>,
}

impl Shared {
    fn new(token: &str) -> Shared {
        // Telegram tokens start with the bot's id.
        let bot_id = token
            .split(':')
            .next()
            .and_then(|id| id.parse::<i64>().ok())
            .unwrap_or(7_000_000_001);
        Shared {
            token: token.to_owned(),
            started: Instant::now(),
            bot_user: json!({
                "id": bot_id,
                "is_bot": true,
                "first_name": "AutoSub",
                "username": "autosub_test_bot",
            }),
            updates_changed: Notify::new(),
            inner: Mutex::new(Inner::new()),
        }
    }

    /// Locks the state; a panic elsewhere while it was locked does not poison it for good.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The `getMe` answer.
    fn me(&self) -> Value {
        let mut me = self.bot_user.clone();
        for (key, value) in [
            ("can_join_groups", true),
            ("can_read_all_group_messages", false),
            ("supports_inline_queries", false),
            ("can_connect_to_business", false),
            ("has_main_web_app", false),
        ] {
            me[key] = json!(value);
        }
        me
    }
}

/// A message as stored in its chat.
struct StoredMessage {
    /// The Bot API `Message` object as last returned.
    json: Value,
    /// Text or caption as sent (before HTML parsing).
    raw_text: Option<String>,
    /// Whether the message has a caption rather than a text.
    is_media: bool,
    /// Whether the bot sent it (only those can be edited).
    from_bot: bool,
    edits: usize,
}

/// A private chat: its messages and the next message id.
#[derive(Default)]
struct ChatState {
    last_message_id: i64,
    messages: HashMap<i64, StoredMessage>,
}

/// A stored file.
struct StoredFile {
    unique_id: String,
    path: String,
    size: u64,
    /// `None` for a file declared but not kept (too big to download).
    data: Option<Arc<Vec<u8>>>,
    file_name: Option<String>,
    mime: String,
}

/// A file about to be stored.
struct NewFile {
    kind: MediaKind,
    size: u64,
    data: Option<Arc<Vec<u8>>>,
    file_name: Option<String>,
    mime: String,
}

impl NewFile {
    fn with_bytes(kind: MediaKind, bytes: Vec<u8>, file_name: &str, mime: &str) -> NewFile {
        NewFile {
            kind,
            size: bytes.len() as u64,
            data: Some(Arc::new(bytes)),
            file_name: (!file_name.is_empty()).then(|| file_name.to_owned()),
            mime: mime.to_owned(),
        }
    }
}

/// The kinds of media a message can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MediaKind {
    Video,
    Document,
    Audio,
    Photo,
    Animation,
    Voice,
}

impl MediaKind {
    /// The send method's file field, also the message field.
    fn field(self) -> &'static str {
        match self {
            MediaKind::Video => "video",
            MediaKind::Document => "document",
            MediaKind::Audio => "audio",
            MediaKind::Photo => "photo",
            MediaKind::Animation => "animation",
            MediaKind::Voice => "voice",
        }
    }

    /// The folder of `file_path`, as on Telegram.
    fn folder(self) -> &'static str {
        match self {
            MediaKind::Video => "videos",
            MediaKind::Document => "documents",
            MediaKind::Audio => "music",
            MediaKind::Photo => "photos",
            MediaKind::Animation => "animations",
            MediaKind::Voice => "voice",
        }
    }

    /// The MIME type assumed when the file name tells nothing.
    fn default_mime(self) -> &'static str {
        match self {
            MediaKind::Video => "video/mp4",
            MediaKind::Document => "application/octet-stream",
            MediaKind::Audio => "audio/mpeg",
            MediaKind::Photo => "image/jpeg",
            MediaKind::Animation => "video/mp4",
            MediaKind::Voice => "audio/ogg",
        }
    }

    /// The kind sent by method `lower` (lower-cased), if it is a media send.
    fn of_method(lower: &str) -> Option<MediaKind> {
        Some(match lower {
            "sendvideo" => MediaKind::Video,
            "senddocument" => MediaKind::Document,
            "sendaudio" => MediaKind::Audio,
            "sendphoto" => MediaKind::Photo,
            "sendanimation" => MediaKind::Animation,
            "sendvoice" => MediaKind::Voice,
            _ => return None,
        })
    }
}

/// Everything behind the lock.
struct Inner {
    next_update_id: i64,
    /// Queued, unconfirmed updates in id order.
    pending: VecDeque<(i64, Value)>,
    confirmed_up_to: i64,
    update_times: HashMap<i64, Instant>,
    /// Bumped by every `getUpdates`; a waiting poll that sees it change ends with 409.
    poll_generation: u64,
    users: HashMap<i64, TgUser>,
    chats: HashMap<i64, ChatState>,
    files: HashMap<String, StoredFile>,
    /// `file_path` to `file_id`.
    file_paths: HashMap<String, String>,
    next_file: u64,
    /// Callback query id to whether it was answered.
    callback_queries: HashMap<String, bool>,
    next_callback: u64,
    /// Copy-on-write so that [`StandIn::wait_until`] can poll often without copying.
    calls: Arc<Vec<Call>>,
    /// Lower-cased method to (failures left, retry_after).
    fail_next: HashMap<String, (usize, u32)>,
    blocked: HashSet<i64>,
}

impl Inner {
    fn new() -> Inner {
        Inner {
            next_update_id: FIRST_UPDATE_ID,
            pending: VecDeque::new(),
            confirmed_up_to: 0,
            update_times: HashMap::new(),
            poll_generation: 0,
            users: HashMap::new(),
            chats: HashMap::new(),
            files: HashMap::new(),
            file_paths: HashMap::new(),
            next_file: 0,
            callback_queries: HashMap::new(),
            next_callback: 0,
            calls: Arc::new(Vec::new()),
            fail_next: HashMap::new(),
            blocked: HashSet::new(),
        }
    }

    /// Records a call; returns its index.
    fn record(&mut self, call: Call) -> usize {
        let calls = Arc::make_mut(&mut self.calls);
        calls.push(call);
        calls.len() - 1
    }

    /// Queues an update of kind `kind` (`"message"`, `"callback_query"`); returns its id.
    fn push_update(&mut self, kind: &str, body: Value) -> i64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        self.pending
            .push_back((id, json!({ "update_id": id, kind: body })));
        self.update_times.insert(id, Instant::now());
        id
    }

    /// Drops every update below `offset` (a positive offset confirms them).
    fn confirm(&mut self, offset: i64) {
        if offset <= 0 {
            return;
        }
        while self.pending.front().is_some_and(|(id, _)| *id < offset) {
            self.pending.pop_front();
        }
        self.confirmed_up_to = self.confirmed_up_to.max(offset - 1);
    }

    /// Up to `limit` queued updates with id at least `offset`.
    fn updates_from(&self, offset: i64, limit: usize) -> Vec<Value> {
        self.pending
            .iter()
            .filter(|(id, _)| *id >= offset)
            .take(limit)
            .map(|(_, update)| update.clone())
            .collect()
    }

    /// The next message id in `chat_id`.
    fn next_message_id(&mut self, chat_id: i64) -> i64 {
        let chat = self.chats.entry(chat_id).or_default();
        chat.last_message_id += 1;
        chat.last_message_id
    }

    fn push_user_message(&mut self, user: &TgUser, content: Map<String, Value>) -> i64 {
        self.users.insert(user.id, user.clone());
        let message_id = self.next_message_id(user.id);
        let mut message = json!({
            "message_id": message_id,
            "date": unix_now(),
            "chat": user.chat_json(),
            "from": user.to_json(),
        });
        let is_media = !content.contains_key("text");
        let raw_text = content
            .get("text")
            .or_else(|| content.get("caption"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Value::Object(fields) = &mut message {
            fields.extend(content);
        }
        let stored = StoredMessage {
            json: message.clone(),
            raw_text,
            is_media,
            from_bot: false,
            edits: 0,
        };
        self.chats
            .entry(user.id)
            .or_default()
            .messages
            .insert(message_id, stored);
        self.push_update("message", message)
    }

    /// Stores a file; returns its new `file_id`.
    fn store_file(&mut self, file: NewFile) -> String {
        self.next_file += 1;
        let n = self.next_file;
        let id = format!("{}-file-{n}", file.kind.field());
        let extension = file
            .file_name
            .as_deref()
            .and_then(|name| name.rsplit_once('.'))
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .filter(|ext| !ext.is_empty() && ext.chars().all(|c| c.is_ascii_alphanumeric()));
        let path = match extension {
            Some(ext) => format!("{}/file_{n}.{ext}", file.kind.folder()),
            None => format!("{}/file_{n}", file.kind.folder()),
        };
        self.file_paths.insert(path.clone(), id.clone());
        self.files.insert(
            id.clone(),
            StoredFile {
                unique_id: format!("unique-{n}"),
                path,
                size: file.size,
                data: file.data,
                file_name: file.file_name,
                mime: file.mime,
            },
        );
        id
    }

    /// The message field for a stored file sent as `kind`.
    fn media_json(&self, file_id: &str, kind: MediaKind, duration: u32, size: (u32, u32)) -> Value {
        let Some(file) = self.files.get(file_id) else {
            return Value::Null;
        };
        let (width, height) = size;
        let mut media = json!({
            "file_id": file_id,
            "file_unique_id": file.unique_id,
            "file_size": file.size,
        });
        match kind {
            MediaKind::Photo => {
                media["width"] = json!(width);
                media["height"] = json!(height);
                return json!([media]);
            }
            MediaKind::Video | MediaKind::Animation => {
                media["width"] = json!(width);
                media["height"] = json!(height);
                media["duration"] = json!(duration);
            }
            MediaKind::Audio | MediaKind::Voice => media["duration"] = json!(duration),
            MediaKind::Document => {}
        }
        media["mime_type"] = json!(file.mime);
        if let (Some(name), false) = (&file.file_name, kind == MediaKind::Voice) {
            media["file_name"] = json!(name);
        }
        media
    }

    /// The chat a method targets: it must be a user who wrote to the bot and has not
    /// blocked it.
    fn target_chat(&self, params: &Map<String, Value>) -> Result<(i64, Value), Refusal> {
        if !params.contains_key("chat_id") {
            return Err(Refusal::bad_request("chat_id is empty"));
        }
        let user = param_i64(params, "chat_id")
            .and_then(|id| self.users.get(&id))
            .ok_or_else(|| Refusal::bad_request("chat not found"))?;
        if self.blocked.contains(&user.id) {
            return Err(Refusal::new(StatusCode::FORBIDDEN, BLOCKED));
        }
        Ok((user.id, user.chat_json()))
    }

    /// The message an edit targets.
    fn target_message(
        &mut self,
        params: &Map<String, Value>,
        what: &str,
    ) -> Result<&mut StoredMessage, Refusal> {
        if params.contains_key("inline_message_id") {
            return Err(Refusal::bad_request(
                "inline messages are not supported by the stand-in",
            ));
        }
        let (chat_id, _) = self.target_chat(params)?;
        let message_id = param_i64(params, "message_id")
            .ok_or_else(|| Refusal::bad_request("message identifier is not specified"))?;
        self.chats
            .get_mut(&chat_id)
            .and_then(|chat| chat.messages.get_mut(&message_id))
            .ok_or_else(|| Refusal::bad_request(&format!("message to {what} not found")))
    }

    /// Answers one API call (all but `getUpdates`), filling what it learns into `call`.
    fn dispatch(
        &mut self,
        shared: &Shared,
        lower: &str,
        params: &Map<String, Value>,
        uploads: &mut HashMap<String, Upload>,
        call: &mut Call,
    ) -> Result<Value, Refusal> {
        match lower {
            "getme" => Ok(shared.me()),
            "deletewebhook"
            | "setmycommands"
            | "deletemycommands"
            | "setmydescription"
            | "setmyshortdescription"
            | "setmyname"
            | "setchatmenubutton"
            | "setmydefaultadministratorrights" => Ok(json!(true)),
            "getmycommands" => Ok(json!([])),
            "getwebhookinfo" => Ok(json!({
                "url": "",
                "has_custom_certificate": false,
                "pending_update_count": self.pending.len(),
            })),
            "sendchataction" => {
                self.target_chat(params)?;
                param_str(params, "action")
                    .ok_or_else(|| Refusal::bad_request("wrong parameter action in request"))?;
                Ok(json!(true))
            }
            "sendmessage" => self.send_message(shared, params, call),
            "editmessagetext" => self.edit_text(params),
            "editmessagecaption" => self.edit_caption(params),
            "editmessagereplymarkup" => self.edit_markup(params),
            "deletemessage" => {
                let (chat_id, _) = self.target_chat(params)?;
                let message_id = param_i64(params, "message_id")
                    .ok_or_else(|| Refusal::bad_request("message identifier is not specified"))?;
                self.chats
                    .get_mut(&chat_id)
                    .and_then(|chat| chat.messages.remove(&message_id))
                    .ok_or_else(|| Refusal::bad_request("message to delete not found"))?;
                Ok(json!(true))
            }
            "answercallbackquery" => {
                let id = param_str(params, "callback_query_id").unwrap_or_default();
                match self.callback_queries.get_mut(&id) {
                    Some(answered @ false) => *answered = true,
                    _ => return Err(Refusal::bad_request(INVALID_QUERY_ID)),
                }
                if param_str(params, "text").is_some_and(|text| text.chars().count() > 200) {
                    return Err(Refusal::bad_request("MESSAGE_TOO_LONG"));
                }
                Ok(json!(true))
            }
            "getfile" => {
                let id = param_str(params, "file_id").unwrap_or_default();
                let file = self
                    .files
                    .get(&id)
                    .ok_or_else(|| Refusal::bad_request("invalid file_id"))?;
                if file.size > DOWNLOAD_LIMIT {
                    return Err(Refusal::bad_request("file is too big"));
                }
                Ok(json!({
                    "file_id": id,
                    "file_unique_id": file.unique_id,
                    "file_size": file.size,
                    "file_path": file.path,
                }))
            }
            _ => match MediaKind::of_method(lower) {
                Some(kind) => self.send_media(shared, kind, params, uploads, call),
                None => Err(Refusal::new(StatusCode::NOT_FOUND, "Not Found")),
            },
        }
    }

    fn send_message(
        &mut self,
        shared: &Shared,
        params: &Map<String, Value>,
        call: &mut Call,
    ) -> Result<Value, Refusal> {
        let (chat_id, chat) = self.target_chat(params)?;
        let text = param_str(params, "text").unwrap_or_default();
        let visible = visible_text(&text, params, TEXT_LIMIT, "message is too long")?;
        if visible.trim().is_empty() {
            return Err(Refusal::bad_request("message text is empty"));
        }
        let markup = inline_markup(params)?;
        let message_id = self.next_message_id(chat_id);
        let mut message = json!({
            "message_id": message_id,
            "date": unix_now(),
            "chat": chat,
            "from": shared.bot_user,
            "text": visible,
        });
        if let Some(markup) = markup {
            message["reply_markup"] = markup;
        }
        self.store_bot_message(chat_id, message_id, &message, Some(text), false);
        call.message_id = Some(message_id);
        Ok(message)
    }

    fn send_media(
        &mut self,
        shared: &Shared,
        kind: MediaKind,
        params: &Map<String, Value>,
        uploads: &mut HashMap<String, Upload>,
        call: &mut Call,
    ) -> Result<Value, Refusal> {
        let (chat_id, chat) = self.target_chat(params)?;
        let field = kind.field();
        let upload = match param_str(params, field) {
            Some(value) => match value.strip_prefix("attach://") {
                Some(part) => Some(uploads.remove(part).ok_or_else(|| {
                    Refusal::bad_request("wrong file identifier/HTTP URL specified")
                })?),
                None => None,
            },
            None => Some(uploads.remove(field).ok_or_else(|| {
                Refusal::bad_request(&format!("there is no {field} in the request"))
            })?),
        };
        let caption = param_str(params, "caption");
        let visible_caption = match &caption {
            Some(caption) => Some(visible_text(
                caption,
                params,
                CAPTION_LIMIT,
                "message caption is too long",
            )?),
            None => None,
        };
        let markup = inline_markup(params)?;
        let file_id = match upload {
            Some(upload) => {
                if upload.bytes.len() > UPLOAD_LIMIT {
                    return Err(Refusal::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "Request Entity Too Large",
                    ));
                }
                call.file_bytes = Some(upload.bytes.len());
                call.file_name.clone_from(&upload.file_name);
                let mime = upload
                    .file_name
                    .as_deref()
                    .map_or(kind.default_mime(), |name| {
                        guess_mime(name, kind.default_mime())
                    });
                self.store_file(NewFile {
                    kind,
                    size: upload.bytes.len() as u64,
                    data: Some(Arc::new(upload.bytes)),
                    file_name: upload.file_name,
                    mime: mime.to_owned(),
                })
            }
            None => {
                let value = param_str(params, field).unwrap_or_default();
                if value.starts_with("http://") || value.starts_with("https://") {
                    return Err(Refusal::bad_request("failed to get HTTP URL content"));
                }
                let file = self.files.get(&value).ok_or_else(|| {
                    Refusal::bad_request("wrong file identifier/HTTP URL specified")
                })?;
                call.file_name.clone_from(&file.file_name);
                value
            }
        };
        call.file_id = Some(file_id.clone());
        let dimension = |name: &str| {
            param_i64(params, name)
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0)
        };
        let media = self.media_json(
            &file_id,
            kind,
            dimension("duration"),
            (dimension("width"), dimension("height")),
        );
        let message_id = self.next_message_id(chat_id);
        let mut message = json!({
            "message_id": message_id,
            "date": unix_now(),
            "chat": chat,
            "from": shared.bot_user,
        });
        message[field] = media;
        if let Some(visible) = visible_caption {
            message["caption"] = json!(visible);
        }
        if let Some(markup) = markup {
            message["reply_markup"] = markup;
        }
        self.store_bot_message(chat_id, message_id, &message, caption, true);
        call.message_id = Some(message_id);
        Ok(message)
    }

    fn store_bot_message(
        &mut self,
        chat_id: i64,
        message_id: i64,
        message: &Value,
        raw_text: Option<String>,
        is_media: bool,
    ) {
        let stored = StoredMessage {
            json: message.clone(),
            raw_text,
            is_media,
            from_bot: true,
            edits: 0,
        };
        self.chats
            .entry(chat_id)
            .or_default()
            .messages
            .insert(message_id, stored);
    }

    fn edit_text(&mut self, params: &Map<String, Value>) -> Result<Value, Refusal> {
        let text = param_str(params, "text").unwrap_or_default();
        let visible = visible_text(&text, params, TEXT_LIMIT, "message is too long")?;
        let markup = inline_markup(params)?;
        let message = self.target_message(params, "edit")?;
        if !message.from_bot {
            return Err(Refusal::bad_request("message can't be edited"));
        }
        if message.is_media {
            return Err(Refusal::bad_request(
                "there is no text in the message to edit",
            ));
        }
        if visible.trim().is_empty() {
            return Err(Refusal::bad_request("message text is empty"));
        }
        apply_edit(message, "text", Some(text), Some(visible), markup)
    }

    fn edit_caption(&mut self, params: &Map<String, Value>) -> Result<Value, Refusal> {
        let caption = param_str(params, "caption");
        let visible = match &caption {
            Some(caption) => Some(visible_text(
                caption,
                params,
                CAPTION_LIMIT,
                "message caption is too long",
            )?),
            None => None,
        };
        let markup = inline_markup(params)?;
        let message = self.target_message(params, "edit")?;
        if !message.from_bot {
            return Err(Refusal::bad_request("message can't be edited"));
        }
        if !message.is_media {
            return Err(Refusal::bad_request(
                "there is no caption in the message to edit",
            ));
        }
        apply_edit(message, "caption", caption, visible, markup)
    }

    fn edit_markup(&mut self, params: &Map<String, Value>) -> Result<Value, Refusal> {
        let markup = inline_markup(params)?;
        let message = self.target_message(params, "edit")?;
        if !message.from_bot {
            return Err(Refusal::bad_request("message can't be edited"));
        }
        if message.json.get("reply_markup") == markup.as_ref() {
            return Err(Refusal::bad_request(NOT_MODIFIED));
        }
        set_or_remove(&mut message.json, "reply_markup", markup);
        message.json["edit_date"] = json!(unix_now());
        message.edits += 1;
        Ok(message.json.clone())
    }
}

/// Replaces the text (`field = "text"`) or caption of a bot message and its inline
/// keyboard (none given removes it, as on Telegram); refuses an edit that changes nothing.
fn apply_edit(
    message: &mut StoredMessage,
    field: &str,
    raw: Option<String>,
    visible: Option<String>,
    markup: Option<Value>,
) -> Result<Value, Refusal> {
    if message.raw_text == raw && message.json.get("reply_markup") == markup.as_ref() {
        return Err(Refusal::bad_request(NOT_MODIFIED));
    }
    message.raw_text = raw;
    set_or_remove(&mut message.json, field, visible.map(Value::String));
    set_or_remove(&mut message.json, "reply_markup", markup);
    message.json["edit_date"] = json!(unix_now());
    message.edits += 1;
    Ok(message.json.clone())
}

/// Sets `object[key]` to `value`, or removes the key for `None`.
fn set_or_remove(object: &mut Value, key: &str, value: Option<Value>) {
    if let Value::Object(fields) = object {
        match value {
            Some(value) => {
                fields.insert(key.to_owned(), value);
            }
            None => {
                fields.remove(key);
            }
        }
    }
}

/// An error answer.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    description: String,
    retry_after: Option<u32>,
}

impl Refusal {
    fn new(status: StatusCode, description: &str) -> Refusal {
        Refusal {
            status,
            description: description.to_owned(),
            retry_after: None,
        }
    }

    /// A 400 whose description starts with `Bad Request: `, as Telegram's do.
    fn bad_request(what: &str) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, &format!("Bad Request: {what}"))
    }
}

/// An uploaded file part.
struct Upload {
    file_name: Option<String>,
    bytes: Vec<u8>,
}

/// The text Telegram would show for `text` (HTML parsed when `parse_mode` is HTML), or the
/// refusal when it does not parse or is longer than `limit` UTF-16 code units.
fn visible_text(
    text: &str,
    params: &Map<String, Value>,
    limit: usize,
    too_long: &str,
) -> Result<String, Refusal> {
    let html =
        param_str(params, "parse_mode").is_some_and(|mode| mode.eq_ignore_ascii_case("html"));
    let visible = if html {
        parse_html(text).map_err(|e| Refusal::bad_request(&format!("can't parse entities: {e}")))?
    } else {
        text.to_owned()
    };
    if utf16_len(visible.trim()) > limit {
        return Err(Refusal::bad_request(too_long));
    }
    Ok(visible)
}

/// Parses Telegram-flavoured HTML as tdlib does; returns the visible text or tdlib's error.
fn parse_html(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut open: Vec<String> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'&' => match decode_entity(&text[i..]) {
                Some((ch, len)) => {
                    out.push(ch);
                    i += len;
                }
                None => {
                    out.push('&');
                    i += 1;
                }
            },
            b'<' => {
                let begin = i;
                i += 1;
                if bytes.get(i) == Some(&b'/') {
                    let Some(expected) = open.pop() else {
                        return Err(format!("Unexpected end tag at byte offset {begin}"));
                    };
                    i += 1;
                    let start = i;
                    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                        i += 1;
                    }
                    let name = text[start..i].to_ascii_lowercase();
                    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    if bytes.get(i) != Some(&b'>') {
                        return Err(format!("Unclosed end tag at byte offset {begin}"));
                    }
                    i += 1;
                    if !name.is_empty() && name != expected {
                        return Err(format!(
                            "Unmatched end tag at byte offset {begin}, expected \"</{expected}>\", \
                             found \"</{name}>\""
                        ));
                    }
                } else {
                    let start = i;
                    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                        i += 1;
                    }
                    if i >= bytes.len() {
                        return Err(format!("Unclosed start tag at byte offset {begin}"));
                    }
                    let name = text[start..i].to_ascii_lowercase();
                    if !HTML_TAGS.contains(&name.as_str()) {
                        return Err(format!(
                            "Unsupported start tag \"{name}\" at byte offset {begin}"
                        ));
                    }
                    let attributes_start = i;
                    let mut quote = None;
                    while i < bytes.len() {
                        match (quote, bytes[i]) {
                            (Some(q), c) if c == q => quote = None,
                            (None, c @ (b'"' | b'\'')) => quote = Some(c),
                            (None, b'>') => break,
                            _ => {}
                        }
                        i += 1;
                    }
                    if i >= bytes.len() {
                        return Err(format!("Unclosed start tag at byte offset {begin}"));
                    }
                    let attributes = &text[attributes_start..i];
                    i += 1;
                    if name == "span" && !attributes.contains("tg-spoiler") {
                        return Err(format!(
                            "Tag \"span\" must have class \"tg-spoiler\" at byte offset {begin}"
                        ));
                    }
                    open.push(name);
                }
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
                out.push(ch);
                i += ch.len_utf8().max(1);
            }
        }
    }
    match open.last() {
        Some(name) => Err(format!(
            "Can't find end tag corresponding to start tag \"{name}\""
        )),
        None => Ok(out),
    }
}

/// Decodes the HTML entity at the start of `s` (`&lt;`, `&gt;`, `&amp;`, `&quot;`, `&#N;`,
/// `&#xH;`, the ones Telegram knows); returns the character and the entity's length.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    let end = s.get(..12.min(s.len()))?.find(';')?;
    let body = &s[1..end];
    let ch = match body {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        _ => {
            let number = body.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse::<u32>().ok()?,
            };
            char::from_u32(code)?
        }
    };
    Some((ch, end + 1))
}

/// The `reply_markup` to attach to a message: the inline keyboard when there is one and it
/// is valid, `None` when there is none (or it is empty, or another kind of keyboard).
fn inline_markup(params: &Map<String, Value>) -> Result<Option<Value>, Refusal> {
    let Some(markup) = param_json(params, "reply_markup") else {
        return Ok(None);
    };
    let markup = markup
        .map_err(|_| Refusal::bad_request("can't parse reply keyboard markup JSON object"))?;
    if !markup.is_object() {
        return Err(Refusal::bad_request(
            "can't parse reply keyboard markup JSON object",
        ));
    }
    let Some(rows) = markup.get("inline_keyboard") else {
        return Ok(None);
    };
    let not_arrays = || {
        Refusal::bad_request(
            "field \"inline_keyboard\" of the InlineKeyboardMarkup should be an Array of Arrays",
        )
    };
    let rows = rows.as_array().ok_or_else(not_arrays)?;
    for row in rows {
        let buttons = row.as_array().ok_or_else(not_arrays)?;
        for button in buttons {
            if button.get("text").and_then(Value::as_str).is_none() {
                return Err(Refusal::bad_request("can't find field \"text\""));
            }
            let actions = button.as_object().map_or(0, |fields| {
                fields.keys().filter(|key| key.as_str() != "text").count()
            });
            if actions == 0 {
                return Err(Refusal::bad_request(
                    "text buttons are unallowed in the inline keyboard",
                ));
            }
            if let Some(data) = button.get("callback_data") {
                let data = data.as_str().unwrap_or_default();
                if data.is_empty() || data.len() > CALLBACK_DATA_LIMIT {
                    return Err(Refusal::bad_request("BUTTON_DATA_INVALID"));
                }
            }
        }
    }
    if rows
        .iter()
        .all(|row| row.as_array().is_some_and(Vec::is_empty))
    {
        return Ok(None);
    }
    Ok(Some(markup))
}

/// A parameter as an integer (JSON number or decimal string).
fn param_i64(params: &Map<String, Value>, key: &str) -> Option<i64> {
    match params.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A parameter as a string (numbers and booleans written out).
fn param_str(params: &Map<String, Value>, key: &str) -> Option<String> {
    match params.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A JSON parameter, given as JSON or as a string of JSON (`Err` when that does not parse).
fn param_json(params: &Map<String, Value>, key: &str) -> Option<Result<Value, ()>> {
    match params.get(key)? {
        Value::String(s) => Some(serde_json::from_str(s).map_err(|_| ())),
        Value::Null => None,
        other => Some(Ok(other.clone())),
    }
}

/// Length in UTF-16 code units, the unit of Telegram's lengths and offsets.
fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// At most `max` characters of `s`, with an ellipsis when cut.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_owned(),
    }
}

/// A MIME type from a file name's extension.
fn guess_mime<'a>(file_name: &str, default: &'a str) -> &'a str {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("mp4" | "m4v") => "video/mp4",
        Some("mkv") => "video/x-matroska",
        Some("webm") => "video/webm",
        Some("mov") => "video/quicktime",
        Some("avi") => "video/x-msvideo",
        Some("mp3") => "audio/mpeg",
        Some("m4a") => "audio/mp4",
        Some("ogg" | "oga" | "opus") => "audio/ogg",
        Some("wav") => "audio/x-wav",
        Some("flac") => "audio/flac",
        Some("srt") => "application/x-subrip",
        Some("vtt") => "text/vtt",
        Some("ass" | "ssa") => "text/x-ssa",
        Some("txt") => "text/plain",
        Some("json") => "application/json",
        Some("zip") => "application/zip",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("pdf") => "application/pdf",
        _ => default,
    }
}

/// Decodes `%XX` escapes (and `+` as a space in forms); invalid UTF-8 is replaced.
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match bytes[i] {
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(high), Some(low)) => {
                    // Two hex digits make at most 255.
                    out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=1&b=2` into `params` (values as strings).
fn parse_urlencoded(s: &str, params: &mut Map<String, Value>) {
    for pair in s.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.insert(
            percent_decode(key, true),
            Value::String(percent_decode(value, true)),
        );
    }
}

/// The JSON answer for a result or a refusal.
fn answer(result: &Result<Value, Refusal>) -> Response {
    match result {
        Ok(value) => (
            StatusCode::OK,
            axum::Json(json!({ "ok": true, "result": value })),
        )
            .into_response(),
        Err(refusal) => {
            let mut body = json!({
                "ok": false,
                "error_code": refusal.status.as_u16(),
                "description": refusal.description,
            });
            if let Some(retry_after) = refusal.retry_after {
                body["parameters"] = json!({ "retry_after": retry_after });
            }
            (refusal.status, axum::Json(body)).into_response()
        }
    }
}

/// Notes the outcome of `call` and records it.
fn finish(shared: &Shared, mut call: Call, result: &Result<Value, Refusal>) {
    settle(&mut call, result);
    shared.lock().record(call);
}

/// Copies the outcome into `call`.
fn settle(call: &mut Call, result: &Result<Value, Refusal>) {
    match result {
        Ok(_) => call.status = 200,
        Err(refusal) => {
            call.status = refusal.status.as_u16();
            call.error = Some(refusal.description.clone());
        }
    }
}

/// Every request lands here.
async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let at = Instant::now();
    let segments: Vec<String> = request
        .uri()
        .path()
        .split('/')
        .skip(1)
        .map(|s| percent_decode(s, false))
        .collect();
    match segments.as_slice() {
        [bot, method] if bot.starts_with("bot") && !method.is_empty() => {
            let (token, method) = (bot["bot".len()..].to_owned(), method.clone());
            api_call(&shared, at, &token, &method, request).await
        }
        [file, bot, path @ ..] if file == "file" && bot.starts_with("bot") && !path.is_empty() => {
            download(&shared, at, &bot["bot".len()..], &path.join("/"))
        }
        _ => answer(&Err(Refusal::new(StatusCode::NOT_FOUND, "Not Found"))),
    }
}

/// `GET /file/bot{token}/{path}`.
fn download(shared: &Shared, at: Instant, token: &str, path: &str) -> Response {
    let mut call = Call::new("downloadFile", at);
    call.params = json!({ "file_path": path });
    if token != shared.token {
        let refusal = Err(Refusal::new(StatusCode::UNAUTHORIZED, "Unauthorized"));
        finish(shared, call, &refusal);
        return answer(&refusal);
    }
    let mut inner = shared.lock();
    let data = inner
        .file_paths
        .get(path)
        .and_then(|id| inner.files.get(id))
        .and_then(|file| file.data.clone());
    match data {
        Some(data) => {
            call.status = 200;
            call.file_bytes = Some(data.len());
            inner.record(call);
            let body = Body::from(data.as_ref().clone());
            ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
        }
        None => {
            let refusal = Err(Refusal::new(StatusCode::NOT_FOUND, "Not Found"));
            settle(&mut call, &refusal);
            inner.record(call);
            answer(&refusal)
        }
    }
}

/// `{GET,POST} /bot{token}/{method}`.
async fn api_call(
    shared: &Arc<Shared>,
    at: Instant,
    token: &str,
    method: &str,
    request: Request,
) -> Response {
    let mut call = Call::new(method, at);
    if token != shared.token {
        let refusal = Err(Refusal::new(StatusCode::UNAUTHORIZED, "Unauthorized"));
        finish(shared, call, &refusal);
        return answer(&refusal);
    }
    let (params, mut uploads) = match read_params(request).await {
        Ok(read) => read,
        Err(refusal) => {
            let refusal = Err(refusal);
            finish(shared, call, &refusal);
            return answer(&refusal);
        }
    };
    call.take_params(&params);
    let lower = method.to_ascii_lowercase();
    let failure = {
        let mut inner = shared.lock();
        match inner.fail_next.get_mut(&lower) {
            Some((left, retry_after)) if *left > 0 => {
                *left -= 1;
                Some(Refusal {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    description: format!("{TOO_MANY_REQUESTS} {retry_after}"),
                    retry_after: Some(*retry_after),
                })
            }
            _ => None,
        }
    };
    if let Some(refusal) = failure {
        let refusal = Err(refusal);
        finish(shared, call, &refusal);
        return answer(&refusal);
    }
    if lower == "getupdates" {
        return get_updates(shared, call, &params).await;
    }
    let result = {
        let mut inner = shared.lock();
        let result = inner.dispatch(shared, &lower, &params, &mut uploads, &mut call);
        settle(&mut call, &result);
        inner.record(call);
        result
    };
    answer(&result)
}

/// `getUpdates`: confirms below `offset`, answers what is queued from `offset` on, else
/// waits up to `timeout` seconds for something to be queued.
async fn get_updates(shared: &Arc<Shared>, call: Call, params: &Map<String, Value>) -> Response {
    let offset = param_i64(params, "offset").unwrap_or(0);
    // 1 to 100; 0 (or nothing) means the default, 100.
    let limit = param_i64(params, "limit")
        .and_then(|limit| usize::try_from(limit).ok())
        .filter(|limit| *limit > 0)
        .map_or(100, |limit| limit.min(100));
    let timeout = param_i64(params, "timeout")
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(0)
        .min(MAX_POLL_TIMEOUT_S);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let (generation, index) = {
        let mut inner = shared.lock();
        inner.confirm(offset);
        inner.poll_generation += 1;
        (inner.poll_generation, inner.record(call))
    };
    // An older poll still waiting ends with a conflict, as on Telegram.
    shared.updates_changed.notify_waiters();
    let result = loop {
        let notified = shared.updates_changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let inner = shared.lock();
            if inner.poll_generation != generation {
                break Err(Refusal::new(StatusCode::CONFLICT, TERMINATED_BY_OTHER));
            }
            let updates = inner.updates_from(offset, limit);
            if !updates.is_empty() || tokio::time::Instant::now() >= deadline {
                break Ok(Value::Array(updates));
            }
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    };
    if let Some(call) = Arc::make_mut(&mut shared.lock().calls).get_mut(index) {
        settle(call, &result);
    }
    answer(&result)
}

/// The parameters of a request: its query string, then its body (JSON, urlencoded or
/// multipart); multipart file parts come back as uploads by part name.
async fn read_params(
    request: Request,
) -> Result<(Map<String, Value>, HashMap<String, Upload>), Refusal> {
    let mut params = Map::new();
    let mut uploads = HashMap::new();
    if let Some(query) = request.uri().query() {
        parse_urlencoded(query, &mut params);
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| Refusal::bad_request(&format!("can't parse multipart body: {e}")))?;
        let refuse = |e: axum::extract::multipart::MultipartError| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large")
            } else {
                Refusal::bad_request(&format!("can't parse multipart body: {e}"))
            }
        };
        while let Some(field) = multipart.next_field().await.map_err(refuse)? {
            let name = field.name().unwrap_or_default().to_owned();
            match field.file_name().map(str::to_owned) {
                Some(file_name) => {
                    let bytes = field.bytes().await.map_err(refuse)?.to_vec();
                    let file_name = (!file_name.is_empty()).then_some(file_name);
                    uploads.insert(name, Upload { file_name, bytes });
                }
                None => {
                    let text = field.text().await.map_err(refuse)?;
                    params.insert(name, Value::String(text));
                }
            }
        }
        return Ok((params, uploads));
    }
    let body = axum::body::to_bytes(request.into_body(), UPLOAD_LIMIT + 1024 * 1024)
        .await
        .map_err(|_| Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((params, uploads));
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let form = std::str::from_utf8(&body)
            .map_err(|_| Refusal::bad_request("request body is not UTF-8"))?;
        parse_urlencoded(form, &mut params);
        return Ok((params, uploads));
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(fields)) => params.extend(fields),
        Ok(_) => return Err(Refusal::bad_request("request body is not a JSON object")),
        Err(e) => {
            if content_type.starts_with("application/json") {
                return Err(Refusal::bad_request(&format!("can't parse JSON body: {e}")));
            }
        }
    }
    Ok((params, uploads))
}
