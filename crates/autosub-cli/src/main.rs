//! `autosub`: video or audio in, subtitles out. See `autosub --help`.

mod display;

/// `println!` that ends the program quietly when stdout is closed (`autosub ... | head`) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// `print!` with the same handling of a closed stdout as [`out!`].
macro_rules! outp {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

// After the macros, so that they can use them.
mod service;
mod voice;

use anyhow::{Context, Result};
use autosub_core::asr::{AsrOptions, Recognizer};
use autosub_core::media::Tools;
use autosub_core::pipeline::{self, TranscribeOptions, VideoJob};
use autosub_core::progress::{CancelFlag, Event, Sink, Stage};
use autosub_core::{fetch, render, translate};
use autosub_core::{models, ErrorKind};
use autosub_subs::{AssStyle, Document, Format, Profile};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Exit codes, also listed in `autosub --help` and docs/CLI.md.
mod exit {
    pub const OK: u8 = 0;
    /// `lint` found rule violations.
    pub const VIOLATIONS: u8 = 1;
    /// Command-line usage error (from clap).
    #[allow(dead_code)]
    pub const USAGE: u8 = 2;
    pub const BAD_INPUT: u8 = 3;
    pub const MISSING_DEPENDENCY: u8 = 4;
    pub const INTERNAL: u8 = 5;
    pub const CANCELLED: u8 = 130;
}

/// `--help` headings, in the order a user thinks: what goes in, what comes out, then each stage.
const INPUT: &str = "Input and limits";
const OUTPUT: &str = "Output";
const GLOBAL: &str = "Global options";

#[derive(Parser)]
#[command(
    name = "autosub",
    version,
    about = "Turn a video or audio file into accurate, well-timed subtitles.",
    after_help = "Exit codes: 0 success; 1 lint found violations; 2 usage error; 3 bad input (file, option); \
                  4 missing dependency (ffmpeg, model); 5 internal failure; 130 cancelled."
)]
struct Cli {
    /// Folder holding the Whisper models [default: $AUTOSUB_MODELS_DIR or $XDG_DATA_HOME/autosub/models].
    #[arg(long, global = true, env = "AUTOSUB_MODELS_DIR", help_heading = GLOBAL)]
    models_dir: Option<PathBuf>,
    /// No progress bars or notes on stderr (errors and warnings are still printed).
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    quiet: bool,
    /// Print diagnostic detail (commands run, model paths, the encoding and language of subtitle files).
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    verbose: bool,
    /// Character encoding of the subtitle files read (utf-8, utf-16le, windows-1251, cp1250, koi8-r, latin1...)
    /// [default: from the byte-order mark, else UTF-8, else detected].
    #[arg(long, global = true, value_name = "NAME", help_heading = GLOBAL)]
    encoding: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transcribe a media file and write subtitles (SRT, WebVTT, ASS, JSON) next to it or in --out.
    Process(Box<ProcessArgs>),
    /// Transcribe a media file to the JSON document (words with timings, cues, language).
    Transcribe(TranscribeArgs),
    /// Re-cut the words of a JSON document into cues with another profile.
    Segment(SegmentArgs),
    /// Check a subtitle file against a profile's rules; exits 1 when any rule is broken.
    Lint(LintArgs),
    /// Burn subtitles into a video (styled, optionally vertical and watermarked) in one encode.
    Render(RenderArgs),
    /// Translate a subtitle file (.json keeps the word timings; .srt .vtt .ass too) into another language.
    Translate(TranslateCmdArgs),
    /// Download a video from a link (YouTube, TikTok, Instagram, a page with a video, a direct file) with yt-dlp.
    Fetch(FetchCmdArgs),
    /// Print the versions of the tools and models autosub uses, and what is missing.
    Doctor,
    /// Manage models: Whisper, translation packages (translate:FROM-TO) and Piper voices (voice:NAME).
    #[command(subcommand)]
    Models(ModelsCommand),
    /// List the voices installed for the voice-over, per language (the best first).
    Voices(voice::VoicesArgs),
    /// Speak a subtitle file as a voice-over track (WAV), every line inside its subtitle's time.
    Speak(voice::SpeakArgs),
    /// Run queued jobs (the service's worker; many may share one PostgreSQL database). See docs/SERVICE.md.
    Worker(service::WorkerArgs),
    /// Run the service on one machine: the HTTP server, $AUTOSUB_WORKERS workers and (with AUTOSUB_TELEGRAM_TOKEN)
    /// the Telegram bot, on SQLite by default.
    Serve,
    /// Run the Telegram bot alone (one process per bot token), with the HTTP server; workers run elsewhere on the
    /// same database. See docs/BOT.md.
    Bot,
    /// Run the payment callback (Platega), the reconciliation of payments, health and metrics.
    Billing,
    /// Serve the HTTP API for integrations (/v1/jobs, CREATOR plan), with health and metrics; run as many as you
    /// like behind a load balancer. `autosub serve` serves it too. See docs/API.md.
    Api,
    /// Make, list or revoke a user's API keys.
    #[command(subcommand)]
    Apikey(service::ApikeyCommand),
    /// Queue a job (every option of `process`); prints its id; --wait follows it to its end.
    Submit(Box<service::SubmitArgs>),
    /// List, show, retry or cancel queued jobs.
    #[command(subcommand)]
    Jobs(service::JobsCommand),
    /// Show a user, grant a tier, ban or unban.
    #[command(subcommand)]
    Users(service::UsersCommand),
    /// Business metrics: active users, conversion, revenue, ARPU, retention, tasks, processing times.
    Stats(service::StatsArgs),
    /// Back up or restore the database.
    #[command(subcommand)]
    Db(service::DbCommand),
}

#[derive(Args, Clone)]
#[command(next_help_heading = "Recognition")]
struct AsrArgs {
    /// Whisper model: a name installed in the models folder (base, small, tiny.en, base-q8_0...) or a path to a
    /// ggml file.
    #[arg(long, default_value = "base", env = "AUTOSUB_MODEL")]
    model: String,
    /// Spoken language (ISO 639-1, e.g. en, ru); detected when omitted.
    #[arg(long)]
    lang: Option<String>,
    /// Greedy decoding: faster, slightly less accurate than beam search.
    #[arg(long)]
    fast: bool,
    /// Beam width for beam search (ignored with --fast).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=16))]
    beam: u32,
    /// CPU threads for recognition [default: number of cores, at most 8].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: Option<u32>,
    /// Refuse a truncated or damaged input (less audio than the file states, decoding errors) as bad input
    /// (exit 3, nothing written) instead of warning and subtitling what could be read.
    #[arg(long, help_heading = INPUT)]
    strict: bool,
}

#[derive(Args, Clone)]
#[command(next_help_heading = "Segmentation")]
struct ProfileArgs {
    /// Segmentation profile: standard (2 lines of 42 characters) or shorts (one line of 1-5 words)
    /// [default: standard, shorts with --vertical].
    #[arg(long)]
    profile: Option<String>,
    /// Override the profile's characters per line.
    #[arg(long)]
    max_chars: Option<usize>,
    /// Override the profile's lines per cue.
    #[arg(long)]
    max_lines: Option<usize>,
    /// Override the profile's reading speed (characters per second).
    #[arg(long)]
    max_cps: Option<f64>,
}

