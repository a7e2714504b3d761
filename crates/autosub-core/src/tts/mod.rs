//! Text to speech: engines behind one trait ([`Tts`]), the voices installed on this machine ([`list_voices`],
//! [`best_voice`]), Piper voice downloads ([`install_voice`]) and the voice-over track builder ([`voiceover`]).
//!
//! Engines, best first for a language: [`Piper`] (neural voices on ONNX Runtime, phonemes from espeak-ng),
//! [`Festival`] (the Russian voice `msu_ru_nsh_clunits`), [`Espeak`] (espeak-ng, every language, always there).
//! Programs run through [`crate::proc::Cmd`]; text reaches them in a temporary file, never as an argument.
//!
//! ```no_run
//! use autosub_core::{progress::NullSink, tts};
//! let dir = autosub_core::models::models_dir(None);
//! let voices = tts::list_voices(&dir, &NullSink);
//! let voice = tts::best_voice(&voices, "en").expect("espeak-ng is always there");
//! let engine = tts::open(voice, &dir, &NullSink)?;
//! let speech = engine.synthesize("Hello there.", 1.0, &NullSink)?;
//! println!("{} ms at {} Hz", speech.duration_ms(), speech.sample_rate);
//! # Ok::<(), autosub_core::Error>(())
//! ```

mod catalog;
pub mod dsp;
mod espeak;
mod festival;
pub mod loudness;
mod piper;
pub mod voiceover;
pub mod wav;

pub use catalog::{
    install_voice, PiperVoiceEntry, RemoteFile, PIPER_VOICES, PIPER_VOICES_BASE_URL,
    PIPER_VOICES_REVISION,
};
pub use espeak::Espeak;
pub use festival::Festival;
pub use piper::{onnxruntime_path, Piper, ORT_DYLIB_ENV};

use crate::progress::{Event, Sink};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Longest text one [`Tts::synthesize`] call accepts, in characters (a subtitle line is under 100).
pub const MAX_TEXT_CHARS: usize = 2000;

/// Mono speech.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Speech {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

impl Speech {
    pub fn duration_ms(&self) -> u64 {
        if self.sample_rate == 0 {
            return 0;
        }
        self.samples.len() as u64 * 1000 / self.sample_rate as u64
    }
}

/// The kind of engine behind a voice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Espeak,
    Festival,
    Piper,
}

impl EngineKind {
    pub fn id(self) -> &'static str {
        match self {
            EngineKind::Espeak => "espeak",
            EngineKind::Festival => "festival",
            EngineKind::Piper => "piper",
        }
    }
}

/// A voice that can be opened with [`open`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VoiceInfo {
    pub engine: EngineKind,
    /// Unique name, `ENGINE:VOICE`: `piper:en_US-joe-medium`, `festival:msu_ru_nsh_clunits`, `espeak:en-us`.
    pub name: String,
    /// ISO 639-1 code of the language it speaks.
    pub language: String,
    /// Higher is better: Piper 30-33 (by the voice's own quality), Festival 20, espeak-ng 10.
    pub quality: u8,
    /// The Piper model (`.onnx`; its config is the same path + `.json`), `None` for the program engines.
    pub path: Option<PathBuf>,
}

impl VoiceInfo {
    /// The engine's own name of the voice: `en_US-joe-medium`, `msu_ru_nsh_clunits`, `en-us`.
    pub fn engine_voice(&self) -> &str {
        self.name.split_once(':').map_or(&self.name, |(_, v)| v)
    }
}

/// A text-to-speech engine with one voice loaded.
pub trait Tts: Send + Sync {
    fn voice(&self) -> &VoiceInfo;
    /// Speaks `text` at `rate` (1.0 normal, 1.2 = 20 % faster; 0.5-2.0). The text is cleaned first
    /// ([`clean_text`]): more than [`MAX_TEXT_CHARS`] characters is [`Error::BadInput`]; text with nothing to say
    /// gives empty speech. Cancellation through `sink` stops the engine and returns [`Error::Cancelled`].
    fn synthesize(&self, text: &str, rate: f32, sink: &dyn Sink) -> Result<Speech>;
}

