mod common;

use autosub_subs::{lint, segment, wrap_text, Cue, Profile, Rule, Word};
use common::{had_room, speak, w, Rng};

fn texts(cues: &[Cue]) -> Vec<String> {
    cues.iter().map(|c| c.lines.join(" | ")).collect()
}

fn all_words(cues: &[Cue]) -> Vec<Word> {
    cues.iter().flat_map(|c| c.words.iter().cloned()).collect()
}

/// Checks the segmentation guarantees; returns a description of what failed.
fn check(words: &[Word], profile: &Profile) -> Result<Vec<Cue>, String> {
    let cues = segment(words, profile);
    if all_words(&cues) != words {
        return Err("words not preserved".into());
    }
    for c in &cues {
        let joined: String = c.words.iter().map(|w| w.text.as_str()).collect();
        let joined: String = joined.split_whitespace().collect();
        if c.lines.concat().replace(' ', "") != joined {
            return Err(format!("cue text {:?} != words {:?}", c.lines, joined));
        }
        if c.lines
            .iter()
            .any(|l| l.contains('\n') || l.trim() != l || l.is_empty())
        {
            return Err(format!("bad line in {:?}", c.lines));
        }
        let first = c.words[0].start_ms;
        if c.start_ms.abs_diff(first) > profile.max_start_offset_ms {
            return Err(format!(
                "cue at {} is {} ms from its first word",
                c.start_ms,
                c.start_ms.abs_diff(first)
            ));
        }
    }
    let v = lint(&cues, profile);
    if !v.is_empty() {
        let msgs: Vec<String> = v.iter().map(|v| v.to_string()).collect();
        return Err(format!(
            "lint: {}\ncues: {:#?}",
            msgs.join("\n"),
            texts(&cues)
        ));
    }
    Ok(cues)
}

/// JFK, inaugural address, with timings close to the recording (pauses after the commas).
fn jfk() -> Vec<Word> {
    vec![
        w(" And", 320, 540),
        w(" so,", 540, 1100),
        w(" my", 1380, 1560),
        w(" fellow", 1560, 1900),
        w(" Americans,", 1900, 2740),
        w(" ask", 3600, 3920),
        w(" not", 3920, 4480),
        w(" what", 5140, 5400),
        w(" your", 5400, 5580),
        w(" country", 5580, 6040),
        w(" can", 6040, 6300),
        w(" do", 6300, 6520),
        w(" for", 6520, 6700),
        w(" you,", 6700, 7100),
        w(" ask", 8200, 8460),
        w(" what", 8460, 8700),
        w(" you", 8700, 8860),
        w(" can", 8860, 9080),
        w(" do", 9080, 9260),
        w(" for", 9260, 9440),
        w(" your", 9440, 9640),
        w(" country.", 9640, 10420),
    ]
}

#[test]
fn jfk_sentence_is_well_broken() {
    let profile = Profile::standard();
    let cues = check(&jfk(), &profile).unwrap();
    let all: Vec<String> = cues.iter().flat_map(|c| c.lines.clone()).collect();
    for line in &all {
        let last = line.split_whitespace().last().unwrap();
        assert!(
            !["your", "the", "for", "my", "what", "And"].contains(&last),
            "line ends badly: {line:?} in {all:?}"
        );
        assert!(line.chars().count() <= 42);
    }
    assert_eq!(all.join(" "), "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country.");
    // The cue boundary falls at the long pause after "you,".
    assert!(
        cues.iter()
            .any(|c| c.lines.last().unwrap().ends_with("for you,")),
        "{:?}",
        texts(&cues)
    );
    assert!(cues.iter().all(|c| c.start_ms <= c.words[0].start_ms));
}

#[test]
fn jfk_sentence_in_shorts_is_one_line_of_at_most_five_words() {
    let profile = Profile::shorts();
    let cues = check(&jfk(), &profile).unwrap();
    for c in &cues {
        assert_eq!(c.lines.len(), 1, "{:?}", c.lines);
        let n = c.lines[0].split_whitespace().count();
        assert!((1..=5).contains(&n), "{:?}", c.lines);
        let last = c.lines[0].split_whitespace().last().unwrap();
        assert!(!["your", "for", "my"].contains(&last), "{:?}", texts(&cues));
    }
}

