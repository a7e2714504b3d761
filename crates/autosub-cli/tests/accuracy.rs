//! Real Whisper inference on the real speech of the shared corpus: accuracy, word timings, hallucination guards.

mod common;
use common::*;

/// Word error rate over all English clips of the corpus must stay under this (measured: see docs/PERFORMANCE.md).
const MAX_ENGLISH_WER: f64 = 0.10;

#[test]
fn jfk_is_word_perfect() {
    let c = corpus().join("speech/en");
    let doc = transcribe_json(&c.join("en_jfk_inaugural_1961.wav"), &[]);
    let reference = std::fs::read_to_string(c.join("en_jfk_inaugural_1961.txt")).unwrap();
    assert_eq!(doc["language"], "en");
    assert_eq!(
        norm_words(&doc_text(&doc)),
        norm_words(&reference),
        "text: {}",
        doc_text(&doc)
    );
}

#[test]
fn english_word_error_rate_is_low() {
    let dir = corpus().join("speech/en");
    let mut clips: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    clips.sort();
    assert!(clips.len() >= 4);
    let (mut errors, mut total) = (0usize, 0usize);
    eprintln!("{:<40} {:>6} {:>6} {:>7}", "clip", "words", "errors", "WER");
    for clip in &clips {
        let reference = norm_words(&std::fs::read_to_string(clip.with_extension("txt")).unwrap());
        let doc = transcribe_json(clip, &["--lang", "en"]);
        let hyp = norm_words(&doc_text(&doc));
        let e = edit_distance(&reference, &hyp);
        eprintln!(
            "{:<40} {:>6} {:>6} {:>6.1}%",
            clip.file_name().unwrap().to_string_lossy(),
            reference.len(),
            e,
            100.0 * e as f64 / reference.len() as f64
        );
        errors += e;
        total += reference.len();
    }
    let wer = errors as f64 / total as f64;
    eprintln!("English WER: {:.2}% ({errors}/{total})", 100.0 * wer);
    assert!(
        wer <= MAX_ENGLISH_WER,
        "English WER {:.1}% is above {:.0}%",
        100.0 * wer,
        100.0 * MAX_ENGLISH_WER
    );
}

#[test]
fn german_is_detected_and_transcribed() {
    let c = corpus().join("speech/de");
    let doc = transcribe_json(&c.join("de_picovoice_de.wav"), &[]);
    assert_eq!(doc["language"], "de");
    let reference = norm_words(&std::fs::read_to_string(c.join("de_picovoice_de.txt")).unwrap());
    let hyp = norm_words(&doc_text(&doc));
    let e = edit_distance(&reference, &hyp);
    eprintln!(
        "de: {} -> WER {:.1}%",
        doc_text(&doc),
        100.0 * e as f64 / reference.len() as f64
    );
    // Whisper base on this 5 s clip: 4 errors in 10 words ("liegt in der" for "liegenden", "Leichenhalder").
    assert!(
        e * 100 / reference.len() <= 50,
        "German WER too high: {}",
        doc_text(&doc)
    );
}

/// Word start times against the pinned word timings of another engine on the quilter clip.
#[test]
fn word_start_times_match_reference_timings() {
    let c = corpus().join("speech/en");
    let doc = transcribe_json(&c.join("en_librispeech_quilter.wav"), &["--lang", "en"]);
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(c.join("en_librispeech_quilter.words.json")).unwrap(),
    )
    .unwrap();
    let refw: Vec<(String, f64)> = reference["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                norm_words(w["word"].as_str().unwrap()).join(""),
                w["start_sec"].as_f64().unwrap() * 1000.0,
            )
        })
        .collect();
    let ours: Vec<(String, f64)> = doc["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                norm_words(w["text"].as_str().unwrap()).join(""),
                w["start_ms"].as_f64().unwrap(),
            )
        })
        .collect();
    // Pair words with equal text in order.
    let mut j = 0;
    let mut diffs = Vec::new();
    for (text, t) in &refw {
        if let Some(k) = ours[j..].iter().position(|(o, _)| o == text) {
            diffs.push((ours[j + k].1 - t).abs());
            j += k + 1;
        }
    }
    assert!(
        diffs.len() * 10 >= refw.len() * 8,
        "too few words matched: {} of {}",
        diffs.len(),
        refw.len()
    );
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let worst = diffs.iter().cloned().fold(0.0, f64::max);
    eprintln!(
        "word start error vs reference: mean {mean:.0} ms, worst {worst:.0} ms over {} words",
        diffs.len()
    );
    // Measured 156 ms with base-q8_0 (Whisper's own token timestamps, tightened to the voice; 171 ms before
    // tightening), worst 360 ms.
    assert!(mean <= 200.0, "mean word start error {mean:.0} ms");
    assert!(worst <= 500.0, "worst word start error {worst:.0} ms");
}

