//! WebVTT (`.vtt`).

use crate::error::{snippet, ParseError};
use crate::srt::{input_lines, parse_timing, text_lines};
use crate::time::fmt_vtt;
use crate::Cue;

/// Writes cues as WebVTT: a `WEBVTT` header, then numbered cues with `HH:MM:SS.mmm` times.
///
/// `&`, `<` and `>` are escaped, so text is shown literally (a `<b>` in the text is not a tag, and `-->`
/// cannot end up in cue text). Empty lines are left out, as in SRT.
pub fn write_vtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for (i, cue) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n",
            i + 1,
            fmt_vtt(cue.start_ms),
            fmt_vtt(cue.end_ms)
        ));
        for line in text_lines(&cue.lines) {
            out.push_str(&escape(&line));
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Decodes character references: the named ones WebVTT uses and numeric ones. Unknown references are kept.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "nbsp" => Some('\u{a0}'),
                "lrm" => Some('\u{200e}'),
                "rlm" => Some('\u{200f}'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let code = if let Some(hex) =
                        name.strip_prefix("#x").or_else(|| name.strip_prefix("#X"))
                    {
                        u32::from_str_radix(hex, 16).ok()
                    } else {
                        name.strip_prefix('#').and_then(|d| d.parse::<u32>().ok())
                    };
                    code.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_block(line: &str, keyword: &str) -> bool {
    line.strip_prefix(keyword)
        .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
}

/// Parses WebVTT.
///
/// The `WEBVTT` header is required (after an optional BOM). Cue ids are optional; `NOTE`, `STYLE` and
/// `REGION` blocks are skipped; times may be `HH:MM:SS.mmm` or `MM:SS.mmm`; cue settings after the end time
/// are ignored. Character references (`&amp;`, `&lt;`, `&#233;`...) are decoded; tags such as `<i>` are kept
/// as text, the way SRT keeps them.
///
/// Errors (with the line number): a missing header, a cue block without a timing line, a malformed or
/// out-of-range timestamp, or a cue that ends before it starts.
pub fn parse_vtt(s: &str) -> Result<Vec<Cue>, ParseError> {
    let lines = input_lines(s);
    if !lines.first().is_some_and(|l| is_block(l, "WEBVTT")) {
        return Err(ParseError::new(
            1,
            "expected a WEBVTT header on the first line",
        ));
    }
    let timing_at = |i: usize| -> Option<Result<(u64, u64), ParseError>> {
        lines
            .get(i)
            .and_then(|l| parse_timing(l, true))
            .map(|r| r.map_err(|m| ParseError::new(i + 1, m)))
    };
    // Skip the rest of the header block.
    let mut i = 1;
    while i < lines.len() && !lines[i].trim().is_empty() {
        if lines[i].contains("-->") {
            break;
        }
        i += 1;
    }
    let mut cues = Vec::new();
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() {
            i += 1;
            continue;
        }
        if is_block(line, "NOTE") || is_block(line, "STYLE") || is_block(line, "REGION") {
            while i < lines.len() && !lines[i].trim().is_empty() {
                i += 1;
            }
            continue;
        }
        let (start_ms, end_ms) = match timing_at(i) {
            Some(r) => r?,
            None => {
                // A cue identifier, then the timing line.
                i += 1;
                match timing_at(i) {
                    Some(r) => r?,
                    None => {
                        let found = lines
                            .get(i)
                            .map_or("end of file".to_string(), |l| format!("{:?}", snippet(l)));
                        return Err(ParseError::new(
                            i + 1,
                            format!("expected a timing line like 00:00:01.000 --> 00:00:02.000, found {found}"),
                        ));
                    }
                }
            }
        };
        i += 1;
        let mut text = Vec::new();
        while i < lines.len() && !lines[i].trim().is_empty() {
            // Cue text cannot contain "-->": such a line starts the next cue.
            if matches!(timing_at(i), Some(Ok(_))) {
                break;
            }
            text.push(unescape(lines[i].trim_end()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities() {
        assert_eq!(
            unescape("a &amp; b &lt;i&gt; &#233; &#x1F600; &bogus; & done"),
            "a & b <i> é 😀 &bogus; & done"
        );
        assert_eq!(escape("a & <b> -->"), "a &amp; &lt;b&gt; --&gt;");
    }
}
