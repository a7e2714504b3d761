//! The voice-over track: every cue's text spoken into its time slot, on one mono track as long as the video.
//!
//! Rules, per cue (cues are taken in time order):
//! * The speech starts at the cue's start: the engine's leading silence is trimmed (see [`dsp::speech_bounds`]).
//! * Longer than the cue: spoken again faster, at most [`VoiceoverOptions::max_speedup`] times the base rate.
//! * Still longer: it runs on into the silence after the cue, but never past the next cue's start minus
//!   [`VoiceoverOptions::gap_ms`] (nor the end of the track).
//! * Still longer: cut at the quietest point (a pause between words) before that limit, with a short fade; the
//!   report says how much was needed and how much there was ([`Fit::Cut`]).
//! * Every line is normalised to the same integrated loudness ([`loudness::integrated_lufs`], target
//!   [`VoiceoverOptions::target_lufs`]) and peak-limited below [`VoiceoverOptions::ceiling_dbfs`].
//!
//! The plan (slots, speed, what fits) is pure ([`slots`], [`speedup_for`], [`classify`]); [`build`] runs the engine
//! and assembles the track, and returns where the voice speaks ([`Voiceover::voiced`]) so a mixer can duck the
//! original audio there only.

use super::{dsp, loudness, Tts};
use crate::progress::{Event, Sink, Stage};
use crate::{Error, ErrorKind, Result};
use autosub_subs::Cue;

/// How the track is built.
#[derive(Clone, Debug)]
pub struct VoiceoverOptions {
    /// Sample rate of the track (48 kHz: what video audio uses).
    pub sample_rate: u32,
    /// Base speaking rate (1.0 normal).
    pub rate: f32,
    /// Most a line is sped up (over `rate`) to fit its cue.
    pub max_speedup: f32,
    /// Silence kept before the next cue's start.
    pub gap_ms: u64,
    /// Loudness every line is brought to.
    pub target_lufs: f64,
    /// Peaks are limited below this.
    pub ceiling_dbfs: f64,
    /// Fade applied where a line is cut.
    pub fade_ms: u64,
    /// Length of the track (the video's duration); `None`: the end of the last cue plus one second.
    pub length_ms: Option<u64>,
}

impl Default for VoiceoverOptions {
    fn default() -> Self {
        VoiceoverOptions {
            sample_rate: 48_000,
            rate: 1.0,
            max_speedup: 1.35,
            gap_ms: 40,
            target_lufs: -20.0,
            ceiling_dbfs: -1.0,
            fade_ms: 30,
            length_ms: None,
        }
    }
}

/// How a line was fitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Within the cue at the base rate.
    InSlot,
    /// Within the cue after speeding up.
    SpedUp,
    /// Longer than the cue even at the fastest rate, but ended before the limit (into the silence after it).
    IntoGap,
    /// Cut at the limit: see [`LineReport::needed_ms`] and [`LineReport::available_ms`].
    Cut,
    /// Nothing to say (no letters or digits), or no time at all.
    Silent,
    /// The engine failed or refused the text ([`LineReport::message`]); the cue is silent.
    Failed,
}

/// What happened to one cue.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LineReport {
    /// Index of the cue in the input.
    pub cue: usize,
    /// Where the speech is on the track (start = the cue's start); equal when silent.
    pub start_ms: u64,
    pub end_ms: u64,
    /// The cue's own duration (up to the limit).
    pub slot_ms: u64,
    /// Time up to the limit: the next cue's start minus the gap, or the end of the track.
    pub available_ms: u64,
    /// Length of the speech at the base rate (silence trimmed).
    pub natural_ms: u64,
    /// Length at the final rate, before any cut.
    pub needed_ms: u64,
    /// The rate it was spoken at (the base rate unless sped up).
    pub speed: f32,
    pub fit: Fit,
    /// How much was cut off (`needed_ms - (end_ms - start_ms)` for [`Fit::Cut`], else 0).
    pub cut_ms: u64,
    /// Gain applied to reach the target loudness.
    pub gain_db: f64,
    /// Integrated loudness of the line as placed on the track.
    pub loudness_lufs: Option<f64>,
    /// Why a line failed, or what was refused.
    pub message: Option<String>,
}

