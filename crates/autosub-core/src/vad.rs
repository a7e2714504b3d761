//! Voice-activity detection by adaptive energy thresholds, and the packing of speech into recogniser chunks.
//!
//! Whisper's classic failures (text invented over silence, repeated lines after a pause, timestamps drifting after
//! a long pause) all come from feeding it long stretches without speech. So the recogniser only sees speech:
//! [`detect_speech`] finds the spans with speech, a [`Chunk`] puts them end to end with the silences between them
//! cut out, and [`Chunk::to_source_ms`] maps times back to the original timeline. [`VoiceMap::refine_words`]
//! then tightens word timings to the voiced frames.
//! Pure functions over samples: no I/O.

use crate::media::SAMPLE_RATE;

/// How far [`VoiceMap::refine_words`] may move a word's start forward, out of silence.
pub const MAX_START_SHIFT_MS: u64 = 700;

/// Frames quieter than this are digital silence, not a recording's noise floor.
const DIGITAL_SILENCE_DBFS: f32 = -90.0;

/// Tunables of the detector. Defaults are chosen to err on the side of keeping speech: a missed word is worse than
/// a little silence.
#[derive(Clone, Debug)]
pub struct VadOptions {
    /// Analysis frame length.
    pub frame_ms: u32,
    /// A frame is speech when its energy is this many dB above the noise floor...
    pub threshold_db: f32,
    /// ...and above this absolute level (dBFS); quieter audio is silence whatever the floor.
    pub min_level_dbfs: f32,
    /// Speech shorter than this is a click, not speech.
    pub min_speech_ms: u32,
    /// Silences shorter than this do not split speech.
    pub min_silence_ms: u32,
    /// Margin kept around each speech span.
    pub pad_ms: u32,
}

impl Default for VadOptions {
    fn default() -> Self {
        VadOptions {
            frame_ms: 20,
            threshold_db: 12.0,
            min_level_dbfs: -55.0,
            min_speech_ms: 120,
            min_silence_ms: 600,
            pad_ms: 400,
        }
    }
}

/// A span of the source audio, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start_ms: u64,
    pub end_ms: u64,
}

impl Span {
    pub fn len_ms(&self) -> u64 {
        self.end_ms - self.start_ms
    }
}

/// Frame energies in dBFS.
fn frame_energies(samples: &[f32], frame: usize) -> Vec<f32> {
    samples
        .chunks(frame)
        .map(|c| {
            let e = c.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>() / c.len() as f64;
            (10.0 * (e + 1e-12).log10()) as f32
        })
        .collect()
}

