//! Subtitle profiles: the numbers that segmentation aims for and lint checks.

use serde::{Deserialize, Serialize};

use crate::error::UnknownName;

/// Layout and timing limits for one kind of subtitles. Profiles are plain data: build one with a struct
/// update (`Profile { max_chars_per_line: 37, ..Profile::standard() }`) or load it from JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Name shown in reports and stored in the JSON document.
    pub name: String,
    /// Maximum characters per line (every character counts, including spaces and punctuation).
    pub max_chars_per_line: usize,
    /// Maximum lines per cue.
    pub max_lines: usize,
    /// Maximum reading speed in characters per second, counted on the displayed text with lines joined by one
    /// space. 0, a negative number or a non-finite one means no limit (JSON writes a non-finite number as
    /// `null`, which reads back as infinity).
    #[serde(deserialize_with = "f64_or_null")]
    pub max_cps: f64,
    /// Minimum time a cue stays on screen.
    pub min_duration_ms: u64,
    /// Maximum time a cue stays on screen.
    pub max_duration_ms: u64,
    /// Minimum gap between the end of one cue and the start of the next.
    pub min_gap_ms: u64,
    /// Maximum words per cue, if limited.
    pub max_words: Option<usize>,
    /// How far a cue's start may be from its first word's start (segmentation only ever moves it earlier, and
    /// only to meet the minimum duration or reading speed).
    pub max_start_offset_ms: u64,
    /// How long a cue may stay up after its last word ends, beyond what the minimum duration and reading speed
    /// need.
    pub max_linger_ms: u64,
    /// Gaps between cues shorter than this are closed down to `min_gap_ms` (Netflix: gaps of 12 frames or
    /// less are closed to 2 frames). 0 disables gap closing.
    #[serde(default = "default_close_gap_ms")]
    pub close_gap_ms: u64,
}

fn default_close_gap_ms() -> u64 {
    500
}

fn f64_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

/// Limits given explicitly by the user (the command line's `--profile`, `--max-chars`, `--max-lines`,
/// `--max-cps`), to be laid over the limits a document was cut with.
///
/// Precedence, strongest first: the explicit numbers here; then the explicitly named profile here; then the
/// limits stored in the document ([`Document::limits`](crate::Document::limits)); then the caller's default
/// profile. See [`resolve`](Self::resolve).
///
/// ```
/// use autosub_subs::{Profile, ProfileOverrides};
///
/// let stored = Profile { max_cps: 23.0, ..Profile::standard() };
/// // Nothing given: the stored limits.
/// let p = ProfileOverrides::default().resolve(Some(stored.clone()), "standard").unwrap();
/// assert_eq!(p.max_cps, 23.0);
/// // An explicit number wins over the stored one; the other stored limits stay.
/// let flags = ProfileOverrides { max_chars_per_line: Some(37), ..Default::default() };
/// let p = flags.resolve(Some(stored.clone()), "standard").unwrap();
/// assert_eq!((p.max_chars_per_line, p.max_cps), (37, 23.0));
/// // An explicit profile name replaces the stored limits.
/// let flags = ProfileOverrides { profile: Some("shorts".into()), ..Default::default() };
/// assert_eq!(flags.resolve(Some(stored), "standard").unwrap(), Profile::shorts());
/// // No stored limits: the default profile.
/// assert_eq!(ProfileOverrides::default().resolve(None, "standard").unwrap(), Profile::standard());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfileOverrides {
    /// A built-in profile name ([`Profile::by_name`]); when given it replaces the stored limits.
    pub profile: Option<String>,
    /// [`Profile::max_chars_per_line`].
    pub max_chars_per_line: Option<usize>,
    /// [`Profile::max_lines`].
    pub max_lines: Option<usize>,
    /// [`Profile::max_cps`].
    pub max_cps: Option<f64>,
}

