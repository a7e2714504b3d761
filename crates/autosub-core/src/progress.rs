//! One object carries progress reports, warnings and cancellation for every stage: the [`Sink`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A pipeline stage, for progress display and the per-stage timings in the JSON output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Probe,
    ExtractAudio,
    DetectSpeech,
    Transcribe,
    Segment,
    Write,
    Render,
    Translate,
    Download,
    Convert,
    Voiceover,
}

impl Stage {
    /// Stable identifier used in JSON output (`timings_ms`) and logs.
    pub fn id(self) -> &'static str {
        match self {
            Stage::Probe => "probe",
            Stage::ExtractAudio => "extract_audio",
            Stage::DetectSpeech => "detect_speech",
            Stage::Transcribe => "transcribe",
            Stage::Segment => "segment",
            Stage::Write => "write",
            Stage::Render => "render",
            Stage::Translate => "translate",
            Stage::Download => "download",
            Stage::Convert => "convert",
            Stage::Voiceover => "voiceover",
        }
    }

    /// Human label for progress bars.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Probe => "probe",
            Stage::ExtractAudio => "extract audio",
            Stage::DetectSpeech => "detect speech",
            Stage::Transcribe => "transcribe",
            Stage::Segment => "segment",
            Stage::Write => "write",
            Stage::Render => "render video",
            Stage::Translate => "translate",
            Stage::Download => "download",
            Stage::Convert => "convert",
            Stage::Voiceover => "voice-over",
        }
    }
}

/// What a stage reports while it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Event<'a> {
    /// A stage starts. `total` is the amount of work in the stage's own unit (milliseconds of media for media
    /// stages, bytes for downloads), when known.
    Start { stage: Stage, total: Option<u64> },
    /// Work done so far in the stage, in the same unit as `total`.
    Progress { stage: Stage, done: u64 },
    /// The stage ended successfully after `elapsed`.
    Finish { stage: Stage, elapsed: Duration },
    /// Something the user should know that does not stop the run.
    Warning(&'a str),
    /// A fact worth telling as it happens (the title of a downloaded link); not a problem.
    Note(&'a str),
    /// Diagnostic detail (an external command line, a model path); shown with `--verbose`.
    Debug(&'a str),
}

/// Receives progress and decides cancellation. Stages call [`Sink::event`] as they go and poll
/// [`Sink::is_cancelled`] often (at least every few hundred milliseconds); a cancelled stage stops its child
/// processes, removes its partial output and returns [`crate::Error::Cancelled`].
pub trait Sink: Sync {
    fn event(&self, event: Event<'_>);
    fn is_cancelled(&self) -> bool {
        false
    }
}

/// A sink that ignores everything and never cancels.
pub struct NullSink;

impl Sink for NullSink {
    fn event(&self, _event: Event<'_>) {}
}

/// A sink that only carries a cancellation flag (e.g. set from a Ctrl-C handler) and forwards events.
pub struct CancelFlag<'a, S: Sink + ?Sized> {
    pub inner: &'a S,
    pub flag: &'a AtomicBool,
}

impl<S: Sink + ?Sized> Sink for CancelFlag<'_, S> {
    fn event(&self, event: Event<'_>) {
        self.inner.event(event)
    }
    fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed) || self.inner.is_cancelled()
    }
}

/// Runs `f` as stage `stage`: emits Start and Finish around it and returns its result with the elapsed time.
pub fn run_stage<T, E>(
    sink: &dyn Sink,
    stage: Stage,
    total: Option<u64>,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<(T, Duration), E> {
    let t0 = std::time::Instant::now();
    sink.event(Event::Start { stage, total });
    let out = f()?;
    let elapsed = t0.elapsed();
    sink.event(Event::Finish { stage, elapsed });
    Ok((out, elapsed))
}
