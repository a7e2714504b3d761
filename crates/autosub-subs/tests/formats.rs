mod common;

use autosub_subs::{
    parse_any, parse_ass, parse_json, parse_srt, parse_vtt, write_ass, write_json, write_srt,
    write_vtt, AssStyle, Cue, Document, Format, VideoSize, Word,
};
use common::{w, Rng};

fn cue(start: u64, end: u64, lines: &[&str]) -> Cue {
    Cue::new(start, end, lines.iter().map(|s| s.to_string()).collect())
}

/// Text that tries to break every format: markup (canonical tags, see `visible_text`), text that looks like
/// override blocks and tags (a literal `<i>` is written `<` + U+2060 + `i>` in the canonical form), arrows,
/// entities, backslashes, Cyrillic, emoji.
fn tricky_cues() -> Vec<Cue> {
    vec![
        cue(0, 1500, &["Hello, world!", "Second line"]),
        cue(1584, 3000, &["Привет, как дела?", "Всё хорошо 🎉👍🏽"]),
        cue(
            3084,
            4000,
            &["{\\b1}not bold{\\b0}", "<b>bold</b> & <\u{2060}i>not a tag"],
        ),
        cue(4084, 5000, &["arrow --> here", "a -> b <- c"]),
        cue(5084, 6000, &["C:\\new\\Name\\h", "back\\slash at end\\"]),
        cue(6084, 7000, &["&amp; &lt; literally", "50% {curly} }{"]),
        cue(
            3_600_000 * 12 + 345_678,
            3_600_000 * 12 + 349_999,
            &["twelve hours in"],
        ),
    ]
}

fn assert_same(a: &[Cue], b: &[Cue], tolerance_ms: u64) {
    assert_eq!(a.len(), b.len(), "{a:#?}\n{b:#?}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.lines, y.lines);
        assert!(
            x.start_ms.abs_diff(y.start_ms) <= tolerance_ms,
            "{x:?} vs {y:?}"
        );
        assert!(
            x.end_ms.abs_diff(y.end_ms) <= tolerance_ms,
            "{x:?} vs {y:?}"
        );
    }
}

// ---------- SRT ----------

#[test]
fn srt_round_trip() {
    let cues = tricky_cues();
    let s = write_srt(&cues);
    assert!(s.starts_with("1\n00:00:00,000 --> 00:00:01,500\nHello, world!\nSecond line\n\n2\n"));
    assert!(s.contains("\n12:05:45,678 --> 12:05:49,999\n"));
    assert_same(&parse_srt(&s).unwrap(), &cues, 0);
}

#[test]
fn srt_tolerates_real_world_files() {
    let s = "\u{feff}3\r\n00:00:01,000 --> 00:00:02,000 X1:10 X2:20 Y1:1 Y2:2\r\n<i>One</i>\r\n\r\n\r\n\r\n1\r\n00:00:03.5 --> 00:00:04,250\r\nTwo\r\nlines  \r\n\r\n00:00:05,000 --> 00:00:06,000\r\nno number\r\n7\r\n00:00:07,000 --> 00:00:08,000\r\nno blank line before\r\n00:00:09,000 --> 00:00:10,000\r\nlast, no final newline";
    let cues = parse_srt(s).unwrap();
    let got: Vec<(u64, u64, Vec<String>)> = cues
        .into_iter()
        .map(|c| (c.start_ms, c.end_ms, c.lines))
        .collect();
    let want = vec![
        (1000, 2000, vec!["<i>One</i>".to_string()]),
        (3500, 4250, vec!["Two".into(), "lines".into()]),
        (5000, 6000, vec!["no number".into()]),
        (7000, 8000, vec!["no blank line before".into()]),
        (9000, 10000, vec!["last, no final newline".into()]),
    ];
    assert_eq!(got, want);
    // Old Mac line ends.
    assert_eq!(
        parse_srt("1\r00:00:01,000 --> 00:00:02,000\rHi\r").unwrap()[0].lines,
        ["Hi"]
    );
}

#[test]
fn srt_empty_inputs() {
    assert!(parse_srt("").unwrap().is_empty());
    assert!(parse_srt("\u{feff}\n\n  \r\n").unwrap().is_empty());
    assert_eq!(write_srt(&[]), "");
    // A cue with no text survives (lint reports it as empty).
    let cues = parse_srt("1\n00:00:01,000 --> 00:00:02,000\n").unwrap();
    assert!(cues[0].lines.is_empty());
}

