//! Deterministic mutation fuzzing of every reader (issue 14): the real files of `tests/fixtures/subs/` and
//! files this crate writes, mutated at the byte level (bit flips, inserted bytes and markup or timing
//! fragments, deletions, duplicated and swapped lines, truncation). No reader may panic; every error and
//! every warning names a line inside the input (1 <= line <= lines + 1); what is read is usable by every
//! writer, by lint and by translation, and comes back unchanged through ASS.

mod common;

use std::time::Instant;

use autosub_subs::{
    decode_text, lint, parse_any, parse_ass, parse_json, parse_srt, parse_subtitles, parse_vtt,
    retime, visible_text, write_ass, write_burn_script, write_json, write_srt, write_vtt, AssStyle,
    BurnLook, Cue, DecodeError, Document, Format, Profile, VideoSize, Word,
};
use common::Rng;

/// Fragments that steer mutations into the interesting corners of the formats.
const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"<i>",
    b"</i>",
    b"< u>",
    b"</b>",
    b"<font color=\"#ff0000\">",
    b"</font>",
    b"<c.yellow>",
    b"</c>",
    b"<v Fred>",
    b"<ruby>",
    b"<rt>",
    b"</rt>",
    b"<00:00:01.000>",
    b"<br>",
    b"{\\",
    b"{\\i1}",
    b"{\\c&H0000FF&}",
    b"{\\p1}",
    b"{\\r}",
    b"\\N",
    b"\\n",
    b"\\h",
    b"{",
    b"}",
    b"\\",
    b"&",
    b"&amp;",
    b"&lt;",
    b"&#",
    b"&#x1F600;",
    b";",
    b"-->",
    b"->",
    b" --> ",
    b"-",
    b":",
    b",",
    b".",
    b"00:00:01,000",
    b"0:0:0.04",
    b"-00:00:01,000",
    b"99",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"[Events]",
    b"[Script Info]",
    b"Dialogue: 0,",
    b"Format: Start, End, Text",
    b"WEBVTT",
    b"NOTE",
    b"STYLE",
    b"\xff",
    b"\xfe",
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xd0\xbf",
    b"\xe2\x81\xa0",
    b"\xc3",
    b"\"",
    b"=",
    b"\t",
    b" ",
    b"{\"version\": 1, \"cues\": [",
];

/// Lines as the readers count them (`\n`, `\r\n` and `\r` end a line).
fn line_count(s: &str) -> usize {
    let s = s.strip_prefix('\u{feff}').unwrap_or(s);
    let mut n = 0;
    let mut rest = s;
    while let Some(i) = rest.find(['\n', '\r']) {
        n += 1;
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
    }
    n + usize::from(!rest.is_empty())
}

fn seeds() -> Vec<Vec<u8>> {
    let dir = format!("{}/../../tests/fixtures/subs", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("srt" | "vtt" | "ass" | "ssa")
            )
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let mut out: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    // What this crate writes, markup included.
    let word = |t: &str, s, e| Word {
        text: t.into(),
        start_ms: s,
        end_ms: e,
        prob: 0.5,
    };
    let cues = vec![
        Cue {
            start_ms: 0,
            end_ms: 1500,
            lines: vec![
                "<i>Hello</i>, <font color=\"#ffff00\">world</font>".into(),
                "<b>{\\b1}</b> a < b".into(),
            ],
            words: vec![
                word(" Hello", 0, 500),
                word(",", 500, 500),
                word(" world", 600, 1400),
            ],
        },
        Cue::new(1600, 3000, vec!["Привет <u>мир</u> 🎉".into()]),
    ];
    out.push(write_srt(&cues).into_bytes());
    out.push(write_vtt(&cues).into_bytes());
    out.push(write_ass(&cues, &AssStyle::karaoke(), VideoSize::default()).into_bytes());
    out.push(
        write_json(&Document {
            cues,
            ..Document::default()
        })
        .into_bytes(),
    );
    out
}

fn mutate(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(6) {
        let pos = rng.below(b.len() as u64 + 1) as usize;
        match rng.below(8) {
            0 if pos < b.len() => b[pos] ^= 1 << rng.below(8),
            1 => b.insert(pos, rng.next() as u8),
            2 | 3 => {
                let t = TOKENS[rng.below(TOKENS.len() as u64) as usize];
                b.splice(pos..pos, t.iter().copied());
            }
            4 if pos < b.len() => {
                let end = (pos + 1 + rng.below(24) as usize).min(b.len());
                b.drain(pos..end);
            }
            5 => {
                // Duplicate the line around `pos`.
                let start = b[..pos]
                    .iter()
                    .rposition(|&c| c == b'\n')
                    .map_or(0, |i| i + 1);
                let end = b[pos..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |i| pos + i + 1);
                let line = b[start..end].to_vec();
                b.splice(start..start, line);
            }
            6 => {
                // Swap two lines.
                let text: Vec<&[u8]> = b.split(|&c| c == b'\n').collect();
                if text.len() > 2 {
                    let (i, j) = (
                        rng.below(text.len() as u64) as usize,
                        rng.below(text.len() as u64) as usize,
                    );
                    let mut lines: Vec<Vec<u8>> = text.iter().map(|l| l.to_vec()).collect();
                    lines.swap(i, j);
                    b = lines.join(&b'\n');
                }
            }
            7 if rng.chance(0.3) => b.truncate(pos),
            _ => {}
        }
    }
    b
}

