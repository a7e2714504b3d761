//! Markup in subtitle files (issue 14): SRT and WebVTT tags, ASS override tags, all read into one canonical
//! form, written back as each format's own markup (ASS override tags in the burned-in script), and never
//! counted or shown as text.

use autosub_subs::{
    lint, parse_ass, parse_srt, parse_vtt, retime, visible_lines, visible_text, write_ass,
    write_bilingual_script, write_burn_script, write_srt, write_vtt, AssStyle, BurnLook, Cue,
    Profile, VideoSize, Word,
};

/// The Dialogue Text fields of a script.
fn texts(script: &str) -> Vec<&str> {
    script
        .lines()
        .filter(|l| l.starts_with("Dialogue:"))
        .map(|l| l.splitn(10, ',').nth(9).unwrap())
        .collect()
}

/// What libass shows of a Text field: override blocks removed, escapes undone.
fn shown(text: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('{' | '}')) => {
                if depth == 0 {
                    out.push(chars.next().unwrap());
                } else {
                    chars.next();
                }
            }
            '{' => depth += 1,
            '}' => depth -= 1,
            '\\' if chars.peek() == Some(&'N') => {
                chars.next();
                out.push('\n');
            }
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

const SRT: &str = "1\n00:00:00,500 --> 00:00:02,500\n<i>Ask not</i> what your <b>country</b>\n\n\
    2\n00:00:03,000 --> 00:00:05,000\n<u>can do</u> for <font color=\"#ff0000\">you</font>\n\n\
    3\n00:00:05,500 --> 00:00:07,000\n< u>broken tag</u> and <blink>unknown</blink>\n";

const VTT: &str =
    "WEBVTT\n\n00:00.500 --> 00:02.500\n<v Kennedy>Ask not</v> what <c.yellow>your</c> country\n\n\
    00:03.000 --> 00:05.000\n<ruby>can<rt>annotation</rt></ruby> <i>do</i> &amp; <b>for</b> you\n";

#[test]
fn srt_and_vtt_markup_is_read_into_the_canonical_form() {
    let cues = parse_srt(SRT).unwrap();
    let lines: Vec<&str> = cues.iter().map(|c| c.lines[0].as_str()).collect();
    assert_eq!(
        lines,
        [
            "<i>Ask not</i> what your <b>country</b>",
            "<u>can do</u> for <font color=\"#ff0000\">you</font>",
            "<u>broken tag</u> and unknown",
        ]
    );
    let cues = parse_vtt(VTT).unwrap();
    let lines: Vec<&str> = cues.iter().map(|c| c.lines[0].as_str()).collect();
    assert_eq!(
        lines,
        [
            "Ask not what <font color=\"#ffff00\">your</font> country",
            "can <i>do</i> & <b>for</b> you",
        ]
    );
}

#[test]
fn burned_script_has_styling_and_no_tags_as_text() {
    for (cues, expect) in [
        (
            parse_srt(SRT).unwrap(),
            &["\\i1", "\\b1", "\\u1", "\\c&H0000FF&"][..],
        ),
        (
            parse_vtt(VTT).unwrap(),
            &["\\i1", "\\b1", "\\c&H00FFFF&"][..],
        ),
    ] {
        for look in ["clean", "boxed", "karaoke", "shorts"] {
            let style = AssStyle::by_name(look).unwrap();
            let script = write_burn_script(
                &cues,
                &BurnLook::Style(style),
                VideoSize::new(1280, 720),
                None,
            );
            for text in texts(&script) {
                let s = shown(text);
                for tag in ["<", ">", "Kennedy", "annotation", "&amp;", "blink"] {
                    assert!(!s.contains(tag), "{tag} shown in {text}");
                }
            }
            for e in expect {
                assert!(script.contains(e), "{e} missing in {script}");
            }
            let read_back: Vec<String> = parse_ass(&script)
                .unwrap()
                .iter()
                .map(Cue::visible_text)
                .collect();
            let visible: Vec<String> = cues.iter().map(Cue::visible_text).collect();
            assert_eq!(read_back, visible);
        }
    }
}

