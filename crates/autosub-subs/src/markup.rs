//! Inline markup: the one canonical form that [`Cue::lines`] carry, the readers that bring SRT, WebVTT and
//! ASS markup into it, the writers that take it out again, and the text a viewer reads
//! ([`visible_text`]).
//!
//! # The canonical form
//!
//! A cue line is plain text with a small, SRT-like set of tags, written exactly like this (lower case, no
//! spaces, the colour as six lower-case hex digits in double quotes):
//!
//! | tag                                     | meaning                           |
//! |-----------------------------------------|-----------------------------------|
//! | `<i>` … `</i>`                          | italic                            |
//! | `<b>` … `</b>`                          | bold                              |
//! | `<u>` … `</u>`                          | underline                         |
//! | `<s>` … `</s>`                          | strike-through                    |
//! | `<font color="#rrggbb">` … `</font>`    | text colour                       |
//!
//! The parsers ([`parse_srt`](crate::parse_srt), [`parse_vtt`](crate::parse_vtt),
//! [`parse_ass`](crate::parse_ass)) write every line in this form: tags properly nested and closed on the
//! same line (a tag that spans lines in the file is closed at each line end and opened again on the next),
//! runs of the same style merged, empty tag pairs and lines without visible text left out, whitespace at
//! the ends of a line trimmed. Anything else that starts with `<` is literal text. In the rare case where
//! literal text would spell one of the tags above (a WebVTT `&lt;i&gt;`, an ASS line reading `<b>`), the
//! `<` is followed by an invisible U+2060 WORD JOINER so it is not read as a tag; [`visible_text`] and the
//! writers drop that joiner again. Lines made by [`segment`](crate::segment) from recognised words are
//! plain text, which is canonical too.
//!
//! # Reading
//!
//! * **SRT** (the way ffmpeg and pysubs2 read it): `<i>`, `<b>`, `<u>`, `<s>` (any case, with stray spaces:
//!   `< u>`, `</ i >`, so `a < b > c` is a bold `c` there as in ffmpeg; also `<em>`, `<strong>`, `<strike>`,
//!   `<del>`) switch that style on or off, whatever the nesting; `<font color=…>` (a `#rrggbb`,
//!   `#rgb` or bare hex value, quoted or not, or an HTML colour name) sets the colour until its `</font>`,
//!   which brings back the colour of the enclosing `<font>`; `<font>` without a colour (`face=`, `size=`)
//!   changes nothing; `<br>` breaks the line. Other tags — a name of letters and digits right after the
//!   `<`, alone or with `attribute=value` pairs (`<blink>`, `</span>`, `<p class="x">`) — are dropped; a `<`
//!   that does not start a tag (`a < b`, `<3`, `<<`, `<Hello there>`) is text. ASS override blocks
//!   `{\…}` in SRT (`{\an8}`, `{\i1}`) are read as in ASS (below) and MicroDVD-style blocks (`{y:i}`)
//!   dropped. Character references are not decoded: SRT has none.
//! * **WebVTT**: `<i>`, `<b>`, `<u>`; `<c.classes>` takes the colour of the first class that names one of
//!   WebVTT's default colours (white, lime, cyan, red, yellow, magenta, blue, black) or has the form
//!   `colorRRGGBB` (YouTube), other classes (`bg_black`, `myclass`) change nothing; `<v Speaker>` and
//!   `<lang en>` are dropped (the voice name is not shown); `<ruby>base<rt>annotation</rt></ruby>` keeps the
//!   base only; timestamp tags (`<00:00:01.000>`) and unknown tags are dropped; character references
//!   (`&amp; &lt; &gt; &nbsp; &lrm; &rlm; &#233;`...) are decoded.
//! * **ASS**: in override blocks `\i1`/`\i0`, `\b1`/`\b0` (a weight of 600 or more is bold), `\u`, `\s`
//!   switch styles, `\c&HBBGGRR&` and `\1c&HBBGGRR&` set the colour, and the tags without a value (`\i`,
//!   `\c`) or `\r` go back to the line's style (read as no styling); every other tag (`\an8`, `\pos`,
//!   `\fad`, `\t(…)`, …) is dropped, and drawings (`\p1` … `\p0`) are not text. The line's own style
//!   (bold or italic in `[V4+ Styles]`) is not applied.
//!
//! # Writing
//!
//! * **SRT** writes the canonical tags as they are. A literal `<` or `{` that an SRT reader would take for
//!   markup is followed by a word joiner.
//! * **WebVTT** writes `<i>`, `<b>`, `<u>` and, for the eight default colours, `<c.NAME>`; other colours and
//!   strike-through are dropped; text is escaped (`&amp;`, `&lt;`, `&gt;`).
//! * **ASS** (the files and the burned-in script) writes `{\i1}`, `{\b1}`, `{\u1}`, `{\s1}`,
//!   `{\c&HBBGGRR&}`, and to end them the same tags without a value (`{\i}`, `{\b}`, `{\c}`...), which go
//!   back to the *style's* value: a `</b>` inside a bold style (karaoke, shorts) stays bold, a `</font>`
//!   goes back to the style's text colour, and the box or outline colours of `boxed` are never touched.
//!   Literal text is escaped as before, so braces and backslashes in it can never become override tags.
//!
//! [`Cue::lines`]: crate::Cue::lines

use crate::Cue;

/// Word joiner: after a literal `<` (or `{` in SRT) it keeps the character from starting a tag.
pub(crate) const WJ: char = '\u{2060}';

/// An RGB colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// The styling of a run of text. The default is no styling (the line's style).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Style {
    pub italic: bool,
    pub bold: bool,
    pub underline: bool,
    pub strike: bool,
    pub colour: Option<Rgb>,
}

/// Text in one style.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub style: Style,
    pub text: String,
}

/// One line as styled runs.
pub(crate) type Runs = Vec<Run>;

