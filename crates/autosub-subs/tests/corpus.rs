//! Segmentation of words recognised from real English speech, at its own speed and sped up 1.3 and 1.5 times
//! (`tests/data/corpus-words`, see its README).

use std::path::Path;

mod common;
use autosub_subs::{lint, parse_json, segment, Profile, Rule, Word};
use common::had_room;

fn corpus() -> Vec<(String, Vec<Word>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corpus-words");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let docs: Vec<(String, Vec<Word>)> = files
        .iter()
        .map(|p| {
            let doc = parse_json(&std::fs::read_to_string(p).unwrap()).unwrap();
            assert!(!doc.words.is_empty(), "{}", p.display());
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                doc.words,
            )
        })
        .collect();
    assert_eq!(docs.len(), 12, "4 clips at 3 speeds");
    docs
}

/// `(cues, cues with a violation)` over the corpus for `p`, after checking what must always hold.
fn cut(p: &Profile) -> (usize, Vec<String>) {
    let mut cues_total = 0;
    let mut flagged = Vec::new();
    for (name, words) in corpus() {
        let cues = segment(&words, p);
        let back: Vec<Word> = cues.iter().flat_map(|c| c.words.clone()).collect();
        assert_eq!(back, words, "{name}: words kept, in order");
        for c in &cues {
            assert!(c.start_ms <= c.words[0].start_ms, "{name}: {c:?}");
        }
        let violations = lint(&cues, p);
        for v in &violations {
            // Speech too fast for the profile is the only thing lint may report; layout is the segmenter's.
            assert!(
                matches!(v.rule, Rule::TooFast | Rule::TooShort),
                "{name}: {v}"
            );
            // ... and only where nothing could give the cue its time.
            assert!(
                !had_room(&cues, v.cue - 1, p),
                "{name}: {v}, but the next cue starts late enough: {:#?}",
                &cues[v.cue - 1..]
            );
        }
        let mut bad: Vec<usize> = violations.iter().map(|v| v.cue).collect();
        bad.dedup();
        flagged.extend(bad.iter().map(|n| format!("{name} #{n}")));
        cues_total += cues.len();
    }
    (cues_total, flagged)
}

#[test]
fn corpus_standard_cues_break_the_profile_only_where_speech_is_too_fast() {
    let (cues, flagged) = cut(&Profile::standard());
    // Every clip's first cue at 1.3x and 1.5x: the speech starts within 50 ms of the file's start, so the cue
    // cannot start early, and its words come faster than 17 characters per second up to the next cue.
    assert_eq!(cues, 24);
    assert_eq!(
        flagged,
        [
            "en_librispeech_quilter_x1.3.json #1",
            "en_librispeech_quilter_x1.5.json #1",
            "en_ljspeech_LJ001-0001_x1.3.json #1",
            "en_ljspeech_LJ001-0001_x1.5.json #1",
            "en_ljspeech_LJ001-0003_x1.3.json #1",
            "en_ljspeech_LJ001-0003_x1.5.json #1",
        ]
    );
}

#[test]
fn corpus_shorts_cues_are_all_within_the_profile() {
    // Before the segmenter searched more than the cheapest cuts for fast speech, "the wood cutters of" in
    // LJ001-0003 at 1.5x was read at 26 characters per second (max 25).
    let (cues, flagged) = cut(&Profile::shorts());
    assert_eq!(cues, 90);
    assert!(flagged.is_empty(), "{flagged:?}");
}

#[test]
fn corpus_shorts_fast_clip_is_cut_where_every_cue_gets_its_time() {
    let (_, words) = corpus()
        .into_iter()
        .find(|(n, _)| n == "en_ljspeech_LJ001-0003_x1.5.json")
        .unwrap();
    let p = Profile::shorts();
    let cues = segment(&words, &p);
    let texts: Vec<String> = cues.iter().map(|c| c.text()).collect();
    assert_eq!(
        texts,
        [
            "Although the Chinese",
            "took impressions",
            "from wood blocks",
            "and graved",
            "in relief for",
            "centuries before",
            "the wood cutters",
            "of the Netherlands",
            "by a similar process,",
        ]
    );
    assert!(lint(&cues, &p).is_empty());
}
