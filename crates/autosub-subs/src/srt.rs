//! SubRip (`.srt`).

use crate::error::{snippet, ParseError};
use crate::format::{Parsed, Problems};
use crate::markup;
use crate::time::{fmt_srt, parse_time};
use crate::Cue;

const TIMING_HINT: &str = "expected a timing line like 00:00:01,000 --> 00:00:02,000";

/// Writes cues as SRT: numbered from 1, `HH:MM:SS,mmm` times, each cue followed by a blank line.
///
/// Lines are in the canonical markup (see [`crate::visible_text`]), which SRT players understand as it is:
/// `<i>`, `<b>`, `<u>`, `<s>`, `<font color="#rrggbb">`. A literal `<` or `{` that a reader would take for
/// a tag or an override block is followed by a word joiner (U+2060), so it stays text. Lines without
/// visible text cannot be represented (a blank line ends a cue) and are left out; line breaks inside a line
/// become separate lines.
pub fn write_srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, cue) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n",
            i + 1,
            fmt_srt(cue.start_ms),
            fmt_srt(cue.end_ms)
        ));
        for line in markup::display_lines(&cue.lines) {
            out.push_str(&markup::to_srt(&line));
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// Splits input into lines, dropping a BOM and accepting `\n`, `\r\n` and `\r` line ends.
pub(crate) fn input_lines(s: &str) -> Vec<&str> {
    let s = s.strip_prefix('\u{feff}').unwrap_or(s);
    let mut lines = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(['\n', '\r']) {
        lines.push(&rest[..i]);
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
    }
    if !rest.is_empty() {
        lines.push(rest);
    }
    lines
}

/// What a line is as a timing line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Timing {
    /// Not a timing line.
    Not,
    /// A timing line (it has `-->`) that cannot be read: why.
    Bad(String),
    /// Start and end; `negative` names the times that were negative and read as 0.
    Good {
        start: u64,
        end: u64,
        negative: Vec<String>,
    },
}

impl Timing {
    pub(crate) fn is_good(&self) -> bool {
        matches!(self, Timing::Good { .. })
    }
}

/// Reads `a --> b` (anything after `b`, such as SRT coordinates or WebVTT settings, is ignored). `->` is
/// accepted for `-->` when both times can be read (otherwise the line is text: `a -> b`). Negative times
/// are read as 0.
pub(crate) fn timing_line(line: &str, allow_no_hours: bool) -> Timing {
    let (left, right, arrow) = match line.split_once("-->") {
        Some((l, r)) => (l, r, true),
        None => match line.split_once("->") {
            Some((l, r)) => (l, r, false),
            None => return Timing::Not,
        },
    };
    let right = right.split_whitespace().next().unwrap_or("");
    let read = || -> Result<Timing, String> {
        let (start, neg_start) = parse_time(left, allow_no_hours)?;
        let (end, neg_end) = parse_time(right, allow_no_hours)?;
        if end < start {
            return Err(format!(
                "cue ends before it starts ({} --> {})",
                left.trim(),
                right.trim()
            ));
        }
        let mut negative = Vec::new();
        for (neg, t) in [(neg_start, left), (neg_end, right)] {
            if neg {
                negative.push(t.trim().to_string());
            }
        }
        Ok(Timing::Good {
            start,
            end,
            negative,
        })
    };
    match read() {
        Ok(t) => t,
        Err(m) if arrow => Timing::Bad(m),
        Err(_) => Timing::Not,
    }
}

/// Warnings for times that were negative.
pub(crate) fn warn_negative(problems: &mut Problems, line: usize, negative: &[String]) {
    for t in negative {
        problems.warn(line, format!("negative time {t:?} read as 0"));
    }
}