/// The visible text of runs.
pub(crate) fn runs_text(runs: &[Run]) -> String {
    runs.iter().map(|r| r.text.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------------------
// Building lines
// ---------------------------------------------------------------------------------------------------------

/// Which tag set a colour on the colour stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ColourKind {
    Font,
    Class,
}

/// Accumulates text in the current style into lines.
#[derive(Default)]
struct Builder {
    lines: Vec<Runs>,
    cur: Runs,
    flags: Style,
    colours: Vec<(ColourKind, Option<Rgb>)>,
    /// Direct colour (ASS `\c`), under any stacked colour.
    direct: Option<Rgb>,
    /// Inside `<rt>` or an ASS drawing: text is not shown.
    hidden: bool,
}

impl Builder {
    fn style(&self) -> Style {
        let stacked = self.colours.iter().rev().find_map(|c| c.1);
        Style {
            colour: stacked.or(self.direct),
            ..self.flags
        }
    }

    fn push(&mut self, c: char) {
        if self.hidden {
            return;
        }
        let style = self.style();
        match self.cur.last_mut() {
            Some(last) if last.style == style => last.text.push(c),
            _ => self.cur.push(Run {
                style,
                text: c.to_string(),
            }),
        }
    }

    fn newline(&mut self) {
        let line = std::mem::take(&mut self.cur);
        self.lines.push(line);
    }

    fn set(&mut self, flag: Flag, on: bool) {
        match flag {
            Flag::Italic => self.flags.italic = on,
            Flag::Bold => self.flags.bold = on,
            Flag::Underline => self.flags.underline = on,
            Flag::Strike => self.flags.strike = on,
        }
    }

    fn open_colour(&mut self, kind: ColourKind, colour: Option<Rgb>) {
        // A bound keeps hostile input (thousands of unclosed tags) cheap.
        if self.colours.len() < 64 {
            self.colours.push((kind, colour));
        }
    }

    fn close_colour(&mut self, kind: ColourKind) {
        if let Some(i) = self.colours.iter().rposition(|c| c.0 == kind) {
            self.colours.remove(i);
        }
    }

    fn reset(&mut self) {
        self.flags = Style::default();
        self.colours.clear();
        self.direct = None;
    }

    /// The lines, each tidied (see [`tidy`]).
    fn finish(mut self) -> Vec<Runs> {
        self.newline();
        self.lines.into_iter().map(tidy).collect()
    }

    /// The lines as they are (for reading canonical text, which is already tidy).
    fn finish_raw(mut self) -> Vec<Runs> {
        self.newline();
        self.lines
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flag {
    Italic,
    Bold,
    Underline,
    Strike,
}

fn is_blank(c: char) -> bool {
    c.is_whitespace()
}

/// Trims whitespace at both ends of the line (a no-break space too: it shows nothing there), drops empty
/// runs and merges neighbours of one style.
fn tidy(runs: Runs) -> Runs {
    let mut out: Runs = Vec::with_capacity(runs.len());
    for run in runs {
        if run.text.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.style == run.style => last.text.push_str(&run.text),
            _ => out.push(run),
        }
    }
    while let Some(first) = out.first_mut() {
        let t = first.text.trim_start_matches(is_blank);
        if t.is_empty() {
            out.remove(0);
        } else {
            first.text = t.to_string();
            break;
        }
    }
    while let Some(last) = out.last_mut() {
        let t = last.text.trim_end_matches(is_blank);
        if t.is_empty() {
            out.pop();
        } else {
            last.text.truncate(t.len());
            break;
        }
    }
    out
}

/// Canonical lines of runs, leaving out lines without visible text.
fn canonical_lines(lines: Vec<Runs>) -> Vec<String> {
    lines
        .into_iter()
        .filter(|l| !runs_text(l).trim().is_empty())
        .map(|l| to_canonical(&l))
        .collect()
}

// ---------------------------------------------------------------------------------------------------------
// The canonical form
// ---------------------------------------------------------------------------------------------------------

/// What a tag does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Set(Flag, bool),
    OpenColour(ColourKind, Option<Rgb>),
    CloseColour(ColourKind),
    Break,
    HideStart,
    HideEnd,
    /// A tag that is dropped.
    Drop,
}

/// The canonical tag at the start of `s`, with its length in bytes.
fn canonical_tag(s: &str) -> Option<(Action, usize)> {
    const SIMPLE: [(&str, Flag, bool); 8] = [
        ("<i>", Flag::Italic, true),
        ("</i>", Flag::Italic, false),
        ("<b>", Flag::Bold, true),
        ("</b>", Flag::Bold, false),
        ("<u>", Flag::Underline, true),
        ("</u>", Flag::Underline, false),
        ("<s>", Flag::Strike, true),
        ("</s>", Flag::Strike, false),
    ];
    for (tag, flag, on) in SIMPLE {
        if s.starts_with(tag) {
            return Some((Action::Set(flag, on), tag.len()));
        }
    }
    if s.starts_with("</font>") {
        return Some((Action::CloseColour(ColourKind::Font), 7));
    }
    let rest = s.strip_prefix("<font color=\"#")?;
    let hex = rest.get(..6)?;
    if !rest[6..].starts_with("\">") || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let colour = parse_hex_rgb(hex)?;
    Some((
        Action::OpenColour(ColourKind::Font, Some(colour)),
        "<font color=\"#".len() + 6 + 2,
    ))
}

/// Reads one canonical line into runs (no trimming; line breaks inside it start new lines).
pub(crate) fn parse_canonical(line: &str) -> Vec<Runs> {
    let mut b = Builder::default();
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            if let Some(r) = rest.strip_prefix(['<']).and_then(|r| r.strip_prefix(WJ)) {
                b.push('<');
                rest = r;
                continue;
            }
            if let Some((action, len)) = canonical_tag(rest) {
                apply(&mut b, action);
                rest = &rest[len..];
                continue;
            }
        }
        if c == '\n' || c == '\r' {
            b.newline();
            rest = rest.strip_prefix("\r\n").unwrap_or(&rest[1..]);
            continue;
        }
        b.push(c);
        rest = &rest[c.len_utf8()..];
    }
    b.finish_raw()
}

