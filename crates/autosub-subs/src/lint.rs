//! Lint: check cues against a profile and report every violation.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::UnknownName;
use crate::markup::visible_lines;
use crate::text::{bad_line_break, char_len, count_words};
use crate::time::fmt_vtt;
use crate::{Cue, Profile};

/// A rule that `lint` checks. `Display` and serde use the kebab-case id (`line-too-long`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A line has more than `max_chars_per_line` characters (visible text: markup excluded).
    LineTooLong,
    /// More than `max_lines` lines.
    TooManyLines,
    /// Reading speed above `max_cps`.
    TooFast,
    /// On screen for less than `min_duration_ms`.
    TooShort,
    /// On screen for more than `max_duration_ms`.
    TooLong,
    /// Less than `min_gap_ms` after the previous cue.
    GapTooSmall,
    /// Starts before the previous cue ends.
    Overlap,
    /// Starts before the previous cue starts.
    OutOfOrder,
    /// Ends before it starts.
    EndBeforeStart,
    /// Starts more than `max_start_offset_ms` away from its first word (only checked when words are known).
    StartOffset,
    /// Stays up longer after its last word than `max_linger_ms` allows, beyond what the minimum duration,
    /// reading speed and gap closing need (only checked when words are known).
    LateEnd,
    /// More than `max_words` words.
    TooManyWords,
    /// No visible text.
    EmptyText,
    /// A line ends with an article, preposition, conjunction or similar word that belongs with the next line,
    /// or a line break separates a number from its unit.
    BadBreak,
    /// Its voice-over, spoken as fast as allowed, does not fit before the next cue (checked by `autosub lint
    /// --voiceover`, which synthesises every line; [`lint`] itself never reports it).
    VoiceoverTooLong,
    /// The voice could not speak it (checked by `autosub lint --voiceover`; [`lint`] never reports it).
    VoiceoverFailed,
}

impl Rule {
    /// Every rule, in report order.
    pub const ALL: [Rule; 16] = [
        Rule::EmptyText,
        Rule::LineTooLong,
        Rule::TooManyLines,
        Rule::TooManyWords,
        Rule::BadBreak,
        Rule::EndBeforeStart,
        Rule::TooShort,
        Rule::TooLong,
        Rule::TooFast,
        Rule::OutOfOrder,
        Rule::Overlap,
        Rule::GapTooSmall,
        Rule::StartOffset,
        Rule::LateEnd,
        Rule::VoiceoverTooLong,
        Rule::VoiceoverFailed,
    ];

    /// The kebab-case id, e.g. `line-too-long`.
    pub fn id(self) -> &'static str {
        match self {
            Rule::LineTooLong => "line-too-long",
            Rule::TooManyLines => "too-many-lines",
            Rule::TooFast => "too-fast",
            Rule::TooShort => "too-short",
            Rule::TooLong => "too-long",
            Rule::GapTooSmall => "gap-too-small",
            Rule::Overlap => "overlap",
            Rule::OutOfOrder => "out-of-order",
            Rule::EndBeforeStart => "end-before-start",
            Rule::StartOffset => "start-offset",
            Rule::LateEnd => "late-end",
            Rule::TooManyWords => "too-many-words",
            Rule::EmptyText => "empty-text",
            Rule::BadBreak => "bad-break",
            Rule::VoiceoverTooLong => "voiceover-too-long",
            Rule::VoiceoverFailed => "voiceover-failed",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for Rule {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Rule::ALL.into_iter().find(|r| r.id() == s).ok_or_else(|| {
            let ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
            UnknownName::new("rule", s, &ids)
        })
    }
}

/// One broken rule in one cue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    /// 1-based cue number (position in the list given to `lint`).
    pub cue: usize,
    pub rule: Rule,
    /// Human message, e.g. `cue 12 (00:01:02.300): line 1 is 47 characters, max 42`.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.message, self.rule)
    }
}

