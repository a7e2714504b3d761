//! Advanced SubStation Alpha (`.ass`): styles sized from the video, escaped dialogue text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{snippet, ParseError, UnknownName};
use crate::srt::input_lines;
use crate::time::{fmt_ass_cs, ms_to_cs, parse_clock};
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
    /// Left and right margins as a fraction of the video width.
    pub margin_h_ratio: f64,
    /// Numpad position: 1-3 bottom, 4-6 middle, 7-9 top; 2 is bottom centre.
    pub alignment: u8,
    /// Draw an opaque box behind the text instead of an outline.
    pub back_box: bool,
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
        }
    }
}

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

    /// Big bold one-line captions for vertical video: 3.2 % of the height (about 61 px on 1080×1920, matching
    /// the 22-character `shorts` profile), thick outline, raised to 30 % from the bottom to stay clear of the
    /// platform's caption and button area.
    pub fn shorts() -> Self {
        Self {
            size_ratio: 0.032,
            bold: true,
            outline_ratio: 0.004,
            shadow: 2.0,
            margin_v_ratio: 0.30,
            margin_h_ratio: 0.06,
            ..Self::default()
        }
    }

    /// The built-in style with this name (case-insensitive).
    pub fn by_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "clean" => Some(Self::clean()),
            "boxed" => Some(Self::boxed()),
            "shorts" => Some(Self::shorts()),
            _ => None,
        }
    }

    /// Names of the built-in styles.
    pub fn names() -> &'static [&'static str] {
        &["clean", "boxed", "shorts"]
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
            "Style: Default,{font},{size},{},&H000000FF,{},&H80000000,{},0,0,0,100,100,0,0,{},{},{},{alignment},{ml},{ml},{mv},1",
            self.primary.to_ass(),
            self.outline_colour.to_ass(),
            if self.bold { -1 } else { 0 },
            if self.back_box { 3 } else { 1 },
            round2(outline),
            round2(shadow),
            ml = px(self.margin_h_ratio, w),
            mv = px(self.margin_v_ratio, h),
        )
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Word joiner: put after a user backslash so it can never start an escape such as `\N` or `\{`.
const WJ: char = '\u{2060}';

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
/// per cue with `\N` between lines.
///
/// Times are rounded to the nearest centisecond; an end is never rounded past the next cue's start, so cues
/// that did not overlap still do not. Text is escaped so it can never inject override tags (libass
/// semantics; see [`parse_ass`]).
pub fn write_ass(cues: &[Cue], style: &AssStyle, video: VideoSize) -> String {
    let mut out = String::new();
    out.push_str("[Script Info]\n; Generated by AutoSub\nScriptType: v4.00+\n");
    out.push_str(&format!(
        "PlayResX: {}\nPlayResY: {}\n",
        video.width.max(1),
        video.height.max(1)
    ));
    out.push_str("ScaledBorderAndShadow: yes\nWrapStyle: 0\nYCbCr Matrix: None\n\n");
    out.push_str("[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n");
    out.push_str(&style.style_line(video));
    out.push_str("\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n");
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
        let text: Vec<String> = cue.lines.iter().map(|l| escape_text(l)).collect();
        out.push_str(&format!(
            "Dialogue: 0,{},{},Default,,0,0,0,,{}\n",
            fmt_ass_cs(start),
            fmt_ass_cs(end),
            text.join("\\N")
        ));
    }
    out
}

