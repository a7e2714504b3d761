//! The `llm` translator: any OpenAI-compatible chat-completions endpoint (Ollama, llama.cpp server, vLLM, hosted
//! APIs). Lines go in numbered batches with their neighbours as context and an optional glossary; the answer must
//! be JSON with exactly one translation per requested id. A wrong answer, a timeout, HTTP 429 or 5xx is retried
//! with backoff; other client errors fail at once; after the last retry the error says what went wrong. The API
//! key is sent as a bearer token and never appears in logs, errors or `Debug` output.

use super::Translator;
use crate::progress::{Event, Sink};
use crate::{Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where and how to reach the model.
#[derive(Clone)]
pub struct LlmConfig {
    /// Base URL up to the API version, e.g. `http://127.0.0.1:11434/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    /// Per request.
    pub timeout: Duration,
    /// Lines per request.
    pub batch_size: usize,
    /// Neighbouring lines sent (before and after each batch) as context, not to be translated.
    pub context_lines: usize,
    /// Extra attempts after a failed one.
    pub retries: u32,
    /// Wait before the first retry, doubled each time (a 429's Retry-After wins, up to 60 s).
    pub backoff: Duration,
    /// Terms and how to translate them.
    pub glossary: BTreeMap<String, String>,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("batch_size", &self.batch_size)
            .field("context_lines", &self.context_lines)
            .field("retries", &self.retries)
            .field("glossary", &self.glossary.len())
            .finish()
    }
}

impl LlmConfig {
    pub fn new(base_url: &str, model: &str) -> Self {
        LlmConfig {
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: model.to_owned(),
            api_key: None,
            timeout: Duration::from_secs(120),
            batch_size: 20,
            context_lines: 2,
            retries: 3,
            backoff: Duration::from_secs(1),
            glossary: BTreeMap::new(),
        }
    }

    /// From `AUTOSUB_LLM_BASE_URL` (required), `AUTOSUB_LLM_MODEL` (default `llama3.1`), `AUTOSUB_LLM_API_KEY`
    /// (else `OPENAI_API_KEY`, for api.openai.com only; a key is never sent over plain http except to loopback), `AUTOSUB_LLM_TIMEOUT` (seconds) and `AUTOSUB_LLM_RETRIES`. `None` when no base URL is set.
    pub fn from_env() -> Result<Option<Self>> {
        let Ok(base) = std::env::var("AUTOSUB_LLM_BASE_URL") else {
            return Ok(None);
        };
        let base = base.trim();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::BadInput(format!(
                "AUTOSUB_LLM_BASE_URL must be an http(s) URL such as http://127.0.0.1:11434/v1, not {base:?}"
            )));
        }
        let model = std::env::var("AUTOSUB_LLM_MODEL").unwrap_or_else(|_| "llama3.1".into());
        let mut c = LlmConfig::new(base, &model);
        let host = base
            .split("://")
            .nth(1)
            .and_then(|r| r.split(['/', ':']).next())
            .unwrap_or("")
            .to_ascii_lowercase();
        // OPENAI_API_KEY belongs to OpenAI: it is only sent there, never to whatever the base URL names.
        c.api_key = std::env::var("AUTOSUB_LLM_API_KEY")
            .ok()
            .or_else(|| {
                (host == "api.openai.com")
                    .then(|| std::env::var("OPENAI_API_KEY").ok())
                    .flatten()
            })
            .filter(|k| !k.trim().is_empty());
        let loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
        if c.api_key.is_some() && base.starts_with("http://") && !loopback {
            return Err(Error::BadInput(format!(
                "refusing to send the API key over plain http to {host}: use https (or a loopback address)"
            )));
        }
        if let Ok(t) = std::env::var("AUTOSUB_LLM_TIMEOUT") {
            let secs: u64 = t.trim().parse().map_err(|_| {
                Error::BadInput(format!("AUTOSUB_LLM_TIMEOUT must be seconds, not {t:?}"))
            })?;
            c.timeout = Duration::from_secs(secs.max(1));
        }
        if let Ok(t) = std::env::var("AUTOSUB_LLM_RETRIES") {
            c.retries = t.trim().parse().map_err(|_| {
                Error::BadInput(format!("AUTOSUB_LLM_RETRIES must be a number, not {t:?}"))
            })?;
        }
        Ok(Some(c))
    }

    /// Reads a glossary file: one `term = translation` (or `term<TAB>translation`) per line; `#` comments.
    pub fn load_glossary(&mut self, path: &std::path::Path) -> Result<()> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::BadInput(format!("cannot read glossary {}: {e}", path.display()))
        })?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('\t')
                .or_else(|| line.split_once('='))
                .ok_or_else(|| {
                    Error::BadInput(format!(
                        "glossary {} line {}: expected `term = translation`",
                        path.display(),
                        i + 1
                    ))
                })?;
            self.glossary
                .insert(k.trim().to_owned(), v.trim().to_owned());
        }
        Ok(())
    }
}