#[derive(Args)]
struct ProcessArgs {
    /// Video or audio file (.mp4 .mkv .mov .webm .mp3 .wav .m4a ...), or an http(s) link to one (downloaded
    /// with yt-dlp; outputs then go to --out or the current folder).
    input: PathBuf,
    #[command(flatten)]
    fetch: FetchArgs,
    /// Folder for the outputs, created if missing [default: next to the input].
    #[arg(long, short, help_heading = OUTPUT)]
    out: Option<PathBuf>,
    /// Formats to write, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "srt,vtt,ass,json", help_heading = OUTPUT)]
    format: Vec<Format>,
    /// Print a machine-readable summary on stdout.
    #[arg(long, help_heading = OUTPUT)]
    json: bool,
    /// Do not render a video (subtitle files only).
    #[arg(long, help_heading = OUTPUT)]
    no_video: bool,
    #[command(flatten)]
    asr: AsrArgs,
    #[command(flatten)]
    profile: ProfileArgs,
    #[command(flatten)]
    video: VideoArgs,
    #[command(flatten)]
    translation: TranslationArgs,
    #[command(flatten)]
    voice: voice::VoiceArgs,
}

#[derive(Args, Clone)]
#[command(next_help_heading = "Translation")]
struct TranslationArgs {
    /// Also translate the subtitles into these languages (ISO 639-1, comma-separated: en or ru,es,de); writes
    /// <name>.<lang>.<ext> for every format.
    #[arg(long, value_name = "LANGS")]
    translate: Option<String>,
    /// Translation engine: whisper (speech to English), llm (an OpenAI-compatible server from
    /// AUTOSUB_LLM_BASE_URL), argos (installed Argos packages, offline: `autosub models install
    /// translate:FROM-TO`); picked per language when omitted.
    #[arg(long, value_name = "ENGINE")]
    translator: Option<String>,
    /// Which translation to burn into the video [default: the first of --translate].
    #[arg(long, value_name = "LANG")]
    burn_lang: Option<String>,
    /// Burn the original above the translation.
    #[arg(long)]
    bilingual: bool,
    /// Glossary for the llm translator: `term = translation` per line.
    #[arg(long, value_name = "FILE")]
    glossary: Option<PathBuf>,
}

impl TranslationArgs {
    /// The translation part of a job, with the combinations of flags checked; `None` without --translate.
    fn spec(&self) -> Result<Option<autosub_core::job::TranslateSpec>> {
        let Some(list) = &self.translate else {
            if self.burn_lang.is_some() || self.bilingual || self.translator.is_some() {
                return Err(bad(
                    "--burn-lang, --bilingual and --translator need --translate",
                ));
            }
            return Ok(None);
        };
        let targets = translate::parse_languages(list)?;
        if let Some(b) = &self.burn_lang {
            if !targets.contains(b) {
                return Err(bad(format!(
                    "--burn-lang {b} is not one of --translate {list}"
                )));
            }
        }
        let engine = match self.translator.as_deref() {
            None | Some("auto") => None,
            Some(e) => Some(e.parse::<translate::Engine>()?),
        };
        if self.glossary.is_some() && std::env::var_os("AUTOSUB_LLM_BASE_URL").is_none() {
            return Err(bad(
                "--glossary is used by the llm translator: set AUTOSUB_LLM_BASE_URL (see --help)",
            ));
        }
        Ok(Some(autosub_core::job::TranslateSpec {
            targets,
            engine,
            burn_lang: self.burn_lang.clone(),
            bilingual: self.bilingual,
            glossary: self.glossary.clone(),
        }))
    }

    /// The translate options, checked (languages, engine, endpoint, glossary, Argos packages); `None` without
    /// --translate. `audio`: the source is speech (the whisper engine can be used); `source`: its language when
    /// known; `models_dir`: where Argos packages are installed.
    fn options(
        &self,
        audio: bool,
        source: Option<&str>,
        models_dir: &Path,
        threads: Option<u32>,
    ) -> Result<Option<translate::TranslateOptions>> {
        let Some(spec) = self.spec()? else {
            return Ok(None);
        };
        let env = job_env(models_dir, true, false)?;
        Ok(Some(autosub_core::job::translate_options(
            &spec, &env, audio, source, threads,
        )?))
    }
}

#[derive(Args, Clone)]
#[command(next_help_heading = "Video")]
struct VideoArgs {
    /// Make a vertical 9:16 video: blur (the whole frame over a blurred copy; default) or crop (centre crop).
    #[arg(long, value_name = "MODE", num_args = 0..=1, default_missing_value = "blur")]
    vertical: Option<String>,
    /// Look of the burned-in subtitles: clean, boxed, karaoke (the spoken word highlighted) or an .ass file
    /// whose styles are used [default: clean, karaoke with --vertical].
    #[arg(long, value_name = "STYLE|FILE")]
    style: Option<String>,
    /// Watermark: a text, or a .png/.jpg image.
    #[arg(long, value_name = "TEXT|IMAGE")]
    watermark: Option<String>,
    /// Corner of the watermark: top-left, top-right, bottom-left, bottom-right.
    #[arg(long, default_value = "top-right", value_name = "CORNER")]
    watermark_corner: String,
    /// Opacity of the watermark, 0-1.
    #[arg(long, default_value_t = 0.6, value_name = "0-1")]
    watermark_opacity: f64,
    /// Cap the resolution at this many lines ("720" for 720p: the short side); never upscales.
    #[arg(long, value_name = "720|1080", value_parser = clap::value_parser!(u32).range(144..=4320))]
    max_height: Option<u32>,
    /// Encoding speed and quality: fast, balanced or best.
    #[arg(long, default_value = "balanced")]
    quality: String,
    /// Also save the ASS script that is burned in (sized for the output video) to this file.
    #[arg(long, value_name = "FILE")]
    save_script: Option<PathBuf>,
}

#[derive(Args)]
struct TranscribeArgs {
    input: PathBuf,
    /// Output JSON file [default: <input stem>.json next to the input]; `-` for stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    asr: AsrArgs,
    #[command(flatten)]
    profile: ProfileArgs,
}

#[derive(Args)]
struct SegmentArgs {
    /// A JSON document written by `autosub transcribe` or `autosub process`.
    input: PathBuf,
    /// Output file; its extension picks the format (.json .srt .vtt .ass); `-` writes JSON to stdout.
    #[arg(long, short)]
    output: PathBuf,
    #[command(flatten)]
    profile: ProfileArgs,
}

/// Limits on downloads from links.
#[derive(Args, Clone)]
#[command(next_help_heading = INPUT)]
struct FetchArgs {
    /// Refuse media longer than this many seconds (checked before download when the site says, and after).
    #[arg(long, value_name = "SECONDS", default_value_t = 4 * 3600)]
    max_duration: u64,
    /// Refuse downloads larger than this (bytes, or with K, M, G: 500M).
    #[arg(long, value_name = "SIZE", default_value = "2G", value_parser = parse_size)]
    max_filesize: u64,
    /// For a playlist or channel link: download this item (1 = the first); without it such links are refused.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    playlist_item: Option<u32>,
}

/// `500M` -> 500 000 000; plain numbers are bytes.
fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1_000u64),
        Some('M') => (&t[..t.len() - 1], 1_000_000),
        Some('G') => (&t[..t.len() - 1], 1_000_000_000),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 500M, 2G, 1048576)"))?;
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("`{s}` is not a positive size"));
    }
    Ok((n * mult as f64) as u64)
}