fn percentile(sorted: &[f32], p: f32) -> f32 {
    if sorted.is_empty() {
        return -120.0;
    }
    let i = ((sorted.len() - 1) as f32 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Which analysis frames are voiced, by the adaptive threshold of [`VadOptions`].
#[derive(Clone, Debug, Default)]
pub struct VoiceMap {
    pub frame_ms: u64,
    pub voiced: Vec<bool>,
}

impl VoiceMap {
    /// Classifies every frame of `samples` (16 kHz mono).
    pub fn new(samples: &[f32], opts: &VadOptions) -> Self {
        let frame = (SAMPLE_RATE * opts.frame_ms / 1000) as usize;
        if samples.is_empty() || frame == 0 {
            return VoiceMap::default();
        }
        let energies = frame_energies(samples, frame);
        let mut sorted = energies.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        // Noise floor: a low percentile. In dense speech the quietest 10 % are the pauses between words. Digital
        // silence (inserted gaps, padding) says nothing about the recording's own noise: leave it out.
        let audible: Vec<f32> = sorted
            .iter()
            .copied()
            .filter(|e| *e > DIGITAL_SILENCE_DBFS)
            .collect();
        let floor = if audible.is_empty() {
            percentile(&sorted, 0.10)
        } else {
            percentile(&audible, 0.10)
        };
        let peak = percentile(&sorted, 0.99);
        // Threshold: well above the floor, but never so high that the loud half of the file would be missed, and
        // never below the absolute minimum level.
        let threshold = (floor + opts.threshold_db)
            .min(peak - 20.0)
            .max(opts.min_level_dbfs);
        VoiceMap {
            frame_ms: opts.frame_ms as u64,
            voiced: energies.iter().map(|e| *e > threshold).collect(),
        }
    }

    /// Whether any frame between `start_ms` and `end_ms` is voiced.
    pub fn has_voice(&self, start_ms: u64, end_ms: u64) -> bool {
        if self.frame_ms == 0 {
            return false;
        }
        let a = (start_ms / self.frame_ms) as usize;
        let b = (end_ms.div_ceil(self.frame_ms) as usize).min(self.voiced.len());
        a < b && self.voiced[a..b].iter().any(|v| *v)
    }

    /// Milliseconds of voiced frames between `start_ms` and `end_ms`.
    pub fn voiced_ms(&self, start_ms: u64, end_ms: u64) -> u64 {
        if self.frame_ms == 0 {
            return 0;
        }
        let a = ((start_ms / self.frame_ms) as usize).min(self.voiced.len());
        let b = (end_ms.div_ceil(self.frame_ms) as usize).min(self.voiced.len());
        if a >= b {
            return 0;
        }
        self.voiced[a..b].iter().filter(|v| **v).count() as u64 * self.frame_ms
    }

    fn is_voiced_at(&self, ms: u64) -> bool {
        self.frame_ms > 0
            && self
                .voiced
                .get((ms / self.frame_ms) as usize)
                .copied()
                .unwrap_or(false)
    }

    /// Tightens word timings to the audio: a word whose start lies in silence starts at the first voiced frame
    /// within [`MAX_START_SHIFT_MS`] (and before the next word); a word whose end lies in silence ends after the last voiced frame
    /// within its last 500 ms. Whisper's token timestamps are often early after a pause and run on into the pause
    /// that follows. Never reorders words and never moves a start past the next word's start.
    pub fn refine_words(&self, words: &mut [autosub_subs::Word]) {
        if self.frame_ms == 0 {
            return;
        }
        let f = self.frame_ms;
        for i in 0..words.len() {
            let next_start = words.get(i + 1).map_or(u64::MAX, |n| n.start_ms);
            let w = &mut words[i];
            let dur = w.end_ms.saturating_sub(w.start_ms);
            if !self.is_voiced_at(w.start_ms) {
                let limit = (w.start_ms + MAX_START_SHIFT_MS).min(next_start);
                let mut t = (w.start_ms / f + 1) * f;
                while t < limit && !self.is_voiced_at(t) {
                    t += f;
                }
                if t < limit {
                    w.start_ms = t;
                    // A word that would now end before it starts moves as a whole, keeping its length.
                    if w.end_ms < t + f {
                        w.end_ms = (t + dur.max(f)).min(next_start).max(t + 1);
                    }
                }
            }
            // Whisper sometimes puts a word after the pause that follows it: the voice between the previous
            // word's end and a silence is then nobody's. If at least 300 ms of voice there is unclaimed, the word
            // was said there.
            if i > 0 {
                let prev_end = words[i - 1].end_ms;
                let w = &mut words[i];
                if w.start_ms > prev_end + 300 && self.is_voiced_at(prev_end) {
                    // The voiced run after the previous word, bridging dips shorter than 120 ms between syllables.
                    let mut t = prev_end;
                    let mut last_voiced = prev_end;
                    while t < w.start_ms && t < last_voiced + 120 {
                        if self.is_voiced_at(t) {
                            last_voiced = t + f;
                        }
                        t += f;
                    }
                    let silence_from = last_voiced;
                    // The silence after it, up to the next voice of at least 3 frames (a click is not voice).
                    let mut t = silence_from;
                    while t < w.start_ms
                        && !(self.is_voiced_at(t)
                            && self.is_voiced_at(t + f)
                            && self.is_voiced_at(t + 2 * f))
                    {
                        t += f;
                    }
                    if silence_from >= prev_end + 300
                        && t - silence_from >= 200
                        && silence_from < w.start_ms
                    {
                        w.start_ms = prev_end;
                        w.end_ms = w.end_ms.min(silence_from).max(prev_end + f);
                    }
                }
            }
            let w = &mut words[i];
            if w.end_ms > w.start_ms + 2 * f && !self.is_voiced_at(w.end_ms.saturating_sub(1)) {
                let floor = w.start_ms.max(w.end_ms.saturating_sub(500)) + f;
                let mut t = (w.end_ms.saturating_sub(1) / f) * f;
                while t > floor && !self.is_voiced_at(t) {
                    t -= f;
                }
                if t > floor {
                    w.end_ms = (t + f).min(w.end_ms);
                }
            }
        }
    }
}

/// Finds the spans of `samples` (16 kHz mono) that hold speech (or anything loud enough to be speech).
pub fn detect_speech(samples: &[f32], opts: &VadOptions) -> Vec<Span> {
    spans_of(&VoiceMap::new(samples, opts), samples.len(), opts)
}

/// Speech spans of a voice map over `n_samples` samples.
pub fn spans_of(map: &VoiceMap, n_samples: usize, opts: &VadOptions) -> Vec<Span> {
    let voiced = &map.voiced;
    // Runs of voiced frames -> spans; bridge short silences; drop clicks; pad.
    let fms = opts.frame_ms as u64;
    let mut raw: Vec<Span> = Vec::new();
    let mut i = 0;
    while i < voiced.len() {
        if voiced[i] {
            let s = i;
            while i < voiced.len() && voiced[i] {
                i += 1;
            }
            raw.push(Span {
                start_ms: s as u64 * fms,
                end_ms: i as u64 * fms,
            });
        } else {
            i += 1;
        }
    }
    let mut merged: Vec<Span> = Vec::new();
    for s in raw {
        match merged.last_mut() {
            Some(last) if s.start_ms - last.end_ms < opts.min_silence_ms as u64 => {
                last.end_ms = s.end_ms
            }
            _ => merged.push(s),
        }
    }
    let total_ms = n_samples as u64 * 1000 / SAMPLE_RATE as u64;
    let mut out: Vec<Span> = Vec::new();
    for s in merged
        .into_iter()
        .filter(|s| s.len_ms() >= opts.min_speech_ms as u64)
    {
        let padded = Span {
            start_ms: s.start_ms.saturating_sub(opts.pad_ms as u64),
            end_ms: (s.end_ms + opts.pad_ms as u64).min(total_ms),
        };
        match out.last_mut() {
            Some(last) if padded.start_ms <= last.end_ms => last.end_ms = padded.end_ms,
            _ => out.push(padded),
        }
    }
    out
}

/// Groups speech spans into chunks: a new chunk starts after a silence of at least `long_silence_ms`.
pub fn group_spans(spans: &[Span], long_silence_ms: u64) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    for s in spans {
        match out.last_mut() {
            Some(c)
                if c.pieces
                    .last()
                    .is_some_and(|p| s.start_ms < p.end_ms + long_silence_ms) =>
            {
                c.pieces.push(*s)
            }
            _ => out.push(Chunk { pieces: vec![*s] }),
        }
    }
    out
}

/// Where the recogniser window that starts at chunk time `start_ms` should end (chunk time, ms).
///
/// The rest of the chunk when it is at most `max_ms`. Otherwise the rest is shared out in windows of about equal
/// length, and the cut goes, within the first `max_ms` but not before a third of it, at the junction (a cut-out
/// silence) nearest the ideal point; without one, in the middle of the longest unvoiced stretch of `voice` (the
/// chunk's own voice map), nearest the ideal point among equals; without any pause, at `max_ms`. A cut that would
/// leave less than a second goes to the end instead. `max_ms` is at least a second.
pub fn window_end(chunk: &Chunk, voice: &VoiceMap, start_ms: u64, max_ms: u64) -> u64 {
    let len = chunk.len_ms();
    let rest = len.saturating_sub(start_ms);
    let max_ms = max_ms.max(1000);
    if rest <= max_ms {
        return len;
    }
    let cut = cut_point(chunk, voice, start_ms, max_ms, rest);
    // Never leave a tail too short to be worth a window of its own.
    if len - cut < 1000 {
        len
    } else {
        cut
    }
}

fn cut_point(chunk: &Chunk, voice: &VoiceMap, start_ms: u64, max_ms: u64, rest: u64) -> u64 {
    let ideal = start_ms + rest / rest.div_ceil(max_ms);
    let (lo, hi) = (start_ms + max_ms / 3, start_ms + max_ms);
    if let Some(j) = chunk
        .junctions()
        .into_iter()
        .filter(|j| (lo..=hi).contains(j))
        .min_by_key(|j| j.abs_diff(ideal))
    {
        return j;
    }
    // Unvoiced runs inside [lo, hi]: (length, middle).
    let f = voice.frame_ms.max(1);
    let mut best: Option<(u64, u64)> = None;
    let mut t = lo / f * f;
    while t < hi {
        if voice.is_voiced_at(t) || t >= voice.voiced.len() as u64 * f {
            t += f;
            continue;
        }
        let s = t;
        while t < hi && !voice.is_voiced_at(t) && t < voice.voiced.len() as u64 * f {
            t += f;
        }
        let cand = (t - s, (s + t) / 2);
        let better = match best {
            None => true,
            Some((l, m)) => {
                cand.0 > l || (cand.0 == l && cand.1.abs_diff(ideal) < m.abs_diff(ideal))
            }
        };
        if better {
            best = Some(cand);
        }
    }
    best.map_or(hi, |(_, mid)| mid.clamp(lo, hi))
}

/// Audio for the recogniser: pieces of the source placed end to end.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    /// Source spans, in order, that make up the chunk.
    pub pieces: Vec<Span>,
}

