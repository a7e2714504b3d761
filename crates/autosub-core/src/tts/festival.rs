//! Festival with the Russian voice `msu_ru_nsh_clunits` (Debian `festvox-ru`), through `text2wave`.
//!
//! Findings (Debian 12, festival 2.5.0, festvox-ru 0.5):
//! * The voice reads UTF-8 (its lexicon and tokenizer are UTF-8, its `proclaim_voice` says `coding utf-8`); the same
//!   sentence in KOI8-R makes its letter-to-sound rules fail ("LTS_Ruleset russian_downcase: no rule matches") and
//!   `text2wave` writes an empty file while still exiting 0. The round trip through Whisper in `tests/tts.rs`
//!   checks the UTF-8 path.
//! * Any character the rules do not know (emoji, `«»`, `—`, `$`, `(`, `` ` ``, accented Latin letters, a period or
//!   comma inside a word such as `3.5`, `x.wav`, `e.g`) fails the whole text the same way, so text is reduced to
//!   Cyrillic and Latin letters, digits, `-`, white space, and `. , ! ? ; :` where they end a word (a lone `;`
//!   fails as well); should the voice still fail, the text is tried once more as letters and digits only.
//! * The clunits voice ignores `Duration_Stretch` (same length at 1.0 and 0.7), so the rate is applied afterwards by
//!   time stretching ([`super::dsp::time_stretch`]).
//! * Each `text2wave` run takes 1-2.5 s (loading the voice); the rate-1 audio of the last lines is kept, so
//!   speaking a line again faster does not run Festival again.

use super::{
    check_rate, clean_text, dsp, has_words, temp_dir, wav, EngineKind, Recent, Speech, Tts,
    VoiceInfo,
};
use crate::proc::Cmd;
use crate::progress::Sink;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Festival voices AutoSub knows how to feed: (voice, ISO 639-1, folder that holds it).
const KNOWN: &[(&str, &str, &str)] = &[(
    "msu_ru_nsh_clunits",
    "ru",
    "/usr/share/festival/voices/russian/msu_ru_nsh_clunits",
)];

const SAMPLE_RATE_HINT: u32 = 16000;

fn program() -> PathBuf {
    std::env::var_os("AUTOSUB_TEXT2WAVE").map_or_else(|| "text2wave".into(), PathBuf::from)
}

