//! Text helpers: character counting, word lists and line-break classification (the visible text of
//! marked-up lines is [`crate::visible_text`]).

/// Number of characters (Unicode scalar values), the unit of every length rule.
pub(crate) fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Collapses every run of whitespace (including newlines) into one space and trims both ends.
pub(crate) fn collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for part in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(part);
    }
    out
}

/// Number of words: whitespace-separated tokens that contain a letter or digit.
pub(crate) fn count_words(s: &str) -> usize {
    s.split_whitespace()
        .filter(|t| t.chars().any(char::is_alphanumeric))
        .count()
}

/// True when the text has something visible that is not punctuation (a letter, digit or other symbol counts
/// as visible; see [`is_punct_only`]).
pub(crate) fn is_punct_only(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty() && !t.chars().any(char::is_alphanumeric)
}

/// Punctuation that opens something and so belongs to the following word.
pub(crate) fn is_opening_punct(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty() && t.chars().all(|c| "([{\"'“‘«„‚¿¡「『（【".contains(c))
}

/// Scripts written without spaces between words: a word from one of them that has no leading space is a new
/// word (a break opportunity), not a continuation of the previous one.
pub(crate) fn is_no_space_script(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF      // Thai, Lao
        | 0x1000..=0x109F    // Myanmar
        | 0x1780..=0x17FF    // Khmer
        | 0x3000..=0x30FF    // CJK punctuation, Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified
        | 0xF900..=0xFAFF    // CJK compatibility
        | 0xFF00..=0xFFEF    // full-width forms
        | 0x20000..=0x2FFFF) // CJK extensions
}

/// How good a place a break between two pieces of text is (for line breaks and cue boundaries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BreakKind {
    /// After a sentence end (. ? ! …).
    Sentence,
    /// After clause punctuation (, ; : and dashes).
    Clause,
    /// Before a word that starts a phrase (a conjunction, preposition, article or relative pronoun): a
    /// natural place to break even without punctuation.
    Phrase,
    /// Between two ordinary words.
    Plain,
    /// Would split what looks like a name ("New | York", "J. | Kennedy", "Mr. | Smith").
    Name,
    /// Would leave an article, determiner, preposition, conjunction or subject pronoun dangling at the end.
    Dangling,
    /// Would separate a number from its unit ("5 | km", "10 | percent").
    NumberUnit,
}

const SENTENCE_END: &str = ".?!…。？！‼⁇⁈⁉";
const CLAUSE_END: &str = ",;:—–-‐،、，；：";
const CLOSERS: &str = "\"'”’)]}»」』）】";
const OPENERS: &str = "\"'“‘«„‚¿¡([{「『（【";

/// Words that should not end a line or a cue: the next word belongs to them. English, German, French, Spanish,
/// Italian and Russian, lower case; words that are also common content words in English ("die", "son", "am",
/// "sin", "do") are deliberately left out because the language is not known here.
#[rustfmt::skip]
const FUNCTION_WORDS: &[&str] = &[
    // English
    "a", "an", "the", "this", "that", "these", "those", "my", "your", "his", "her", "its", "our", "their", "of",
    "to", "in", "on", "at", "for", "with", "by", "from", "into", "onto", "upon", "about", "over", "under",
    "through", "between", "without", "within", "towards", "toward", "across", "via", "and", "or", "but", "nor",
    "i", "every", "each", "whose", "than", "any", "some", "such", "another", "as", "what", "which", "how",
    "because", "if", "although", "unless", "whether",
    // German
    "der", "das", "dem", "den", "des", "ein", "eine", "einen", "einem", "einer", "eines", "kein", "keine",
    "mein", "meine", "dein", "deine", "seine", "ihr", "ihre", "unser", "unsere", "und", "oder", "aber", "mit",
    "von", "vom", "zu", "zum", "zur", "im", "ins", "auf", "aus", "bei", "beim", "nach", "für", "über", "unter",
    "um", "durch", "gegen", "ohne", "dass",
    // French
    "le", "la", "les", "un", "une", "des", "du", "de", "au", "aux", "à", "dans", "sur", "pour", "par", "avec",
    "sans", "chez", "et", "ou", "mais", "mon", "ma", "mes", "ton", "ta", "tes", "sa", "ses", "notre", "votre",
    "leur", "leurs", "ce", "cet", "cette", "ces", "je", "tu", "il", "nous", "vous", "ils", "elles", "que",
    // Spanish, Italian, Portuguese
    "el", "los", "las", "una", "unos", "unas", "del", "al", "en", "con", "por", "para", "y", "e", "mi", "tu",
    "su", "mis", "tus", "sus", "nuestro", "nuestra", "lo", "gli", "il", "della", "dello", "delle", "degli",
    "nel", "nella", "per", "di", "da", "dei", "uma", "os", "em", "no", "na", "nos", "nas", "dos", "das",
    // Russian
    "в", "во", "на", "с", "со", "к", "ко", "по", "за", "из", "от", "до", "о", "об", "обо", "у", "и", "а", "но",
    "не", "ни", "без", "для", "при", "про", "под", "над", "перед", "через", "или", "я", "мой", "моя", "мои",
    "твой", "твоя", "наш", "наша", "ваш", "ваша", "этот", "эта", "это", "эти", "тот", "та", "те",
];

