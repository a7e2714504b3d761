//! Speech recognition with whisper.cpp (through whisper-rs).
//!
//! The model is loaded once per process ([`Recognizer::load`]); each call to [`Recognizer::transcribe`] makes its
//! own decoding state. Audio reaches Whisper only through the voice-activity detector ([`crate::vad`]): speech is
//! grouped at long silences, the shorter silences inside a group are cut out, the group is cut at pauses into
//! windows of at most [`MAX_WINDOW_MS`] that Whisper encodes once each, and times are mapped back to the source, so
//! silence is never
//! transcribed and timestamps cannot drift across a long pause. On top of that, segments that Whisper itself marks
//! as no-speech, unsure repeats, runaway repetition and segments over silence are dropped (see [`guard_segments`]).

use crate::progress::{Event, Sink, Stage};
use crate::vad::{self, Chunk, Span, VadOptions, VoiceMap};
use crate::{Error, Result};
use autosub_subs::Word;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperError,
    WhisperState,
};

/// Silences at least this long separate groups of speech that are transcribed by separate Whisper calls.
const LONG_SILENCE_MS: u64 = 3000;

/// Longest stretch of speech Whisper gets as one window (one encoder pass). Whisper's windows are 30 s, but the
/// encoder's cost grows faster than its context (attention is quadratic; with llamafile kernels here 20 s took 0.5x
/// the time of 30 s, 10 s 0.24x), and every decoding step attends to the whole context: 15 s windows, cut at pauses,
/// with a context sized to the audio, transcribed the 60 s benchmark clip 8 % faster than 24 s ones at the same word
/// error rate (docs/DECISIONS.md).
pub const MAX_WINDOW_MS: u64 = 15_000;

/// Longest window for Whisper's translate task: a translation reads whole sentences better with more of them in
/// view (with 15 s windows the 60 s Russian clip came out with a cue too dense to read; with 24 s, not).
pub const MAX_TRANSLATE_WINDOW_MS: u64 = 24_000;

/// Speech used for language detection (the first window of speech, cut at a pause, at most this long).
const DETECT_WINDOW_MS: u64 = 15_000;

/// A window's encoder context covers its audio plus this much of the silence after it...
const CTX_TAIL_MS: u64 = 1_000;

/// ...and at least this much (very short contexts are far from what Whisper was trained on).
const MIN_CTX_MS: u64 = 10_000;

/// Less audio than this left in a group is not worth a window.
const MIN_WINDOW_MS: u64 = 200;

/// Where the window after `start..end` starts, once Whisper decoded it up to `covered_ms` (its last timestamp,
/// window time) and `voiced_after_ms` of voice is left after that: the window's end, unless Whisper stopped early
/// (at least 3 s decoded, at least 1 s and 0.5 s of voice left), in which case the rest starts the next window, as
/// whisper.cpp's own sliding window would do. The 3 s floor bounds the extra encoder passes per window.
pub fn next_window_start(start: u64, end: u64, covered_ms: u64, voiced_after_ms: u64) -> u64 {
    let covered = start + covered_ms.min(end.saturating_sub(start));
    if covered_ms >= 3000 && covered + 1000 < end && voiced_after_ms >= 500 {
        covered
    } else {
        end
    }
}

/// The first `max_ms` (at least) of speech, across groups: the pieces of the first groups put end to end.
fn detection_chunk(groups: &[Chunk], max_ms: u64) -> Chunk {
    let mut pieces = Vec::new();
    let mut len = 0;
    for p in groups.iter().flat_map(|g| g.pieces.iter()) {
        if len >= max_ms {
            break;
        }
        pieces.push(*p);
        len += p.len_ms();
    }
    Chunk { pieces }
}

/// Encoder context (in 20 ms positions) for a window of `len_ms` of audio: a multiple of [`CTX_ALIGN`], at most
/// Whisper's 1500.
fn audio_ctx_for(len_ms: u64) -> i32 {
    let positions = (len_ms + CTX_TAIL_MS).max(MIN_CTX_MS).div_ceil(20);
    (positions.div_ceil(CTX_ALIGN) * CTX_ALIGN).min(1500) as i32
}

/// Encoder contexts are rounded up to a multiple of this many positions. ggml's fast matrix kernels (llamafile's
/// tinyBLAS) take an f16 product only when its inner dimension is a multiple of 8 and its rows a multiple of 4; the
/// attention products over the audio (the encoder's and the decoder's cross-attention) have the context as one of
/// those dimensions, and with any other length fall back to ggml's dot-product loops. 8 is the least padding that
/// serves both. Measured with `scripts/bench/ab.sh` (this against the unaligned build); see docs/PERFORMANCE.md.
const CTX_ALIGN: u64 = 8;

fn ms_to_samples(ms: u64) -> usize {
    (ms * crate::media::SAMPLE_RATE as u64 / 1000) as usize
}