#[test]
fn srt_errors_name_the_line() {
    let cases = [
        ("hello world\n", 1, "expected a cue number or a timing line"),
        ("1\n00:00:01,000 --> 00:00:0", 2, "malformed timestamp"),
        ("1\n", 2, "found end of file"),
        ("1\n00:00:01,000 --> 00:61:02,000\n", 2, "out of range"),
        (
            "1\n00:00:05,000 --> 00:00:04,000\nx\n",
            2,
            "ends before it starts",
        ),
        ("1\n00:00:01,000 --> \n", 2, "missing timestamp"),
    ];
    // A negative time, `->` for `-->` and a broken cue after a good one are read with warnings now (see
    // tests/wild.rs); only a file with nothing readable is refused.
    for (input, line, msg) in cases {
        let e = parse_srt(input).unwrap_err();
        assert_eq!(e.line, line, "{input:?}: {e}");
        assert!(e.to_string().contains(msg), "{input:?}: {e}");
        assert!(e.to_string().starts_with(&format!("line {line}: ")));
    }
}

#[test]
fn truncated_timestamp_was_read_as_zero_seconds() {
    // "00:00:0" (a file cut off mid-timestamp) used to parse as 0 s and fail later as "ends before it starts".
    let e = parse_srt("1\n00:00:01,000 --> 00:00:0").unwrap_err();
    assert!(
        e.to_string().contains("malformed timestamp \"00:00:0\""),
        "{e}"
    );
}

// ---------- WebVTT ----------

#[test]
fn vtt_round_trip() {
    let cues = tricky_cues();
    let s = write_vtt(&cues);
    assert!(s.starts_with("WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.500\n"));
    assert!(
        s.contains("\n<b>bold</b> &amp; &lt;i&gt;not a tag\n"),
        "{s}"
    );
    assert!(s.contains("arrow --&gt; here"));
    assert!(!s
        .lines()
        .filter(|l| !l.contains(" --> ") || l.contains("&"))
        .any(|l| l.contains("-->")));
    assert_same(&parse_vtt(&s).unwrap(), &cues, 0);
}

#[test]
fn vtt_tolerates_real_world_files() {
    let s = "\u{feff}WEBVTT - Some title\nKind: captions\nLanguage: en\n\nSTYLE\n::cue { color: yellow }\n\nREGION\nid:fred width:40%\n\nNOTE this is a comment\nspanning lines\n\nintro\n00:01.000 --> 00:02.500 align:start position:10%\n<v Roger>Hi &amp; bye&nbsp;now</v>\n\n00:00:03.000 --> 00:00:04.000\nno id\n00:00:05.000 --> 00:00:06.000\nnext cue without blank line\n\nNOTE\nlast note";
    let cues = parse_vtt(s).unwrap();
    assert_eq!(cues.len(), 3);
    assert_eq!((cues[0].start_ms, cues[0].end_ms), (1000, 2500));
    // The voice tag is dropped (the name is not shown).
    assert_eq!(cues[0].lines, ["Hi & bye\u{a0}now"]);
    assert_eq!(cues[1].lines, ["no id"]);
    assert_eq!(cues[2].lines, ["next cue without blank line"]);
    assert!(parse_vtt("WEBVTT").unwrap().is_empty());
    assert!(parse_vtt("WEBVTT\r\n\r\n").unwrap().is_empty());
}

#[test]
fn vtt_errors_name_the_line() {
    let cases = [
        ("", 1, "WEBVTT header"),
        ("WEBVTTX\n", 1, "WEBVTT header"),
        (
            "1\n00:00:01.000 --> 00:00:02.000\nno header\n",
            1,
            "WEBVTT header",
        ),
        ("WEBVTT\n\nid only\n", 4, "found end of file"),
        (
            "WEBVTT\n\nid\nsome text\n",
            4,
            "expected a timing line like 00:00:01.000 --> 00:00:02.000",
        ),
        (
            "WEBVTT\n\n00:00:02.000 --> 00:00:01.000\nx\n",
            3,
            "ends before it starts",
        ),
        (
            "WEBVTT\n\n00:00:60.000 --> 00:01:01.000\nx\n",
            3,
            "out of range",
        ),
        (
            "WEBVTT\n\n00:00:01.000 --> 00:00:0x.000\nx\n",
            3,
            "malformed",
        ),
    ];
    for (input, line, msg) in cases {
        let e = parse_vtt(input).unwrap_err();
        assert_eq!(e.line, line, "{input:?}: {e}");
        assert!(e.to_string().contains(msg), "{input:?}: {e}");
    }
}