/// Words (besides [`FUNCTION_WORDS`]) that start a phrase, so breaking before them reads naturally.
#[rustfmt::skip]
const PHRASE_STARTS: &[&str] = &[
    "who", "which", "where", "when", "while", "since", "until", "though", "so", "then", "whereas", "after",
    "before", "weil", "wenn", "als", "welche", "welcher", "qui", "quand", "parce", "puis", "porque", "pero",
    "cuando", "donde", "que", "что", "который", "которая", "которые", "когда", "где", "потому", "если", "чтобы",
];

fn starts_phrase(token: &str) -> bool {
    let core = core_word(token);
    !core.is_empty()
        && (FUNCTION_WORDS.contains(&core.as_str()) || PHRASE_STARTS.contains(&core.as_str()))
}

/// Units that must stay on the same line as the number before them.
#[rustfmt::skip]
const UNITS: &[&str] = &[
    "%", "‰", "°", "°c", "°f", "percent", "per", "km", "m", "cm", "mm", "kg", "g", "mg", "lb", "lbs", "oz",
    "ft", "mi", "mph", "kph", "km/h", "s", "ms", "sec", "secs", "min", "mins", "h", "hr", "hrs", "hz", "khz",
    "mhz", "ghz", "kb", "mb", "gb", "tb", "kw", "w", "v", "a.m.", "p.m.", "am", "pm", "seconds", "minutes",
    "hours", "days", "weeks", "months", "years", "degrees", "dollars", "euros", "pounds", "yen", "rupees",
    "hundred", "thousand", "million", "millions", "billion", "billions", "trillion", "meters", "metres",
    "kilometers", "kilometres", "miles", "feet", "inches", "kilos", "grams", "prozent", "euro", "jahre",
    "stunden", "minuten", "sekunden", "millionen", "milliarden", "tausend", "pour cent", "ans", "heures",
    "años", "horas", "км", "м", "см", "мм", "кг", "г", "лет", "год", "года", "часов", "часа", "минут", "секунд",
    "процентов", "процента", "тысяч", "тысячи", "миллионов", "миллиона", "миллиардов", "рублей", "долларов",
    "евро",
];

/// Abbreviations whose period [`classify_break`] treats as inside a name ("Mr. | Smith"): the segmenter's own,
/// narrower list (line breaks); [`ends_sentence`] has the translator's fuller rule.
const ABBREVIATIONS: &[&str] = &[
    "mr.", "mrs.", "ms.", "dr.", "st.", "prof.", "sr.", "jr.", "mt.", "vs.",
];

/// Titles that stand before a name: their full stop never ends a sentence ("Mr. Quilter", "Dr. Watson").
const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "st", "mt", "gen", "col", "capt", "lt", "sgt", "rev", "hon",
    "gov", "sen", "rep", "messrs", "mme", "mlle", "hr", "fr", "sr", "sra", "srta", "проф", "акад",
    "ул", "тов",
];

