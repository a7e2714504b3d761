//! Voice-over on the command line: `process --voiceover`, `autosub voices`, `autosub speak`, and the
//! voice-over check of `lint --voiceover`.

use anyhow::Result;
use autosub_core::progress::Sink;
use autosub_core::render::{VoiceMode, VoiceTrack};
use autosub_core::tts::{self, voiceover};
use autosub_subs::Cue;
use clap::Args;
use serde_json::json;
use std::path::Path;

#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Voice-over")]
pub struct VoiceArgs {
    /// Speak the burned subtitles (the translation when there is one) as a voice-over: the best installed voice
    /// for their language, or VOICE (a name from `autosub voices`, e.g. piper:en_US-joe-medium,
    /// festival:msu_ru_nsh_clunits, espeak:ru, or a language code).
    #[arg(long, value_name = "VOICE", num_args = 0..=1, default_missing_value = "auto")]
    pub voiceover: Option<String>,
    /// duck: the original sound lowered while the voice speaks; replace: the voice alone.
    #[arg(long, default_value = "duck", value_name = "MODE")]
    pub voiceover_mode: String,
    /// Most a line is sped up to fit its subtitle's time (1.0-2.0).
    #[arg(long, default_value_t = 1.35, value_name = "FACTOR")]
    pub max_speedup: f32,
}

/// The voice-over settings of a job, checked before any long work.
pub use autosub_core::job::VoiceSpec as VoicePlan;

impl VoiceArgs {
    pub fn plan(&self) -> Result<Option<VoicePlan>> {
        let mode: VoiceMode = self.voiceover_mode.parse()?;
        if !(1.0..=2.0).contains(&self.max_speedup) {
            return Err(crate::bad(format!(
                "--max-speedup {} is out of range: use 1.0 (never faster) to 2.0",
                self.max_speedup
            )));
        }
        let Some(spec) = &self.voiceover else {
            if self.voiceover_mode != "duck" {
                return Err(crate::bad("--voiceover-mode needs --voiceover"));
            }
            return Ok(None);
        };
        Ok(Some(VoicePlan {
            voice: spec.clone(),
            mode,
            max_speedup: self.max_speedup,
        }))
    }
}

/// `--voiceover` takes an optional voice; a `--voiceover` whose next argument is not a voice (an option, a path,
/// a link, an existing file) is rewritten to `--voiceover=auto` so that the input is not read as the voice.
pub fn is_voice_name(arg: &str) -> bool {
    if arg.is_empty() || arg.starts_with('-') || arg.contains('/') || arg.contains('.') {
        return false;
    }
    // `engine:name` and language codes are voices even if a file or folder of that name happens to exist.
    arg.contains(':')
        || autosub_core::translate::validate_language(arg).is_ok()
        || !Path::new(arg).exists()
}

/// Opens the voice for `language`: the plan's voice, or the best installed one for the language.
pub fn open(
    plan: &VoicePlan,
    language: Option<&str>,
    models_dir: &Path,
    sink: &dyn Sink,
) -> Result<Box<dyn tts::Tts>> {
    let spec = if plan.voice == "auto" {
        language.ok_or_else(|| {
            crate::bad("the language of the subtitles is unknown: give --lang or a voice (--voiceover VOICE)")
        })?
    } else {
        plan.voice.as_str()
    };
    Ok(tts::open_voice_with(
        models_dir,
        spec,
        &voice_settings()?,
        sink,
    )?)
}

/// `AUTOSUB_PIPER_NOISE`: Piper's noise scales, `SCALE` or `SCALE,W` (`0` makes Piper voices reproducible).
pub const PIPER_NOISE_ENV: &str = "AUTOSUB_PIPER_NOISE";

/// The voice settings from the environment ([`PIPER_NOISE_ENV`]).
pub fn voice_settings() -> Result<tts::VoiceSettings> {
    let Some(v) = std::env::var(PIPER_NOISE_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(tts::VoiceSettings::default());
    };
    let parse = |s: &str| {
        s.trim()
            .parse::<f32>()
            .ok()
            .filter(|x| (0.0..=2.0).contains(x))
    };
    let noise = match v.split_once(',') {
        None => parse(&v).map(|x| (x, x)),
        Some((a, b)) => parse(a).zip(parse(b)),
    };
    match noise {
        Some(n) => Ok(tts::VoiceSettings {
            piper_noise: Some(n),
        }),
        None => Err(crate::bad(format!(
            "{PIPER_NOISE_ENV}={v:?}: expected SCALE or SCALE,W, numbers from 0 to 2 (0 makes Piper voices \
             reproducible)"
        ))),
    }
}

