//! Subtitle data model, segmentation, lint and file formats for AutoSub.
//!
//! This crate is pure: strings and values in, strings and values out; no file or network I/O.
//!
//! * [`Word`]s recognised by Whisper are split into [`Cue`]s by [`segment`] for a [`Profile`]
//!   ([`Profile::standard`] follows the Netflix timed-text rules, [`Profile::shorts`] makes one-line captions
//!   of 1-5 words for vertical video).
//! * [`lint`] checks any cues against a profile and reports every [`Violation`] of a [`Rule`].
//! * Cues are written and parsed as SRT ([`write_srt`], [`parse_srt`]), WebVTT ([`write_vtt`],
//!   [`parse_vtt`]) and ASS ([`write_ass`] with an [`AssStyle`] sized for a [`VideoSize`], [`parse_ass`]);
//!   the whole result is stored as a JSON [`Document`] ([`write_json`], [`parse_json`]).
//!
//! ```
//! use autosub_subs::{lint, parse_srt, segment, write_srt, Profile, Word};
//!
//! // Whisper-style words: a leading space starts a new word, punctuation may come as its own word.
//! let words: Vec<Word> = [(" Hello", 0, 400), (",", 400, 400), (" world", 450, 900), (".", 900, 900)]
//!     .iter()
//!     .map(|&(text, start_ms, end_ms)| Word { text: text.into(), start_ms, end_ms, prob: 0.9 })
//!     .collect();
//!
//! let profile = Profile::standard();
//! let cues = segment(&words, &profile);
//! assert_eq!(cues.len(), 1);
//! assert_eq!(cues[0].lines, ["Hello, world."]);
//! assert!(lint(&cues, &profile).is_empty());
//!
//! let srt = write_srt(&cues);
//! assert!(srt.starts_with("1\n00:00:00,000 --> 00:00:01,400\nHello, world.\n"));
//! assert_eq!(parse_srt(&srt).unwrap()[0].lines, cues[0].lines);
//! ```

mod ass;
mod decode;
mod error;
mod format;
mod json;
mod lint;
mod markup;
mod profile;
pub mod retime;
mod segment;
mod srt;
mod text;
mod time;
mod vtt;

use serde::{Deserialize, Deserializer, Serialize};

pub use ass::{
    insert_events, parse_ass, write_ass, write_bilingual_script, write_burn_script, AssStyle,
    BurnLook, Colour, SafeArea, TextMark, UserAssStyle, VideoSize, KARAOKE_HIGHLIGHT,
    VERTICAL_SAFE_AREA,
};
pub use decode::{decode_text, DecodeError, Decoded, EncodingSource};
pub use error::{ParseError, UnknownName};
pub use format::{parse_any, Format};
pub use format::{parse_subtitles, ParseWarning, Parsed};
pub use json::{parse_json, write_json, Document};
pub use lint::{lint, Rule, Violation};
pub use markup::{visible_lines, visible_text};
pub use profile::{Profile, ProfileOverrides};
pub use segment::{segment, wrap_text, LONG_PAUSE_MS};
pub use srt::{parse_srt, write_srt};
pub use vtt::{parse_vtt, write_vtt};

/// A recognised word. `text` keeps Whisper's leading space when the word starts a new word (`" Hello"`,
/// `","`), so concatenating texts and trimming gives the sentence in any language (CJK words have no leading
/// space).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Recognition probability, 0-1. A NaN is written to JSON as `null` and read back as NaN.
    #[serde(deserialize_with = "f32_or_null")]
    pub prob: f32,
}

fn f32_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    Ok(Option::<f32>::deserialize(d)?.unwrap_or(f32::NAN))
}

/// One subtitle: a time span and the lines shown during it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cue {
    pub start_ms: u64,
    pub end_ms: u64,
    /// Lines as displayed, without embedded newlines.
    pub lines: Vec<String>,
    /// Words this cue was built from, when known (empty after parsing SRT/VTT/ASS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
}

impl Cue {
    /// A cue without words.
    pub fn new(start_ms: u64, end_ms: u64, lines: Vec<String>) -> Self {
        Self {
            start_ms,
            end_ms,
            lines,
            words: Vec::new(),
        }
    }

    /// Lines joined by one space.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }

    /// `end_ms - start_ms` (0 if the end is before the start).
    pub fn duration_ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}