// ---------- ASS ----------

#[test]
fn ass_round_trip_within_10_ms() {
    let cues = tricky_cues();
    let s = write_ass(&cues, &AssStyle::default(), VideoSize::default());
    assert_same(&parse_ass(&s).unwrap(), &cues, 10);
}

#[test]
fn ass_header_and_style_follow_the_video() {
    let s = write_ass(&[], &AssStyle::default(), VideoSize::new(1080, 1920));
    assert!(s.starts_with("[Script Info]\n"));
    assert!(s.contains("\nPlayResX: 1080\nPlayResY: 1920\n"));
    assert!(s.contains("\nScaledBorderAndShadow: yes\n"));
    assert!(s.contains("\nWrapStyle: 0\n"));
    // 0.055 * 1920 = 105.6 -> 106 px; margins 5 % of width (54) and of height (96).
    let style = s.lines().find(|l| l.starts_with("Style: ")).unwrap();
    let fields: Vec<&str> = style["Style: ".len()..].split(',').collect();
    assert_eq!(fields.len(), 23);
    assert_eq!(&fields[..3], ["Default", "DejaVu Sans", "106"]);
    assert_eq!(fields[3], "&H00FFFFFF", "white text");
    assert_eq!(fields[5], "&H00000000", "black outline");
    assert_eq!(fields[15], "1", "outline, not box");
    assert_eq!(fields[18], "2", "bottom centre");
    assert_eq!(&fields[19..22], ["54", "54", "96"]);
    let hd = write_ass(&[], &AssStyle::default(), VideoSize::default());
    assert!(
        hd.contains("Style: Default,DejaVu Sans,59,"),
        "0.055 * 1080 = 59.4 -> 59"
    );
    let boxed = AssStyle::boxed().style_line(VideoSize::default());
    assert_eq!(boxed.split(',').nth(15), Some("3"), "{boxed}");
    let shorts = AssStyle::shorts().style_line(VideoSize::new(1080, 1920));
    assert!(
        shorts.starts_with("Style: Default,DejaVu Sans,58,") && shorts.ends_with(",54,173,538,1"),
        "{shorts}"
    );
}

#[test]
fn ass_text_cannot_inject_override_tags() {
    let cues = vec![cue(0, 1000, &["{\\an8\\fs200}owned", "\\N\\h{\\b1}"])];
    let s = write_ass(&cues, &AssStyle::default(), VideoSize::default());
    let dialogue = s.lines().find(|l| l.starts_with("Dialogue:")).unwrap();
    let text = dialogue.splitn(10, ',').nth(9).unwrap();
    // Every brace is escaped and no backslash is followed directly by a letter or brace.
    for (i, c) in text.char_indices() {
        if c == '{' || c == '}' {
            assert!(text[..i].ends_with('\\'), "unescaped brace in {text:?}");
        }
    }
    assert_eq!(
        text.matches("\\N").count(),
        1,
        "only the real line break: {text:?}"
    );
    assert_eq!(parse_ass(&s).unwrap()[0].lines, cues[0].lines);
}

#[test]
fn ass_rounding_never_overlaps_even_below_a_centisecond() {
    // A 9 ms cue that touches the next one cannot keep its length in centiseconds; order wins.
    let cues = vec![cue(1005, 1014, &["b"]), cue(1014, 2000, &["c"])];
    let back = parse_ass(&write_ass(
        &cues,
        &AssStyle::default(),
        VideoSize::default(),
    ))
    .unwrap();
    assert!(
        back[0].end_ms <= back[1].start_ms && back[0].start_ms <= back[0].end_ms,
        "{back:?}"
    );
}

#[test]
fn ass_rounding_keeps_cues_apart() {
    let cues = vec![
        cue(0, 1004, &["a"]),
        cue(1005, 1020, &["b"]),
        cue(1020, 2000, &["c"]),
        cue(2003, 2006, &["d"]),
    ];
    let s = write_ass(&cues, &AssStyle::default(), VideoSize::default());
    let back = parse_ass(&s).unwrap();
    for pair in back.windows(2) {
        assert!(pair[0].end_ms <= pair[1].start_ms, "{back:?}");
    }
    for (orig, c) in cues.iter().zip(&back) {
        assert!(
            c.end_ms > c.start_ms,
            "a non-empty cue stays non-empty: {c:?}"
        );
        assert!(
            c.start_ms.abs_diff(orig.start_ms) <= 10 && c.end_ms.abs_diff(orig.end_ms) <= 10,
            "{orig:?} {c:?}"
        );
    }
}