/// Builds the voice-over of `cues` on a track `length_ms` long.
pub fn build(
    cues: &[Cue],
    engine: &dyn tts::Tts,
    plan: &VoicePlan,
    length_ms: Option<u64>,
    sink: &dyn Sink,
) -> Result<voiceover::Voiceover> {
    let opts = voiceover::VoiceoverOptions {
        max_speedup: plan.max_speedup,
        length_ms,
        ..Default::default()
    };
    Ok(voiceover::build(cues, engine, &opts, sink)?)
}

/// The track for the render.
pub fn track<'a>(vo: &'a voiceover::Voiceover, mode: VoiceMode) -> VoiceTrack<'a> {
    VoiceTrack {
        samples: &vo.samples,
        sample_rate: vo.sample_rate,
        mode,
    }
}

/// Warnings for the lines that could not be fitted, one per cue.
pub use autosub_core::job::overflow_notes;

/// The JSON summary of a voice-over.
pub fn summary(
    vo: &voiceover::Voiceover,
    engine: &dyn tts::Tts,
    mode: VoiceMode,
) -> serde_json::Value {
    serde_json::to_value(autosub_core::job::voiceover_summary(vo, engine, mode)).unwrap_or_default()
}

#[derive(Args)]
pub struct VoicesArgs {
    /// Only voices for this language (ISO 639-1).
    #[arg(long)]
    lang: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `autosub voices`: the installed voices per language, best first, and the Piper voices that can be downloaded.
pub fn voices_cmd(a: VoicesArgs, models_dir: &Path, sink: &dyn Sink) -> Result<u8> {
    let all = tts::list_voices(models_dir, sink);
    let mut langs: Vec<&str> = all.iter().map(|v| v.language.as_str()).collect();
    langs.sort_unstable();
    langs.dedup();
    if let Some(l) = &a.lang {
        langs.retain(|x| x == l);
    }
    if a.json {
        let out: Vec<_> = langs
            .iter()
            .map(|l| {
                let best = tts::best_voice(&all, l).map(|v| v.name.clone());
                let voices: Vec<_> = all.iter().filter(|v| v.language == *l).collect();
                json!({ "language": l, "best": best, "voices": voices })
            })
            .collect();
        out!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    if langs.is_empty() {
        out!(
            "no voices{}: install espeak-ng (and festival festvox-ru, Piper voices) with scripts/setup-voices.sh",
            a.lang.as_deref().map(|l| format!(" for {l}")).unwrap_or_default()
        );
    }
    for l in &langs {
        let best = tts::best_voice(&all, l).map(|v| v.name.clone());
        let mut voices: Vec<_> = all.iter().filter(|v| v.language == *l).collect();
        voices.sort_by(|x, y| y.quality.cmp(&x.quality).then(x.name.cmp(&y.name)));
        let names: Vec<String> = voices
            .iter()
            .map(|v| {
                if Some(&v.name) == best.as_ref() {
                    format!("{} (best)", v.name)
                } else {
                    v.name.clone()
                }
            })
            .collect();
        out!("{l:<4} {}", names.join(", "));
    }
    let installable: Vec<&str> = tts::PIPER_VOICES.iter().map(|v| v.name).collect();
    if !installable.is_empty() {
        out!(
            "downloadable Piper voices (autosub models install voice:NAME): {}",
            installable.join(", ")
        );
    }
    Ok(0)
}

#[derive(Args)]
pub struct SpeakArgs {
    /// Subtitle file to speak (.json .srt .vtt .ass).
    pub subs: std::path::PathBuf,
    /// Output WAV file [default: <name>.voice.wav].
    #[arg(long, short)]
    pub output: Option<std::path::PathBuf>,
    /// Voice (a name from `autosub voices`) [default: the best for the language].
    #[arg(long)]
    pub voice: Option<String>,
    /// Language of the subtitles [default: the JSON's language; needed for .srt .vtt .ass without --voice].
    #[arg(long)]
    pub lang: Option<String>,
    /// Most a line is sped up to fit its subtitle's time (1.0-2.0).
    #[arg(long, default_value_t = 1.35, value_name = "FACTOR")]
    pub max_speedup: f32,
    /// Print the per-line report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Writes a WAV file to `path` under a temporary name in the same folder, then renames it into place.
pub fn write_wav_atomically(path: &Path, samples: &[f32], sample_rate: u32) -> Result<()> {
    let tmp = autosub_core::partial::partial_path(path, "voice.wav");
    let written = tts::wav::write_f32_file(&tmp, samples, sample_rate)
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::Error::new(e).context(format!("writing {}", path.display())));
    }
    Ok(())
}