#[test]
fn name_is_not_split() {
    let profile = Profile::standard();
    let words = speak("Yesterday afternoon we finally flew from Boston to New York to meet John Kennedy at the airport.", 0, 14.0);
    let cues = check(&words, &profile).unwrap();
    for c in &cues {
        for pair in c.lines.windows(2) {
            let end = pair[0].split_whitespace().last().unwrap();
            let start = pair[1].split_whitespace().next().unwrap();
            assert!(!(end == "New" && start == "York"), "{:?}", c.lines);
            assert!(!(end == "John" && start == "Kennedy"), "{:?}", c.lines);
        }
    }
    let shorts = check(&words, &Profile::shorts()).unwrap();
    for pair in shorts.windows(2) {
        let end = pair[0].lines[0].split_whitespace().last().unwrap();
        let start = pair[1].lines[0].split_whitespace().next().unwrap();
        assert!(
            !(end == "New" && start == "York" || end == "John" && start == "Kennedy"),
            "{:?}",
            texts(&shorts)
        );
    }
}

#[test]
fn number_stays_with_its_unit() {
    let words = speak(
        "The new battery pack weighs about 5 kg and lasts nearly 40 hours on a single charge.",
        0,
        14.0,
    );
    for profile in [Profile::standard(), Profile::shorts()] {
        let cues = check(&words, &profile).unwrap();
        let lines: Vec<&String> = cues.iter().flat_map(|c| c.lines.iter()).collect();
        for l in lines {
            assert!(
                !l.ends_with(" 5") && !l.ends_with(" 40"),
                "{:?}",
                texts(&cues)
            );
        }
    }
}

#[test]
fn long_pause_splits_cues() {
    let mut words = speak("I went home", 0, 14.0);
    words.extend(speak("and then I slept", 3000, 14.0));
    let cues = check(&words, &Profile::standard()).unwrap();
    assert_eq!(texts(&cues), ["I went home", "and then I slept"]);
    // Lingers up to 500 ms after "home", not into the whole pause.
    assert_eq!(
        cues[0].end_ms,
        words[2]
            .end_ms
            .max(cues[0].start_ms + 840)
            .max(words[2].end_ms + 500)
    );
}

#[test]
fn punctuation_only_words_attach() {
    let words = vec![
        w(" Hello", 0, 300),
        w(",", 300, 300),
        w(" \"", 350, 350),
        w("world", 350, 700),
        w("\"", 700, 700),
        w(" !", 700, 710),
        w(" -", 720, 730),
    ];
    let cues = check(&words, &Profile::standard()).unwrap();
    assert_eq!(texts(&cues), ["Hello, \"world\" ! -"]);
    // Shorts count words, not punctuation.
    let cues = check(&words, &Profile::shorts()).unwrap();
    assert_eq!(texts(&cues), ["Hello, \"world\" ! -"]);
}

#[test]
fn leading_punctuation_attaches_to_the_next_word() {
    let words = vec![
        w(",", 0, 0),
        w(" so", 0, 300),
        w(" yes", 300, 600),
        w(".", 600, 600),
    ];
    let cues = check(&words, &Profile::standard()).unwrap();
    assert_eq!(texts(&cues), [", so yes."]);
}

#[test]
fn subword_pieces_stay_together() {
    let words = vec![
        w(" don", 0, 200),
        w("'t", 200, 300),
        w(" stop", 300, 600),
        w(" believ", 600, 800),
        w("ing", 800, 1000),
    ];
    let cues = check(&words, &Profile::shorts()).unwrap();
    assert_eq!(texts(&cues), ["don't stop believing"]);
}