fn apply(b: &mut Builder, action: Action) {
    match action {
        Action::Set(flag, on) => b.set(flag, on),
        Action::OpenColour(kind, colour) => b.open_colour(kind, colour),
        Action::CloseColour(kind) => b.close_colour(kind),
        Action::Break => b.newline(),
        Action::HideStart => b.hidden = true,
        Action::HideEnd => b.hidden = false,
        Action::Drop => {}
    }
}

/// The lines of a cue as shown: each canonical line read into runs, split at any line break inside it,
/// trimmed, and left out when it has no visible text. Every writer and [`visible_text`] go through this.
pub(crate) fn display_lines(lines: &[String]) -> Vec<Runs> {
    lines
        .iter()
        .flat_map(|l| parse_canonical(l))
        .map(tidy)
        .filter(|l| !runs_text(l).trim().is_empty())
        .collect()
}

/// The text a viewer reads on one cue line: the canonical tags removed, the word joiners that protect a
/// literal `<` dropped, spaces at both ends trimmed. A line break inside the line becomes a space.
///
/// ```
/// use autosub_subs::visible_text;
/// assert_eq!(visible_text("<i>Ask not</i> what <font color=\"#ffff00\">your</font> country"),
///            "Ask not what your country");
/// assert_eq!(visible_text("a < b"), "a < b");
/// assert_eq!(visible_text("<b></b>"), "");
/// ```
pub fn visible_text(line: &str) -> String {
    let lines: Vec<String> = display_lines(std::slice::from_ref(&line.to_string()))
        .iter()
        .map(|l| runs_text(l))
        .collect();
    lines.join(" ")
}

/// The visible text of each line of a cue that shows any (see [`visible_text`]).
pub fn visible_lines(lines: &[String]) -> Vec<String> {
    display_lines(lines).iter().map(|l| runs_text(l)).collect()
}

impl Cue {
    /// The lines a viewer reads: markup removed, lines without visible text left out (see
    /// [`visible_text`]).
    pub fn visible_lines(&self) -> Vec<String> {
        visible_lines(&self.lines)
    }

    /// What a viewer reads, lines joined by one space: the text to speak, translate or measure.
    pub fn visible_text(&self) -> String {
        self.visible_lines().join(" ")
    }
}

// ---------------------------------------------------------------------------------------------------------
// Writing tags that nest (canonical, SRT, WebVTT)
// ---------------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Canonical,
    Srt,
    Vtt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Colour(Rgb),
    Bold,
    Italic,
    Underline,
    Strike,
}

/// WebVTT's default colour classes.
const VTT_COLOURS: [(&str, Rgb); 8] = [
    ("white", Rgb(255, 255, 255)),
    ("lime", Rgb(0, 255, 0)),
    ("cyan", Rgb(0, 255, 255)),
    ("red", Rgb(255, 0, 0)),
    ("yellow", Rgb(255, 255, 0)),
    ("magenta", Rgb(255, 0, 255)),
    ("blue", Rgb(0, 0, 255)),
    ("black", Rgb(0, 0, 0)),
];

fn vtt_colour_name(c: Rgb) -> Option<&'static str> {
    VTT_COLOURS.iter().find(|(_, v)| *v == c).map(|(n, _)| *n)
}

/// The tags a style needs, outermost first.
fn wanted(style: Style, dialect: Dialect) -> Vec<Tag> {
    let mut v = Vec::with_capacity(5);
    if let Some(c) = style.colour {
        if dialect != Dialect::Vtt || vtt_colour_name(c).is_some() {
            v.push(Tag::Colour(c));
        }
    }
    if style.bold {
        v.push(Tag::Bold);
    }
    if style.italic {
        v.push(Tag::Italic);
    }
    if style.underline {
        v.push(Tag::Underline);
    }
    if style.strike && dialect != Dialect::Vtt {
        v.push(Tag::Strike);
    }
    v
}

fn open_tag(tag: Tag, dialect: Dialect) -> String {
    match (tag, dialect) {
        (Tag::Colour(c), Dialect::Vtt) => format!("<c.{}>", vtt_colour_name(c).unwrap_or("white")),
        (Tag::Colour(c), _) => format!("<font color=\"{}\">", c.hex()),
        (Tag::Bold, _) => "<b>".into(),
        (Tag::Italic, _) => "<i>".into(),
        (Tag::Underline, _) => "<u>".into(),
        (Tag::Strike, _) => "<s>".into(),
    }
}

fn close_tag(tag: Tag, dialect: Dialect) -> &'static str {
    match (tag, dialect) {
        (Tag::Colour(_), Dialect::Vtt) => "</c>",
        (Tag::Colour(_), _) => "</font>",
        (Tag::Bold, _) => "</b>",
        (Tag::Italic, _) => "</i>",
        (Tag::Underline, _) => "</u>",
        (Tag::Strike, _) => "</s>",
    }
}

