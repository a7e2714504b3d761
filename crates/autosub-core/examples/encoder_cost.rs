#![allow(unsafe_code)]
//! Measures whisper.cpp's encoder pass (and one decoder step) against the encoder context (`audio_ctx`), the
//! figures behind the recogniser's window sizes (docs/DECISIONS.md, "Speech groups, cut into windows").
//!
//!     ffmpeg -i speech.wav -ac 1 -ar 16000 -f f32le speech.f32
//!     cargo run --release -p autosub-core --example encoder_cost -- MODEL.bin speech.f32 [THREADS]
//!
//! For each context (1500 = 30 s, the model's own, down to 300 = 6 s): the time of one encoder pass, of language
//! detection (which runs its own pass), and of one single-token decoder step.

use std::time::Instant;
use whisper_rs::whisper_rs_sys::{whisper_context, whisper_state};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

/// Stops `full()` before its first encoder pass: the call then only sets the state's mel and context.
unsafe extern "C" fn no_encoder_pass(
    _: *mut whisper_context,
    _: *mut whisper_state,
    _: *mut std::ffi::c_void,
) -> bool {
    false
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (model, raw) = (&args[1], std::fs::read(&args[2]).expect("f32le samples"));
    let threads: usize = args.get(3).map_or(2, |t| t.parse().expect("threads"));
    let samples: Vec<f32> = raw
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let first = &samples[..samples.len().min(16_000 * 30)];
    whisper_rs::install_logging_hooks();
    let ctx =
        WhisperContext::new_with_params(model, WhisperContextParameters::default()).expect("model");
    let mut state = ctx.create_state().expect("state");
    let (sot, en, transcribe) = (
        ctx.token_sot(),
        ctx.token_lang(whisper_rs::get_lang_id("en").unwrap()),
        ctx.token_transcribe(),
    );
    println!("audio_ctx  seconds  encode (s)  lang_detect (s)  decode step (ms)");
    // 1500 twice: the first pass warms up.
    for actx in [1500, 1500, 1000, 750, 500, 300] {
        let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        p.set_language(Some("en"));
        p.set_n_threads(threads as i32);
        p.set_audio_ctx(actx);
        // SAFETY: the callback touches nothing; no user data.
        unsafe { p.set_start_encoder_callback(Some(no_encoder_pass)) };
        let _ = state.full(p, first);
        let t = Instant::now();
        state.encode(0, threads).expect("encode");
        let enc = t.elapsed().as_secs_f64();
        let t = Instant::now();
        state.lang_detect(0, threads).expect("lang_detect");
        let detect = t.elapsed().as_secs_f64();
        state.encode(0, threads).expect("encode");
        state
            .decode(&[sot, en, transcribe], 0, threads)
            .expect("prompt");
        let t = Instant::now();
        for i in 0..50 {
            state
                .decode(&[440 + i], 3 + i as usize, threads)
                .expect("decode");
        }
        let step = t.elapsed().as_secs_f64() / 50.0 * 1000.0;
        println!(
            "{actx:>9}  {:>7.1}  {enc:>10.3}  {detect:>15.3}  {step:>16.1}",
            actx as f64 / 50.0
        );
    }
}
