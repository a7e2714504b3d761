//! Translation of subtitles, timing-aware: the source words are merged into sentences
//! ([`autosub_subs::retime::sentences`]), each sentence is translated whole, and the translation is spread over
//! the sentence's own timeline and cut back into cues for the target profile by the ordinary segmenter. A
//! translation too long to read in its slot is not squeezed: `lint` reports it (too fast).
//!
//! Engines ([`Engine`]): `whisper` (the recogniser's own translate task, any spoken language to English, run by
//! the pipeline on the audio), `llm` (any OpenAI-compatible chat-completions server, [`llm`]) and `argos`
//! (offline Argos Translate packages run by CTranslate2, [`argos`]; compiled with the `argos` feature).
//! [`choose`] picks one per target language and says why.

pub mod argos;
pub mod llm;

use crate::progress::{Event, Sink};
use crate::{Error, Result};
use autosub_subs::{retime, Cue, Profile, Word};

/// A text translator: `texts` in language `from`, one translation per text, in order.
pub trait Translator: Send + Sync {
    /// Short name for reports (`llm`).
    fn name(&self) -> &str;
    fn translate(
        &self,
        texts: &[String],
        from: &str,
        to: &str,
        sink: &dyn Sink,
    ) -> Result<Vec<String>>;
}

/// The translation engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Whisper,
    Argos,
    Llm,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Whisper => "whisper",
            Engine::Argos => "argos",
            Engine::Llm => "llm",
        })
    }
}

impl std::str::FromStr for Engine {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "whisper" => Ok(Engine::Whisper),
            "argos" => Ok(Engine::Argos),
            "llm" => Ok(Engine::Llm),
            other => Err(Error::BadInput(format!(
                "unknown translator `{other}`; choose whisper, argos or llm (or auto)"
            ))),
        }
    }
}

/// The engine picked for one target language, and why.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Choice {
    pub engine: Engine,
    pub reason: String,
}

/// What is available to translate with.
#[derive(Clone, Copy, Debug, Default)]
pub struct Available {
    /// The source is audio the recogniser can translate (a media file, not a subtitle file).
    pub audio: bool,
    /// An LLM endpoint is configured.
    pub llm: bool,
    /// Installed Argos packages translate this pair, directly or through English (and the engine is built in).
    pub argos: bool,
}

/// ISO 639-1 codes (the languages Whisper knows, plus a few common others).
const ISO_639_1: &[&str] = &[
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy", "da",
    "de", "el", "en", "eo", "es", "et", "eu", "fa", "fi", "fo", "fr", "ga", "gl", "gu", "ha", "he",
    "hi", "hr", "ht", "hu", "hy", "id", "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko", "ku",
    "ky", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my",
    "nb", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si", "sk",
    "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl", "tr", "tt",
    "uk", "ur", "uz", "vi", "yi", "yo", "zh", "zu",
];

/// Checks an ISO 639-1 code (lower-case, two letters, a known language).
pub fn validate_language(code: &str) -> Result<()> {
    if ISO_639_1.contains(&code) {
        Ok(())
    } else {
        Err(Error::BadInput(format!(
            "`{code}` is not an ISO 639-1 language code (two lower-case letters, e.g. en, ru, es, de)"
        )))
    }
}

/// Parses `--translate en,ru`: validated, de-duplicated, in order.
pub fn parse_languages(list: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for code in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        validate_language(code)?;
        if !out.iter().any(|c| c == code) {
            out.push(code.to_owned());
        }
    }
    if out.is_empty() {
        return Err(Error::BadInput(
            "--translate needs at least one language code (e.g. en or ru,es)".into(),
        ));
    }
    Ok(out)
}

