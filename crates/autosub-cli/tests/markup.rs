//! Subtitle files from the wild (issue 14): markup in .srt/.vtt burned as styling, not as text; lint counting
//! only what a viewer reads.

mod common;
use common::*;
use std::path::Path;

/// The Dialogue lines of an ASS script.
fn dialogues(script: &str) -> Vec<&str> {
    script
        .lines()
        .filter(|l| l.starts_with("Dialogue:"))
        .collect()
}

#[test]
fn markup_in_srt_and_vtt_becomes_styling_not_text_in_the_burned_script() {
    let dir = tempfile::tempdir().unwrap();
    let srt = dir.path().join("marked.srt");
    std::fs::write(
        &srt,
        "1\n00:00:00,500 --> 00:00:02,500\n<i>Ask not</i> what your <b>country</b>\n\n\
         2\n00:00:03,000 --> 00:00:05,000\n<u>can do</u> for <font color=\"#ff0000\">you</font>\n\n\
         3\n00:00:05,500 --> 00:00:07,000\n< u>broken tag</u> and <blink>unknown</blink>\n",
    )
    .unwrap();
    let vtt = dir.path().join("marked.vtt");
    std::fs::write(
        &vtt,
        "WEBVTT\n\n00:00.500 --> 00:02.500\n<v Kennedy>Ask not</v> what <c.yellow>your</c> country\n\n\
         00:03.000 --> 00:05.000\n<ruby>can<rt>annotation</rt></ruby> <i>do</i> &amp; <b>for</b> you\n",
    )
    .unwrap();
    for (subs, expect) in [
        (&srt, &["\\i1", "\\b1", "\\u1", "\\c&H"][..]),
        (&vtt, &["\\i1", "\\b1", "\\c&H"][..]),
    ] {
        let script = dir.path().join("burned.ass");
        let out = dir.path().join("out.mp4");
        autosub([
            "-q".as_ref(),
            "render".as_ref(),
            sample().as_os_str(),
            subs.as_os_str(),
            "--quality".as_ref(),
            "fast".as_ref(),
            "--save-script".as_ref(),
            script.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ])
        .ok();
        assert!(out.is_file());
        let text = std::fs::read_to_string(&script).unwrap();
        let lines = dialogues(&text);
        assert!(!lines.is_empty(), "{text}");
        for l in &lines {
            // Only override blocks use braces; no markup is left as text.
            let shown: String = {
                let mut depth = 0;
                l.chars()
                    .filter(|&c| {
                        match c {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            _ => return depth == 0,
                        }
                        false
                    })
                    .collect()
            };
            for tag in ["<", ">", "Kennedy", "annotation", "&amp;"] {
                assert!(!shown.contains(tag), "{tag} shown in {l}");
            }
        }
        for e in expect {
            assert!(text.contains(e), "{e} missing in {}", lines.join("\n"));
        }
    }
}

#[test]
fn lint_counts_only_what_a_viewer_reads() {
    let dir = tempfile::tempdir().unwrap();
    let srt = dir.path().join("tags.srt");
    // 41 readable characters on a line (42 is the limit), with tags around them; and a line holding only a tag.
    // Nothing here breaks the standard profile (the tags alone would make the lines too long).
    std::fs::write(
        &srt,
        "1\n00:00:00,000 --> 00:00:05,000\n<i>Ask not what your country can do for you,</i>\n\
         <font color=\"#ffff00\">ask what you can do for your country.</font>\n\n\
         2\n00:00:06,000 --> 00:00:08,000\n<b></b>\nCountry.\n",
    )
    .unwrap();
    let run = autosub(["lint".as_ref(), srt.as_os_str(), "--json".as_ref()]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

/// Russian text in Windows-1251 (А..я are 0xC0..0xFF there), as old Windows editors save it.
fn cp1251(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            'А'..='я' => 0xC0 + (c as u32 - 'А' as u32) as u8,
            c if c.is_ascii() => c as u8,
            c => panic!("{c} is not in this test's table"),
        })
        .collect()
}

