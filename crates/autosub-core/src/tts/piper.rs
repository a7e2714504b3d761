//! Piper neural voices (VITS models exported to ONNX) run on ONNX Runtime through the `ort` crate, which loads
//! `libonnxruntime.so` at run time: `$ORT_DYLIB_PATH`, else `<models>/onnxruntime/libonnxruntime.so` (installed by
//! scripts/setup-voices.sh from the PyPI `onnxruntime` wheel). A voice is `<name>.onnx` + `<name>.onnx.json`.
//!
//! Phonemes come from espeak-ng in IPA (`espeak-ng -q --ipa -v <espeak.voice>`), arranged as piper-phonemize does
//! with espeak's library: the text is cut into sentences and clauses at punctuation, each clause's phonemes are
//! NFD-decomposed with espeak's language-switch marks removed, the clause's mark is appended (`.` `?` `!`, or `,`
//! `:` `;` followed by a space), and each sentence becomes `^ _ p1 _ p2 _ … pn _ $` in the voice's
//! `phoneme_id_map` (phonemes the map lacks are skipped). Each sentence is one inference; the audio is
//! concatenated with a short pause between sentences. `rate` divides the voice's `length_scale`.
//!
//! The session is created once per voice ([`Piper::load`]) and reused; inference runs on the calling thread while a
//! watcher terminates it when the [`Sink`] cancels.

use super::{
    check_rate, clean_text, espeak, has_words, split_clauses, EngineKind, Recent, Speech, Tts,
    VoiceInfo,
};
use crate::progress::{Event, Sink};
use crate::{Error, Result};
use ort::session::{RunOptions, Session};
use ort::value::Tensor;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use unicode_normalization::UnicodeNormalization;

/// Environment variable naming the ONNX Runtime library to load (the `ort` crate's own name for it).
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";
/// Pause between sentences, before `length_scale`.
const SENTENCE_PAUSE_S: f32 = 0.2;

/// The ONNX Runtime library to load: `$ORT_DYLIB_PATH` when it names a file, else
/// `<models_dir>/onnxruntime/libonnxruntime.so` when that exists.
pub fn onnxruntime_path(models_dir: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(ORT_DYLIB_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let p = models_dir.join("onnxruntime").join("libonnxruntime.so");
    p.is_file().then_some(p)
}

pub(crate) fn ort_missing_hint(models_dir: &Path) -> String {
    match std::env::var_os(ORT_DYLIB_ENV).filter(|p| !p.is_empty()) {
        Some(p) => format!(
            "{ORT_DYLIB_ENV}={} is not a file",
            PathBuf::from(p).display()
        ),
        None => format!(
            "no {} and {ORT_DYLIB_ENV} is not set",
            models_dir.join("onnxruntime/libonnxruntime.so").display()
        ),
    }
}

/// The process-wide ONNX Runtime environment. ONNX Runtime allows one per process and the library is loaded once:
/// the first path wins.
fn environment(lib: &Path) -> Result<&'static ort::environment::Environment> {
    static ENV: OnceLock<std::result::Result<ort::environment::Environment, String>> =
        OnceLock::new();
    ENV.get_or_init(|| {
        let builder = ort::init_from(lib).map_err(|e| format!("cannot load ONNX Runtime: {e}"))?;
        builder
            .with_name("autosub")
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime from {}: {e}", lib.display()))
    })
    .as_ref()
    .map_err(|e| Error::ModelMissing {
        message: format!("{e}; install it with scripts/setup-voices.sh"),
    })
}

/// The parts of `<voice>.onnx.json` that synthesis needs.
#[derive(Clone, Debug, serde::Deserialize)]
pub(crate) struct Config {
    pub audio: AudioConfig,
    pub espeak: EspeakConfig,
    #[serde(default)]
    pub inference: Inference,
    pub phoneme_id_map: HashMap<String, Vec<i64>>,
    #[serde(default)]
    pub phoneme_type: Option<String>,
    #[serde(default)]
    pub language: Option<LanguageConfig>,
}

#[derive(Clone, Debug, serde::Deserialize)]
pub(crate) struct AudioConfig {
    pub sample_rate: u32,
    #[serde(default)]
    pub quality: Option<String>,
}

#[derive(Clone, Debug, serde::Deserialize)]
pub(crate) struct EspeakConfig {
    pub voice: String,
}

