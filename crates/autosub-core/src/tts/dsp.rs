//! Signal processing for synthesized speech: resampling, time stretching, speech onset and end by energy, cutting
//! at a quiet point with a fade, and peak limiting. Pure functions over mono f32 samples.

use std::f64::consts::PI;

/// Zero crossings of the resampling kernel on each side (at the lower of the two rates).
const SINC_ZEROS: usize = 16;
/// Most kernel phases kept in the table; ratios with more phases use the nearest one (error below -100 dB).
const MAX_PHASES: usize = 1024;
/// Kaiser window shape: about 90 dB stop band.
const KAISER_BETA: f64 = 8.6;

fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > 1e-12 * sum {
        term *= (x / (2.0 * k)) * (x / (2.0 * k));
        sum += term;
        k += 1.0;
    }
    sum
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Band-limited resampling (windowed sinc, Kaiser window, polyphase table). Downsampling filters at 97 % of the
/// new Nyquist frequency, so nothing aliases; the output has `len * to / from` samples (rounded) and keeps the
/// timing (sample `n` of the output is at time `n / to`).
pub fn resample(samples: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || samples.is_empty() || from == 0 || to == 0 {
        return samples.to_vec();
    }
    let (from, to) = (from as u64, to as u64);
    let g = gcd(from, to);
    let (step, up) = (from / g, to / g); // input advances `step / up` samples per output sample
    let phases = (up as usize).min(MAX_PHASES);
    let cutoff = 0.97 * (to as f64 / from as f64).min(1.0); // relative to the input Nyquist
    let half = (SINC_ZEROS as f64 / cutoff).ceil() as usize; // kernel half-width in input samples
    let taps = 2 * half;
    // table[p][j]: weight of input sample (k - half + 1 + j) for output phase p/phases after input sample k.
    let i0_beta = bessel_i0(KAISER_BETA);
    let mut table = vec![0f32; phases * taps];
    for p in 0..phases {
        let frac = p as f64 / phases as f64;
        for j in 0..taps {
            let t = (j as f64 - (half as f64 - 1.0)) - frac; // input position minus output position
            let x = t / half as f64;
            let w = if x.abs() >= 1.0 {
                0.0
            } else {
                bessel_i0(KAISER_BETA * (1.0 - x * x).sqrt()) / i0_beta
            };
            let arg = PI * cutoff * t;
            let sinc = if arg.abs() < 1e-9 {
                1.0
            } else {
                arg.sin() / arg
            };
            table[p * taps + j] = (cutoff * sinc * w) as f32;
        }
    }
    let out_len = ((samples.len() as u64 * to + from / 2) / from) as usize;
    let n_in = samples.len() as i64;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len as u64 {
        let num = n * step; // position n * from / to = num / up input samples
        let k = (num / up) as i64;
        let rem = num % up;
        let p = if phases as u64 == up {
            rem as usize
        } else {
            ((rem as f64 / up as f64) * phases as f64).round() as usize
        };
        let (k, p) = if p == phases { (k + 1, 0) } else { (k, p) };
        let row = &table[p * taps..(p + 1) * taps];
        let first = k - half as i64 + 1;
        let mut acc = 0f32;
        if first >= 0 && first + taps as i64 <= n_in {
            let src = &samples[first as usize..first as usize + taps];
            for (a, b) in src.iter().zip(row) {
                acc += a * b;
            }
        } else {
            for (j, w) in row.iter().enumerate() {
                let i = first + j as i64;
                if (0..n_in).contains(&i) {
                    acc += samples[i as usize] * w;
                }
            }
        }
        out.push(acc);
    }
    out
}