/// Speech, 25 s of silence, the same speech again: nothing may be invented in the silence, and the second half's
/// timestamps must not drift.
#[test]
fn long_silence_produces_no_text_and_no_drift() {
    let c = corpus().join("speech/en/en_jfk_inaugural_1961.wav");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("gap.wav");
    let c = c.to_str().unwrap();
    ffmpeg(&[
        "-i",
        c,
        "-f",
        "lavfi",
        "-t",
        "25",
        "-i",
        "anullsrc=r=16000:cl=mono",
        "-i",
        c,
        "-filter_complex",
        "[0:a][1:a][2:a]concat=n=3:v=0:a=1",
        input.to_str().unwrap(),
    ]);
    let doc = transcribe_json(&input, &[]);
    let words = doc["words"].as_array().unwrap();
    let first_len = 11_000.0;
    let second_start = first_len + 25_000.0;
    let in_gap: Vec<_> = words
        .iter()
        .filter(|w| {
            let s = w["start_ms"].as_f64().unwrap();
            s > first_len + 500.0 && s < second_start - 500.0
        })
        .collect();
    assert!(in_gap.is_empty(), "words invented in silence: {in_gap:?}");
    let text = norm_words(&doc_text(&doc));
    let reference = norm_words("And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.");
    let twice: Vec<String> = reference.iter().chain(reference.iter()).cloned().collect();
    assert_eq!(text, twice);
    // No drift: the second half's words start where the first half's did, plus 36 s (median over all words;
    // single word times jitter by a few hundred ms, as Whisper's timestamps do).
    let starts: Vec<f64> = words
        .iter()
        .map(|w| w["start_ms"].as_f64().unwrap())
        .collect();
    let n = reference.len();
    let mut diffs: Vec<f64> = (0..n)
        .map(|i| starts[n + i] - starts[i] - second_start)
        .collect();
    diffs.sort_by(|a, b| a.total_cmp(b));
    let drift = diffs[n / 2];
    eprintln!("median drift after 25 s of silence: {drift:.0} ms (per word: {diffs:?})");
    assert!(drift.abs() <= 150.0, "second half drifted by {drift} ms");
    assert!(
        starts[n] >= second_start - 400.0,
        "second half starts early: {}",
        starts[n]
    );
}

/// The 60 s Russian recording: forced language, plausible Cyrillic text, no runaway repetition, cues lint-clean.
#[test]
fn russian_sixty_seconds() {
    let clip = corpus().join("speech/untranscribed/ru_silero_vad_60s.wav");
    let doc = transcribe_json(&clip, &["--lang", "ru"]);
    let text = doc_text(&doc);
    eprintln!("ru: {text}");
    let words = norm_words(&text);
    assert!(words.len() > 60, "too few words: {}", words.len());
    let cyrillic = text
        .chars()
        .filter(|c| ('а'..='я').contains(&c.to_lowercase().next().unwrap()))
        .count();
    assert!(cyrillic * 2 > text.chars().filter(|c| c.is_alphabetic()).count());
    // No phrase of 1-3 words repeated more than 3 times in a row.
    for n in 1..=3 {
        for start in 0..words.len().saturating_sub(n) {
            let mut reps = 1;
            while start + (reps + 1) * n <= words.len()
                && words[start + reps * n..start + (reps + 1) * n] == words[start..start + n]
            {
                reps += 1;
            }
            assert!(
                reps <= 3,
                "repetition loop at word {start}: {:?} x{reps}",
                &words[start..start + n]
            );
        }
    }
}
