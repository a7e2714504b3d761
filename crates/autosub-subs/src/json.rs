//! The JSON document (`talk.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{ParseError, UnknownName};
use crate::{Cue, Profile, ProfileOverrides, Word};

/// The JSON document written as `talk.json` and read back by `autosub segment` and `autosub lint`: the
/// recognised words (so cues can be rebuilt for another profile) and the cues built from them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Format version, [`Document::VERSION`].
    pub version: u32,
    /// Input file the words were recognised from.
    pub source: Option<String>,
    /// Detected or given language code.
    pub language: Option<String>,
    pub language_probability: Option<f32>,
    /// Model used for recognition.
    pub model: Option<String>,
    #[serde(default)]
    pub duration_ms: u64,
    /// Name of the profile the cues were built for.
    #[serde(default)]
    pub profile: String,
    /// The effective limits the cues were built for: the named profile with any overrides (`--max-cps 23`)
    /// applied. Absent in documents written before it existed; read them through [`Document::limits`], which
    /// falls back to the built-in profile named by `profile`. Set it with [`Document::set_limits`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Profile>,
    #[serde(default)]
    pub words: Vec<Word>,
    #[serde(default)]
    pub cues: Vec<Cue>,
    /// Time spent per stage, e.g. `"decode"`, `"transcribe"`.
    #[serde(default)]
    pub timings_ms: BTreeMap<String, u64>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Document {
    /// The version this crate writes and reads.
    ///
    /// Adding the optional [`limits`](Document::limits) field did not change it: documents without the field
    /// read as before, and a build that does not know the field ignores it and reads the rest (a bump would
    /// make older builds refuse every new document).
    pub const VERSION: u32 = 1;

    /// The limits the cues were cut for: the stored [`limits`](Document::limits) if the document has them,
    /// else the built-in profile named by [`profile`](Document::profile) (documents written before the limits
    /// were stored), else `None` (an unknown or empty profile name).
    pub fn limits(&self) -> Option<Profile> {
        self.limits
            .clone()
            .or_else(|| Profile::by_name(&self.profile))
    }

    /// Records `profile` as the limits the cues were cut for: its name in [`profile`](Document::profile) and
    /// the whole profile in [`limits`](Document::limits).
    pub fn set_limits(&mut self, profile: &Profile) {
        self.profile = profile.name.clone();
        self.limits = Some(profile.clone());
    }

    /// The profile to check or re-cut this document with: explicit `overrides` over the document's own
    /// [`limits`](Document::limits), over the built-in profile named `default`
    /// (see [`ProfileOverrides::resolve`]).
    pub fn effective_profile(
        &self,
        overrides: &ProfileOverrides,
        default: &str,
    ) -> Result<Profile, UnknownName> {
        overrides.resolve(self.limits(), default)
    }
}

impl Default for Document {
    fn default() -> Self {
        Self {
            version: Self::VERSION,
            source: None,
            language: None,
            language_probability: None,
            model: None,
            duration_ms: 0,
            profile: String::new(),
            limits: None,
            words: Vec::new(),
            cues: Vec::new(),
            timings_ms: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }
}

/// Pretty-printed JSON with a final newline.
pub fn write_json(doc: &Document) -> String {
    let mut s = serde_json::to_string_pretty(doc).expect("a Document always serialises");
    s.push('\n');
    s
}

/// Parses a [`Document`]. Errors carry serde's line number; documents of another version are rejected.
/// Missing `words`, `cues`, `duration_ms`, `profile`, `limits`, `timings_ms` and `warnings` default to empty.
pub fn parse_json(s: &str) -> Result<Document, ParseError> {
    let s = s.strip_prefix('\u{feff}').unwrap_or(s);
    let doc: Document = serde_json::from_str(s).map_err(|e| {
        let msg = e.to_string();
        let msg = match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        ParseError::new(e.line(), format!("invalid AutoSub JSON document: {msg}"))
    })?;
    if doc.version != Document::VERSION {
        return Err(ParseError::new(
            1,
            format!(
                "unsupported document version {} (this build reads version {})",
                doc.version,
                Document::VERSION
            ),
        ));
    }
    let bad_word = |w: &crate::Word| w.end_ms < w.start_ms;
    if let Some((i, c)) = doc
        .cues
        .iter()
        .enumerate()
        .find(|(_, c)| c.end_ms < c.start_ms || c.words.iter().any(bad_word))
    {
        return Err(ParseError::new(
            1,
            format!(
                "cue {} ends before it starts (or holds a word that does): {} ms -> {} ms",
                i + 1,
                c.start_ms,
                c.end_ms
            ),
        ));
    }
    if let Some(w) = doc.words.iter().find(|w| bad_word(w)) {
        return Err(ParseError::new(
            1,
            format!(
                "word {:?} ends before it starts ({} ms -> {} ms)",
                w.text.trim(),
                w.start_ms,
                w.end_ms
            ),
        ));
    }
    Ok(doc)
}