/// Changes the tempo by `rate` (1.25 = 25 % faster, shorter) without changing the pitch: WSOLA (waveform-similarity
/// overlap-add) with 30 ms Hann windows, half-window synthesis hop and a ±8 ms similarity search. The output has
/// `len / rate` samples (rounded).
pub fn time_stretch(samples: &[f32], sample_rate: u32, rate: f32) -> Vec<f32> {
    let rate = rate as f64;
    if samples.is_empty() || !(0.2..=5.0).contains(&rate) || (rate - 1.0).abs() < 1e-4 {
        return samples.to_vec();
    }
    let win = ((sample_rate as f64 * 0.030) as usize).max(16) & !1;
    let hop_s = win / 2;
    let tol = (sample_rate as f64 * 0.008) as usize;
    let out_len = (samples.len() as f64 / rate).round() as usize;
    let window: Vec<f32> = (0..win)
        .map(|i| (0.5 - 0.5 * (2.0 * PI * i as f64 / win as f64).cos()) as f32)
        .collect();
    let get = |i: i64| -> f32 {
        if i >= 0 && (i as usize) < samples.len() {
            samples[i as usize]
        } else {
            0.0
        }
    };
    let mut out = vec![0f32; out_len + win];
    let mut norm = vec![0f32; out_len + win];
    // The natural continuation of the previous frame: where the next frame should resemble.
    let mut prev_start: i64 = 0;
    let mut m = 0usize;
    while m * hop_s < out_len + hop_s {
        let nominal = (m as f64 * hop_s as f64 * rate).round() as i64;
        let start = if m == 0 {
            0
        } else {
            let target = prev_start + hop_s as i64; // continues the previous frame
            let mut best = nominal;
            let mut best_score = f32::MIN;
            let lo = nominal - tol as i64;
            for cand in lo..=nominal + tol as i64 {
                // Normalised cross-correlation over the overlapping half, on every second sample for speed.
                let (mut xy, mut yy) = (0f32, 1e-9f32);
                for i in (0..hop_s).step_by(2) {
                    let x = get(target + i as i64);
                    let y = get(cand + i as i64);
                    xy += x * y;
                    yy += y * y;
                }
                let score = xy / yy.sqrt();
                if score > best_score {
                    best_score = score;
                    best = cand;
                }
            }
            best
        };
        let o = m * hop_s;
        for i in 0..win {
            if o + i < out.len() {
                out[o + i] += get(start + i as i64) * window[i];
                norm[o + i] += window[i];
            }
        }
        prev_start = start;
        m += 1;
    }
    out.truncate(out_len);
    for (s, n) in out.iter_mut().zip(&norm) {
        if *n > 1e-3 {
            *s /= n;
        }
    }
    out
}

/// RMS of consecutive frames of `frame` samples (the last one partial), in dBFS (-120 for digital silence).
pub fn frame_db(samples: &[f32], frame: usize) -> Vec<f32> {
    samples
        .chunks(frame.max(1))
        .map(|c| {
            let ms = c.iter().map(|s| (*s as f64) * (*s as f64)).sum::<f64>() / c.len() as f64;
            (10.0 * ms.max(1e-12).log10()) as f32
        })
        .collect()
}

/// Where speech is, by energy: the first and one past the last sample of 5 ms frames louder than the loudest frame
/// minus 40 dB (and than -60 dBFS). `None` when nothing is that loud.
pub fn speech_bounds(samples: &[f32], sample_rate: u32) -> Option<(usize, usize)> {
    let frame = (sample_rate as usize / 200).max(1);
    let db = frame_db(samples, frame);
    let peak = db.iter().cloned().fold(f32::MIN, f32::max);
    let threshold = (peak - 40.0).max(-60.0);
    let first = db.iter().position(|d| *d > threshold)?;
    let last = db.iter().rposition(|d| *d > threshold)?;
    Some((first * frame, ((last + 1) * frame).min(samples.len())))
}

/// Trims leading and trailing silence (see [`speech_bounds`]); empty when there is no speech.
pub fn trim(samples: &[f32], sample_rate: u32) -> Vec<f32> {
    match speech_bounds(samples, sample_rate) {
        Some((a, b)) => samples[a..b].to_vec(),
        None => Vec::new(),
    }
}

/// The best place to cut speech that must end by sample `limit`: the quietest 20 ms stretch (a pause between words,
/// preferably the latest one that is nearly as quiet) in the last 40 % before `limit`. Returns the cut position
/// (the end of that stretch's quietest frame), at most `limit`.
pub fn find_cut(samples: &[f32], sample_rate: u32, limit: usize) -> usize {
    let limit = limit.min(samples.len());
    if limit == 0 {
        return 0;
    }
    let frame = (sample_rate as usize / 100).max(1); // 10 ms
    let db = frame_db(&samples[..limit], frame);
    let n = db.len();
    if n < 3 {
        return limit;
    }
    let from = n * 6 / 10;
    // 20 ms stretches: mean of two frames, complete frames only.
    let full = limit / frame;
    let mut best: Option<(usize, f32)> = None;
    let scores: Vec<(usize, f32)> = (from.max(1)..full)
        .map(|i| (i, (db[i - 1] + db[i]) / 2.0))
        .collect();
    let min = scores.iter().map(|s| s.1).fold(f32::MAX, f32::min);
    for &(i, s) in &scores {
        // The latest stretch within 3 dB of the quietest keeps the most speech.
        if s <= min + 3.0 {
            best = Some((i, s));
        }
    }
    match best {
        Some((i, _)) => ((i + 1) * frame).min(limit),
        None => limit,
    }
}