/// Picks the engine for `from` -> `to`: the one asked for (checked), else whisper for English from audio (it
/// translates the speech itself, with its own timings), else the LLM endpoint when one is configured (the user set
/// it up on purpose), else installed Argos packages (offline). Without any, the error says what to install or
/// configure.
pub fn choose(from: &str, to: &str, asked: Option<Engine>, have: Available) -> Result<Choice> {
    let llm_help = "set AUTOSUB_LLM_BASE_URL (and AUTOSUB_LLM_MODEL, AUTOSUB_LLM_API_KEY) to an OpenAI-compatible \
                    server such as Ollama (http://127.0.0.1:11434/v1) or llama.cpp";
    let argos_help = if cfg!(feature = "argos") {
        format!(
            "install an offline Argos package: `{}`",
            argos::install_hint(from, to)
        )
    } else {
        "this autosub was built without the argos engine (cargo feature `argos`)".to_owned()
    };
    match asked {
        Some(Engine::Whisper) => {
            if to != "en" {
                return Err(Error::BadInput(format!(
                    "the whisper translator only translates into English, not {to}; use --translator argos or llm"
                )));
            }
            if !have.audio {
                return Err(Error::BadInput(
                    "the whisper translator works from the audio, not from a subtitle file; use --translator \
                     argos or llm"
                        .into(),
                ));
            }
            Ok(Choice {
                engine: Engine::Whisper,
                reason: "asked for with --translator".into(),
            })
        }
        Some(Engine::Llm) => {
            if !have.llm {
                return Err(Error::BadInput(format!(
                    "--translator llm needs an endpoint: {llm_help}"
                )));
            }
            Ok(Choice {
                engine: Engine::Llm,
                reason: "asked for with --translator".into(),
            })
        }
        Some(Engine::Argos) => {
            if !cfg!(feature = "argos") || !have.argos {
                return Err(Error::BadInput(format!(
                    "--translator argos: no Argos package for {from}->{to}; {argos_help}"
                )));
            }
            Ok(Choice {
                engine: Engine::Argos,
                reason: "asked for with --translator".into(),
            })
        }
        None => {
            if to == "en" && have.audio {
                Ok(Choice {
                    engine: Engine::Whisper,
                    reason: format!(
                        "English from {from} speech: Whisper translates the audio itself, with word timings"
                    ),
                })
            } else if have.llm {
                Ok(Choice {
                    engine: Engine::Llm,
                    reason: format!("{from}->{to}: the configured LLM endpoint"),
                })
            } else if have.argos && cfg!(feature = "argos") {
                Ok(Choice {
                    engine: Engine::Argos,
                    reason: format!("{from}->{to}: installed Argos packages, offline"),
                })
            } else {
                Err(Error::BadInput(format!(
                    "no translator for {from}->{to}: {argos_help}, or {llm_help}{}",
                    if to == "en" {
                        ""
                    } else {
                        " (Whisper itself only translates speech into English)"
                    }
                )))
            }
        }
    }
}

