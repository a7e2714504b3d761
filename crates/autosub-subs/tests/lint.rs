mod common;

use autosub_subs::{lint, parse_srt, segment, Cue, Profile, Rule, Violation};
use common::{speak, w};

fn cue(start: u64, end: u64, lines: &[&str]) -> Cue {
    Cue::new(start, end, lines.iter().map(|s| s.to_string()).collect())
}

fn rules(v: &[Violation]) -> Vec<(usize, Rule)> {
    v.iter().map(|v| (v.cue, v.rule)).collect()
}

#[test]
fn clean_cues_pass() {
    let cues = vec![
        cue(0, 2000, &["Hello there.", "How are you?"]),
        cue(2084, 4000, &["Fine, thanks."]),
    ];
    assert!(lint(&cues, &Profile::standard()).is_empty());
}

#[test]
fn message_format_matches_the_spec() {
    let mut cues = vec![cue(0, 1000, &["a"]); 11];
    for (i, c) in cues.iter_mut().enumerate() {
        c.start_ms = i as u64 * 2000;
        c.end_ms = c.start_ms + 1000;
    }
    cues.push(cue(62_300, 66_000, &[&"x".repeat(47)]));
    let v = lint(&cues, &Profile::standard());
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        v[0].message,
        "cue 12 (00:01:02.300): line 1 is 47 characters, max 42"
    );
    assert_eq!(
        v[0].to_string(),
        "cue 12 (00:01:02.300): line 1 is 47 characters, max 42 [line-too-long]"
    );
    assert_eq!(v[0].cue, 12);
}

#[test]
fn every_violation_of_a_cue_is_reported() {
    let p = Profile::standard();
    let long = "y".repeat(50);
    let cues = vec![
        cue(1000, 2000, &["first"]),
        // Overlaps, too short, too fast, too long a line, too many lines, dangling article.
        cue(1500, 1800, &[&long, "over the", "lazy dog"]),
    ];
    let v = lint(&cues, &p);
    let got = rules(&v);
    for want in [
        Rule::LineTooLong,
        Rule::TooManyLines,
        Rule::BadBreak,
        Rule::TooShort,
        Rule::TooFast,
        Rule::Overlap,
    ] {
        assert!(got.contains(&(2, want)), "missing {want}: {v:#?}");
    }
    assert!(!got.iter().any(|(c, _)| *c == 1), "{v:#?}");
    let bad = v.iter().find(|v| v.rule == Rule::BadBreak).unwrap();
    assert!(
        bad.message.contains("line 2 ends with \"the\""),
        "{}",
        bad.message
    );
}

#[test]
fn timing_rules() {
    let p = Profile::standard();
    let cues = vec![
        cue(0, 8000, &["too long on screen"]),
        cue(8050, 9000, &["gap too small"]),
        cue(7000, 9500, &["out of order"]),
        cue(10_000, 9000, &["ends before start"]),
        cue(20_000, 20_000, &["zero"]),
        cue(30_000, 31_000, &[""]),
    ];
    let got = rules(&lint(&cues, &p));
    assert!(got.contains(&(1, Rule::TooLong)));
    assert!(got.contains(&(2, Rule::GapTooSmall)));
    assert!(got.contains(&(3, Rule::OutOfOrder)));
    assert!(got.contains(&(4, Rule::EndBeforeStart)));
    assert!(got.contains(&(5, Rule::TooShort)) && got.contains(&(5, Rule::TooFast)));
    assert!(got.contains(&(6, Rule::EmptyText)));
    assert!(!got.contains(&(6, Rule::TooFast)));
}

#[test]
fn reading_speed_counts_displayed_text_with_lines_joined_by_a_space() {
    let p = Profile::standard();
    // 17 characters in exactly one second is allowed, 18 is not; tags do not count.
    assert!(lint(&[cue(0, 1000, &["<i>12345678</i>", "12345678"])], &p).is_empty());
    let v = lint(&[cue(0, 1000, &["123456789", "12345678"])], &p);
    assert_eq!(rules(&v), [(1, Rule::TooFast)]);
    assert!(
        v[0].message
            .contains("reading speed 18.0 characters/s (18 characters in 1000 ms), max 17"),
        "{}",
        v[0].message
    );
    // An SRT with italics: the tags are not counted as characters per line either.
    let cues = parse_srt(&format!(
        "1\n00:00:00,000 --> 00:00:05,000\n<i>{}</i>\n",
        "z".repeat(42)
    ))
    .unwrap();
    assert!(lint(&cues, &p).is_empty());
}

