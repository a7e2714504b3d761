//! Share of cues within their profile, measured on real recognised words.
//!
//! ```text
//! cargo run -p autosub-subs --example profile_share -- [-v] FILE.json...
//! ```
//!
//! Every FILE is an AutoSub JSON document (`autosub transcribe`) or a word list in the corpus's
//! `*.words.json` layout (`{"words": [{"word", "start_sec", "end_sec", "confidence"}]}`). Its words are cut
//! again with the `standard` and `shorts` profiles, the cues linted against the same profile, and the example
//! prints, per profile and file and in total: cues, cues without any violation, cues without `too-fast`, and
//! the too-fast cues that the following gap would have allowed to get their reading time ("fixable": the next
//! cue starts at least the required duration plus the minimum gap after the cue's start, and the required
//! duration fits the maximum duration). `-v` prints every violation.

use std::collections::BTreeMap;
use std::process::ExitCode;

use autosub_subs::{lint, parse_json, segment, Cue, Profile, Rule, Word};

fn main() -> ExitCode {
    let mut verbose = false;
    let mut files = Vec::new();
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "-v" | "--verbose" => verbose = true,
            "-h" | "--help" => {
                eprintln!("usage: profile_share [-v] FILE.json...");
                return ExitCode::SUCCESS;
            }
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        eprintln!("usage: profile_share [-v] FILE.json...");
        return ExitCode::from(2);
    }
    let mut inputs = Vec::new();
    for f in &files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{f}: {e}");
                return ExitCode::from(1);
            }
        };
        match read_words(&text) {
            Ok(words) => inputs.push((short_name(f), words)),
            Err(e) => {
                eprintln!("{f}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    for profile in [Profile::standard(), Profile::shorts()] {
        println!("== profile {} ==", profile.name);
        println!(
            "{:<40} {:>5} {:>6} {:>7} {:>9} {:>8}",
            "file", "cues", "clean", "no-fast", "too-fast", "fixable"
        );
        let mut total = Counts::default();
        let mut rules: BTreeMap<&'static str, usize> = BTreeMap::new();
        for (name, words) in &inputs {
            let cues = segment(words, &profile);
            let c = count(
                &cues,
                &profile,
                &mut rules,
                verbose.then_some(name.as_str()),
            );
            println!(
                "{:<40} {:>5} {:>6} {:>7} {:>9} {:>8}",
                name,
                c.cues,
                c.clean,
                c.cues - c.too_fast,
                c.too_fast,
                c.fixable
            );
            total.add(&c);
        }
        println!(
            "{:<40} {:>5} {:>6} {:>7} {:>9} {:>8}",
            "TOTAL",
            total.cues,
            total.clean,
            total.cues - total.too_fast,
            total.too_fast,
            total.fixable
        );
        let pct = |n: usize| 100.0 * n as f64 / total.cues.max(1) as f64;
        println!(
            "within profile (no violation): {}/{} = {:.1} %; without too-fast: {}/{} = {:.1} %; \
             too-fast with room in the gap: {}",
            total.clean,
            total.cues,
            pct(total.clean),
            total.cues - total.too_fast,
            total.cues,
            pct(total.cues - total.too_fast),
            total.fixable
        );
        let rules: Vec<String> = rules.iter().map(|(r, n)| format!("{r} {n}")).collect();
        println!("violations by rule: {}\n", rules.join(", "));
    }
    ExitCode::SUCCESS
}

#[derive(Default)]
struct Counts {
    cues: usize,
    clean: usize,
    too_fast: usize,
    fixable: usize,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.cues += o.cues;
        self.clean += o.clean;
        self.too_fast += o.too_fast;
        self.fixable += o.fixable;
    }
}

fn count(
    cues: &[Cue],
    profile: &Profile,
    rules: &mut BTreeMap<&'static str, usize>,
    verbose: Option<&str>,
) -> Counts {
    let violations = lint(cues, profile);
    let mut bad = vec![false; cues.len()];
    let mut fast = vec![false; cues.len()];
    for v in &violations {
        bad[v.cue - 1] = true;
        *rules.entry(v.rule.id()).or_default() += 1;
        if v.rule == Rule::TooFast {
            fast[v.cue - 1] = true;
        }
        if let Some(name) = verbose {
            println!("  {name}: {v}  {:?}", cues[v.cue - 1].lines);
        }
    }
    let fixable = (0..cues.len())
        .filter(|&i| fast[i] && room_in_gap(cues, i, profile))
        .count();
    Counts {
        cues: cues.len(),
        clean: bad.iter().filter(|b| !**b).count(),
        too_fast: fast.iter().filter(|b| **b).count(),
        fixable,
    }
}

/// Whether cue `i` could end late enough for its reading speed without moving the next cue.
fn room_in_gap(cues: &[Cue], i: usize, profile: &Profile) -> bool {
    let c = &cues[i];
    let chars = c.lines.iter().map(|l| l.chars().count()).sum::<usize>() + c.lines.len() - 1;
    let need = profile.required_duration_ms(chars);
    if need > profile.max_duration_ms {
        return false;
    }
    match cues.get(i + 1) {
        Some(next) => next.start_ms >= c.start_ms + need + profile.min_gap_ms,
        None => true,
    }
}

/// Words of an AutoSub JSON document, or of a corpus `*.words.json` word list.
fn read_words(text: &str) -> Result<Vec<Word>, String> {
    match parse_json(text) {
        Ok(doc) => Ok(doc.words),
        Err(doc_err) => {
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
            let list = v
                .get("words")
                .and_then(|w| w.as_array())
                .ok_or_else(|| doc_err.to_string())?;
            list.iter()
                .map(|w| {
                    let text = w.get("word").and_then(|t| t.as_str());
                    let start = w.get("start_sec").and_then(|t| t.as_f64());
                    let end = w.get("end_sec").and_then(|t| t.as_f64());
                    match (text, start, end) {
                        (Some(t), Some(s), Some(e)) => Ok(Word {
                            text: format!(" {}", t.trim()),
                            start_ms: (s * 1000.0).round() as u64,
                            end_ms: (e * 1000.0).round() as u64,
                            prob: w.get("confidence").and_then(|c| c.as_f64()).unwrap_or(1.0)
                                as f32,
                        }),
                        _ => Err(format!("not a word: {w}")),
                    }
                })
                .collect()
        }
    }
}

fn short_name(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}