impl Chunk {
    pub fn len_ms(&self) -> u64 {
        self.pieces.iter().map(Span::len_ms).sum()
    }

    /// Source time of chunk time `t` (ms). Times inside a cut-out silence map to the end of the piece before it.
    pub fn to_source_ms(&self, t: u64) -> u64 {
        let mut offset = 0;
        for (i, p) in self.pieces.iter().enumerate() {
            let len = p.len_ms();
            if t < offset + len || i + 1 == self.pieces.len() {
                return (p.start_ms + (t - offset.min(t))).min(p.end_ms);
            }
            offset += len;
        }
        0
    }

    /// Source times of a chunk-time interval. An interval that straddles a junction between two pieces (which are
    /// apart in the source) is cut at the end of the piece its start is in.
    pub fn to_source_span(&self, start: u64, end: u64) -> (u64, u64) {
        let s = self.to_source_ms(start);
        let e = self.to_source_ms(end.max(start));
        let piece_end = self
            .pieces
            .iter()
            .find(|p| s >= p.start_ms && s <= p.end_ms)
            .map_or(e, |p| p.end_ms);
        (s, e.min(piece_end).max(s))
    }

    /// Copies the chunk's audio out of `samples`.
    pub fn samples(&self, samples: &[f32]) -> Vec<f32> {
        let ms = |m: u64| ((m * SAMPLE_RATE as u64 / 1000) as usize).min(samples.len());
        let mut out = Vec::with_capacity((self.len_ms() * SAMPLE_RATE as u64 / 1000) as usize);
        for p in &self.pieces {
            out.extend_from_slice(&samples[ms(p.start_ms)..ms(p.end_ms)]);
        }
        out
    }

