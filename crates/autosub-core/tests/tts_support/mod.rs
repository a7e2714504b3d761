//! Helpers for the text-to-speech tests: the installed voices (failing with what to run when they are missing),
//! the Whisper recogniser for round trips, word error rate, energy measurements, and a tiny HTTP server on
//! 127.0.0.1 for the voice downloads (it talks to nothing else).

#![allow(dead_code)]

use autosub_core::asr::{AsrOptions, Recognizer};
use autosub_core::progress::{Event, Sink};
use autosub_core::tts::{self, Speech, Tts, VoiceInfo};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub const SETUP: &str =
    "run scripts/setup-voices.sh (it installs espeak-ng, festival + festvox-ru, ONNX Runtime \
                         and the Piper voice en_US-joe-medium)";

/// Prints warnings; forwards nothing else.
pub struct Log;
impl Sink for Log {
    fn event(&self, e: Event<'_>) {
        if let Event::Warning(w) = e {
            eprintln!("warning: {w}");
        }
    }
}

/// A sink that cancels once its flag is set.
pub struct Cancel(pub AtomicBool);
impl Sink for Cancel {
    fn event(&self, _: Event<'_>) {}
    fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

pub fn models_dir() -> PathBuf {
    autosub_core::models::models_dir(None)
}

pub fn voices() -> &'static [VoiceInfo] {
    static V: OnceLock<Vec<VoiceInfo>> = OnceLock::new();
    V.get_or_init(|| tts::list_voices(&models_dir(), &Log))
}

/// Opens the voice `name`, or fails the test saying what to install.
pub fn open(name: &str) -> Box<dyn Tts> {
    let v = tts::find_voice(voices(), name).unwrap_or_else(|| {
        panic!(
            "voice {name} is not installed (models folder {}; found: {:?}); {SETUP}",
            models_dir().display(),
            voices().iter().map(|v| &v.name).take(8).collect::<Vec<_>>()
        )
    });
    tts::open(v, &models_dir(), &Log).unwrap_or_else(|e| panic!("cannot open {name}: {e}; {SETUP}"))
}

/// The Piper voice with its noise scales at 0, loaded once for all tests: deterministic, so a measured length or
/// ratio is the same on every run (with the voice's own noise, one synthesis against another is a coin toss at any
/// tight bound). [`piper_noisy`] is the voice as users hear it.
pub fn piper() -> &'static dyn Tts {
    static P: OnceLock<Box<dyn Tts>> = OnceLock::new();
    P.get_or_init(|| {
        let v = tts::find_voice(voices(), "piper:en_US-joe-medium")
            .unwrap_or_else(|| panic!("voice piper:en_US-joe-medium is not installed; {SETUP}"));
        let path = v.path.as_deref().expect("a Piper voice has a model file");
        let p = tts::Piper::load(path, &models_dir())
            .unwrap_or_else(|e| panic!("cannot open {}: {e}; {SETUP}", v.name));
        Box::new(p.with_noise(0.0, 0.0))
    })
    .as_ref()
}

/// The Piper voice with the noise scales of its config (as users hear it).
pub fn piper_noisy() -> &'static dyn Tts {
    static P: OnceLock<Box<dyn Tts>> = OnceLock::new();
    P.get_or_init(|| open("piper:en_US-joe-medium")).as_ref()
}

pub fn festival() -> &'static dyn Tts {
    static F: OnceLock<Box<dyn Tts>> = OnceLock::new();
    F.get_or_init(|| open("festival:msu_ru_nsh_clunits"))
        .as_ref()
}

/// The project's Whisper model (multilingual base), loaded once.
pub fn recognizer() -> &'static Recognizer {
    static R: OnceLock<Recognizer> = OnceLock::new();
    R.get_or_init(|| {
        let dir = models_dir();
        let (path, _) = autosub_core::models::resolve(&dir, "base").unwrap_or_else(|e| {
            panic!("the Whisper model for the round trips is missing: {e} (scripts/setup.sh installs it)")
        });
        Recognizer::load(&path).unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()))
    })
}

