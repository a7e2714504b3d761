//! The language of a subtitle file when nobody said it: from its name (`talk.ru.srt`) or from its text.

use std::path::Path;

/// Where a language came from, for messages (`--verbose`) and the JSON summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LanguageSource {
    /// Given by the user (`--lang`).
    Given,
    /// Stored in the JSON document.
    Document,
    /// The file name's `NAME.LANG.ext` suffix.
    FileName,
    /// Detected from the text.
    Detected,
}

impl LanguageSource {
    pub fn describe(self) -> &'static str {
        match self {
            LanguageSource::Given => "given",
            LanguageSource::Document => "from the document",
            LanguageSource::FileName => "from the file name",
            LanguageSource::Detected => "detected from the text",
        }
    }
}

/// The language code in a `NAME.LANG.ext` file name (`talk.ru.srt` -> `ru`, `talk.pt-BR.vtt` -> `pt`), when
/// `LANG` is an ISO 639-1 code ([`crate::translate::validate_language`]). `talk.srt` and `my.talk.srt` (no known
/// code) give `None`.
pub fn from_file_name(path: &Path) -> Option<String> {
    let stem = Path::new(path.file_name()?).file_stem()?.to_str()?;
    let (name, suffix) = stem.rsplit_once('.')?;
    if name.is_empty() {
        return None;
    }
    let code = suffix.split(['-', '_']).next()?.to_ascii_lowercase();
    crate::translate::validate_language(&code)
        .is_ok()
        .then_some(code)
}

/// Least confidence of the detector to take its answer. whatlang's own `is_reliable` (0.8) refuses most short
/// English lines (0.34 for "Ask not what your country can do for you, ask what you can do for your country."),
/// while two letters of Latin text score under 0.05.
const MIN_CONFIDENCE: f64 = 0.25;
/// Fewer letters than this are too few to tell a language by.
const MIN_LETTERS: usize = 12;

/// The language of `text` (ISO 639-1), when the text has enough letters and the detector is confident enough.
pub fn detect_text(text: &str) -> Option<String> {
    if text.chars().filter(|c| c.is_alphabetic()).count() < MIN_LETTERS {
        return None;
    }
    let info = whatlang::detect(text)?;
    if info.confidence() < MIN_CONFIDENCE {
        return None;
    }
    iso_639_1(info.lang().code())
        .filter(|c| crate::translate::validate_language(c).is_ok())
        .map(str::to_owned)
}

/// The language of a subtitle file, in order of trust: `given` (`--lang`), the document's own, the file name's
/// suffix ([`from_file_name`]), the text ([`detect_text`] over `lines`). `None` when none of them tells.
/// `lines` are only read when the text has to be looked at.
pub fn of_subtitles<S: AsRef<str>>(
    given: Option<&str>,
    document: Option<&str>,
    path: &Path,
    lines: impl IntoIterator<Item = S>,
) -> Option<(String, LanguageSource)> {
    if let Some(l) = given {
        return Some((l.to_owned(), LanguageSource::Given));
    }
    if let Some(l) = document {
        return Some((l.to_owned(), LanguageSource::Document));
    }
    if let Some(l) = from_file_name(path) {
        return Some((l, LanguageSource::FileName));
    }
    let mut text = String::new();
    for l in lines {
        if text.len() > 4000 {
            break;
        }
        text.push_str(l.as_ref());
        text.push(' ');
    }
    detect_text(&text).map(|l| (l, LanguageSource::Detected))
}