#[derive(Args)]
struct TranslateCmdArgs {
    /// Subtitles: .json (from autosub), .srt, .vtt or .ass.
    subs: PathBuf,
    /// Target language (ISO 639-1).
    #[arg(long)]
    to: String,
    /// Source language [default: the JSON's language; required for .srt .vtt .ass].
    #[arg(long)]
    from: Option<String>,
    /// Translation engine: llm or argos (whisper needs the audio: use `autosub process --translate`).
    #[arg(long, value_name = "ENGINE")]
    translator: Option<String>,
    /// Glossary for the llm translator: `term = translation` per line.
    #[arg(long, value_name = "FILE")]
    glossary: Option<PathBuf>,
    /// Output file; its extension picks the format [default: <name>.<to>.<same extension>].
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    profile: ProfileArgs,
}

#[derive(Args)]
struct FetchCmdArgs {
    /// The link (http or https).
    url: String,
    /// Copy the downloaded file into this folder (as <title>.<ext>) [default: print its path in the cache].
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Take the best format at or below this height.
    #[arg(long, default_value_t = 1080, value_parser = clap::value_parser!(u32).range(144..=4320))]
    max_height: u32,
    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: FetchArgs,
}

#[derive(Args)]
struct RenderArgs {
    /// The video.
    video: PathBuf,
    /// Subtitles: .srt, .vtt, .json (karaoke needs the word timings of a JSON), or .ass (burned as it is unless
    /// --style is given).
    subs: PathBuf,
    /// Output video [default: <video stem>.autosub.mp4 next to the video].
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    video_args: VideoArgs,
    #[command(flatten)]
    voice: voice::VoiceArgs,
    /// Language of the subtitles, for --voiceover [default: the JSON's language].
    #[arg(long)]
    lang: Option<String>,
}

#[derive(Args)]
struct LintArgs {
    /// Subtitle file (.srt .vtt .ass .json).
    file: PathBuf,
    #[command(flatten)]
    profile: ProfileArgs,
    /// Print violations as JSON.
    #[arg(long)]
    json: bool,
    /// Also check that every line's voice-over fits before the next one: speaks each line with VOICE (or the
    /// best voice for --lang / the JSON's language) sped up at most --max-speedup.
    #[arg(long, value_name = "VOICE", num_args = 0..=1, default_missing_value = "auto")]
    voiceover: Option<String>,
    /// Language of the subtitles, for --voiceover [default: the JSON's language].
    #[arg(long)]
    lang: Option<String>,
    /// Most a line is sped up for --voiceover.
    #[arg(long, default_value_t = 1.35, value_name = "FACTOR")]
    max_speedup: f32,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// List installed models (Whisper, translation packages) and the ones that can be installed.
    List,
    /// Download an official whisper.cpp model (tiny, base, small, medium, large-v3-turbo, *.en), an Argos
    /// translation package (translate:FROM-TO, e.g. translate:en-ru) or a Piper voice (voice:NAME).
    Install {
        name: String,
        /// Download from this base URL instead of the official one (a mirror) [default: $AUTOSUB_MODEL_BASE_URL
        /// for Whisper models, $AUTOSUB_VOICE_BASE_URL for voices].
        #[arg(long)]
        base_url: Option<String>,
        /// Argos package index for translate:FROM-TO [default: $AUTOSUB_ARGOS_INDEX or the public Argos index].
        #[arg(long, value_name = "URL")]
        index: Option<String>,
    },
    /// Install a local Argos package (FILE.argosmodel), or convert and install a faster-whisper (CTranslate2)
    /// model folder.
    Import {
        #[arg(value_name = "DIR|FILE.argosmodel")]
        dir: PathBuf,
        /// Name to install under [default: derived from the model, e.g. base].
        #[arg(long)]
        name: Option<String>,
        /// Weight type: f16 (as converted) or q8_0 (8-bit, smaller and faster).
        #[arg(long, default_value = "f16")]
        quantize: String,
    },
    /// Print the models folder, or the file of one model.
    Path { name: Option<String> },
}

/// `--vertical` takes an optional mode; so that `--vertical talk.mp4` does not read the file name as the mode,
/// a `--vertical` not followed by `blur` or `crop` is rewritten to `--vertical=blur` before parsing.
fn normalise_args(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let args: Vec<std::ffi::OsString> = args.collect();
    let mut out = Vec::with_capacity(args.len());
    let mut rest = false;
    for (i, a) in args.iter().enumerate() {
        // After `--` everything is an argument, never an option.
        if rest || a == "--" {
            rest = true;
            out.push(a.clone());
            continue;
        }
        let next_is_mode = args
            .get(i + 1)
            .and_then(|n| n.to_str())
            .is_some_and(|n| matches!(n, "blur" | "crop"));
        let next_is_voice = args
            .get(i + 1)
            .and_then(|n| n.to_str())
            .is_some_and(voice::is_voice_name);
        if a == "--vertical" && !next_is_mode {
            out.push("--vertical=blur".into());
        } else if a == "--voiceover" && !next_is_voice {
            out.push("--voiceover=auto".into());
        } else {
            out.push(a.clone());
        }
    }
    out
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(normalise_args(std::env::args_os()));
    ENCODING.get_or_init(|| cli.encoding.clone());
    let ui = display::Ui::new(cli.quiet, cli.verbose);
    // Ctrl-C: ask every stage to stop; they kill their children and remove partial files. The long-running service
    // commands handle their signals themselves (the first one drains, the second stops).
    let flag: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    if !matches!(
        cli.command,
        Command::Worker(_) | Command::Serve | Command::Bot | Command::Billing | Command::Api
    ) {
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let sink = CancelFlag { inner: &ui, flag };
    match run(cli, &ui, &sink) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            ui.clear();
            let code = exit_code(&e);
            if code == exit::CANCELLED {
                eprintln!("autosub: cancelled");
                // Leave at once: a stage stopped mid-way may still have a native thread (whisper.cpp) winding
                // down, and the C/C++ exit handlers that `exit` runs then crashed the process (SIGSEGV, seen about
                // once in six Ctrl-Cs). Partial files are already removed and stderr is unbuffered.
                // SAFETY: `_exit` only ends the process; nothing runs after it.
                #[allow(unsafe_code)]
                unsafe {
                    libc::_exit(i32::from(code))
                }
            } else {
                // The top message, then any cause it does not already spell out.
                let mut msg = e.to_string();
                for cause in e.chain().skip(1) {
                    let c = cause.to_string();
                    if !msg.contains(&c) {
                        msg = format!("{msg}: {c}");
                    }
                }
                eprintln!("autosub: error: {msg}");
            }
            ExitCode::from(code)
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(err) = cause.downcast_ref::<autosub_core::Error>() {
            return match err.kind() {
                ErrorKind::BadInput => exit::BAD_INPUT,
                ErrorKind::MissingDependency => exit::MISSING_DEPENDENCY,
                ErrorKind::Cancelled => exit::CANCELLED,
                ErrorKind::Internal => exit::INTERNAL,
            };
        }
        if let Some(err) = cause.downcast_ref::<autosub_models::ModelError>() {
            return match models::error_kind(err) {
                ErrorKind::BadInput => exit::BAD_INPUT,
                ErrorKind::MissingDependency => exit::MISSING_DEPENDENCY,
                ErrorKind::Cancelled => exit::CANCELLED,
                ErrorKind::Internal => exit::INTERNAL,
            };
        }
        if cause.downcast_ref::<autosub_subs::ParseError>().is_some() {
            return exit::BAD_INPUT;
        }
        if cause.downcast_ref::<BadInput>().is_some() {
            return exit::BAD_INPUT;
        }
    }
    exit::INTERNAL
}

