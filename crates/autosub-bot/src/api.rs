//! The bot's Telegram client: teloxide-core's typed Bot API over reqwest, with the few rules the bot needs in one
//! place: errors are classified (flood wait, blocked, not modified) and scrubbed of the token; a 429's
//! `retry_after` pauses what can wait instead of being retried blindly; big transfers use a client without a total
//! timeout.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use teloxide_core::net::Download;
use teloxide_core::payloads::{
    AnswerCallbackQuerySetters, EditMessageTextSetters, GetUpdatesSetters, SendDocumentSetters,
    SendMessageSetters, SendVideoSetters,
};
use teloxide_core::requests::Requester;
use teloxide_core::types::{
    AllowedUpdate, CallbackQueryId, ChatId, FileId, InlineKeyboardMarkup, InputFile, MessageId,
    Update,
};
use teloxide_core::{ApiError, Bot, RequestError};

use crate::config::{BotConfig, Secret};

/// What went wrong talking to Telegram, without the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TgError {
    /// Flood control: wait this long before the next request.
    #[error("Telegram asks to wait {0:?}")]
    RetryAfter(Duration),
    /// The user blocked the bot (or deleted their account).
    #[error("the user blocked the bot")]
    Blocked,
    /// An edit that changes nothing.
    #[error("the message is not modified")]
    NotModified,
    /// The file is over the Bot API's download limit.
    #[error("the file is too big for the Bot API")]
    FileTooBig,
    /// Any other answer of the Bot API.
    #[error("Telegram refused: {0}")]
    Api(String),
    /// The server could not be reached (or answered garbage).
    #[error("Telegram unreachable: {0}")]
    Network(String),
}

impl TgError {
    fn of(e: RequestError, token: &Secret) -> TgError {
        match e {
            RequestError::RetryAfter(s) => {
                TgError::RetryAfter(Duration::from_secs(u64::from(s.seconds()).max(1)))
            }
            RequestError::Api(ApiError::BotBlocked | ApiError::UserDeactivated) => TgError::Blocked,
            RequestError::Api(ApiError::MessageNotModified) => TgError::NotModified,
            RequestError::Api(ApiError::Unknown(s)) if s.contains("file is too big") => {
                TgError::FileTooBig
            }
            RequestError::Api(a) => TgError::Api(token.scrub(&a.to_string())),
            other => TgError::Network(token.scrub(&other.to_string())),
        }
    }
}

/// The Bot API client.
pub struct Telegram {
    bot: Bot,
    /// Long-polling and file transfers: no total timeout.
    long: Bot,
    token: Secret,
    local: bool,
    /// Until when flood control asked to hold back what can wait.
    paused_until: Mutex<Option<Instant>>,
}

fn client(timeout: Option<Duration>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .tcp_nodelay(true);
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    b.build().unwrap_or_default()
}

impl Telegram {
    pub fn new(cfg: &BotConfig) -> Result<Telegram, TgError> {
        let url = reqwest::Url::parse(&format!("{}/", cfg.api_url))
            .map_err(|e| TgError::Network(format!("AUTOSUB_TELEGRAM_API_URL: {e}")))?;
        let token = cfg.token.expose();
        Ok(Telegram {
            bot: Bot::with_client(token, client(Some(Duration::from_secs(30))))
                .set_api_url(url.clone()),
            long: Bot::with_client(token, client(None)).set_api_url(url),
            token: cfg.token.clone(),
            local: cfg.local_api,
            paused_until: Mutex::new(None),
        })
    }

    fn err(&self, e: RequestError) -> TgError {
        let e = TgError::of(e, &self.token);
        if let TgError::RetryAfter(d) = &e {
            let until = Instant::now() + *d;
            let mut p = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
            if p.is_none_or(|u| u < until) {
                *p = Some(until);
            }
        }
        e
    }

    /// True while flood control asked to wait: progress edits and broadcasts hold back.
    pub fn paused(&self) -> bool {
        let p = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        p.is_some_and(|u| Instant::now() < u)
    }

    /// Checks the token (getMe); returns the bot's username.
    pub async fn get_me(&self) -> Result<String, TgError> {
        let me = self.bot.get_me().await.map_err(|e| self.err(e))?;
        Ok(me.user.username.unwrap_or_default())
    }