impl ProfileOverrides {
    /// True when nothing is given explicitly.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// `base` with every explicitly given number set on it (the name is kept: the numbers, not the name, are
    /// what the stored limits record). The numbers are taken as given; range checks are the caller's.
    pub fn apply(&self, mut base: Profile) -> Profile {
        if let Some(n) = self.max_chars_per_line {
            base.max_chars_per_line = n;
        }
        if let Some(n) = self.max_lines {
            base.max_lines = n;
        }
        if let Some(c) = self.max_cps {
            base.max_cps = c;
        }
        base
    }

    /// The effective profile: the explicitly named built-in profile, else `stored` (a document's
    /// [`limits`](crate::Document::limits)), else the built-in profile named `default`; with the explicit
    /// numbers applied on top. Errors when the explicit name (or, if it is used, `default`) is not a built-in
    /// profile.
    pub fn resolve(&self, stored: Option<Profile>, default: &str) -> Result<Profile, UnknownName> {
        let base = match (&self.profile, stored) {
            (Some(name), _) => name.parse::<Profile>()?,
            (None, Some(p)) => p,
            (None, None) => default.parse::<Profile>()?,
        };
        Ok(self.apply(base))
    }
}

impl Profile {
    /// Netflix-style subtitles for ordinary (landscape) video: 2 lines of at most 42 characters, 17 characters
    /// per second, 5/6 s to 7 s on screen, 2 frames (at 24 fps) between cues, up to 0.5 s after speech.
    pub fn standard() -> Self {
        Self {
            name: "standard".into(),
            max_chars_per_line: 42,
            max_lines: 2,
            max_cps: 17.0,
            min_duration_ms: 833,
            max_duration_ms: 7000,
            min_gap_ms: 84,
            max_words: None,
            max_start_offset_ms: 300,
            max_linger_ms: 500,
            close_gap_ms: 500,
        }
    }

    /// Captions for vertical short-form video (Shorts, Reels, TikTok): one line of 1-5 words, shown as they
    /// are spoken.
    ///
    /// * **22 characters per line.** The line is drawn big (the `shorts` ASS style uses a bold font of 3.2 %
    ///   of the frame height, about 61 px on a 1080×1920 frame), where a character is about 0.6 em wide, so
    ///   22 characters take about 800 px. Centred in a 1080-px-wide frame that leaves about 130 px clear on
    ///   each side, which keeps the text off the platform's button column on the right edge. It is the low
    ///   end of the usual 22-26 range, so a 1-5 word group is read at a glance.
    /// * **25 characters per second** (Subtitle Edit's maximum): the viewer hears each word as it appears, so
    ///   word-synced captions can run faster than the 17 cps of read-only subtitles.
    /// * **400 ms minimum, 3 s maximum.** 400 ms (10 frames at 25 fps) is enough to take in one or two words
    ///   and short enough to stay in step with the voice; a 5-word group is spoken in 1-2 s, so anything over
    ///   3 s on screen is stale.
    /// * **No gap** between cues (captions replace each other without blinking), gaps under 500 ms closed.
    /// * **Start at most 200 ms early**, so a caption never runs noticeably ahead of the voice.
    pub fn shorts() -> Self {
        Self {
            name: "shorts".into(),
            max_chars_per_line: 22,
            max_lines: 1,
            max_cps: 25.0,
            min_duration_ms: 400,
            max_duration_ms: 3000,
            min_gap_ms: 0,
            max_words: Some(5),
            max_start_offset_ms: 200,
            max_linger_ms: 500,
            close_gap_ms: 500,
        }
    }

