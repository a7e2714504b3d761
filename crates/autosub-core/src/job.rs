//! The whole job as data: [`Job`] (what `autosub process`, a queued task or a bot message asks for) and [`run`]
//! (the stages, in order, with the product's rules). Every front end builds a `Job` and calls `run`: the CLI from
//! its arguments, a worker from a task row. The job is the API boundary of the core: plain, serialisable data,
//! versioned ([`JOB_VERSION`]) so that a worker refuses a job written by a newer version instead of misreading it.
//!
//! What a job cannot carry (a loaded model, the programs to run, download settings, secrets) comes in a
//! [`JobEnv`], built once per process and shared by the jobs it runs ([`Recognizers`] loads each Whisper model
//! once).

use crate::asr::{AsrOptions, Recognizer};
use crate::fetch::{self, Fetched};
use crate::media::{self, Damage, Tools};
use crate::pipeline::{self, TranscribeOptions, VideoJob, Watermark};
use crate::progress::{Event, Sink, Stage};
use crate::render::{self, Corner, Quality, Reframe, Rendered, VoiceMode, VoiceTrack};
use crate::translate::{self, llm::LlmConfig, Engine, TranslateOptions, Translated};
use crate::tts::{self, voiceover, Tts, VoiceSettings};
use crate::{Error, Result};
use autosub_subs::{AssStyle, BurnLook, Document, Format, Profile, ProfileOverrides};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The version of the [`Job`] format this build writes and reads. A job with a higher version is refused
/// ([`Job::check_version`]): a rolling update runs old and new workers on one queue.
pub const JOB_VERSION: u32 = 1;

/// Where the media comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum JobInput {
    /// A local file (a Telegram file is downloaded by the caller and given as a file).
    File { path: PathBuf },
    /// A link, downloaded with yt-dlp through the safe fetch ([`fetch::fetch`]).
    Url { url: String },
}

/// Recognition settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AsrSpec {
    /// Whisper model: an installed name (`base`) or a path to a ggml file.
    pub model: String,
    /// The spoken language (ISO 639-1); detected when `None`.
    pub language: Option<String>,
    /// Beam width; 1 is greedy decoding.
    pub beam: u32,
    /// CPU threads; the default depends on the machine.
    pub threads: Option<u32>,
    /// A truncated or damaged input is refused instead of subtitled as far as it could be read.
    pub strict: bool,
}

impl Default for AsrSpec {
    fn default() -> Self {
        AsrSpec {
            model: "base".into(),
            language: None,
            beam: 5,
            threads: None,
            strict: false,
        }
    }
}

/// Translation of the subtitles.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TranslateSpec {
    /// Target languages (ISO 639-1), in order.
    pub targets: Vec<String>,
    /// The engine; picked per language when `None`.
    pub engine: Option<Engine>,
    /// Which translation is burned into the video; the first target when `None`.
    pub burn_lang: Option<String>,
    /// The original is burned above the translation.
    pub bilingual: bool,
    /// A glossary file for the LLM translator (`term = translation` per line).
    pub glossary: Option<PathBuf>,
}

/// The voice-over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VoiceSpec {
    /// A voice name (`piper:en_US-joe-medium`), a language code, or `auto` (the best voice for the burned
    /// language).
    pub voice: String,
    pub mode: VoiceMode,
    /// Most a line is sped up to fit its subtitle's time (1.0-2.0).
    pub max_speedup: f32,
}

impl Default for VoiceSpec {
    fn default() -> Self {
        VoiceSpec {
            voice: "auto".into(),
            mode: VoiceMode::Duck,
            max_speedup: 1.35,
        }
    }
}

/// A watermark: a text or an image file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatermarkSpec {
    /// A text, or the path of a .png/.jpg image.
    pub value: String,
    pub corner: Corner,
    /// 0 invisible .. 1 opaque.
    pub opacity: f64,
}

impl Default for WatermarkSpec {
    fn default() -> Self {
        WatermarkSpec {
            value: String::new(),
            corner: Corner::TopRight,
            opacity: 0.6,
        }
    }
}

/// The finished video: look, geometry, quality.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VideoSpec {
    /// 9:16 reframing.
    pub vertical: Option<Reframe>,
    /// A built-in style (clean, boxed, karaoke) or the path of an .ass file; clean, or karaoke for vertical
    /// video, when `None`.
    pub style: Option<String>,
    pub watermark: Option<WatermarkSpec>,
    /// Cap on the short side of the output (never upscales).
    pub max_height: Option<u32>,
    pub quality: Quality,
    /// Also save the burned ASS script here.
    pub save_script: Option<PathBuf>,
}