/// Marks an answer that came back but was wrong (the batch may be split and tried again).
const INVALID: &str = "invalid answer: ";

/// The translator over one endpoint.
pub struct LlmTranslator {
    config: LlmConfig,
    client: reqwest::blocking::Client,
}

impl LlmTranslator {
    pub fn new(config: LlmConfig) -> Result<Self> {
        let client = reqwest::blocking::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Translate(format!("HTTP client: {e}")))?;
        Ok(LlmTranslator { config, client })
    }

    fn url(&self) -> String {
        format!("{}/chat/completions", self.config.base_url)
    }

    /// The request body for one batch.
    pub fn request_body(
        &self,
        batch: &[(usize, &str)],
        before: &[&str],
        after: &[&str],
        from: &str,
        to: &str,
    ) -> Value {
        let lines: Vec<Value> = batch
            .iter()
            .map(|(id, text)| json!({"id": id, "text": text}))
            .collect();
        let mut task = json!({
            "source_language": from,
            "target_language": to,
            "lines": lines,
        });
        if !before.is_empty() {
            task["context_before"] = json!(before);
        }
        if !after.is_empty() {
            task["context_after"] = json!(after);
        }
        if !self.config.glossary.is_empty() {
            task["glossary"] = json!(self.config.glossary);
        }
        json!({
            "model": self.config.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": format!(
                    "You translate subtitles from {from} to {to}. Translate each line of `lines` on its own, keeping its \
                     meaning, tone and length close to the original; never merge, split, drop or reorder lines. Lines in \
                     `context_before`/`context_after` are only context: do not translate them. Use the glossary's \
                     translations for its terms. Answer with JSON only, exactly: \
                     {{\"translations\": [{{\"id\": <id>, \"text\": \"<translation>\"}}, ...]}} with one entry per id."
                )},
                {"role": "user", "content": task.to_string()},
            ],
        })
    }

    /// One request; `Err((retryable, message, retry_after))`.
    fn attempt(
        &self,
        body: &Value,
        ids: &[usize],
    ) -> std::result::Result<Vec<String>, (bool, String, Option<Duration>)> {
        let mut req = self.client.post(self.url()).json(body);
        if let Some(k) = &self.config.api_key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().map_err(|e| {
            if e.is_timeout() {
                (
                    true,
                    format!("no answer within {} s", self.config.timeout.as_secs()),
                    None,
                )
            } else if e.is_connect() {
                (
                    true,
                    format!("cannot connect to {}", self.config.base_url),
                    None,
                )
            } else {
                // reqwest's message names the failure (TLS, redirect, body); it holds no headers or key.
                let mut m = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(inner) = src {
                    m = format!("{m}: {inner}");
                    src = inner.source();
                }
                (e.is_body() || e.is_decode(), m, None)
            }
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(60)));
        let text = resp.text().unwrap_or_default();
        if !status.is_success() {
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(200).collect());
            let retryable =
                status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408;
            let what = match status.as_u16() {
                401 | 403 => format!("HTTP {status}: the API key was refused ({detail})"),
                404 => format!(
                    "HTTP 404: no such endpoint or model `{}` ({detail})",
                    self.config.model
                ),
                _ => format!("HTTP {status}: {detail}"),
            };
            return Err((retryable, what, retry_after));
        }
        parse_answer(&text, ids).map_err(|m| (true, format!("{INVALID}{m}"), None))
    }
}