/// A usage problem found by the CLI itself (bad option value, unreadable file).
#[derive(Debug)]
struct BadInput(String);
impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BadInput {}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

fn run(cli: Cli, ui: &display::Ui, sink: &dyn Sink) -> Result<u8> {
    let models_dir = models::models_dir(cli.models_dir.as_deref());
    match cli.command {
        Command::Process(a) => process(*a, &models_dir, ui, sink),
        Command::Transcribe(a) => transcribe(a, &models_dir, ui, sink),
        Command::Segment(a) => segment(a, sink),
        Command::Lint(a) => lint(a, &models_dir, sink),
        Command::Render(a) => render_cmd(a, &models_dir, ui, sink),
        Command::Fetch(a) => fetch_cmd(a, ui, sink),
        Command::Translate(a) => translate_cmd(a, &models_dir, ui, sink),
        Command::Doctor => doctor(&models_dir),
        Command::Models(m) => models_cmd(m, &models_dir, ui, sink),
        Command::Voices(a) => voice::voices_cmd(a, &models_dir, sink),
        Command::Speak(a) => speak_cmd(a, &models_dir, ui, sink),
        Command::Worker(a) => service::worker_cmd(a, &models_dir),
        Command::Serve => service::serve_cmd(&models_dir),
        Command::Bot => service::bot_cmd(),
        Command::Billing => service::billing_cmd(),
        Command::Api => service::api_cmd(),
        Command::Apikey(c) => service::apikey_cmd(c),
        Command::Submit(a) => service::submit_cmd(*a, ui, sink),
        Command::Jobs(c) => service::jobs_cmd(c),
        Command::Users(c) => service::users_cmd(c),
        Command::Stats(a) => service::stats_cmd(a),
        Command::Db(c) => service::db_cmd(c),
    }
}

fn profile(a: &ProfileArgs) -> Result<Profile> {
    profile_or(a, "standard")
}

/// The profile of `a`, or `default` when none was given.
fn profile_or(a: &ProfileArgs, default: &str) -> Result<Profile> {
    Ok(a.overrides()?.resolve(None, default)?)
}

/// The profile to check or re-cut `doc` with: the flags in `a` over the limits stored in the document (it was cut
/// with), over `standard`.
fn profile_of_doc(a: &ProfileArgs, doc: &Document) -> Result<Profile> {
    Ok(doc.effective_profile(&a.overrides()?, "standard")?)
}

impl ProfileArgs {
    /// The limits given on the command line, checked.
    fn overrides(&self) -> Result<autosub_subs::ProfileOverrides> {
        if let Some(name) = &self.profile {
            if Profile::by_name(name).is_none() {
                return Err(bad(format!(
                    "unknown profile `{name}`; choose one of: {}",
                    Profile::names().join(", ")
                )));
            }
        }
        if self.max_chars.is_some_and(|n| n < 5) {
            return Err(bad("--max-chars must be at least 5"));
        }
        if self.max_lines == Some(0) {
            return Err(bad("--max-lines must be at least 1"));
        }
        if self.max_cps.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            return Err(bad("--max-cps must be a positive number"));
        }
        Ok(autosub_subs::ProfileOverrides {
            profile: self.profile.clone(),
            max_chars_per_line: self.max_chars,
            max_lines: self.max_lines,
            max_cps: self.max_cps,
        })
    }
}

fn asr_options(a: &AsrArgs) -> Result<AsrOptions> {
    if let Some(l) = &a.lang {
        autosub_core::asr::validate_language(l)?;
    }
    Ok(AsrOptions {
        language: a.lang.clone(),
        beam_size: if a.fast { 1 } else { a.beam },
        threads: a.threads.unwrap_or_else(autosub_core::asr::default_threads),
        ..AsrOptions::default()
    })
}

fn load_model(a: &AsrArgs, models_dir: &Path, ui: &display::Ui) -> Result<(Recognizer, String)> {
    let (path, name) = models::resolve(models_dir, &a.model)?;
    ui.debug(&format!("model: {}", path.display()));
    let rec = Recognizer::load(&path)?;
    Ok((rec, name))
}

/// The folder a file is in (`.` for a bare file name).
fn dir_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// Loads the model, transcribes `input` and cuts the words with `profile`.
fn recognise(
    args: &AsrArgs,
    asr: AsrOptions,
    input: &Path,
    profile: &Profile,
    models_dir: &Path,
    ui: &display::Ui,
    sink: &dyn Sink,
) -> Result<(pipeline::Transcription, Document)> {
    let (rec, model_name) = load_model(args, models_dir, ui)?;
    let opts = TranscribeOptions {
        asr,
        tools: Tools::from_env(),
        strict: args.strict,
        max_duration_ms: None,
    };
    let tr = pipeline::transcribe_file(&rec, input, &opts, sink)?;
    let doc = pipeline::document(&tr, &model_name, profile);
    Ok((tr, doc))
}

use autosub_core::job::{stem_of, Job, JobEnv, JobInput};

impl VideoArgs {
    /// The video part of a job, from the flags (each value checked).
    fn spec(&self) -> Result<autosub_core::job::VideoSpec> {
        let vertical = self
            .vertical
            .as_deref()
            .map(str::parse::<render::Reframe>)
            .transpose()?;
        let corner: render::Corner = self.watermark_corner.parse()?;
        Ok(autosub_core::job::VideoSpec {
            vertical,
            style: self.style.clone(),
            watermark: self
                .watermark
                .as_ref()
                .map(|w| autosub_core::job::WatermarkSpec {
                    value: w.clone(),
                    corner,
                    opacity: self.watermark_opacity,
                }),
            max_height: self.max_height,
            quality: self.quality.parse()?,
            save_script: self.save_script.clone(),
        })
    }

    /// The video job of the flags: look, watermark, geometry, quality, checked (files read).
    fn video_job(&self) -> Result<VideoJob> {
        Ok(autosub_core::job::video_job(
            &self.spec()?,
            &Default::default(),
        )?)
    }
}

impl AsrArgs {
    fn spec(&self) -> Result<autosub_core::job::AsrSpec> {
        if let Some(l) = &self.lang {
            autosub_core::asr::validate_language(l)?;
        }
        Ok(autosub_core::job::AsrSpec {
            model: self.model.clone(),
            language: self.lang.clone(),
            beam: if self.fast { 1 } else { self.beam },
            threads: self.threads,
            strict: self.strict,
        })
    }
}

/// Whether a `process` input is a link rather than a file: it starts with a scheme (`https://`, `file:`, `ftp:`)
/// and no file of that name exists.
fn is_link(input: &Path) -> bool {
    let Some(s) = input.to_str() else {
        return false;
    };
    let scheme_len = s.find(':').filter(|&i| {
        i > 0
            && s[..i]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    });
    scheme_len.is_some_and(|i| i > 1) && !input.exists()
}

/// Where downloads go and what they may reach, from the environment: the cache in `$AUTOSUB_CACHE_DIR` (else
/// `$XDG_CACHE_HOME/autosub/downloads`), non-public addresses allowed by `$AUTOSUB_ALLOW_HOSTS` (comma-separated
/// `IP` or `IP:PORT`; none by default).
fn fetch_env() -> Result<autosub_core::job::FetchEnv> {
    let cache_dir = std::env::var_os("AUTOSUB_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("autosub/downloads"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/autosub/downloads"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("autosub-downloads"));
    let mut policy = fetch::Policy::default();
    if let Ok(list) = std::env::var("AUTOSUB_ALLOW_HOSTS") {
        let items: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        policy = fetch::Policy::allowing(&items)
            .map_err(|e| bad(format!("AUTOSUB_ALLOW_HOSTS: {e}")))?;
    }
    Ok(autosub_core::job::FetchEnv {
        cache_dir,
        policy,
        ytdlp: fetch::default_ytdlp(),
    })
}