#[derive(Clone, Debug, serde::Deserialize)]
pub(crate) struct LanguageConfig {
    #[serde(default)]
    pub family: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

#[derive(Clone, Copy, Debug, serde::Deserialize)]
pub(crate) struct Inference {
    #[serde(default = "default_noise")]
    pub noise_scale: f32,
    #[serde(default = "default_length")]
    pub length_scale: f32,
    #[serde(default = "default_noise_w")]
    pub noise_w: f32,
}

fn default_noise() -> f32 {
    0.667
}
fn default_length() -> f32 {
    1.0
}
fn default_noise_w() -> f32 {
    0.8
}

impl Default for Inference {
    fn default() -> Self {
        Inference {
            noise_scale: default_noise(),
            length_scale: default_length(),
            noise_w: default_noise_w(),
        }
    }
}

impl Config {
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let c: Config = serde_json::from_str(text).map_err(|e| {
            Error::BadInput(format!(
                "{} is not a Piper voice config: {e}",
                path.display()
            ))
        })?;
        if let Some(t) = c.phoneme_type.as_deref().filter(|t| *t != "espeak") {
            return Err(Error::BadInput(format!(
                "{}: phoneme_type `{t}` is not supported (only espeak)",
                path.display()
            )));
        }
        for key in ["^", "$", "_"] {
            if c.phoneme_id_map.get(key).is_none_or(|v| v.is_empty()) {
                return Err(Error::BadInput(format!(
                    "{}: phoneme_id_map lacks `{key}`",
                    path.display()
                )));
            }
        }
        if c.audio.sample_rate == 0 {
            return Err(Error::BadInput(format!(
                "{}: sample_rate 0",
                path.display()
            )));
        }
        Ok(c)
    }

    /// ISO 639-1 code: `language.family`, else the first part of `language.code` or of the espeak voice.
    pub fn iso_language(&self) -> String {
        let from = |s: &str| {
            s.split(['_', '-'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        self.language
            .as_ref()
            .and_then(|l| l.family.clone().or_else(|| l.code.as_deref().map(from)))
            .unwrap_or_else(|| from(&self.espeak.voice))
    }

    /// Rank within Piper voices: x_low 30, low 31, medium 32, high 33.
    pub fn quality(&self) -> u8 {
        match self.audio.quality.as_deref() {
            Some("high") => 33,
            Some("medium") => 32,
            Some("low") => 31,
            _ => 30,
        }
    }
}

/// The Piper voices in `dir`: every `NAME.onnx.json` with its `NAME.onnx` (hidden and partial files skipped).
/// Unreadable configs are reported as warnings.
pub(crate) fn list_voices(dir: &Path, sink: &dyn Sink) -> Vec<VoiceInfo> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.filter_map(|e| e.ok()) {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(name) = file.strip_suffix(".onnx.json") else {
            continue;
        };
        if name.is_empty() || name.starts_with('.') {
            continue;
        }
        let model = dir.join(format!("{name}.onnx"));
        if !model.is_file() {
            continue;
        }
        let cfg = std::fs::read_to_string(e.path())
            .map_err(Error::Io)
            .and_then(|t| Config::parse(&t, &e.path()));
        match cfg {
            Ok(c) => out.push(VoiceInfo {
                engine: EngineKind::Piper,
                name: format!("piper:{name}"),
                language: c.iso_language(),
                quality: c.quality(),
                path: Some(model),
            }),
            Err(err) => sink.event(Event::Warning(&format!(
                "skipping Piper voice {name}: {err}"
            ))),
        }
    }
    out
}

/// Piper's arrangement of one sentence's phonemes into ids: `^ _ p1 _ p2 _ … pn _ $`; phonemes that are not in the
/// map are skipped and returned. Pure.
pub(crate) fn phoneme_ids(
    phonemes: &[char],
    map: &HashMap<String, Vec<i64>>,
) -> (Vec<i64>, Vec<char>) {
    let id = |k: &str| map.get(k).and_then(|v| v.first().copied()).unwrap_or(0);
    let (bos, eos, pad) = (id("^"), id("$"), id("_"));
    let mut ids = vec![bos, pad];
    let mut missing = Vec::new();
    let mut key = String::with_capacity(4);
    for &p in phonemes {
        key.clear();
        key.push(p);
        match map.get(&key) {
            Some(v) => {
                ids.extend_from_slice(v);
                ids.push(pad);
            }
            None => missing.push(p),
        }
    }
    ids.push(eos);
    (ids, missing)
}

/// The phonemes of each sentence, from clause phonemes as espeak gives them (`(clause IPA, mark, sentence end)`).
/// Pure.
pub(crate) fn sentence_phonemes(clauses: &[(String, Option<char>, bool)]) -> Vec<Vec<char>> {
    let mut sentences = Vec::new();
    let mut cur: Vec<char> = Vec::new();
    for (ipa, punct, end) in clauses {
        cur.extend(espeak::strip_language_flags(ipa).nfd());
        match punct {
            Some(p @ ('.' | '?' | '!')) => cur.push(*p),
            Some(p @ (',' | ':' | ';')) => {
                cur.push(*p);
                cur.push(' ');
            }
            _ => {}
        }
        if *end {
            while cur.last() == Some(&' ') {
                cur.pop();
            }
            if !cur.is_empty() {
                sentences.push(std::mem::take(&mut cur));
            }
        }
    }
    if !cur.is_empty() {
        sentences.push(cur);
    }
    sentences
}

/// A loaded Piper voice.
pub struct Piper {
    info: VoiceInfo,
    config: Config,
    session: Mutex<Session>,
    /// Whether the model takes a speaker id (`sid`) input.
    takes_sid: bool,
    /// Phoneme ids of the last lines spoken, per sentence.
    recent: Recent<Vec<Vec<i64>>>,
}

impl Piper {
    /// Loads `model` (`NAME.onnx`, with `NAME.onnx.json` beside it) on the ONNX Runtime found for `models_dir`
    /// ([`onnxruntime_path`]).
    pub fn load(model: &Path, models_dir: &Path) -> Result<Piper> {
        let config_path = PathBuf::from(format!("{}.json", model.display()));
        let text = std::fs::read_to_string(&config_path).map_err(|e| Error::ModelMissing {
            message: format!(
                "cannot read the Piper voice config {}: {e}",
                config_path.display()
            ),
        })?;
        let config = Config::parse(&text, &config_path)?;
        if !model.is_file() {
            return Err(Error::ModelMissing {
                message: format!("the Piper voice model {} is missing", model.display()),
            });
        }
        let lib = onnxruntime_path(models_dir).ok_or_else(|| Error::ModelMissing {
            message: format!(
                "ONNX Runtime is needed for Piper voices ({}); install it with scripts/setup-voices.sh",
                ort_missing_hint(models_dir)
            ),
        })?;
        let env = environment(&lib)?;
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(8);
        let tts_err = |e: String| Error::Tts(format!("cannot load {}: {e}", model.display()));
        let session = Session::builder(env)
            .map_err(|e| tts_err(e.to_string()))?
            .with_intra_threads(threads)
            .map_err(|e| tts_err(e.to_string()))?
            .commit_from_file(model)
            .map_err(|e| tts_err(e.to_string()))?;
        let names: Vec<String> = session
            .inputs()
            .iter()
            .map(|i| i.name().to_owned())
            .collect();
        for needed in ["input", "input_lengths", "scales"] {
            if !names.iter().any(|n| n == needed) {
                return Err(tts_err(format!(
                    "not a Piper model: no input `{needed}` (inputs: {})",
                    names.join(", ")
                )));
            }
        }
        let name = model
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".onnx").to_owned())
            .unwrap_or_default();
        Ok(Piper {
            info: VoiceInfo {
                engine: EngineKind::Piper,
                name: format!("piper:{name}"),
                language: config.iso_language(),
                quality: config.quality(),
                path: Some(model.to_owned()),
            },
            takes_sid: names.iter().any(|n| n == "sid"),
            config,
            session: Mutex::new(session),
            recent: Recent::new(16),
        })
    }