/// Fades the last `len` samples out (raised cosine) in place.
pub fn fade_out(samples: &mut [f32], len: usize) {
    let n = samples.len();
    let len = len.min(n);
    for i in 0..len {
        let x = (i + 1) as f64 / len as f64; // 0 -> 1 across the fade
        let g = 0.5 + 0.5 * (PI * x).cos();
        samples[n - len + i] *= g as f32;
    }
}

/// Fades the first `len` samples in (raised cosine) in place.
pub fn fade_in(samples: &mut [f32], len: usize) {
    let len = len.min(samples.len());
    for (i, s) in samples.iter_mut().take(len).enumerate() {
        let x = i as f64 / len as f64;
        *s *= (0.5 - 0.5 * (PI * x).cos()) as f32;
    }
}

/// Keeps the absolute sample values at or below `ceiling` with a look-ahead peak limiter: the gain needed by each
/// sample is spread over ±2 ms (a sliding minimum, then a moving average, so the gain never jumps) and released over
/// about 50 ms. Loud syllables are turned down without clipping; audio far from a peak is untouched.
pub fn limit_peaks(samples: &mut [f32], sample_rate: u32, ceiling: f32) {
    if samples.iter().all(|s| s.abs() <= ceiling) {
        return;
    }
    let a = (sample_rate as usize / 500).max(2);
    let release = (-1.0 / (0.050 * sample_rate as f64)).exp() as f32;
    let need: Vec<f32> = samples
        .iter()
        .map(|s| {
            if s.abs() > ceiling {
                ceiling / s.abs()
            } else {
                1.0
            }
        })
        .collect();
    let m = sliding_min(&need, a);
    // Moving average over ±a/2: every value averaged at a peak is a minimum over a window containing the peak.
    let h = a / 2;
    let n = m.len();
    let mut prefix = vec![0f64; n + 1];
    for i in 0..n {
        prefix[i + 1] = prefix[i] + m[i] as f64;
    }
    let mut g = 1f32;
    for (i, x) in samples.iter_mut().enumerate() {
        let (lo, hi) = (i.saturating_sub(h), (i + h + 1).min(n));
        let s = ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32;
        g = if s < g { s } else { s + (g - s) * release };
        *x *= g;
    }
    // Rounding guard.
    for s in samples.iter_mut() {
        *s = s.clamp(-ceiling, ceiling);
    }
}

/// `out[i] = min(v[i-a ..= i+a])` (clamped to the ends), in linear time.
fn sliding_min(v: &[f32], a: usize) -> Vec<f32> {
    let n = v.len();
    let mut out = vec![0f32; n];
    let mut dq: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let mut next = 0; // next index to push
    for (i, o) in out.iter_mut().enumerate() {
        while next < n && next <= i + a {
            while dq.back().is_some_and(|&j| v[j] >= v[next]) {
                dq.pop_back();
            }
            dq.push_back(next);
            next += 1;
        }
        while dq.front().is_some_and(|&j| j + a < i) {
            dq.pop_front();
        }
        *o = dq.front().map_or(1.0, |&j| v[j]);
    }
    out
}

