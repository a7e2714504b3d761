//! Advanced SubStation Alpha (`.ass`): styles sized from the video, escaped dialogue text, the canonical
//! markup as override tags (see [`crate::visible_text`] for the mapping both ways).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{snippet, ParseError, UnknownName};
use crate::format::{Parsed, Problems};
use crate::markup::{self, ass_diff, display_lines, runs_text, Runs, Style, WJ};
use crate::srt::input_lines;
use crate::time::{fmt_ass_cs, ms_to_cs, parse_time};
use crate::Cue;

/// Video frame size in pixels; the ASS script's `PlayResX`/`PlayResY`, so style sizes are in video pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VideoSize {
    pub width: u32,
    pub height: u32,
}

impl VideoSize {
    pub fn new(width: u32, height: u32) -> Self {
        Self { width, height }
    }

    /// Taller than wide (Shorts, Reels, TikTok).
    pub fn is_vertical(self) -> bool {
        self.height > self.width
    }
}

impl Default for VideoSize {
    /// 1920×1080, used when the size is unknown.
    fn default() -> Self {
        Self {
            width: 1920,
            height: 1080,
        }
    }
}

/// An RGBA colour. `a` is opacity: 255 is opaque, 0 invisible (ASS stores the inverse). Serialised as
/// `"#rrggbbaa"`; parsed from `#rgb`, `#rrggbb`, `#rrggbbaa` or the ASS form `&HAABBGGRR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Colour {
    pub r: u8,
    pub g: u8,
    pub b: u8,
    pub a: u8,
}

impl Colour {
    pub const WHITE: Colour = Colour::rgb(255, 255, 255);
    pub const BLACK: Colour = Colour::rgb(0, 0, 0);
    pub const YELLOW: Colour = Colour::rgb(255, 255, 0);

    pub const fn rgb(r: u8, g: u8, b: u8) -> Self {
        Self { r, g, b, a: 255 }
    }

    pub const fn rgba(r: u8, g: u8, b: u8, a: u8) -> Self {
        Self { r, g, b, a }
    }

    /// The ASS form `&HAABBGGRR` (alpha 00 = opaque).
    pub fn to_ass(self) -> String {
        format!(
            "&H{:02X}{:02X}{:02X}{:02X}",
            255 - self.a,
            self.b,
            self.g,
            self.r
        )
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{:02x}{:02x}{:02x}{:02x}",
            self.r, self.g, self.b, self.a
        )
    }
}

impl From<Colour> for String {
    fn from(c: Colour) -> String {
        c.to_string()
    }
}

impl TryFrom<String> for Colour {
    type Error = UnknownName;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl FromStr for Colour {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let err = || {
            UnknownName::new(
                "colour",
                t,
                &[
                    "#rgb",
                    "#rrggbb",
                    "#rrggbbaa",
                    "&HAABBGGRR",
                    "white",
                    "black",
                    "yellow",
                ],
            )
        };
        let hex = |h: &str| u32::from_str_radix(h, 16).map_err(|_| err());
        match t.to_ascii_lowercase().as_str() {
            "white" => return Ok(Colour::WHITE),
            "black" => return Ok(Colour::BLACK),
            "yellow" => return Ok(Colour::YELLOW),
            _ => {}
        }
        if let Some(h) = t.strip_prefix('#') {
            if !h.is_ascii() {
                return Err(err());
            }
            let byte = |i: usize| -> Result<u8, UnknownName> { Ok(hex(&h[i..i + 2])? as u8) };
            return match h.len() {
                3 => {
                    let v = hex(h)?;
                    let nib = |shift: u32| ((v >> shift) & 0xF) as u8 * 17;
                    Ok(Colour::rgb(nib(8), nib(4), nib(0)))
                }
                6 => Ok(Colour::rgb(byte(0)?, byte(2)?, byte(4)?)),
                8 => Ok(Colour::rgba(byte(0)?, byte(2)?, byte(4)?, byte(6)?)),
                _ => Err(err()),
            };
        }
        if let Some(h) = t.strip_prefix("&H").or_else(|| t.strip_prefix("&h")) {
            let h = h.trim_end_matches('&');
            if h.is_empty() || h.len() > 8 {
                return Err(err());
            }
            let v = hex(h)?;
            return Ok(Colour::rgba(
                v as u8,
                (v >> 8) as u8,
                (v >> 16) as u8,
                255 - (v >> 24) as u8,
            ));
        }
        Err(err())
    }
}

/// How dialogue looks. Sizes are ratios of the video so the same style works at any resolution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssStyle {
    /// Font family name (the renderer falls back through fontconfig if it is missing).
    pub font: String,
    /// Font size as a fraction of the video height: font px = round(ratio × height).
    pub size_ratio: f64,
    pub bold: bool,
    /// Text colour.
    pub primary: Colour,
    /// Outline colour; with `back_box` it is the colour of the box (ASS `BorderStyle` 3 draws the box in the
    /// outline colour).
    pub outline_colour: Colour,
    /// Outline thickness (or box padding with `back_box`) as a fraction of the video height.
    pub outline_ratio: f64,
    /// Shadow depth in pixels at 1080 lines, scaled with the video height; 0 for none.
    pub shadow: f64,
    /// Vertical margin (distance from the bottom or top edge) as a fraction of the video height.
    pub margin_v_ratio: f64,
    /// Left (and, unless `margin_r_ratio` is set, right) margin as a fraction of the video width.
    pub margin_h_ratio: f64,
    /// Right margin as a fraction of the video width, when it differs from the left one (vertical video keeps
    /// captions clear of the platforms' buttons on the right).
    #[serde(default)]
    pub margin_r_ratio: Option<f64>,
    /// Numpad position: 1-3 bottom, 4-6 middle, 7-9 top; 2 is bottom centre.
    pub alignment: u8,
    /// Draw an opaque box behind the text instead of an outline.
    pub back_box: bool,
    /// Karaoke: the word being spoken is drawn in this colour (from the cues' word timings).
    #[serde(default)]
    pub highlight: Option<Colour>,
}