    /// Chunk times (ms) where one piece ends and the next begins: where a silence was cut out.
    pub fn junctions(&self) -> Vec<u64> {
        let mut out = Vec::new();
        let mut t = 0;
        for p in &self.pieces[..self.pieces.len().saturating_sub(1)] {
            t += p.len_ms();
            out.push(t);
        }
        out
    }

    /// The part of the chunk (source time) a source-time interval overlaps, in ms.
    pub fn overlap_ms(&self, start: u64, end: u64) -> u64 {
        self.pieces
            .iter()
            .map(|p| end.min(p.end_ms).saturating_sub(start.max(p.start_ms)))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: u64, amp: f32) -> Vec<f32> {
        let n = (ms * SAMPLE_RATE as u64 / 1000) as usize;
        (0..n)
            .map(|i| {
                amp * (i as f32 * 2.0 * std::f32::consts::PI * 220.0 / SAMPLE_RATE as f32).sin()
            })
            .collect()
    }
    fn noise(ms: u64, amp: f32, seed: &mut u64) -> Vec<f32> {
        let n = (ms * SAMPLE_RATE as u64 / 1000) as usize;
        (0..n)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                amp * (((*seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5)
            })
            .collect()
    }

    #[test]
    fn digital_silence_has_no_speech() {
        assert!(detect_speech(&vec![0.0; 16000 * 10], &VadOptions::default()).is_empty());
    }

    #[test]
    fn quiet_noise_has_no_speech() {
        let mut seed = 1;
        let s = noise(10_000, 0.002, &mut seed);
        assert!(detect_speech(&s, &VadOptions::default()).is_empty());
    }

    #[test]
    fn bursts_in_noise_are_found_with_padding() {
        let mut seed = 7;
        let mut s = noise(3000, 0.003, &mut seed);
        s.extend(tone(2000, 0.3));
        s.extend(noise(5000, 0.003, &mut seed));
        s.extend(tone(1000, 0.3));
        s.extend(noise(2000, 0.003, &mut seed));
        let spans = detect_speech(&s, &VadOptions::default());
        assert_eq!(spans.len(), 2, "{spans:?}");
        assert!(
            spans[0].start_ms >= 2500 && spans[0].start_ms <= 3000,
            "{spans:?}"
        );
        assert!(
            spans[0].end_ms >= 5000 && spans[0].end_ms <= 5500,
            "{spans:?}"
        );
        assert!(
            spans[1].start_ms >= 9500 && spans[1].start_ms <= 10_000,
            "{spans:?}"
        );
    }