/// Transcribes speech with the language forced; half a second of silence around it.
pub fn transcribe(speech: &Speech, language: &str) -> String {
    let mut samples = vec![0f32; 8000];
    samples.extend(tts::dsp::resample(
        &speech.samples,
        speech.sample_rate,
        16000,
    ));
    samples.extend(vec![0f32; 8000]);
    let opts = AsrOptions {
        language: Some(language.to_owned()),
        ..Default::default()
    };
    let rec = recognizer()
        .transcribe(&samples, &opts, &Log)
        .expect("transcription");
    rec.words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Words for WER: lower case, `ё` as `е`, hyphens as spaces, other punctuation removed.
pub fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .replace('ё', "е")
        .replace(['-', '—'], " ")
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word-level edit distance.
pub fn edits(reference: &[String], hyp: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=hyp.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut cur = vec![i + 1; hyp.len() + 1];
        for (j, h) in hyp.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(r != h))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[hyp.len()]
}

/// 5 ms frame RMS in dBFS.
pub fn frames_db(samples: &[f32], rate: u32) -> Vec<f32> {
    tts::dsp::frame_db(samples, rate as usize / 200)
}

pub fn rms_db(samples: &[f32]) -> f32 {
    let ms = samples.iter().map(|s| (*s as f64).powi(2)).sum::<f64>() / samples.len().max(1) as f64;
    (10.0 * ms.max(1e-12).log10()) as f32
}

/// Integrated loudness by ffmpeg's `ebur128` filter of a mono f32 signal, through a temporary WAV.
pub fn ffmpeg_lufs(samples: &[f32], rate: u32) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.wav");
    std::fs::write(&path, tts::wav::encode_f32(samples, rate)).unwrap();
    let mut lines = Vec::new();
    let out = autosub_core::proc::Cmd::new("ffmpeg", "ffmpeg")
        .args(["-nostdin", "-hide_banner", "-nostats", "-i"])
        .arg(autosub_core::media::ffmpeg_input_arg(&path).unwrap())
        .args(["-af", "ebur128", "-f", "null", "-"])
        .timeout(Duration::from_secs(120))
        .run(&Log, &mut |l| lines.push(l.to_owned()))
        .expect("ffmpeg (Debian: apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        out.last_error_line()
    );
    // The summary at the end: "Integrated loudness:" then "    I:         -20.1 LUFS".
    let at = lines
        .iter()
        .rposition(|l| l.contains("Integrated loudness:"))
        .expect("ebur128 summary");
    let i_line = lines[at..]
        .iter()
        .find(|l| l.trim_start().starts_with("I:"))
        .expect("I: line");
    i_line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("cannot read {i_line:?}"))
}

// --- HTTP ---------------------------------------------------------------------------------------------------------

/// Serves fixed bodies by path (200, or 404), one request per connection, on 127.0.0.1 only.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    pub hits: Arc<AtomicUsize>,
    pub paths: Arc<Mutex<Vec<String>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(files: HashMap<String, Arc<Vec<u8>>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let files = Arc::new(files);
        let (stop2, hits2, paths2) = (stop.clone(), hits.clone(), paths.clone());
        let handle = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = conn else { continue };
                let (files, hits, paths) = (files.clone(), hits2.clone(), paths2.clone());
                std::thread::spawn(move || {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    let mut r = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if r.read_line(&mut line).is_err() {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                    }
                    hits.fetch_add(1, Ordering::SeqCst);
                    paths.lock().unwrap().push(path.clone());
                    match files.get(&path) {
                        Some(body) => {
                            let _ = write!(
                                stream,
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            );
                            let _ = stream.write_all(body);
                        }
                        None => {
                            let _ = stream.write_all(
                                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            );
                        }
                    }
                    let _ = stream.flush();
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Server {
            addr,
            stop,
            hits,
            paths,
            handle: Some(handle),
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}/mirror", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