#[test]
fn word_limit_applies_to_shorts() {
    let p = Profile::shorts();
    let v = lint(&[cue(0, 3000, &["one two three four five six"])], &p);
    assert!(rules(&v).contains(&(1, Rule::TooManyWords)), "{v:?}");
    assert!(lint(&[cue(0, 3000, &["one, two - three!"])], &p).is_empty());
}

#[test]
fn start_offset_and_late_end_need_words() {
    let p = Profile::standard();
    let mut c = cue(1000, 3000, &["hello world"]);
    assert!(
        lint(std::slice::from_ref(&c), &p).is_empty(),
        "no words: nothing to compare"
    );
    c.words = vec![w(" hello", 1400, 1800), w(" world", 1800, 2000)];
    let v = lint(std::slice::from_ref(&c), &p);
    assert_eq!(
        rules(&v),
        [(1, Rule::StartOffset), (1, Rule::LateEnd)],
        "{v:#?}"
    );
    assert!(
        v[0].message
            .contains("starts 400 ms before its first word (00:00:01.400), max 300"),
        "{}",
        v[0].message
    );
    assert!(
        v[1].message
            .contains("stays 1000 ms after its last word ends"),
        "{}",
        v[1].message
    );
    // Lingering for the minimum duration is fine.
    let short = Cue {
        start_ms: 1000,
        end_ms: 1840,
        lines: vec!["Hi".into()],
        words: vec![w(" Hi", 1000, 1100)],
    };
    assert!(lint(&[short], &p).is_empty());
    // A start after the first word is reported too.
    let late = Cue {
        start_ms: 1800,
        end_ms: 2500,
        lines: vec!["hello world".into()],
        words: c.words.clone(),
    };
    let v = lint(&[late], &p);
    assert!(
        v.iter().any(|v| v.rule == Rule::StartOffset
            && v.message.contains("starts 400 ms after its first word")),
        "{v:#?}"
    );
}

#[test]
fn closed_gaps_may_linger_longer() {
    let p = Profile::standard();
    let a = Cue {
        start_ms: 0,
        end_ms: 1916,
        lines: vec!["Hello there.".into()],
        words: vec![w(" Hello", 0, 400), w(" there.", 400, 1000)],
    };
    let b = Cue {
        start_ms: 2000,
        end_ms: 3000,
        lines: vec!["Next.".into()],
        words: vec![w(" Next.", 2000, 2500)],
    };
    assert!(lint(&[a.clone(), b.clone()], &p).is_empty());
    // The same end without a following cue at min gap is lingering.
    let v = lint(&[a], &p);
    assert_eq!(rules(&v), [(1, Rule::LateEnd)]);
}

#[test]
fn bad_breaks_are_flagged_only_for_line_ends() {
    let p = Profile::standard();
    let v = lint(&[cue(0, 4000, &["it weighs about 5", "kg and more"])], &p);
    assert_eq!(rules(&v), [(1, Rule::BadBreak)]);
    assert!(
        v[0].message.contains("splits \"5\" from its unit \"kg\""),
        "{}",
        v[0].message
    );
    assert!(
        lint(&[cue(0, 4000, &["I love New", "York in spring."])], &p).is_empty(),
        "names are not linted"
    );
    assert!(lint(&[cue(0, 4000, &["ask not", "what your country"])], &p).is_empty());
    assert!(!lint(&[cue(0, 4000, &["ask not what", "your country"])], &p).is_empty());
    assert!(!lint(&[cue(0, 4000, &["я живу в", "Москве"])], &p).is_empty());
}

#[test]
fn rule_ids_are_kebab_case() {
    assert_eq!(Rule::LineTooLong.to_string(), "line-too-long");
    assert_eq!(
        serde_json::to_string(&Rule::GapTooSmall).unwrap(),
        "\"gap-too-small\""
    );
    for r in Rule::ALL {
        assert_eq!(r.id().parse::<Rule>(), Ok(r));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            format!("\"{}\"", r.id())
        );
    }
    assert!("nope".parse::<Rule>().is_err());
    let v = Violation {
        cue: 3,
        rule: Rule::TooFast,
        message: "m".into(),
    };
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        r#"{"cue":3,"rule":"too-fast","message":"m"}"#
    );
}

#[test]
fn segmented_cues_pass_lint_and_survive_srt() {
    // Lint of a re-parsed SRT (no words) still passes for segment's output.
    let words = speak("This is a perfectly ordinary sentence. And here is another one, a little longer than the first.", 500, 14.0);
    let p = Profile::standard();
    let cues = segment(&words, &p);
    assert!(lint(&cues, &p).is_empty());
    let parsed = parse_srt(&autosub_subs::write_srt(&cues)).unwrap();
    assert!(lint(&parsed, &p).is_empty());
}