/// `autosub -v render sample.mp4 SUBS --save-script S.ass EXTRA...`: the run and the script's Dialogue lines.
fn render_script(subs: &Path, extra: &[&str]) -> (Run, String) {
    let dir = subs.parent().unwrap();
    let script = dir.join("script.ass");
    let _ = std::fs::remove_file(&script);
    let mut args: Vec<std::ffi::OsString> = vec!["-v".into(), "render".into()];
    args.extend([sample().into(), subs.into()]);
    args.extend(["--quality", "fast", "--save-script"].map(Into::into));
    args.push(script.clone().into());
    args.extend(["-o".into(), dir.join("out.mp4").into()]);
    args.extend(extra.iter().map(Into::into));
    let run = autosub(args);
    let text = std::fs::read_to_string(&script).unwrap_or_default();
    (run, dialogues(&text).join("\n"))
}

#[test]
fn subtitle_files_in_other_encodings_are_read_and_say_which() {
    let dir = tempfile::tempdir().unwrap();
    let srt = dir.path().join("talk.srt");
    std::fs::write(
        &srt,
        cp1251(
            "1\r\n00:00:00,500 --> 00:00:03,000\r\nДобрый вечер, дорогие друзья.\r\n\r\n\
             2\r\n00:00:03,500 --> 00:00:06,000\r\nСегодня мы поговорим о погоде.\r\n",
        ),
    )
    .unwrap();
    let (run, script) = render_script(&srt, &[]);
    let run = run.ok();
    assert!(script.contains("Добрый вечер, дорогие друзья."), "{script}");
    assert!(
        run.stderr.contains("read as windows-1251 (detected)"),
        "{}",
        run.stderr
    );
    // --encoding forces one (here a wrong one: the text comes out as other letters, but it is read as asked).
    let (run, script) = render_script(&srt, &["--encoding", "koi8-r"]);
    run.ok();
    assert!(!script.contains("Добрый"), "{script}");
    // An encoding that does not exist is a clear refusal.
    let (run, _) = render_script(&srt, &["--encoding", "klingon"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("unknown encoding \"klingon\""),
        "{}",
        run.stderr
    );
    // A real UTF-16 file with a byte-order mark (go-astisub's test file).
    let utf16 = repo_root().join("tests/fixtures/subs/astisub-example-in-non-utf8.srt");
    let copy = dir.path().join("utf16.srt");
    std::fs::copy(&utf16, &copy).unwrap();
    let (run, script) = render_script(&copy, &[]);
    let run = run.ok();
    assert!(
        run.stderr.contains("read as UTF-16LE (byte-order mark)"),
        "{}",
        run.stderr
    );
    assert!(!script.is_empty());
}

#[test]
fn lenient_timing_is_read_and_what_was_skipped_is_named_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let srt = dir.path().join("wild.srt");
    // No cue numbers, `->`, stray spaces, a two-digit fraction, a negative start, and one cue that is broken.
    std::fs::write(
        &srt,
        "00:00:00,500 -> 00:00:02,00\nAsk not\n\n\
         \x20 2\n  00:00:02,500 --> 00:00:04,000\nwhat your country\n\n\
         3\n-00:00:01,000 --> 00:00:00,400\nearly\n\n\
         4\n00:00:99,000 --> 00:00:05,000\nbroken\n\n\
         5\n0:00:05,000 --> 0:00:07,000\ncan do for you\n",
    )
    .unwrap();
    let (run, script) = render_script(&srt, &[]);
    let run = run.ok();
    for text in ["Ask not", "what your country", "early", "can do for you"] {
        assert!(script.contains(text), "{text} missing:\n{script}");
    }
    assert!(!script.contains("broken"), "{script}");
    // Warnings name the file and the line.
    assert!(
        run.stderr.contains("wild.srt: line 9: negative time"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("wild.srt: line 13:"), "{}", run.stderr);
}
