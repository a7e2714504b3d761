//! Loudness of mono audio after ITU-R BS.1770-4 / EBU R128: K-weighting (a high-shelf and a high-pass biquad),
//! mean square over 400 ms blocks with 75 % overlap, an absolute gate at -70 LUFS and a relative gate 10 LU below
//! the loudness of the blocks that passed it. Pure; the same numbers as ffmpeg's `ebur128` filter (checked in
//! `tests/tts.rs`).

/// One biquad section (direct form I), coefficients normalised to `a0 = 1`.
#[derive(Clone, Copy, Debug)]
struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
}

/// The two K-weighting filters for `sample_rate`, designed from the analogue prototypes of BS.1770 (as libebur128
/// does), so any sample rate gives the published 48 kHz coefficients' response.
fn k_weighting(sample_rate: u32) -> [Biquad; 2] {
    let fs = sample_rate as f64;
    // Stage 1: high shelf, +4 dB above about 1.5 kHz (the head).
    let f0 = 1_681.974_450_955_533;
    let g = 3.999_843_853_973_347;
    let q = 0.707_175_236_955_419_6;
    let k = (std::f64::consts::PI * f0 / fs).tan();
    let vh = 10f64.powf(g / 20.0);
    let vb = vh.powf(0.499_666_774_154_541_6);
    let a0 = 1.0 + k / q + k * k;
    let shelf = Biquad {
        b: [
            (vh + vb * k / q + k * k) / a0,
            2.0 * (k * k - vh) / a0,
            (vh - vb * k / q + k * k) / a0,
        ],
        a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
    };
    // Stage 2: high pass at about 38 Hz (RLB weighting).
    let f0 = 38.135_470_876_024_44;
    let q = 0.500_327_037_323_877_3;
    let k = (std::f64::consts::PI * f0 / fs).tan();
    let a0 = 1.0 + k / q + k * k;
    let highpass = Biquad {
        b: [1.0, -2.0, 1.0],
        a: [2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0],
    };
    [shelf, highpass]
}

/// K-weighted signal energy: `z[i]` is the square of the filtered sample `i`.
fn k_weighted_squares(samples: &[f32], sample_rate: u32) -> Vec<f64> {
    let filters = k_weighting(sample_rate);
    let mut state = [[0f64; 4]; 2]; // x1, x2, y1, y2 per stage
    samples
        .iter()
        .map(|&s| {
            let mut x = s as f64;
            for (f, st) in filters.iter().zip(state.iter_mut()) {
                let y =
                    f.b[0] * x + f.b[1] * st[0] + f.b[2] * st[1] - f.a[0] * st[2] - f.a[1] * st[3];
                st[1] = st[0];
                st[0] = x;
                st[3] = st[2];
                st[2] = y;
                x = y;
            }
            x * x
        })
        .collect()
}

fn lufs(mean_square: f64) -> f64 {
    -0.691 + 10.0 * mean_square.log10()
}

/// Integrated loudness in LUFS of mono `samples` (gated, BS.1770-4). `None` for silence (nothing above the absolute
/// gate). Audio shorter than one 400 ms block is measured as one block over its whole length (ungated but for the
/// absolute gate), so short words still get a value.
pub fn integrated_lufs(samples: &[f32], sample_rate: u32) -> Option<f64> {
    if samples.is_empty() || sample_rate == 0 {
        return None;
    }
    let z = k_weighted_squares(samples, sample_rate);
    let block = (sample_rate as usize * 4).div_ceil(10); // 400 ms
    let step = (sample_rate as usize).div_ceil(10); // 100 ms (75 % overlap)
    let mut prefix = Vec::with_capacity(z.len() + 1);
    prefix.push(0f64);
    for v in &z {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + v);
    }
    let mut blocks: Vec<f64> = Vec::new();
    if z.len() < block {
        blocks.push(prefix[z.len()] / z.len() as f64);
    } else {
        let mut start = 0;
        while start + block <= z.len() {
            blocks.push((prefix[start + block] - prefix[start]) / block as f64);
            start += step;
        }
    }
    let above_abs: Vec<f64> = blocks.into_iter().filter(|m| lufs(*m) > -70.0).collect();
    if above_abs.is_empty() {
        return None;
    }
    let relative_gate = lufs(above_abs.iter().sum::<f64>() / above_abs.len() as f64) - 10.0;
    let gated: Vec<f64> = above_abs
        .into_iter()
        .filter(|m| lufs(*m) > relative_gate)
        .collect();
    Some(lufs(gated.iter().sum::<f64>() / gated.len() as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, secs: f64, amp: f64) -> Vec<f32> {
        (0..(rate as f64 * secs) as usize)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as f32
            })
            .collect()
    }

    #[test]
    fn published_48k_coefficients() {
        // BS.1770-4, table 1 and 2.
        let [s, h] = k_weighting(48000);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-8;
        assert!(close(s.b[0], 1.535_124_859_586_97), "{:?}", s);
        assert!(close(s.b[1], -2.691_696_189_406_38));
        assert!(close(s.b[2], 1.198_392_810_852_85));
        assert!(close(s.a[0], -1.690_659_293_182_41));
        assert!(close(s.a[1], 0.732_480_774_215_85));
        assert!(close(h.a[0], -1.990_047_454_833_98), "{:?}", h);
        assert!(close(h.a[1], 0.990_072_250_366_21));
    }

    #[test]
    fn full_scale_tone_reads_minus_3_lufs() {
        // BS.1770: a full-scale 1 kHz sine in one channel reads -3.01 LUFS (K-weighting is +0.69 dB at 1 kHz,
        // which the -0.691 offset compensates); 20 dB quieter reads -23.01.
        for rate in [48000, 44100, 22050, 16000] {
            let l = integrated_lufs(&sine(1000.0, rate, 5.0, 1.0), rate).unwrap();
            assert!((l + 3.01).abs() < 0.05, "{rate}: {l}");
            let l = integrated_lufs(&sine(1000.0, rate, 5.0, 0.1), rate).unwrap();
            assert!((l + 23.01).abs() < 0.05, "{rate}: {l}");
        }
    }

    #[test]
    fn gating_ignores_silence_and_quiet_parts() {
        let rate = 48000;
        let mut x = sine(1000.0, rate, 4.0, 0.1);
        x.extend(vec![0f32; rate as usize * 10]);
        let tone_and_silence = integrated_lufs(&x, rate).unwrap();
        // Silence is gated out; only the blocks straddling the tone's end (partly silent) lower it a little.
        assert!((tone_and_silence + 23.01).abs() < 0.3, "{tone_and_silence}");
        x.extend(sine(1000.0, rate, 2.0, 0.001)); // -63 LUFS: above the absolute gate, below the relative one
        let l = integrated_lufs(&x, rate).unwrap();
        assert!(
            (l - tone_and_silence).abs() < 0.01,
            "{l} vs {tone_and_silence}"
        );
        assert_eq!(integrated_lufs(&vec![0f32; 48000], rate), None);
        let short = integrated_lufs(&sine(1000.0, rate, 0.2, 0.1), rate).unwrap();
        assert!((short + 23.01).abs() < 0.2, "{short}");
    }
}