impl VideoSpec {
    /// The style name used when none is given: karaoke for vertical video, clean otherwise.
    pub fn style_name(&self) -> &str {
        self.style.as_deref().unwrap_or(if self.vertical.is_some() {
            "karaoke"
        } else {
            "clean"
        })
    }
}

/// Limits of the download of a link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FetchSpec {
    /// Longest media accepted, in seconds.
    pub max_duration_s: u64,
    /// Largest file accepted, in bytes.
    pub max_filesize: u64,
    /// For playlist links: which item (1-based).
    pub playlist_item: Option<u32>,
}

impl Default for FetchSpec {
    fn default() -> Self {
        FetchSpec {
            max_duration_s: 4 * 3600,
            max_filesize: 4 << 30,
            playlist_item: None,
        }
    }
}

/// Limits a tier imposes, checked on the real file (the front end checks what the user declared first).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobLimits {
    /// Longest media, in seconds.
    pub max_duration_s: Option<u64>,
    /// Highest output resolution (short side).
    pub max_height: Option<u32>,
    /// Largest input file, in bytes.
    pub max_filesize: Option<u64>,
    /// Who set the limits, for the refusal ("the free plan"); it says what lifts them.
    pub plan: Option<String>,
    /// What lifts the limits ("PRO allows 10 minutes").
    pub upgrade_hint: Option<String>,
}

/// One job: the input and every option of `autosub process`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// [`JOB_VERSION`] of the writer.
    pub version: u32,
    pub input: JobInput,
    /// The outputs' file name stem; the input's stem (or a link's title) when `None`.
    #[serde(default)]
    pub name: Option<String>,
    /// Subtitle formats to write, in order.
    pub formats: Vec<Format>,
    #[serde(default)]
    pub asr: AsrSpec,
    /// The segmentation profile and its overrides (`standard`, or `shorts` for vertical video, when not named).
    #[serde(default)]
    pub profile: ProfileOverrides,
    #[serde(default)]
    pub translate: Option<TranslateSpec>,
    #[serde(default)]
    pub voiceover: Option<VoiceSpec>,
    /// The finished video; subtitle files only when `None`.
    #[serde(default)]
    pub video: Option<VideoSpec>,
    #[serde(default)]
    pub fetch: FetchSpec,
    #[serde(default)]
    pub limits: JobLimits,
}

impl Job {
    /// A job for `input` with the defaults of `autosub process`.
    pub fn new(input: JobInput) -> Self {
        Job {
            version: JOB_VERSION,
            input,
            name: None,
            formats: vec![Format::Srt, Format::Vtt, Format::Ass, Format::Json],
            asr: AsrSpec::default(),
            profile: ProfileOverrides::default(),
            translate: None,
            voiceover: None,
            video: Some(VideoSpec::default()),
            fetch: FetchSpec::default(),
            limits: JobLimits::default(),
        }
    }

    /// Refuses a job written by a newer version of AutoSub.
    pub fn check_version(&self) -> Result<()> {
        if self.version > JOB_VERSION || self.version == 0 {
            return Err(Error::BadInput(format!(
                "this job was written by a newer AutoSub (job format {}, this build reads up to {JOB_VERSION})",
                self.version
            )));
        }
        Ok(())
    }

    /// Reads a job from JSON, refusing a newer format.
    pub fn from_json(s: &str) -> Result<Self> {
        let job: Job = serde_json::from_str(s)
            .map_err(|e| Error::BadInput(format!("not a job description: {e}")))?;
        job.check_version()?;
        Ok(job)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether the job makes a vertical video.
    pub fn vertical(&self) -> bool {
        self.video.as_ref().is_some_and(|v| v.vertical.is_some())
    }

    /// The segmentation profile: the overrides over `standard`, or over `shorts` for vertical video.
    pub fn profile(&self) -> Result<Profile> {
        let default = if self.vertical() {
            "shorts"
        } else {
            "standard"
        };
        let o = &self.profile;
        if o.max_chars_per_line.is_some_and(|n| n < 5) {
            return Err(Error::BadInput(
                "at least 5 characters per line are needed".into(),
            ));
        }
        if o.max_lines == Some(0) {
            return Err(Error::BadInput("at least 1 line per cue is needed".into()));
        }
        if o.max_cps.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            return Err(Error::BadInput(
                "the reading speed must be a positive number".into(),
            ));
        }
        o.resolve(None, default)
            .map_err(|e| Error::BadInput(e.to_string()))
    }
}

