//! WebVTT (`.vtt`).

use crate::error::{snippet, ParseError};
use crate::format::{Parsed, Problems};
use crate::markup;
use crate::srt::{input_lines, timing_line, warn_negative, Timing};
use crate::time::fmt_vtt;
use crate::Cue;

/// Writes cues as WebVTT: a `WEBVTT` header, then numbered cues with `HH:MM:SS.mmm` times.
///
/// The canonical markup (see [`crate::visible_text`]) becomes WebVTT's: `<i>`, `<b>`, `<u>`, and
/// `<c.NAME>` for the eight default colours (white, lime, cyan, red, yellow, magenta, blue, black); other
/// colours and strike-through are dropped. `&`, `<` and `>` in the text are escaped, so text is shown
/// literally (and `-->` cannot end up in cue text). Lines without visible text are left out, as in SRT.
pub fn write_vtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for (i, cue) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n",
            i + 1,
            fmt_vtt(cue.start_ms),
            fmt_vtt(cue.end_ms)
        ));
        for line in markup::display_lines(&cue.lines) {
            out.push_str(&markup::to_vtt(&line));
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn is_block(line: &str, keyword: &str) -> bool {
    line.strip_prefix(keyword)
        .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
}

const TIMING_HINT: &str = "expected a timing line like 00:00:01.000 --> 00:00:02.000";

/// Parses WebVTT; the warnings of [`crate::parse_subtitles`] are dropped.
///
/// The `WEBVTT` header is required (after an optional BOM). Cue ids are optional; `NOTE`, `STYLE` and
/// `REGION` blocks are skipped; times may be `HH:MM:SS.mmm` or `MM:SS.mmm`, read as leniently as SRT times
/// (one-digit fields, any number of fraction digits, no fraction); cue settings after the end time are
/// ignored. Markup becomes the canonical form (see [`crate::visible_text`]): `<i>`, `<b>`, `<u>` kept,
/// `<c.yellow>` (a default colour class) a colour, `<v Speaker>`, `<lang>`, ruby annotations and timestamp
/// tags dropped; character references (`&amp;`, `&lt;`, `&nbsp;`, `&#233;`...) decoded.
///
/// Read leniently, with a warning: a negative time (read as 0). Skipped, with a warning, as a WebVTT
/// player does: a block without a timing line, a cue whose timing line cannot be read (a malformed or
/// out-of-range timestamp, an end before the start). A missing header is an error, and so is the first
/// skipped block when no cue could be read.
pub fn parse_vtt(s: &str) -> Result<Vec<Cue>, ParseError> {
    read_vtt(s).map(|p| p.cues)
}

pub(crate) fn read_vtt(s: &str) -> Result<Parsed, ParseError> {
    let lines = input_lines(s);
    if !lines
        .first()
        .is_some_and(|l| is_block(l.trim_end(), "WEBVTT"))
    {
        return Err(ParseError::new(
            1,
            "expected a WEBVTT header on the first line",
        ));
    }
    let timing_at = |i: usize| lines.get(i).map_or(Timing::Not, |l| timing_line(l, true));
    let blank = |i: usize| lines[i].trim().is_empty();
    let skip_block = |mut i: usize| {
        i += 1;
        while i < lines.len() && !blank(i) && !timing_at(i).is_good() {
            i += 1;
        }
        i
    };
    // Skip the rest of the header block.
    let mut i = 1;
    while i < lines.len() && !blank(i) {
        if lines[i].contains("-->") {
            break;
        }
        i += 1;
    }
    let mut problems = Problems::default();
    let mut cues = Vec::new();
    while i < lines.len() {
        let line = lines[i].trim();
        if line.is_empty() {
            i += 1;
            continue;
        }
        if is_block(line, "NOTE") || is_block(line, "STYLE") || is_block(line, "REGION") {
            while i < lines.len() && !blank(i) {
                i += 1;
            }
            continue;
        }
        // A cue identifier may come before the timing line.
        let at = match timing_at(i) {
            Timing::Not => i + 1,
            _ => i,
        };
        let (start_ms, end_ms) = match timing_at(at) {
            Timing::Good {
                start,
                end,
                negative,
            } => {
                warn_negative(&mut problems, at + 1, &negative);
                (start, end)
            }
            Timing::Bad(m) => {
                problems.skip(at + 1, m, "cue");
                i = skip_block(at);
                continue;
            }
            Timing::Not => {
                let found = lines
                    .get(at)
                    .map_or("end of file".to_string(), |l| format!("{:?}", snippet(l)));
                problems.skip(at + 1, format!("{TIMING_HINT}, found {found}"), "block");
                i = skip_block(i);
                continue;
            }
        };
        i = at + 1;
        let mut text = Vec::new();
        // Cue text cannot contain "-->": such a line starts the next cue.
        while i < lines.len() && !blank(i) && !timing_at(i).is_good() {
            text.push(lines[i]);
            i += 1;
        }
        cues.push(Cue::new(start_ms, end_ms, markup::from_vtt(&text)));
    }
    problems.finish(cues)
}