#[test]
fn closing_tags_go_back_to_the_style_not_to_plain() {
    // Inside a bold style, `</b>` must not turn bold off, and `</font>` returns to the style's own colour.
    let cue = Cue::new(
        0,
        1000,
        vec!["<b>x</b> y <font color=\"#00ff00\">green</font> z".into()],
    );
    let script = write_ass(&[cue], &AssStyle::karaoke(), VideoSize::default());
    let text = texts(&script)[0];
    assert_eq!(text, "{\\b1}x{\\b} y {\\c&H00FF00&}green{\\c} z");
    assert!(!text.contains("\\b0") && !text.contains("\\r"));
}

#[test]
fn user_text_still_cannot_inject_override_tags() {
    // Literal braces and backslashes in the text, next to real markup.
    let cue = Cue::new(
        0,
        1000,
        vec!["<i>{\\an8\\fs200}owned</i> \\N {\\b1}".into()],
    );
    for script in [
        write_ass(
            std::slice::from_ref(&cue),
            &AssStyle::default(),
            VideoSize::default(),
        ),
        write_bilingual_script(
            std::slice::from_ref(&cue),
            Some(std::slice::from_ref(&cue)),
            &BurnLook::Style(AssStyle::default()),
            VideoSize::default(),
            None,
        ),
    ] {
        for text in texts(&script) {
            let text = text.strip_prefix("{\\fscx85\\fscy85}").unwrap_or(text);
            // The only override blocks are the markup's.
            let blocks: Vec<&str> = text
                .match_indices('{')
                .filter(|(i, _)| !text[..*i].ends_with('\\'))
                .map(|(i, _)| &text[i..i + text[i..].find('}').unwrap() + 1])
                .collect();
            assert_eq!(blocks, ["{\\i1}", "{\\i}"], "{text}");
            assert_eq!(
                shown(text),
                "{\\\u{2060}an8\\\u{2060}fs200}owned \\\u{2060}N {\\\u{2060}b1}"
            );
        }
        assert_eq!(parse_ass(&script).unwrap()[0].lines, cue.lines);
    }
}

#[test]
fn ass_italics_survive_conversion_to_srt_and_vtt() {
    let ass = "[Script Info]\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n\
        Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\an8}{\\i1}Whispering{\\i0} loudly\\N{\\c&H00FFFF&\\b1}Yellow{\\r} plain\n";
    let cues = parse_ass(ass).unwrap();
    assert_eq!(
        cues[0].lines,
        [
            "<i>Whispering</i> loudly",
            "<font color=\"#ffff00\"><b>Yellow</b></font> plain"
        ]
    );
    let srt = write_srt(&cues);
    assert!(
        srt.contains(
            "<i>Whispering</i> loudly\n<font color=\"#ffff00\"><b>Yellow</b></font> plain\n"
        ),
        "{srt}"
    );
    assert_eq!(parse_srt(&srt).unwrap()[0].lines, cues[0].lines);
    let vtt = write_vtt(&cues);
    assert!(
        vtt.contains("<i>Whispering</i> loudly\n<c.yellow><b>Yellow</b></c> plain\n"),
        "{vtt}"
    );
    assert_eq!(parse_vtt(&vtt).unwrap()[0].lines, cues[0].lines);
}

#[test]
fn vtt_output_drops_what_webvtt_cannot_say() {
    let cue = Cue::new(
        0,
        1000,
        vec!["<s>struck</s> <font color=\"#123456\">odd</font> <font color=\"#ff00ff\">magenta</font> <u>under</u> a<b".into()],
    );
    let vtt = write_vtt(&[cue]);
    assert!(
        vtt.contains("\nstruck odd <c.magenta>magenta</c> <u>under</u> a&lt;b\n"),
        "{vtt}"
    );
}

#[test]
fn literal_tag_text_stays_literal_everywhere() {
    // `&lt;i&gt;` in WebVTT is the text "<i>", not italics, in every output.
    let cues =
        parse_vtt("WEBVTT\n\n00:01.000 --> 00:02.000\n&lt;i&gt;not italic&lt;/i&gt; {\\b1}\n")
            .unwrap();
    assert_eq!(cues[0].visible_text(), "<i>not italic</i> {\\b1}");
    let srt = write_srt(&cues);
    assert_eq!(parse_srt(&srt).unwrap()[0].lines, cues[0].lines);
    assert_eq!(
        parse_srt(&srt).unwrap()[0].visible_text(),
        "<i>not italic</i> {\\b1}"
    );
    let script = write_ass(&cues, &AssStyle::default(), VideoSize::default());
    assert!(!script.contains("\\i1"), "{script}");
    assert_eq!(shown(texts(&script)[0]), "<i>not italic</i> {\\\u{2060}b1}");
    let vtt = write_vtt(&cues);
    assert!(vtt.contains("&lt;i&gt;not italic&lt;/i&gt;"), "{vtt}");
}

