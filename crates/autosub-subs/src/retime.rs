//! Timing-aware translation support: source words are merged into sentences before translation, and a
//! translated sentence gets word timings spread over the source sentence's own timeline, so the ordinary
//! segmenter can cut it back into cues that obey the target profile inside the original time span.
//!
//! ```
//! use autosub_subs::{retime, segment, Profile, Word};
//! let w = |t: &str, s, e| Word { text: t.into(), start_ms: s, end_ms: e, prob: 1.0 };
//! let words = [w(" Hello", 0, 400), w(" world.", 500, 900), w(" Bye.", 2000, 2300)];
//! let sentences = retime::sentences(&words);
//! assert_eq!(sentences[0].text, "Hello world.");
//! let timed = retime::spread(&sentences[0], "Hallo Welt.");
//! assert_eq!(timed[0].start_ms, 0);
//! assert_eq!(timed.last().unwrap().end_ms, 900);
//! let cues = segment(&timed, &Profile::standard());
//! assert_eq!(cues[0].lines, vec!["Hallo Welt."]);
//! ```

use crate::text::{collapse_ws, ends_sentence, is_no_space_script};
use crate::{Cue, Word};

/// A pause this long ends a sentence even without punctuation.
pub const SENTENCE_PAUSE_MS: u64 = 1500;
/// A sentence is cut after this many words even without punctuation (translation requests stay small).
pub const MAX_SENTENCE_WORDS: usize = 60;

/// Source text to translate as one piece, with the words (and so the time span) it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Sentence {
    /// Words joined, whitespace collapsed and trimmed.
    pub text: String,
    pub words: Vec<Word>,
}

impl Sentence {
    pub fn start_ms(&self) -> u64 {
        self.words.first().map_or(0, |w| w.start_ms)
    }
    pub fn end_ms(&self) -> u64 {
        self.words.last().map_or(0, |w| w.end_ms)
    }
}