#[test]
fn cjk_words_without_spaces_can_break_anywhere() {
    // 40 characters of Chinese with no spaces; each character is a word.
    let text =
        "我们今天要讨论的是如何在视频中自动生成字幕以及怎样让字幕更加容易阅读和理解这是很重要的";
    let words: Vec<Word> = text
        .chars()
        .enumerate()
        .map(|(i, c)| w(&c.to_string(), i as u64 * 250, i as u64 * 250 + 240))
        .collect();
    let profile = Profile {
        max_chars_per_line: 16,
        ..Profile::standard()
    };
    let cues = check(&words, &profile).unwrap();
    let joined: String = cues
        .iter()
        .flat_map(|c| c.lines.iter())
        .map(|l| l.as_str())
        .collect();
    assert_eq!(joined, text);
}

#[test]
fn cyrillic_prepositions_do_not_dangle() {
    let words = speak("Мы долго ехали по этой дороге в сторону маленькой деревни на берегу реки и не знали что нас ждёт.", 0, 14.0);
    let cues = check(&words, &Profile::standard()).unwrap();
    for c in &cues {
        for l in &c.lines[..c.lines.len() - 1] {
            let last = l.split_whitespace().last().unwrap();
            assert!(
                !["в", "на", "и", "не", "по"].contains(&last),
                "{:?}",
                texts(&cues)
            );
        }
    }
}

#[test]
fn single_word_longer_than_a_line_goes_alone_without_crashing() {
    let long = format!(" {}", "x".repeat(60));
    let words = vec![
        w(" The", 0, 200),
        w(" word", 200, 400),
        w(" is", 400, 500),
        w(&long, 500, 4000),
        w(" ok.", 4000, 4300),
    ];
    let cues = segment(&words, &Profile::standard());
    let lines: Vec<&String> = cues.iter().flat_map(|c| c.lines.iter()).collect();
    assert!(lines.iter().any(|l| **l == long.trim()), "{lines:?}");
    let v = lint(&cues, &Profile::standard());
    assert!(v.iter().any(|v| v.rule == Rule::LineTooLong));
    let shorts = segment(&words, &Profile::shorts());
    assert!(shorts.iter().any(|c| c.lines == [long.trim()]));
}

#[test]
fn empty_and_invisible_input() {
    assert!(segment(&[], &Profile::standard()).is_empty());
    assert!(segment(&[w(" ", 0, 10), w("", 10, 20)], &Profile::standard()).is_empty());
    let words = vec![w("", 0, 0), w(" Hi", 0, 300), w(" ", 300, 300)];
    let cues = check(&words, &Profile::standard()).unwrap();
    assert_eq!(texts(&cues), ["Hi"]);
}

#[test]
fn short_gap_is_closed_to_min_gap() {
    let mut words = speak("This is the first sentence.", 0, 14.0);
    let end = words.last().unwrap().end_ms;
    words.extend(speak("And here is the second one.", end + 750, 14.0));
    let cues = check(&words, &Profile::standard()).unwrap();
    assert_eq!(cues.len(), 2, "{:?}", texts(&cues));
    assert_eq!(
        cues[1].start_ms - cues[0].end_ms,
        90,
        "gap closed to 2 frames (84 ms, on the 10 ms grid)"
    );
}

#[test]
fn fast_speech_starts_early_instead_of_breaking_rules() {
    // 19 characters per second: faster than 17, so cues must borrow time before the first word.
    let words = speak(
        "So what we really need to do now is to take a careful look at the numbers before we decide anything else today.",
        1000,
        19.0,
    );
    let cues = check(&words, &Profile::standard()).unwrap();
    assert!(
        cues.iter().any(|c| c.start_ms < c.words[0].start_ms),
        "{cues:#?}"
    );
}

#[test]
fn overlapping_whisper_timestamps_do_not_overlap_cues() {
    // Whisper sometimes gives a word that starts before the previous one ends.
    let mut words = Vec::new();
    let mut t = 0;
    for i in 0..60 {
        words.push(w(if i % 7 == 6 { " end." } else { " word" }, t, t + 450));
        t += 300;
    }
    let cues = segment(&words, &Profile::standard());
    assert_eq!(all_words(&cues), words);
    for pair in cues.windows(2) {
        assert!(pair[1].start_ms >= pair[0].end_ms + 84, "{pair:?}");
    }
}

