//! Format names, and reading any format with the warnings a lenient reader has ([`parse_subtitles`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ParseError, UnknownName};
use crate::{parse_json, Cue};

/// A subtitle file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Srt,
    Vtt,
    Ass,
    Json,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 4] = [Format::Srt, Format::Vtt, Format::Ass, Format::Json];

    /// File extension without the dot (`"srt"`, `"vtt"`, `"ass"`, `"json"`), also the name.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Srt => "srt",
            Format::Vtt => "vtt",
            Format::Ass => "ass",
            Format::Json => "json",
        }
    }

    /// Names accepted by `FromStr`'s canonical form.
    pub fn names() -> &'static [&'static str] {
        &["srt", "vtt", "ass", "json"]
    }

    /// The format of a path or file name from its extension (case-insensitive), e.g. `"talk.SRT"`.
    pub fn from_path_ext(path: &str) -> Option<Format> {
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let (_, ext) = name.rsplit_once('.')?;
        ext.parse().ok()
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for Format {
    type Err = UnknownName;

    /// `srt`, `vtt` (or `webvtt`), `ass`, `json`; case-insensitive, a leading dot is allowed.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        match t.trim_start_matches('.').to_ascii_lowercase().as_str() {
            "srt" => Ok(Format::Srt),
            "vtt" | "webvtt" => Ok(Format::Vtt),
            "ass" => Ok(Format::Ass),
            "json" => Ok(Format::Json),
            _ => Err(UnknownName::new("format", t, Format::names())),
        }
    }
}

/// Something a parser read leniently instead of refusing the file, at a 1-based line of the input.
///
/// `Display` gives `line N: what was done`, e.g. `line 12: negative time "-00:00:01,000" read as 0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParseWarning {
    /// 1-based line number in the input.
    pub line: usize,
    /// What was found and what was done about it, without the line prefix.
    pub message: String,
}

impl ParseWarning {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line: line.max(1),
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Cues read from a subtitle file, with what was read leniently.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub cues: Vec<Cue>,
    /// In input order; empty for a clean file.
    pub warnings: Vec<ParseWarning>,
}

/// Collects the warnings of one parse, and remembers the first problem that made a parser skip something:
/// when nothing at all could be read, that problem is the error.
#[derive(Default)]
pub(crate) struct Problems {
    pub warnings: Vec<ParseWarning>,
    first: Option<ParseError>,
}

impl Problems {
    /// Read leniently; nothing was lost.
    pub fn warn(&mut self, line: usize, message: impl Into<String>) {
        self.warnings.push(ParseWarning::new(line, message));
    }

    /// Something (`what`: "cue", "block", "Dialogue line") could not be read and was skipped: the warning
    /// says so after `message`; the error (if nothing could be read) is `message` alone.
    pub fn skip(&mut self, line: usize, message: impl Into<String>, what: &str) {
        let message = message.into();
        if self.first.is_none() {
            self.first = Some(ParseError::new(line, message.clone()));
        }
        self.warnings.push(ParseWarning::new(
            line,
            format!("{message}; {what} skipped"),
        ));
    }

    /// The result: an error when something was skipped and no cue was read at all.
    pub fn finish(self, cues: Vec<Cue>) -> Result<Parsed, ParseError> {
        match self.first {
            Some(e) if cues.is_empty() => Err(e),
            _ => Ok(Parsed {
                cues,
                warnings: self.warnings,
            }),
        }
    }
}

/// Parses cues from text in `format` (for JSON, the document's cues, which keep their words), with the
/// warnings of the lenient readers.
///
/// The readers accept what ffmpeg and pysubs2 accept (see [`parse_srt`](crate::parse_srt),
/// [`parse_vtt`](crate::parse_vtt), [`parse_ass`](crate::parse_ass)): a cue or block that cannot be read is
/// skipped with a warning naming its line, a negative time is read as 0 with a warning. A file is refused
/// (with the line of the first problem) only when nothing in it can be read: not one cue, yet something
/// that should have been one. An empty file, or an ASS script without an `[Events]` section, is an empty
/// list.
///
/// ```
/// use autosub_subs::{parse_subtitles, Format};
/// let srt = "1\n-00:00:01,000 --> 00:00:02,000\n<i>Hi</i>\n";
/// let parsed = parse_subtitles(srt, Format::Srt).unwrap();
/// assert_eq!(parsed.cues[0].start_ms, 0);
/// assert_eq!(parsed.cues[0].lines, ["<i>Hi</i>"]);
/// assert_eq!(parsed.warnings[0].to_string(), "line 2: negative time \"-00:00:01,000\" read as 0");
/// ```
pub fn parse_subtitles(text: &str, format: Format) -> Result<Parsed, ParseError> {
    match format {
        Format::Srt => crate::srt::read_srt(text),
        Format::Vtt => crate::vtt::read_vtt(text),
        Format::Ass => crate::ass::read_ass(text),
        Format::Json => parse_json(text).map(|d| Parsed {
            cues: d.cues,
            warnings: Vec::new(),
        }),
    }
}

/// Parses cues from text in `format` (for JSON, the document's cues, which keep their words); the
/// warnings of [`parse_subtitles`] are dropped.
pub fn parse_any(s: &str, format: Format) -> Result<Vec<Cue>, ParseError> {
    parse_subtitles(s, format).map(|p| p.cues)
}
