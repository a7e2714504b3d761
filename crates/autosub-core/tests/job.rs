//! The job boundary (`autosub_core::job`) on the real sample, without the CLI: the model loaded once per process,
//! a tier's limit refused on the probed file naming the plan, cancellation, a newer job format refused, and the
//! error's three faces (user, operator, retry).

use autosub_core::job::{self, Job, JobEnv, JobInput, Recognizers};
use autosub_core::media::Tools;
use autosub_core::progress::{Event, NullSink, Sink};
use autosub_core::{Error, ErrorKind};
use std::path::PathBuf;
use std::sync::Arc;

const MODEL: &str = "base-q8_0";

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sample.mp4")
}

fn env() -> JobEnv {
    let models = autosub_core::models::models_dir(None);
    assert!(
        autosub_core::models::resolve(&models, MODEL).is_ok(),
        "the {MODEL} model is not installed in {}: run scripts/setup.sh",
        models.display()
    );
    let tmp = std::env::temp_dir().join("autosub-job-test-cache");
    JobEnv::new(
        models,
        Tools::default(),
        job::FetchEnv {
            cache_dir: tmp,
            policy: Default::default(),
            ytdlp: "yt-dlp".into(),
        },
    )
}

fn sample_job() -> Job {
    let mut j = Job::new(JobInput::File { path: sample() });
    j.asr.model = MODEL.into();
    j.video = None;
    j.formats = vec![autosub_subs::Format::Srt];
    j
}

#[test]
fn the_model_is_loaded_once_and_shared_by_the_jobs_of_a_process() {
    let env = env();
    let r = Recognizers::default();
    let (a, name) = r.get(&env.models_dir, MODEL, &NullSink).unwrap();
    let (b, _) = r.get(&env.models_dir, MODEL, &NullSink).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(r.len(), 1);
    assert_eq!(name, MODEL);
    // Two jobs through one environment: one model.
    let env = Arc::new(env);
    let out = tempfile::tempdir().unwrap();
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let env = env.clone();
            let dir = out.path().join(i.to_string());
            std::thread::spawn(move || job::run(&sample_job(), &env, &dir, &NullSink).unwrap())
        })
        .collect();
    let outs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(env.recognizers.len(), 1);
    assert_eq!(
        std::fs::read(&outs[0].files[0].1).unwrap(),
        std::fs::read(&outs[1].files[0].1).unwrap()
    );
}

#[test]
fn a_tier_limit_is_checked_on_the_probed_file_and_names_the_plan() {
    let env = env();
    let mut j = sample_job();
    j.limits = job::JobLimits {
        max_duration_s: Some(5),
        plan: Some("the FREE plan".into()),
        upgrade_hint: Some("PRO allows 10 min".into()),
        ..Default::default()
    };
    let out = tempfile::tempdir().unwrap();
    let e = job::run(&j, &env, out.path(), &NullSink).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadInput);
    assert!(!e.retryable());
    assert_eq!(
        e.user_message(),
        "the media is 11 s long, the most is 5 s: over the limit of the FREE plan (PRO allows 10 min)"
    );
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none());
    j.limits.max_duration_s = None;
    j.limits.max_filesize = Some(1000);
    let e = job::run(&j, &env, out.path(), &NullSink).unwrap_err();
    assert!(
        e.user_message()
            .starts_with("the file is 0.2 MB, the most is 0.0 MB"),
        "{e}"
    );
}

/// Cancels as soon as a stage starts.
struct CancelAtStart(std::sync::atomic::AtomicBool);
impl Sink for CancelAtStart {
    fn event(&self, e: Event<'_>) {
        if let Event::Start { .. } = e {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn a_cancelled_job_stops_and_writes_nothing() {
    let env = env();
    let out = tempfile::tempdir().unwrap();
    let sink = CancelAtStart(Default::default());
    let e = job::run(&sample_job(), &env, out.path(), &sink).unwrap_err();
    assert!(matches!(e, Error::Cancelled), "{e}");
    assert_eq!(e.user_message(), "cancelled");
    assert!(std::fs::read_dir(out.path()).unwrap().next().is_none());
}

#[test]
fn errors_tell_the_user_the_operator_and_the_queue_apart() {
    let net = Error::Network {
        program: "yt-dlp".into(),
        message: "HTTP Error 503".into(),
    };
    assert!(net.retryable());
    assert!(net.user_message().contains("network"));
    assert!(net.operator_hint().unwrap().contains("503"));
    let missing = Error::ProgramMissing {
        program: "ffmpeg".into(),
        package: "ffmpeg".into(),
    };
    assert!(!missing.retryable());
    // The user does not read install commands; the operator does.
    assert!(!missing.user_message().contains("apt-get"));
    assert!(missing
        .operator_hint()
        .unwrap()
        .contains("apt-get install ffmpeg"));
    let bad = Error::BadInput("not a video".into());
    assert_eq!(
        (bad.user_message().as_str(), bad.operator_hint()),
        ("not a video", None)
    );
    let partial = Error::Partial {
        done: "the originals were written".into(),
        source: Box::new(net),
    };
    assert!(partial.retryable());
    assert_eq!(partial.kind(), ErrorKind::Internal);
    // A newer job format is refused, not misread.
    let mut j = sample_job();
    j.version = job::JOB_VERSION + 1;
    let e = job::run(&j, &env(), std::path::Path::new("/nonexistent"), &NullSink).unwrap_err();
    assert!(e.to_string().contains("newer AutoSub"), "{e}");
}