/// ISO 639-3 (whatlang's codes) to ISO 639-1, for the languages whatlang knows that have a two-letter code.
fn iso_639_1(code3: &str) -> Option<&'static str> {
    Some(match code3 {
        "afr" => "af",
        "aka" => "ak",
        "amh" => "am",
        "ara" => "ar",
        "aze" => "az",
        "bel" => "be",
        "ben" => "bn",
        "bul" => "bg",
        "cat" => "ca",
        "ces" => "cs",
        "cmn" => "zh",
        "cym" => "cy",
        "dan" => "da",
        "deu" => "de",
        "ell" => "el",
        "eng" => "en",
        "epo" => "eo",
        "est" => "et",
        "fin" => "fi",
        "fra" => "fr",
        "guj" => "gu",
        "heb" => "he",
        "hin" => "hi",
        "hrv" => "hr",
        "hun" => "hu",
        "hye" => "hy",
        "ind" => "id",
        "ita" => "it",
        "jav" => "jv",
        "jpn" => "ja",
        "kan" => "kn",
        "kat" => "ka",
        "khm" => "km",
        "kor" => "ko",
        "lat" => "la",
        "lav" => "lv",
        "lit" => "lt",
        "mal" => "ml",
        "mar" => "mr",
        "mkd" => "mk",
        "mya" => "my",
        "nep" => "ne",
        "nld" => "nl",
        "nob" => "nb",
        "ori" => "or",
        "pan" => "pa",
        "pes" => "fa",
        "pol" => "pl",
        "por" => "pt",
        "ron" => "ro",
        "rus" => "ru",
        "sin" => "si",
        "slk" => "sk",
        "slv" => "sl",
        "sna" => "sn",
        "spa" => "es",
        "srp" => "sr",
        "swe" => "sv",
        "tam" => "ta",
        "tel" => "te",
        "tgl" => "tl",
        "tha" => "th",
        "tuk" => "tk",
        "tur" => "tr",
        "ukr" => "uk",
        "urd" => "ur",
        "uzb" => "uz",
        "vie" => "vi",
        "yid" => "yi",
        "zul" => "zu",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_from_the_file_name() {
        let f = |p: &str| from_file_name(Path::new(p));
        assert_eq!(f("talk.ru.srt").as_deref(), Some("ru"));
        assert_eq!(f("/a/b.c/talk.en.json").as_deref(), Some("en"));
        assert_eq!(f("talk.pt-BR.vtt").as_deref(), Some("pt"));
        assert_eq!(f("talk.EN.srt").as_deref(), Some("en"));
        assert_eq!(f("talk.srt"), None);
        assert_eq!(f("my.talk.srt"), None);
        assert_eq!(f("talk.xx.srt"), None);
        assert_eq!(f(".ru.srt"), None);
        assert_eq!(f("ru"), None);
    }

    #[test]
    fn language_from_the_text() {
        assert_eq!(
            detect_text("Съешь же ещё этих мягких французских булок, да выпей чаю.").as_deref(),
            Some("ru")
        );
        assert_eq!(
            detect_text("The quick brown fox jumps over the lazy dog, and then it runs away.")
                .as_deref(),
            Some("en")
        );
        assert_eq!(
            detect_text("Der schnelle braune Fuchs springt über den faulen Hund und läuft weg.")
                .as_deref(),
            Some("de")
        );
        assert_eq!(
            detect_text(
                "Ask not what your country can do for you, ask what you can do for your country."
            )
            .as_deref(),
            Some("en")
        );
        assert_eq!(detect_text(""), None);
        assert_eq!(detect_text("ok"), None);
        assert_eq!(detect_text("12 34"), None);
    }

    #[test]
    fn language_in_order_of_trust() {
        let p = Path::new("talk.ru.srt");
        let en = ["The quick brown fox jumps over the lazy dog, and then it runs away."];
        let of = |g, d, p| of_subtitles(g, d, p, en);
        assert_eq!(
            of(Some("de"), Some("fr"), p),
            Some(("de".into(), LanguageSource::Given))
        );
        assert_eq!(
            of(None, Some("fr"), p),
            Some(("fr".into(), LanguageSource::Document))
        );
        assert_eq!(
            of(None, None, p),
            Some(("ru".into(), LanguageSource::FileName))
        );
        assert_eq!(
            of(None, None, Path::new("talk.srt")),
            Some(("en".into(), LanguageSource::Detected))
        );
        assert_eq!(
            of_subtitles(None, None, Path::new("talk.srt"), ["ok"]),
            None
        );
    }

    #[test]
    fn every_mapped_code_is_a_known_language() {
        for l in whatlang::Lang::all() {
            if let Some(c) = iso_639_1(l.code()) {
                // `ak`, `or`, `sn`, `tk`, `zu`, `yi` may be missing from Whisper's list; the rest must be there.
                let known = crate::translate::validate_language(c).is_ok();
                assert!(
                    known || ["ak", "or", "sn", "tk", "zu", "yi"].contains(&c),
                    "{c}"
                );
            }
        }
    }
}