#[test]
fn huge_timestamps_do_not_overflow() {
    let words = vec![
        w(" a", u64::MAX - 10, u64::MAX),
        w(" b", u64::MAX, u64::MAX),
    ];
    let cues = segment(&words, &Profile::standard());
    assert_eq!(all_words(&cues), words);
}

#[test]
fn degenerate_profiles_do_not_panic() {
    let words = speak("Just a few ordinary words to segment here.", 0, 14.0);
    let weird = [
        Profile {
            max_chars_per_line: 0,
            max_lines: 0,
            max_cps: 0.0,
            ..Profile::standard()
        },
        Profile {
            max_cps: f64::NAN,
            max_words: Some(0),
            min_duration_ms: u64::MAX,
            ..Profile::standard()
        },
        Profile {
            max_duration_ms: 0,
            min_gap_ms: u64::MAX,
            max_start_offset_ms: u64::MAX,
            ..Profile::shorts()
        },
        Profile {
            max_lines: 4,
            max_chars_per_line: 10,
            ..Profile::standard()
        },
    ];
    for p in &weird {
        let cues = segment(&words, p);
        assert_eq!(all_words(&cues), words);
        let _ = lint(&cues, p);
    }
}

#[test]
fn three_line_profiles_balance_lines() {
    let words = speak(
        "one two three four five six seven eight nine ten eleven twelve thirteen.",
        0,
        12.0,
    );
    let p = Profile {
        max_lines: 3,
        max_chars_per_line: 26,
        max_cps: 25.0,
        ..Profile::standard()
    };
    let cues = check(&words, &p).unwrap();
    assert!(cues.iter().all(|c| c.lines.len() <= 3));
}

#[test]
fn wrap_text_rebreaks_parsed_lines() {
    let p = Profile::standard();
    assert_eq!(wrap_text("Short line.", &p), ["Short line."]);
    assert_eq!(
        wrap_text(
            "And so, my fellow Americans, ask not what your country can do for you,",
            &p
        ),
        [
            "And so, my fellow Americans,",
            "ask not what your country can do for you,"
        ]
    );
    let lines = wrap_text(
        "We walked all the way to the old lighthouse at the end of the pier",
        &p,
    );
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l.chars().count() <= 42), "{lines:?}");
    assert!(
        !lines[0].ends_with(" the") && !lines[0].ends_with(" of"),
        "{lines:?}"
    );
    // Too long for one cue: all text kept, overflow on the last line.
    let long = "word ".repeat(40);
    let lines = wrap_text(&long, &p);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines.join(" "), long.trim());
    assert!(wrap_text("  ", &p).is_empty());
}

// ---- property-style test over generated word streams ----

const VOCAB: &[&str] = &[
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "for",
    "with",
    "on",
    "at",
    "from",
    "by",
    "your",
    "their",
    "this",
    "that",
    "people",
    "really",
    "think",
    "important",
    "country",
    "government",
    "because",
    "something",
    "nothing",
    "remember",
    "always",
    "never",
    "probably",
    "question",
    "answer",
    "together",
    "tomorrow",
    "morning",
    "world",
    "it",
    "is",
    "was",
    "we",
    "you",
    "they",
    "can",
    "could",
    "would",
    "should",
    "go",
    "make",
    "take",
    "see",
    "know",
    "time",
    "year",
    "day",
    "way",
    "thing",
    "man",
    "woman",
    "child",
    "life",
    "work",
    "system",
    "problem",
    "extraordinary",
    "responsibility",
    "understanding",
    "infrastructure",
    "I",
    "don't",
    "it's",
    "we're",
];
const NAMES: &[&str] = &[
    "New York",
    "John Kennedy",
    "Mary",
    "London",
    "United Nations",
    "San Francisco",
];
const NUMBERS: &[&str] = &["5 km", "10 percent", "3 hours", "40 years", "2 million"];

