//! Translation: the `llm` engine against a stand-in OpenAI-compatible server on 127.0.0.1 (answers, 429, 500,
//! timeouts, wrong line counts, invalid JSON), and the `whisper` engine on real German and Russian speech.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the stand-in answers the n-th request (0-based).
type Behaviour = dyn Fn(usize, &Value) -> (u16, String, Duration) + Send + Sync;

struct Llm {
    url: String,
    hits: Arc<AtomicUsize>,
    auth: Arc<Mutex<Vec<String>>>,
    bodies: Arc<Mutex<Vec<Value>>>,
}

fn serve(behaviour: Box<Behaviour>) -> Llm {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let auth = Arc::new(Mutex::new(Vec::new()));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let behaviour: Arc<Behaviour> = Arc::from(behaviour);
    let (h, a, b) = (hits.clone(), auth.clone(), bodies.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (h, a, b, beh) = (h.clone(), a.clone(), b.clone(), behaviour.clone());
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                assert!(line.starts_with("POST /v1/chat/completions "), "{line}");
                let mut len = 0;
                loop {
                    let mut hl = String::new();
                    r.read_line(&mut hl).unwrap();
                    if hl.trim().is_empty() {
                        break;
                    }
                    let (k, v) = hl.split_once(':').unwrap();
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap();
                    }
                    if k.eq_ignore_ascii_case("authorization") {
                        a.lock().unwrap().push(v.trim().to_owned());
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                let req: Value = serde_json::from_slice(&body).unwrap();
                b.lock().unwrap().push(req.clone());
                let n = h.fetch_add(1, Ordering::SeqCst);
                let (status, content, delay) = beh(n, &req);
                std::thread::sleep(delay);
                let mut conn = conn;
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 0\r\nConnection: close\r\n\r\n",
                    content.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(content.as_bytes());
            });
        }
    });
    Llm {
        url,
        hits,
        auth,
        bodies,
    }
}