/// Download options of `autosub fetch`.
fn fetch_options(a: &FetchArgs, max_height: Option<u32>) -> Result<fetch::FetchOptions> {
    let env = fetch_env()?;
    let mut o = fetch::FetchOptions::new(env.cache_dir);
    o.max_duration_s = Some(a.max_duration);
    o.max_filesize = Some(a.max_filesize);
    o.max_height = Some(max_height.unwrap_or(1080));
    o.playlist_item = a.playlist_item;
    o.policy = env.policy;
    o.ytdlp = env.ytdlp;
    Ok(o)
}

/// The job described by `autosub process`'s arguments. Combinations of flags are checked here, with the flags'
/// names; everything else is checked by [`job::run`] before the long work starts.
fn process_job(a: &ProcessArgs) -> Result<Job> {
    let input = if is_link(&a.input) {
        JobInput::Url {
            url: a.input.to_string_lossy().into_owned(),
        }
    } else {
        JobInput::File {
            path: a.input.clone(),
        }
    };
    let mut job = Job::new(input);
    job.formats = a.format.clone();
    job.asr = a.asr.spec()?;
    job.profile = a.profile.overrides()?;
    job.translate = a.translation.spec()?;
    if let (Some(t), Some(lang)) = (&job.translate, &a.asr.lang) {
        if t.targets.contains(lang) {
            return Err(bad(format!(
                "the speech is in {lang} already: drop {lang} from --translate"
            )));
        }
    }
    job.voiceover = a.voice.plan()?;
    job.video = if a.no_video {
        None
    } else {
        Some(a.video.spec()?)
    };
    job.fetch = autosub_core::job::FetchSpec {
        max_duration_s: a.fetch.max_duration,
        max_filesize: a.fetch.max_filesize,
        playlist_item: a.fetch.playlist_item,
    };
    Ok(job)
}

/// What this process gives the jobs it runs, from the environment: the programs, the download cache and the
/// addresses it may reach, and (only when the job needs them) the LLM server and the voice settings.
fn job_env(models_dir: &Path, llm: bool, voice: bool) -> Result<JobEnv> {
    let mut env = JobEnv::new(models_dir.to_owned(), Tools::from_env(), fetch_env()?);
    if llm {
        env.llm = translate::llm::LlmConfig::from_env()?;
    }
    if voice {
        env.voice = voice::voice_settings()?;
    }
    Ok(env)
}

fn process(a: ProcessArgs, models_dir: &Path, ui: &display::Ui, sink: &dyn Sink) -> Result<u8> {
    let job = process_job(&a)?;
    let env = job_env(models_dir, job.translate.is_some(), job.voiceover.is_some())?;
    let out_dir = match (&a.out, &job.input) {
        (Some(o), _) => o.clone(),
        (None, JobInput::Url { .. }) => PathBuf::from("."),
        (None, JobInput::File { path }) => dir_of(path),
    };
    let o = autosub_core::job::run(&job, &env, &out_dir, sink)?;
    let doc = &o.document;
    ui.clear();
    for w in &doc.warnings {
        ui.warn(w);
    }
    for n in &o.notes {
        ui.note(n);
    }
    let outputs_of = |files: &[(Format, PathBuf)]| -> serde_json::Map<String, serde_json::Value> {
        files
            .iter()
            .map(|(f, p)| (f.extension().to_owned(), json!(p)))
            .collect()
    };
    if a.json {
        let mut outputs = outputs_of(&o.files);
        if let Some(r) = &o.video {
            outputs.insert("video".into(), json!(r.path));
        }
        if let Some(p) = &o.voiceover_audio {
            outputs.insert("voiceover_audio".into(), json!(p));
        }
        let translations: Vec<serde_json::Value> = o
            .translations
            .iter()
            .map(|t| {
                json!({
                    "language": t.language,
                    "engine": t.engine,
                    "reason": t.reason,
                    "cues": t.cues,
                    "outputs": outputs_of(&t.files),
                })
            })
            .collect();
        let summary = json!({
            "input": o.input,
            "outputs": outputs,
            "video": o.video,
            "language": doc.language,
            "language_probability": doc.language_probability,
            "model": doc.model,
            "profile": doc.profile,
            "duration_ms": doc.duration_ms,
            "cues": doc.cues.len(),
            "words": doc.words.len(),
            "timings_ms": doc.timings_ms,
            "damaged": o.damaged,
            "warnings": doc.warnings,
            "notes": o.notes,
            "translations": translations,
            "burned_language": o.burned_language,
            "voiceover": o.voiceover,
        });
        out!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        ui.note(&format!(
            "{} cues, language {}, {} of media",
            doc.cues.len(),
            doc.language.as_deref().unwrap_or("?"),
            display::fmt_ms(doc.duration_ms)
        ));
        for (_, p) in &o.files {
            out!("{}", p.display());
        }
        for t in &o.translations {
            ui.note(&format!(
                "{}: {} cues by {} ({})",
                t.language, t.cues, t.engine, t.reason
            ));
            for (_, p) in &t.files {
                out!("{}", p.display());
            }
        }
        if let Some(r) = &o.video {
            out!("{}", r.path.display());
        }
        if let Some(p) = &o.voiceover_audio {
            out!("{}", p.display());
        }
    }
    Ok(exit::OK)
}

fn render_cmd(a: RenderArgs, models_dir: &Path, ui: &display::Ui, sink: &dyn Sink) -> Result<u8> {
    autosub_core::media::check_input_file(&a.video)?;
    let format = format_of(&a.subs)?;
    let (doc, text) = read_subs_and_text(&a.subs, sink)?;
    let job = a.video_args.video_job()?;
    let voice_plan = a.voice.plan()?;
    if let Some(l) = &a.lang {
        translate::validate_language(l)?;
    }
    // An .ass file without --style is burned exactly as it is (its own styles, positions and effects).
    let verbatim = format == Format::Ass && a.video_args.style.is_none();
    let cues = &doc.cues;
    if verbatim {
        autosub_subs::UserAssStyle::parse(&text)
            .map_err(|e| bad(format!("{}: {e}", a.subs.display())))?;
    }
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| pipeline::video_output_path(&dir_of(&a.video), &stem_of(&a.video)));
    if output.extension().map(|e| e.to_ascii_lowercase()) != Some("mp4".into()) {
        return Err(bad(format!(
            "the output {} must be an .mp4 file",
            output.display()
        )));
    }
    pipeline::check_output_dir(&dir_of(&output))?;
    let tools = Tools::from_env();
    let (media, _) = autosub_core::progress::run_stage(sink, Stage::Probe, None, || {
        autosub_core::media::probe(&tools, &a.video, sink)
    })?;
    if media.video.is_none() {
        return Err(bad(format!(
            "{} has no video stream to burn subtitles into",
            a.video.display()
        )));
    }
    let voiced = match &voice_plan {
        Some(plan) => {
            let language = subtitle_language(a.lang.as_deref(), &doc, &a.subs, sink);
            let engine = voice::open(plan, language.as_deref(), models_dir, sink)?;
            let vo = voice::build(
                cues,
                engine.as_ref(),
                plan,
                media.duration_ms.filter(|d| *d > 0),
                sink,
            )?;
            Some((vo, engine, plan.mode))
        }
        None => None,
    };
    let track = voiced.as_ref().map(|(vo, _, mode)| voice::track(vo, *mode));
    let r = pipeline::render_subtitled(
        &media,
        cues,
        verbatim.then_some(text.as_str()),
        &job,
        &output,
        track.as_ref(),
        sink,
    )?;
    ui.clear();
    if let Some((vo, _, _)) = &voiced {
        for n in voice::overflow_notes(vo) {
            ui.warn(&n);
        }
    }
    if a.json {
        let voiceover = voiced
            .as_ref()
            .map(|(vo, e, mode)| voice::summary(vo, e.as_ref(), *mode));
        out!(
            "{}",
            serde_json::to_string_pretty(&json!({ "video": r, "voiceover": voiceover }))?
        );
    } else {
        out!("{}", r.path.display());
    }
    Ok(exit::OK)
}

