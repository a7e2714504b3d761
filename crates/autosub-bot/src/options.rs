//! What the user asks for: options in the CLI's syntax (a caption, or text after a link), or chosen on an inline
//! keyboard (a draft, or the /settings defaults). Callback data is parsed here and validated by the caller against
//! the database (whose draft, whose task) and the tier (which options): a forged button changes nothing.

use autosub_core::job::{Job, JobInput, TranslateSpec, VideoSpec, VoiceSpec};
use autosub_core::render::Reframe;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use teloxide_core::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::i18n::{t, Lang};

/// Languages offered on the translation picker (any ISO 639-1 code works in a caption).
pub const PICKER_LANGUAGES: [(&str, &str); 10] = [
    ("en", "English"),
    ("ru", "Русский"),
    ("es", "Español"),
    ("de", "Deutsch"),
    ("fr", "Français"),
    ("pt", "Português"),
    ("it", "Italiano"),
    ("tr", "Türkçe"),
    ("uk", "Українська"),
    ("zh", "中文"),
];

/// Built-in subtitle styles, in the order the style button cycles through them.
pub const STYLES: [&str; 3] = ["clean", "boxed", "karaoke"];

/// The options of one request (also the /settings defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Options {
    /// 9:16 reframing, `None`: keep the frame.
    pub vertical: Option<Reframe>,
    /// Translation targets (ISO 639-1), in order.
    pub translate: Vec<String>,
    pub voiceover: bool,
    /// A built-in style; `None`: the default for the frame.
    pub style: Option<String>,
    /// The spoken language; detected when `None`.
    pub lang: Option<String>,
}

/// What a message holds once its options are read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The link at the start of the text, if any.
    pub link: Option<String>,
    /// `None`: no options were given (show the keyboard).
    pub options: Option<Options>,
}

fn is_lang_code(s: &str) -> bool {
    (2..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase())
}

/// Reads a caption or a text message: an optional link first, then options (`--vertical [blur|crop]`,
/// `--translate LANG[,LANG]`, `--voiceover`, `--style NAME`, `--lang LANG`, also as `--name=value`). Text with no
/// option at all is not an error: the user gets the keyboard. `Err(token)` names what was not understood.
pub fn parse(text: &str) -> Result<Parsed, String> {
    let mut tokens: Vec<String> = Vec::new();
    for tok in text.split_whitespace() {
        match tok.split_once('=') {
            Some((k, v)) if k.starts_with("--") => {
                tokens.push(k.to_owned());
                tokens.push(v.to_owned());
            }
            _ => tokens.push(tok.to_owned()),
        }
    }
    let mut it = tokens.into_iter().peekable();
    let link = match it.peek() {
        Some(s) if s.starts_with("http://") || s.starts_with("https://") => it.next(),
        _ => None,
    };
    let rest: Vec<String> = it.collect();
    if !rest
        .iter()
        .any(|s| s.starts_with("--") || s.starts_with('—'))
    {
        return Ok(Parsed {
            link,
            options: None,
        });
    }
    let mut o = Options::default();
    let mut i = 0;
    let value = |i: usize| rest.get(i + 1).filter(|v| !v.starts_with("--")).cloned();
    while i < rest.len() {
        // Phones turn "--" into an em dash.
        let flag = rest[i].replacen('—', "--", 1);
        match flag.as_str() {
            "--vertical" => {
                o.vertical = Some(Reframe::Blur);
                if let Some(v) = value(i) {
                    match v.as_str() {
                        "blur" => o.vertical = Some(Reframe::Blur),
                        "crop" => o.vertical = Some(Reframe::Crop),
                        _ => return Err(format!("--vertical {v}")),
                    }
                    i += 1;
                }
            }
            "--translate" => {
                let v = value(i).ok_or_else(|| "--translate".to_owned())?;
                for l in v.split(',').map(|l| l.trim().to_ascii_lowercase()) {
                    if !is_lang_code(&l) {
                        return Err(format!("--translate {v}"));
                    }
                    if !o.translate.contains(&l) {
                        o.translate.push(l);
                    }
                }
                i += 1;
            }
            "--voiceover" | "--voice-over" => o.voiceover = true,
            "--style" => {
                let v = value(i).ok_or_else(|| "--style".to_owned())?;
                if !STYLES.contains(&v.as_str()) {
                    return Err(format!("--style {v}"));
                }
                o.style = Some(v);
                i += 1;
            }
            "--lang" => {
                let v = value(i)
                    .ok_or_else(|| "--lang".to_owned())?
                    .to_ascii_lowercase();
                if !is_lang_code(&v) {
                    return Err(format!("--lang {v}"));
                }
                o.lang = Some(v);
                i += 1;
            }
            other => return Err(other.to_owned()),
        }
        i += 1;
    }
    Ok(Parsed {
        link,
        options: Some(o),
    })
}