    #[test]
    fn short_pauses_do_not_split() {
        let mut s = tone(1000, 0.3);
        s.extend(vec![0.0; 16000 * 3 / 10]);
        s.extend(tone(1000, 0.3));
        assert_eq!(detect_speech(&s, &VadOptions::default()).len(), 1);
    }

    #[test]
    fn word_times_are_tightened_to_the_voice() {
        // 1 s silence, 1 s voice, 1 s silence.
        let mut s = vec![0.0; 16_000];
        s.extend(tone(1000, 0.3));
        s.extend(vec![0.0; 16_000]);
        let map = VoiceMap::new(&s, &VadOptions::default());
        let mut words = vec![autosub_subs::Word {
            text: " hi".into(),
            start_ms: 700,
            end_ms: 2400,
            prob: 1.0,
        }];
        map.refine_words(&mut words);
        assert!((1000..=1020).contains(&words[0].start_ms), "{words:?}");
        assert!((1980..=2020).contains(&words[0].end_ms), "{words:?}");
        assert!(map.has_voice(900, 1100) && !map.has_voice(100, 900) && !map.has_voice(2100, 2900));
        // A word entirely in voice is untouched.
        let mut inside = vec![autosub_subs::Word {
            text: " x".into(),
            start_ms: 1200,
            end_ms: 1500,
            prob: 1.0,
        }];
        map.refine_words(&mut inside);
        assert_eq!((inside[0].start_ms, inside[0].end_ms), (1200, 1500));
        // A very short word placed in the silence before the voice moves as a whole, before the next word.
        // A word Whisper put after the pause that follows it moves back into the unclaimed voice.
        let mut late = vec![
            autosub_subs::Word {
                text: " your".into(),
                start_ms: 1000,
                end_ms: 1300,
                prob: 1.0,
            },
            autosub_subs::Word {
                text: " country.".into(),
                start_ms: 2500,
                end_ms: 2600,
                prob: 1.0,
            },
        ];
        map.refine_words(&mut late);
        assert_eq!((late[1].start_ms, late[1].end_ms), (1300, 2000), "{late:?}");
        let mut short = vec![
            autosub_subs::Word {
                text: " and".into(),
                start_ms: 800,
                end_ms: 830,
                prob: 1.0,
            },
            autosub_subs::Word {
                text: " so".into(),
                start_ms: 1300,
                end_ms: 1500,
                prob: 1.0,
            },
        ];
        map.refine_words(&mut short);
        assert_eq!(
            (short[0].start_ms, short[0].end_ms),
            (1000, 1030),
            "{short:?}"
        );
    }

    #[test]
    fn digital_silence_does_not_lower_the_noise_floor() {
        // Hiss at about -46 dBFS around a tone, then inserted digital silence: the hiss is not speech.
        let mut seed = 3;
        let mut s = noise(2000, 0.03, &mut seed);
        s.extend(tone(1000, 0.3));
        s.extend(noise(2000, 0.03, &mut seed));
        s.extend(vec![0.0; 16_000 * 20]);
        let spans = detect_speech(&s, &VadOptions::default());
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert!(
            spans[0].start_ms >= 1500 && spans[0].end_ms <= 3500,
            "{spans:?}"
        );
    }

    fn span(start_ms: u64, end_ms: u64) -> Span {
        Span { start_ms, end_ms }
    }

    /// A voice map of `ms` milliseconds, voiced except in the given (start, end) pauses.
    fn voice_with_pauses(ms: u64, pauses: &[(u64, u64)]) -> VoiceMap {
        VoiceMap {
            frame_ms: 20,
            voiced: (0..ms / 20)
                .map(|i| !pauses.iter().any(|(a, b)| (*a..*b).contains(&(i * 20))))
                .collect(),
        }
    }

    #[test]
    fn short_chunks_are_one_window() {
        let c = Chunk {
            pieces: vec![span(0, 10_000), span(20_000, 30_000)],
        };
        let v = voice_with_pauses(20_000, &[]);
        assert_eq!(window_end(&c, &v, 0, 24_000), 20_000);
        assert_eq!(window_end(&c, &v, 5_000, 24_000), 20_000);
    }