/// Whisper models loaded once per process and shared by every job that names them.
#[derive(Default)]
pub struct Recognizers {
    loaded: Mutex<HashMap<PathBuf, Arc<Recognizer>>>,
}

impl Recognizers {
    /// The model `name` (an installed name or a path) from `models_dir`, loaded on first use; with its display
    /// name.
    pub fn get(
        &self,
        models_dir: &Path,
        name: &str,
        sink: &dyn Sink,
    ) -> Result<(Arc<Recognizer>, String)> {
        let (path, display) = crate::models::resolve(models_dir, name)?;
        // Loading holds the lock: two jobs asking for the same model at once load it once.
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = loaded.get(&path) {
            return Ok((r.clone(), display));
        }
        sink.event(Event::Debug(&format!("model: {}", path.display())));
        let rec = Arc::new(Recognizer::load(&path)?);
        loaded.insert(path, rec.clone());
        Ok((rec, display))
    }

    /// How many models are loaded.
    pub fn len(&self) -> usize {
        self.loaded.lock().map(|l| l.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where downloads of links go and which addresses they may reach.
#[derive(Clone, Debug)]
pub struct FetchEnv {
    /// The download cache ([`fetch::cache`]).
    pub cache_dir: PathBuf,
    /// Non-public addresses that may be fetched from (none by default).
    pub policy: fetch::Policy,
    /// The yt-dlp program.
    pub ytdlp: PathBuf,
}

/// What a process gives every job it runs: configuration read once at start, and the loaded models.
pub struct JobEnv {
    /// Whisper models, Argos packages and Piper voices.
    pub models_dir: PathBuf,
    pub tools: Tools,
    pub fetch: FetchEnv,
    /// The OpenAI-compatible translation server, when configured.
    pub llm: Option<LlmConfig>,
    pub voice: VoiceSettings,
    pub recognizers: Recognizers,
}

impl JobEnv {
    pub fn new(models_dir: PathBuf, tools: Tools, fetch: FetchEnv) -> Self {
        JobEnv {
            models_dir,
            tools,
            fetch,
            llm: None,
            voice: VoiceSettings::default(),
            recognizers: Recognizers::default(),
        }
    }
}

/// One translation that was written.
#[derive(Clone, Debug, Serialize)]
pub struct TranslationOutput {
    pub language: String,
    pub engine: Engine,
    pub reason: String,
    pub cues: usize,
    /// Files written, per format, in the job's order.
    pub files: Vec<(Format, PathBuf)>,
}

/// The voice-over that was mixed in: the voice and how each line fitted.
#[derive(Clone, Debug, Serialize)]
pub struct VoiceoverSummary {
    pub voice: String,
    pub engine: tts::EngineKind,
    pub language: String,
    pub mode: VoiceMode,
    pub lines: usize,
    pub in_slot: usize,
    pub sped_up: usize,
    pub into_gap: usize,
    pub cut: usize,
    pub failed: usize,
    pub report: Vec<voiceover::LineReport>,
}

/// A link that was downloaded.
#[derive(Clone, Debug, Serialize)]
pub struct FetchedInfo {
    pub title: Option<String>,
    pub extractor: Option<String>,
    pub from_cache: bool,
    pub url: String,
}

/// Everything a finished job produced. Every file in it is complete: a job writes nothing under a final name
/// before it is whole.
#[derive(Clone, Debug, Serialize)]
pub struct JobOutputs {
    /// The media file that was transcribed (a downloaded link's file in the cache).
    pub input: PathBuf,
    /// The subtitles in the original language, per format, in the job's order.
    pub files: Vec<(Format, PathBuf)>,
    pub translations: Vec<TranslationOutput>,
    /// The finished video.
    pub video: Option<Rendered>,
    /// Without a video stream, the voice-over as an audio file.
    pub voiceover_audio: Option<PathBuf>,
    pub voiceover: Option<VoiceoverSummary>,
    /// The language burned into the video (and spoken by the voice-over).
    pub burned_language: Option<String>,
    /// The transcript: words, cues, language, timings per stage, warnings.
    pub document: Document,
    pub damaged: Option<Damage>,
    /// Things the user should know that did not stop the job.
    pub notes: Vec<String>,
    pub fetched: Option<FetchedInfo>,
}

impl JobOutputs {
    /// Every file the job wrote, originals first.
    pub fn all_files(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = self.files.iter().map(|(_, p)| p.as_path()).collect();
        for t in &self.translations {
            v.extend(t.files.iter().map(|(_, p)| p.as_path()));
        }
        v.extend(self.video.iter().map(|r| r.path.as_path()));
        v.extend(self.voiceover_audio.iter().map(PathBuf::as_path));
        v
    }
}

/// A file name made from a video title: no path separators or control characters, at most 150 bytes.
pub fn safe_stem(title: Option<&str>) -> String {
    let s: String = title
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_control() || "/\\:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    // At most 150 bytes (file names may have 255, and suffixes such as `.ru.srt.partial-PID-N` follow).
    let mut cut = s.len().min(150);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let s = s[..cut]
        .trim()
        .trim_start_matches(['.', '-'])
        .trim()
        .to_owned();
    if s.is_empty() {
        "video".to_owned()
    } else {
        s
    }
}

/// The stem of a file name, `subtitles` when it has none.
pub fn stem_of(input: &Path) -> String {
    input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "subtitles".to_owned())
}

/// The lower of two optional caps.
fn lower<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The video job of `spec`: look, watermark, geometry, quality; `max_height` also capped by the tier's limit.
pub fn video_job(spec: &VideoSpec, limits: &JobLimits) -> Result<VideoJob> {
    let look = pipeline::burn_look(spec.style_name(), spec.vertical.is_some())?;
    let watermark = spec
        .watermark
        .as_ref()
        .map(|w| Watermark::parse(&w.value, w.corner, w.opacity))
        .transpose()?;
    let max_height = lower(spec.max_height, limits.max_height);
    Ok(VideoJob {
        look,
        watermark,
        render: render::RenderOptions {
            vertical: spec.vertical,
            max_height,
            quality: spec.quality,
            ..Default::default()
        },
        save_script: spec.save_script.clone(),
        upper: None,
    })
}

/// The translate options of `spec`, checked before any long work: languages, engine per language, the LLM
/// endpoint and glossary, Argos packages. `audio`: the source is speech (the whisper engine can be used);
/// `source`: its language when known.
pub fn translate_options(
    spec: &TranslateSpec,
    env: &JobEnv,
    audio: bool,
    source: Option<&str>,
    threads: Option<u32>,
) -> Result<TranslateOptions> {
    if spec.targets.is_empty() {
        return Err(Error::BadInput("no language to translate into".into()));
    }
    for t in &spec.targets {
        translate::validate_language(t)?;
    }
    let mut targets: Vec<String> = Vec::new();
    for t in &spec.targets {
        if !targets.contains(t) {
            targets.push(t.clone());
        }
    }
    if let Some(b) = &spec.burn_lang {
        if !targets.contains(b) {
            return Err(Error::BadInput(format!(
                "the language to burn in ({b}) is not one of the translations ({})",
                targets.join(",")
            )));
        }
    }
    let mut llm = env.llm.clone();
    match (llm.as_mut(), &spec.glossary) {
        (Some(c), Some(g)) => c.load_glossary(g)?,
        (None, Some(_)) => {
            return Err(Error::BadInput(
                "a glossary is used by the llm translator, and no LLM server is configured \
                 (AUTOSUB_LLM_BASE_URL)"
                    .into(),
            ))
        }
        _ => {}
    }
    // Every language must have an engine before the long work starts. When the source language is not known
    // yet, an Argos package into the target is enough here (the route is checked again once it is known), and a
    // target equal to the source is reported by the caller, not as a missing engine.
    let installed = autosub_models::argos::list_packages(&env.models_dir);
    for to in targets.iter().filter(|t| Some(t.as_str()) != source) {
        let argos = match source {
            Some(from) => translate::argos::route(&env.models_dir, from, to).is_some(),
            None => installed.iter().any(|p| p.to == *to),
        };
        let have = translate::Available {
            audio,
            llm: llm.is_some(),
            argos,
        };
        translate::choose(source.unwrap_or("the source"), to, spec.engine, have)?;
    }
    let mut argos = translate::argos::ArgosOptions::default();
    if let Some(t) = threads {
        argos.threads = t as usize;
    }
    Ok(TranslateOptions {
        targets,
        engine: spec.engine,
        llm,
        models_dir: Some(env.models_dir.clone()),
        argos,
    })
}

/// Checks a voice-over spec's numbers.
fn check_voice(spec: &VoiceSpec) -> Result<()> {
    if !(1.0..=2.0).contains(&spec.max_speedup) {
        return Err(Error::BadInput(format!(
            "the voice-over speed-up limit {} is out of range: use 1.0 (never faster) to 2.0",
            spec.max_speedup
        )));
    }
    if spec.voice.trim().is_empty() {
        return Err(Error::BadInput("the voice-over voice is empty".into()));
    }
    Ok(())
}

/// Opens the voice of `spec` for `language`: the named voice, or the best installed one for the language.
pub fn open_voice(
    spec: &VoiceSpec,
    language: Option<&str>,
    env: &JobEnv,
    sink: &dyn Sink,
) -> Result<Box<dyn Tts>> {
    let name = if spec.voice == "auto" {
        language.ok_or_else(|| {
            Error::BadInput(
                "the language of the subtitles is unknown: name the spoken language or a voice"
                    .into(),
            )
        })?
    } else {
        spec.voice.as_str()
    };
    tts::open_voice_with(&env.models_dir, name, &env.voice, sink)
}

/// Warnings for the voice-over lines that could not be fitted, one per cue.
pub fn overflow_notes(vo: &voiceover::Voiceover) -> Vec<String> {
    vo.overflows()
        .map(|l| {
            format!(
                "voice-over cue {}: needs {} ms at {:.2}x, has {} ms before the next line: {} ms cut",
                l.cue + 1,
                l.needed_ms,
                l.speed,
                l.available_ms,
                l.cut_ms
            )
        })
        .collect()
}

/// The summary of a voice-over.
pub fn voiceover_summary(
    vo: &voiceover::Voiceover,
    engine: &dyn Tts,
    mode: VoiceMode,
) -> VoiceoverSummary {
    let count = |f: voiceover::Fit| vo.lines.iter().filter(|l| l.fit == f).count();
    VoiceoverSummary {
        voice: engine.voice().name.clone(),
        engine: engine.voice().engine,
        language: engine.voice().language.clone(),
        mode,
        lines: vo.lines.len(),
        in_slot: count(voiceover::Fit::InSlot),
        sped_up: count(voiceover::Fit::SpedUp),
        into_gap: count(voiceover::Fit::IntoGap),
        cut: count(voiceover::Fit::Cut),
        failed: count(voiceover::Fit::Failed),
        report: vo.lines.clone(),
    }
}

/// The refusal of a file over a tier's limit, naming the limit and what lifts it.
fn over_limit(what: String, limits: &JobLimits) -> Error {
    let plan = limits.plan.as_deref().unwrap_or("this service");
    let hint = limits
        .upgrade_hint
        .as_deref()
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
    Error::BadInput(format!("{what}: over the limit of {plan}{hint}"))
}

/// Checks the input file against the tier's size limit.
fn check_size(path: &Path, limits: &JobLimits) -> Result<()> {
    if let Some(max) = limits.max_filesize {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len > max {
            return Err(over_limit(
                format!(
                    "the file is {:.1} MB, the most is {:.1} MB",
                    len as f64 / 1e6,
                    max as f64 / 1e6
                ),
                limits,
            ));
        }
    }
    Ok(())
}

/// Runs `job`: downloads a link, transcribes, writes the subtitle files into `out_dir`, translates, voices and
/// renders the video in one encode. All-or-nothing per step: the original subtitles are written (atomically)
/// before translating, so a failing translation loses them not; no file appears under its final name before it
/// is complete. Cancellation through `sink` stops the running stage and its child processes.
pub fn run(job: &Job, env: &JobEnv, out_dir: &Path, sink: &dyn Sink) -> Result<JobOutputs> {
    job.check_version()?;
    let profile = job.profile()?;
    if let Some(l) = &job.asr.language {
        crate::asr::validate_language(l)?;
    }
    let asr = AsrOptions {
        language: job.asr.language.clone(),
        beam_size: job.asr.beam.clamp(1, 16),
        threads: job.asr.threads.unwrap_or_else(crate::asr::default_threads),
        ..AsrOptions::default()
    };
    let mut translation = job
        .translate
        .as_ref()
        .map(|t| translate_options(t, env, true, job.asr.language.as_deref(), job.asr.threads))
        .transpose()?;
    if let (Some(o), Some(lang)) = (&translation, &job.asr.language) {
        if o.targets.contains(lang) {
            return Err(Error::BadInput(format!(
                "the speech is in {lang} already: it cannot be translated into {lang}"
            )));
        }
    }
    // The voice-over: checked (and a named voice opened) before the long work. The best voice for the burned
    // language (`auto`) is opened once that language is known, after transcription and translation.
    if let Some(v) = &job.voiceover {
        check_voice(v)?;
    }
    let mut voice_engine = match &job.voiceover {
        Some(v) if v.voice != "auto" => Some(open_voice(v, None, env, sink)?),
        Some(_) if tts::list_voices(&env.models_dir, sink).is_empty() => {
            return Err(Error::ModelMissing {
                message: "no voices are installed for the voice-over: run scripts/setup-voices.sh \
                          (Debian: apt-get install espeak-ng festival festvox-ru)"
                    .into(),
            })
        }
        _ => None,
    };
    pipeline::check_output_dir(out_dir)?;
    // Every video option is checked before the long work starts.
    let video_job = job
        .video
        .as_ref()
        .map(|v| video_job(v, &job.limits))
        .transpose()?;
    let (input, stem_from_title, fetched) = match &job.input {
        JobInput::Url { url } => {
            let got = fetch_link(url, job, env, sink)?;
            let stem = safe_stem(got.title.as_deref());
            let info = FetchedInfo {
                title: got.title.clone(),
                extractor: got.extractor.clone(),
                from_cache: got.from_cache,
                url: got.url.clone(),
            };
            (got.path, Some(stem), Some(info))
        }
        JobInput::File { path } => (path.clone(), None, None),
    };
    media::check_input_file(&input)?;
    check_size(&input, &job.limits)?;
    let mut formats: Vec<Format> = Vec::new();
    for f in &job.formats {
        if !formats.contains(f) {
            formats.push(*f);
        }
    }
    let (rec, model_name) = env.recognizers.get(&env.models_dir, &job.asr.model, sink)?;
    let topts = TranscribeOptions {
        asr,
        tools: env.tools.clone(),
        strict: job.asr.strict,
        max_duration_ms: job.limits.max_duration_s.map(|s| s * 1000),
    };
    let tr = pipeline::transcribe_file(&rec, &input, &topts, sink).map_err(|e| match e {
        Error::TooLong {
            duration_ms,
            max_ms,
        } => over_limit(
            format!(
                "the media is {} s long, the most is {} s",
                duration_ms.div_ceil(1000),
                max_ms / 1000
            ),
            &job.limits,
        ),
        e => e,
    })?;
    let mut doc = pipeline::document(&tr, &model_name, &profile);
    let stem = job
        .name
        .as_deref()
        .map(|n| safe_stem(Some(n)))
        .or(stem_from_title)
        .unwrap_or_else(|| stem_of(&input));
    let video = pipeline::video_size(&tr.media);
    // The .ass file beside the video is for players and editors: the chosen look without karaoke, laid out for
    // the input's own size.
    let sidecar_style = match video_job.as_ref().map(|j| &j.look) {
        Some(BurnLook::Style(s)) => {
            let name = job
                .video
                .as_ref()
                .and_then(|v| v.style.as_deref())
                .unwrap_or("clean");
            let mut plain = AssStyle::by_name(name).unwrap_or_else(|| s.clone());
            plain.highlight = None;
            plain
        }
        _ => AssStyle::default(),
    };
    let paths = pipeline::output_paths(out_dir, &stem, &formats);
    let files: Vec<(PathBuf, String)> = paths
        .iter()
        .map(|(f, p)| (p.clone(), pipeline::render(&doc, *f, &sidecar_style, video)))
        .collect();
    pipeline::write_files_atomically(&files)?;
    let mut notes = Vec::new();
    // Translations come after the original is safely written: a failing translation server loses nothing.
    if let (Some(o), Some(lang)) = (translation.as_mut(), doc.language.as_ref()) {
        if o.targets.contains(lang) {
            notes.push(format!(
                "the speech is in {lang}: the {lang} subtitles are the original ones, not a translation"
            ));
            o.targets.retain(|t| t != lang);
        }
    }
    let translations: Vec<Translated> = match &translation {
        Some(o) if !o.targets.is_empty() => translate::translate_document(
            &doc,
            o,
            &profile,
            Some(translate::Speech {
                recognizer: &rec,
                input: &input,
                opts: &topts,
            }),
            sink,
        )
        .map_err(|e| Error::Partial {
            done: "the subtitles in the original language were written; the translation failed"
                .into(),
            source: Box::new(e),
        })?,
        _ => Vec::new(),
    };
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let mut translation_outputs = Vec::new();
    for t in &translations {
        let tpaths = pipeline::output_paths(out_dir, &format!("{stem}.{}", t.language), &formats);
        for (f, p) in &tpaths {
            files.push((
                p.clone(),
                pipeline::render(&t.doc, *f, &sidecar_style, video),
            ));
        }
        translation_outputs.push(TranslationOutput {
            language: t.language.clone(),
            engine: t.choice.engine,
            reason: t.choice.reason.clone(),
            cues: t.doc.cues.len(),
            files: tpaths,
        });
    }
    pipeline::write_files_atomically(&files)?;
    // The burned language: the one asked for, else the first translation, else the original.
    let burn_lang = job.translate.as_ref().and_then(|t| t.burn_lang.as_ref());
    let burned = match burn_lang {
        // Burning the speech's own language burns the original.
        Some(l) if doc.language.as_ref() == Some(l) => None,
        Some(l) => translations.iter().find(|t| &t.language == l),
        None => translations.first(),
    };
    let burned_cues = burned.map_or(&doc.cues, |t| &t.doc.cues);
    let burned_language = burned.map_or(doc.language.clone(), |t| Some(t.language.clone()));
    // The voice-over speaks the burned subtitles, on a track as long as the media.
    let voice_spec = match &job.voiceover {
        Some(_) if burned_cues.is_empty() => {
            notes.push("no speech was recognised: no voice-over".to_owned());
            None
        }
        p => p.as_ref(),
    };
    let mut voiced = None;
    if let Some(spec) = voice_spec {
        let engine = match voice_engine.take() {
            Some(e) => e,
            None => open_voice(spec, burned_language.as_deref(), env, sink)?,
        };
        if let Some(lang) = &burned_language {
            if &engine.voice().language != lang {
                notes.push(format!(
                    "the voice {} is for {}, the subtitles it speaks are in {lang}",
                    engine.voice().name,
                    engine.voice().language
                ));
            }
        }
        let length = tr.media.duration_ms.filter(|d| *d > 0);
        let t0 = std::time::Instant::now();
        let opts = voiceover::VoiceoverOptions {
            max_speedup: spec.max_speedup,
            length_ms: length,
            ..Default::default()
        };
        let vo = voiceover::build(burned_cues, engine.as_ref(), &opts, sink)?;
        doc.timings_ms.insert(
            Stage::Voiceover.id().to_owned(),
            t0.elapsed().as_millis() as u64,
        );
        notes.extend(overflow_notes(&vo));
        voiced = Some((vo, engine, spec.mode));
    }
    let voice_track = voiced.as_ref().map(|(vo, _, mode)| VoiceTrack {
        samples: &vo.samples,
        sample_rate: vo.sample_rate,
        mode: *mode,
    });
    let mut rendered = None;
    let mut voiceover_audio = None;
    match video_job {
        Some(mut vj) if tr.media.video.is_some() => {
            let out = pipeline::video_output_path(out_dir, &stem);
            let bilingual = job.translate.as_ref().is_some_and(|t| t.bilingual);
            if bilingual && burned.is_some() {
                vj.upper = Some(doc.cues.clone());
            }
            let r = pipeline::render_subtitled(
                &tr.media,
                burned_cues,
                None,
                &vj,
                &out,
                voice_track.as_ref(),
                sink,
            )?;
            doc.timings_ms
                .insert(Stage::Render.id().to_owned(), r.elapsed_ms);
            rendered = Some(r);
        }
        vj => {
            if vj.is_some() {
                notes.push(format!(
                    "{} has no video stream: wrote subtitles only, no video was produced",
                    input.display()
                ));
            }
            // Without a video the voice-over is an audio file: the original sound with the voice.
            if let Some(track) = &voice_track {
                let out = out_dir.join(format!("{stem}.voiceover.m4a"));
                let r = render::render_audio(&tr.media, track, &out, &env.tools, sink)?;
                doc.timings_ms
                    .insert(Stage::Render.id().to_owned(), r.elapsed_ms);
                voiceover_audio = Some(r.path);
            }
        }
    }
    let voiceover = voiced
        .as_ref()
        .map(|(vo, e, mode)| voiceover_summary(vo, e.as_ref(), *mode));
    Ok(JobOutputs {
        input,
        files: paths,
        translations: translation_outputs,
        video: rendered,
        voiceover_audio,
        voiceover,
        burned_language,
        damaged: tr.damage.clone(),
        document: doc,
        notes,
        fetched,
    })
}

/// Downloads the job's link into the cache, within the job's and the tier's limits.
fn fetch_link(url: &str, job: &Job, env: &JobEnv, sink: &dyn Sink) -> Result<Fetched> {
    let mut o = fetch::FetchOptions::new(env.fetch.cache_dir.clone());
    o.max_duration_s = lower(Some(job.fetch.max_duration_s), job.limits.max_duration_s);
    o.max_filesize = lower(Some(job.fetch.max_filesize), job.limits.max_filesize);
    let asked = job.video.as_ref().and_then(|v| v.max_height);
    o.max_height = Some(lower(asked, job.limits.max_height).unwrap_or(1080));
    o.playlist_item = job.fetch.playlist_item;
    o.policy = env.fetch.policy.clone();
    o.ytdlp = env.fetch.ytdlp.clone();
    let got = fetch::fetch(url, &o, &env.tools, sink)?;
    // A stranger's title: no control characters (terminal escapes) reach a terminal or a chat.
    let printable = |t: &str| t.chars().filter(|c| !c.is_control()).collect::<String>();
    sink.event(Event::Note(&format!(
        "{} ({}){}",
        printable(got.title.as_deref().unwrap_or("video")),
        printable(got.extractor.as_deref().unwrap_or("?")),
        if got.from_cache {
            ", from the cache"
        } else {
            ""
        }
    )));
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_round_trips_through_json_and_a_newer_one_is_refused() {
        let mut job = Job::new(JobInput::Url {
            url: "https://example.com/v".into(),
        });
        job.translate = Some(TranslateSpec {
            targets: vec!["en".into()],
            engine: Some(Engine::Argos),
            ..Default::default()
        });
        job.voiceover = Some(VoiceSpec::default());
        job.video = Some(VideoSpec {
            vertical: Some(Reframe::Crop),
            watermark: Some(WatermarkSpec {
                value: "@me".into(),
                corner: Corner::BottomLeft,
                opacity: 0.5,
            }),
            quality: Quality::Fast,
            ..Default::default()
        });
        job.limits.max_duration_s = Some(60);
        let s = job.to_json();
        assert!(s.contains("\"bottom-left\""), "{s}");
        assert_eq!(Job::from_json(&s).unwrap(), job);
        let mut newer = job.clone();
        newer.version = JOB_VERSION + 1;
        let e = Job::from_json(&newer.to_json()).unwrap_err();
        assert!(e.to_string().contains("newer AutoSub"), "{e}");
        // A minimal job: every option has a default.
        let min = Job::from_json(
            r#"{"version":1,"input":{"type":"file","path":"a.mp4"},"formats":["srt"]}"#,
        )
        .unwrap();
        assert_eq!(min.asr, AsrSpec::default());
        assert!(min.video.is_none());
    }

    #[test]
    fn the_profile_follows_the_video_shape() {
        let mut job = Job::new(JobInput::File {
            path: "a.mp4".into(),
        });
        assert_eq!(job.profile().unwrap().name, "standard");
        job.video.as_mut().unwrap().vertical = Some(Reframe::Blur);
        assert_eq!(job.profile().unwrap().name, "shorts");
        assert_eq!(job.video.as_ref().unwrap().style_name(), "karaoke");
        job.profile.max_lines = Some(0);
        assert!(job.profile().is_err());
    }

    #[test]
    fn safe_stems_from_titles() {
        assert_eq!(safe_stem(Some("a/b:c")), "a_b_c");
        assert_eq!(safe_stem(Some("  ..x")), "x");
        assert_eq!(safe_stem(None), "video");
        assert!(safe_stem(Some(&"я".repeat(200))).len() <= 150);
    }

    #[test]
    fn over_a_limit_names_the_plan_and_what_lifts_it() {
        let limits = JobLimits {
            plan: Some("the free plan".into()),
            upgrade_hint: Some("PRO allows 10 minutes".into()),
            ..Default::default()
        };
        let e = over_limit("the media is 75 s long, the most is 60 s".into(), &limits);
        assert_eq!(
            e.to_string(),
            "the media is 75 s long, the most is 60 s: over the limit of the free plan (PRO allows 10 minutes)"
        );
        assert_eq!(e.kind(), crate::ErrorKind::BadInput);
    }
}