/// A span of time on the track.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Interval {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// The built track.
#[derive(Clone, Debug)]
pub struct Voiceover {
    /// Mono samples at `sample_rate`, the whole timeline.
    pub samples: Vec<f32>,
    pub sample_rate: u32,
    /// One report per cue, in input order.
    pub lines: Vec<LineReport>,
    /// Where the voice speaks (one interval per voiced line, in time order, never overlapping).
    pub voiced: Vec<Interval>,
}

impl Voiceover {
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / self.sample_rate as u64
    }
    /// The lines that had to be cut.
    pub fn overflows(&self) -> impl Iterator<Item = &LineReport> {
        self.lines.iter().filter(|l| l.fit == Fit::Cut)
    }
}

/// The time one cue's speech may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The cue's index in the input.
    pub cue: usize,
    pub start_ms: u64,
    /// The cue's end, at most `limit_ms`.
    pub end_ms: u64,
    /// Speech must end by here: the next cue's start minus `gap_ms` (never before `start_ms`), or `length_ms`.
    pub limit_ms: u64,
}

/// The slots of `cues` in time order (ties keep input order). Pure.
pub fn slots(cues: &[Cue], length_ms: u64, gap_ms: u64) -> Vec<Slot> {
    let mut order: Vec<usize> = (0..cues.len()).collect();
    order.sort_by_key(|&i| (cues[i].start_ms, i));
    order
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let start = cues[i].start_ms.min(length_ms);
            let next = order.get(k + 1).map_or(length_ms, |&j| {
                cues[j].start_ms.saturating_sub(gap_ms).min(length_ms)
            });
            let limit = next.max(start);
            Slot {
                cue: i,
                start_ms: start,
                end_ms: cues[i].end_ms.clamp(start, limit),
                limit_ms: limit,
            }
        })
        .collect()
}

/// The speed-up (over the base rate) that should make speech of `natural_ms` fit `slot_ms`, with 3 % to spare, at
/// most `max_speedup`; 1.0 when it fits already. Pure.
pub fn speedup_for(natural_ms: u64, slot_ms: u64, max_speedup: f32) -> f32 {
    if natural_ms <= slot_ms {
        return 1.0;
    }
    if slot_ms == 0 {
        return max_speedup.max(1.0);
    }
    ((natural_ms as f64 / slot_ms as f64 * 1.03) as f32).clamp(1.0, max_speedup.max(1.0))
}

/// How speech of `len_ms` (at `speedup` over the base rate) fits a slot of `slot_ms` with `available_ms` up to the
/// limit. Pure.
pub fn classify(len_ms: u64, slot_ms: u64, available_ms: u64, speedup: f32) -> Fit {
    if len_ms == 0 {
        Fit::Silent
    } else if len_ms > available_ms {
        Fit::Cut
    } else if len_ms > slot_ms {
        Fit::IntoGap
    } else if speedup > 1.0 + 1e-3 {
        Fit::SpedUp
    } else {
        Fit::InSlot
    }
}

fn ms_to_samples(ms: u64, rate: u32) -> usize {
    (ms * rate as u64 / 1000) as usize
}

fn samples_to_ms(n: usize, rate: u32) -> u64 {
    (n as u64 * 1000 + rate as u64 / 2) / rate as u64
}

/// Speaks `text` at `rate` and returns it at `out_rate`, silence trimmed, with 2 ms fades against clicks.
fn speak(tts: &dyn Tts, text: &str, rate: f32, out_rate: u32, sink: &dyn Sink) -> Result<Vec<f32>> {
    let s = tts.synthesize(text, rate, sink)?;
    let samples = dsp::resample(&s.samples, s.sample_rate, out_rate);
    let mut t = dsp::trim(&samples, out_rate);
    let edge = (out_rate as usize / 500).min(t.len() / 4);
    dsp::fade_in(&mut t, edge);
    dsp::fade_out(&mut t, edge);
    Ok(t)
}

