//! A document remembers the limits it was cut with (issue 14, part 5).

mod common;

use autosub_subs::{
    lint, parse_json, segment, write_json, Cue, Document, Profile, ProfileOverrides, Rule,
};
use common::speak;

/// A document cut with `--max-cps 23` (the standard profile otherwise).
fn cut_at_23_cps() -> (Document, Profile) {
    let profile = ProfileOverrides {
        max_cps: Some(23.0),
        ..Default::default()
    }
    .resolve(None, "standard")
    .unwrap();
    let words = speak(
        "A cue that is read at twenty characters per second.",
        0,
        20.0,
    );
    let mut doc = Document {
        words: words.clone(),
        cues: segment(&words, &profile),
        ..Document::default()
    };
    doc.set_limits(&profile);
    (doc, profile)
}

#[test]
fn stored_limits_survive_a_round_trip_and_lint_uses_them() {
    let (mut doc, profile) = cut_at_23_cps();
    assert_eq!(doc.profile, "standard");
    // One cue read at 20 cps: too fast for 17 cps, fine for 23.
    doc.cues = vec![Cue::new(1000, 2000, vec!["twenty characters!!!".into()])];
    assert_eq!(doc.cues[0].text().chars().count(), 20);
    let json = write_json(&doc);
    assert!(json.contains("\"limits\": {"), "{json}");
    assert!(json.contains("\"max_cps\": 23.0"), "{json}");

    let back = parse_json(&json).unwrap();
    assert_eq!(back, doc);
    let limits = back.limits().unwrap();
    assert_eq!(limits.max_cps, 23.0);
    assert_eq!(limits, profile);
    assert!(lint(&back.cues, &limits).is_empty());
    // What lint used to check it against: the profile's name only.
    let by_name = Profile::by_name(&back.profile).unwrap();
    assert!(lint(&back.cues, &by_name)
        .iter()
        .any(|v| v.rule == Rule::TooFast));

    // Resolution as the CLI does it: nothing given -> the stored limits.
    let p = back
        .effective_profile(&ProfileOverrides::default(), "standard")
        .unwrap();
    assert_eq!(p.max_cps, 23.0);
    // An explicit --max-cps wins over the stored one.
    let p = back
        .effective_profile(
            &ProfileOverrides {
                max_cps: Some(17.0),
                ..Default::default()
            },
            "standard",
        )
        .unwrap();
    assert_eq!(p.max_cps, 17.0);
    assert!(lint(&back.cues, &p).iter().any(|v| v.rule == Rule::TooFast));
    // An explicit --profile replaces the stored limits entirely.
    let p = back
        .effective_profile(
            &ProfileOverrides {
                profile: Some("shorts".into()),
                ..Default::default()
            },
            "standard",
        )
        .unwrap();
    assert_eq!(p, Profile::shorts());
}

#[test]
fn segmenting_for_stored_limits_passes_lint_for_them() {
    let (doc, profile) = cut_at_23_cps();
    let back = parse_json(&write_json(&doc)).unwrap();
    let limits = back.limits().unwrap();
    assert_eq!(limits, profile);
    // Re-cut with the stored limits (as `autosub segment doc.json` will): clean for them.
    let cues = segment(&back.words, &limits);
    assert_eq!(cues, back.cues);
    assert!(
        lint(&cues, &limits).is_empty(),
        "{:#?}",
        lint(&cues, &limits)
    );
}

#[test]
fn old_document_without_limits_still_loads_and_gives_its_named_profile() {
    // Written by a build before the limits were stored (version 1, no `limits`).
    let old = r#"{
  "version": 1,
  "source": "talk.mp4",
  "language": "en",
  "language_probability": 0.98,
  "model": "base",
  "duration_ms": 2000,
  "profile": "shorts",
  "words": [{"text": " Hello", "start_ms": 0, "end_ms": 400, "prob": 0.9}],
  "cues": [{"start_ms": 0, "end_ms": 900, "lines": ["Hello"]}],
  "timings_ms": {},
  "warnings": []
}"#;
    let doc = parse_json(old).unwrap();
    assert_eq!(doc.limits, None);
    assert_eq!(doc.limits(), Some(Profile::shorts()));
    assert_eq!(
        doc.effective_profile(&ProfileOverrides::default(), "standard")
            .unwrap(),
        Profile::shorts()
    );
    // Written back, it stays without the field (and so readable by older builds).
    let json = write_json(&doc);
    assert!(!json.contains("limits"), "{json}");
    assert_eq!(parse_json(&json).unwrap(), doc);

    // An unknown or missing profile name: no limits; the caller's default applies.
    for name in ["", "cinema"] {
        let doc = Document {
            profile: name.into(),
            ..Document::default()
        };
        assert_eq!(doc.limits(), None);
        assert_eq!(
            doc.effective_profile(&ProfileOverrides::default(), "standard")
                .unwrap(),
            Profile::standard()
        );
    }
}

#[test]
fn older_builds_can_read_a_document_with_limits() {
    // A build that does not know `limits` ignores it (no `deny_unknown_fields`, same version number): check
    // with a struct holding only the old fields.
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct OldDocument {
        version: u32,
        profile: String,
        cues: Vec<Cue>,
    }
    let (doc, _) = cut_at_23_cps();
    let json = write_json(&doc);
    let old: OldDocument = serde_json::from_str(&json).unwrap();
    assert_eq!(old.version, Document::VERSION);
    assert_eq!(old.profile, "standard");
    assert_eq!(old.cues, doc.cues);
}

#[test]
fn stored_limits_take_precedence_over_the_name() {
    // A document whose stored limits differ from its named profile: the stored numbers are what it was cut for.
    let json = r#"{"version": 1, "profile": "standard",
        "limits": {"name": "standard", "max_chars_per_line": 37, "max_lines": 2, "max_cps": 20.0,
                   "min_duration_ms": 833, "max_duration_ms": 7000, "min_gap_ms": 84, "max_words": null,
                   "max_start_offset_ms": 300, "max_linger_ms": 500}}"#;
    let doc = parse_json(json).unwrap();
    let p = doc.limits().unwrap();
    assert_eq!((p.max_chars_per_line, p.max_cps), (37, 20.0));
    assert_eq!(p.close_gap_ms, 500, "missing close_gap_ms gets its default");
    // A malformed limits object is a parse error, not silently ignored.
    let bad = r#"{"version": 1, "profile": "standard", "limits": {"name": "x"}}"#;
    assert!(parse_json(bad)
        .unwrap_err()
        .to_string()
        .contains("invalid AutoSub JSON document"));
}