/// Abbreviations that stand inside a sentence, before whatever comes next, a name included ("Kramer vs. Kramer",
/// "e.g. London"): their full stop never ends a sentence either.
const NEVER_LAST: &[&str] = &[
    "vs", "cf", "viz", "e.g", "i.e", "т.е", "т.к", "т.н", "напр", "см",
];

/// Abbreviations that usually sit inside a sentence but can end one: their full stop ends it before a capital
/// letter or at the end of the text ("…and so on, etc. Then…").
const SOFT_ABBREVIATIONS: &[&str] = &[
    "etc", "approx", "ca", "incl", "esp", "fig", "vol", "ch", "no", "nos", "pp", "jr", "inc",
    "ltd", "co", "corp", "bzw", "usw", "ggf", "стр", "рис", "др", "пр", "гг", "вв", "тыс", "млн",
    "млрд",
];

/// Whether `word` (one word as the recogniser wrote it) ends a sentence, given the word after it (`None`: the end
/// of the text): at [`SENTENCE_END`] marks, except a full stop
/// - before a word that starts in lower case or with a digit ("5 p.m. today", "No. 5");
/// - after a title, an initial or an abbreviation that stands inside sentences ("Mr.", "F.", "vs.", "e.g.");
/// - after another abbreviation or a dotted acronym ("etc.", "U.S."), unless a capital follows or nothing does.
pub(crate) fn ends_sentence(word: &str, next: Option<&str>) -> bool {
    let t = word.trim().trim_end_matches(|c| CLOSERS.contains(c));
    if !t.chars().last().is_some_and(|c| SENTENCE_END.contains(c)) {
        return false;
    }
    if !t.ends_with('.') || t.ends_with("..") {
        return true;
    }
    // The next word's first letter or digit, past any opening quote or bracket.
    let next_first = next.and_then(|n| {
        n.trim_start()
            .trim_start_matches(|c| OPENERS.contains(c))
            .chars()
            .next()
    });
    if next_first.is_some_and(|c| c.is_lowercase() || c.is_ascii_digit()) {
        return false;
    }
    let stem = t
        .trim_end_matches('.')
        .trim_start_matches(|c| OPENERS.contains(c));
    let lower = stem.to_lowercase();
    let mut letters = stem.chars();
    // A single capital is an initial ("John F. Kennedy"), except the pronoun ("So do I.").
    let initial =
        matches!((letters.next(), letters.next()), (Some(c), None) if c.is_uppercase() && c != 'I');
    if initial || TITLES.contains(&lower.as_str()) || NEVER_LAST.contains(&lower.as_str()) {
        return false;
    }
    let dotted = stem.contains('.')
        && stem
            .split('.')
            .all(|p| p.chars().count() <= 2 && !p.is_empty());
    if dotted || SOFT_ABBREVIATIONS.contains(&lower.as_str()) {
        return next_first.is_none_or(|c| c.is_uppercase());
    }
    true
}

/// Lower-cased word without surrounding punctuation.
fn core_word(token: &str) -> String {
    token
        .trim_start_matches(|c| OPENERS.contains(c))
        .trim_end_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
}

pub(crate) fn is_function_word(token: &str) -> bool {
    let last = token.chars().last().unwrap_or(' ');
    // A word followed by punctuation ("for you," / "the end.") does not dangle.
    last.is_alphanumeric() && FUNCTION_WORDS.contains(&core_word(token).as_str())
}

fn is_unit(token: &str) -> bool {
    let t = token
        .trim_end_matches([',', '.', ';', ':', '!', '?'])
        .to_lowercase();
    let t = if t.is_empty() {
        token.to_lowercase()
    } else {
        t
    };
    UNITS.contains(&t.as_str()) || t.starts_with('%') || t.starts_with('°')
}

fn ends_with_digit(token: &str) -> bool {
    token.chars().last().is_some_and(|c| c.is_ascii_digit())
}

fn is_capitalised(token: &str) -> bool {
    let t = token.trim_start_matches(|c| OPENERS.contains(c));
    let mut chars = t.chars();
    chars.next().is_some_and(char::is_uppercase) && t.chars().any(char::is_lowercase)
        || t.len() > 1 && t.chars().all(char::is_uppercase) && t.chars().all(char::is_alphabetic)
}