/// Whether an engine error ends the whole track (cancelled, something missing) rather than one line.
fn fatal(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Cancelled | ErrorKind::MissingDependency
    )
}

/// Builds the voice-over track of `cues` with `tts` (see the module notes for the rules).
pub fn build(
    cues: &[Cue],
    tts: &dyn Tts,
    opts: &VoiceoverOptions,
    sink: &dyn Sink,
) -> Result<Voiceover> {
    if opts.sample_rate < 8000 || !opts.rate.is_finite() || !(1.0..=3.0).contains(&opts.max_speedup)
    {
        return Err(Error::BadInput(format!(
            "voice-over options out of range: sample rate {} (at least 8000), max speed-up {} (1.0 to 3.0)",
            opts.sample_rate, opts.max_speedup
        )));
    }
    let sr = opts.sample_rate;
    let length_ms = opts
        .length_ms
        .unwrap_or_else(|| cues.iter().map(|c| c.end_ms).max().unwrap_or(0) + 1000);
    let mut track = vec![0f32; ms_to_samples(length_ms, sr)];
    let t0 = std::time::Instant::now();
    let total = cues.iter().map(|c| c.end_ms).max().unwrap_or(0);
    sink.event(Event::Start {
        stage: Stage::Voiceover,
        total: Some(total),
    });
    let ceiling = 10f64.powf(opts.ceiling_dbfs / 20.0) as f32;
    let mut lines: Vec<Option<LineReport>> = vec![None; cues.len()];
    let mut voiced = Vec::new();
    for slot in slots(cues, length_ms, opts.gap_ms) {
        if sink.is_cancelled() {
            return Err(Error::Cancelled);
        }
        sink.event(Event::Progress {
            stage: Stage::Voiceover,
            done: slot.start_ms.min(total),
        });
        let text = cues[slot.cue].visible_text();
        let slot_ms = slot.end_ms - slot.start_ms;
        let available_ms = slot.limit_ms - slot.start_ms;
        let mut report = LineReport {
            cue: slot.cue,
            start_ms: slot.start_ms,
            end_ms: slot.start_ms,
            slot_ms,
            available_ms,
            natural_ms: 0,
            needed_ms: 0,
            speed: opts.rate,
            fit: Fit::Silent,
            cut_ms: 0,
            gain_db: 0.0,
            loudness_lufs: None,
            message: None,
        };
        let spoken = (|| -> Result<(Vec<f32>, f32, u64)> {
            let natural = speak(tts, &text, opts.rate, sr, sink)?;
            let natural_ms = samples_to_ms(natural.len(), sr);
            let mut best = (natural, 1.0f32);
            let mut speedup = speedup_for(natural_ms, slot_ms, opts.max_speedup);
            // Engines are not exact (Piper's durations vary run to run): measure, and once more if still long.
            for _ in 0..2 {
                if speedup <= 1.0 || samples_to_ms(best.0.len(), sr) <= slot_ms {
                    break;
                }
                let faster = speak(tts, &text, (opts.rate * speedup).min(2.0), sr, sink)?;
                let len = samples_to_ms(faster.len(), sr);
                if faster.len() < best.0.len() {
                    best = (faster, speedup);
                }
                if len <= slot_ms || speedup >= opts.max_speedup {
                    break;
                }
                speedup = (speedup * (len as f64 / slot_ms.max(1) as f64 * 1.02) as f32)
                    .min(opts.max_speedup);
            }
            Ok((best.0, best.1, natural_ms))
        })();
        let (mut speech, speedup, natural_ms) = match spoken {
            Ok(s) => s,
            Err(e) if fatal(&e) => return Err(e),
            Err(e) => {
                let msg = format!(
                    "cue {}: the voice could not speak {text:?}: {e}",
                    slot.cue + 1
                );
                sink.event(Event::Warning(&msg));
                report.fit = Fit::Failed;
                report.message = Some(e.to_string());
                lines[slot.cue] = Some(report);
                continue;
            }
        };
        report.natural_ms = natural_ms;
        report.speed = opts.rate * speedup;
        let needed_ms = samples_to_ms(speech.len(), sr);
        report.needed_ms = needed_ms;
        report.fit = classify(needed_ms, slot_ms, available_ms, speedup);
        if report.fit == Fit::Cut {
            // Cut in the pause, then drop the rest of the pause: the line ends where its last word does.
            let cut = dsp::find_cut(&speech, sr, ms_to_samples(available_ms, sr));
            speech.truncate(cut);
            let end = dsp::speech_bounds(&speech, sr).map_or(0, |(_, b)| b);
            speech.truncate(end);
            dsp::fade_out(&mut speech, ms_to_samples(opts.fade_ms, sr));
            report.cut_ms = needed_ms.saturating_sub(samples_to_ms(speech.len(), sr));
        }
        if speech.is_empty() {
            report.fit = if report.fit == Fit::Cut {
                Fit::Cut
            } else {
                Fit::Silent
            };
            lines[slot.cue] = Some(report);
            continue;
        }
        if let Some(l) = loudness::integrated_lufs(&speech, sr) {
            let gain = opts.target_lufs - l;
            let g = 10f64.powf(gain / 20.0) as f32;
            speech.iter_mut().for_each(|s| *s *= g);
            report.gain_db = gain;
        }
        dsp::limit_peaks(&mut speech, sr, ceiling);
        report.loudness_lufs = loudness::integrated_lufs(&speech, sr);
        let at = ms_to_samples(slot.start_ms, sr);
        let end = (at + speech.len()).min(track.len());
        for (t, s) in track[at..end].iter_mut().zip(&speech) {
            *t += s;
        }
        report.end_ms = slot.start_ms + samples_to_ms(end - at, sr);
        voiced.push(Interval {
            start_ms: report.start_ms,
            end_ms: report.end_ms,
        });
        sink.event(Event::Debug(&format!(
            "voice-over: cue {} {:?}: {} ms natural, {} ms at speed {:.2} in a {} ms slot ({} ms available)",
            slot.cue + 1,
            report.fit,
            natural_ms,
            needed_ms,
            report.speed,
            slot_ms,
            available_ms
        )));
        lines[slot.cue] = Some(report);
    }
    sink.event(Event::Finish {
        stage: Stage::Voiceover,
        elapsed: t0.elapsed(),
    });
    Ok(Voiceover {
        samples: track,
        sample_rate: sr,
        lines: lines.into_iter().flatten().collect(),
        voiced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(a: u64, b: u64) -> Cue {
        Cue::new(a, b, vec!["x".into()])
    }

    #[test]
    fn slots_end_before_the_next_cue_and_the_track() {
        let cues = vec![
            cue(5000, 6000),
            cue(0, 1000),
            cue(1020, 3000),
            cue(2900, 4000),
        ];
        let s = slots(&cues, 5500, 40);
        let got: Vec<(usize, u64, u64, u64)> = s
            .iter()
            .map(|s| (s.cue, s.start_ms, s.end_ms, s.limit_ms))
            .collect();
        assert_eq!(
            got,
            [
                (1, 0, 980, 980),      // the next cue starts 20 ms after this one ends
                (2, 1020, 2860, 2860), // overlapping cues: cut back to the next start minus the gap
                (3, 2900, 4000, 4960), // silence after it: may run on to 4960
                (0, 5000, 5500, 5500), // the track ends at 5500
            ]
        );
        // Two cues at the same time: the first has no room.
        let s = slots(&[cue(100, 900), cue(100, 500)], 2000, 40);
        assert_eq!((s[0].start_ms, s[0].limit_ms), (100, 100));
    }

    #[test]
    fn speedup_and_fit() {
        assert_eq!(speedup_for(900, 1000, 1.35), 1.0);
        assert!((speedup_for(1200, 1000, 1.35) - 1.236).abs() < 1e-3);
        assert_eq!(speedup_for(3000, 1000, 1.35), 1.35);
        assert_eq!(speedup_for(10, 0, 1.35), 1.35);
        assert_eq!(classify(900, 1000, 1500, 1.0), Fit::InSlot);
        assert_eq!(classify(900, 1000, 1500, 1.2), Fit::SpedUp);
        assert_eq!(classify(1200, 1000, 1500, 1.35), Fit::IntoGap);
        assert_eq!(classify(1600, 1000, 1500, 1.35), Fit::Cut);
        assert_eq!(classify(0, 1000, 1500, 1.0), Fit::Silent);
    }

    /// A fake engine for the pure assembly rules: a tone of 100 ms per character at rate 1, after 150 ms silence.
    struct Tone;
    impl Tts for Tone {
        fn voice(&self) -> &super::super::VoiceInfo {
            unimplemented!()
        }
        fn synthesize(&self, text: &str, rate: f32, _: &dyn Sink) -> Result<super::super::Speech> {
            let sr = 16000;
            if !text.chars().any(char::is_alphanumeric) {
                return Ok(super::super::Speech {
                    samples: Vec::new(),
                    sample_rate: sr,
                });
            }
            let n = (text.chars().count() as f32 * 0.1 / rate * sr as f32) as usize;
            let mut samples = vec![0f32; sr as usize * 15 / 100];
            samples.extend((0..n).map(|i| {
                0.3 * (i as f32 * 0.15).sin() * if (i / 1600) % 4 == 3 { 0.0 } else { 1.0 }
            }));
            Ok(super::super::Speech {
                samples,
                sample_rate: sr,
            })
        }
    }

    #[test]
    fn assembly_places_speeds_up_and_cuts() {
        let cues = vec![
            Cue::new(0, 1000, vec!["abcdefgh".into()]), // 800 ms: fits
            Cue::new(1500, 2500, vec!["abcdefghijkl".into()]), // 1200 ms: sped up
            Cue::new(3000, 3500, vec!["abcdefghijklmnopqrstuvwxyz0123".into()]), // 3000 ms, 2.2 s at 1.35: cut before 4960
            Cue::new(5000, 6000, vec!["...".into()]),
        ];
        let v = build(
            &cues,
            &Tone,
            &VoiceoverOptions {
                length_ms: Some(7000),
                ..Default::default()
            },
            &crate::progress::NullSink,
        )
        .unwrap();
        assert_eq!(v.samples.len(), 7000 * 48);
        let fits: Vec<Fit> = v.lines.iter().map(|l| l.fit).collect();
        assert_eq!(fits, [Fit::InSlot, Fit::SpedUp, Fit::Cut, Fit::Silent]);
        assert!(v.lines[1].speed > 1.19 && v.lines[1].speed <= 1.35);
        let cut = &v.lines[2];
        assert_eq!(cut.available_ms, 1960);
        assert!(cut.needed_ms > 1960 && cut.end_ms <= 4960, "{cut:?}");
        assert_eq!(v.voiced.len(), 3);
        for l in &v.lines[..3] {
            assert!((l.loudness_lufs.unwrap() + 20.0).abs() < 0.5, "{l:?}");
        }
        // Onsets: the first loud sample of each line is at its cue's start.
        for l in &v.lines[..3] {
            let at = ms_to_samples(l.start_ms, 48000);
            let first = v.samples[at..].iter().position(|s| s.abs() > 0.01).unwrap();
            assert!(first < 48 * 10, "{first}");
        }
    }
}