/// The job for `input` with these options; `video` false for audio-only input.
pub fn to_job(o: &Options, input: JobInput, video: bool) -> Job {
    let mut job = Job::new(input);
    job.asr.language = o.lang.clone();
    job.video = video.then(|| VideoSpec {
        vertical: o.vertical,
        style: o.style.clone(),
        ..VideoSpec::default()
    });
    if !o.translate.is_empty() {
        job.translate = Some(TranslateSpec {
            targets: o.translate.clone(),
            ..TranslateSpec::default()
        });
    }
    if o.voiceover {
        job.voiceover = Some(VoiceSpec::default());
    }
    job
}

/// A button press, as parsed from its callback data (at most 64 bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Press {
    /// On a draft's keyboard (`d:ID:...`) or the settings keyboard (`s:...`, `draft` None).
    Edit { draft: Option<i64>, edit: Edit },
    /// Start a draft.
    Start(i64),
    /// Drop a draft.
    Drop(i64),
    /// Cancel a task.
    Cancel(i64),
    /// Run a failed task again.
    Retry(i64),
    /// The same input with other options: a new draft.
    Rerun(i64),
    /// Cancel every file of an album not done yet.
    CancelAlbum(i64),
    /// Buy a plan (`b:TIER:PERIOD`; only paid tiers). The price is never in the data: it is the plans table's.
    Buy {
        tier: autosub_store::Tier,
        period: autosub_store::PaymentPeriod,
    },
}

/// A change to options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    Vertical(bool),
    Voiceover(bool),
    Style(String),
    /// Show the language picker.
    Languages,
    /// Back from the picker.
    Back,
    /// `None`: no translation.
    Translate(Option<String>),
}

impl Edit {
    fn data(&self) -> String {
        match self {
            Edit::Vertical(b) => format!("v:{}", u8::from(*b)),
            Edit::Voiceover(b) => format!("o:{}", u8::from(*b)),
            Edit::Style(s) => format!("s:{s}"),
            Edit::Languages => "tl".into(),
            Edit::Back => "bk".into(),
            Edit::Translate(Some(l)) => format!("t:{l}"),
            Edit::Translate(None) => "t:-".into(),
        }
    }

    fn parse(s: &str) -> Option<Edit> {
        Some(match s.split_once(':') {
            Some(("v", b)) => Edit::Vertical(parse_bool(b)?),
            Some(("o", b)) => Edit::Voiceover(parse_bool(b)?),
            Some(("s", s)) if STYLES.contains(&s) => Edit::Style(s.to_owned()),
            Some(("t", "-")) => Edit::Translate(None),
            Some(("t", l)) if is_lang_code(l) => Edit::Translate(Some(l.to_owned())),
            None if s == "tl" => Edit::Languages,
            None if s == "bk" => Edit::Back,
            _ => return None,
        })
    }