/// Classifies a break between `left` (everything before it; only its last two tokens matter) and `right`
/// (everything after it; only its first token matters).
pub(crate) fn classify_break(left: &str, right: &str) -> BreakKind {
    let mut tokens = left.split_whitespace().rev();
    let Some(last) = tokens.next() else {
        return BreakKind::Plain;
    };
    let prev = tokens.next();
    let next = right.split_whitespace().next().unwrap_or("");
    let bare = last.trim_end_matches(|c| CLOSERS.contains(c));
    let end = bare.chars().last().unwrap_or(' ');
    if SENTENCE_END.contains(end) {
        let lower = bare.to_lowercase();
        let letters: Vec<char> = bare.chars().filter(|c| c.is_alphabetic()).collect();
        let initial = letters.len() == 1 && letters[0].is_uppercase() && bare.ends_with('.');
        if ABBREVIATIONS.contains(&lower.as_str()) || initial && is_capitalised(next) {
            return BreakKind::Name;
        }
        return BreakKind::Sentence;
    }
    if CLAUSE_END.contains(end) {
        return BreakKind::Clause;
    }
    if ends_with_digit(bare) && is_unit(next) {
        return BreakKind::NumberUnit;
    }
    if is_function_word(last) {
        return BreakKind::Dangling;
    }
    let sentence_initial = prev.is_some_and(|p| {
        let p = p.trim_end_matches(|c| CLOSERS.contains(c));
        p.chars().last().is_some_and(|c| SENTENCE_END.contains(c))
    });
    if is_capitalised(last)
        && last.chars().last().is_some_and(char::is_alphanumeric)
        && is_capitalised(next)
        && !sentence_initial
        && last != "I"
    {
        return BreakKind::Name;
    }
    if starts_phrase(next) {
        return BreakKind::Phrase;
    }
    BreakKind::Plain
}

/// If ending a line with `left` before `right` is a break lint should flag, a short description of why.
pub(crate) fn bad_line_break(left: &str, right: &str) -> Option<String> {
    let last = left.split_whitespace().last()?;
    match classify_break(left, right) {
        BreakKind::Dangling => Some(format!(
            "ends with {:?}, which belongs with the next line",
            core_word(last)
        )),
        BreakKind::NumberUnit => {
            let next = right.split_whitespace().next().unwrap_or("");
            Some(format!("splits {:?} from its unit {:?}", last, next))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_punctuation() {
        assert_eq!(count_words("Hello, world - again!"), 3);
        assert!(is_punct_only(" ,"));
        assert!(is_punct_only("..."));
        assert!(!is_punct_only(" 5"));
        assert!(is_opening_punct(" \""));
        assert!(!is_opening_punct(" ,"));
        assert_eq!(collapse_ws("  a \n b\t c "), "a b c");
    }

    #[test]
    fn break_kinds() {
        use BreakKind::*;
        assert_eq!(classify_break("Hello there.", "How"), Sentence);
        assert_eq!(classify_break("And so,", "my"), Clause);
        assert_eq!(classify_break("ask not what your", "country"), Dangling);
        assert_eq!(classify_break("for the", "house"), Dangling);
        assert_eq!(classify_break("я живу в", "Москве"), Dangling);
        assert_eq!(classify_break("I love New", "York"), Name);
        assert_eq!(classify_break("said John", "Kennedy"), Name);
        assert_eq!(classify_break("said J.", "Kennedy"), Name);
        assert_eq!(classify_break("Mr.", "Smith"), Name);
        assert_eq!(classify_break("it is over. Then", "John"), Plain);
        assert_eq!(classify_break("it weighs 5", "kg"), NumberUnit);
        assert_eq!(classify_break("up 10", "percent."), NumberUnit);
        assert_eq!(classify_break("we went", "home"), Plain);
        assert_eq!(classify_break("a better place", "for"), Phrase);
        assert_eq!(classify_break("the people", "who"), Phrase);
        assert_eq!(classify_break("what you can do for you,", "ask"), Clause);
    }

    #[test]
    fn lint_breaks() {
        assert!(bad_line_break("what your", "country").is_some());
        assert!(bad_line_break("for you,", "ask").is_none());
        assert!(
            bad_line_break("New", "York").is_none(),
            "names are not linted (too many false positives)"
        );
    }
}
