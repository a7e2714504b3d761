//! Output format names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ParseError, UnknownName};
use crate::{parse_ass, parse_json, parse_srt, parse_vtt, Cue};

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

/// Parses cues from text in `format` (for JSON, the document's cues, which keep their words).
pub fn parse_any(s: &str, format: Format) -> Result<Vec<Cue>, ParseError> {
    match format {
        Format::Srt => parse_srt(s),
        Format::Vtt => parse_vtt(s),
        Format::Ass => parse_ass(s),
        Format::Json => parse_json(s).map(|d| d.cues),
    }
}