    #[test]
    fn windows_are_cut_at_the_junction_nearest_an_even_share() {
        // 50 s of speech in five 10 s pieces: junctions at 10, 20, 30, 40 s. Two windows of at most 24 s would
        // be 25 s each: too long, so three windows of about 16.7 s; the junction nearest is 20 s.
        let c = Chunk {
            pieces: (0..5)
                .map(|i| span(i * 20_000, i * 20_000 + 10_000))
                .collect(),
        };
        assert_eq!(c.junctions(), vec![10_000, 20_000, 30_000, 40_000]);
        let v = voice_with_pauses(50_000, &[]);
        assert_eq!(window_end(&c, &v, 0, 24_000), 20_000);
        // From 20 s, 30 s are left: two windows of 15 s; the junctions at 30 and 40 s are as near, the first wins.
        assert_eq!(window_end(&c, &v, 20_000, 24_000), 30_000);
        assert_eq!(window_end(&c, &v, 30_000, 24_000), 50_000);
        // Junctions before a third of the window are not used: with one at 5 s only, the cut falls at the
        // longest pause in the voice map instead.
        let c = Chunk {
            pieces: vec![span(0, 5_000), span(10_000, 45_000)],
        };
        let v = voice_with_pauses(
            40_000,
            &[(17_000, 17_100), (21_000, 21_400), (23_000, 23_200)],
        );
        assert_eq!(window_end(&c, &v, 0, 24_000), 21_200);
    }

    #[test]
    fn continuous_speech_is_cut_at_the_maximum() {
        let c = Chunk {
            pieces: vec![span(0, 60_000)],
        };
        let v = voice_with_pauses(60_000, &[]);
        assert_eq!(window_end(&c, &v, 0, 24_000), 24_000);
        assert_eq!(window_end(&c, &v, 50_000, 24_000), 60_000);
        // 15.4 s without a pause: no 0.4 s tail window.
        let c = Chunk {
            pieces: vec![span(0, 15_400)],
        };
        let v = voice_with_pauses(15_400, &[]);
        assert_eq!(window_end(&c, &v, 0, 15_000), 15_400);
        // A zero maximum is taken as a second: the window still moves on.
        assert_eq!(window_end(&c, &v, 0, 0), 1_000);
    }

    #[test]
    fn voiced_time_is_counted_in_frames() {
        let v = voice_with_pauses(2_000, &[(500, 1_000)]);
        assert_eq!(v.voiced_ms(0, 2_000), 1_500);
        assert_eq!(v.voiced_ms(400, 1_100), 200);
        assert_eq!(v.voiced_ms(1_500, 9_000), 500);
        assert_eq!(v.voiced_ms(3_000, 4_000), 0);
    }

    #[test]
    fn long_silences_separate_groups() {
        let spans = [
            Span {
                start_ms: 0,
                end_ms: 1000,
            },
            Span {
                start_ms: 2000,
                end_ms: 3000,
            },
            Span {
                start_ms: 9000,
                end_ms: 9500,
            },
        ];
        let groups = group_spans(&spans, 3000);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].pieces.len(), 2);
        assert_eq!(groups[1].len_ms(), 500);
    }

    #[test]
    fn compacted_speech_maps_back_to_source_time() {
        let spans = [
            Span {
                start_ms: 0,
                end_ms: 10_000,
            },
            Span {
                start_ms: 40_000,
                end_ms: 55_000,
            },
            Span {
                start_ms: 60_000,
                end_ms: 70_000,
            },
        ];
        let samples = vec![0.1; 16 * 70_000];
        let chunk = Chunk {
            pieces: spans.to_vec(),
        };
        assert_eq!(chunk.len_ms(), 35_000);
        assert_eq!(chunk.to_source_ms(9_000), 9_000);
        assert_eq!(chunk.to_source_ms(12_000), 42_000);
        assert_eq!(chunk.to_source_ms(25_500), 60_500);
        assert_eq!(chunk.to_source_ms(99_000), 70_000);
        assert_eq!(chunk.samples(&samples).len(), 16 * 35_000);
        // A word across the junction of two pieces stays in the piece it starts in.
        assert_eq!(chunk.to_source_span(9_800, 10_300), (9_800, 10_000));
        assert_eq!(chunk.to_source_span(10_100, 10_300), (40_100, 40_300));
    }
}