    /// Long-polls for updates after `offset` (which confirms every earlier one to Telegram).
    pub async fn get_updates(&self, offset: i64, timeout_s: u32) -> Result<Vec<Update>, TgError> {
        let poll = self
            .long
            .get_updates()
            .offset(i32::try_from(offset).unwrap_or(i32::MAX))
            .timeout(timeout_s)
            .limit(100)
            .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
        // A connection that died without a reset would wait forever: the server answers within `timeout_s`.
        let limit = Duration::from_secs(u64::from(timeout_s) + 15);
        match tokio::time::timeout(limit, poll).await {
            Ok(r) => r.map_err(|e| self.err(e)),
            Err(_) => Err(TgError::Network(format!(
                "getUpdates: no answer in {limit:?}"
            ))),
        }
    }

    /// Sends a message; a flood wait is obeyed once (the answer a user waits for is not dropped).
    pub async fn send(
        &self,
        chat: i64,
        text: &str,
        markup: Option<InlineKeyboardMarkup>,
    ) -> Result<i64, TgError> {
        let mut waited = false;
        loop {
            let mut req = self.bot.send_message(ChatId(chat), text);
            if let Some(m) = markup.clone() {
                req = req.reply_markup(m);
            }
            match req.await {
                Ok(m) => return Ok(i64::from(m.id.0)),
                Err(e) => match self.err(e) {
                    TgError::RetryAfter(d) if !waited && d <= Duration::from_secs(60) => {
                        waited = true;
                        tokio::time::sleep(d).await;
                    }
                    other => return Err(other),
                },
            }
        }
    }

    /// Edits a message's text (and keyboard); an edit that changes nothing is not an error.
    pub async fn edit(
        &self,
        chat: i64,
        message: i64,
        text: &str,
        markup: Option<InlineKeyboardMarkup>,
    ) -> Result<(), TgError> {
        let mut req = self.bot.edit_message_text(
            ChatId(chat),
            MessageId(i32::try_from(message).unwrap_or_default()),
            text,
        );
        if let Some(m) = markup {
            req = req.reply_markup(m);
        }
        match req.await.map_err(|e| self.err(e)) {
            Ok(_) | Err(TgError::NotModified) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Answers a button press (the spinner stops); `alert` shows the text in a dialog.
    pub async fn answer(&self, id: &str, text: Option<&str>, alert: bool) -> Result<(), TgError> {
        let mut req = self
            .bot
            .answer_callback_query(CallbackQueryId(id.to_owned()));
        if let Some(t) = text {
            req = req.text(t).show_alert(alert);
        }
        req.await.map(|_| ()).map_err(|e| self.err(e))
    }

    /// Downloads a Telegram file to `dst` (a partial name is used and renamed by the caller). Returns its size.
    pub async fn download(&self, file_id: &str, dst: &Path) -> Result<u64, TgError> {
        let f = self
            .bot
            .get_file(FileId(file_id.to_owned()))
            .await
            .map_err(|e| self.err(e))?;
        let io = |e: std::io::Error| TgError::Network(format!("{}: {e}", dst.display()));
        // A local Bot API server answers with an absolute path on its own disk.
        if self.local && Path::new(&f.path).is_absolute() {
            return tokio::fs::copy(&f.path, dst).await.map_err(io);
        }
        let mut out = tokio::fs::File::create(dst).await.map_err(io)?;
        self.long
            .download_file(&f.path, &mut out)
            .await
            .map_err(|e| TgError::Network(self.token.scrub(&e.to_string())))?;
        use tokio::io::AsyncWriteExt;
        out.flush().await.map_err(io)?;
        Ok(tokio::fs::metadata(dst).await.map_err(io)?.len())
    }

    /// Sends a video file with a caption.
    pub async fn send_video(
        &self,
        chat: i64,
        path: &Path,
        caption: &str,
        markup: Option<InlineKeyboardMarkup>,
    ) -> Result<(), TgError> {
        let mut req = self
            .long
            .send_video(ChatId(chat), InputFile::file(path))
            .caption(caption)
            .supports_streaming(true);
        if let Some(m) = markup {
            req = req.reply_markup(m);
        }
        req.await.map(|_| ()).map_err(|e| self.err(e))
    }

    /// Sends a file as a document.
    pub async fn send_document(
        &self,
        chat: i64,
        path: &Path,
        caption: Option<&str>,
    ) -> Result<(), TgError> {
        let mut req = self.long.send_document(ChatId(chat), InputFile::file(path));
        if let Some(c) = caption {
            req = req.caption(c);
        }
        req.await.map(|_| ()).map_err(|e| self.err(e))
    }
}