impl Default for AssStyle {
    /// The "clean" style: white DejaVu Sans at 5.5 % of the height, thin black outline, soft shadow, bottom
    /// centre.
    fn default() -> Self {
        Self {
            font: "DejaVu Sans".into(),
            size_ratio: 0.055,
            bold: false,
            primary: Colour::WHITE,
            outline_colour: Colour::BLACK,
            outline_ratio: 0.0028,
            shadow: 1.0,
            margin_v_ratio: 0.05,
            margin_h_ratio: 0.05,
            alignment: 2,
            back_box: false,
            margin_r_ratio: None,
            highlight: None,
        }
    }
}

/// The part of a vertical (9:16) frame that Shorts, Reels and TikTok leave free of their own overlays, as
/// fractions of the frame: the bottom ~20 % carries the caption and music line, the right ~15 % the buttons,
/// the top ~8 % the header.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SafeArea {
    pub top: f64,
    pub bottom: f64,
    pub left: f64,
    pub right: f64,
}

/// See [`SafeArea`].
pub const VERTICAL_SAFE_AREA: SafeArea = SafeArea {
    top: 0.08,
    bottom: 0.20,
    left: 0.04,
    right: 0.15,
};

/// The default karaoke highlight: yellow.
pub const KARAOKE_HIGHLIGHT: Colour = Colour::rgb(255, 214, 0);

impl AssStyle {
    /// The "clean" style (same as `default()`).
    pub fn clean() -> Self {
        Self::default()
    }

    /// White text on a translucent black box.
    pub fn boxed() -> Self {
        Self {
            outline_colour: Colour::rgba(0, 0, 0, 160),
            outline_ratio: 0.006,
            shadow: 0.0,
            back_box: true,
            ..Self::default()
        }
    }

    /// Big bold one-line captions for vertical video: 3 % of the height (about 58 px on 1080×1920, matching
    /// the 22-character `shorts` profile), thick outline, raised to 28 % from the bottom and kept off the right
    /// 15 %, inside [`VERTICAL_SAFE_AREA`].
    pub fn shorts() -> Self {
        Self {
            size_ratio: 0.030,
            bold: true,
            outline_ratio: 0.004,
            shadow: 2.0,
            margin_v_ratio: 0.28,
            margin_h_ratio: VERTICAL_SAFE_AREA.left + 0.01,
            margin_r_ratio: Some(VERTICAL_SAFE_AREA.right + 0.01),
            ..Self::default()
        }
    }

    /// `clean` with the spoken word highlighted in [`KARAOKE_HIGHLIGHT`], bold.
    pub fn karaoke() -> Self {
        Self {
            bold: true,
            highlight: Some(KARAOKE_HIGHLIGHT),
            ..Self::default()
        }
    }

    /// The built-in style with this name (case-insensitive), laid out for horizontal video.
    pub fn by_name(name: &str) -> Option<Self> {
        Self::for_video(name, false)
    }

    /// The built-in style `name` laid out for horizontal or vertical video: on vertical video every look uses
    /// the big one-line `shorts` layout inside the platforms' safe area.
    pub fn for_video(name: &str, vertical: bool) -> Option<Self> {
        let look = match name.trim().to_ascii_lowercase().as_str() {
            "clean" => Self::clean(),
            "boxed" => Self::boxed(),
            "karaoke" => Self::karaoke(),
            "shorts" => return Some(Self::shorts()),
            _ => return None,
        };
        if !vertical {
            return Some(look);
        }
        let s = Self::shorts();
        Some(Self {
            back_box: look.back_box,
            outline_colour: look.outline_colour,
            outline_ratio: if look.back_box {
                0.006
            } else {
                s.outline_ratio
            },
            shadow: if look.back_box { 0.0 } else { s.shadow },
            highlight: look.highlight,
            ..s
        })
    }