#[test]
fn ass_parse_reads_format_order_and_skips_the_rest() {
    let s = "[Script Info]\nTitle: x\nWrapStyle: 2\n\n[V4+ Styles]\nFormat: Name, Fontname\nStyle: Default,Arial\n\n[Events]\nFormat: Layer, End, Start, Style, Name, MarginL, MarginR, MarginV, Effect, Text\nComment: 0,0:00:09.00,0:00:01.00,Default,,0,0,0,,ignored\nDialogue: 0,0:00:02.50,0:00:01.00,Default,,0,0,0,,{\\an8}Top, with, commas\\nsoft\\Nhard\n; comment\nDialogue: 0,1:00:00.00,0:59:59.99,Default,Bob,0,0,0,,\\{literal\\}\n";
    let cues = parse_ass(s).unwrap();
    assert_eq!(cues.len(), 2);
    assert_eq!((cues[0].start_ms, cues[0].end_ms), (1000, 2500));
    assert_eq!(
        cues[0].lines,
        ["Top, with, commas", "soft", "hard"],
        "WrapStyle 2 makes \\n a break"
    );
    assert_eq!((cues[1].start_ms, cues[1].end_ms), (3_599_990, 3_600_000));
    assert_eq!(cues[1].lines, ["{literal}"]);
    // No Format line: the standard order.
    let cues =
        parse_ass("[Events]\nDialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,hi\n").unwrap();
    assert_eq!(cues[0].lines, ["hi"]);
}

#[test]
fn ass_errors_name_the_line() {
    let cases = [
        ("hello\n", 1, "expected an ASS script"),
        (
            "[Events]\nFormat: Layer, Start, Style, Text\n",
            2,
            "no \"end\" field",
        ),
        ("[Events]\nDialogue: 0,0:00:01.00\n", 2, "fields"),
        (
            "[Events]\nDialogue: 0,0:00:01.00,0:0x:02.00,Default,,0,0,0,,hi\n",
            2,
            "end time: malformed",
        ),
        (
            "[Events]\n\nDialogue: 0,0:00:03.00,0:00:02.00,Default,,0,0,0,,hi\n",
            3,
            "ends before it starts",
        ),
    ];
    // No [Events] section and negative times are read with warnings now (see tests/wild.rs).
    for (input, line, msg) in cases {
        let e = parse_ass(input).unwrap_err();
        assert_eq!(e.line, line, "{input:?}: {e}");
        assert!(e.to_string().contains(msg), "{input:?}: {e}");
    }
    assert!(parse_ass("").unwrap().is_empty());
}

// ---------- JSON ----------

fn document() -> Document {
    let words = vec![
        w(" Привет", 0, 400),
        w(",", 400, 400),
        w(" мир", 450, 900),
        w(" 🎉", 900, 1200),
    ];
    let mut doc = Document {
        source: Some("talk.mp4".into()),
        language: Some("ru".into()),
        language_probability: Some(0.97),
        model: Some("small".into()),
        duration_ms: 1500,
        profile: "standard".into(),
        cues: vec![Cue {
            start_ms: 0,
            end_ms: 1700,
            lines: vec!["Привет, мир 🎉".into()],
            words: words.clone(),
        }],
        words,
        ..Document::default()
    };
    doc.timings_ms.insert("transcribe".into(), 1234);
    doc.warnings.push("low confidence".into());
    doc
}

#[test]
fn json_round_trip() {
    let doc = document();
    let s = write_json(&doc);
    assert!(s.ends_with("}\n"));
    assert!(s.contains("\n  \"version\": 1,\n"), "pretty printed");
    assert_eq!(parse_json(&s).unwrap(), doc);
    // Cues without words omit the field.
    let plain = Document {
        cues: vec![cue(0, 1000, &["x"])],
        ..Document::default()
    };
    assert!(!write_json(&plain).contains("\"words\": []\n    }"));
    assert_eq!(parse_json(&write_json(&plain)).unwrap(), plain);
}

