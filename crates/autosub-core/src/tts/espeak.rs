//! espeak-ng: speech in every language (robotic), and IPA phonemes for the Piper voices. The program is run
//! through [`Cmd`]; text goes in through a temporary file (`-f`), audio comes back as WAV on stdout.

use super::{check_rate, clean_text, has_words, temp_dir, wav, EngineKind, Speech, Tts, VoiceInfo};
use crate::proc::Cmd;
use crate::progress::Sink;
use crate::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

const PACKAGE: &str = "espeak-ng";
/// espeak-ng's default speed in words per minute; `rate` scales it.
const DEFAULT_WPM: f32 = 175.0;

/// The program: `$AUTOSUB_ESPEAK`, else `espeak-ng` in PATH.
pub(crate) fn program() -> PathBuf {
    std::env::var_os("AUTOSUB_ESPEAK").map_or_else(|| "espeak-ng".into(), PathBuf::from)
}

fn cmd() -> Cmd {
    Cmd::new(program(), PACKAGE)
        .timeout(Duration::from_secs(120))
        .idle_timeout(Duration::from_secs(60))
}

/// espeak-ng with one voice (`-v`, e.g. `en-us`, `ru`).
pub struct Espeak {
    info: VoiceInfo,
}

impl Espeak {
    /// `voice` is espeak-ng's language name (`en-us`), `language` its ISO 639-1 code.
    pub fn new(voice: &str, language: &str) -> Self {
        Espeak {
            info: VoiceInfo {
                engine: EngineKind::Espeak,
                name: format!("espeak:{voice}"),
                language: language.to_owned(),
                quality: 10,
                path: None,
            },
        }
    }
}

/// Writes `text` to a file in `dir` and returns its path (absolute: never read as an option).
fn text_file(dir: &std::path::Path, text: &str) -> Result<PathBuf> {
    let p = dir.join("text.txt");
    std::fs::write(&p, format!("{text}\n")).map_err(|e| Error::Write {
        path: p.clone(),
        source: e,
    })?;
    Ok(p)
}

fn failed(out: &crate::proc::Output) -> Error {
    Error::ProgramFailed {
        program: "espeak-ng".into(),
        message: out.last_error_line(),
    }
}

impl Tts for Espeak {
    fn voice(&self) -> &VoiceInfo {
        &self.info
    }

    fn synthesize(&self, text: &str, rate: f32, sink: &dyn Sink) -> Result<Speech> {
        let rate = check_rate(rate)?;
        let text = clean_text(text)?;
        if !has_words(&text) {
            return Ok(Speech {
                samples: Vec::new(),
                sample_rate: 22050,
            });
        }
        let dir = temp_dir()?;
        let file = text_file(dir.path(), &text)?;
        let wpm = (DEFAULT_WPM * rate).round().clamp(80.0, 450.0) as u32;
        let out = cmd()
            .args(["--stdout", "-v", self.info.engine_voice(), "-s"])
            .arg(wpm.to_string())
            .arg("-f")
            .arg(&file)
            .capture_stdout()
            .run(sink, &mut |_| {})?;
        if !out.status.success() {
            return Err(failed(&out));
        }
        wav::decode(&out.stdout).map_err(|e| Error::ProgramFailed {
            program: "espeak-ng".into(),
            message: e.to_string(),
        })
    }
}

/// IPA phonemes of one clause of cleaned text in espeak-ng voice `voice`, as `espeak-ng -q --ipa` prints them
/// (espeak's own line breaks joined with spaces), language-switch marks like `(en)` removed.
pub(crate) fn phonemize(voice: &str, text: &str, sink: &dyn Sink) -> Result<String> {
    let dir = temp_dir()?;
    let file = text_file(dir.path(), text)?;
    let out = cmd()
        .args(["-q", "--ipa", "-v", voice, "-f"])
        .arg(&file)
        .capture_stdout()
        .run(sink, &mut |_| {})?;
    if !out.status.success() {
        return Err(failed(&out));
    }
    Ok(strip_language_flags(
        &String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    ))
}

/// Removes espeak-ng's language switch marks: `(en)həlˈoʊ(ru)` -> `həlˈoʊ`.
pub(crate) fn strip_language_flags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The voices `espeak-ng --voices` lists that have an ISO 639-1 language.
pub(crate) fn list_voices(sink: &dyn Sink) -> Result<Vec<VoiceInfo>> {
    let out = cmd()
        .arg("--voices")
        .capture_stdout()
        .run(sink, &mut |_| {})?;
    if !out.status.success() {
        return Err(failed(&out));
    }
    Ok(parse_voices(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .map(|(voice, lang)| Espeak::new(&voice, &lang).info)
        .collect())
}

/// Parses `espeak-ng --voices`: `(espeak voice, ISO 639-1)` for each line whose language maps to a two-letter code
/// (`en-us` -> `en`, `cmn` -> `zh`). Pure.
pub(crate) fn parse_voices(listing: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in listing.lines().skip(1) {
        let Some(voice) = line.split_whitespace().nth(1) else {
            continue;
        };
        let primary = voice.split('-').next().unwrap_or("").to_ascii_lowercase();
        let lang = match primary.as_str() {
            "cmn" | "yue" | "hak" => "zh".to_owned(),
            p if p.len() == 2 && p.bytes().all(|b| b.is_ascii_lowercase()) => p.to_owned(),
            _ => continue,
        };
        if !out.iter().any(|(v, _)| v == voice) {
            out.push((voice.to_owned(), lang));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voices_listing() {
        let listing = "Pty Language       Age/Gender VoiceName          File                 Other Languages\n \
             5  af              --/M      Afrikaans          gmw/af\n \
             5  chr-US-Qaaa-x-west --/M   Cherokee_          iro/chr\n \
             5  cmn             --/M      Chinese_(Mandarin) sit/cmn              (zh-cmn 5)(zh 5)\n \
             5  en-us           --/M      English_(America)  gmw/en-US            (en 3)\n \
             5  yue             --/M      Chinese_(Cantonese) sit/yue             (zh-yue 5)(zh 8)\n \
             5  yue             --/M      Chinese_(Cantonese_jyutping) sit/yue_jyut\n";
        assert_eq!(
            parse_voices(listing),
            [
                ("af".to_owned(), "af".to_owned()),
                ("cmn".to_owned(), "zh".to_owned()),
                ("en-us".to_owned(), "en".to_owned()),
                ("yue".to_owned(), "zh".to_owned()),
            ]
        );
    }

    #[test]
    fn language_flags() {
        assert_eq!(
            strip_language_flags("(en)həlˈoʊ(ru) mʌskvˈɑ"),
            "həlˈoʊ mʌskvˈɑ"
        );
    }
}