    pub fn sample_rate(&self) -> u32 {
        self.config.audio.sample_rate
    }

    /// Replaces the voice's noise scales (its config's `noise_scale`, the variation of the voice, and `noise_w`,
    /// the variation of phoneme lengths). Piper draws that noise at random on every call, so the same line comes
    /// out a little different each time; with both at 0 synthesis is deterministic: the same text and rate give
    /// the same samples (used by the tests, which measure lengths and ratios).
    pub fn with_noise(mut self, noise_scale: f32, noise_w: f32) -> Self {
        self.config.inference.noise_scale = noise_scale.max(0.0);
        self.config.inference.noise_w = noise_w.max(0.0);
        self
    }

    /// Phoneme ids per sentence of cleaned text (espeak-ng once per clause).
    fn ids(&self, text: &str, sink: &dyn Sink) -> Result<Vec<Vec<i64>>> {
        if let Some(ids) = self.recent.get(text) {
            return Ok(ids);
        }
        let mut clauses = Vec::new();
        for c in split_clauses(text) {
            let ipa = espeak::phonemize(&self.config.espeak.voice, &c.text, sink)?;
            clauses.push((ipa, c.punct, c.sentence_end));
        }
        let mut all_missing: Vec<char> = Vec::new();
        let ids: Vec<Vec<i64>> = sentence_phonemes(&clauses)
            .iter()
            .map(|s| {
                let (ids, missing) = phoneme_ids(s, &self.config.phoneme_id_map);
                all_missing.extend(missing);
                ids
            })
            .collect();
        if !all_missing.is_empty() {
            all_missing.sort_unstable();
            all_missing.dedup();
            sink.event(Event::Debug(&format!(
                "piper: phonemes not in the voice's map, skipped: {all_missing:?}"
            )));
        }
        self.recent.put(text, ids.clone());
        Ok(ids)
    }