/// What the calling thread relays while a window is decoded on the worker: progress and cancellation.
struct Relay<'a> {
    progress: &'a AtomicI32,
    abort: &'a AtomicBool,
    /// Progress already done before this window, and the window's length (ms of speech).
    done_ms: u64,
    len_ms: u64,
}

/// Runs `job` on a worker thread that owns the decoding state, and hands the state back. The calling thread
/// relays progress and watches for cancellation: whisper.cpp checks its abort flag only between encoder passes
/// (seconds on a small CPU) and language detection not at all, so on cancellation this returns at once, raising
/// the abort flag, and the worker ends on its own (taking the state with it).
fn on_worker<T: Send + 'static>(
    state: &mut Option<WhisperState>,
    sink: &dyn Sink,
    relay: Option<Relay<'_>>,
    job: impl FnOnce(&mut WhisperState) -> T + Send + 'static,
) -> Result<T> {
    let mut st = state
        .take()
        .ok_or_else(|| Error::Asr("the decoder state was lost".into()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = job(&mut st);
        let _ = tx.send((st, r));
    });
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok((st, r)) => {
                *state = Some(st);
                return Ok(r);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if sink.is_cancelled() {
                    if let Some(r) = &relay {
                        r.abort.store(true, Ordering::Relaxed);
                    }
                    return Err(Error::Cancelled);
                }
                if let Some(r) = &relay {
                    let p = r.progress.load(Ordering::Relaxed).clamp(0, 100) as u64;
                    sink.event(Event::Progress {
                        stage: Stage::Transcribe,
                        done: r.done_ms + r.len_ms * p / 100,
                    });
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::Asr("whisper crashed".to_owned()));
            }
        }
    }
}

/// Options of one transcription.
#[derive(Clone, Debug)]
pub struct AsrOptions {
    /// ISO 639-1 code to force, or `None` to detect.
    pub language: Option<String>,
    /// Beam width; 1 means greedy decoding (`--fast`).
    pub beam_size: u32,
    /// CPU threads for inference.
    pub threads: u32,
    /// Voice-activity detection settings.
    pub vad: VadOptions,
    /// Translate to English instead of transcribing (Whisper's own translate task).
    pub translate: bool,
}

impl Default for AsrOptions {
    fn default() -> Self {
        AsrOptions {
            language: None,
            beam_size: 5,
            threads: default_threads(),
            vad: VadOptions::default(),
            translate: false,
        }
    }
}

/// All cores, at most 8 (whisper.cpp gains little beyond that).
pub fn default_threads() -> u32 {
    std::thread::available_parallelism()
        .map_or(4, |n| n.get() as u32)
        .clamp(1, 8)
}

/// The result of recognition: words with timings on the source timeline.
#[derive(Clone, Debug, Default)]
pub struct Recognition {
    pub language: Option<String>,
    pub language_probability: Option<f32>,
    pub words: Vec<Word>,
    /// Speech spans found by the detector.
    pub speech: Vec<Span>,
    pub warnings: Vec<String>,
}

/// A loaded Whisper model.
pub struct Recognizer {
    ctx: WhisperContext,
    path: PathBuf,
    multilingual: bool,
}