/// Makes text safe and plain for any engine: control characters, line breaks and invisible format characters
/// become spaces, square brackets too (espeak-ng reads `[[...]]` as phoneme codes), runs of white space become one
/// space. Refuses text longer than [`MAX_TEXT_CHARS`].
pub fn clean_text(text: &str) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    let mut count = 0usize;
    for c in text.chars() {
        let c = if c.is_control()
            || c.is_whitespace()
            || matches!(c, '[' | ']' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
        {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if !space {
                out.push(' ');
                count += 1;
            }
            space = true;
        } else {
            out.push(c);
            count += 1;
            space = false;
        }
        if count > MAX_TEXT_CHARS {
            return Err(Error::BadInput(format!(
                "a line of {} characters is too long to speak at once (at most {MAX_TEXT_CHARS}); split it",
                text.chars().count()
            )));
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    Ok(out)
}

/// Whether cleaned text has anything to say (a letter or a digit).
pub(crate) fn has_words(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

/// A piece of a sentence up to a punctuation mark, as Piper's phonemiser sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Clause {
    pub text: String,
    /// The mark that ends it (`.`, `,`, `?`, `!`, `;`, `:`), if any.
    pub punct: Option<char>,
    /// Whether a sentence ends here.
    pub sentence_end: bool,
}

/// Splits cleaned text into clauses at `, ; :` and sentences at `. ! ?` (and `…`), when the mark is followed by a
/// space or the end. A period before a lower-case word (an abbreviation) does not end the sentence.
pub(crate) fn split_clauses(text: &str) -> Vec<Clause> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !matches!(c, '.' | '!' | '?' | '…' | ',' | ';' | ':') {
            cur.push(c);
            i += 1;
            continue;
        }
        // Runs like "?!" or "..." count once; the first mark names the clause's end.
        let mut j = i + 1;
        if matches!(c, '.' | '!' | '?' | '…') {
            while j < chars.len() && matches!(chars[j], '.' | '!' | '?' | '…') {
                j += 1;
            }
        }
        let at_break = chars
            .get(j)
            .is_none_or(|n| n.is_whitespace() || matches!(n, '"' | '\'' | ')' | '»' | '”' | '’'));
        if !at_break {
            cur.push(c);
            i += 1;
            continue;
        }
        let mark = c;
        let next_word = chars[j..].iter().find(|c| !c.is_whitespace());
        let abbreviation = mark == '.' && next_word.is_some_and(|c| c.is_lowercase());
        if abbreviation {
            cur.push(c);
            i += 1;
            continue;
        }
        let (punct, sentence_end) = match mark {
            '…' => ('.', true),
            '.' | '!' | '?' => (mark, true),
            _ => (mark, false),
        };
        if has_words(&cur) {
            out.push(Clause {
                text: cur.trim().to_owned(),
                punct: Some(punct),
                sentence_end,
            });
        } else if sentence_end {
            if let Some(last) = out.last_mut() {
                last.sentence_end = true;
            }
        }
        cur.clear();
        i = j;
    }
    if has_words(&cur) {
        out.push(Clause {
            text: cur.trim().to_owned(),
            punct: None,
            sentence_end: true,
        });
    } else if let Some(last) = out.last_mut() {
        last.sentence_end = true;
    }
    out
}

/// Checks a speaking rate: finite, 0.5-2.0.
pub(crate) fn check_rate(rate: f32) -> Result<f32> {
    if rate.is_finite() && (0.5..=2.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(Error::BadInput(format!(
            "speaking rate {rate} is out of range (0.5 to 2.0; 1.0 is normal)"
        )))
    }
}

/// Every voice this machine has: Piper voices in `<models_dir>/voices/` (when ONNX Runtime and espeak-ng are
/// there), the Festival voices AutoSub knows (when `text2wave` is in PATH), and every espeak-ng voice. What is
/// missing is reported as a warning through `sink`. Best first: by quality, then name.
pub fn list_voices(models_dir: &Path, sink: &dyn Sink) -> Vec<VoiceInfo> {
    let mut out = Vec::new();
    let espeak = match espeak::list_voices(sink) {
        Ok(v) => v,
        Err(e) => {
            sink.event(Event::Warning(&format!(
                "no espeak-ng voices (the Piper voices need espeak-ng too): {e}"
            )));
            Vec::new()
        }
    };
    if !espeak.is_empty() {
        let piper = piper::list_voices(&voices_dir(models_dir), sink);
        if !piper.is_empty() {
            match onnxruntime_path(models_dir) {
                Some(_) => out.extend(piper),
                None => sink.event(Event::Warning(&format!(
                    "{} Piper voice(s) installed but ONNX Runtime is not ({}); run scripts/setup-voices.sh",
                    piper.len(),
                    piper::ort_missing_hint(models_dir)
                ))),
            }
        }
    }
    out.extend(festival::list_voices());
    out.extend(espeak);
    out.sort_by(|a, b| b.quality.cmp(&a.quality).then(a.name.cmp(&b.name)));
    out
}

/// Where Piper voices are installed: `<models_dir>/voices`.
pub fn voices_dir(models_dir: &Path) -> PathBuf {
    models_dir.join("voices")
}