/// The lines of a request: (id, text).
fn lines_of(req: &Value) -> Vec<(u64, String)> {
    let task: Value =
        serde_json::from_str(req["messages"][1]["content"].as_str().unwrap()).unwrap();
    task["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_u64().unwrap(),
                l["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A chat-completions answer with `content`.
fn completion(content: &str) -> String {
    json!({"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}).to_string()
}

/// The stand-in's "translation": the text upper-cased (same length, so timing rules still hold).
fn good(req: &Value) -> String {
    let t: Vec<Value> = lines_of(req)
        .into_iter()
        .map(|(id, text)| json!({"id": id, "text": text.to_uppercase()}))
        .collect();
    completion(&json!({ "translations": t }).to_string())
}

const SRT: &str = "1\n00:00:01,000 --> 00:00:03,000\nHello there, my friend.\n\n2\n00:00:03,500 --> 00:00:06,000\nThis is a test of the\ntranslation service.\n\n3\n00:00:09,000 --> 00:00:11,000\nSee you soon!\n";

fn translate_run(dir: &Path, llm: &Llm, extra_env: &[(&str, &str)], extra: &[&str]) -> Run {
    let srt = dir.join("talk.srt");
    std::fs::write(&srt, SRT).unwrap();
    let mut cmd = Command::new(bin());
    cmd.args(["-v", "translate", "--from", "en", "--to", "ru"])
        .args(extra)
        .arg(&srt)
        .env("AUTOSUB_LLM_BASE_URL", &llm.url)
        .env("AUTOSUB_LLM_MODEL", "stand-in")
        .env("AUTOSUB_LLM_API_KEY", "sk-test-secret-42")
        .env("AUTOSUB_LLM_TIMEOUT", "2")
        .env("AUTOSUB_LLM_RETRIES", "2");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().unwrap().into()
}

#[test]
fn llm_translation_is_validated_retimed_and_lint_clean() {
    let dir = tempfile::tempdir().unwrap();
    let llm = serve(Box::new(|_, req| (200, good(req), Duration::ZERO)));
    let gloss = dir.path().join("glossary.txt");
    std::fs::write(&gloss, "# terms\nAutoSub = AutoSub\ntest = тест\n").unwrap();
    let r = translate_run(
        dir.path(),
        &llm,
        &[],
        &["--glossary", gloss.to_str().unwrap()],
    )
    .ok();
    let out = dir.path().join("talk.ru.srt");
    assert_eq!(r.stdout.trim(), out.to_str().unwrap());
    let srt = std::fs::read_to_string(&out).unwrap();
    let flat = srt.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("HELLO THERE, MY FRIEND."), "{srt}");
    assert!(flat.contains("TRANSLATION SERVICE."), "{srt}");
    let cues = autosub_subs::parse_srt(&srt).unwrap();
    // Inside the source span; the last sentence keeps its own time (it starts after the 3 s pause).
    assert!(cues[0].start_ms >= 1000 - 300, "{cues:?}");
    let last = cues.last().unwrap();
    assert!(last.lines.join(" ").contains("SEE YOU SOON!"));
    assert!(last.start_ms >= 8700, "{cues:?}");
    let lint = autosub(["lint".as_ref(), out.as_os_str()]);
    assert_eq!(lint.code, 0, "{}{}", lint.stdout, lint.stderr);
    // Sentences went out whole (the two-cue sentence is one line), with the glossary, key as a bearer token only.
    let bodies = llm.bodies.lock().unwrap();
    let lines = lines_of(&bodies[0]);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[1].1, "This is a test of the translation service.");
    let task: Value =
        serde_json::from_str(bodies[0]["messages"][1]["content"].as_str().unwrap()).unwrap();
    assert_eq!(task["glossary"]["test"], "тест");
    assert_eq!(task["source_language"], "en");
    assert_eq!(task["target_language"], "ru");
    assert_eq!(llm.auth.lock().unwrap()[0], "Bearer sk-test-secret-42");
    assert!(!r.stderr.contains("sk-test-secret"), "{}", r.stderr);
}

#[test]
fn llm_failures_are_retried_then_reported_clearly() {
    // 429 then 500, then a good answer: retried through.
    let dir = tempfile::tempdir().unwrap();
    let llm = serve(Box::new(|n, req| match n {
        0 => (
            429,
            r#"{"error":{"message":"slow down"}}"#.into(),
            Duration::ZERO,
        ),
        1 => (500, "oops".into(), Duration::ZERO),
        _ => (200, good(req), Duration::ZERO),
    }));
    translate_run(dir.path(), &llm, &[], &[]).ok();
    assert_eq!(llm.hits.load(Ordering::SeqCst), 3);

    // (what, server, message, requests: 3 attempts; wrong answers also split the 3 lines into 1 + 2, and the
    // first half fails after its own 3 attempts)
    type Case = (&'static str, Box<Behaviour>, &'static str, usize);
    let cases: Vec<Case> = vec![
        (
            "always 500",
            Box::new(|_, _| {
                (
                    500,
                    r#"{"error":{"message":"model crashed"}}"#.into(),
                    Duration::ZERO,
                )
            }),
            "model crashed",
            3,
        ),
        (
            "a line dropped",
            Box::new(|_, req| {
                let mut t: Vec<Value> = lines_of(req)
                    .into_iter()
                    .map(|(id, text)| json!({"id": id, "text": text}))
                    .collect();
                t.pop();
                (
                    200,
                    completion(&json!({ "translations": t }).to_string()),
                    Duration::ZERO,
                )
            }),
            "dropped or merged",
            6,
        ),
        (
            "not JSON",
            Box::new(|_, _| {
                (
                    200,
                    completion("Sure! Here is the translation: ..."),
                    Duration::ZERO,
                )
            }),
            "not valid JSON",
            6,
        ),
        (
            "too slow",
            Box::new(|_, req| (200, good(req), Duration::from_secs(4))),
            "no answer within 2 s",
            3,
        ),
    ];
    for (what, behaviour, want, requests) in cases {
        let dir = tempfile::tempdir().unwrap();
        let llm = serve(behaviour);
        let r = translate_run(dir.path(), &llm, &[], &[]);
        assert_eq!(r.code, 5, "{what}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{what}: {}", r.stderr);
        assert!(
            r.stderr.contains("after 3 attempts"),
            "{what}: {}",
            r.stderr
        );
        assert_eq!(llm.hits.load(Ordering::SeqCst), requests, "{what}");
        assert!(!dir.path().join("talk.ru.srt").exists(), "{what}");
        assert!(!r.stderr.contains("sk-test-secret"), "{what}: {}", r.stderr);
    }
    // A batch the server cannot answer whole is split until it can (here: never more than one line at once).
    let dir = tempfile::tempdir().unwrap();
    let llm = serve(Box::new(|_, req| {
        let lines = lines_of(req);
        if lines.len() > 1 {
            (200, completion(r#"{"translations":[]}"#), Duration::ZERO)
        } else {
            (200, good(req), Duration::ZERO)
        }
    }));
    translate_run(dir.path(), &llm, &[], &[]).ok();
    assert!(std::fs::read_to_string(dir.path().join("talk.ru.srt"))
        .unwrap()
        .contains("SEE YOU SOON!"));
    // A refused key is not retried.
    let dir = tempfile::tempdir().unwrap();
    let llm = serve(Box::new(|_, _| {
        (
            401,
            r#"{"error":{"message":"bad key"}}"#.into(),
            Duration::ZERO,
        )
    }));
    let r = translate_run(dir.path(), &llm, &[], &[]);
    assert_eq!(r.code, 5);
    assert!(r.stderr.contains("API key was refused"), "{}", r.stderr);
    assert_eq!(llm.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn bad_translation_options_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--translate", "english"], "ISO 639-1"),
        (
            &["--translate", "ru", "--translator", "babel"],
            "unknown translator",
        ),
        (
            &["--translate", "ru", "--burn-lang", "de"],
            "--burn-lang de",
        ),
        (&["--bilingual"], "need --translate"),
        // No LLM configured and Whisper only translates into English.
        (&["--translate", "ru"], "AUTOSUB_LLM_BASE_URL"),
    ];
    for (extra, want) in cases {
        let t0 = std::time::Instant::now();
        let r = process(&sample(), dir.path(), extra);
        assert_eq!(r.code, 3, "{extra:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{extra:?}: {}", r.stderr);
        assert!(t0.elapsed() < Duration::from_secs(10), "{extra:?}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn keys_never_travel_in_clear_and_broken_documents_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let srt = dir.path().join("a.srt");
    std::fs::write(&srt, SRT).unwrap();
    let run = |env: &[(&str, &str)], file: &Path| -> Run {
        let mut cmd = Command::new(bin());
        cmd.args(["translate", "--from", "en", "--to", "ru"])
            .arg(file);
        cmd.env_remove("AUTOSUB_LLM_API_KEY")
            .env_remove("OPENAI_API_KEY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap().into()
    };
    // Refused before any connection: the address is never contacted.
    let r = run(
        &[
            ("AUTOSUB_LLM_BASE_URL", "http://10.9.9.9/v1"),
            ("AUTOSUB_LLM_API_KEY", "sk-x"),
        ],
        &srt,
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("plain http"), "{}", r.stderr);
    assert!(!r.stderr.contains("sk-x"));
    // OPENAI_API_KEY goes to OpenAI only: with another server it is not sent (here: not even looked at).
    let llm = serve(Box::new(|_, req| (200, good(req), Duration::ZERO)));
    run(
        &[
            ("AUTOSUB_LLM_BASE_URL", &llm.url),
            ("OPENAI_API_KEY", "sk-openai"),
        ],
        &srt,
    )
    .ok();
    assert!(llm.auth.lock().unwrap().is_empty());
    // A JSON document whose times run backwards is bad input, not a crash.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"version":1,"language":"en","duration_ms":2000,"profile":"standard","words":[{"text":" Hi","start_ms":1500,"end_ms":1400,"prob":0.9}],"cues":[]}"#,
    )
    .unwrap();
    let r = run(&[("AUTOSUB_LLM_BASE_URL", &llm.url)], &bad);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("ends before it starts"), "{}", r.stderr);
}

#[test]
fn process_translates_with_the_llm_and_burns_the_translation() {
    let dir = tempfile::tempdir().unwrap();
    let llm = serve(Box::new(|_, req| (200, good(req), Duration::ZERO)));
    let r: Run = Command::new(bin())
        .args([
            "-q",
            "process",
            "--json",
            "--translate",
            "ru",
            "--bilingual",
            "--quality",
            "fast",
        ])
        .arg("--save-script")
        .arg(dir.path().join("burn.ass"))
        .arg("--out")
        .arg(dir.path())
        .arg(sample())
        .env("AUTOSUB_MODELS_DIR", models_dir())
        .env("AUTOSUB_MODEL", TEST_MODEL)
        .env("AUTOSUB_LLM_BASE_URL", &llm.url)
        .output()
        .unwrap()
        .into();
    let r = r.ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["translations"][0]["language"], "ru");
    assert_eq!(v["translations"][0]["engine"], "llm");
    assert!(v["translations"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("en->ru"));
    assert_eq!(v["burned_language"], "ru");
    for ext in ["srt", "vtt", "ass", "json"] {
        assert!(
            dir.path().join(format!("sample.ru.{ext}")).is_file(),
            "{ext}"
        );
    }
    let ru = std::fs::read_to_string(dir.path().join("sample.ru.srt")).unwrap();
    let flat = autosub_subs::parse_srt(&ru)
        .unwrap()
        .iter()
        .map(|c| c.lines.join(" "))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(flat.contains("ASK NOT WHAT YOUR COUNTRY"), "{ru}");
    let lint = autosub([
        "lint".as_ref(),
        dir.path().join("sample.ru.srt").as_os_str(),
    ]);
    assert_eq!(lint.code, 0, "{}", lint.stdout);
    // Bilingual: the burned script has the translation and, above it, the original.
    let script = std::fs::read_to_string(dir.path().join("burn.ass")).unwrap();
    assert!(
        script.contains("ASK NOT") && script.contains("ask not"),
        "{script}"
    );
}

#[test]
fn whisper_translates_german_and_russian_speech_into_english() {
    let dir = tempfile::tempdir().unwrap();
    let de = corpus().join("speech/de/de_picovoice_de.wav");
    let r = process(&de, dir.path(), &["--translate", "en", "--json"]).ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["language"], "de");
    assert_eq!(v["translations"][0]["engine"], "whisper");
    let en = dir.path().join("de_picovoice_de.en.srt");
    let text = std::fs::read_to_string(&en).unwrap().to_lowercase();
    // "Der hinter diesem Portal liegenden Raum wurde als Leichenhalle genutzt." = "The room behind this portal
    // was used as a mortuary." (Whisper base says "the rear of this portal was used as a light hall".)
    for key in ["portal", "used"] {
        assert!(text.contains(key), "{key} missing: {text}");
    }
    let lint = autosub(["lint".as_ref(), en.as_os_str()]);
    assert_eq!(lint.code, 0, "{}", lint.stdout);

    let ru = corpus().join("speech/untranscribed/ru_silero_vad_60s.wav");
    let r = process(
        &ru,
        dir.path(),
        &["--translate", "en", "--json", "--lang", "ru"],
    )
    .ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["translations"][0]["engine"], "whisper");
    let en = dir.path().join("ru_silero_vad_60s.en.srt");
    let text = std::fs::read_to_string(&en).unwrap();
    let latin = text.chars().filter(|c| c.is_ascii_alphabetic()).count();
    let cyrillic = text
        .chars()
        .filter(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap()))
        .count();
    assert!(latin > 200 && cyrillic == 0, "not English: {text}");
    let lint = autosub(["lint".as_ref(), en.as_os_str()]);
    assert_eq!(lint.code, 0, "{}", lint.stdout);
}