/// Writes runs with properly nested tags: before each run, the open tags that are no longer wanted are
/// closed (with everything opened after them) and the missing ones opened; all are closed at the end.
fn render_nested(runs: &[Run], dialect: Dialect) -> String {
    let mut out = String::new();
    // Byte positions of literal `<` and `{` in `out`, checked once the whole line is known.
    let mut literals: Vec<usize> = Vec::new();
    let mut stack: Vec<Tag> = Vec::new();
    for run in runs {
        let want = wanted(run.style, dialect);
        let keep = stack.iter().take_while(|t| want.contains(t)).count();
        while stack.len() > keep {
            let t = stack.pop().expect("stack is longer than keep");
            out.push_str(close_tag(t, dialect));
        }
        for t in want {
            if !stack.contains(&t) {
                out.push_str(&open_tag(t, dialect));
                stack.push(t);
            }
        }
        for c in run.text.chars() {
            match (dialect, c) {
                (Dialect::Vtt, '&') => out.push_str("&amp;"),
                (Dialect::Vtt, '<') => out.push_str("&lt;"),
                (Dialect::Vtt, '>') => out.push_str("&gt;"),
                (_, '<') | (Dialect::Srt, '{') => {
                    literals.push(out.len());
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
    }
    while let Some(t) = stack.pop() {
        out.push_str(close_tag(t, dialect));
    }
    // Protect literals that a reader would take for markup, from the last one so positions stay valid.
    for &pos in literals.iter().rev() {
        let rest = &out[pos..];
        let markup = match dialect {
            Dialect::Canonical => canonical_tag(rest).is_some() || rest[1..].starts_with(WJ),
            Dialect::Srt => srt_markup_at(rest) || rest[1..].starts_with(WJ),
            Dialect::Vtt => false,
        };
        if markup {
            out.insert(pos + 1, WJ);
        }
    }
    out
}

/// One line in the canonical form.
pub(crate) fn to_canonical(runs: &[Run]) -> String {
    render_nested(runs, Dialect::Canonical)
}

/// One line for an SRT file.
pub(crate) fn to_srt(runs: &[Run]) -> String {
    render_nested(runs, Dialect::Srt)
}

/// One line for a WebVTT file (text escaped).
pub(crate) fn to_vtt(runs: &[Run]) -> String {
    render_nested(runs, Dialect::Vtt)
}

// ---------------------------------------------------------------------------------------------------------
// Colours
// ---------------------------------------------------------------------------------------------------------

fn parse_hex_rgb(h: &str) -> Option<Rgb> {
    if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).ok();
    match h.len() {
        3 => {
            let nib = |i: usize| u8::from_str_radix(&h[i..i + 1], 16).ok().map(|v| v * 17);
            Some(Rgb(nib(0)?, nib(1)?, nib(2)?))
        }
        6 | 8 => Some(Rgb(byte(0)?, byte(2)?, byte(4)?)),
        _ => None,
    }
}

/// HTML colour names found in subtitle files (the HTML 4 set and a few common CSS ones).
#[rustfmt::skip]
const HTML_COLOURS: &[(&str, Rgb)] = &[
    ("white", Rgb(255, 255, 255)), ("silver", Rgb(192, 192, 192)), ("gray", Rgb(128, 128, 128)),
    ("grey", Rgb(128, 128, 128)), ("black", Rgb(0, 0, 0)), ("red", Rgb(255, 0, 0)), ("maroon", Rgb(128, 0, 0)),
    ("yellow", Rgb(255, 255, 0)), ("olive", Rgb(128, 128, 0)), ("lime", Rgb(0, 255, 0)), ("green", Rgb(0, 128, 0)),
    ("aqua", Rgb(0, 255, 255)), ("cyan", Rgb(0, 255, 255)), ("teal", Rgb(0, 128, 128)), ("blue", Rgb(0, 0, 255)),
    ("navy", Rgb(0, 0, 128)), ("fuchsia", Rgb(255, 0, 255)), ("magenta", Rgb(255, 0, 255)),
    ("purple", Rgb(128, 0, 128)), ("orange", Rgb(255, 165, 0)), ("pink", Rgb(255, 192, 203)),
    ("brown", Rgb(165, 42, 42)), ("gold", Rgb(255, 215, 0)), ("violet", Rgb(238, 130, 238)),
    ("indigo", Rgb(75, 0, 130)), ("lightgray", Rgb(211, 211, 211)), ("lightgrey", Rgb(211, 211, 211)),
    ("darkgray", Rgb(169, 169, 169)), ("darkgrey", Rgb(169, 169, 169)), ("lightblue", Rgb(173, 216, 230)),
    ("lightgreen", Rgb(144, 238, 144)), ("lightyellow", Rgb(255, 255, 224)), ("darkred", Rgb(139, 0, 0)),
    ("darkgreen", Rgb(0, 100, 0)), ("darkblue", Rgb(0, 0, 139)), ("orangered", Rgb(255, 69, 0)),
    ("skyblue", Rgb(135, 206, 235)), ("beige", Rgb(245, 245, 220)), ("khaki", Rgb(240, 230, 140)),
];

/// A colour as written in an SRT `<font color=…>`: `#rrggbb`, `#rgb`, `rrggbb`, `0xrrggbb`, `#rrggbbaa` or
/// a name.
fn parse_html_colour(v: &str) -> Option<Rgb> {
    let v = v.trim();
    let hex = v.trim_start_matches('#');
    let hex = hex
        .strip_prefix("0x")
        .or_else(|| hex.strip_prefix("0X"))
        .unwrap_or(hex);
    if let Some(c) = parse_hex_rgb(hex) {
        return Some(c);
    }
    let lower = v.to_ascii_lowercase();
    HTML_COLOURS
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, c)| *c)
}

// ---------------------------------------------------------------------------------------------------------
// SRT
// ---------------------------------------------------------------------------------------------------------

/// The longest tag (between `<` and `>`) read as one.
const MAX_TAG: usize = 256;