/// Groups words into sentences: a sentence ends at `.`, `!`, `?`, `…` (and CJK full stops) but not after a
/// title, an initial or an abbreviation inside the sentence (see `text::ends_sentence`), at a pause of
/// [`SENTENCE_PAUSE_MS`] or more, or after [`MAX_SENTENCE_WORDS`] words.
pub fn sentences(words: &[Word]) -> Vec<Sentence> {
    let mut out: Vec<Sentence> = Vec::new();
    let mut cur: Vec<Word> = Vec::new();
    let flush = |cur: &mut Vec<Word>, out: &mut Vec<Sentence>| {
        let text = collapse_ws(&cur.iter().map(|w| w.text.as_str()).collect::<String>());
        if !text.is_empty() {
            out.push(Sentence {
                text,
                words: std::mem::take(cur),
            });
        } else {
            cur.clear();
        }
    };
    for (i, w) in words.iter().enumerate() {
        if let Some(prev) = cur.last() {
            if w.start_ms.saturating_sub(prev.end_ms) >= SENTENCE_PAUSE_MS {
                flush(&mut cur, &mut out);
            }
        }
        cur.push(w.clone());
        let next = words.get(i + 1).map(|n| n.text.as_str());
        if ends_sentence(&w.text, next) || cur.len() >= MAX_SENTENCE_WORDS {
            flush(&mut cur, &mut out);
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// Words for cues that carry none (parsed SRT/VTT/ASS): each cue's visible words (markup removed, see
/// [`crate::visible_text`]) spread evenly over its time.
pub fn words_of_cues(cues: &[Cue]) -> Vec<Word> {
    let mut out = Vec::new();
    for c in cues {
        if !c.words.is_empty() {
            out.extend(c.words.iter().cloned());
            continue;
        }
        let text = c.visible_text();
        out.extend(spread_over(&text, c.start_ms, c.end_ms, &[]));
    }
    out
}

/// The translation `translated` of `sentence` as words, each timed at the point of the source sentence's
/// timeline that corresponds to its position in the text (by characters): a translation keeps the rhythm of
/// the speech it replaces, and pauses inside the sentence stay where they were.
pub fn spread(sentence: &Sentence, translated: &str) -> Vec<Word> {
    spread_over(
        translated,
        sentence.start_ms(),
        sentence.end_ms(),
        &sentence.words,
    )
}

/// Splits `text` into words (characters for scripts written without spaces) timed over `[start, end]`,
/// following `timeline` (source words) when given, else evenly.
fn spread_over(text: &str, start: u64, end: u64, timeline: &[Word]) -> Vec<Word> {
    let text = collapse_ws(text);
    if text.is_empty() {
        return Vec::new();
    }
    let end = end.max(start);
    // Words at spaces, each with the leading space Whisper's words have; a piece in a script written without
    // spaces (CJK, Thai) is cut into characters (units of their own for the segmenter), the first of which
    // keeps the space that separated it from a preceding word.
    // (text, whether a space precedes it in `text`)
    let mut pieces: Vec<(String, bool)> = Vec::new();
    for (i, w) in text.split(' ').enumerate() {
        if w.chars().any(is_no_space_script) {
            for (k, c) in w.chars().enumerate() {
                let space = k == 0 && i > 0;
                pieces.push((
                    if space {
                        format!(" {c}")
                    } else {
                        c.to_string()
                    },
                    space,
                ));
            }
        } else {
            pieces.push((format!(" {w}"), i > 0));
        }
    }
    let spaces = text.matches(' ').count() as f64;
    // Source timeline: cumulative character positions of the source words and their times.
    let src: Vec<(f64, f64, u64, u64)> = {
        let mut acc = 0.0;
        let mut v = Vec::new();
        for w in timeline {
            let n = w.text.trim().chars().count().max(1) as f64;
            v.push((acc, acc + n, w.start_ms, w.end_ms.max(w.start_ms)));
            acc += n + 1.0;
        }
        v
    };
    let src_total = src.last().map_or(0.0, |s| s.1);
    let time_at = |frac: f64| -> u64 {
        let frac = frac.clamp(0.0, 1.0);
        if src.is_empty() || src_total <= 0.0 {
            return start + ((end.saturating_sub(start)) as f64 * frac).round() as u64;
        }
        let p = frac * src_total;
        // In a word: interpolate inside it; between words: the gap maps to the pause.
        for (i, &(a, b, s, e)) in src.iter().enumerate() {
            if p <= b {
                if p < a {
                    let prev_end = if i == 0 { s } else { src[i - 1].3 };
                    return prev_end.max(start);
                }
                let f = if b > a { (p - a) / (b - a) } else { 0.0 };
                return s + ((e - s) as f64 * f).round() as u64;
            }
        }
        end
    };
    let total: f64 = pieces
        .iter()
        .map(|(p, _)| p.trim().chars().count().max(1) as f64)
        .sum::<f64>()
        + spaces;
    let mut pos = 0.0;
    let mut out = Vec::with_capacity(pieces.len());
    for (piece, space) in pieces {
        if space {
            pos += 1.0;
        }
        let n = piece.trim().chars().count().max(1) as f64;
        let s = time_at(pos / total).max(start).min(end);
        let e = time_at((pos + n) / total).max(s).min(end);
        out.push(Word {
            text: piece,
            start_ms: s,
            end_ms: e,
            prob: f32::NAN,
        });
        pos += n;
    }
    // Round to the 10 ms grid the segmenter keeps (Whisper's word times are on it).
    for w in &mut out {
        w.start_ms = w.start_ms / 10 * 10;
        w.end_ms = (w.end_ms.div_ceil(10) * 10).max(w.start_ms);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(t: &str, s: u64, e: u64) -> Word {
        Word {
            text: t.into(),
            start_ms: s,
            end_ms: e,
            prob: 1.0,
        }
    }

    #[test]
    fn sentences_end_at_punctuation_pauses_and_length() {
        let words = [
            w(" One", 0, 200),
            w(" two.", 300, 500),
            w(" Three", 600, 800),
            w(" four", 3000, 3200),
            w(" five?\"", 3300, 3500),
        ];
        let s = sentences(&words);
        let texts: Vec<&str> = s.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, vec!["One two.", "Three", "four five?\""]);
        assert_eq!((s[2].start_ms(), s[2].end_ms()), (3000, 3500));
        let many: Vec<Word> = (0..130).map(|i| w(" x", i * 100, i * 100 + 50)).collect();
        let s = sentences(&many);
        assert_eq!(
            s.iter().map(|s| s.words.len()).collect::<Vec<_>>(),
            vec![60, 60, 10]
        );
    }

    fn texts(line: &str) -> Vec<String> {
        let words: Vec<Word> = line
            .split(' ')
            .enumerate()
            .map(|(i, t)| w(&format!(" {t}"), i as u64 * 300, i as u64 * 300 + 200))
            .collect();
        sentences(&words).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn titles_initials_and_abbreviations_do_not_end_sentences() {
        assert_eq!(
            texts("Mr. Quilter is the apostle of the middle classes. He is."),
            [
                "Mr. Quilter is the apostle of the middle classes.",
                "He is."
            ]
        );
        assert_eq!(
            texts("John F. Kennedy spoke to Dr. Watson in St. Louis."),
            ["John F. Kennedy spoke to Dr. Watson in St. Louis."]
        );
        assert_eq!(
            texts("Bring tools, e.g. a hammer, etc. and come at 5 p.m. today. Thanks!"),
            [
                "Bring tools, e.g. a hammer, etc. and come at 5 p.m. today.",
                "Thanks!"
            ]
        );
        // An abbreviation before a capital, or last, still ends its sentence.
        assert_eq!(
            texts("We met in the U.S. Then we left, etc."),
            ["We met in the U.S.", "Then we left, etc."]
        );
        assert_eq!(
            texts("Это т.е. пример. Проф. Иванов пришёл. Вот и всё..."),
            ["Это т.е. пример.", "Проф. Иванов пришёл.", "Вот и всё..."]
        );
        assert_eq!(
            texts("Kramer vs. Kramer, i.e. Hollywood. So do I. We met in the U.S. «Потом"),
            [
                "Kramer vs. Kramer, i.e. Hollywood.",
                "So do I.",
                "We met in the U.S.",
                "«Потом"
            ]
        );
        // Ordinary full stops, and other enders, are not affected.
        assert_eq!(
            texts("It is done. Go! Why? (Yes.) No."),
            ["It is done.", "Go!", "Why?", "(Yes.)", "No."]
        );
    }

    #[test]
    fn translation_follows_the_source_timeline() {
        // "Hello" 0-1000, a pause, "world" 3000-4000.
        let sentence = Sentence {
            text: "Hello world".into(),
            words: vec![w(" Hello", 0, 1000), w(" world", 3000, 4000)],
        };
        let t = spread(&sentence, "Bonjour le monde");
        let texts: Vec<&str> = t.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(texts, vec![" Bonjour", " le", " monde"]);
        assert_eq!(t[0].start_ms, 0);
        assert_eq!(t[2].end_ms, 4000);
        // "monde" starts past the middle of the text, so inside the second source word's time.
        assert!(t[2].start_ms >= 3000, "{t:?}");
        assert!(t
            .windows(2)
            .all(|p| p[0].start_ms <= p[1].start_ms && p[0].end_ms <= p[1].end_ms));
    }

    #[test]
    fn no_space_scripts_are_split_into_characters() {
        let sentence = Sentence {
            text: "Good morning".into(),
            words: vec![w(" Good", 0, 500), w(" morning", 500, 1000)],
        };
        let t = spread(&sentence, "早上好");
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].text, "早");
        assert_eq!((t[0].start_ms, t[2].end_ms), (0, 1000));
    }

    #[test]
    fn mixed_scripts_and_reversed_times_do_not_break() {
        let sentence = Sentence {
            text: "Hello".into(),
            words: vec![w(" Hello", 1500, 1400)],
        };
        let t = spread(&sentence, "日本語の文です OK");
        assert_eq!(t.len(), 8, "{t:?}");
        assert_eq!(t[7].text, " OK");
        assert!(t.iter().all(|w| w.start_ms <= w.end_ms));
    }

    #[test]
    fn cues_without_words_are_spread_evenly() {
        let cues = [Cue::new(
            1000,
            3000,
            vec![
                "a <i>b</i>".into(),
                "<font color=\"#ff0000\">c</font> d".into(),
            ],
        )];
        let words = words_of_cues(&cues);
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(
            texts,
            [" a", " b", " c", " d"],
            "no markup reaches translation"
        );
        assert_eq!(words[0].start_ms, 1000);
        assert_eq!(words[3].end_ms, 3000);
        assert!(spread_over("   ", 0, 10, &[]).is_empty());
    }
}