    /// Names of the built-in styles.
    pub fn names() -> &'static [&'static str] {
        &["clean", "boxed", "karaoke", "shorts"]
    }

    /// The `Style:` line for a video of this size (style name `Default`).
    pub fn style_line(&self, video: VideoSize) -> String {
        let h = f64::from(video.height.max(1));
        let w = f64::from(video.width.max(1));
        let px = |ratio: f64, of: f64| {
            if ratio.is_finite() {
                (ratio * of).max(0.0).round()
            } else {
                0.0
            }
        };
        let size = px(self.size_ratio, h).max(1.0);
        let outline = if self.outline_ratio.is_finite() {
            (self.outline_ratio * h).max(0.0)
        } else {
            0.0
        };
        let shadow = if self.shadow.is_finite() {
            (self.shadow * h / 1080.0).max(0.0)
        } else {
            0.0
        };
        let font: String = self
            .font
            .chars()
            .map(|c| if c == ',' || c.is_control() { ' ' } else { c })
            .collect();
        let font = if font.trim().is_empty() {
            "DejaVu Sans".to_string()
        } else {
            font.trim().to_string()
        };
        let alignment = if (1..=9).contains(&self.alignment) {
            self.alignment
        } else {
            2
        };
        format!(
            "Style: Default,{font},{size},{},&H000000FF,{},&H80000000,{},0,0,0,100,100,0,0,{},{},{},{alignment},{ml},{mr},{mv},1",
            self.primary.to_ass(),
            self.outline_colour.to_ass(),
            if self.bold { -1 } else { 0 },
            if self.back_box { 3 } else { 1 },
            round2(outline),
            round2(shadow),
            mr = px(self.margin_r_ratio.unwrap_or(self.margin_h_ratio), w),
            ml = px(self.margin_h_ratio, w),
            mv = px(self.margin_v_ratio, h),
        )
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Escapes one line of user text for a Dialogue line: backslashes are followed by a word joiner (so `\N`,
/// `\h` and `\{` in the text stay literal), braces become `\{` and `\}` (libass shows them literally, so no
/// override block can be opened).
fn escape_text(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '\\' => {
                out.push('\\');
                out.push(WJ);
            }
            '{' => out.push_str("\\{"),
            '}' => out.push_str("\\}"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Writes an ASS script for a video of `video` size: `[Script Info]` with `PlayResX`/`PlayResY` set to the
/// video size and `ScaledBorderAndShadow: yes`, one `Default` style computed from `style`, and one Dialogue
/// per cue with `\N` between lines. With a [`AssStyle::highlight`] colour, cues that carry word timings become
/// karaoke: one Dialogue per spoken word, that word drawn in the highlight colour.
///
/// Times are rounded to the nearest centisecond; an end is never rounded past the next cue's start, so cues
/// that did not overlap still do not. The canonical markup becomes override tags (`{\i1}`...`{\i}`,
/// `{\c&HBBGGRR&}`...`{\c}`; see [`crate::visible_text`]); the text itself is escaped so it can never
/// inject override tags (libass semantics; see [`parse_ass`]). Lines without visible text are left out.
pub fn write_ass(cues: &[Cue], style: &AssStyle, video: VideoSize) -> String {
    write_burn_script(cues, &BurnLook::Style(style.clone()), video, None)
}

/// How burned-in subtitles look: a built-in or serialised [`AssStyle`], or a user's own ASS script whose
/// styles are used as they are.
#[derive(Clone, Debug, PartialEq)]
pub enum BurnLook {
    Style(AssStyle),
    User(UserAssStyle),
}

/// The styles of a user's ASS file (`--style FILE`): every section but `[Events]` is kept verbatim, and the
/// dialogue uses the style named `Default` if there is one, else the first. The file's own `PlayResX`/`PlayResY`
/// are kept, so libass scales its sizes to whatever the output resolution is.
#[derive(Clone, Debug, PartialEq)]
pub struct UserAssStyle {
    head: String,
    style: String,
    play_res: VideoSize,
}

impl UserAssStyle {
    /// Reads the script; fails when it has no `[Script Info]` section or no `Style:` line.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let lines = input_lines(text);
        let mut head = String::new();
        let mut section = String::new();
        let mut styles: Vec<String> = Vec::new();
        let (mut res_x, mut res_y) = (None::<u32>, None::<u32>);
        let mut seen_info = false;
        for (i, raw) in lines.iter().enumerate() {
            let line = raw.trim();
            if line.starts_with('[') && line.ends_with(']') {
                section = line[1..line.len() - 1].trim().to_ascii_lowercase();
                seen_info |= section == "script info";
                if section != "events" {
                    head.push_str(line);
                    head.push('\n');
                }
                continue;
            }
            if section.is_empty() && !line.is_empty() && !line.starts_with(';') {
                return Err(ParseError::new(
                    i + 1,
                    format!(
                        "expected an ASS script starting with [Script Info], found {:?}",
                        snippet(line)
                    ),
                ));
            }
            if section == "events" {
                continue;
            }
            if let Some((key, value)) = line.split_once(':') {
                let key = key.trim().to_ascii_lowercase();
                match (section.as_str(), key.as_str()) {
                    ("script info", "playresx") => res_x = value.trim().parse().ok(),
                    ("script info", "playresy") => res_y = value.trim().parse().ok(),
                    (s, "style") if s.ends_with("styles") => {
                        if let Some(name) = value.split(',').next() {
                            styles.push(name.trim().to_owned());
                        }
                    }
                    _ => {}
                }
            }
            head.push_str(raw.trim_end());
            head.push('\n');
        }
        if !seen_info {
            return Err(ParseError::new(
                1,
                "not an ASS script: no [Script Info] section",
            ));
        }
        let style = if styles.iter().any(|s| s == "Default") {
            "Default".to_owned()
        } else {
            styles.first().cloned().ok_or_else(|| {
                ParseError::new(
                    lines.len(),
                    "the ASS file defines no style (no `Style:` line in [V4+ Styles])",
                )
            })?
        };
        // libass: without PlayRes the script is laid out for 384x288; with only one, the other follows 4:3
        // (PlayResY 1024 when PlayResX is 1280).
        let play_res = match (res_x, res_y) {
            (Some(x), Some(y)) if x > 0 && y > 0 => VideoSize::new(x, y),
            (Some(1280), None) => VideoSize::new(1280, 1024),
            (Some(x), None) if x > 0 => VideoSize::new(x, x * 3 / 4),
            (None, Some(1024)) => VideoSize::new(1280, 1024),
            (None, Some(y)) if y > 0 => VideoSize::new(y * 4 / 3, y),
            _ => VideoSize::new(384, 288),
        };
        Ok(Self {
            head,
            style,
            play_res,
        })
    }

    /// The style name dialogue is written with.
    pub fn style_name(&self) -> &str {
        &self.style
    }
}

/// A text watermark drawn over the whole video by the same script (so the text needs no second filter).
#[derive(Clone, Debug, PartialEq)]
pub struct TextMark {
    pub text: String,
    /// Numpad position: 7 top left, 9 top right, 1 bottom left, 3 bottom right.
    pub alignment: u8,
    /// 0 invisible .. 1 opaque.
    pub opacity: f64,
    /// Font size as a fraction of the video height.
    pub size_ratio: f64,
    /// Distance from the edges as a fraction of the video height.
    pub margin_ratio: f64,
    /// Shown from 0 to this time.
    pub until_ms: u64,
}

/// Writes the script that is burned into a video of `video` size: the cues in `look` (karaoke when the
/// style has a highlight colour and the cues carry words), plus an optional text watermark.
pub fn write_burn_script(
    cues: &[Cue],
    look: &BurnLook,
    video: VideoSize,
    watermark: Option<&TextMark>,
) -> String {
    write_bilingual_script(cues, None, look, video, watermark)
}

/// [`write_burn_script`] with a second set of cues (`upper`, usually the original language) drawn above the
/// main ones at 85 % size, without karaoke. With a user's ASS look the upper cues go to the top of the frame.
pub fn write_bilingual_script(
    cues: &[Cue],
    upper: Option<&[Cue]>,
    look: &BurnLook,
    video: VideoSize,
    watermark: Option<&TextMark>,
) -> String {
    let mut out = String::new();
    let (style_name, highlight, res) = match look {
        BurnLook::Style(style) => {
            out.push_str("[Script Info]\n; Generated by AutoSub\nScriptType: v4.00+\n");
            out.push_str(&format!(
                "PlayResX: {}\nPlayResY: {}\n",
                video.width.max(1),
                video.height.max(1)
            ));
            out.push_str("ScaledBorderAndShadow: yes\nWrapStyle: 0\nYCbCr Matrix: None\n\n");
            out.push_str("[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n");
            out.push_str(&style.style_line(video));
            out.push_str("\n\n");
            ("Default", style.highlight, video)
        }
        BurnLook::User(user) => {
            out.push_str(&user.head);
            if !out.ends_with("\n\n") {
                out.push('\n');
            }
            (user.style.as_str(), None, user.play_res)
        }
    };
    out.push_str(
        "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n",
    );
    let dialogue = |out: &mut String, layer: u8, start: u64, end: u64, text: &str| {
        out.push_str(&format!(
            "Dialogue: {layer},{},{},{style_name},,0,0,0,,{text}\n",
            fmt_ass_cs(start),
            fmt_ass_cs(end),
        ));
    };
    for (i, cue) in cues.iter().enumerate() {
        let start = ms_to_cs(cue.start_ms);
        let mut end = ms_to_cs(cue.end_ms);
        if cue.end_ms > cue.start_ms && end <= start {
            end = start + 1;
        }
        if let Some(next) = cues.get(i + 1) {
            if cue.end_ms <= next.start_ms {
                end = end.min(ms_to_cs(next.start_ms));
            }
        }
        let end = end.max(start);
        let lines = display_lines(&cue.lines);
        let spans = highlight.and_then(|_| word_spans(cue, &lines));
        match (highlight, spans) {
            (Some(colour), Some(spans)) if !spans.is_empty() => {
                // Before the first word: no highlight; then each word from its start to the next one's.
                let mut t = start;
                let first = ms_to_cs(spans[0].start_ms).max(start).min(end);
                if first > t {
                    dialogue(&mut out, 0, t, first, &dialogue_text(&lines, None));
                    t = first;
                }
                for (k, span) in spans.iter().enumerate() {
                    let next = spans
                        .get(k + 1)
                        .map_or(end, |n| ms_to_cs(n.start_ms).max(t).min(end));
                    if next > t {
                        dialogue(
                            &mut out,
                            0,
                            t,
                            next,
                            &dialogue_text(&lines, Some((span, colour))),
                        );
                        t = next;
                    }
                }
            }
            _ => dialogue(&mut out, 0, start, end, &dialogue_text(&lines, None)),
        }
    }
    if let Some(upper) = upper {
        let (margin_v, prefix) = match look {
            BurnLook::Style(st) => (
                ((st.margin_v_ratio + 2.6 * st.size_ratio) * f64::from(res.height.max(1))).round()
                    as u32,
                "{\\fscx85\\fscy85}",
            ),
            BurnLook::User(_) => (0, "{\\an8}"),
        };
        for (i, cue) in upper.iter().enumerate() {
            let start = ms_to_cs(cue.start_ms);
            let mut end = ms_to_cs(cue.end_ms).max(start + 1);
            if let Some(next) = upper.get(i + 1) {
                if cue.end_ms <= next.start_ms {
                    end = end.min(ms_to_cs(next.start_ms));
                }
            }
            out.push_str(&format!(
                "Dialogue: 0,{},{},{style_name},,0,0,{margin_v},,{prefix}{}\n",
                fmt_ass_cs(start),
                fmt_ass_cs(end),
                dialogue_text(&display_lines(&cue.lines), None)
            ));
        }
    }
    if let Some(mark) = watermark.filter(|m| !m.text.trim().is_empty()) {
        let h = f64::from(res.height.max(1));
        let clamp01 = |x: f64| {
            if x.is_finite() {
                x.clamp(0.0, 1.0)
            } else {
                1.0
            }
        };
        let alpha = ((1.0 - clamp01(mark.opacity)) * 255.0).round() as u8;
        let size = (clamp01(mark.size_ratio) * h).round().max(1.0);
        let margin = (clamp01(mark.margin_ratio) * h).round();
        let alignment = if (1..=9).contains(&mark.alignment) {
            mark.alignment
        } else {
            9
        };
        let text = escape_text(mark.text.trim());
        out.push_str(&format!(
            "Dialogue: 1,{},{},{style_name},,{m},{m},{m},,{{\\an{alignment}\\fnDejaVu Sans\\fs{size}\\b1\\i0\\u0\\s0\\fscx100\\fscy100\\fsp0\\frz0\\1c&HFFFFFF&\\3c&H000000&\\bord{b}\\shad0\\1a&H{alpha:02X}&\\3a&H{alpha:02X}&}}{text}\n",
            fmt_ass_cs(0),
            fmt_ass_cs(ms_to_cs(mark.until_ms).max(1)),
            m = margin,
            b = round2(size / 20.0),
        ));
    }
    out
}

/// Inserts Dialogue `lines` at the end of the script's `[Events]` section (adding the section when there is
/// none), keeping every other line as it is.
pub fn insert_events(script: &str, lines: &[&str]) -> String {
    let mut out = String::with_capacity(script.len() + 200);
    let mut in_events = false;
    let mut inserted = false;
    for line in script.lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            if in_events && !inserted {
                for l in lines {
                    out.push_str(l);
                    out.push('\n');
                }
                inserted = true;
            }
            in_events = t.eq_ignore_ascii_case("[events]");
        }
        out.push_str(line);
        out.push('\n');
    }
    if !inserted {
        if !in_events {
            out.push_str("\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n");
        }
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// Where a spoken word sits in a cue's display lines: line index and byte range in the line's visible text,
/// with its start time. Punctuation-only words are folded into the word before them.
#[derive(Clone, Debug, PartialEq)]
struct WordSpan {
    line: usize,
    range: std::ops::Range<usize>,
    start_ms: u64,
}

/// Finds each of the cue's words in the visible text of its lines, in order; `None` when the cue has no
/// words or one cannot be found (text edited after segmentation), so the cue is drawn without karaoke.
fn word_spans(cue: &Cue, lines: &[Runs]) -> Option<Vec<WordSpan>> {
    if cue.words.is_empty() {
        return None;
    }
    let texts: Vec<String> = lines.iter().map(|l| runs_text(l)).collect();
    let mut spans: Vec<WordSpan> = Vec::new();
    let (mut line, mut pos) = (0usize, 0usize);
    for w in &cue.words {
        let t = w.text.trim();
        if t.is_empty() {
            continue;
        }
        let (l, at) = loop {
            let text = texts.get(line)?;
            if let Some(off) = text.get(pos..).and_then(|rest| rest.find(t)) {
                break (line, pos + off);
            }
            line += 1;
            pos = 0;
        };
        let end = at + t.len();
        pos = end;
        let punct_only = t.chars().all(|c| !c.is_alphanumeric());
        match spans.last_mut() {
            Some(prev) if punct_only && prev.line == l => prev.range.end = end,
            _ => spans.push(WordSpan {
                line: l,
                range: at..end,
                start_ms: w.start_ms,
            }),
        }
    }
    Some(spans)
}

/// The Text field for display lines: the markup as override tags, the text escaped, `\N` between lines.
/// With a karaoke `highlight`, that word is drawn in the colour (`\1c`, over any markup colour) and `{\r}`
/// after it goes back to the style, followed by the markup still in force.
fn dialogue_text(lines: &[Runs], highlight: Option<(&WordSpan, Colour)>) -> String {
    // The markup libass has in force (besides a highlight colour), from the start of the Dialogue.
    let mut shown = Style::default();
    let mut parts = Vec::with_capacity(lines.len());
    for (i, runs) in lines.iter().enumerate() {
        let hl = highlight
            .filter(|(s, _)| s.line == i)
            .map(|(s, c)| (s.range.clone(), c));
        let mut out = String::new();
        let mut in_hl = false;
        let mut pos = 0usize;
        let mut last = Style::default();
        for run in runs {
            let run_end = pos + run.text.len();
            // Cut the run where the highlight starts and ends.
            let mut cuts = vec![pos, run_end];
            if let Some((r, _)) = &hl {
                for b in [r.start, r.end] {
                    if b > pos && b < run_end && run.text.is_char_boundary(b - pos) {
                        cuts.push(b);
                    }
                }
            }
            cuts.sort_unstable();
            cuts.dedup();
            for seg in cuts.windows(2) {
                let (a, b) = (seg[0], seg[1]);
                let inside = hl.as_ref().is_some_and(|(r, _)| a >= r.start && a < r.end);
                let tags = match (inside, in_hl) {
                    (true, false) => {
                        let colour = hl.as_ref().map_or(Colour::WHITE, |h| h.1);
                        let mut t = ass_diff(shown, run.style, true);
                        t.push_str(&format!(
                            "\\1c&H{:02X}{:02X}{:02X}&",
                            colour.b, colour.g, colour.r
                        ));
                        shown = Style {
                            colour: shown.colour,
                            ..run.style
                        };
                        t
                    }
                    (true, true) => {
                        let t = ass_diff(shown, run.style, true);
                        shown = Style {
                            colour: shown.colour,
                            ..run.style
                        };
                        t
                    }
                    (false, true) => {
                        let t = format!("\\r{}", ass_diff(Style::default(), run.style, false));
                        shown = run.style;
                        t
                    }
                    (false, false) => {
                        let t = ass_diff(shown, run.style, false);
                        shown = run.style;
                        t
                    }
                };
                in_hl = inside;
                if !tags.is_empty() {
                    out.push('{');
                    out.push_str(&tags);
                    out.push('}');
                }
                out.push_str(&escape_text(&run.text[a - pos..b - pos]));
            }
            last = run.style;
            pos = run_end;
        }
        if in_hl {
            out.push_str(&format!(
                "{{\\r{}}}",
                ass_diff(Style::default(), last, false)
            ));
            shown = last;
        }
        parts.push(out);
    }
    parts.join("\\N")
}

/// Parses an ASS (or SSA) script's `[Events]`: every `Dialogue:` line, with fields in the order given by the
/// section's `Format:` line (the standard ASS order if there is none); the warnings of
/// [`crate::parse_subtitles`] are dropped. Comments, styles, fonts, graphics and other sections are
/// ignored. Times are `H:MM:SS.cc`, read the way pysubs2 reads them: one-digit minutes and seconds with a
/// fraction (`0:0:0.04`), no fraction (`0:00:01`), any number of fraction digits.
///
/// Text is unescaped as described for [`write_ass`] (`\N` splits lines, `\h`, `\{`...) and the override
/// tags that the canonical markup can hold become it (see [`crate::visible_text`]): `{\i1}x{\i0}` is
/// `<i>x</i>`, `{\c&H0000FF&}` is `<font color="#ff0000">`; all other override tags are dropped.
///
/// Read leniently, with a warning: a negative time (read as 0); a script with sections (styles, fonts)
/// but no `[Events]` (no cues). Skipped, with a warning: a Dialogue line with too few fields, a malformed
/// timestamp or an end before the start. Errors (with the line number): input that is not an ASS script (no
/// section header before other text), a Format line without Start, End or Text, and the first skipped
/// Dialogue when no cue could be read.
pub fn parse_ass(s: &str) -> Result<Vec<Cue>, ParseError> {
    read_ass(s).map(|p| p.cues)
}

pub(crate) fn read_ass(s: &str) -> Result<Parsed, ParseError> {
    let lines = input_lines(s);
    let mut section = String::new();
    let mut seen_section = false;
    let mut seen_events = false;
    let mut wrap_style_2 = false;
    let default_format = [
        "layer", "start", "end", "style", "name", "marginl", "marginr", "marginv", "effect", "text",
    ];
    let mut format: Vec<String> = default_format.iter().map(|s| s.to_string()).collect();
    let mut problems = Problems::default();
    let mut cues = Vec::new();
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim();
        let ln = i + 1;
        if line.is_empty() || line.starts_with(';') || line.starts_with("!:") {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].trim().to_ascii_lowercase();
            seen_section = true;
            seen_events |= section == "events";
            continue;
        }
        if !seen_section {
            return Err(ParseError::new(
                ln,
                format!(
                    "expected an ASS script starting with [Script Info], found {:?}",
                    snippet(line)
                ),
            ));
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        match section.as_str() {
            "script info" if key == "wrapstyle" => wrap_style_2 = value.trim() == "2",
            "events" if key == "format" => {
                format = value
                    .split(',')
                    .map(|f| f.trim().to_ascii_lowercase())
                    .collect();
                for needed in ["start", "end", "text"] {
                    if !format.iter().any(|f| f == needed) {
                        return Err(ParseError::new(
                            ln,
                            format!("the events Format line has no {needed:?} field"),
                        ));
                    }
                }
            }
            "events" if key == "dialogue" => {
                let fields: Vec<&str> = value.trim_start().splitn(format.len(), ',').collect();
                if fields.len() < format.len() {
                    problems.skip(
                        ln,
                        format!(
                            "Dialogue line has {} fields, the Format line names {}",
                            fields.len(),
                            format.len()
                        ),
                        "Dialogue line",
                    );
                    continue;
                }
                let field = |name: &str| {
                    format
                        .iter()
                        .position(|f| f == name)
                        .map(|p| fields[p])
                        .unwrap_or("")
                };
                let time = |name: &str| {
                    parse_time(field(name), false).map_err(|m| format!("{name} time: {m}"))
                };
                let (start, end) = match (time("start"), time("end")) {
                    (Ok(s), Ok(e)) => (s, e),
                    (Err(m), _) | (_, Err(m)) => {
                        problems.skip(ln, m, "Dialogue line");
                        continue;
                    }
                };
                for (name, (_, negative)) in [("start", start), ("end", end)] {
                    if negative {
                        problems.warn(
                            ln,
                            format!("negative {name} time {:?} read as 0", field(name).trim()),
                        );
                    }
                }
                let (start_ms, end_ms) = (start.0, end.0);
                if end_ms < start_ms {
                    problems.skip(
                        ln,
                        format!(
                            "cue ends before it starts ({} --> {})",
                            field("start").trim(),
                            field("end").trim()
                        ),
                        "Dialogue line",
                    );
                    continue;
                }
                cues.push(Cue::new(
                    start_ms,
                    end_ms,
                    markup::from_ass(field("text"), wrap_style_2),
                ));
            }
            _ => {}
        }
    }
    if seen_section && !seen_events {
        problems.warn(
            lines.len(),
            "no [Events] section: the script has no subtitles",
        );
    }
    problems.finish(cues)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Dialogue lines of a script.
    fn dialogues(script: &str) -> Vec<&str> {
        script
            .lines()
            .filter(|l| l.starts_with("Dialogue:"))
            .collect()
    }

    #[test]
    fn colours() {
        assert_eq!(Colour::WHITE.to_ass(), "&H00FFFFFF");
        assert_eq!(
            Colour::rgba(0x11, 0x22, 0x33, 0xFF - 0x80).to_ass(),
            "&H80332211"
        );
        assert_eq!(
            "#112233".parse::<Colour>(),
            Ok(Colour::rgb(0x11, 0x22, 0x33))
        );
        assert_eq!("#fff".parse::<Colour>(), Ok(Colour::WHITE));
        assert_eq!(
            "&H80332211".parse::<Colour>(),
            Ok(Colour::rgba(0x11, 0x22, 0x33, 0x7F))
        );
        assert_eq!(
            "#11223344".parse::<Colour>().unwrap().to_string(),
            "#11223344"
        );
        assert!("#12".parse::<Colour>().is_err());
        assert!("#ééé".parse::<Colour>().is_err());
        let json = serde_json::to_string(&Colour::YELLOW).unwrap();
        assert_eq!(json, "\"#ffff00ff\"");
        assert_eq!(
            serde_json::from_str::<Colour>(&json).unwrap(),
            Colour::YELLOW
        );
    }

    #[test]
    fn escapes_round_trip() {
        for s in [
            "{\\b1}bold",
            "C:\\new\\Name",
            "a}b{c",
            "trailing\\",
            "\\h\\N\\n\\{",
            "plain",
        ] {
            let escaped = escape_text(s);
            assert!(!escaped.contains('{') || escaped.contains("\\{"));
            assert_eq!(
                markup::from_ass(&escaped, false),
                vec![s.to_string()],
                "{s:?} -> {escaped:?}"
            );
        }
    }

    #[test]
    fn override_blocks_become_markup_or_are_dropped() {
        let read = markup::from_ass;
        assert_eq!(
            read("{\\an8}{\\b1}Top{\\b0}\\Nline", false),
            vec!["<b>Top</b>", "line"]
        );
        assert_eq!(read("a\\nb", false), vec!["a b"]);
        assert_eq!(read("a\\nb", true), vec!["a", "b"]);
        assert_eq!(read("open { brace", false), vec!["open { brace"]);
        assert!(read("", false).is_empty());
    }

    #[test]
    fn markup_becomes_override_tags_and_back() {
        let cue = Cue::new(
            0,
            2000,
            vec![
                "<i>Ask not</i> what <font color=\"#ffff00\">your</font> <b>country</b>".into(),
                "<u>can</u> <s>do</s> {\\b1}".into(),
            ],
        );
        for look in [AssStyle::default(), AssStyle::boxed(), AssStyle::karaoke()] {
            let script = write_ass(std::slice::from_ref(&cue), &look, VideoSize::default());
            let line = script.lines().find(|l| l.starts_with("Dialogue:")).unwrap();
            assert!(
                line.ends_with(",,{\\i1}Ask not{\\i} what {\\c&H00FFFF&}your{\\c} {\\b1}country\\N{\\b\\u1}can{\\u} {\\s1}do{\\s} \\{\\\u{2060}b1\\}"),
                "{line}"
            );
            assert_eq!(parse_ass(&script).unwrap()[0].lines, cue.lines);
        }
    }

    #[test]
    fn karaoke_keeps_markup_around_the_highlight() {
        let mut cue = karaoke_cue();
        cue.lines = vec![
            "<i>Hello,</i> {big}".into(),
            "<font color=\"#ff0000\">world.</font>".into(),
        ];
        let script = write_ass(&[cue], &AssStyle::karaoke(), VideoSize::new(1280, 720));
        let events = dialogues(&script);
        assert_eq!(events.len(), 4, "{script}");
        assert!(
            events[0].ends_with(",,{\\i1}Hello,{\\i} \\{big\\}\\N{\\c&H0000FF&}world."),
            "{}",
            events[0]
        );
        // The highlight is drawn over the italic word, then the style comes back with no italic.
        assert!(
            events[1]
                .ends_with(",,{\\i1\\1c&H00D6FF&}Hello,{\\r} \\{big\\}\\N{\\c&H0000FF&}world."),
            "{}",
            events[1]
        );
        // Over a coloured word the highlight wins, and the colour comes back after it.
        assert!(
            events[3].ends_with("\\N{\\1c&H00D6FF&}world.{\\r\\c&H0000FF&}"),
            "{}",
            events[3]
        );
        for c in parse_ass(&script).unwrap() {
            assert_eq!(c.visible_text(), "Hello, {big} world.");
        }
    }

    fn word(text: &str, start_ms: u64, end_ms: u64) -> crate::Word {
        crate::Word {
            text: text.into(),
            start_ms,
            end_ms,
            prob: 0.9,
        }
    }

    fn karaoke_cue() -> Cue {
        Cue {
            start_ms: 1000,
            end_ms: 3000,
            lines: vec!["Hello, {big}".into(), "world.".into()],
            words: vec![
                word(" Hello", 1100, 1400),
                word(",", 1400, 1400),
                word(" {big}", 1500, 1900),
                word(" world", 2000, 2500),
                word(".", 2500, 2500),
            ],
        }
    }

    #[test]
    fn karaoke_highlights_each_word_in_turn() {
        let cue = karaoke_cue();
        let script = write_ass(&[cue], &AssStyle::karaoke(), VideoSize::new(1280, 720));
        let events = dialogues(&script);
        assert_eq!(events.len(), 4, "{script}");
        // Unhighlighted lead-in, then one event per word, back to back to the cue's end.
        assert!(events[0].starts_with("Dialogue: 0,0:00:01.00,0:00:01.10,Default"));
        assert!(events[0].ends_with(",,Hello, \\{big\\}\\Nworld."));
        assert!(events[1].contains("0:00:01.10,0:00:01.50"));
        assert!(
            events[1].ends_with("{\\1c&H00D6FF&}Hello,{\\r} \\{big\\}\\Nworld."),
            "{}",
            events[1]
        );
        assert!(events[2].ends_with("Hello, {\\1c&H00D6FF&}\\{big\\}{\\r}\\Nworld."));
        assert!(events[3].contains("0:00:02.00,0:00:03.00"));
        assert!(events[3].ends_with("\\N{\\1c&H00D6FF&}world.{\\r}"));
        // What a reader sees is still the cue's text (the highlight reads as a colour).
        let parsed = parse_ass(&script).unwrap();
        assert!(parsed
            .iter()
            .all(|c| c.visible_lines() == vec!["Hello, {big}", "world."]));
    }

    #[test]
    fn karaoke_without_words_or_with_edited_text_falls_back_to_plain_cues() {
        let mut cue = karaoke_cue();
        cue.lines = vec!["Something else".into()];
        let plain = Cue::new(4000, 5000, vec!["No words".into()]);
        let script = write_ass(&[cue, plain], &AssStyle::karaoke(), VideoSize::default());
        let n = dialogues(&script).len();
        assert_eq!(n, 2, "{script}");
        assert!(!script.contains("\\1c"));
    }

    #[test]
    fn text_watermark_is_escaped_and_translucent() {
        let mark = TextMark {
            text: "@me {\\b0} 100%".into(),
            alignment: 9,
            opacity: 0.5,
            size_ratio: 0.04,
            margin_ratio: 0.02,
            until_ms: 60_000,
        };
        let script = write_burn_script(
            &[],
            &BurnLook::Style(AssStyle::default()),
            VideoSize::new(1080, 1920),
            Some(&mark),
        );
        let line = script.lines().find(|l| l.starts_with("Dialogue:")).unwrap();
        assert!(line.starts_with("Dialogue: 1,0:00:00.00,0:01:00.00,Default,,38,38,38,,"));
        assert!(line.contains("\\an9") && line.contains("\\fs77") && line.contains("\\1a&H80&"));
        assert!(line.ends_with("}@me \\{\\\u{2060}b0\\} 100%"), "{line}");
        // Read back, the mark's own bold and white are markup; its text is intact.
        assert_eq!(
            parse_ass(&script).unwrap()[0].visible_lines(),
            vec!["@me {\\b0} 100%"]
        );
    }

    #[test]
    fn user_style_file_keeps_its_styles_and_play_res() {
        let user = "\u{feff}[Script Info]\nTitle: mine\nPlayResX: 640\nPlayResY: 360\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour\nStyle: Big,Arial,40,&H0000FFFF\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\nDialogue: 0,0:00:00.00,0:00:01.00,Big,,0,0,0,,old text\n";
        let look = UserAssStyle::parse(user).unwrap();
        assert_eq!(look.style_name(), "Big");
        assert_eq!(look.play_res, VideoSize::new(640, 360));
        let cues = [Cue::new(0, 1500, vec!["new text".into()])];
        let script = write_burn_script(
            &cues,
            &BurnLook::User(look),
            VideoSize::new(1920, 1080),
            None,
        );
        assert!(script.contains("Style: Big,Arial,40,&H0000FFFF"));
        assert!(script.contains("PlayResY: 360"));
        assert!(!script.contains("old text"));
        assert!(script.contains("Dialogue: 0,0:00:00.00,0:00:01.50,Big,,0,0,0,,new text"));
        assert_eq!(parse_ass(&script).unwrap().len(), 1);
    }

    #[test]
    fn events_are_inserted_into_the_events_section() {
        let script = "[Script Info]\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\nDialogue: 0,0:00:00.00,0:00:01.00,Default,,0,0,0,,a\n\n[Fonts]\nfontname: x.ttf\n";
        let out = insert_events(
            script,
            &["Dialogue: 1,0:00:00.00,0:00:09.00,Default,,0,0,0,,mark"],
        );
        let pos = |needle: &str| out.find(needle).unwrap();
        assert!(
            pos(",,a") < pos(",,mark") && pos(",,mark") < pos("[Fonts]"),
            "{out}"
        );
        let out = insert_events(
            "[Script Info]\n",
            &["Dialogue: 1,0:00:00.00,0:00:09.00,Default,,0,0,0,,mark"],
        );
        assert_eq!(parse_ass(&out).unwrap()[0].lines, vec!["mark"]);
    }

    #[test]
    fn user_style_file_errors() {
        assert!(UserAssStyle::parse("1\n00:00:01,000 --> 00:00:02,000\nhi\n").is_err());
        let no_style = "[Script Info]\nPlayResY: 360\n[V4+ Styles]\nFormat: Name\n";
        let e = UserAssStyle::parse(no_style).unwrap_err();
        assert!(e.to_string().contains("no style"), "{e}");
    }

    #[test]
    fn vertical_styles_sit_in_the_safe_area() {
        for name in ["clean", "boxed", "karaoke"] {
            let s = AssStyle::for_video(name, true).unwrap();
            assert!(s.margin_v_ratio >= VERTICAL_SAFE_AREA.bottom, "{name}");
            assert!(s.margin_h_ratio >= VERTICAL_SAFE_AREA.left, "{name}");
            assert!(
                s.margin_r_ratio.unwrap() >= VERTICAL_SAFE_AREA.right,
                "{name}"
            );
            let line = s.style_line(VideoSize::new(1080, 1920));
            assert!(line.ends_with(",2,54,173,538,1"), "{name}: {line}");
        }
        assert!(AssStyle::for_video("karaoke", true)
            .unwrap()
            .highlight
            .is_some());
        assert!(AssStyle::for_video("boxed", true).unwrap().back_box);
        assert!(AssStyle::for_video("nope", true).is_none());
    }
}