fn in_path(program: &Path) -> bool {
    if program.components().count() > 1 {
        return program.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The known voices whose files are installed, when `text2wave` is in PATH.
pub(crate) fn list_voices() -> Vec<VoiceInfo> {
    if !in_path(&program()) {
        return Vec::new();
    }
    KNOWN
        .iter()
        .filter(|(_, _, dir)| Path::new(dir).is_dir())
        .map(|(voice, lang, _)| info(voice, lang))
        .collect()
}

fn info(voice: &str, lang: &str) -> VoiceInfo {
    VoiceInfo {
        engine: EngineKind::Festival,
        name: format!("festival:{voice}"),
        language: lang.to_owned(),
        quality: 20,
        path: None,
    }
}

/// A Festival voice.
pub struct Festival {
    info: VoiceInfo,
    /// Rate-1 audio of the last lines spoken.
    recent: Recent<Speech>,
}

impl Festival {
    /// `voice` must be one AutoSub knows (`msu_ru_nsh_clunits`): its name goes into a Scheme expression.
    pub fn new(voice: &str) -> Result<Self> {
        let (_, lang, _) = KNOWN.iter().find(|(v, _, _)| *v == voice).ok_or_else(|| {
            Error::BadInput(format!(
                "unknown Festival voice `{voice}`; known: {}",
                KNOWN.iter().map(|k| k.0).collect::<Vec<_>>().join(", ")
            ))
        })?;
        Ok(Festival {
            info: info(voice, lang),
            recent: Recent::new(4),
        })
    }

    fn run(&self, text: &str, sink: &dyn Sink) -> Result<Speech> {
        let dir = temp_dir()?;
        let input = dir.path().join("text.txt");
        let output = dir.path().join("speech.wav");
        std::fs::write(&input, format!("{text}\n")).map_err(|e| Error::Write {
            path: input.clone(),
            source: e,
        })?;
        let out = Cmd::new(program(), "festival")
            .arg("-eval")
            .arg(format!("(voice_{})", self.info.engine_voice()))
            .arg("-o")
            .arg(&output)
            .arg(&input)
            .timeout(Duration::from_secs(300))
            .idle_timeout(Duration::from_secs(120))
            .run(sink, &mut |_| {})?;
        let bytes = std::fs::read(&output).unwrap_or_default();
        if !out.status.success() || bytes.is_empty() {
            let why = out
                .stderr_tail
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .cloned()
                .unwrap_or_else(|| format!("no audio (exit {})", out.status));
            return Err(Error::ProgramFailed {
                program: "text2wave".into(),
                message: format!("{why} (voice {})", self.info.engine_voice()),
            });
        }
        wav::decode(&bytes).map_err(|e| Error::ProgramFailed {
            program: "text2wave".into(),
            message: e.to_string(),
        })
    }
}

/// Reduces cleaned text to what the Russian voice's rules can read (see the module notes). Pure.
pub(crate) fn russian_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        // Punctuation only where it ends a word ("x.wav", "e.g", "3.5" fail the rules).
        let ends_word = chars
            .get(i + 1)
            .is_none_or(|n| n.is_whitespace() || matches!(n, '.' | ',' | '!' | '?' | ';' | ':'));
        // ... and only attached to one (a lone ";" fails too).
        let after_word = out
            .chars()
            .last()
            .is_some_and(|p| p.is_alphanumeric() || matches!(p, '.' | ',' | '!' | '?' | ';' | ':'));
        let keep = is_letter_or_digit(c)
            || c == '-'
            || (matches!(c, '.' | ',' | '!' | '?' | ';' | ':') && ends_word && after_word);
        out.push(if keep { c } else { ' ' });
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_letter_or_digit(c: char) -> bool {
    matches!(c, 'а'..='я' | 'А'..='Я' | 'ё' | 'Ё' | 'a'..='z' | 'A'..='Z' | '0'..='9')
}

/// The last resort when the voice still fails: letters and digits only.
fn words_only(text: &str) -> String {
    text.chars()
        .map(|c| if is_letter_or_digit(c) { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl Tts for Festival {
    fn voice(&self) -> &VoiceInfo {
        &self.info
    }

    fn synthesize(&self, text: &str, rate: f32, sink: &dyn Sink) -> Result<Speech> {
        let rate = check_rate(rate)?;
        let text = russian_text(&clean_text(text)?);
        if !has_words(&text) {
            return Ok(Speech {
                samples: Vec::new(),
                sample_rate: SAMPLE_RATE_HINT,
            });
        }
        let speech = match self.recent.get(&text) {
            Some(s) => s,
            None => {
                let s = match self.run(&text, sink) {
                    Err(Error::ProgramFailed { .. })
                        if words_only(&text) != text && has_words(&words_only(&text)) =>
                    {
                        self.run(&words_only(&text), sink)?
                    }
                    r => r?,
                };
                self.recent.put(&text, s.clone());
                s
            }
        };
        if (rate - 1.0).abs() < 1e-3 {
            return Ok(speech);
        }
        Ok(Speech {
            samples: dsp::time_stretch(&speech.samples, speech.sample_rate, rate),
            sample_rate: speech.sample_rate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_text_keeps_what_the_rules_read() {
        assert_eq!(
            russian_text(
                "«Кавычки» — и тире - $(rm) \"да\" 😀 3.5 и 1,5, ёлка Über x.wav e.g. конец."
            ),
            "Кавычки и тире - rm да 3 5 и 1 5, ёлка ber x wav e g. конец."
        );
        assert_eq!(russian_text("canary`; rm ; x; да"), "canary rm x; да");
        assert_eq!(words_only("да; нет - 5."), "да нет 5");
    }

    #[test]
    fn unknown_voice_is_refused() {
        assert!(matches!(
            Festival::new("x) (system \"rm\""),
            Err(Error::BadInput(_))
        ));
    }
}