/// Checks a chat-completions answer: the message content must be JSON (optionally in a ``` fence) with exactly
/// one non-empty translation per requested id, no others.
pub fn parse_answer(body: &str, ids: &[usize]) -> std::result::Result<Vec<String>, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("the answer is not JSON ({e})"))?;
    let content = v["choices"][0]["message"]["content"]
        .as_str()
        .ok_or("the answer has no choices[0].message.content")?;
    let mut c = content.trim();
    // Reasoning models may think aloud first.
    if c.starts_with("<think>") {
        if let Some(i) = c.find("</think>") {
            c = c[i + "</think>".len()..].trim();
        }
    }
    if let Some(rest) = c.strip_prefix("```") {
        c = rest.trim_start_matches("json").trim();
        c = c.strip_suffix("```").unwrap_or(c).trim();
    }
    let inner: Value = serde_json::from_str(c)
        .map_err(|e| format!("the model's reply is not valid JSON ({e})"))?;
    let list = inner["translations"]
        .as_array()
        .or_else(|| inner.as_array())
        .ok_or("the reply has no `translations` list")?;
    let mut got: BTreeMap<usize, String> = BTreeMap::new();
    for item in list {
        let id = item["id"]
            .as_u64()
            .or_else(|| item["id"].as_str().and_then(|s| s.parse().ok()))
            .ok_or("a translation has no numeric id")? as usize;
        let text = item["text"]
            .as_str()
            .ok_or("a translation has no text")?
            .trim();
        if !ids.contains(&id) {
            return Err(format!("the reply has an id {id} that was not asked for"));
        }
        if text.is_empty() {
            return Err(format!("the translation of line {id} is empty"));
        }
        if got.insert(id, text.replace('\n', " ")).is_some() {
            return Err(format!("line {id} was translated twice"));
        }
    }
    if got.len() != ids.len() {
        let missing: Vec<String> = ids
            .iter()
            .filter(|i| !got.contains_key(i))
            .map(|i| i.to_string())
            .collect();
        return Err(format!(
            "{} of {} lines came back (missing: {}); lines were dropped or merged",
            got.len(),
            ids.len(),
            missing.join(", ")
        ));
    }
    Ok(ids
        .iter()
        .map(|i| got.remove(i).unwrap_or_default())
        .collect())
}

