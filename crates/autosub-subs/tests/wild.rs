//! Subtitle files from the wild (issue 14): real files from other projects' test suites in
//! `tests/fixtures/subs/` (see its README for sources and licences), legacy encodings, and the lenient
//! timing rules of ffmpeg and pysubs2.

use autosub_subs::{
    decode_text, parse_any, parse_ass, parse_srt, parse_subtitles, parse_vtt, DecodeError, Decoded,
    EncodingSource, Format, Parsed,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../tests/fixtures/subs/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn read(name: &str, format: Format) -> (Decoded, Parsed) {
    let decoded = decode_text(&fixture(name), None).unwrap();
    let parsed = parse_subtitles(&decoded.text, format).unwrap_or_else(|e| panic!("{name}: {e}"));
    (decoded, parsed)
}

fn lines(p: &Parsed) -> Vec<Vec<String>> {
    p.cues.iter().map(|c| c.lines.clone()).collect()
}

fn times(p: &Parsed) -> Vec<(u64, u64)> {
    p.cues.iter().map(|c| (c.start_ms, c.end_ms)).collect()
}

/// The six cues go-astisub's examples share, in whichever format.
const ASTISUB_TIMES: [(u64, u64); 6] = [
    (99_000, 101_040),
    (124_080, 127_120),
    (132_160, 135_200),
    (140_240, 142_280),
    (148_320, 151_360),
    (151_400, 153_440),
];

#[test]
fn utf16_srt_with_a_bom_and_loose_timestamps() {
    let (d, p) = read("astisub-example-in-non-utf8.srt", Format::Srt);
    assert_eq!(
        (d.encoding, d.source, d.lossy),
        ("UTF-16LE", EncodingSource::Bom, false)
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    // `00:01:39` without a fraction, `,04` and `.16` as hundredths.
    assert_eq!(times(&p), ASTISUB_TIMES);
    assert_eq!(p.cues[1].lines, ["MAN:", "How did we end up here?"]);
    assert_eq!(p.cues[5].lines, ["(computer playing", "electronic melody)"]);
}

#[test]
fn srt_without_cue_numbers() {
    let (d, p) = read("astisub-missing-sequence-in.srt", Format::Srt);
    assert_eq!((d.encoding, d.source), ("UTF-8", EncodingSource::Utf8));
    assert_eq!(times(&p), ASTISUB_TIMES);
    assert!(p.warnings.is_empty());
}

#[test]
fn styled_srt_becomes_canonical_markup() {
    let (_, p) = read("astisub-example-in-styled.srt", Format::Srt);
    assert!(p.warnings.is_empty());
    let got = lines(&p);
    assert_eq!(
        got[0],
        ["<font color=\"#00ff00\"><b>[instrumental music]</b></font>"]
    );
    assert_eq!(got[3], ["<b><u>[dog barking]</u></b>"]);
    assert_eq!(got[5], ["[automated]", "<i>'The time is 7:35.'</i>"]);
    // Italics across two lines are closed and reopened on each line; an unterminated tag ends with its cue.
    assert_eq!(
        got[6],
        [
            "<i>Test with multi line italics</i>",
            "<i>Terminated on the next line</i>"
        ]
    );
    assert_eq!(got[7], ["<i>Unterminated styles</i>"]);
    assert_eq!(got[8], ["Do no fall to the next item"]);
    assert_eq!(got[9], ["<i>x</i>^3 * <i>x</i> = 100"]);
    assert_eq!(p.cues[9].visible_text(), "x^3 * x = 100");
}

#[test]
fn srt_with_bom_entities_and_cr_line_ends() {
    let (d, p) = read("astisub-example-in-html-entities.srt", Format::Srt);
    assert_eq!((d.encoding, d.source), ("UTF-8", EncodingSource::Bom));
    // SRT has no character references: what the file says is what is shown (as ffmpeg shows it).
    assert_eq!(
        p.cues[0].lines,
        [
            "The man in black fled across the desert, &nbsp;",
            "&amp; the gunslinger followed."
        ]
    );
    assert_eq!(times(&p), [(331, 3750), (4101, 5430), (6331, 9675)]);

    let (_, p) = read("astisub-example-in-carriage-return.srt", Format::Srt);
    assert_eq!(times(&p), [(0, 3766), (3767, 10_732), (10_733, 14_066)]);
    assert_eq!(
        p.cues[1].lines,
        [
            "That's true. You don’t often find 632",
            "pieces of gum stuck on a sidewalk"
        ]
    );
}

#[test]
fn ssa_v4_script() {
    let (_, p) = read("astisub-example-in.ssa", Format::Ass);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(times(&p), ASTISUB_TIMES);
    // `{\pos(400,570)}` is dropped; `\n` is a space with the default wrap style.
    assert_eq!(p.cues[0].lines, ["(deep rumbling)"]);
    assert_eq!(p.cues[1].lines, ["MAN: How did we end up here?"]);
}

#[test]
fn vtt_with_style_blocks_and_old_region_lines() {
    let (d, p) = read("astisub-example-in.vtt", Format::Vtt);
    assert_eq!(d.source, EncodingSource::Bom);
    assert_eq!(times(&p), ASTISUB_TIMES);
    // A STYLE block with a blank line inside, and `Region:` lines of an old draft: blocks without a timing
    // line, skipped as a browser skips them, each with a warning.
    let w: Vec<(usize, bool)> = p
        .warnings
        .iter()
        .map(|w| (w.line, w.message.contains("block skipped")))
        .collect();
    assert_eq!(w, [(22, true), (26, true)], "{:?}", p.warnings);
    assert_eq!(parse_vtt(&d.text).unwrap(), p.cues);
}

#[test]
fn vtt_markup_from_the_wild() {
    let (_, p) = read("pysubs2-vtt_example.vtt", Format::Vtt);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let got = lines(&p);
    assert_eq!(got[0], ["Cyan!"], "<lang> dropped");
    assert_eq!(got[1], ["I like lime."], "<v Salame> dropped");
    assert_eq!(got[2], ["- Hello <b>world</b>."]);
    // `<u.myclass>` keeps the underline; ruby keeps its base, not the annotation.
    assert_eq!(
        got[3],
        ["This is the first subtitle.", "<u>Yellow!</u>", "Yellow!"]
    );
    assert!(got[5].is_empty(), "the empty cue stays, without lines");
    assert_eq!(got[8], ["Would you like to get a coffee?"]);
    assert_eq!(got[10].first().map(String::as_str), Some("{"));
    assert_eq!(p.cues.len(), 11);
    assert_eq!(times(&p)[6], (37_159, 38_743));
}

#[test]
fn aegisub_script_with_graphics_and_one_empty_dialogue() {
    let (d, p) = read("pysubs2-attached_images_aegisub.ass", Format::Ass);
    assert_eq!(d.source, EncodingSource::Bom);
    assert_eq!(times(&p), [(0, 5000)]);
    assert!(p.cues[0].lines.is_empty());
    assert!(p.warnings.is_empty());
    // The same script with its [Events] cut off: styles and graphics, no subtitles. An empty document
    // with a warning, not an error.
    let head = &d.text[..d.text.find("[Events]").unwrap()];
    let p = parse_subtitles(head, Format::Ass).unwrap();
    assert!(p.cues.is_empty());
    assert_eq!(p.warnings.len(), 1);
    assert!(p.warnings[0].message.contains("no [Events] section"));
    assert!(parse_ass(head).unwrap().is_empty());
}

// ---------- encodings ----------

#[test]
fn real_windows_1250_and_1251_files_are_detected() {
    let (d, p) = read("juvoplayer-subs_windows-1250.srt", Format::Srt);
    assert_eq!(
        (d.encoding, d.source, d.lossy),
        ("windows-1250", EncodingSource::Detected, false)
    );
    assert_eq!(
        p.cues[0].lines,
        ["[Central Europe] 0.5: Ąą Ćć Ęę Łł Ńń Óó Śś Źź Żż"]
    );
    assert_eq!(p.cues.len(), 9);

    let (d, p) = read("juvoplayer-subs_windows-1251.srt", Format::Srt);
    assert_eq!(
        (d.encoding, d.source),
        ("windows-1251", EncodingSource::Detected)
    );
    assert_eq!(
        p.cues[8].lines,
        ["[Cyrylic] 5.0: Жж Зз Кк Лл Ыы Чч Щщ Ъъ Ыы Юю Яя"]
    );
    // Forcing the encoding gives the same text.
    let forced = decode_text(&fixture("juvoplayer-subs_windows-1251.srt"), Some("cp1251")).unwrap();
    assert_eq!(
        (forced.text.as_str(), forced.source),
        (d.text.as_str(), EncodingSource::Forced)
    );
    // Forcing UTF-8 on it is an error naming the first bad line and what the file looks like.
    let e = decode_text(&fixture("juvoplayer-subs_windows-1251.srt"), Some("utf-8")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 3: the file is not valid UTF-8 (it looks like windows-1251)"
    );
}

/// A Pushkin stanza (public domain) and Czech sentences, as SRT.
fn srt_text(lang: &str) -> String {
    let lines: &[&str] = if lang == "ru" {
        &[
            "Я помню чудное мгновенье:",
            "Передо мной явилась ты,",
            "Как мимолётное виденье,",
            "Как гений чистой красоты.",
            "В томленьях грусти безнадежной,",
            "В тревогах шумной суеты,",
        ]
    } else {
        &[
            "Příliš žluťoučký kůň úpěl ďábelské ódy.",
            "Dobrý den, jak se máte?",
            "Děkuji, mám se dobře, ale venku prší.",
            "Zítra pojedeme vlakem do Brna.",
            "Čtyři sta čtyřicet čtyři stříbrných stříkaček.",
            "Řeka teče pod mostem.",
        ]
    };
    let mut out = String::new();
    for (i, pair) in lines.chunks(2).enumerate() {
        out.push_str(&format!(
            "{}\r\n00:00:{:02},000 --> 00:00:{:02},500\r\n{}\r\n{}\r\n\r\n",
            i + 1,
            i * 3,
            i * 3 + 2,
            pair[0],
            pair[1]
        ));
    }
    out
}

#[test]
fn generated_legacy_encodings_are_detected() {
    // Real Russian and Czech text re-encoded here with encoding_rs (no real file in these encodings with
    // whole sentences was found under a permissive licence).
    // (language, encoding, what the detector may answer: KOI8-U is KOI8-R plus a few Ukrainian letters)
    let cases = [
        ("ru", encoding_rs::WINDOWS_1251, &["windows-1251"][..]),
        ("ru", encoding_rs::KOI8_R, &["KOI8-R", "KOI8-U"][..]),
        ("cs", encoding_rs::WINDOWS_1250, &["windows-1250"][..]),
        ("cs", encoding_rs::ISO_8859_2, &["ISO-8859-2"][..]),
    ];
    for (lang, encoding, names) in cases {
        let text = srt_text(lang);
        let (bytes, _, unmappable) = encoding.encode(&text);
        assert!(!unmappable, "{lang} in {}", encoding.name());
        let d = decode_text(&bytes, None).unwrap();
        assert!(
            names.contains(&d.encoding) && (d.source, d.lossy) == (EncodingSource::Detected, false),
            "{lang} in {}: {d:?}",
            encoding.name()
        );
        assert_eq!(d.text, text);
        let cues = parse_srt(&d.text).unwrap();
        assert_eq!(cues.len(), 3);
        assert!(cues[0].lines[0].starts_with(if lang == "ru" {
            "Я помню"
        } else {
            "Příliš"
        }));
        assert_eq!(
            decode_text(&bytes, Some(encoding.name())).unwrap().text,
            text
        );
    }
}

#[test]
fn utf16_with_and_without_a_bom() {
    let text = srt_text("ru");
    for (le, bom) in [(true, true), (false, true), (true, false), (false, false)] {
        let mut bytes = Vec::new();
        if bom {
            bytes.extend_from_slice(if le { &[0xff, 0xfe] } else { &[0xfe, 0xff] });
        }
        for unit in text.encode_utf16() {
            bytes.extend(if le {
                unit.to_le_bytes()
            } else {
                unit.to_be_bytes()
            });
        }
        let d = decode_text(&bytes, None).unwrap();
        assert_eq!(d.encoding, if le { "UTF-16LE" } else { "UTF-16BE" });
        assert_eq!(
            d.source,
            if bom {
                EncodingSource::Bom
            } else {
                EncodingSource::Utf16Pattern
            }
        );
        assert_eq!(parse_srt(&d.text).unwrap().len(), 3);
    }
}

#[test]
fn forced_encoding_names() {
    let text = srt_text("cs");
    let (bytes, _, _) = encoding_rs::WINDOWS_1250.encode(&text);
    for label in ["windows-1250", "cp1250", "x-cp1250", "WINDOWS-1250"] {
        assert_eq!(
            decode_text(&bytes, Some(label)).unwrap().text,
            text,
            "{label}"
        );
    }
    // latin1 is windows-1252 (WHATWG): a Czech file read as it gives other letters, without an error.
    let d = decode_text(&bytes, Some("latin1")).unwrap();
    assert_eq!(d.encoding, "windows-1252");
    assert_ne!(d.text, text);
    assert_eq!(
        decode_text(&bytes, Some("cp-1250-please")),
        Err(DecodeError::UnknownEncoding("cp-1250-please".into()))
    );
    let e = decode_text(b"x", Some("cp-1250-please")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unknown encoding \"cp-1250-please\""),
        "{e}"
    );
}

// ---------- lenient timing ----------

#[test]
fn pysubs2_malformed_srt_is_read() {
    // From pysubs2's tests/formats/test_subrip.py (test_read_malformed, MIT): no cue number, no blank line,
    // leading whitespace, `->`, one-digit hours and two-digit fractions.
    let text = "00:00:00.000 ->00:01:00.000\nAn example subtitle.\n     0:01:00,00 --> 0:02:00,00\n     Subtitle number\ntwo.\n";
    let p = parse_subtitles(text, Format::Srt).unwrap();
    assert_eq!(times(&p), [(0, 60_000), (60_000, 120_000)]);
    assert_eq!(lines(&p)[0], ["An example subtitle."]);
    assert_eq!(lines(&p)[1], ["Subtitle number", "two."]);
    assert!(p.warnings.is_empty());

    // test_read_bad_tags: stray spaces, bad nesting, an unknown closing tag.
    let text = "1\n00:00:10,500 --> 00:00:13,000\n< u><i><font color=\"red\" >Elephant's < s>Dream< /  i > Is Long</s> And Badly Nested</xyz>\n\n";
    let cues = parse_srt(text).unwrap();
    assert_eq!(
        cues[0].visible_text(),
        "Elephant's Dream Is Long And Badly Nested"
    );
    assert_eq!(
        cues[0].lines,
        ["<font color=\"#ff0000\"><i><u>Elephant's <s>Dream</s></u></i><u><s> Is Long</s> And Badly Nested</u></font>"]
    );

    // test_empty_subtitles (pysubs2 issue #11): empty cues between numbered ones.
    let text = "\n392\n00:29:27,46 --> 00:29:29,83\nI'm Liza Minnelli..\n\n393\n00:00:00,00 --> 00:00:00,00\n\n394\n00:00:00,00 --> 00:00:00,00\n";
    let p = parse_subtitles(text, Format::Srt).unwrap();
    assert_eq!(times(&p), [(1_767_460, 1_769_830), (0, 0), (0, 0)]);
    assert_eq!(lines(&p)[0], ["I'm Liza Minnelli.."]);
    assert!(p.cues[1].lines.is_empty() && p.cues[2].lines.is_empty());
}

#[test]
fn negative_times_are_clamped_with_a_warning() {
    let srt = "1\n-00:00:01,000 --> 00:00:02,000\nshifted too far\n\n2\n-00:00:03,000 --> -00:00:01,500\ngone\n\n3\n00:00:04,000 --> 00:00:05,000\nfine\n";
    let p = parse_subtitles(srt, Format::Srt).unwrap();
    assert_eq!(times(&p), [(0, 2000), (0, 0), (4000, 5000)]);
    let w: Vec<String> = p.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        [
            "line 2: negative time \"-00:00:01,000\" read as 0",
            "line 6: negative time \"-00:00:03,000\" read as 0",
            "line 6: negative time \"-00:00:01,500\" read as 0",
        ]
    );
    assert_eq!(parse_srt(srt).unwrap(), p.cues);

    let vtt = "WEBVTT\n\n-00:01.000 --> 00:02.000\nx\n";
    let p = parse_subtitles(vtt, Format::Vtt).unwrap();
    assert_eq!((times(&p), p.warnings.len()), (vec![(0, 2000)], 1));

    let ass = "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\nDialogue: 0,-0:00:01.00,0:00:02.00,Default,,0,0,0,,hi\n";
    let p = parse_subtitles(ass, Format::Ass).unwrap();
    assert_eq!(times(&p), [(0, 2000)]);
    assert_eq!(
        p.warnings[0].to_string(),
        "line 3: negative start time \"-0:00:01.00\" read as 0"
    );
}

