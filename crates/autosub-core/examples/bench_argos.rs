//! Benchmark of the `argos` translator: 500 subtitle lines through an installed Argos package with 1 and 2
//! threads, in the real path (`translate::translate_words`: sentences out, translation, retiming and re-cutting),
//! with the time inside the translator and the time of the re-segmentation around it measured apart.
//!
//!     cargo run --release -p autosub-core --features argos --example bench_argos -- MODELS_DIR LINES_FILE [MIN_LEN]
//!
//! `LINES_FILE`: one subtitle line per line (500 are used); `MIN_LEN`: CTranslate2's `min_decoding_length` (with
//! a generated model biased to stop, every output is exactly that long). Prints one JSON object per thread count.
//! scripts/bench/argos.sh builds the full-size generated package and the lines, runs this and the Python
//! CTranslate2 baseline, and writes docs/PERFORMANCE.md.

use autosub_core::progress::{NullSink, Sink};
use autosub_core::translate::argos::{ArgosOptions, ArgosTranslator};
use autosub_core::translate::{translate_words, Translator};
use autosub_subs::{Profile, Word};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wraps a translator and adds up the time spent inside it.
struct Timed<'a> {
    inner: &'a dyn Translator,
    spent: Mutex<Duration>,
    pieces_out: Mutex<usize>,
}

impl Translator for Timed<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn translate(
        &self,
        texts: &[String],
        from: &str,
        to: &str,
        sink: &dyn Sink,
    ) -> autosub_core::Result<Vec<String>> {
        let t0 = Instant::now();
        let r = self.inner.translate(texts, from, to, sink);
        *self.spent.lock().unwrap() += t0.elapsed();
        if let Ok(v) = &r {
            *self.pieces_out.lock().unwrap() += v
                .iter()
                .map(|t| t.split_whitespace().count())
                .sum::<usize>();
        }
        r
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let models = std::path::Path::new(&args[1]);
    let lines: Vec<String> = std::fs::read_to_string(&args[2])
        .expect("lines file")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(500)
        .map(str::to_owned)
        .collect();
    let (from, to) = ("en", "ru");
    let min_len: usize = args.get(3).map_or(1, |s| s.parse().expect("MIN_LEN"));
    // Each line a sentence of its own, timed at a natural pace (words 300 ms apart, 1 s between lines).
    let mut words = Vec::new();
    let mut t = 0u64;
    for line in &lines {
        let ws: Vec<&str> = line.split_whitespace().collect();
        for (i, w) in ws.iter().enumerate() {
            let last = i + 1 == ws.len();
            let text = if last && !w.ends_with(['.', '!', '?']) {
                format!(" {w}.")
            } else {
                format!(" {w}")
            };
            words.push(Word {
                text,
                start_ms: t,
                end_ms: t + 250,
                prob: 0.9,
            });
            t += 300;
        }
        t += 1000;
    }
    let profile = Profile::standard();
    for threads in [1usize, 2] {
        let engine = ArgosTranslator::new(
            models,
            ArgosOptions {
                threads,
                min_decoding_length: min_len,
                ..Default::default()
            },
        );
        // Load the package (and warm up) outside the measurement.
        engine
            .translate(&lines[..4], from, to, &NullSink)
            .expect("translate");
        let timed = Timed {
            inner: &engine,
            spent: Mutex::new(Duration::ZERO),
            pieces_out: Mutex::new(0),
        };
        let t0 = Instant::now();
        let (out_words, cues) =
            translate_words(&words, from, to, &timed, &profile, &NullSink).expect("translate");
        let total = t0.elapsed().as_secs_f64();
        let spent = timed.spent.lock().unwrap().as_secs_f64();
        let reseg = total - spent;
        println!(
            "{{\"threads\": {threads}, \"lines\": {}, \"translate_s\": {spent:.3}, \"lines_per_s\": {:.2}, \
             \"resegment_ms\": {:.2}, \"resegment_share_pct\": {:.4}, \"words_out\": {}, \"cues\": {}}}",
            lines.len(),
            lines.len() as f64 / spent,
            reseg * 1000.0,
            100.0 * reseg / spent,
            out_words.len(),
            cues.len()
        );
    }
}