    /// The built-in profile with this name (case-insensitive), if any.
    pub fn by_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "standard" => Some(Self::standard()),
            "shorts" => Some(Self::shorts()),
            _ => None,
        }
    }

    /// Names of the built-in profiles.
    pub fn names() -> &'static [&'static str] {
        &["standard", "shorts"]
    }

    /// Minimum on-screen time for a text of `chars` characters: the larger of the minimum duration and what
    /// the reading speed needs, rounded up to whole centiseconds.
    pub fn required_duration_ms(&self, chars: usize) -> u64 {
        let reading = if self.max_cps > 0.0 && self.max_cps.is_finite() {
            (chars as f64 * 1000.0 / self.max_cps).ceil() as u64
        } else {
            0
        };
        round_up_10(reading.max(self.min_duration_ms))
    }
}

impl Default for Profile {
    fn default() -> Self {
        Self::standard()
    }
}

impl std::str::FromStr for Profile {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::by_name(s).ok_or_else(|| UnknownName::new("profile", s, Self::names()))
    }
}

pub(crate) fn round_up_10(ms: u64) -> u64 {
    ms.div_ceil(10).saturating_mul(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve() {
        for name in Profile::names() {
            assert_eq!(Profile::by_name(name).unwrap().name, *name);
        }
        assert_eq!(Profile::by_name("SHORTS"), Some(Profile::shorts()));
        assert!(Profile::by_name("cinema").is_none());
        assert!("cinema"
            .parse::<Profile>()
            .unwrap_err()
            .to_string()
            .contains("standard, shorts"));
    }

    #[test]
    fn required_duration() {
        let p = Profile::standard();
        assert_eq!(p.required_duration_ms(5), 833u64.div_ceil(10) * 10);
        assert_eq!(p.required_duration_ms(17), 1000);
        assert_eq!(p.required_duration_ms(84), 4950);
    }

    #[test]
    fn overrides_precedence() {
        let stored = Profile {
            max_cps: 23.0,
            max_lines: 3,
            ..Profile::standard()
        };
        let none = ProfileOverrides::default();
        assert!(none.is_empty());
        assert_eq!(
            none.resolve(Some(stored.clone()), "shorts").unwrap(),
            stored
        );
        assert_eq!(none.resolve(None, "shorts").unwrap(), Profile::shorts());
        assert_eq!(
            none.resolve(None, "cinema").unwrap_err().kind,
            "profile",
            "an unknown default is an error"
        );
        let cps = ProfileOverrides {
            max_cps: Some(20.0),
            ..Default::default()
        };
        assert!(!cps.is_empty());
        let p = cps.resolve(Some(stored.clone()), "standard").unwrap();
        assert_eq!(
            (p.max_cps, p.max_lines, p.name.as_str()),
            (20.0, 3, "standard")
        );
        let named = ProfileOverrides {
            profile: Some("Shorts".into()),
            max_lines: Some(2),
            ..Default::default()
        };
        let p = named.resolve(Some(stored.clone()), "standard").unwrap();
        assert_eq!(
            p,
            Profile {
                max_lines: 2,
                ..Profile::shorts()
            }
        );
        let bad = ProfileOverrides {
            profile: Some("cinema".into()),
            ..Default::default()
        };
        assert!(bad
            .resolve(Some(stored), "standard")
            .unwrap_err()
            .to_string()
            .contains("cinema"));
    }

    #[test]
    fn unlimited_reading_speed_survives_json() {
        for cps in [f64::INFINITY, f64::NAN] {
            let p = Profile {
                max_cps: cps,
                ..Profile::standard()
            };
            let json = serde_json::to_string(&p).unwrap();
            assert!(json.contains("\"max_cps\":null"), "{json}");
            let back: Profile = serde_json::from_str(&json).unwrap();
            assert_eq!(back.max_cps, f64::INFINITY);
            assert_eq!(back.required_duration_ms(100), p.required_duration_ms(100));
        }
    }

    #[test]
    fn profile_json_without_close_gap_gets_default() {
        let mut v = serde_json::to_value(Profile::standard()).unwrap();
        v.as_object_mut().unwrap().remove("close_gap_ms");
        let p: Profile = serde_json::from_value(v).unwrap();
        assert_eq!(p, Profile::standard());
    }
}