impl Recognizer {
    /// Loads a ggml Whisper model file.
    pub fn load(path: &Path) -> Result<Self> {
        whisper_rs::install_logging_hooks();
        if !path.is_file() {
            return Err(Error::ModelMissing {
                message: format!("model file {} does not exist", path.display()),
            });
        }
        // Check the header first: whisper.cpp's own failure on a wrong file is an unhelpful error code.
        autosub_models::read_ggml_header(path)?;
        let mut params = WhisperContextParameters::default();
        // Flash attention is off by default: measured slower on CPU here (60 s English, beam 5: 7.0 s vs 6.1 s).
        params.flash_attn(std::env::var_os("AUTOSUB_FLASH_ATTN").is_some());
        let path_str = path.to_str().ok_or_else(|| {
            Error::BadInput(format!("model path {} is not valid UTF-8", path.display()))
        })?;
        let ctx = WhisperContext::new_with_params(path_str, params)
            .map_err(|e| Error::Asr(format!("cannot load model {}: {e}", path.display())))?;
        let multilingual = ctx.is_multilingual();
        Ok(Recognizer {
            ctx,
            path: path.to_owned(),
            multilingual,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

    /// Transcribes 16 kHz mono `samples`. Progress is reported as milliseconds of speech decoded.
    pub fn transcribe(
        &self,
        samples: &[f32],
        opts: &AsrOptions,
        sink: &dyn Sink,
    ) -> Result<Recognition> {
        let mut rec = Recognition::default();
        if let Some(lang) = &opts.language {
            validate_language(lang)?;
            if !self.multilingual && lang != "en" {
                return Err(Error::BadInput(format!(
                    "the model {} is English-only; use a multilingual model (e.g. `--model base`) for language `{lang}`",
                    self.path.display()
                )));
            }
        }

        sink.event(Event::Start {
            stage: Stage::DetectSpeech,
            total: None,
        });
        let t0 = std::time::Instant::now();
        rec.speech = vad::detect_speech(samples, &opts.vad);
        // Speech is transcribed in groups separated by long silences, each group with the shorter silences inside it
        // cut out and cut at pauses into windows; a group starts Whisper afresh, which is where its timestamps are
        // best.
        let groups = vad::group_spans(&rec.speech, LONG_SILENCE_MS);
        sink.event(Event::Finish {
            stage: Stage::DetectSpeech,
            elapsed: t0.elapsed(),
        });
        let total: u64 = groups.iter().map(Chunk::len_ms).sum();
        sink.event(Event::Start {
            stage: Stage::Transcribe,
            total: Some(total),
        });
        let t0 = std::time::Instant::now();
        if total == 0 {
            rec.warnings
                .push("no speech was detected in the audio: the subtitles are empty".to_owned());
            rec.language = opts.language.clone();
            sink.event(Event::Finish {
                stage: Stage::Transcribe,
                elapsed: t0.elapsed(),
            });
            return Ok(rec);
        }

        let mut state = Some(
            self.ctx
                .create_state()
                .map_err(|e| Error::Asr(format!("cannot create decoder state: {e}")))?,
        );
        let threads = opts.threads as usize;

        // Language: forced, English for .en models, else detected once on the first window of speech.
        let language = match &opts.language {
            Some(l) => l.clone(),
            None if !self.multilingual => "en".to_owned(),
            None => {
                let detect_t0 = std::time::Instant::now();
                // The first speech, across groups (a short "Hi." alone says little), cut at a pause.
                let first = detection_chunk(&groups, DETECT_WINDOW_MS);
                let first_audio = first.samples(samples);
                let end = vad::window_end(
                    &first,
                    &VoiceMap::new(&first_audio, &opts.vad),
                    0,
                    DETECT_WINDOW_MS,
                );
                let audio = first_audio[..ms_to_samples(end).min(first_audio.len())].to_vec();
                let ctx = audio_ctx_for(end);
                // whisper.cpp's language detection cannot be aborted: on cancellation we return and the worker
                // ends on its own.
                let (id, probs) = on_worker(&mut state, sink, None, move |st| {
                    detect_language(st, &audio, ctx, threads)
                })??;
                rec.language_probability = probs.get(id as usize).copied();
                sink.event(Event::Debug(&format!(
                    "language detected in {:.2} s ({:.1} s of speech)",
                    detect_t0.elapsed().as_secs_f64(),
                    end as f64 / 1000.0
                )));
                whisper_rs::get_lang_str(id).unwrap_or("en").to_owned()
            }
        };
        rec.language = Some(language.clone());

        let eot = self.ctx.token_eot();
        let max_window = if opts.translate {
            MAX_TRANSLATE_WINDOW_MS
        } else {
            MAX_WINDOW_MS
        };
        let mut kept: Vec<SegmentWords> = Vec::new();
        let mut done_ms = 0u64;
        let mut invented = 0usize;
        let mut windows = 0usize;
        for compact in &groups {
            let audio = compact.samples(samples);
            // Word timings are tightened on the group's audio, before mapping back, so a word Whisper placed in
            // the silence just before a junction moves forward into the speech that follows it.
            let voice = VoiceMap::new(&audio, &opts.vad);
            let group_t0 = std::time::Instant::now();
            let len = compact.len_ms();
            let mut group_segments: Vec<SegmentWords> = Vec::new();
            let mut start = 0u64;
            while start + MIN_WINDOW_MS <= len {
                let end = vad::window_end(compact, &voice, start, max_window);
                let window: Vec<f32> = audio
                    [ms_to_samples(start).min(audio.len())..ms_to_samples(end).min(audio.len())]
                    .to_vec();
                let progress = Arc::new(AtomicI32::new(0));
                let abort = Arc::new(AtomicBool::new(false));
                let job = WindowJob {
                    opts: opts.clone(),
                    language: language.clone(),
                    audio_ctx: audio_ctx_for(end - start),
                    progress: progress.clone(),
                    abort: abort.clone(),
                };
                let relay = Relay {
                    progress: &progress,
                    abort: &abort,
                    done_ms: done_ms + start,
                    len_ms: end - start,
                };
                let window_t0 = std::time::Instant::now();
                let audio_ctx = job.audio_ctx;
                on_worker(&mut state, sink, Some(relay), move |st| {
                    job.run(st, &window)
                })?
                .map_err(|e| Error::Asr(format!("whisper failed: {e}")))?;
                if sink.is_cancelled() {
                    return Err(Error::Cancelled);
                }
                windows += 1;
                let st = state
                    .as_ref()
                    .expect("the state is back after every window");
                let (mut segs, covered_ms) =
                    read_segments(st, eot, splits_per_character(&language));
                // Whisper may put a timestamp in the silence of the context after the window's audio; nothing of
                // this window may land in the next one.
                let window_ms = end - start;
                for seg in &mut segs {
                    seg.words.retain(|w| w.start_ms < window_ms);
                    for w in &mut seg.words {
                        w.end_ms = w.end_ms.min(window_ms);
                        w.start_ms += start;
                        w.end_ms += start;
                    }
                }
                sink.event(Event::Debug(&format!(
                    "window {:.1}-{:.1} s (context {audio_ctx}): {} segment(s) to {:.1} s in {:.2} s",
                    start as f64 / 1000.0,
                    end as f64 / 1000.0,
                    segs.len(),
                    covered_ms as f64 / 1000.0,
                    window_t0.elapsed().as_secs_f64()
                )));
                group_segments.extend(segs);
                let covered = start + covered_ms.min(window_ms);
                start = next_window_start(start, end, covered_ms, voice.voiced_ms(covered, end));
                sink.event(Event::Progress {
                    stage: Stage::Transcribe,
                    done: done_ms + start.min(len),
                });
            }
            done_ms += len;
            sink.event(Event::Progress {
                stage: Stage::Transcribe,
                done: done_ms,
            });
            sink.event(Event::Debug(&format!(
                "{:.1} s of speech transcribed in {:.2} s",
                len as f64 / 1000.0,
                group_t0.elapsed().as_secs_f64()
            )));
            invented += clean_group(&voice, &mut group_segments);
            for mut seg in group_segments {
                for w in &mut seg.words {
                    (w.start_ms, w.end_ms) = compact.to_source_span(w.start_ms, w.end_ms);
                }
                kept.push(seg);
            }
        }
        sink.event(Event::Debug(&format!(
            "{windows} recogniser window(s) for {} group(s) of speech",
            groups.len()
        )));
        let (words, dropped) = guard_segments(kept, &rec.speech);
        if dropped > 0 || invented > 0 {
            sink.event(Event::Debug(&format!(
                "hallucination guard dropped {dropped} segment(s) and {invented} word(s) over silence"
            )));
        }
        rec.words = words;
        if rec.words.is_empty() {
            rec.warnings.push(
                "no words were recognised in the detected speech: the subtitles are empty"
                    .to_owned(),
            );
        }
        sink.event(Event::Finish {
            stage: Stage::Transcribe,
            elapsed: t0.elapsed(),
        });
        Ok(rec)
    }
}

/// The segments of the last `full()` call as words (times in the call's audio) with the signals the guards use,
/// and the end of the last segment (ms: how far Whisper got).
fn read_segments(state: &WhisperState, eot: i32, per_token: bool) -> (Vec<SegmentWords>, u64) {
    let mut out = Vec::new();
    let mut covered_ms = 0u64;
    for seg in state.as_iter() {
        covered_ms = covered_ms.max(seg.end_timestamp().max(0) as u64 * 10);
        let mut tokens = Vec::new();
        for i in 0..seg.n_tokens() {
            let Some(tok) = seg.get_token(i) else {
                continue;
            };
            let data = tok.token_data();
            if data.id >= eot {
                continue; // special and timestamp tokens
            }
            tokens.push(TokenInfo {
                bytes: tok.to_bytes().unwrap_or_default().to_vec(),
                t0_ms: (data.t0.max(0) as u64) * 10,
                t1_ms: (data.t1.max(0) as u64) * 10,
                p: data.p,
                plog: data.plog,
            });
        }
        let avg_logprob = if tokens.is_empty() {
            0.0
        } else {
            tokens.iter().map(|t| t.plog).sum::<f32>() / tokens.len() as f32
        };
        out.push(SegmentWords {
            words: group_words(&tokens, per_token),
            no_speech_prob: seg.no_speech_probability(),
            avg_logprob,
        });
    }
    (out, covered_ms)
}

/// Word-level clean-up of one group's segments, in the group's (compacted) time, against its voice map:
/// tightens word times over the whole group at once (so a segment's last word is bounded by the next segment's
/// first), drops segments none of whose words is voiced (invented over silence), and drops trailing unvoiced
/// words at the end of the group (Whisper going on past the speech: "for the Chinese people.", "Bye.").
/// Returns the number of words dropped. Single unvoiced words inside a segment are kept: Whisper sometimes puts a
/// real word's timestamp in the pause before it.
fn clean_group(voice: &VoiceMap, segments: &mut [SegmentWords]) -> usize {
    let voiced_near = |w: &Word| voice.has_voice(w.start_ms.saturating_sub(100), w.end_ms + 100);
    let mut all: Vec<Word> = segments
        .iter()
        .flat_map(|s| s.words.iter().cloned())
        .collect();
    voice.refine_words(&mut all);
    let mut rest = all.into_iter();
    let mut dropped = 0;
    for seg in segments.iter_mut() {
        let n = seg.words.len();
        seg.words = rest.by_ref().take(n).collect();
        if !seg.words.iter().any(voiced_near) {
            dropped += seg.words.len();
            seg.words.clear();
        }
    }
    if let Some(last) = segments.iter_mut().rev().find(|s| !s.words.is_empty()) {
        while last.words.len() > 1 && last.words.last().is_some_and(|w| !voiced_near(w)) {
            last.words.pop();
            dropped += 1;
        }
    }
    dropped
}

/// One window for Whisper: everything the worker thread needs to decode it.
struct WindowJob {
    opts: AsrOptions,
    language: String,
    audio_ctx: i32,
    progress: Arc<AtomicI32>,
    abort: Arc<AtomicBool>,
}

impl WindowJob {
    /// Decodes `audio` with one encoder pass of `audio_ctx` positions.
    fn run(self, state: &mut WhisperState, audio: &[f32]) -> std::result::Result<(), WhisperError> {
        let strategy = if self.opts.beam_size <= 1 {
            SamplingStrategy::Greedy { best_of: 1 }
        } else {
            SamplingStrategy::BeamSearch {
                beam_size: self.opts.beam_size as i32,
                patience: -1.0,
            }
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(self.opts.threads as i32);
        params.set_language(Some(&self.language));
        params.set_translate(self.opts.translate);
        params.set_token_timestamps(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        params.set_no_speech_thold(0.6);
        params.set_logprob_thold(-1.0);
        params.set_audio_ctx(self.audio_ctx);
        let progress = self.progress.clone();
        params.set_progress_callback_safe(move |p: i32| progress.store(p, Ordering::Relaxed));
        // Pass the closure already boxed as `dyn`: whisper-rs 0.16's abort trampoline casts its user data to the
        // closure's own type but stores a `Box<dyn FnMut>`; the two only agree when that type *is* `Box<dyn FnMut>`.
        // (With a plain closure the callback read garbage and aborted encodes at random: "error -6".)
        let abort = self.abort.clone();
        let abort_cb: Box<dyn FnMut() -> bool> = Box::new(move || abort.load(Ordering::Relaxed));
        params.set_abort_callback_safe::<_, Box<dyn FnMut() -> bool>>(abort_cb);
        // One encoder pass: whisper.cpp would slide on to a second, almost empty window after the last timestamp;
        // the caller decides instead whether anything is left (and starts the next window there).
        encoder_gate::full(state, params, audio, 1)
    }
}

/// Detects the language of `audio` (at most 30 s) with an encoder context of `audio_ctx` positions.
fn detect_language(
    state: &mut WhisperState,
    audio: &[f32],
    audio_ctx: i32,
    threads: usize,
) -> Result<(i32, Vec<f32>)> {
    // whisper.cpp's language detection uses the state's mel and encoder context. A `full()` call that is stopped
    // before its first encoder pass sets both (the mel of `audio`, the context) and does nothing else.
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(threads as i32);
    params.set_language(Some("en"));
    params.set_audio_ctx(audio_ctx);
    params.set_print_progress(false);
    encoder_gate::full(state, params, audio, 0)
        .map_err(|e| Error::Asr(format!("mel spectrogram failed: {e}")))?;
    state
        .lang_detect(0, threads)
        .map_err(|e| Error::Asr(format!("language detection failed: {e}")))
}

/// `full()` with at most a given number of encoder passes, through whisper.cpp's encoder-begin callback (the only
/// raw callback AutoSub installs: whisper-rs has no safe wrapper for it).
#[allow(unsafe_code)]
mod encoder_gate {
    use std::sync::atomic::{AtomicU32, Ordering};
    use whisper_rs::whisper_rs_sys::{whisper_context, whisper_state};
    use whisper_rs::{FullParams, WhisperError, WhisperState};

    struct Gate {
        passes: AtomicU32,
        allowed: u32,
    }

    /// Runs `state.full(params, audio)`, stopping it before encoder pass number `allowed + 1`.
    pub fn full(
        state: &mut WhisperState,
        mut params: FullParams<'_, '_>,
        audio: &[f32],
        allowed: u32,
    ) -> Result<(), WhisperError> {
        let gate = Gate {
            passes: AtomicU32::new(0),
            allowed,
        };
        // SAFETY: whisper.cpp calls `begin` only during the `full()` call below, on this stack frame's `gate`,
        // which outlives it; `begin` only touches the atomic counter.
        unsafe {
            params.set_start_encoder_callback(Some(begin));
            params.set_start_encoder_callback_user_data(
                &gate as *const Gate as *mut std::ffi::c_void,
            );
        }
        state.full(params, audio)
    }

    unsafe extern "C" fn begin(
        _: *mut whisper_context,
        _: *mut whisper_state,
        user: *mut std::ffi::c_void,
    ) -> bool {
        // SAFETY: `user` is the `Gate` that `full` installed, alive for the whole call.
        let gate = unsafe { &*(user as *const Gate) };
        gate.passes.fetch_add(1, Ordering::Relaxed) < gate.allowed
    }
}

/// Checks a language code against Whisper's list.
pub fn validate_language(code: &str) -> Result<()> {
    if code.contains('\0') || code == "auto" || whisper_rs::get_lang_id(code).is_none() {
        return Err(Error::BadInput(format!(
            "unknown language code `{code}`; use an ISO 639-1 code Whisper knows, e.g. en, ru, de, es"
        )));
    }
    Ok(())
}

/// Languages written without spaces between words: each token is its own "word" for timing purposes.
fn splits_per_character(lang: &str) -> bool {
    matches!(lang, "zh" | "ja" | "th" | "lo" | "my" | "yue" | "km")
}

/// One recognised token, times relative to its chunk.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub bytes: Vec<u8>,
    pub t0_ms: u64,
    pub t1_ms: u64,
    pub p: f32,
    pub plog: f32,
}

/// Groups byte-level tokens into words: a word starts at a token beginning with a space (Whisper's word marker);
/// tokens without one (punctuation, word pieces, the second half of a multi-byte character) continue the current
/// word. Byte sequences are joined before UTF-8 decoding, so a Cyrillic letter split across tokens survives.
pub fn group_words(tokens: &[TokenInfo], per_token: bool) -> Vec<Word> {
    struct Acc {
        bytes: Vec<u8>,
        start: u64,
        end: u64,
        p_sum: f32,
        n: u32,
    }
    let mut words: Vec<Word> = Vec::new();
    let mut cur: Option<Acc> = None;
    let flush = |acc: Acc, words: &mut Vec<Word>| {
        let text = String::from_utf8_lossy(&acc.bytes).into_owned();
        if text.trim().is_empty() {
            return;
        }
        words.push(Word {
            text,
            start_ms: acc.start,
            end_ms: acc.end.max(acc.start),
            prob: acc.p_sum / acc.n.max(1) as f32,
        });
    };
    for t in tokens {
        let starts_word = t.bytes.first() == Some(&b' ');
        let complete_utf8 = cur
            .as_ref()
            .is_none_or(|c| std::str::from_utf8(&c.bytes).is_ok());
        let new_word = cur.is_none() || starts_word || (per_token && complete_utf8);
        if new_word {
            if let Some(acc) = cur.take() {
                flush(acc, &mut words);
            }
            cur = Some(Acc {
                bytes: t.bytes.clone(),
                start: t.t0_ms,
                end: t.t1_ms,
                p_sum: t.p,
                n: 1,
            });
        } else if let Some(acc) = cur.as_mut() {
            acc.bytes.extend_from_slice(&t.bytes);
            acc.end = acc.end.max(t.t1_ms);
            acc.p_sum += t.p;
            acc.n += 1;
        }
    }
    if let Some(acc) = cur.take() {
        flush(acc, &mut words);
    }
    words
}

/// A decoded segment with the signals the guards look at.
#[derive(Clone, Debug)]
pub struct SegmentWords {
    pub words: Vec<Word>,
    pub no_speech_prob: f32,
    pub avg_logprob: f32,
}

fn normalise(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<String>()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Drops what Whisper tends to invent, returns the words kept and the number of segments dropped:
/// - segments Whisper itself believes are not speech (no-speech probability > 0.6 with average log-probability
///   < -1, OpenAI's rule);
/// - a segment repeating the text of the segment just before it with low confidence (the classic loop);
/// - runaway repetition inside a segment (the same 1-4 word phrase more than 3 times in a row is cut to one);
/// - words lying entirely outside the detected speech.
pub fn guard_segments(segments: Vec<SegmentWords>, speech: &[Span]) -> (Vec<Word>, usize) {
    let mut out: Vec<Word> = Vec::new();
    let mut dropped = 0;
    let mut prev_norm = String::new();
    for seg in segments {
        let norm = normalise(&seg.words);
        if norm.is_empty() {
            continue;
        }
        if seg.no_speech_prob > 0.6 && seg.avg_logprob < -1.0 {
            dropped += 1;
            continue;
        }
        // A segment that repeats the one before it is the classic loop, unless Whisper is sure of it (people do
        // say the same thing twice).
        if norm == prev_norm && (seg.avg_logprob < -0.5 || seg.no_speech_prob > 0.2) {
            dropped += 1;
            continue;
        }
        prev_norm = norm;
        let words = collapse_repeats(seg.words);
        for w in words {
            let inside = speech
                .iter()
                .any(|s| w.end_ms.max(w.start_ms + 1) > s.start_ms && w.start_ms < s.end_ms);
            if inside || speech.is_empty() {
                out.push(w);
            }
        }
    }
    // Timings must be monotonic for segmentation: clamp any word that starts before the previous one.
    for i in 1..out.len() {
        if out[i].start_ms < out[i - 1].start_ms {
            out[i].start_ms = out[i - 1].start_ms;
        }
        if out[i].end_ms < out[i].start_ms {
            out[i].end_ms = out[i].start_ms;
        }
    }
    (out, dropped)
}

/// Cuts a phrase of 1-4 words repeated more than 3 times in a row down to its first occurrence.
pub fn collapse_repeats(words: Vec<Word>) -> Vec<Word> {
    let key = |w: &Word| {
        w.text
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric())
            .collect::<String>()
    };
    let keys: Vec<String> = words.iter().map(key).collect();
    let mut keep = vec![true; words.len()];
    let mut i = 0;
    while i < words.len() {
        let mut advanced = false;
        for n in 1..=4usize {
            let mut reps = 1;
            while i + (reps + 1) * n <= words.len()
                && (0..n).all(|k| keys[i + k] == keys[i + reps * n + k] && !keys[i + k].is_empty())
            {
                reps += 1;
            }
            if reps > 3 {
                for k in keep.iter_mut().take(i + reps * n).skip(i + n) {
                    *k = false;
                }
                i += reps * n;
                advanced = true;
                break;
            }
        }
        if !advanced {
            i += 1;
        }
    }
    words
        .into_iter()
        .zip(keep)
        .filter_map(|(w, k)| k.then_some(w))
        .collect()
}

/// The whisper.cpp version compiled in, and its CPU features (`AVX2 = 1 | ...`).
pub fn backend_version() -> String {
    let info: String = whisper_rs::print_system_info()
        .split('|')
        .map(str::trim)
        .filter(|f| f.ends_with("= 1"))
        .map(|f| f.trim_end_matches(" = 1").trim())
        .collect::<Vec<_>>()
        .join(" ");
    format!("{} [{info}]", whisper_rs::get_whisper_version())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(s: &[u8], t0: u64, t1: u64) -> TokenInfo {
        TokenInfo {
            bytes: s.to_vec(),
            t0_ms: t0,
            t1_ms: t1,
            p: 0.9,
            plog: -0.1,
        }
    }
    fn w(text: &str, s: u64, e: u64) -> Word {
        Word {
            text: text.into(),
            start_ms: s,
            end_ms: e,
            prob: 0.9,
        }
    }

    #[test]
    fn tokens_group_into_words_with_punctuation_attached() {
        let t = [
            tok(b" And", 0, 200),
            tok(b" so", 200, 400),
            tok(b",", 400, 420),
            tok(b" Amer", 500, 700),
            tok(b"icans", 700, 900),
        ];
        let words = group_words(&t, false);
        let texts: Vec<_> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, [" And", " so,", " Americans"]);
        assert_eq!((words[2].start_ms, words[2].end_ms), (500, 900));
    }

    #[test]
    fn cyrillic_split_across_tokens_survives() {
        let word = " привет".as_bytes();
        // Split inside the two-byte encoding of "и".
        let t = [tok(&word[..5], 0, 100), tok(&word[5..], 100, 200)];
        let words = group_words(&t, false);
        assert_eq!(words.len(), 1);
        assert_eq!(words[0].text, " привет");
    }

    #[test]
    fn per_character_languages_split_tokens_at_char_boundaries() {
        let s = "你好".as_bytes();
        let t = [
            tok(&s[..2], 0, 100),
            tok(&s[2..3], 100, 150),
            tok(&s[3..], 150, 300),
        ];
        let words = group_words(&t, true);
        let texts: Vec<_> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, ["你", "好"]);
    }

    #[test]
    fn repeated_segment_is_dropped_unless_confident() {
        let speech = [Span {
            start_ms: 0,
            end_ms: 100_000,
        }];
        let a = SegmentWords {
            words: vec![w(" Thank", 0, 300), w(" you.", 300, 600)],
            no_speech_prob: 0.0,
            avg_logprob: -0.2,
        };
        let mut b = a.clone();
        for x in &mut b.words {
            x.start_ms += 5000;
            x.end_ms += 5000;
        }
        // Said twice, clearly: kept.
        let (words, dropped) = guard_segments(vec![a.clone(), b.clone()], &speech);
        assert_eq!((words.len(), dropped), (4, 0));
        // Repeated with low confidence: a loop, dropped.
        b.avg_logprob = -0.9;
        let (words, dropped) = guard_segments(vec![a, b], &speech);
        assert_eq!((words.len(), dropped), (2, 1));
    }

    #[test]
    fn no_speech_segment_is_dropped_and_words_outside_speech_too() {
        let speech = [Span {
            start_ms: 1000,
            end_ms: 2000,
        }];
        let silent = SegmentWords {
            words: vec![w(" Subscribe!", 1000, 1500)],
            no_speech_prob: 0.9,
            avg_logprob: -1.5,
        };
        let outside = SegmentWords {
            words: vec![w(" hello", 1200, 1500), w(" there", 5000, 5200)],
            no_speech_prob: 0.1,
            avg_logprob: -0.3,
        };
        let (words, dropped) = guard_segments(vec![silent, outside], &speech);
        assert_eq!(dropped, 1);
        assert_eq!(words.len(), 1);
        assert_eq!(words[0].text, " hello");
    }

    fn seg(words: Vec<Word>) -> SegmentWords {
        SegmentWords {
            words,
            no_speech_prob: 0.0,
            avg_logprob: -0.2,
        }
    }

    #[test]
    fn clean_group_drops_segments_and_trailing_words_over_silence() {
        // Voice from 0 to 1 s only (20 ms frames), silence until 3 s.
        let voice = VoiceMap {
            frame_ms: 20,
            voiced: (0..150).map(|i| i < 50).collect(),
        };
        let mut segs = vec![
            seg(vec![w(" hello", 100, 400), w(" there.", 400, 900)]),
            seg(vec![
                w(" for", 1000, 1100),
                w(" the", 1500, 1600),
                w(" people.", 2000, 2300),
            ]),
            seg(vec![w(" Subscribe!", 2400, 2900)]),
        ];
        let dropped = clean_group(&voice, &mut segs);
        // The segment entirely over silence goes; the trailing unvoiced words of the (new) last segment go, but
        // never its first word, whose time is near the voice.
        assert_eq!(segs[2].words.len(), 0);
        let texts: Vec<_> = segs[1].words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, [" for"]);
        assert_eq!(dropped, 3);
        assert_eq!(segs[0].words.len(), 2);
    }

    #[test]
    fn runaway_repetition_is_collapsed() {
        let mut words = vec![w(" I", 0, 10), w(" said", 10, 20)];
        for i in 0..6 {
            words.push(w(" thank", 100 + i * 20, 110 + i * 20));
            words.push(w(" you", 110 + i * 20, 120 + i * 20));
        }
        words.push(w(" end", 500, 510));
        let out = collapse_repeats(words);
        let text: String = out.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(text, " I said thank you end");
    }

    #[test]
    fn ordinary_repeats_are_kept() {
        let words = vec![w(" no", 0, 1), w(" no", 1, 2), w(" no", 2, 3)];
        assert_eq!(collapse_repeats(words).len(), 3);
    }

    #[test]
    fn a_window_decoded_to_its_end_is_followed_by_the_next() {
        // Decoded to 14.2 s of a 15 s window: the rest is under a second.
        assert_eq!(next_window_start(0, 15_000, 14_200, 400), 15_000);
        // Stopped at 9 s with voice left: the next window starts there.
        assert_eq!(next_window_start(30_000, 45_000, 9_000, 2_000), 39_000);
        // Stopped early over silence: nothing to redo.
        assert_eq!(next_window_start(0, 15_000, 9_000, 200), 15_000);
        // Stopped almost at once (music, a hallucination): no cascade of passes, the window is done.
        assert_eq!(next_window_start(0, 15_000, 1_200, 8_000), 15_000);
        // A timestamp past the window counts as the end.
        assert_eq!(next_window_start(0, 15_000, 29_000, 8_000), 15_000);
    }

    #[test]
    fn language_detection_hears_speech_across_groups() {
        let g = |a: u64, b: u64| Chunk {
            pieces: vec![Span {
                start_ms: a,
                end_ms: b,
            }],
        };
        // A 1 s "Hi." then, after a long pause, more speech.
        let c = detection_chunk(&[g(0, 1_000), g(10_000, 30_000), g(40_000, 50_000)], 15_000);
        assert_eq!(c.pieces.len(), 2);
        assert_eq!(c.len_ms(), 21_000);
    }

    #[test]
    fn language_codes_are_validated() {
        assert!(validate_language("ru").is_ok());
        assert!(validate_language("xx").is_err());
        assert!(validate_language("auto").is_err());
    }

    #[test]
    fn encoder_contexts_are_aligned_cover_the_window_and_stay_within_whisper() {
        // 10 s minimum: 500 positions, rounded up to 504.
        assert_eq!(audio_ctx_for(0), 504);
        assert_eq!(audio_ctx_for(7_200), 504);
        // 13.5 s + 1 s of tail = 725 positions -> 728; 11 s + 1 s = 600, already aligned.
        assert_eq!(audio_ctx_for(13_500), 728);
        assert_eq!(audio_ctx_for(11_000), 600);
        for len in (0..40_000).step_by(37) {
            let ctx = audio_ctx_for(len) as u64;
            assert!(ctx <= 1500, "{len}: {ctx}");
            if ctx < 1500 {
                assert_eq!(ctx % CTX_ALIGN, 0, "{len}: {ctx}");
                assert!(ctx * 20 >= len + CTX_TAIL_MS, "{len}: {ctx}");
            }
        }
        assert_eq!(audio_ctx_for(60_000), 1500);
    }
}
