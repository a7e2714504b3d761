#![allow(dead_code)]

use autosub_subs::{Cue, Profile, Word};

pub fn w(text: &str, start_ms: u64, end_ms: u64) -> Word {
    Word {
        text: text.to_string(),
        start_ms,
        end_ms,
        prob: 0.9,
    }
}

/// Words of `sentence` spoken at `cps` characters per second from `start_ms`, 40 ms between words,
/// punctuation kept on its word.
pub fn speak(sentence: &str, start_ms: u64, cps: f64) -> Vec<Word> {
    let mut t = start_ms as f64;
    sentence
        .split_whitespace()
        .map(|tok| {
            let text = format!(" {tok}");
            let dur = text.chars().count() as f64 * 1000.0 / cps;
            let word = w(&text, t.round() as u64, (t + dur - 40.0).round() as u64);
            t += dur;
            word
        })
        .collect()
}

/// Deterministic xorshift generator (no extra deps).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.range(0.0, 1.0) < p
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Shortest time lint accepts for `cue` (minimum duration and reading speed, not rounded).
pub fn need_ms(cue: &Cue, p: &Profile) -> u64 {
    let chars = cue.visible_text().chars().count();
    ((chars as f64 * 1000.0 / p.max_cps).ceil() as u64).max(p.min_duration_ms)
}

/// Whether cue `i` could have had its time by ending later, the next cue where it is.
pub fn had_room(cues: &[Cue], i: usize, p: &Profile) -> bool {
    let c = &cues[i];
    let need = need_ms(c, p);
    need <= p.max_duration_ms
        && cues
            .get(i + 1)
            .is_none_or(|next| c.start_ms + need + p.min_gap_ms <= next.start_ms)
}