/// Translates the words of a transcript (or cues' spread words) with `translator` and cuts the result into
/// cues for `profile`: sentence by sentence, each translation timed over its source sentence.
pub fn translate_words(
    words: &[Word],
    from: &str,
    to: &str,
    translator: &dyn Translator,
    profile: &Profile,
    sink: &dyn Sink,
) -> Result<(Vec<Word>, Vec<Cue>)> {
    let sentences = retime::sentences(words);
    let texts: Vec<String> = sentences.iter().map(|s| s.text.clone()).collect();
    let translated = if texts.is_empty() {
        Vec::new()
    } else {
        translator.translate(&texts, from, to, sink)?
    };
    if translated.len() != texts.len() {
        return Err(Error::Translate(format!(
            "{} returned {} translations for {} sentences",
            translator.name(),
            translated.len(),
            texts.len()
        )));
    }
    let mut out_words = Vec::new();
    for (s, t) in sentences.iter().zip(&translated) {
        out_words.extend(retime::spread(s, t));
    }
    let cues = autosub_subs::segment(&out_words, profile);
    Ok((out_words, cues))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A translator that upper-cases and doubles every text (a longer "translation").
    struct Loud;
    impl Translator for Loud {
        fn name(&self) -> &str {
            "loud"
        }
        fn translate(
            &self,
            texts: &[String],
            _: &str,
            _: &str,
            _: &dyn Sink,
        ) -> Result<Vec<String>> {
            Ok(texts
                .iter()
                .map(|t| format!("{} {}", t.to_uppercase(), t.to_uppercase()))
                .collect())
        }
    }

    #[test]
    fn languages_are_validated() {
        assert_eq!(parse_languages("ru, es,ru").unwrap(), vec!["ru", "es"]);
        assert!(parse_languages("english").is_err());
        assert!(parse_languages("EN").is_err());
        assert!(parse_languages("xx").is_err());
        assert!(parse_languages(" , ").is_err());
    }

    #[test]
    fn engine_choice_and_reasons() {
        let audio = Available {
            audio: true,
            llm: false,
            argos: false,
        };
        let both = Available {
            audio: true,
            llm: true,
            argos: false,
        };
        let subs_only = Available {
            audio: false,
            llm: true,
            argos: false,
        };
        let offline = Available {
            audio: false,
            llm: false,
            argos: true,
        };
        assert_eq!(
            choose("de", "en", None, audio).unwrap().engine,
            Engine::Whisper
        );
        assert_eq!(choose("de", "ru", None, both).unwrap().engine, Engine::Llm);
        assert_eq!(
            choose("de", "en", None, subs_only).unwrap().engine,
            Engine::Llm
        );
        let e = choose("de", "ru", None, audio).unwrap_err().to_string();
        assert!(e.contains("AUTOSUB_LLM_BASE_URL"), "{e}");
        assert!(
            e.contains("translate:de-ru") || e.contains("without the argos engine"),
            "{e}"
        );
        // Argos packages, offline: used when nothing else is configured, and on request.
        let want = if cfg!(feature = "argos") {
            Some(Engine::Argos)
        } else {
            None
        };
        assert_eq!(
            choose("de", "ru", None, offline).ok().map(|c| c.engine),
            want
        );
        assert_eq!(
            choose("de", "ru", Some(Engine::Argos), offline)
                .ok()
                .map(|c| c.engine),
            want
        );
        assert!(choose("de", "ru", Some(Engine::Argos), both).is_err());
        assert_eq!(
            choose(
                "de",
                "ru",
                None,
                Available {
                    llm: true,
                    ..offline
                }
            )
            .unwrap()
            .engine,
            Engine::Llm
        );
        assert!(choose("de", "ru", Some(Engine::Whisper), both).is_err());
        assert!(choose("de", "en", Some(Engine::Whisper), subs_only).is_err());
        assert!(choose("de", "en", Some(Engine::Llm), audio).is_err());
        assert!(choose("de", "en", Some(Engine::Argos), both).is_err());
    }

    #[test]
    fn translations_are_cut_into_cues_inside_the_source_span() {
        let w = |t: &str, s: u64, e: u64| Word {
            text: t.into(),
            start_ms: s,
            end_ms: e,
            prob: 1.0,
        };
        let words = vec![
            w(" Hello", 1000, 1400),
            w(" there,", 1400, 1800),
            w(" my", 1900, 2100),
            w(" friend.", 2100, 2600),
            w(" See", 6000, 6300),
            w(" you.", 6300, 6800),
        ];
        let (tw, cues) = translate_words(
            &words,
            "en",
            "xx",
            &Loud,
            &Profile::standard(),
            &crate::progress::NullSink,
        )
        .unwrap();
        assert_eq!(tw.first().unwrap().start_ms, 1000);
        assert!(tw.iter().all(|w| (1000..=6800).contains(&w.start_ms)));
        let text: Vec<String> = cues.iter().map(|c| c.lines.join(" ")).collect();
        assert_eq!(
            text.join(" "),
            "HELLO THERE, MY FRIEND. HELLO THERE, MY FRIEND. SEE YOU. SEE YOU."
        );
        // The second sentence's translation starts with its own speech, not before.
        let see = cues
            .iter()
            .find(|c| c.lines.join(" ").starts_with("SEE"))
            .unwrap();
        assert!(see.start_ms >= 5700, "{cues:?}");
        assert!(cues
            .iter()
            .all(|c| c.end_ms <= 6800 + Profile::standard().max_linger_ms + 10));
    }
}

/// The argos engine over `opts.models_dir` (checked by [`choose`]).
#[cfg(feature = "argos")]
fn translate_argos(
    words: &[Word],
    from: &str,
    to: &str,
    opts: &TranslateOptions,
    profile: &Profile,
    sink: &dyn Sink,
) -> Result<(Vec<Word>, Vec<Cue>)> {
    let dir = opts
        .models_dir
        .as_deref()
        .expect("choose() found a route in the models folder");
    let engine = argos::ArgosTranslator::new(dir, opts.argos.clone());
    translate_words(words, from, to, &engine, profile, sink)
}

#[cfg(not(feature = "argos"))]
fn translate_argos(
    _: &[Word],
    _: &str,
    _: &str,
    _: &TranslateOptions,
    _: &Profile,
    _: &dyn Sink,
) -> Result<(Vec<Word>, Vec<Cue>)> {
    unreachable!("choose() refuses argos when it is not built in")
}