/// `ru: 12 cues by llm (en->ru: the configured LLM endpoint)`.
fn translation_note(t: &translate::Translated) -> String {
    format!(
        "{}: {} cues by {} ({})",
        t.language,
        t.doc.cues.len(),
        t.choice.engine,
        t.choice.reason
    )
}

fn translate_cmd(
    a: TranslateCmdArgs,
    models_dir: &Path,
    ui: &display::Ui,
    sink: &dyn Sink,
) -> Result<u8> {
    let mut doc = read_subs(&a.subs, sink)?;
    // The document's own limits unless others are asked for (a JSON from `process --vertical` stays shorts, one
    // cut with --max-cps 23 keeps 23).
    let profile = profile_of_doc(&a.profile, &doc)?;
    if let Some(from) = &a.from {
        translate::validate_language(from)?;
    }
    doc.language = subtitle_language(a.from.as_deref(), &doc, &a.subs, sink);
    if doc.language.is_none() {
        return Err(bad(format!(
            "the language of {} is unknown: give it with --from",
            a.subs.display()
        )));
    }
    let targs = TranslationArgs {
        translate: Some(a.to.clone()),
        translator: a.translator.clone(),
        burn_lang: None,
        bilingual: false,
        glossary: a.glossary.clone(),
    };
    let opts = targs
        .options(false, doc.language.as_deref(), models_dir, None)?
        .expect("--to is given");
    if opts.targets.len() != 1 {
        return Err(bad("--to takes one language"));
    }
    let output = a.output.clone().unwrap_or_else(|| {
        let ext = a
            .subs
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_else(|| "srt".into());
        dir_of(&a.subs).join(format!("{}.{}.{ext}", stem_of(&a.subs), opts.targets[0]))
    });
    let out_format = format_of(&output)?;
    pipeline::check_output_dir(&dir_of(&output))?;
    let mut t = translate::translate_document(&doc, &opts, &profile, None, sink)?;
    let t = t.remove(0);
    ui.clear();
    ui.note(&translation_note(&t));
    write_doc_output(&output, &t.doc, out_format)?;
    Ok(exit::OK)
}

/// Reads a subtitle file into a document: a JSON document as it is, other formats as cues (what had to be read
/// leniently or skipped is said as a warning, with its line).
fn read_subs(path: &Path, sink: &dyn Sink) -> Result<Document> {
    Ok(read_subs_and_text(path, sink)?.0)
}

/// [`read_subs`], and the file's text.
fn read_subs_and_text(path: &Path, sink: &dyn Sink) -> Result<(Document, String)> {
    let format = format_of(path)?;
    let text = read_text(path, sink)?;
    if format == Format::Json {
        let doc = autosub_subs::parse_json(&text)
            .with_context(|| format!("reading {}", path.display()))?;
        return Ok((doc, text));
    }
    let cues = parse_subs(path, &text, format, sink)?;
    let doc = Document {
        version: 1,
        source: Some(path.display().to_string()),
        language: None,
        language_probability: None,
        model: None,
        duration_ms: cues.last().map_or(0, |c| c.end_ms),
        profile: "standard".to_owned(),
        limits: None,
        words: Vec::new(),
        cues,
        timings_ms: Default::default(),
        warnings: Vec::new(),
    };
    Ok((doc, text))
}

/// The language of a subtitle file for its voice ([`autosub_core::lang::of_subtitles`]), said with `--verbose`.
fn subtitle_language(
    given: Option<&str>,
    doc: &Document,
    path: &Path,
    sink: &dyn Sink,
) -> Option<String> {
    let lines = doc.cues.iter().map(|c| c.visible_text());
    let found = autosub_core::lang::of_subtitles(given, doc.language.as_deref(), path, lines);
    if let Some((l, source)) = &found {
        sink.event(Event::Debug(&format!(
            "language of {}: {l} ({})",
            path.display(),
            source.describe()
        )));
    }
    found.map(|(l, _)| l)
}

/// A URL from the environment, when set and not empty.
fn env_url(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn speak_cmd(
    a: voice::SpeakArgs,
    models_dir: &Path,
    ui: &display::Ui,
    sink: &dyn Sink,
) -> Result<u8> {
    let doc = read_subs(&a.subs, sink)?;
    if let Some(l) = &a.lang {
        translate::validate_language(l)?;
    }
    let language = subtitle_language(a.lang.as_deref(), &doc, &a.subs, sink);
    let plan = voice::VoiceArgs {
        voiceover: Some(a.voice.clone().unwrap_or_else(|| "auto".into())),
        voiceover_mode: "duck".into(),
        max_speedup: a.max_speedup,
    }
    .plan()?
    .expect("a voice-over is asked for");
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| dir_of(&a.subs).join(format!("{}.voice.wav", stem_of(&a.subs))));
    if output.extension().and_then(|e| e.to_str()) != Some("wav") {
        return Err(bad(format!(
            "the output {} must be a .wav file",
            output.display()
        )));
    }
    pipeline::check_output_dir(&dir_of(&output))?;
    let engine = voice::open(&plan, language.as_deref(), models_dir, sink)?;
    let vo = voice::build(&doc.cues, engine.as_ref(), &plan, None, sink)?;
    voice::write_wav_atomically(&output, &vo.samples, vo.sample_rate)?;
    ui.clear();
    for n in voice::overflow_notes(&vo) {
        ui.warn(&n);
    }
    if a.json {
        let mut summary = voice::summary(&vo, engine.as_ref(), render::VoiceMode::Replace);
        summary["output"] = json!(output);
        summary.as_object_mut().map(|o| o.remove("mode"));
        out!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        ui.note(&format!(
            "{} lines spoken by {}, {} cut",
            vo.lines.len(),
            engine.voice().name,
            vo.overflows().count()
        ));
        out!("{}", output.display());
    }
    Ok(exit::OK)
}

fn fetch_cmd(a: FetchCmdArgs, ui: &display::Ui, sink: &dyn Sink) -> Result<u8> {
    if let Some(dir) = &a.out {
        pipeline::check_output_dir(dir)?;
    }
    let opts = fetch_options(&a.limits, Some(a.max_height))?;
    let got = fetch::fetch(&a.url, &opts, &Tools::from_env(), sink)?;
    let path = match &a.out {
        Some(dir) => {
            let ext = got
                .path
                .extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_else(|| "mp4".into());
            let dest = dir.join(format!(
                "{}.{ext}",
                autosub_core::job::safe_stem(got.title.as_deref())
            ));
            autosub_core::partial::copy_into_place(&got.path, &dest).map_err(|e| {
                autosub_core::Error::Write {
                    path: dest.clone(),
                    source: e,
                }
            })?;
            dest
        }
        None => got.path.clone(),
    };
    ui.clear();
    if a.json {
        out!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "path": path,
                "url": got.url,
                "title": got.title,
                "extractor": got.extractor,
                "duration_ms": got.duration_ms,
                "from_cache": got.from_cache,
                "yt_dlp": got.ytdlp_version,
            }))?
        );
    } else {
        out!("{}", path.display());
    }
    Ok(exit::OK)
}