impl LlmTranslator {
    /// Translates `texts[first..first + len]` (ids are 1-based positions in `texts`), retrying; when the
    /// answers stay wrong (lines dropped or merged, broken JSON), the batch is split in halves down to single
    /// lines before giving up.
    fn translate_range(
        &self,
        texts: &[String],
        first: usize,
        len: usize,
        from: &str,
        to: &str,
        sink: &dyn Sink,
    ) -> Result<Vec<String>> {
        let ctx = self.config.context_lines;
        let batch: Vec<(usize, &str)> = (first..first + len)
            .map(|i| (i + 1, texts[i].as_str()))
            .collect();
        let ids: Vec<usize> = batch.iter().map(|(i, _)| *i).collect();
        let before: Vec<&str> = texts[first.saturating_sub(ctx)..first]
            .iter()
            .map(String::as_str)
            .collect();
        let end = first + len;
        let after: Vec<&str> = texts[end..(end + ctx).min(texts.len())]
            .iter()
            .map(String::as_str)
            .collect();
        let body = self.request_body(&batch, &before, &after, from, to);
        let mut wait = self.config.backoff;
        let mut attempt = 0;
        loop {
            if sink.is_cancelled() {
                return Err(Error::Cancelled);
            }
            match self.attempt(&body, &ids) {
                Ok(lines) => return Ok(lines),
                Err((retryable, msg, retry_after)) => {
                    if !retryable || attempt >= self.config.retries {
                        if msg.starts_with(INVALID) && len > 1 {
                            sink.event(Event::Warning(&format!(
                                "the translation server keeps answering {len} lines wrongly ({}); splitting them",
                                &msg[INVALID.len()..]
                            )));
                            let half = len / 2;
                            let mut out =
                                self.translate_range(texts, first, half, from, to, sink)?;
                            out.extend(self.translate_range(
                                texts,
                                first + half,
                                len - half,
                                from,
                                to,
                                sink,
                            )?);
                            return Ok(out);
                        }
                        let program = format!("the translation server at {}", self.config.base_url);
                        let message = if attempt > 0 {
                            format!("{msg} (after {} attempts)", attempt + 1)
                        } else {
                            msg
                        };
                        // A failure that may go away (a timeout, 429, 5xx) is worth running the job again later.
                        return Err(if retryable {
                            Error::Network { program, message }
                        } else {
                            Error::Translate(format!("{program} failed: {message}"))
                        });
                    }
                    sink.event(Event::Warning(&format!(
                        "translation request failed ({msg}); retrying"
                    )));
                    let pause = retry_after.unwrap_or(wait);
                    let t0 = std::time::Instant::now();
                    while t0.elapsed() < pause {
                        if sink.is_cancelled() {
                            return Err(Error::Cancelled);
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    wait *= 2;
                    attempt += 1;
                }
            }
        }
    }
}

impl Translator for LlmTranslator {
    fn name(&self) -> &str {
        "llm"
    }

    fn translate(
        &self,
        texts: &[String],
        from: &str,
        to: &str,
        sink: &dyn Sink,
    ) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(texts.len());
        let n = self.config.batch_size.max(1);
        let mut first = 0;
        while first < texts.len() {
            let len = n.min(texts.len() - first);
            out.extend(self.translate_range(texts, first, len, from, to, sink)?);
            first += len;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(content: &str) -> String {
        json!({"choices": [{"message": {"role": "assistant", "content": content}}]}).to_string()
    }

    #[test]
    fn answers_are_validated() {
        let ok = answer(r#"{"translations":[{"id":2,"text":"b"},{"id":1,"text":"a"}]}"#);
        assert_eq!(parse_answer(&ok, &[1, 2]).unwrap(), vec!["a", "b"]);
        let fenced = answer("```json\n{\"translations\":[{\"id\":\"1\",\"text\":\"a\"}]}\n```");
        let thought = answer("<think>hmm</think>\n{\"translations\":[{\"id\":1,\"text\":\"a\"}]}");
        assert_eq!(parse_answer(&thought, &[1]).unwrap(), vec!["a"]);
        assert_eq!(parse_answer(&fenced, &[1]).unwrap(), vec!["a"]);
        let merged = answer(r#"{"translations":[{"id":1,"text":"a b"}]}"#);
        assert!(parse_answer(&merged, &[1, 2])
            .unwrap_err()
            .contains("missing: 2"));
        let extra = answer(r#"{"translations":[{"id":1,"text":"a"},{"id":7,"text":"x"}]}"#);
        assert!(parse_answer(&extra, &[1]).unwrap_err().contains("id 7"));
        let twice = answer(r#"{"translations":[{"id":1,"text":"a"},{"id":1,"text":"b"}]}"#);
        assert!(parse_answer(&twice, &[1]).unwrap_err().contains("twice"));
        let empty = answer(r#"{"translations":[{"id":1,"text":"  "}]}"#);
        assert!(parse_answer(&empty, &[1]).is_err());
        assert!(parse_answer(&answer("Sure! Here you go"), &[1])
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(parse_answer("<html>", &[1])
            .unwrap_err()
            .contains("not JSON"));
    }

    #[test]
    fn the_key_is_never_in_debug_output() {
        let mut c = LlmConfig::new("http://127.0.0.1:1/v1/", "m");
        c.api_key = Some("sk-secret-123".into());
        assert!(!format!("{c:?}").contains("sk-secret"));
        assert_eq!(c.base_url, "http://127.0.0.1:1/v1");
    }

    #[test]
    fn requests_carry_context_and_glossary() {
        let mut c = LlmConfig::new("http://127.0.0.1:1/v1", "m");
        c.glossary.insert("AutoSub".into(), "AutoSub".into());
        let t = LlmTranslator::new(c).unwrap();
        let body = t.request_body(&[(3, "Hello")], &["a", "b"], &["c"], "en", "ru");
        let task: Value =
            serde_json::from_str(body["messages"][1]["content"].as_str().unwrap()).unwrap();
        assert_eq!(task["lines"][0]["id"], 3);
        assert_eq!(task["context_before"], json!(["a", "b"]));
        assert_eq!(task["context_after"], json!(["c"]));
        assert_eq!(task["glossary"]["AutoSub"], "AutoSub");
        assert_eq!(body["model"], "m");
    }
}