/// The SRT tag at the start of `s` (which starts with `<`), with its length in bytes. Unknown tags are
/// only dropped when `likely` (not right after another `<`, as in ffmpeg: `<<quoted>>` is text).
fn srt_tag(s: &str, likely: bool) -> Option<(Action, usize)> {
    let after_lt = &s[1..];
    if after_lt.starts_with('<') || after_lt.starts_with(WJ) {
        return None;
    }
    let end = after_lt
        .char_indices()
        .take_while(|&(i, _)| i <= MAX_TAG)
        .find(|&(_, c)| matches!(c, '>' | '<' | '\n' | '\r'))
        .filter(|&(_, c)| c == '>')
        .map(|(i, _)| i)?;
    let body = &after_lt[..end];
    let len = end + 2;
    let leading_space = body.starts_with(char::is_whitespace);
    let t = body.trim_start();
    let (closing, t) = match t.strip_prefix('/') {
        Some(r) => (true, r.trim_start()),
        None => (false, t),
    };
    let name_len = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    let (name, after) = t.split_at(name_len);
    if name.is_empty() {
        return None;
    }
    let name = name.to_ascii_lowercase();
    let after_t = after.trim();
    let flag = match name.as_str() {
        "i" | "em" => Some(Flag::Italic),
        "b" | "strong" => Some(Flag::Bold),
        "u" => Some(Flag::Underline),
        "s" | "strike" | "del" => Some(Flag::Strike),
        _ => None,
    };
    if let Some(flag) = flag {
        if after_t.is_empty() {
            return Some((Action::Set(flag, !closing), len));
        }
    }
    if name == "font" && (after.is_empty() || after.starts_with(char::is_whitespace)) {
        if closing {
            return Some((Action::CloseColour(ColourKind::Font), len));
        }
        return Some((
            Action::OpenColour(ColourKind::Font, font_colour(after)),
            len,
        ));
    }
    if name == "br" && (after_t.is_empty() || after_t == "/") {
        return Some((Action::Break, len));
    }
    // Any other tag: a name right after `<` (or `</`), alone, self-closed or with attributes.
    let tag_like = likely
        && !leading_space
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && (after_t.is_empty()
            || after_t == "/"
            || after.starts_with(char::is_whitespace) && after.contains('='));
    tag_like.then_some((Action::Drop, len))
}

/// The colour of a `<font …>` tag's attributes, if it has one that can be read.
fn font_colour(attrs: &str) -> Option<Rgb> {
    let lower = attrs.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("color") {
        let at = from + i;
        from = at + 5;
        let rest = attrs[at + 5..].trim_start();
        let Some(value) = rest.strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start();
        let value = match value.chars().next() {
            Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
            _ => value
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap_or(""),
        };
        return parse_html_colour(value);
    }
    None
}

/// Whether an SRT reader takes the `<` or `{` at the start of `s` for markup.
fn srt_markup_at(s: &str) -> bool {
    if s.starts_with('<') {
        return srt_tag(s, true).is_some();
    }
    srt_brace(s).is_some()
}

/// An ASS override block (`{\…}`) or a MicroDVD-style block (`{y:i}`) at the start of `s` (which starts
/// with `{`): its contents and length in bytes.
fn srt_brace(s: &str) -> Option<(&str, usize)> {
    let after = &s[1..];
    let ass = after.starts_with('\\');
    let mut chars = after.chars();
    let microdvd = matches!(
        (chars.next(), chars.next()),
        (
            Some('C' | 'c' | 'F' | 'f' | 'o' | 'P' | 'S' | 's' | 'Y' | 'y'),
            Some(':')
        )
    );
    if !ass && !microdvd {
        return None;
    }
    let end = after
        .char_indices()
        .take_while(|&(i, _)| i <= MAX_TAG)
        .find(|&(_, c)| matches!(c, '}' | '{' | '\n' | '\r'))
        .filter(|&(_, c)| c == '}')
        .map(|(i, _)| i)?;
    Some((if ass { &after[..end] } else { "" }, end + 2))
}

/// SRT cue text (the text lines of one cue) into canonical lines.
pub(crate) fn from_srt(text: &[&str]) -> Vec<String> {
    let joined = text.join("\n");
    let mut b = Builder::default();
    let mut rest = joined.as_str();
    // Just after a `<` that was followed by another one.
    let mut lt_run = false;
    while let Some(c) = rest.chars().next() {
        let likely = !std::mem::take(&mut lt_run);
        match c {
            '<' => {
                if let Some(r) = rest[1..].strip_prefix(WJ) {
                    b.push('<');
                    rest = r;
                    continue;
                }
                if rest[1..].starts_with('<') {
                    b.push('<');
                    lt_run = true;
                    rest = &rest[1..];
                    continue;
                }
                if let Some((action, len)) = srt_tag(rest, likely) {
                    apply(&mut b, action);
                    rest = &rest[len..];
                    continue;
                }
            }
            '{' => {
                if let Some(r) = rest[1..].strip_prefix(WJ) {
                    b.push('{');
                    rest = r;
                    continue;
                }
                if let Some((block, len)) = srt_brace(rest) {
                    ass_block(&mut b, block);
                    rest = &rest[len..];
                    continue;
                }
            }
            '\n' => {
                b.newline();
                rest = &rest[1..];
                continue;
            }
            _ => {}
        }
        b.push(c);
        rest = &rest[c.len_utf8()..];
    }
    canonical_lines(b.finish())
}

// ---------------------------------------------------------------------------------------------------------
// WebVTT
// ---------------------------------------------------------------------------------------------------------

/// The colour a `<c.…>` tag's classes give, if any.
fn class_colour(classes: &str) -> Option<Rgb> {
    classes.split('.').find_map(|class| {
        let lower = class.to_ascii_lowercase();
        if let Some(hex) = lower.strip_prefix("color") {
            if hex.len() == 6 {
                return parse_hex_rgb(hex);
            }
        }
        VTT_COLOURS
            .iter()
            .find(|(n, _)| *n == lower)
            .map(|(_, c)| *c)
    })
}