/// Checks every cue against `profile` and returns all violations, cue by cue, in [`Rule::ALL`] order.
///
/// Everything about text is counted on what a viewer reads, the lines' [`visible_text`](crate::visible_text):
/// markup (`<i>`, `<font color>`) removed, spaces at the ends of a line trimmed, and lines without visible
/// text (`<b></b>`) not counted at all, neither as lines nor as the space that joins lines for the reading
/// speed. Ordering, overlap and gap are checked against the previous cue in the list.
/// Start offset and late end are only checked for cues that carry their `words`.
pub fn lint(cues: &[Cue], profile: &Profile) -> Vec<Violation> {
    let mut out = Vec::new();
    for (idx, cue) in cues.iter().enumerate() {
        let n = idx + 1;
        let mut add = |rule: Rule, msg: String| {
            out.push(Violation {
                cue: n,
                rule,
                message: format!("cue {n} ({}): {msg}", fmt_vtt(cue.start_ms)),
            });
        };
        let shown = visible_lines(&cue.lines);
        let chars =
            shown.iter().map(|l| char_len(l)).sum::<usize>() + shown.len().saturating_sub(1);
        if shown.is_empty() {
            add(Rule::EmptyText, "has no text".into());
        }
        for (i, line) in shown.iter().enumerate() {
            let len = char_len(line);
            if len > profile.max_chars_per_line {
                add(
                    Rule::LineTooLong,
                    format!(
                        "line {} is {len} characters, max {}",
                        i + 1,
                        profile.max_chars_per_line
                    ),
                );
            }
        }
        if shown.len() > profile.max_lines {
            add(
                Rule::TooManyLines,
                format!("{} lines, max {}", shown.len(), profile.max_lines),
            );
        }
        if let Some(max) = profile.max_words {
            let words: usize = shown.iter().map(|l| count_words(l)).sum();
            if words > max {
                add(Rule::TooManyWords, format!("{words} words, max {max}"));
            }
        }
        for (i, pair) in shown.windows(2).enumerate() {
            if let Some(why) = bad_line_break(&pair[0], &pair[1]) {
                add(Rule::BadBreak, format!("line {} {why}", i + 1));
            }
        }
        if cue.end_ms < cue.start_ms {
            add(
                Rule::EndBeforeStart,
                format!(
                    "ends at {} before it starts at {}",
                    fmt_vtt(cue.end_ms),
                    fmt_vtt(cue.start_ms)
                ),
            );
        } else {
            let dur = cue.end_ms - cue.start_ms;
            if dur < profile.min_duration_ms {
                add(
                    Rule::TooShort,
                    format!("lasts {dur} ms, min {}", profile.min_duration_ms),
                );
            }
            if dur > profile.max_duration_ms {
                add(
                    Rule::TooLong,
                    format!("lasts {dur} ms, max {}", profile.max_duration_ms),
                );
            }
            if profile.max_cps > 0.0
                && chars > 0
                && chars as f64 * 1000.0 > profile.max_cps * dur as f64 * (1.0 + 1e-9)
            {
                let msg = if dur == 0 {
                    format!(
                        "{chars} characters in 0 ms, max {} characters/s",
                        profile.max_cps
                    )
                } else {
                    format!(
                        "reading speed {:.1} characters/s ({chars} characters in {dur} ms), max {}",
                        chars as f64 * 1000.0 / dur as f64,
                        profile.max_cps
                    )
                };
                add(Rule::TooFast, msg);
            }
        }
        if idx > 0 {
            let prev = &cues[idx - 1];
            if cue.start_ms < prev.start_ms {
                add(
                    Rule::OutOfOrder,
                    format!("starts before cue {} ({})", n - 1, fmt_vtt(prev.start_ms)),
                );
            } else if cue.start_ms < prev.end_ms {
                add(
                    Rule::Overlap,
                    format!(
                        "overlaps cue {} by {} ms",
                        n - 1,
                        prev.end_ms - cue.start_ms
                    ),
                );
            } else if cue.start_ms - prev.end_ms < profile.min_gap_ms {
                add(
                    Rule::GapTooSmall,
                    format!(
                        "gap after cue {} is {} ms, min {}",
                        n - 1,
                        cue.start_ms - prev.end_ms,
                        profile.min_gap_ms
                    ),
                );
            }
        }
        if let Some(first) = cue.words.first() {
            let off = cue.start_ms.abs_diff(first.start_ms);
            if off > profile.max_start_offset_ms {
                let side = if cue.start_ms < first.start_ms {
                    "before"
                } else {
                    "after"
                };
                add(
                    Rule::StartOffset,
                    format!(
                        "starts {off} ms {side} its first word ({}), max {}",
                        fmt_vtt(first.start_ms),
                        profile.max_start_offset_ms
                    ),
                );
            }
            let last = cue
                .words
                .iter()
                .map(|w| w.start_ms.max(w.end_ms))
                .max()
                .unwrap_or(0);
            let needed = cue
                .start_ms
                .saturating_add(profile.required_duration_ms(chars));
            let mut allowed = last.saturating_add(profile.max_linger_ms).max(needed);
            let closed = cues.get(idx + 1).is_some_and(|next| {
                next.start_ms >= cue.end_ms
                    && next.start_ms - cue.end_ms <= profile.min_gap_ms.saturating_add(10)
            });
            if closed {
                allowed = allowed.saturating_add(profile.close_gap_ms);
            }
            if cue.end_ms > allowed {
                add(
                    Rule::LateEnd,
                    format!(
                        "stays {} ms after its last word ends ({}), max {}",
                        cue.end_ms - last,
                        fmt_vtt(last),
                        profile.max_linger_ms
                    ),
                );
            }
        }
    }
    out
}