/// What to translate into, and with what.
#[derive(Clone, Debug, Default)]
pub struct TranslateOptions {
    /// Target languages (validated ISO 639-1 codes), in order.
    pub targets: Vec<String>,
    /// `--translator`; `None` picks per language ([`choose`]).
    pub engine: Option<Engine>,
    /// The LLM endpoint, when configured.
    pub llm: Option<llm::LlmConfig>,
    /// The models folder holding Argos packages (`<models>/argos/`), and the engine's settings.
    pub models_dir: Option<std::path::PathBuf>,
    pub argos: argos::ArgosOptions,
}

/// One translated document.
#[derive(Clone, Debug)]
pub struct Translated {
    pub language: String,
    pub choice: Choice,
    pub doc: autosub_subs::Document,
}

/// The audio side for the `whisper` engine: the recogniser and the media file with its options.
pub struct Speech<'a> {
    pub recognizer: &'a crate::asr::Recognizer,
    pub input: &'a std::path::Path,
    pub opts: &'a crate::pipeline::TranscribeOptions,
}

/// Translates `doc` (a transcript in `doc.language`) into every target of `opts`, each cut with `profile`.
/// Engines are chosen (and checked) for every language before any work starts. A target equal to the source
/// language is an error (the transcript already is that language).
pub fn translate_document(
    doc: &autosub_subs::Document,
    opts: &TranslateOptions,
    profile: &Profile,
    speech: Option<Speech<'_>>,
    sink: &dyn Sink,
) -> Result<Vec<Translated>> {
    let from = doc.language.clone().ok_or_else(|| {
        Error::BadInput("the source language is unknown; give it with --lang".into())
    })?;
    let mut plan = Vec::new();
    for to in &opts.targets {
        if *to == from {
            return Err(Error::BadInput(format!(
                "the speech is already in {to}: nothing to translate (drop {to} from --translate)"
            )));
        }
        let route = opts
            .models_dir
            .as_deref()
            .and_then(|d| argos::route(d, &from, to));
        let have = Available {
            audio: speech.is_some(),
            llm: opts.llm.is_some(),
            argos: route.is_some(),
        };
        let mut choice = choose(&from, to, opts.engine, have)?;
        if let (Engine::Argos, Some(r)) = (choice.engine, &route) {
            if r.hops.len() > 1 {
                choice.reason.push_str(&format!(" (through English: {r})"));
            }
        }
        plan.push((to.clone(), choice));
    }
    let llm = match &opts.llm {
        Some(c) if plan.iter().any(|(_, c)| c.engine == Engine::Llm) => {
            Some(llm::LlmTranslator::new(c.clone())?)
        }
        _ => None,
    };
    // Translations are denser than speech more often than transcripts are, and their word times are estimates:
    // a translated cue may start up to 1 s before its words (instead of the profile's 0.3 s) to get its reading
    // time from the silence before it.
    let profile = &Profile {
        max_start_offset_ms: profile.max_start_offset_ms.max(1000),
        ..profile.clone()
    };
    let source_words = if doc.words.is_empty() {
        retime::words_of_cues(&doc.cues)
    } else {
        doc.words.clone()
    };
    let mut out = Vec::new();
    for (to, choice) in plan {
        let t0 = std::time::Instant::now();
        sink.event(Event::Start {
            stage: crate::progress::Stage::Translate,
            total: None,
        });
        let (words, cues) = match choice.engine {
            Engine::Whisper => {
                let sp = speech.as_ref().expect("choose() checked the audio");
                let mut o = sp.opts.clone();
                o.asr.translate = true;
                o.asr.language = Some(from.clone());
                let tr = crate::pipeline::transcribe_file(sp.recognizer, sp.input, &o, sink)?;
                let cues = autosub_subs::segment(&tr.recognition.words, profile);
                (tr.recognition.words, cues)
            }
            Engine::Llm => translate_words(
                &source_words,
                &from,
                &to,
                llm.as_ref().expect("configured"),
                profile,
                sink,
            )?,
            Engine::Argos => translate_argos(&source_words, &from, &to, opts, profile, sink)?,
        };
        let elapsed = t0.elapsed();
        sink.event(Event::Finish {
            stage: crate::progress::Stage::Translate,
            elapsed,
        });
        let mut timings = doc.timings_ms.clone();
        timings.insert(format!("translate_{to}"), elapsed.as_millis() as u64);
        out.push(Translated {
            language: to.clone(),
            choice,
            doc: autosub_subs::Document {
                language: Some(to.clone()),
                language_probability: None,
                words,
                cues,
                profile: profile.name.clone(),
                limits: Some(profile.clone()),
                timings_ms: timings,
                ..doc.clone()
            },
        });
    }
    Ok(out)
}