#[test]
fn json_lenient_fields_and_nan_probability() {
    let doc =
        parse_json(r#"{"version": 1, "cues": [{"start_ms": 0, "end_ms": 5, "lines": ["a"]}]}"#)
            .unwrap();
    assert_eq!(doc.cues[0].lines, ["a"]);
    assert!(doc.words.is_empty() && doc.source.is_none());
    let mut doc = Document::default();
    doc.words.push(Word {
        text: " x".into(),
        start_ms: 0,
        end_ms: 1,
        prob: f32::NAN,
    });
    let back = parse_json(&write_json(&doc)).unwrap();
    assert!(back.words[0].prob.is_nan());
}

#[test]
fn json_errors() {
    let e = parse_json("{\n  \"version\": 1,\n  \"cues\": [1]\n}").unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(
        e.to_string()
            .starts_with("line 3: invalid AutoSub JSON document: invalid type"),
        "{e}"
    );
    let e = parse_json(r#"{"version": 2}"#).unwrap_err();
    assert!(
        e.to_string().contains("unsupported document version 2"),
        "{e}"
    );
    assert!(parse_json("").is_err());
    assert!(parse_json("WEBVTT").is_err());
    assert!(parse_json("{}")
        .unwrap_err()
        .to_string()
        .contains("missing field `version`"));
}

// ---------- Format ----------

#[test]
fn format_names_and_extensions() {
    for f in Format::ALL {
        assert_eq!(f.extension().parse::<Format>().unwrap(), f);
        assert_eq!(f.to_string(), f.extension());
        assert_eq!(
            Format::from_path_ext(&format!("/tmp/my.talk.{}", f.extension().to_uppercase())),
            Some(f)
        );
    }
    assert_eq!("WebVTT".parse::<Format>(), Ok(Format::Vtt));
    assert_eq!(".srt".parse::<Format>(), Ok(Format::Srt));
    assert!("txt"
        .parse::<Format>()
        .unwrap_err()
        .to_string()
        .contains("srt, vtt, ass, json"));
    assert_eq!(Format::from_path_ext("noext"), None);
    assert_eq!(Format::from_path_ext("dir.srt/file"), None);
    assert_eq!(Format::from_path_ext("C:\\subs\\a.vtt"), Some(Format::Vtt));
}

#[test]
fn parse_any_dispatches() {
    let cues = tricky_cues();
    assert_same(
        &parse_any(&write_srt(&cues), Format::Srt).unwrap(),
        &cues,
        0,
    );
    assert_same(
        &parse_any(&write_vtt(&cues), Format::Vtt).unwrap(),
        &cues,
        0,
    );
    assert_same(
        &parse_any(
            &write_ass(&cues, &AssStyle::shorts(), VideoSize::new(1080, 1920)),
            Format::Ass,
        )
        .unwrap(),
        &cues,
        10,
    );
    let doc = document();
    assert_eq!(
        parse_any(&write_json(&doc), Format::Json).unwrap(),
        doc.cues
    );
}

// ---------- hostile input ----------

#[test]
fn mutated_files_never_panic() {
    let cues = tricky_cues();
    let seeds = [
        write_srt(&cues),
        write_vtt(&cues),
        write_ass(&cues, &AssStyle::default(), VideoSize::default()),
        write_json(&document()),
    ];
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let alphabet: Vec<char> = "0123456789:,.-> \n\r{}\\[]<>&;#WEBVTTDialogue:é🎉\u{feff}"
        .chars()
        .collect();
    for _ in 0..3000 {
        let base = &seeds[rng.below(seeds.len() as u64) as usize];
        let mut chars: Vec<char> = base.chars().collect();
        for _ in 0..1 + rng.below(8) {
            let pos = rng.below(chars.len() as u64 + 1) as usize;
            match rng.below(4) {
                0 if pos < chars.len() => {
                    chars.remove(pos);
                }
                1 => chars.insert(pos, alphabet[rng.below(alphabet.len() as u64) as usize]),
                2 => chars.truncate(pos),
                _ if pos < chars.len() => {
                    chars[pos] = alphabet[rng.below(alphabet.len() as u64) as usize]
                }
                _ => {}
            }
        }
        let s: String = chars.into_iter().collect();
        for f in Format::ALL {
            if let Ok(cues) = parse_any(&s, f) {
                for c in &cues {
                    assert!(c.end_ms >= c.start_ms, "{f}: {c:?} from {s:?}");
                    assert!(c.lines.iter().all(|l| !l.contains('\n')));
                }
            }
        }
    }
}