/// The best voice for ISO 639-1 `language` among `voices`: Piper over Festival over espeak-ng, then the voice's own
/// quality; for espeak-ng the plain language (`ru`) or its usual variant (`en-us`, `fr-fr`) first.
pub fn best_voice<'a>(voices: &'a [VoiceInfo], language: &str) -> Option<&'a VoiceInfo> {
    let preferred_espeak = |v: &VoiceInfo| -> u8 {
        let id = v.engine_voice();
        let usual = match language {
            "en" => "en-us",
            "fr" => "fr-fr",
            "pt" => "pt-br",
            "es" => "es",
            "zh" => "cmn",
            "vi" => "vi",
            _ => language,
        };
        u8::from(id == usual || id == language) * 2 + u8::from(!id.contains("-x-"))
    };
    voices
        .iter()
        .filter(|v| v.language == language)
        .max_by(|a, b| {
            a.quality
                .cmp(&b.quality)
                .then(preferred_espeak(a).cmp(&preferred_espeak(b)))
                .then(b.name.len().cmp(&a.name.len()))
                .then(b.name.cmp(&a.name))
        })
}

/// The voice called `name`: its full name (`piper:en_US-joe-medium`) or, when only one engine has it, the engine's
/// own name (`en_US-joe-medium`, `en-us`).
pub fn find_voice<'a>(voices: &'a [VoiceInfo], name: &str) -> Option<&'a VoiceInfo> {
    voices.iter().find(|v| v.name == name).or_else(|| {
        let mut it = voices.iter().filter(|v| v.engine_voice() == name);
        let first = it.next()?;
        it.next().is_none().then_some(first)
    })
}

/// How voices are opened.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VoiceSettings {
    /// Piper's noise scales `(noise_scale, noise_w)` instead of the voice's own ([`Piper::with_noise`]); `(0, 0)`
    /// makes a Piper voice reproducible: the same line gives the same audio on every run.
    pub piper_noise: Option<(f32, f32)>,
}

/// Opens a voice: loads the Piper model (once; reuse the returned engine), or checks the program is there.
pub fn open(voice: &VoiceInfo, models_dir: &Path, sink: &dyn Sink) -> Result<Box<dyn Tts>> {
    open_with(voice, models_dir, &VoiceSettings::default(), sink)
}

/// [`open`] with `settings`.
pub fn open_with(
    voice: &VoiceInfo,
    models_dir: &Path,
    settings: &VoiceSettings,
    sink: &dyn Sink,
) -> Result<Box<dyn Tts>> {
    sink.event(Event::Debug(&format!("tts: opening voice {}", voice.name)));
    Ok(match voice.engine {
        EngineKind::Espeak => Box::new(Espeak::new(voice.engine_voice(), &voice.language)),
        EngineKind::Festival => Box::new(Festival::new(voice.engine_voice())?),
        EngineKind::Piper => {
            let model = voice.path.clone().ok_or_else(|| {
                Error::BadInput(format!("voice {} has no model file", voice.name))
            })?;
            let piper = Piper::load(&model, models_dir)?;
            Box::new(match settings.piper_noise {
                Some((scale, w)) => piper.with_noise(scale, w),
                None => piper,
            })
        }
    })
}

/// Opens the voice named `spec` ([`find_voice`]) or, when `spec` is a language code, the best voice for it. The
/// error says what is installed and how to get more.
pub fn open_voice(models_dir: &Path, spec: &str, sink: &dyn Sink) -> Result<Box<dyn Tts>> {
    open_voice_with(models_dir, spec, &VoiceSettings::default(), sink)
}

/// [`open_voice`] with `settings`.
pub fn open_voice_with(
    models_dir: &Path,
    spec: &str,
    settings: &VoiceSettings,
    sink: &dyn Sink,
) -> Result<Box<dyn Tts>> {
    let voices = list_voices(models_dir, sink);
    // A language code asks for the best voice of that language (espeak-ng also has a voice called `ru`).
    let is_language = crate::translate::validate_language(spec).is_ok();
    let voice = if is_language {
        best_voice(&voices, spec).or_else(|| find_voice(&voices, spec))
    } else {
        find_voice(&voices, spec).or_else(|| best_voice(&voices, spec))
    };
    match voice {
        Some(v) => open_with(v, models_dir, settings, sink),
        None => Err(Error::ModelMissing {
            message: format!(
                "no voice `{spec}` (a voice name or an ISO 639-1 language code) among the {} installed; \
                 install the engines and voices with scripts/setup-voices.sh (Debian: apt-get install espeak-ng \
                 festival festvox-ru){}",
                voices.len(),
                if PIPER_VOICES.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; Piper voices that can be downloaded: {}",
                        PIPER_VOICES.iter().map(|v| v.name).collect::<Vec<_>>().join(", ")
                    )
                }
            ),
        }),
    }
}