/// Versions of the programs and models, and the features compiled in; exit 4 when something needed is missing.
fn doctor(models_dir: &Path) -> Result<u8> {
    let sink = autosub_core::progress::NullSink;
    let mut missing = 0;
    out!("autosub {}", env!("CARGO_PKG_VERSION"));
    let tools = Tools::from_env();
    for (name, prog) in [("ffmpeg", &tools.ffmpeg), ("ffprobe", &tools.ffprobe)] {
        match autosub_core::media::program_version(prog, &sink) {
            Ok(v) => out!("{name:<10} {v}"),
            Err(e) => {
                missing += 1;
                out!("{name:<10} MISSING: {e}");
            }
        }
    }
    match fetch::ytdlp_version(&fetch::default_ytdlp()) {
        Ok(v) => out!(
            "{:<10} {v}{}",
            "yt-dlp",
            if v == fetch::YTDLP_VERSION {
                String::new()
            } else {
                format!(" (tested with {})", fetch::YTDLP_VERSION)
            }
        ),
        Err(e) => {
            missing += 1;
            out!("{:<10} MISSING: {e}", "yt-dlp");
        }
    }
    out!("{:<10} {}", "models", models_dir.display());
    let installed = autosub_models::list_installed(models_dir);
    if installed.is_empty() {
        missing += 1;
        out!("           none installed: run `autosub models install base` or scripts/setup.sh");
    }
    for m in &installed {
        out!(
            "           {:<16} {:>8}",
            m.name,
            display::fmt_bytes(m.size)
        );
    }
    for (list, name, what) in [
        ("-filters", "ass", "libass (burned-in subtitles)"),
        ("-encoders", "libx264", "x264 (video encoding)"),
    ] {
        if !autosub_core::media::ffmpeg_has(&tools, list, name, &sink).unwrap_or(false) {
            missing += 1;
            out!("{:<10} MISSING: this ffmpeg has no {what}", "ffmpeg");
        }
    }
    out!(
        "{:<10} whisper.cpp {} (OpenMP); ffmpeg with libass and x264",
        "features",
        autosub_core::asr::backend_version()
    );
    // The service's configuration, as `serve` and `worker` would read it (secrets masked).
    match autosub_service::Config::from_env() {
        Ok(cfg) => {
            for (var, value) in cfg.describe() {
                out!("{:<10} {var}={value}", "service");
            }
        }
        Err(e) => {
            missing += 1;
            out!("{:<10} INVALID: {e}", "service");
        }
    }
    // The bot's, when a token is set (the token itself never printed).
    if std::env::var("AUTOSUB_TELEGRAM_TOKEN").is_ok_and(|t| !t.trim().is_empty()) {
        match autosub_bot::BotConfig::from_env() {
            Ok(cfg) => {
                for (var, value) in cfg.describe() {
                    out!("{:<10} {var}={value}", "bot");
                }
            }
            Err(e) => {
                missing += 1;
                out!("{:<10} INVALID: {e}", "bot");
            }
        }
    } else {
        out!("{:<10} off (AUTOSUB_TELEGRAM_TOKEN is not set)", "bot");
    }
    // Billing's (the merchant secret never printed).
    let public_url = autosub_service::Config::from_env()
        .ok()
        .and_then(|c| c.public_url);
    match autosub_billing::BillingConfig::from_env(public_url) {
        Ok(cfg) => {
            for (var, value) in cfg.describe() {
                out!("{:<10} {var}={value}", "billing");
            }
        }
        Err(e) => {
            missing += 1;
            out!("{:<10} INVALID: {e}", "billing");
        }
    }
    Ok(if missing == 0 {
        exit::OK
    } else {
        exit::MISSING_DEPENDENCY
    })
}

fn transcribe(
    a: TranscribeArgs,
    models_dir: &Path,
    ui: &display::Ui,
    sink: &dyn Sink,
) -> Result<u8> {
    let profile = profile(&a.profile)?;
    let asr = asr_options(&a.asr)?;
    autosub_core::media::check_input_file(&a.input)?;
    let output = a
        .output
        .clone()
        .unwrap_or_else(|| dir_of(&a.input).join(format!("{}.json", stem_of(&a.input))));
    if output != Path::new("-") {
        pipeline::check_output_dir(&dir_of(&output))?;
    }
    let (_, doc) = recognise(&a.asr, asr, &a.input, &profile, models_dir, ui, sink)?;
    ui.clear();
    for w in &doc.warnings {
        ui.warn(w);
    }
    write_doc_output(&output, &doc, Format::Json)?;
    Ok(exit::OK)
}

fn write_doc_output(output: &Path, doc: &Document, format: Format) -> Result<()> {
    let text = pipeline::render(
        doc,
        format,
        &AssStyle::default(),
        autosub_subs::VideoSize::default(),
    );
    if output == Path::new("-") {
        outp!("{text}");
    } else {
        pipeline::write_files_atomically(&[(output.to_owned(), text)])?;
        out!("{}", output.display());
    }
    Ok(())
}

/// The encoding given with `--encoding`, set once in `main`.
static ENCODING: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Reads a text file in its encoding (`--encoding`, else detected: [`autosub_subs::decode_text`]); `--verbose`
/// says which.
fn read_text(path: &Path, sink: &dyn Sink) -> Result<String> {
    autosub_core::media::check_input_file(path)?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let forced = ENCODING.get().and_then(|e| e.as_deref());
    let d = autosub_subs::decode_text(&bytes, forced)
        .map_err(|e| bad(format!("{}: {e}", path.display())))?;
    sink.event(Event::Debug(&format!(
        "{}: read as {} ({})",
        path.display(),
        d.encoding,
        d.source.describe()
    )));
    if d.lossy {
        sink.event(Event::Warning(&format!(
            "{}: some bytes are not valid {} and were replaced; give the right one with --encoding",
            path.display(),
            d.encoding
        )));
    }
    Ok(d.text)
}

/// Parses subtitles leniently ([`autosub_subs::parse_subtitles`]), each problem read past said as a warning.
fn parse_subs(
    path: &Path,
    text: &str,
    format: Format,
    sink: &dyn Sink,
) -> Result<Vec<autosub_subs::Cue>> {
    let parsed = autosub_subs::parse_subtitles(text, format)
        .with_context(|| format!("reading {}", path.display()))?;
    for w in &parsed.warnings {
        sink.event(Event::Warning(&format!("{}: {w}", path.display())));
    }
    Ok(parsed.cues)
}

fn format_of(path: &Path) -> Result<Format> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    ext.parse::<Format>().map_err(|_| {
        bad(format!(
            "cannot tell the subtitle format of {} from its extension; use .srt, .vtt, .ass or .json",
            path.display()
        ))
    })
}