/// The WebVTT tag at the start of `s` (which starts with `<`), with its length in bytes.
fn vtt_tag(s: &str) -> Option<(Action, usize)> {
    let after_lt = &s[1..];
    let end = after_lt
        .char_indices()
        .take_while(|&(i, _)| i <= MAX_TAG)
        .find(|&(_, c)| matches!(c, '>' | '<' | '\n' | '\r'))
        .filter(|&(_, c)| c == '>')
        .map(|(i, _)| i)?;
    let body = &after_lt[..end];
    let len = end + 2;
    if body.starts_with(|c: char| c.is_ascii_digit()) {
        // A timestamp tag.
        return body
            .chars()
            .all(|c| c.is_ascii_digit() || c == ':' || c == '.')
            .then_some((Action::Drop, len));
    }
    let (closing, t) = match body.strip_prefix('/') {
        Some(r) => (true, r),
        None => (false, body),
    };
    let name_len = t
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(t.len());
    let (name, after) = t.split_at(name_len);
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    // Classes run from the first `.` to the first space (the annotation follows).
    let classes = after
        .strip_prefix('.')
        .map(|c| c.split(char::is_whitespace).next().unwrap_or(""))
        .unwrap_or("");
    let action = match (name.to_ascii_lowercase().as_str(), closing) {
        ("i", on) => Action::Set(Flag::Italic, !on),
        ("b", on) => Action::Set(Flag::Bold, !on),
        ("u", on) => Action::Set(Flag::Underline, !on),
        ("c", false) => Action::OpenColour(ColourKind::Class, class_colour(classes)),
        ("c", true) => Action::CloseColour(ColourKind::Class),
        ("rt", false) => Action::HideStart,
        ("rt", true) | ("ruby", true) => Action::HideEnd,
        // `v`, `lang`, `ruby` and unknown tags are dropped.
        _ => Action::Drop,
    };
    Some((action, len))
}

/// Decodes the character reference at the start of `s` (which starts with `&`): the character and the
/// length in bytes.
fn vtt_entity(s: &str) -> Option<(char, usize)> {
    let end = s.find(';').filter(|&end| end <= 10)?;
    let name = &s[1..end];
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "nbsp" => '\u{a0}',
        "lrm" => '\u{200e}',
        "rlm" => '\u{200f}',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let code =
                if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()
                } else {
                    name.strip_prefix('#').and_then(|d| d.parse::<u32>().ok())
                };
            code.and_then(char::from_u32).filter(|&c| c != '\0')?
        }
    };
    Some((c, end + 1))
}

/// WebVTT cue text (the text lines of one cue) into canonical lines.
pub(crate) fn from_vtt(text: &[&str]) -> Vec<String> {
    let joined = text.join("\n");
    let mut b = Builder::default();
    let mut rest = joined.as_str();
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                if let Some((action, len)) = vtt_tag(rest) {
                    apply(&mut b, action);
                    rest = &rest[len..];
                    continue;
                }
            }
            '&' => {
                if let Some((decoded, len)) = vtt_entity(rest) {
                    b.push(decoded);
                    rest = &rest[len..];
                    continue;
                }
            }
            '\n' => {
                b.newline();
                rest = &rest[1..];
                continue;
            }
            _ => {}
        }
        b.push(c);
        rest = &rest[c.len_utf8()..];
    }
    canonical_lines(b.finish())
}

// ---------------------------------------------------------------------------------------------------------
// ASS
// ---------------------------------------------------------------------------------------------------------

/// The value of an ASS switch such as `\i1`: `Some(Some(n))` for a number, `Some(None)` for no value (back
/// to the style), `None` when `arg` is not a value (another tag with the same first letter, e.g. `\iclip`).
fn switch_value(arg: &str) -> Option<Option<u32>> {
    let arg = arg.trim();
    if arg.is_empty() {
        return Some(None);
    }
    if !arg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Some(arg.parse().unwrap_or(u32::MAX)))
}

/// An ASS colour value: `&HBBGGRR&` (alpha, if any, ignored) or a decimal number (SSA).
fn ass_colour(arg: &str) -> Option<Rgb> {
    let a = arg.trim().trim_end_matches('&');
    let v = if let Some(h) = a
        .strip_prefix("&H")
        .or_else(|| a.strip_prefix("&h"))
        .or_else(|| a.strip_prefix('H'))
        .or_else(|| a.strip_prefix('h'))
    {
        if h.is_empty() || h.len() > 8 {
            return None;
        }
        u32::from_str_radix(h, 16).ok()?
    } else {
        a.parse::<u32>().ok()?
    };
    Some(Rgb(v as u8, (v >> 8) as u8, (v >> 16) as u8))
}

/// Applies the tags of one override block (the text between `{` and `}`).
fn ass_block(b: &mut Builder, block: &str) {
    // Tags start at backslashes outside parentheses (`\t(\i1)` is one tag).
    let mut tags: Vec<&str> = Vec::new();
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    for (i, c) in block.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '\\' if depth == 0 => {
                if let Some(s) = start {
                    tags.push(&block[s..i]);
                }
                start = Some(i + 1);
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        tags.push(&block[s..]);
    }
    for tag in tags {
        let tag = tag.trim();
        if tag.starts_with('r') {
            b.reset();
            continue;
        }
        let colour_arg = tag.strip_prefix("1c").or_else(|| tag.strip_prefix('c'));
        if let Some(arg) = colour_arg {
            if arg.trim().is_empty() {
                b.direct = None;
                b.colours.clear();
            } else if let Some(c) = ass_colour(arg) {
                b.direct = Some(c);
                b.colours.clear();
            }
            continue;
        }
        let Some(first) = tag.chars().next() else {
            continue;
        };
        let Some(value) = switch_value(&tag[first.len_utf8()..]) else {
            continue;
        };
        let on = |v: Option<u32>| v == Some(1);
        match first {
            'i' => b.flags.italic = on(value),
            'u' => b.flags.underline = on(value),
            's' => b.flags.strike = on(value),
            'b' => b.flags.bold = matches!(value, Some(1) | Some(600..)),
            'p' => b.hidden = value.unwrap_or(0) > 0,
            _ => {}
        }
    }
}

