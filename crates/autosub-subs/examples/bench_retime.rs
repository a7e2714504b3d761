//! Benchmark of the translation re-segmentation: 500 subtitle lines' worth of words are merged into sentences,
//! each "translation" (the sentence with its words reversed and lengthened by a fifth, like a real translation's
//! different word order and length) is spread over its source timeline, and all of it is re-cut with the
//! standard profile. Prints the median of 20 runs in milliseconds (docs/PERFORMANCE.md).
//!
//!     cargo run --release -p autosub-subs --example bench_retime

use autosub_subs::{retime, segment, Profile, Word};
use std::time::Instant;

fn main() {
    // 500 lines of about 7 words at a natural pace, with a sentence end every 2 lines and a pause every 10.
    let vocab = [
        "the", "country", "people", "ask", "what", "your", "can", "do", "for", "you", "we",
        "shall", "pay", "any", "price", "bear", "burden", "meet", "hardship", "support", "friend",
        "oppose", "foe",
    ];
    let mut words = Vec::new();
    let mut t = 0u64;
    for line in 0..500 {
        for k in 0..7 {
            let w = vocab[(line * 7 + k) % vocab.len()];
            let end_sentence = k == 6 && line % 2 == 1;
            let text = if end_sentence {
                format!(" {w}.")
            } else {
                format!(" {w}")
            };
            let dur = 120 + 40 * w.len() as u64;
            words.push(Word {
                text,
                start_ms: t,
                end_ms: t + dur,
                prob: 0.9,
            });
            t += dur + 60;
        }
        if line % 10 == 9 {
            t += 1200;
        }
    }
    let profile = Profile::standard();
    let mut runs = Vec::new();
    let mut cues = 0;
    for _ in 0..20 {
        let t0 = Instant::now();
        let sentences = retime::sentences(&words);
        let mut out = Vec::new();
        for s in &sentences {
            let mut parts: Vec<&str> = s.text.split(' ').rev().collect();
            let extra: Vec<&str> = parts.iter().take(parts.len() / 5).copied().collect();
            parts.extend(extra);
            out.extend(retime::spread(s, &parts.join(" ")));
        }
        cues = segment(&out, &profile).len();
        runs.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    runs.sort_by(f64::total_cmp);
    println!(
        "re-segmentation of 500 lines ({} words, {cues} cues): median {:.1} ms, min {:.1} ms over {} runs",
        words.len(),
        runs[runs.len() / 2],
        runs[0],
        runs.len()
    );
}