fn segment(a: SegmentArgs, sink: &dyn Sink) -> Result<u8> {
    let text = read_text(&a.input, sink)?;
    let mut doc = autosub_subs::parse_json(&text)
        .with_context(|| format!("reading {}", a.input.display()))?;
    let profile = profile_of_doc(&a.profile, &doc)?;
    if doc.words.is_empty() && !doc.cues.is_empty() {
        return Err(bad(format!(
            "{} has cues but no word timings, so it cannot be re-cut; use the JSON written by `autosub transcribe`",
            a.input.display()
        )));
    }
    doc.cues = autosub_subs::segment(&doc.words, &profile);
    doc.set_limits(&profile);
    let format = if a.output == Path::new("-") {
        Format::Json
    } else {
        format_of(&a.output)?
    };
    write_doc_output(&a.output, &doc, format)?;
    Ok(exit::OK)
}

fn lint(a: LintArgs, models_dir: &Path, sink: &dyn Sink) -> Result<u8> {
    let doc = read_subs(&a.file, sink)?;
    let profile = profile_of_doc(&a.profile, &doc)?;
    let cues = &doc.cues;
    let mut violations = autosub_subs::lint(cues, &profile);
    if let Some(spec) = &a.voiceover {
        let plan = voice::VoiceArgs {
            voiceover: Some(spec.clone()),
            voiceover_mode: "duck".into(),
            max_speedup: a.max_speedup,
        }
        .plan()?
        .expect("a voice is asked for");
        if let Some(l) = &a.lang {
            translate::validate_language(l)?;
        }
        let language = subtitle_language(a.lang.as_deref(), &doc, &a.file, sink);
        let engine = voice::open(&plan, language.as_deref(), models_dir, sink)?;
        let vo = voice::build(cues, engine.as_ref(), &plan, None, sink)?;
        for l in vo
            .lines
            .iter()
            .filter(|l| l.fit == autosub_core::tts::voiceover::Fit::Failed)
        {
            violations.push(autosub_subs::Violation {
                cue: l.cue + 1,
                rule: autosub_subs::Rule::VoiceoverFailed,
                message: format!(
                    "cue {} ({}): the voice {} could not speak it: {}",
                    l.cue + 1,
                    display::fmt_ms(cues[l.cue].start_ms),
                    engine.voice().name,
                    l.message.as_deref().unwrap_or("no audio")
                ),
            });
        }
        for l in vo.overflows() {
            violations.push(autosub_subs::Violation {
                cue: l.cue + 1,
                rule: autosub_subs::Rule::VoiceoverTooLong,
                message: format!(
                    "cue {} ({}): the voice-over ({}) needs {} ms at {:.2}x, {} ms are free before the next \
                     line",
                    l.cue + 1,
                    display::fmt_ms(cues[l.cue].start_ms),
                    engine.voice().name,
                    l.needed_ms,
                    l.speed,
                    l.available_ms
                ),
            });
        }
        violations.sort_by_key(|v| v.cue);
    }
    if a.json {
        out!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "file": a.file,
                "profile": profile.name,
                "limits": profile,
                "cues": cues.len(),
                "violations": violations,
            }))?
        );
    } else {
        for v in &violations {
            out!("{}: {} [{}]", a.file.display(), v.message, v.rule);
        }
        eprintln!(
            "{}: {} cues, {} violation(s) of profile {}",
            a.file.display(),
            cues.len(),
            violations.len(),
            profile.name
        );
    }
    Ok(if violations.is_empty() {
        exit::OK
    } else {
        exit::VIOLATIONS
    })
}

fn models_cmd(
    m: ModelsCommand,
    models_dir: &Path,
    ui: &display::Ui,
    sink: &dyn Sink,
) -> Result<u8> {
    match m {
        ModelsCommand::List => {
            let installed = autosub_models::list_installed(models_dir);
            out!("models folder: {}", models_dir.display());
            if installed.is_empty() {
                out!("no models installed");
            }
            for m in &installed {
                out!(
                    "  {:<20} {:>8}  {}",
                    m.name,
                    display::fmt_bytes(m.size),
                    m.path.display()
                );
            }
            let packages = autosub_models::argos::list_packages(models_dir);
            out!("translation packages (Argos):");
            if packages.is_empty() {
                out!("  none: autosub models install translate:FROM-TO (e.g. translate:en-ru)");
            }
            for p in &packages {
                out!(
                    "  {:<20} {:>8}  {}{}",
                    format!("translate:{}-{}", p.from, p.to),
                    display::fmt_bytes(p.size_bytes),
                    p.version,
                    match (&p.source, p.verified) {
                        (Some(src), false) if src.starts_with("http") =>
                            " (no checksum in its index)",
                        _ => "",
                    }
                );
            }
            if !cfg!(feature = "argos") {
                out!(
                    "  (this autosub was built without the argos engine: packages cannot be used)"
                );
            }
            out!("installable (autosub models install NAME):");
            for e in autosub_models::CATALOG {
                let size = e.size.map(display::fmt_bytes).unwrap_or_default();
                out!("  {:<20} {:>8}", e.name, size);
            }
            out!(
                "  {:<20} {:>8}  from {}",
                "translate:FROM-TO",
                "",
                models::argos_index_url(None)
            );
            for v in autosub_core::tts::PIPER_VOICES {
                let installed = autosub_core::tts::voices_dir(models_dir)
                    .join(v.model.file_name)
                    .is_file();
                out!(
                    "  {:<20} {:>8}{}",
                    format!("voice:{}", v.name),
                    display::fmt_bytes(v.model.size + v.config.size),
                    if installed { "  (installed)" } else { "" }
                );
            }
        }
        ModelsCommand::Install {
            name,
            base_url,
            index,
        } => {
            if let Some(pair) = models::translation_pair(&name) {
                let (from, to) = pair?;
                let p =
                    models::install_translation(models_dir, &from, &to, index.as_deref(), sink)?;
                ui.clear();
                if !p.verified {
                    ui.note("the index gives no checksum for this package: its archive's own CRCs were checked");
                }
                out!("{}", p.dir.display());
            } else if let Some(voice) = name.strip_prefix("voice:") {
                if index.is_some() {
                    return Err(bad("--index is for translate:FROM-TO packages"));
                }
                let opts = autosub_models::DownloadOptions {
                    base_url: base_url.or_else(|| env_url("AUTOSUB_VOICE_BASE_URL")),
                    ..Default::default()
                };
                let path = autosub_core::tts::install_voice(models_dir, voice, &opts, sink)?;
                ui.clear();
                out!("{}", path.display());
            } else {
                if index.is_some() {
                    return Err(bad("--index is for translate:FROM-TO packages"));
                }
                let base_url = base_url.or_else(|| env_url(autosub_models::BASE_URL_ENV));
                let path = models::install(models_dir, &name, base_url.as_deref(), sink)?;
                ui.clear();
                out!("{}", path.display());
            }
        }
        ModelsCommand::Import {
            dir,
            name,
            quantize,
        } => {
            if dir.is_file() {
                if name.is_some() {
                    return Err(bad("--name is for faster-whisper model folders"));
                }
                let p = models::import_translation(models_dir, &dir)?;
                ui.clear();
                out!("{}", p.dir.display());
            } else {
                let path = models::import(models_dir, &dir, name.as_deref(), &quantize, sink)?;
                ui.clear();
                out!("{}", path.display());
            }
        }
        ModelsCommand::Path { name } => match name {
            None => out!("{}", models_dir.display()),
            Some(n) => out!("{}", models::resolve(models_dir, &n)?.0.display()),
        },
    }
    Ok(exit::OK)
}
