//! The bot's configuration, read once from the environment at start.
//!
//! | variable | default |
//! |---|---|
//! | `AUTOSUB_TELEGRAM_TOKEN` | required: the token from @BotFather |
//! | `AUTOSUB_TELEGRAM_API_URL` | `https://api.telegram.org` (a `telegram-bot-api --local` server, or a test stand-in) |
//! | `AUTOSUB_TELEGRAM_LOCAL` | `1` when that server runs with `--local`: files of any size, uploads up to 2000 MB |
//! | `AUTOSUB_ADMINS` | none: comma-separated Telegram user ids allowed the admin commands |
//! | `AUTOSUB_TELEGRAM_UPLOAD_LIMIT` | 50 MB (2000 MB with `AUTOSUB_TELEGRAM_LOCAL`): results over it are sent as download links |
//!
//! The token is kept in a [`Secret`]: its `Debug` and `Display` print a mask, and every error that leaves the
//! Telegram client is scrubbed of it.

pub use autosub_service::config::{ConfigError, Secret};

/// The default Bot API server.
pub const CLOUD_API_URL: &str = "https://api.telegram.org";

/// Files a bot may download from the cloud Bot API (20 MB) and upload to it (50 MB).
pub const CLOUD_DOWNLOAD_LIMIT: u64 = 20 * 1024 * 1024;
pub const CLOUD_UPLOAD_LIMIT: u64 = 50 * 1024 * 1024;
/// Uploads through a local Bot API server.
pub const LOCAL_UPLOAD_LIMIT: u64 = 2000 * 1024 * 1024;

/// The bot's settings.
#[derive(Clone, Debug)]
pub struct BotConfig {
    pub token: Secret,
    pub api_url: String,
    /// A `telegram-bot-api --local` server: no download limit, uploads up to 2000 MB, absolute file paths.
    pub local_api: bool,
    pub admins: Vec<i64>,
    /// Results over this many bytes go as download links.
    pub upload_limit: u64,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl BotConfig {
    /// Reads the environment.
    pub fn from_env() -> Result<BotConfig, ConfigError> {
        let token = var("AUTOSUB_TELEGRAM_TOKEN").ok_or(ConfigError {
            var: "AUTOSUB_TELEGRAM_TOKEN",
            message: "not set: create a bot with @BotFather and set its token".into(),
        })?;
        if !token.contains(':') || token.contains(char::is_whitespace) || token.contains('/') {
            return Err(ConfigError {
                var: "AUTOSUB_TELEGRAM_TOKEN",
                message: "does not look like a bot token (123456:ABC...)".into(),
            });
        }
        let api_url = var("AUTOSUB_TELEGRAM_API_URL").unwrap_or_else(|| CLOUD_API_URL.to_owned());
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            return Err(ConfigError {
                var: "AUTOSUB_TELEGRAM_API_URL",
                message: format!("{api_url:?} is not an http(s) URL"),
            });
        }
        let local_api = matches!(
            var("AUTOSUB_TELEGRAM_LOCAL").as_deref(),
            Some("1" | "true" | "yes")
        );
        let admins = parse_admins(&var("AUTOSUB_ADMINS").unwrap_or_default()).map_err(|bad| {
            ConfigError {
                var: "AUTOSUB_ADMINS",
                message: format!("{bad:?} is not a Telegram user id (comma-separated numbers)"),
            }
        })?;
        let upload_limit = match var("AUTOSUB_TELEGRAM_UPLOAD_LIMIT") {
            None if local_api => LOCAL_UPLOAD_LIMIT,
            None => CLOUD_UPLOAD_LIMIT,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError {
                    var: "AUTOSUB_TELEGRAM_UPLOAD_LIMIT",
                    message: format!("{v:?} is not a size in bytes"),
                })?,
        };
        Ok(BotConfig {
            upload_limit,
            token: Secret::new(token),
            api_url: api_url.trim_end_matches('/').to_owned(),
            local_api,
            admins,
        })
    }

    pub fn download_limit(&self) -> Option<u64> {
        (!self.local_api).then_some(CLOUD_DOWNLOAD_LIMIT)
    }

    pub fn upload_limit(&self) -> u64 {
        self.upload_limit
    }

    pub fn is_admin(&self, telegram_id: i64) -> bool {
        self.admins.contains(&telegram_id)
    }

    /// Name/value pairs for `autosub doctor` (no token).
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AUTOSUB_TELEGRAM_TOKEN", "set (hidden)".into()),
            ("AUTOSUB_TELEGRAM_API_URL", self.api_url.clone()),
            ("AUTOSUB_TELEGRAM_LOCAL", self.local_api.to_string()),
            (
                "AUTOSUB_TELEGRAM_UPLOAD_LIMIT",
                self.upload_limit.to_string(),
            ),
            (
                "AUTOSUB_ADMINS",
                self.admins
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]
    }
}

fn parse_admins(s: &str) -> Result<Vec<i64>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<i64>().map_err(|_| p.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_and_the_secret() {
        assert_eq!(parse_admins(" 1, 22 ,,333").unwrap(), vec![1, 22, 333]);
        assert_eq!(parse_admins("1,bob").unwrap_err(), "bob");
        let s = Secret::new("123:abc");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(
            s.scrub("GET http://x/bot123:abc/getMe failed"),
            "GET http://x/bot<redacted>/getMe failed"
        );
    }
}
