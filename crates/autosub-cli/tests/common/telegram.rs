//! Helpers of the tests that drive the bot through the stand-in Bot API server (`autosub_bot::standin`): processes
//! started with the bot's settings, and what the bot sent to a chat.

use super::service::{free_port, Db, Service};
use autosub_bot::standin::{Call, StandIn};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Shaped like a real token, so that teloxide's own scrubbing would also apply; the tests grep logs for it.
pub const TOKEN: &str = "4839574812:AAE_test-TOKEN_0123456789abcdefghijklm";
pub const ADMIN: i64 = 900;
pub const LONG: Duration = Duration::from_secs(300);
pub const SHORT: Duration = Duration::from_secs(30);

pub fn sample() -> Vec<u8> {
    std::fs::read(super::sample()).unwrap()
}

/// Starts `autosub ARGS` named `name` with its own HTTP address; returns its index.
pub fn spawn(s: &mut Service, name: &str, args: &[&str], extra: &[(&str, &str)]) -> usize {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(s._tmp.path().join(format!("{name}.log")))
        .unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut c = s.cmd(args);
    c.env("AUTOSUB_HTTP_ADDR", &addr)
        .env("AUTOSUB_WORKER_ID", name)
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(log);
    s.children.push(c.spawn().unwrap());
    s.children.len() - 1
}

pub fn service(db: Db, si: &StandIn) -> Service {
    let mut s = Service::new(db);
    s.env = vec![
        ("AUTOSUB_TELEGRAM_TOKEN".into(), TOKEN.into()),
        ("AUTOSUB_TELEGRAM_API_URL".into(), si.url()),
        ("AUTOSUB_ADMINS".into(), ADMIN.to_string()),
        ("AUTOSUB_LOG".into(), "info,autosub_bot=debug".into()),
    ];
    s
}

/// Waits until the bot long-polls (its token checked, its loops started).
pub fn wait_polling(si: &StandIn, since: Instant) {
    si.wait_until(SHORT, |c| {
        c.iter().any(|c| c.method == "getUpdates" && c.at > since)
    });
}

/// Texts the bot sent or edited into `chat` (successful calls), in order.
pub fn texts(calls: &[Call], chat: i64) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.ok() && c.chat_id == Some(chat))
        .filter_map(|c| c.text.clone())
        .collect()
}

pub fn has(calls: &[Call], chat: i64, needle: &str) -> bool {
    texts(calls, chat).iter().any(|t| t.contains(needle))
}

pub fn wait_text(si: &StandIn, chat: i64, needle: &str, within: Duration) -> Vec<Call> {
    si.wait_until(within, |c| has(c, chat, needle))
}

pub fn count(calls: &[Call], chat: i64, method: &str) -> usize {
    calls
        .iter()
        .filter(|c| c.ok() && c.chat_id == Some(chat) && c.method == method)
        .count()
}

/// The message the bot sent to `chat` whose text contains `needle` (the latest).
pub fn sent_message(calls: &[Call], chat: i64, needle: &str) -> i64 {
    calls
        .iter()
        .rev()
        .find(|c| {
            c.ok()
                && c.method == "sendMessage"
                && c.chat_id == Some(chat)
                && c.text.as_deref().is_some_and(|t| t.contains(needle))
        })
        .and_then(|c| c.message_id)
        .unwrap_or_else(|| panic!("no message {needle:?} to {chat}"))
}

/// The callback data of the button whose label contains `label` on message `mid`.
pub fn button(si: &StandIn, chat: i64, mid: i64, label: &str) -> String {
    let m = si.message(chat, mid).expect("message");
    let kb = m.reply_markup.expect("a keyboard");
    for row in kb["inline_keyboard"].as_array().unwrap() {
        for b in row.as_array().unwrap() {
            if b["text"].as_str().unwrap_or_default().contains(label) {
                return b["callback_data"].as_str().unwrap().to_owned();
            }
        }
    }
    panic!("no button {label:?} in {kb}")
}

/// The answer (answerCallbackQuery) to the `n`-th button press of the test: the bot handles updates in order and
/// answers every press once.
pub fn nth_answer(si: &StandIn, n: usize) -> Call {
    let answers = |c: &[Call]| -> Vec<Call> {
        c.iter()
            .filter(|c| c.method == "answerCallbackQuery")
            .cloned()
            .collect()
    };
    let calls = si.wait_until(SHORT, |c| answers(c).len() >= n);
    answers(&calls).swap_remove(n - 1)
}

pub fn no_secret_in(log: &str) {
    let secret = TOKEN.split_once(':').unwrap().1;
    assert!(!log.contains(secret), "the bot token is in a log:\n{log}");
}

/// `GET path` on `addr`: status and body bytes.
pub fn http_get(addr: &str, path: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // De-chunk.
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                .unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + n]);
            rest = &rest[eol + 2 + n + 2..];
        }
        body = out;
    }
    (status, body)
}