/// A tiny most-recently-used cache (engines keep phonemes or rate-1 audio of the last few lines, so re-speaking a
/// line faster does not start over).
pub(crate) struct Recent<T> {
    items: std::sync::Mutex<std::collections::VecDeque<(String, T)>>,
    cap: usize,
}

impl<T: Clone> Recent<T> {
    pub fn new(cap: usize) -> Self {
        Recent {
            items: std::sync::Mutex::new(std::collections::VecDeque::new()),
            cap,
        }
    }
    pub fn get(&self, key: &str) -> Option<T> {
        let items = self.items.lock().ok()?;
        items.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }
    pub fn put(&self, key: &str, value: T) {
        if let Ok(mut items) = self.items.lock() {
            items.retain(|(k, _)| k != key);
            items.push_front((key.to_owned(), value));
            items.truncate(self.cap);
        }
    }
}

/// A private temporary folder for one engine call (text in, audio out), removed when dropped.
pub(crate) fn temp_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("autosub-tts-")
        .tempdir()
        .map_err(Error::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(engine: EngineKind, name: &str, lang: &str, q: u8) -> VoiceInfo {
        VoiceInfo {
            engine,
            name: name.into(),
            language: lang.into(),
            quality: q,
            path: None,
        }
    }

    #[test]
    fn cleaning_neutralises_what_engines_would_interpret() {
        assert_eq!(
            clean_text("  -rf\n$(rm -rf /)\t[[h@l'oU]] \u{200B}x\r\n").unwrap(),
            "-rf $(rm -rf /) h@l'oU x"
        );
        assert_eq!(clean_text("\n\n").unwrap(), "");
        assert!(!has_words(&clean_text("... !!! 😀").unwrap()));
        let long = "word ".repeat(MAX_TEXT_CHARS);
        assert!(matches!(clean_text(&long), Err(Error::BadInput(_))));
        assert!(clean_text(&"word ".repeat(300)).is_ok());
    }

    #[test]
    fn clauses_and_sentences() {
        let c = split_clauses("Hello, world. Dr. Smith said: go on... Really?! 3.5 percent");
        let got: Vec<(&str, Option<char>, bool)> = c
            .iter()
            .map(|c| (c.text.as_str(), c.punct, c.sentence_end))
            .collect();
        assert_eq!(
            got,
            [
                ("Hello", Some(','), false),
                ("world", Some('.'), true),
                ("Dr", Some('.'), true),
                ("Smith said", Some(':'), false),
                ("go on", Some('.'), true),
                ("Really", Some('?'), true),
                ("3.5 percent", None, true),
            ]
        );
        assert_eq!(
            split_clauses("e.g. this one."),
            [Clause {
                text: "e.g. this one".into(),
                punct: Some('.'),
                sentence_end: true
            }]
        );
        assert!(split_clauses(" ... ").is_empty());
    }

    #[test]
    fn best_voice_prefers_piper_then_festival_then_the_usual_espeak_variant() {
        let voices = vec![
            v(EngineKind::Espeak, "espeak:en-gb-x-rp", "en", 10),
            v(EngineKind::Espeak, "espeak:en-us", "en", 10),
            v(EngineKind::Espeak, "espeak:en-gb", "en", 10),
            v(EngineKind::Espeak, "espeak:ru", "ru", 10),
            v(EngineKind::Espeak, "espeak:ru-lv", "ru", 10),
            v(
                EngineKind::Festival,
                "festival:msu_ru_nsh_clunits",
                "ru",
                20,
            ),
            v(EngineKind::Piper, "piper:en_US-joe-medium", "en", 32),
        ];
        assert_eq!(
            best_voice(&voices, "en").unwrap().name,
            "piper:en_US-joe-medium"
        );
        assert_eq!(
            best_voice(&voices, "ru").unwrap().name,
            "festival:msu_ru_nsh_clunits"
        );
        assert_eq!(best_voice(&voices[..5], "en").unwrap().name, "espeak:en-us");
        assert_eq!(best_voice(&voices[..5], "ru").unwrap().name, "espeak:ru");
        assert!(best_voice(&voices, "de").is_none());
        assert_eq!(
            find_voice(&voices, "en_US-joe-medium").unwrap().engine,
            EngineKind::Piper
        );
        assert_eq!(find_voice(&voices, "espeak:ru").unwrap().language, "ru");
        assert!(find_voice(&voices, "nope").is_none());
    }

    #[test]
    fn rates() {
        assert!(check_rate(1.35).is_ok());
        assert!(check_rate(f32::NAN).is_err());
        assert!(check_rate(3.0).is_err());
    }
}