/// A stream of sentences spoken at `cps` characters per second, with Whisper-like word timings.
fn generate(rng: &mut Rng, cps: f64, grid: bool) -> Vec<Word> {
    let mut words = Vec::new();
    let mut t = rng.range(0.0, 3000.0);
    let sentences = 5 + rng.below(25);
    for _ in 0..sentences {
        let len = 2 + rng.below(22);
        let mut toks: Vec<String> = Vec::new();
        for k in 0..len {
            let r = rng.below(100);
            let tok = if r < 6 {
                rng.pick(NAMES).to_string()
            } else if r < 9 {
                rng.pick(NUMBERS).to_string()
            } else {
                rng.pick(VOCAB).to_string()
            };
            for (n, part) in tok.split(' ').enumerate() {
                let mut p = part.to_string();
                if k == 0 && n == 0 {
                    let mut c = p.chars();
                    p = c
                        .next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default();
                }
                toks.push(p);
            }
            if k + 1 < len && rng.chance(0.12) {
                toks.last_mut().unwrap().push(',');
            }
        }
        toks.last_mut()
            .unwrap()
            .push_str(rng.pick(&[".", ".", ".", "?", "!"]));
        for tok in toks {
            // Sometimes Whisper gives trailing punctuation as its own zero-length word.
            let (body, punct) = match tok.char_indices().last() {
                Some((i, c)) if ",.?!".contains(c) && rng.chance(0.3) => {
                    (tok[..i].to_string(), Some(c))
                }
                _ => (tok.clone(), None),
            };
            let text = format!(" {body}");
            let dur = text.chars().count() as f64 * 1000.0 / cps * rng.range(0.8, 1.2);
            let gap = if rng.chance(0.7) {
                0.0
            } else {
                rng.range(0.0, 120.0)
            };
            let (s, e) = (t, t + dur - gap);
            let q = |x: f64| {
                if grid {
                    (x / 10.0).round() as u64 * 10
                } else {
                    x.round() as u64
                }
            };
            words.push(Word {
                text,
                start_ms: q(s),
                end_ms: q(e),
                prob: 0.8,
            });
            if let Some(c) = punct {
                words.push(Word {
                    text: c.to_string(),
                    start_ms: q(e),
                    end_ms: q(e),
                    prob: 0.8,
                });
            }
            t += dur;
            if tok.ends_with(',') {
                t += rng.range(50.0, 400.0);
            }
        }
        // Pause between sentences: usually short, sometimes long.
        t += if rng.chance(0.75) {
            rng.range(100.0, 700.0)
        } else {
            rng.range(700.0, 3000.0)
        };
    }
    words
}