/// The Text field of a Dialogue line into canonical lines: override blocks read as described in the
/// module docs, `\N` breaks the line (`\n` too with `WrapStyle: 2`, otherwise it is a space), `\h` is a
/// no-break space, `\{` and `\}` are literal braces, and a backslash followed by a word joiner (how the
/// writer escapes backslashes) is a plain backslash.
pub(crate) fn from_ass(text: &str, wrap_style_2: bool) -> Vec<String> {
    let mut b = Builder::default();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match c {
            '{' => {
                if let Some(end) = rest.find('}') {
                    ass_block(&mut b, &rest[1..end]);
                    rest = &rest[end + 1..];
                    continue;
                }
            }
            '\\' => {
                let next = rest[1..].chars().next();
                let skip = 1 + next.map_or(0, char::len_utf8);
                match next {
                    Some('N') => b.newline(),
                    Some('n') if wrap_style_2 => b.newline(),
                    Some('n') => b.push(' '),
                    Some('h') => b.push('\u{a0}'),
                    Some(c @ ('{' | '}')) => b.push(c),
                    Some(WJ) => b.push('\\'),
                    _ => {
                        b.push('\\');
                        rest = &rest[1..];
                        continue;
                    }
                }
                rest = &rest[skip..];
                continue;
            }
            _ => {}
        }
        b.push(c);
        rest = &rest[c.len_utf8()..];
    }
    canonical_lines(b.finish())
}