    /// One inference: phoneme ids to audio. Terminated when `sink` cancels.
    fn infer(&self, ids: &[i64], length_scale: f32, sink: &dyn Sink) -> Result<Vec<f32>> {
        let err = |e: ort::Error| Error::Tts(format!("Piper inference failed: {e}"));
        let n = ids.len();
        let input = Tensor::from_array(([1usize, n], ids.to_vec())).map_err(err)?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64])).map_err(err)?;
        let inf = self.config.inference;
        let scales =
            Tensor::from_array(([3usize], vec![inf.noise_scale, length_scale, inf.noise_w]))
                .map_err(err)?;
        let mut inputs = ort::inputs! {
            "input" => input,
            "input_lengths" => lengths,
            "scales" => scales,
        };
        if self.takes_sid {
            let sid = Tensor::from_array(([1usize], vec![0i64])).map_err(err)?;
            inputs.push(("sid".into(), sid.into()));
        }
        let options = RunOptions::new().map_err(err)?;
        let done = AtomicBool::new(false);
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::Tts("the Piper session was poisoned by an earlier panic".into()))?;
        let result = std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    if sink.is_cancelled() {
                        let _ = options.terminate();
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
            let r = session.run_with_options(inputs, &options).and_then(|out| {
                let (_, audio) = out[0].try_extract_tensor::<f32>()?;
                Ok(audio.to_vec())
            });
            done.store(true, Ordering::Relaxed);
            r
        });
        if sink.is_cancelled() {
            return Err(Error::Cancelled);
        }
        result.map_err(err)
    }
}

impl Tts for Piper {
    fn voice(&self) -> &VoiceInfo {
        &self.info
    }

    fn synthesize(&self, text: &str, rate: f32, sink: &dyn Sink) -> Result<Speech> {
        let rate = check_rate(rate)?;
        let text = clean_text(text)?;
        let sample_rate = self.sample_rate();
        if !has_words(&text) {
            return Ok(Speech {
                samples: Vec::new(),
                sample_rate,
            });
        }
        if sink.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let sentences = self.ids(&text, sink)?;
        let length_scale = self.config.inference.length_scale / rate;
        let pause = (SENTENCE_PAUSE_S * length_scale * sample_rate as f32) as usize;
        let mut samples = Vec::new();
        for (i, ids) in sentences.iter().enumerate() {
            if i > 0 {
                samples.extend(std::iter::repeat_n(0f32, pause));
            }
            samples.extend(self.infer(ids, length_scale, sink)?);
        }
        Ok(Speech {
            samples,
            sample_rate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_interspersed_with_pad_between_bos_and_eos() {
        let map: HashMap<String, Vec<i64>> =
            [("^", 1), ("$", 2), ("_", 0), ("h", 20), ("ə", 59), (" ", 3)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), vec![v]))
                .collect();
        let (ids, missing) = phoneme_ids(&['h', 'ə', ' ', 'X', 'h'], &map);
        assert_eq!(ids, [1, 0, 20, 0, 59, 0, 3, 0, 20, 0, 2]);
        assert_eq!(missing, ['X']);
    }

    #[test]
    fn sentences_get_their_punctuation_and_nfd() {
        let clauses = vec![
            ("(en)həlˈoʊ(fr)".to_owned(), Some(','), false),
            ("wˈɜːld".to_owned(), Some('!'), true),
            ("ça".to_owned(), None, true),
        ];
        let s = sentence_phonemes(&clauses);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].iter().collect::<String>(), "həlˈoʊ, wˈɜːld!");
        assert_eq!(s[1], ['c', '\u{327}', 'a']);
    }

    #[test]
    fn config_language_and_quality() {
        let c = Config::parse(
            r#"{"audio":{"sample_rate":22050,"quality":"medium"},"espeak":{"voice":"en-us"},
                "phoneme_id_map":{"^":[1],"$":[2],"_":[0]},"language":{"code":"en_US","family":"en"}}"#,
            Path::new("x.json"),
        )
        .unwrap();
        assert_eq!((c.iso_language(), c.quality()), ("en".to_owned(), 32));
        assert!(Config::parse(
            r#"{"audio":{"sample_rate":22050},"espeak":{"voice":"ru"},"phoneme_id_map":{}}"#,
            Path::new("x")
        )
        .is_err());
    }
}