#[test]
fn ass_times_the_way_pysubs2_reads_them() {
    let ass = "[Script Info]\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n\
        Dialogue: 0,0:0:0.04,0:0:1.5,Default,,0,0,0,,one-digit fields\n\
        Dialogue: 0,0:00:02,0:00:03,Default,,0,0,0,,no fraction\n\
        Dialogue: 0,0:00:04.123456,0:00:05.9,Default,,0,0,0,,long and short fraction\n";
    let p = parse_subtitles(ass, Format::Ass).unwrap();
    assert_eq!(
        times(&p),
        [(40, 1500), (2000, 3000), (4123, 5900)],
        "{:?}",
        p.warnings
    );
    assert!(p.warnings.is_empty());
}

#[test]
fn unreadable_cues_are_skipped_with_the_line_and_an_unreadable_file_is_refused() {
    // A broken cue among good ones: skipped, named in a warning.
    let srt = "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 --> 00:61:00,000\nbroken minutes\n\n3\n00:00:05,000 --> 00:00:04,000\nbackwards\n\n4\nnot a timing\n\n5\n00:00:07,000 --> 00:00:08,000\nlast\n";
    let p = parse_subtitles(srt, Format::Srt).unwrap();
    assert_eq!(times(&p), [(1000, 2000), (7000, 8000)]);
    let w: Vec<usize> = p.warnings.iter().map(|w| w.line).collect();
    assert_eq!(w, [6, 10, 14], "{:?}", p.warnings);
    assert!(p.warnings[0].message.contains("out of range"));
    assert!(p.warnings[1].message.contains("ends before it starts"));
    assert!(p.warnings[2]
        .message
        .contains("expected a timing line like 00:00:01,000 --> 00:00:02,000 after cue number 4"));
    // Text after a blank line inside a cue is kept, as ffmpeg and pysubs2 keep it.
    let p = parse_subtitles(
        "1\n00:00:01,000 --> 00:00:02,000\nfirst\n\nsecond paragraph\n",
        Format::Srt,
    )
    .unwrap();
    assert_eq!(lines(&p), [["first", "second paragraph"]]);
    assert_eq!(p.warnings[0].line, 5);
    // Junk before the first cue (a title) is skipped.
    let p = parse_subtitles(
        "My Movie (2004)\n\n1\n00:00:01,000 --> 00:00:02,000\nhi\n",
        Format::Srt,
    )
    .unwrap();
    assert_eq!((p.cues.len(), p.warnings[0].line), (1, 1));
    // Nothing readable at all: the first problem is the error, with its line.
    let e = parse_srt("1\n00:00:01,000 --> 00:61:00,000\nx\n\n2\n00:00:0\n").unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.to_string().contains("out of range"), "{e}");
    let e = parse_any("This is not a subtitle file.\nAt all.\n", Format::Srt).unwrap_err();
    assert_eq!(e.line, 1);
    // The error says what was wrong, not that something was skipped.
    let e = parse_srt("1\nnot a timing line\nhello\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 2: expected a timing line like 00:00:01,000 --> 00:00:02,000 after cue number 1, found \"not a timing line\""
    );
    // ASS: a bad Dialogue among good ones is skipped; a file of only bad ones is refused.
    let ass = "[Events]\nDialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,ok\nDialogue: 0,0:00:0x.00,0:00:02.00,Default,,0,0,0,,bad\nDialogue: 0,0:00:01.00\n";
    let p = parse_subtitles(ass, Format::Ass).unwrap();
    assert_eq!(p.cues.len(), 1);
    assert_eq!(
        p.warnings.iter().map(|w| w.line).collect::<Vec<_>>(),
        [3, 4]
    );
    let e =
        parse_ass("[Events]\nDialogue: 0,0:00:0x.00,0:00:02.00,Default,,0,0,0,,bad\n").unwrap_err();
    assert_eq!(e.line, 2);
}

#[test]
fn arrows_and_spacing() {
    for timing in [
        "00:00:01,000 --> 00:00:02,000",
        "00:00:01,000 -> 00:00:02,000",
        "00:00:01,000-->00:00:02,000",
        "  00:00:01,000   -->   00:00:02,000  ",
        "0:0:1,0 --> 0:0:2,0",
        "00:00:01.000 --> 00:00:02.000 X1:1 X2:2 Y1:3 Y2:4",
    ] {
        let cues = parse_srt(&format!("  1  \n{timing}\n  text  \n")).unwrap();
        assert_eq!(
            (cues[0].start_ms, cues[0].end_ms),
            (1000, 2000),
            "{timing:?}"
        );
        assert_eq!(cues[0].lines, ["text"]);
    }
    // `->` inside text is text.
    let cues = parse_srt("1\n00:00:01,000 --> 00:00:02,000\na -> b\n").unwrap();
    assert_eq!(cues[0].lines, ["a -> b"]);
}