/// The ASS override tags (without braces) that change the markup state `from` into `to`; the colour is
/// left alone when `keep_colour` (a karaoke highlight is drawn over it).
pub(crate) fn ass_diff(from: Style, to: Style, keep_colour: bool) -> String {
    let mut out = String::new();
    let mut switch = |name: &str, a: bool, b: bool| {
        if a != b {
            out.push('\\');
            out.push_str(name);
            if b {
                out.push('1');
            }
        }
    };
    switch("b", from.bold, to.bold);
    switch("i", from.italic, to.italic);
    switch("u", from.underline, to.underline);
    switch("s", from.strike, to.strike);
    if !keep_colour && from.colour != to.colour {
        match to.colour {
            Some(Rgb(r, g, b)) => out.push_str(&format!("\\c&H{b:02X}{g:02X}{r:02X}&")),
            None => out.push_str("\\c"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srt(s: &str) -> Vec<String> {
        from_srt(&s.lines().collect::<Vec<_>>())
    }

    fn vtt(s: &str) -> Vec<String> {
        from_vtt(&s.lines().collect::<Vec<_>>())
    }

    #[test]
    fn srt_markup_becomes_canonical() {
        assert_eq!(
            srt("<i>Hello</i> <B>world</B>"),
            ["<i>Hello</i> <b>world</b>"]
        );
        assert_eq!(
            srt("< u>broken tag</u> and <blink>unknown</blink>"),
            ["<u>broken tag</u> and unknown"]
        );
        assert_eq!(srt("</ i >x"), ["x"]);
        assert_eq!(
            srt("<font color=\"#FF0000\">red</font> <font color=lime>lime</font>"),
            ["<font color=\"#ff0000\">red</font> <font color=\"#00ff00\">lime</font>"]
        );
        assert_eq!(
            srt("<font color=red>a<font face=Arial>b</font><font color='#00f'>c</font>d</font>e"),
            ["<font color=\"#ff0000\">ab</font><font color=\"#0000ff\">c</font><font color=\"#ff0000\">d</font>e"]
        );
        // Misnested tags are binary switches, as in ffmpeg.
        assert_eq!(srt("<b>a<i>b</b>c</i>"), ["<b>a<i>b</i></b><i>c</i>"]);
        // Tags that span lines are closed and opened again on each line.
        assert_eq!(srt("<i>one\ntwo</i>"), ["<i>one</i>", "<i>two</i>"]);
        // Lines with only tags, and empty tag pairs, are gone.
        assert_eq!(srt("<b></b>\nCountry."), ["Country."]);
        assert_eq!(srt("a<br>b"), ["a", "b"]);
        assert_eq!(srt("{\\an8}{\\i1}Top{\\i0} {y:i}x"), ["<i>Top</i> x"]);
    }

    #[test]
    fn text_that_is_not_markup_stays() {
        for s in [
            "a < b",
            "<3 you",
            "<<quoted>>",
            "<Hello there>",
            "x <",
            "{not a tag}",
            "a > b",
            "if a<b and c>d",
        ] {
            let got = srt(s);
            assert_eq!(got.len(), 1, "{s:?}");
            assert_eq!(visible_text(&got[0]), s, "{s:?}");
        }
        // ffmpeg and pysubs2 both read `< b >` as bold; so do we.
        assert_eq!(srt("a < b > c"), ["a <b> c</b>"]);
    }

    #[test]
    fn vtt_markup_becomes_canonical() {
        assert_eq!(
            vtt("<v Kennedy>Ask not</v> what <c.yellow>your</c> <c.bg_black.red>country</c>"),
            ["Ask not what <font color=\"#ffff00\">your</font> <font color=\"#ff0000\">country</font>"]
        );
        assert_eq!(
            vtt("<ruby>can<rt>annotation</rt></ruby> <i>do</i> &amp; for"),
            ["can <i>do</i> & for"]
        );
        assert_eq!(
            vtt("<00:00:01.000><c> word</c><00:00:01.500><c> two</c>"),
            ["word two"]
        );
        assert_eq!(
            vtt("<lang en-GB>Cyan!</lang> <u.myclass>x</u>"),
            ["Cyan! <u>x</u>"]
        );
        assert_eq!(
            vtt("<c.colorE5E5E5>grey</c>"),
            ["<font color=\"#e5e5e5\">grey</font>"]
        );
        assert_eq!(
            vtt("&lt;i&gt;not italic&lt;/i&gt;"),
            ["<\u{2060}i>not italic<\u{2060}/i>"]
        );
        assert_eq!(visible_text(&vtt("&lt;i&gt;x")[0]), "<i>x");
        assert!(vtt("<v Fred>").is_empty());
    }

    #[test]
    fn ass_overrides_become_canonical() {
        let ass = |s: &str| from_ass(s, false);
        assert_eq!(
            ass("{\\i1}It{\\i0} {\\b1}bold{\\b} {\\u1\\s1}us"),
            ["<i>It</i> <b>bold</b> <u><s>us</s></u>"]
        );
        assert_eq!(
            ass("{\\c&H0000FF&}red{\\c} {\\1c&HFF0000&}blue{\\r}x"),
            ["<font color=\"#ff0000\">red</font> <font color=\"#0000ff\">blue</font>x"]
        );
        assert_eq!(ass("{\\b700}heavy{\\b400}light"), ["<b>heavy</b>light"]);
        assert_eq!(
            ass("{\\t(0,500,\\i1)\\iclip(0,0,1,1)\\bord2\\blur1\\shad1}plain"),
            ["plain"]
        );
        assert_eq!(ass("{\\p1}m 0 0 l 100 0 100 100{\\p0}text"), ["text"]);
        assert_eq!(
            ass("a\\Nb\\nc\\hd \\{lit\\} \\\u{2060}N"),
            ["a", "b c\u{a0}d {lit} \\N"]
        );
        assert_eq!(ass("open { brace"), ["open { brace"]);
        assert_eq!(ass("<b>literal</b>"), ["<\u{2060}b>literal<\u{2060}/b>"]);
    }

    #[test]
    fn canonical_is_a_fixed_point() {
        for s in [
            "<i>Hello</i> <b>world</b>",
            "<font color=\"#ff0000\">a<b>b</b></font>",
            "<\u{2060}i>literal",
            "plain < text > here",
        ] {
            let runs = &parse_canonical(s)[0];
            assert_eq!(to_canonical(runs), s);
        }
    }

    #[test]
    fn writers() {
        let runs =
            &parse_canonical("<font color=\"#ffff00\"><b>yellow</b></font> <s>x</s> a<b & {\\i1}")
                [0];
        assert_eq!(
            to_vtt(runs),
            "<c.yellow><b>yellow</b></c> x a&lt;b &amp; {\\i1}"
        );
        assert_eq!(
            to_srt(runs),
            "<font color=\"#ffff00\"><b>yellow</b></font> <s>x</s> a<b & {\u{2060}\\i1}"
        );
        assert_eq!(srt(&to_srt(runs)), [to_canonical(runs)]);
        let odd = &parse_canonical("<font color=\"#123456\">odd</font>")[0];
        assert_eq!(to_vtt(odd), "odd");
    }

    #[test]
    fn visible_text_and_lines() {
        assert_eq!(visible_text("  <i> padded </i>  "), "padded");
        assert_eq!(visible_text("one\ntwo"), "one two");
        let lines = vec!["<b></b>".to_string(), "<i>x</i>".into(), "  ".into()];
        assert_eq!(visible_lines(&lines), ["x"]);
        let cue = Cue::new(0, 1, vec!["<i>a</i>".into(), "b".into()]);
        assert_eq!(cue.visible_text(), "a b");
    }

    #[test]
    fn readers_write_fixed_points_of_the_canonical_form() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        const PIECES: &[&str] = &[
            "<",
            ">",
            "/",
            "i",
            "b",
            "u",
            "s",
            "font",
            " color=",
            "\"#ff0000\"",
            "red",
            "c.",
            "yellow",
            "v ",
            "rt",
            "ruby",
            "{",
            "}",
            "\\",
            "i1",
            "c&H00FF00&",
            "r",
            "p1",
            "p0",
            "N",
            "n",
            "h",
            "&",
            "amp;",
            "lt;",
            "#233;",
            "\u{2060}",
            " ",
            "\t",
            "\n",
            "a",
            "Ж",
            "🎉",
            "\u{a0}",
            "<<",
            "br",
            "=",
            "'",
            "00:01.000",
            "y:i",
        ];
        for _ in 0..4000 {
            let n = 1 + next() % 14;
            let s: String = (0..n)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            let split: Vec<&str> = s.split('\n').collect();
            for lines in [
                from_srt(&split),
                from_vtt(&split),
                from_ass(&s.replace('\n', " "), false),
            ] {
                for line in &lines {
                    let parsed = parse_canonical(line);
                    assert_eq!(parsed.len(), 1, "{s:?} -> {line:?}");
                    let runs = &parsed[0];
                    assert_eq!(&tidy(runs.clone()), runs, "{s:?} -> {line:?}");
                    assert_eq!(&to_canonical(runs), line, "{s:?}");
                    assert!(!runs_text(runs).trim().is_empty(), "{s:?}");
                    // Through SRT and back, unchanged.
                    let srt = to_srt(runs);
                    assert_eq!(
                        from_srt(&[srt.as_str()]),
                        std::slice::from_ref(line),
                        "{s:?} -> {srt:?}"
                    );
                    // Through WebVTT and back: the same text, markup WebVTT can say.
                    let vtt = to_vtt(runs);
                    let back = from_vtt(&[vtt.as_str()]);
                    assert_eq!(back.len(), 1, "{s:?} -> {vtt:?}");
                    assert_eq!(
                        visible_text(&back[0]),
                        visible_text(line),
                        "{s:?} -> {vtt:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn ass_diff_tags() {
        let plain = Style::default();
        let it = Style {
            italic: true,
            colour: Some(Rgb(255, 0, 0)),
            ..plain
        };
        assert_eq!(ass_diff(plain, it, false), "\\i1\\c&H0000FF&");
        assert_eq!(ass_diff(it, plain, false), "\\i\\c");
        assert_eq!(ass_diff(plain, it, true), "\\i1");
    }
}