/// Runs `streams` generated streams (override with `AUTOSUB_PROPERTY_STREAMS` for a longer soak).
fn property(profile: &Profile, streams: u64, seed: u64) {
    let streams = std::env::var("AUTOSUB_PROPERTY_STREAMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(streams);
    let mut rng = Rng(seed);
    let mut failures = Vec::new();
    let mut cues_total = 0;
    for n in 0..streams {
        let cps = rng.range(10.0, 16.0);
        let words = generate(&mut rng, cps, n % 2 == 0);
        match check(&words, profile) {
            Ok(c) => cues_total += c.len(),
            Err(e) => failures.push(format!("stream {n} at {cps:.1} cps: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {streams} streams failed:\n{}",
        failures.len(),
        failures[..failures.len().min(3)].join("\n\n")
    );
    assert!(cues_total > streams as usize * 3);
}

#[test]
fn generated_speech_passes_lint_standard() {
    property(&Profile::standard(), 300, 0x5eed_1234_abcd_0001);
}

#[test]
fn generated_speech_passes_lint_shorts() {
    property(&Profile::shorts(), 300, 0x5eed_1234_abcd_0002);
}

#[test]
fn trimmed_words_are_still_separated() {
    // Callers that strip Whisper's leading spaces still get readable text.
    let words = vec![
        w("Hello", 0, 400),
        w(",", 400, 400),
        w("world", 450, 900),
        w("again", 900, 1300),
        w(".", 1300, 1300),
    ];
    let cues = check(&words, &Profile::standard()).unwrap();
    assert_eq!(texts(&cues), ["Hello, world again."]);
}

#[test]
fn three_line_layout_is_fast_enough() {
    let text = vec![
            "one two three four five six seven eight nine ten eleven twelve thirteen fourteen.";
            300
        ]
    .join(" ");
    let words = speak(&text, 0, 12.0);
    let p = Profile {
        max_lines: 3,
        max_chars_per_line: 30,
        max_cps: 25.0,
        ..Profile::standard()
    };
    let t = std::time::Instant::now();
    let cues = segment(&words, &p);
    assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
    assert_eq!(all_words(&cues), words);
}

// ---- regression tests, named after the bug they pin ----

#[test]
fn gap_closing_beyond_max_duration_left_cue_lingering() {
    // Closing the 300 ms gap to "friend" would need a 3.1 s cue (max 3 s); the cue used to be stretched to
    // its maximum duration anyway, lingering 700 ms without closing the gap.
    let words = vec![
        w(" Hello", 0, 1000),
        w(" there", 1100, 2300),
        w(" friend.", 3100, 3600),
    ];
    let p = Profile::shorts();
    let cues = check(&words, &p).unwrap();
    assert_eq!(texts(&cues), ["Hello there", "friend."]);
    assert_eq!(cues[0].end_ms, 2800, "last word end + 500 ms linger");
}

#[test]
fn fast_continuous_speech_drifted_late() {
    // Faster than 17 cps with no pauses cannot meet the reading speed; cues used to be pushed later and later
    // after their words. Now they stay in sync and the excess shows up as too-fast.
    let text = "Four score and seven years ago our fathers brought forth on this continent a new nation conceived in liberty and dedicated to the proposition that all men are created equal";
    let words = speak(text, 0, 20.0);
    let p = Profile::standard();
    let cues = segment(&words, &p);
    assert!(
        cues.iter().all(|c| c.start_ms <= c.words[0].start_ms),
        "{cues:#?}"
    );
    let v = lint(&cues, &p);
    assert!(v.iter().any(|v| v.rule == Rule::TooFast), "{v:#?}");
    assert!(
        !v.iter().any(|v| matches!(
            v.rule,
            Rule::StartOffset | Rule::Overlap | Rule::GapTooSmall
        )),
        "{v:#?}"
    );
}

#[test]
fn required_duration_overflowed_on_huge_min_duration() {
    let p = Profile {
        min_duration_ms: u64::MAX,
        ..Profile::standard()
    };
    assert_eq!(p.required_duration_ms(10), u64::MAX);
    let cues = segment(&speak("overflow me please", 0, 14.0), &p);
    assert_eq!(cues.len(), 1);
}

#[test]
fn fast_speech_traded_clean_line_breaks_for_fuller_cues() {
    // Above 17 cps every cue boundary costs reading time, and the segmenter used to take the fullest cues it
    // could, even when the only break that fits them ends a line on "by" or "and" (a CI run hit one on Piper's
    // speech). Speed violations are the speech's; layout violations are the segmenter's and must not appear.
    let p = Profile::standard();
    let mut rng = Rng(0x5eed_1234_abcd_0003);
    let mut seen = std::collections::BTreeMap::new();
    for n in 0..300 {
        let cps = rng.range(17.0, 26.0);
        let words = generate(&mut rng, cps, n % 2 == 0);
        let cues = segment(&words, &p);
        assert_eq!(all_words(&cues), words);
        for v in lint(&cues, &p) {
            *seen.entry(v.rule.id()).or_insert(0) += 1;
            assert!(
                matches!(v.rule, Rule::TooFast | Rule::TooShort),
                "stream {n} at {cps:.1} cps: {v}\n{:#?}",
                texts(&cues)
            );
        }
    }
    assert!(seen.contains_key("too-fast"), "{seen:?}");
}

// ---- reading time: a cue is too fast only when nothing could give it its time ----

#[test]
fn fast_cue_takes_the_exact_min_gap_when_that_is_enough() {
    // "Nineteen characters." (20 characters) needs 1177 ms at 17 cps; it cannot start before 0 and the next
    // cue starts at 1263 ms. On the 10 ms grid the gap is 90 ms (84 rounded up), which left it 1173 ms (17.05
    // cps); the profile's exact 84 ms leave it 1179 ms.
    let mut words = vec![w(" Nineteen", 0, 500), w(" characters.", 500, 1000)];
    let mut more = speak(
        "And then we walked all the way back home along the river in the cold rain.",
        1263,
        40.0,
    );
    words.append(&mut more);
    let p = Profile::standard();
    let cues = segment(&words, &p);
    assert_eq!(texts(&cues)[0], "Nineteen characters.");
    assert_eq!(cues[1].start_ms, 1263);
    assert_eq!((cues[0].start_ms, cues[0].end_ms), (0, 1179));
    assert!(lint(&cues, &p).is_empty(), "{:#?}", lint(&cues, &p));
    // On the grid, where 84 ms would not be enough anyway, the gap stays 90 ms and the cue too fast.
    for c in &mut words[2..] {
        c.start_ms += 7;
        c.end_ms += 7;
    }
    let cues = segment(&words, &p);
    assert_eq!((cues[0].end_ms, cues[1].start_ms), (1180, 1270));
    assert!(lint(&cues, &p).is_empty());
    for c in &mut words[2..] {
        c.start_ms -= 10;
        c.end_ms -= 10;
    }
    let cues = segment(&words, &p);
    assert_eq!((cues[0].end_ms, cues[1].start_ms), (1170, 1260));
    let v = lint(&cues, &p);
    assert!(v.len() == 1 && v[0].rule == Rule::TooFast, "{v:#?}");
}

/// Generated streams from slow to very fast speech: every too-fast or too-short cue is one the next cue left no
/// room for. Returns the number of cues and of cues lint flags.
fn reading_time_property(profile: &Profile, streams: u64, seed: u64) -> (usize, usize) {
    let mut rng = Rng(seed);
    let (mut total, mut flagged) = (0, 0);
    for n in 0..streams {
        let cps = rng.range(12.0, 30.0);
        let words = generate(&mut rng, cps, n % 2 == 0);
        let cues = segment(&words, profile);
        assert_eq!(all_words(&cues), words);
        total += cues.len();
        let mut last = 0;
        for v in lint(&cues, profile) {
            assert!(
                matches!(v.rule, Rule::TooFast | Rule::TooShort),
                "stream {n} at {cps:.1} cps: {v}"
            );
            assert!(
                !had_room(&cues, v.cue - 1, profile),
                "stream {n} at {cps:.1} cps: {v}, but the next cue starts late enough: {:#?}",
                &cues[v.cue - 1..(v.cue + 1).min(cues.len())]
            );
            if v.cue != last {
                flagged += 1;
                last = v.cue;
            }
        }
    }
    (total, flagged)
}

#[test]
fn no_cue_is_too_fast_where_the_next_gap_had_room_standard() {
    let (cues, flagged) = reading_time_property(&Profile::standard(), 300, 0x5eed_1234_abcd_0004);
    // Measured: 6906 cues, 1765 flagged (6909 and 2371 when only the cheapest cuts to each boundary were kept).
    assert!(cues > 6000, "{cues}");
    assert!(flagged < 2050, "{flagged} of {cues} cues break the profile");
}

#[test]
fn no_cue_is_too_fast_where_the_next_gap_had_room_shorts() {
    let (cues, flagged) = reading_time_property(&Profile::shorts(), 300, 0x5eed_1234_abcd_0005);
    // Measured: 24456 cues, 242 flagged (24358 and 435 when only the cheapest cuts to each boundary were kept).
    assert!(cues > 20000, "{cues}");
    assert!(flagged < 340, "{flagged} of {cues} cues break the profile");
}