/// The largest absolute sample.
pub fn peak(samples: &[f32]) -> f32 {
    samples.iter().fold(0f32, |m, s| m.max(s.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, secs: f64, amp: f32) -> Vec<f32> {
        (0..(rate as f64 * secs) as usize)
            .map(|i| amp * (2.0 * PI * freq * i as f64 / rate as f64).sin() as f32)
            .collect()
    }

    fn rms(s: &[f32]) -> f64 {
        (s.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
    }

    /// Frequency of a sine by counting upward zero crossings.
    fn freq_of(s: &[f32], rate: u32) -> f64 {
        let ups = s.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        ups as f64 * rate as f64 / s.len() as f64
    }

    #[test]
    fn resampling_keeps_a_tone_and_the_length() {
        for (from, to) in [
            (22050, 48000),
            (48000, 16000),
            (16000, 48000),
            (22050, 24000),
            (44100, 48000),
        ] {
            let x = sine(1000.0, from, 1.0, 0.5);
            let y = resample(&x, from, to);
            assert_eq!(y.len(), to as usize, "{from}->{to}");
            let mid = &y[to as usize / 10..to as usize * 9 / 10];
            assert!(
                (rms(mid) - 0.5 / 2f64.sqrt()).abs() < 0.005,
                "{from}->{to}: {}",
                rms(mid)
            );
            assert!((freq_of(mid, to) - 1000.0).abs() < 3.0, "{from}->{to}");
        }
    }

    #[test]
    fn downsampling_removes_what_cannot_be_represented() {
        // 7 kHz cannot exist at 8 kHz: it must be filtered out, not folded down to 1 kHz.
        let x = sine(7000.0, 48000, 0.5, 0.5);
        let y = resample(&x, 48000, 8000);
        assert!(rms(&y[400..3600]) < 0.001, "{}", rms(&y[400..3600]));
    }

    #[test]
    fn time_stretch_changes_length_not_pitch() {
        let x = sine(220.0, 22050, 2.0, 0.5);
        for rate in [1.35f32, 1.1, 0.8] {
            let y = time_stretch(&x, 22050, rate);
            assert_eq!(y.len(), (x.len() as f32 / rate).round() as usize);
            let mid = &y[y.len() / 10..y.len() * 9 / 10];
            assert!(
                (freq_of(mid, 22050) - 220.0).abs() < 3.0,
                "{rate}: {}",
                freq_of(mid, 22050)
            );
            assert!((rms(mid) - rms(&x)).abs() < 0.03, "{rate}: {}", rms(mid));
        }
    }

    #[test]
    fn speech_bounds_skip_silence() {
        let rate = 16000;
        let mut x = vec![0.0f32; 3200]; // 200 ms silence
        x.extend(sine(300.0, rate, 0.5, 0.3));
        x.extend(vec![0.0001f32; 1600]); // faint noise, 100 ms
        let (a, b) = speech_bounds(&x, rate).unwrap();
        assert!((3120..=3200).contains(&a), "{a}");
        assert!((11200..=11280).contains(&b), "{b}");
        assert!(speech_bounds(&[0.0; 1000], rate).is_none());
        assert_eq!(trim(&x, rate).len(), b - a);
    }

    #[test]
    fn cut_lands_in_the_last_pause() {
        let rate = 16000;
        let word = sine(200.0, rate, 0.3, 0.3);
        let gap = vec![0f32; 1600]; // 100 ms pause
        let mut x = Vec::new();
        for _ in 0..3 {
            x.extend(&word);
            x.extend(&gap);
        }
        // Three words with pauses at 300-400, 700-800 and 1100-1200 ms; limit at 1000 ms: cut in the 700-800 pause.
        let cut = find_cut(&x, rate, 16000);
        assert!((11200..=12800).contains(&cut), "{cut}");
    }

    #[test]
    fn limiter_caps_peaks_and_leaves_quiet_audio() {
        let rate = 48000;
        let mut x = sine(440.0, rate, 0.2, 0.2);
        x.extend(sine(440.0, rate, 0.1, 1.6));
        x.extend(sine(440.0, rate, 0.5, 0.2));
        let before = x.clone();
        limit_peaks(&mut x, rate, 0.9);
        assert!(peak(&x) <= 0.9);
        assert_eq!(
            &x[..4800],
            &before[..4800],
            "untouched before the look-ahead"
        );
        let tail = &x[x.len() - 4800..];
        assert!((rms(tail) - rms(&before[before.len() - 4800..])).abs() < 0.002);
    }

    #[test]
    fn fades() {
        let mut x = vec![1f32; 100];
        fade_out(&mut x, 10);
        assert_eq!(x[89], 1.0);
        assert!(x[99].abs() < 1e-6);
        fade_in(&mut x, 10);
        assert_eq!(x[0], 0.0);
    }
}