fn check_line(line: usize, text: &str, what: &str) {
    let max = line_count(text) + 1;
    assert!(
        (1..=max).contains(&line),
        "{what}: line {line} outside 1..={max} in {text:?}"
    );
}

/// Every reader on one input.
fn exercise(text: &str, ass_back: &mut usize) {
    for format in Format::ALL {
        match parse_subtitles(text, format) {
            Err(e) => check_line(e.line, text, &format!("{format} error {e}")),
            Ok(parsed) => {
                for w in &parsed.warnings {
                    check_line(w.line, text, &format!("{format} warning {w}"));
                }
                let cues = &parsed.cues;
                for c in cues {
                    if format != Format::Json {
                        assert!(c.end_ms >= c.start_ms, "{format}: {c:?}");
                        for l in &c.lines {
                            assert!(!l.contains(['\n', '\r']), "{format}: {l:?}");
                            assert!(!visible_text(l).trim().is_empty(), "{format}: {l:?}");
                        }
                    }
                }
                // Whatever was read can be written, linted, burned and translated.
                let _ = write_srt(cues);
                let _ = write_vtt(cues);
                let script = write_ass(cues, &AssStyle::default(), VideoSize::default());
                let _ = write_burn_script(
                    cues,
                    &BurnLook::Style(AssStyle::karaoke()),
                    VideoSize::new(1080, 1920),
                    None,
                );
                let _ = lint(cues, &Profile::standard());
                let _ = retime::sentences(&retime::words_of_cues(cues));
                // The canonical lines come back unchanged through ASS.
                if format != Format::Json {
                    let back = parse_ass(&script).unwrap();
                    assert_eq!(back.len(), cues.len());
                    for (a, b) in cues.iter().zip(&back) {
                        assert_eq!(a.lines, b.lines, "{format} via ASS: {text:?}");
                    }
                    *ass_back += 1;
                }
                assert_eq!(parse_any(text, format).unwrap(), parsed.cues);
            }
        }
    }
    // The per-format functions agree with parse_subtitles (and do not panic either).
    for (f, r) in [
        (Format::Srt, parse_srt(text)),
        (Format::Vtt, parse_vtt(text)),
        (Format::Ass, parse_ass(text)),
        (Format::Json, parse_json(text).map(|d| d.cues)),
    ] {
        match r {
            Ok(c) => assert_eq!(c, parse_subtitles(text, f).unwrap().cues),
            Err(e) => check_line(e.line, text, &format!("{f} error {e}")),
        }
    }
}

#[test]
fn mutated_real_files_never_panic_and_errors_name_a_line_of_the_input() {
    let started = Instant::now();
    let seeds = seeds();
    // Fixed by default; `AUTOSUB_FUZZ_SEED=N AUTOSUB_FUZZ_ROUNDS=M` explores further.
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut rng = Rng(env("AUTOSUB_FUZZ_SEED")
        .unwrap_or(0x0005_eed0_fa11_5ab5)
        .max(1));
    let rounds = env("AUTOSUB_FUZZ_ROUNDS").unwrap_or(2500) as usize;
    let mut ass_back = 0;
    let mut decoded_lossy = 0;
    // Every seed as it is, then mutants.
    for (round, base) in seeds.iter().cycle().enumerate().take(rounds) {
        let bytes = if round < seeds.len() {
            base.clone()
        } else {
            mutate(base, &mut rng)
        };
        let decoded = decode_text(&bytes, None).expect("automatic decoding never fails");
        decoded_lossy += usize::from(decoded.lossy);
        for label in ["utf-8", "windows-1251", "utf-16be"] {
            match decode_text(&bytes, Some(label)) {
                Ok(d) => assert!(!d.lossy),
                Err(DecodeError::Malformed { line, .. }) => {
                    assert!(line >= 1 && line <= bytes.len() + 1, "{label}: line {line}")
                }
                Err(e) => panic!("{label}: {e}"),
            }
        }
        exercise(&decoded.text, &mut ass_back);
        // Text-level mutations too (valid UTF-8, so the parsers see the damage itself).
        if round >= seeds.len() {
            let mut chars: Vec<char> = decoded.text.chars().collect();
            for _ in 0..1 + rng.below(4) {
                let pos = rng.below(chars.len() as u64 + 1) as usize;
                let c = [
                    '<', '>', '{', '}', '\\', '&', ';', '\n', '\u{2060}', 'é', '-', ':',
                ];
                match rng.below(3) {
                    0 if pos < chars.len() => {
                        chars.remove(pos);
                    }
                    _ => chars.insert(pos, c[rng.below(c.len() as u64) as usize]),
                }
            }
            exercise(&chars.into_iter().collect::<String>(), &mut ass_back);
        }
    }
    // The mutants reached the interesting paths.
    if rounds >= 2500 {
        assert!(ass_back > 2000, "{ass_back}");
        assert!(decoded_lossy > 10, "{decoded_lossy}");
    }
    eprintln!(
        "fuzz: {} s, {ass_back} parses checked through ASS",
        started.elapsed().as_secs_f32()
    );
}
