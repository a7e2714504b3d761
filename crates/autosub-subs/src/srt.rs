//! SubRip (`.srt`).

use crate::error::{snippet, ParseError};
use crate::time::{fmt_srt, parse_clock};
use crate::Cue;

const TIMING_HINT: &str = "expected a timing line like 00:00:01,000 --> 00:00:02,000";

/// Writes cues as SRT: numbered from 1, `HH:MM:SS,mmm` times, each cue followed by a blank line.
///
/// Text is written as is (SRT has no escaping; `<i>` stays a tag for players). Empty lines cannot be
/// represented (a blank line ends a cue) and are left out; line breaks inside a line become separate lines.
pub fn write_srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, cue) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n",
            i + 1,
            fmt_srt(cue.start_ms),
            fmt_srt(cue.end_ms)
        ));
        for line in text_lines(&cue.lines) {
            out.push_str(&line);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// Non-empty single lines of a cue, for formats where a blank line ends the cue.
pub(crate) fn text_lines(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .flat_map(|l| l.split(['\n', '\r']))
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.trim().is_empty())
        .collect()
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

/// Parses `a --> b` (anything after `b`, such as SRT coordinates or WebVTT settings, is ignored).
/// Returns `None` if the line has no `-->`.
pub(crate) fn parse_timing(line: &str, allow_no_hours: bool) -> Option<Result<(u64, u64), String>> {
    let (left, right) = line.split_once("-->")?;
    let right = right.split_whitespace().next().unwrap_or("");
    Some((|| {
        let start = parse_clock(left, allow_no_hours)?;
        let end = parse_clock(right, allow_no_hours)?;
        if end < start {
            return Err(format!(
                "cue ends before it starts ({} --> {})",
                left.trim(),
                right.trim()
            ));
        }
        Ok((start, end))
    })())
}

fn is_cue_number(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

/// Parses SRT.
///
/// Tolerates a BOM, CRLF or CR line ends, a missing final blank line, extra blank lines, cue numbers out of
/// order or missing, `.` instead of `,` before the milliseconds, and coordinates after the end time. Cues are
/// returned in file order; text is kept as is (tags included), with trailing spaces trimmed.
///
/// Errors (with the line number): a block that does not start with a timing line, a malformed or
/// out-of-range timestamp (minutes or seconds over 59, negative), or a cue that ends before it starts. An
/// empty input gives no cues.
pub fn parse_srt(s: &str) -> Result<Vec<Cue>, ParseError> {
    let lines = input_lines(s);
    let timing_at = |i: usize| -> Option<Result<(u64, u64), ParseError>> {
        lines
            .get(i)
            .and_then(|l| parse_timing(l, false))
            .map(|r| r.map_err(|m| ParseError::new(i + 1, m)))
    };
    let mut cues = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let (start_ms, end_ms) = match timing_at(i) {
            Some(r) => r?,
            None if is_cue_number(lines[i]) => {
                i += 1;
                match timing_at(i) {
                    Some(r) => r?,
                    None => {
                        let found = lines.get(i).map_or("end of file".to_string(), |l| format!("{:?}", snippet(l)));
                        return Err(ParseError::new(i + 1, format!("{TIMING_HINT}, found {found}")));
                    }
                }
            }
            None => {
                return Err(ParseError::new(
                    i + 1,
                    format!("expected a cue number or a timing line like 00:00:01,000 --> 00:00:02,000, found {:?}", snippet(lines[i])),
                ))
            }
        };
        i += 1;
        let mut text = Vec::new();
        while i < lines.len() && !lines[i].trim().is_empty() {
            // A missing blank line before the next cue: a number followed by a valid timing line, or a
            // valid timing line on its own.
            let next_cue = matches!(timing_at(i), Some(Ok(_)))
                || is_cue_number(lines[i]) && matches!(timing_at(i + 1), Some(Ok(_)));
            if next_cue {
                break;
            }
            text.push(lines[i].trim_end().to_string());
            i += 1;
        }
        cues.push(Cue {
            start_ms,
            end_ms,
            lines: text,
            words: Vec::new(),
        });
    }
    Ok(cues)
}