#[test]
fn visible_text_is_what_a_viewer_reads() {
    assert_eq!(visible_text("<i>Ask not</i>"), "Ask not");
    assert_eq!(visible_text("<b></b>"), "");
    assert_eq!(visible_text("a < b"), "a < b");
    let lines = vec!["<b></b>".to_string(), "<i>one</i>".into(), "two".into()];
    assert_eq!(visible_lines(&lines), ["one", "two"]);
    let cue = Cue::new(0, 1, lines);
    assert_eq!(cue.visible_text(), "one two");
    assert_eq!(cue.visible_lines(), ["one", "two"]);
}

#[test]
fn lint_counts_only_what_a_viewer_reads() {
    let p = Profile::standard();
    // 41 readable characters on a line (42 is the limit) inside tags, and a line holding only a tag.
    // (Not "...can do for" / "you, ask...": that line break leaves "for" dangling, a bad-break.)
    let srt =
        "1\n00:00:00,000 --> 00:00:05,000\n<i>Ask not what your country can do for you,</i>\n\
        <font color=\"#ffff00\">ask what you can do for your country.</font>\n\n\
        2\n00:00:06,000 --> 00:00:08,000\n<b></b>\nCountry.\n";
    let cues = parse_srt(srt).unwrap();
    assert!(lint(&cues, &p).is_empty(), "{:?}", lint(&cues, &p));
    // The same, built by hand (lines that a parser would have normalised): still nothing to report.
    let raw = vec![
        Cue::new(
            0,
            5000,
            vec![
                "<i>Ask not what your country can do for you,</i>".into(),
                "<font color=\"#ffff00\">ask what you can do for your country.</font>".into(),
            ],
        ),
        Cue::new(
            6000,
            8000,
            vec!["<b></b>".into(), "Country.".into(), "<i> </i>".into()],
        ),
    ];
    assert!(lint(&raw, &p).is_empty(), "{:?}", lint(&raw, &p));
    // A malformed tag is not a character: 42 letters in `< u>`...`</u>` fit a line of 42.
    let srt = format!(
        "1\n00:00:00,000 --> 00:00:05,000\n< u>{}</u>\n",
        "x".repeat(42)
    );
    assert!(lint(&parse_srt(&srt).unwrap(), &p).is_empty());
    // Only tags: empty text.
    let v = lint(&[Cue::new(0, 2000, vec!["<i></i>".into()])], &p);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].rule, autosub_subs::Rule::EmptyText);
}

#[test]
fn translation_input_has_no_tags() {
    let cues = parse_srt(SRT).unwrap();
    let words: Vec<Word> = retime::words_of_cues(&cues);
    let text: String = words.iter().map(|w| w.text.as_str()).collect();
    assert_eq!(
        text.trim(),
        "Ask not what your country can do for you broken tag and unknown"
    );
    for s in retime::sentences(&words) {
        assert!(!s.text.contains('<'), "{}", s.text);
    }
}

#[test]
fn canonical_lines_round_trip_through_srt_and_ass() {
    let cues = vec![
        Cue::new(
            0,
            1000,
            vec!["<i>Ask not</i> what <b><i>your</i></b> country".into()],
        ),
        Cue::new(
            1000,
            2000,
            vec![
                "<font color=\"#ff8000\">orange <u>under</u></font> <s>gone</s>".into(),
                "a < b > c, <3, <<quoted>>, {curly} & \\back".into(),
            ],
        ),
        Cue::new(
            2000,
            3000,
            vec!["<\u{2060}i>literal<\u{2060}/i> <b>bold</b>".into()],
        ),
    ];
    assert_eq!(
        parse_srt(&write_srt(&cues))
            .unwrap()
            .iter()
            .map(|c| c.lines.clone())
            .collect::<Vec<_>>(),
        cues.iter().map(|c| c.lines.clone()).collect::<Vec<_>>()
    );
    let back = parse_ass(&write_ass(&cues, &AssStyle::boxed(), VideoSize::default())).unwrap();
    for (a, b) in cues.iter().zip(&back) {
        assert_eq!(a.lines, b.lines);
    }
}