    /// Applies the change (Languages/Back change nothing).
    pub fn apply(&self, o: &mut Options) {
        match self {
            Edit::Vertical(b) => o.vertical = b.then_some(o.vertical.unwrap_or_default()),
            Edit::Voiceover(b) => o.voiceover = *b,
            Edit::Style(s) => o.style = Some(s.clone()),
            Edit::Translate(l) => o.translate = l.iter().cloned().collect(),
            Edit::Languages | Edit::Back => {}
        }
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

impl Press {
    pub fn data(&self) -> String {
        match self {
            Press::Edit {
                draft: Some(d),
                edit,
            } => format!("d:{d}:{}", edit.data()),
            Press::Edit { draft: None, edit } => format!("s:{}", edit.data()),
            Press::Start(d) => format!("go:{d}"),
            Press::Drop(d) => format!("x:{d}"),
            Press::Cancel(t) => format!("c:{t}"),
            Press::Retry(t) => format!("r:{t}"),
            Press::Rerun(t) => format!("o:{t}"),
            Press::CancelAlbum(a) => format!("ca:{a}"),
            Press::Buy { tier, period } => format!("b:{tier}:{period}"),
        }
    }

    /// Parses callback data; `None` for anything this bot did not make.
    pub fn parse(data: &str) -> Option<Press> {
        if data.len() > 64 {
            return None;
        }
        let (head, rest) = data.split_once(':')?;
        let id = |s: &str| s.parse::<i64>().ok().filter(|n| *n > 0);
        Some(match head {
            "d" => {
                let (d, e) = rest.split_once(':')?;
                Press::Edit {
                    draft: Some(id(d)?),
                    edit: Edit::parse(e)?,
                }
            }
            "s" => Press::Edit {
                draft: None,
                edit: Edit::parse(rest)?,
            },
            "go" => Press::Start(id(rest)?),
            "x" => Press::Drop(id(rest)?),
            "c" => Press::Cancel(id(rest)?),
            "r" => Press::Retry(id(rest)?),
            "o" => Press::Rerun(id(rest)?),
            "ca" => Press::CancelAlbum(id(rest)?),
            "b" => {
                let (tier, period) = rest.split_once(':')?;
                let tier = autosub_store::Tier::from_str(tier)
                    .ok()
                    .filter(|t| t.is_paid() && t.as_str() == tier)?;
                let period = autosub_store::PaymentPeriod::from_str(period).ok()?;
                Press::Buy { tier, period }
            }
            _ => return None,
        })
    }
}

fn button(text: String, press: Press) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(text, press.data())
}

/// The options keyboard of a draft (`draft` Some, with start and cancel) or of /settings (`draft` None). `picker`
/// shows the translation languages instead. Options the tier lacks are shown with a lock: pressing one explains.
pub fn keyboard(
    lang: Lang,
    draft: Option<i64>,
    o: &Options,
    picker: bool,
    tier: autosub_store::Tier,
) -> InlineKeyboardMarkup {
    let edit = |edit: Edit| Press::Edit { draft, edit };
    let limits = tier.limits();
    let lock = |ok: bool| if ok { "" } else { "🔒 " };
    let mark = |on: bool| if on { "✅" } else { "▫️" };
    if picker {
        let mut rows: Vec<Vec<InlineKeyboardButton>> = PICKER_LANGUAGES
            .chunks(2)
            .map(|pair| {
                pair.iter()
                    .map(|(code, name)| {
                        button(
                            format!(
                                "{}{name}",
                                if o.translate.first().map(String::as_str) == Some(*code) {
                                    "✅ "
                                } else {
                                    ""
                                }
                            ),
                            edit(Edit::Translate(Some((*code).to_owned()))),
                        )
                    })
                    .collect()
            })
            .collect();
        rows.push(vec![
            button(
                t(lang, "btn_no_translation", &[]),
                edit(Edit::Translate(None)),
            ),
            button(t(lang, "btn_back", &[]), edit(Edit::Back)),
        ]);
        return InlineKeyboardMarkup::new(rows);
    }
    let translate = match o.translate.first() {
        Some(l) => t(lang, "btn_translate", &[("lang", l)]),
        None => t(lang, "btn_translate_off", &[]),
    };
    let current_style = o.style.clone().unwrap_or_else(|| {
        if o.vertical.is_some() {
            "karaoke"
        } else {
            "clean"
        }
        .to_owned()
    });
    let next_style = STYLES
        .iter()
        .cycle()
        .skip_while(|s| **s != current_style)
        .nth(1)
        .copied()
        .unwrap_or("clean");
    let mut rows = vec![
        vec![button(
            t(
                lang,
                "btn_vertical",
                &[("mark", mark(o.vertical.is_some()))],
            ),
            edit(Edit::Vertical(o.vertical.is_none())),
        )],
        vec![button(
            format!("{}{translate}", lock(limits.translate)),
            edit(Edit::Languages),
        )],
        vec![
            button(
                format!(
                    "{}{}",
                    lock(limits.voiceover),
                    t(lang, "btn_voiceover", &[("mark", mark(o.voiceover))])
                ),
                edit(Edit::Voiceover(!o.voiceover)),
            ),
            button(
                format!(
                    "{}{}",
                    lock(limits.styles),
                    t(lang, "btn_style", &[("style", &current_style)])
                ),
                edit(Edit::Style(next_style.to_owned())),
            ),
        ],
    ];
    if let Some(d) = draft {
        rows.push(vec![
            button(t(lang, "btn_start", &[]), Press::Start(d)),
            button(t(lang, "btn_drop", &[]), Press::Drop(d)),
        ]);
    }
    InlineKeyboardMarkup::new(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_in_the_cli_syntax() {
        let p = parse("--vertical --translate en").unwrap();
        assert_eq!(p.link, None);
        let o = p.options.unwrap();
        assert_eq!(o.vertical, Some(Reframe::Blur));
        assert_eq!(o.translate, vec!["en"]);
        let p = parse("https://youtu.be/x --vertical=crop --style boxed --voiceover --translate=EN,de --lang ru")
            .unwrap();
        assert_eq!(p.link.as_deref(), Some("https://youtu.be/x"));
        let o = p.options.unwrap();
        assert_eq!(o.vertical, Some(Reframe::Crop));
        assert_eq!(o.style.as_deref(), Some("boxed"));
        assert!(o.voiceover);
        assert_eq!(o.translate, vec!["en", "de"]);
        assert_eq!(o.lang.as_deref(), Some("ru"));
        // An em dash from a phone keyboard.
        assert!(parse("—vertical")
            .unwrap()
            .options
            .unwrap()
            .vertical
            .is_some());
    }

    #[test]
    fn text_without_options_asks_for_the_keyboard_and_bad_options_are_named() {
        assert_eq!(parse("my holiday").unwrap().options, None);
        assert_eq!(parse("https://a.b/c").unwrap().options, None);
        assert_eq!(
            parse("--vertical sideways").unwrap_err(),
            "--vertical sideways"
        );
        assert_eq!(parse("--translate").unwrap_err(), "--translate");
        assert_eq!(
            parse("--translate english").unwrap_err(),
            "--translate english"
        );
        assert_eq!(parse("--style neon").unwrap_err(), "--style neon");
        assert_eq!(parse("--vertical --rm").unwrap_err(), "--rm");
        assert_eq!(parse("--vertical hello").unwrap_err(), "--vertical hello");
    }

    #[test]
    fn callback_data_round_trips_and_garbage_is_refused() {
        let all = [
            Press::Edit {
                draft: Some(12),
                edit: Edit::Vertical(true),
            },
            Press::Edit {
                draft: Some(12),
                edit: Edit::Voiceover(false),
            },
            Press::Edit {
                draft: None,
                edit: Edit::Style("boxed".into()),
            },
            Press::Edit {
                draft: Some(1),
                edit: Edit::Languages,
            },
            Press::Edit {
                draft: Some(1),
                edit: Edit::Back,
            },
            Press::Edit {
                draft: Some(1),
                edit: Edit::Translate(Some("de".into())),
            },
            Press::Edit {
                draft: None,
                edit: Edit::Translate(None),
            },
            Press::Start(9_223_372_036_854_775_807),
            Press::Drop(3),
            Press::Cancel(4),
            Press::Retry(5),
            Press::Rerun(6),
            Press::CancelAlbum(7),
            Press::Buy {
                tier: autosub_store::Tier::Creator,
                period: autosub_store::PaymentPeriod::Year,
            },
            Press::Buy {
                tier: autosub_store::Tier::Pro,
                period: autosub_store::PaymentPeriod::Month,
            },
        ];
        for p in all {
            let d = p.data();
            assert!(d.len() <= 64, "{d}");
            assert_eq!(Press::parse(&d), Some(p));
        }
        for bad in [
            "b:free:month",
            "b:pro:week",
            "b:PRO:month",
            "b:pro",
            "b:gold:year",
            "",
            "go",
            "go:",
            "go:-1",
            "go:0",
            "d:1:v:2",
            "d:x:v:1",
            "s:s:neon",
            "s:t:english",
            "zz:1",
            "c:1;DROP",
            "ca:",
            "ca:-3",
            "ca:x",
        ] {
            assert_eq!(Press::parse(bad), None, "{bad}");
        }
        assert_eq!(Press::parse(&format!("c:{}", "9".repeat(70))), None);
    }

    #[test]
    fn edits_and_jobs() {
        let mut o = Options::default();
        Edit::Vertical(true).apply(&mut o);
        Edit::Translate(Some("en".into())).apply(&mut o);
        Edit::Style("boxed".into()).apply(&mut o);
        let j = to_job(
            &o,
            JobInput::File {
                path: "in.mp4".into(),
            },
            true,
        );
        assert!(j.vertical());
        assert_eq!(j.translate.unwrap().targets, vec!["en"]);
        assert_eq!(j.video.unwrap().style.as_deref(), Some("boxed"));
        Edit::Vertical(false).apply(&mut o);
        Edit::Translate(None).apply(&mut o);
        assert_eq!(o.vertical, None);
        assert!(o.translate.is_empty());
        let a = to_job(
            &o,
            JobInput::File {
                path: "in.mp3".into(),
            },
            false,
        );
        assert!(a.video.is_none());
    }
}