fn is_cue_number(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

/// Parses SRT; the warnings of [`crate::parse_subtitles`] are dropped.
///
/// Reads what ffmpeg and pysubs2 read: a BOM, CRLF or CR line ends, a missing final blank line, extra blank
/// lines, cue numbers out of order or missing, stray spaces, `.` instead of `,` before the fraction, `->`
/// for `-->`, one-digit hours, minutes and seconds (`0:1:2,5`), fractions of 1 to 9 digits read as decimal
/// fractions of a second (`,5` = `,50` = 500 ms), no fraction at all (`00:01:39`), coordinates after the
/// end time. Markup becomes the canonical form (see [`crate::visible_text`]): `<i>`, `<b>`, `<u>`, `<s>`,
/// `<font color>` kept, other tags dropped, ASS override blocks such as `{\an8}` read as in ASS. Text lines
/// are trimmed; lines without visible text are left out.
///
/// Read leniently, with a warning: a negative time (read as 0); text after a blank line inside a cue (kept
/// as more lines of that cue, as ffmpeg does). Skipped, with a warning: a cue whose timing line cannot be
/// read (a malformed or out-of-range timestamp, minutes or seconds over 59, an end before the start), a
/// cue number without a timing line after it, text before the first cue. When nothing could be read,
/// the first of these is the error (with its line number). An empty input gives no cues.
pub fn parse_srt(s: &str) -> Result<Vec<Cue>, ParseError> {
    read_srt(s).map(|p| p.cues)
}

pub(crate) fn read_srt(s: &str) -> Result<Parsed, ParseError> {
    let lines = input_lines(s);
    let timing_at = |i: usize| lines.get(i).map_or(Timing::Not, |l| timing_line(l, false));
    let blank = |i: usize| lines[i].trim().is_empty();
    // A cue starts here: a good timing line, or a number and a good timing line.
    let starts_cue =
        |i: usize| timing_at(i).is_good() || is_cue_number(lines[i]) && timing_at(i + 1).is_good();
    let skip_block = |mut i: usize| {
        i += 1;
        while i < lines.len() && !blank(i) && !starts_cue(i) {
            i += 1;
        }
        i
    };
    let mut problems = Problems::default();
    // Cues as times and raw text lines, the text made canonical at the end.
    let mut raw: Vec<(u64, u64, Vec<&str>)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if blank(i) {
            i += 1;
            continue;
        }
        let (timing_line_no, timing) = match timing_at(i) {
            Timing::Not if is_cue_number(lines[i]) => (i + 1, timing_at(i + 1)),
            t => (i, t),
        };
        let (start, end) = match timing {
            Timing::Good {
                start,
                end,
                negative,
            } => {
                warn_negative(&mut problems, timing_line_no + 1, &negative);
                (start, end)
            }
            Timing::Bad(m) => {
                problems.skip(timing_line_no + 1, m, "cue");
                i = skip_block(timing_line_no);
                continue;
            }
            Timing::Not if timing_line_no > i => {
                let found = lines
                    .get(timing_line_no)
                    .map_or("end of file".to_string(), |l| format!("{:?}", snippet(l)));
                problems.skip(
                    timing_line_no + 1,
                    format!(
                        "{TIMING_HINT} after cue number {}, found {found}",
                        lines[i].trim()
                    ),
                    "cue",
                );
                i = skip_block(i);
                continue;
            }
            Timing::Not => {
                let end = skip_block(i);
                let n = raw.len();
                match raw.last_mut() {
                    // A blank line inside a cue's text (ffmpeg and pysubs2 keep what follows).
                    Some(prev) => {
                        problems.warn(
                            i + 1,
                            format!(
                                "text after a blank line, {:?}, read as part of cue {}",
                                snippet(lines[i]),
                                n
                            ),
                        );
                        prev.2.extend(&lines[i..end]);
                    }
                    None => problems.skip(
                        i + 1,
                        format!(
                            "expected a cue number or a timing line like 00:00:01,000 --> 00:00:02,000, found {:?}",
                            snippet(lines[i])
                        ),
                        "text",
                    ),
                }
                i = end;
                continue;
            }
        };
        i = timing_line_no + 1;
        let mut text = Vec::new();
        // A missing blank line before the next cue: a number followed by a valid timing line, or a valid
        // timing line on its own.
        while i < lines.len() && !blank(i) && !starts_cue(i) {
            text.push(lines[i]);
            i += 1;
        }
        raw.push((start, end, text));
    }
    let cues = raw
        .into_iter()
        .map(|(start_ms, end_ms, text)| Cue::new(start_ms, end_ms, markup::from_srt(&text)))
        .collect();
    problems.finish(cues)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_lines() {
        assert!(timing_line("00:00:01,000 --> 00:00:02,000 X1:1", false).is_good());
        assert!(timing_line("0:0:1,5->0:0:2,5", false).is_good());
        assert_eq!(timing_line("a -> b <- c", false), Timing::Not);
        assert!(matches!(
            timing_line("arrow --> here", false),
            Timing::Bad(_)
        ));
        assert_eq!(
            timing_line("-00:00:01,000 --> 00:00:02,000", false),
            Timing::Good {
                start: 0,
                end: 2000,
                negative: vec!["-00:00:01,000".into()]
            }
        );
    }
}