/// Turns Dialogue text into lines: override blocks `{...}` are dropped, `\N` breaks the line (`\n` too with
/// `WrapStyle: 2`, otherwise it is a space), `\h` is a no-break space, `\{` and `\}` are literal braces, and a
/// backslash followed by a word joiner (how [`write_ass`] escapes backslashes) is a plain backslash.
fn unescape_text(text: &str, wrap_style_2: bool) -> Vec<String> {
    let mut lines = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let line = lines.last_mut().expect("lines is never empty");
        match c {
            '{' => {
                let block: String = chars.clone().take_while(|&c| c != '}').collect();
                if chars.clone().any(|c| c == '}') {
                    for _ in 0..=block.chars().count() {
                        chars.next();
                    }
                } else {
                    line.push('{');
                }
            }
            '\\' => match chars.peek().copied() {
                Some('N') => {
                    chars.next();
                    lines.push(String::new());
                }
                Some('n') => {
                    chars.next();
                    if wrap_style_2 {
                        lines.push(String::new());
                    } else {
                        line.push(' ');
                    }
                }
                Some('h') => {
                    chars.next();
                    line.push('\u{a0}');
                }
                Some(b @ ('{' | '}')) => {
                    chars.next();
                    line.push(b);
                }
                Some(WJ) => {
                    chars.next();
                    line.push('\\');
                }
                _ => line.push('\\'),
            },
            c => line.push(c),
        }
    }
    if lines.len() == 1 && lines[0].is_empty() {
        lines.clear();
    }
    lines
}

/// Parses an ASS (or SSA) script's `[Events]`: every `Dialogue:` line, with fields in the order given by the
/// section's `Format:` line (the standard ASS order if there is none). Comments, styles and other sections
/// are ignored; times are `H:MM:SS.cc`. Text is unescaped as described for [`write_ass`]: override tags are
/// removed, `\N` splits lines.
///
/// Errors (with the line number): input that is not an ASS script (no `[Script Info]` or `[Events]`
/// section), a Format line without Start, End or Text, a Dialogue line with too few fields, a malformed
/// timestamp, or a cue that ends before it starts.
pub fn parse_ass(s: &str) -> Result<Vec<Cue>, ParseError> {
    let lines = input_lines(s);
    let mut section = String::new();
    let mut seen_section = false;
    let mut seen_events = false;
    let mut wrap_style_2 = false;
    let default_format = [
        "layer", "start", "end", "style", "name", "marginl", "marginr", "marginv", "effect", "text",
    ];
    let mut format: Vec<String> = default_format.iter().map(|s| s.to_string()).collect();
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
                    return Err(ParseError::new(
                        ln,
                        format!(
                            "Dialogue line has {} fields, the Format line names {}",
                            fields.len(),
                            format.len()
                        ),
                    ));
                }
                let field = |name: &str| {
                    format
                        .iter()
                        .position(|f| f == name)
                        .map(|p| fields[p])
                        .unwrap_or("")
                };
                let time = |name: &str| {
                    parse_clock(field(name), false)
                        .map_err(|m| ParseError::new(ln, format!("{name} time: {m}")))
                };
                let (start_ms, end_ms) = (time("start")?, time("end")?);
                if end_ms < start_ms {
                    return Err(ParseError::new(
                        ln,
                        format!(
                            "cue ends before it starts ({} --> {})",
                            field("start").trim(),
                            field("end").trim()
                        ),
                    ));
                }
                cues.push(Cue {
                    start_ms,
                    end_ms,
                    lines: unescape_text(field("text"), wrap_style_2),
                    words: Vec::new(),
                });
            }
            _ => {}
        }
    }
    if !lines.iter().all(|l| l.trim().is_empty()) && !seen_events {
        return Err(ParseError::new(lines.len(), "no [Events] section found"));
    }
    Ok(cues)
}

#[cfg(test)]
mod tests {
    use super::*;

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
                unescape_text(&escaped, false),
                vec![s.to_string()],
                "{s:?} -> {escaped:?}"
            );
        }
    }

    #[test]
    fn override_blocks_are_dropped() {
        assert_eq!(
            unescape_text("{\\an8}{\\b1}Top{\\b0}\\Nline", false),
            vec!["Top", "line"]
        );
        assert_eq!(unescape_text("a\\nb", false), vec!["a b"]);
        assert_eq!(unescape_text("a\\nb", true), vec!["a", "b"]);
        assert_eq!(unescape_text("open { brace", false), vec!["open { brace"]);
        assert!(unescape_text("", false).is_empty());
    }
}
