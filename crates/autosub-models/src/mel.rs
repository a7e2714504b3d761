//! The mel filterbank embedded in whisper.cpp model files.
//!
//! openai-whisper's `mel_filters.npz` holds `librosa.filters.mel(sr=16000, n_fft=400,
//! n_mels=80|128)` (Slaney mel scale, `htk=False`, `norm="slaney"`, float32). This module
//! recomputes it with librosa's arithmetic: frequencies in f64, the triangle weights stored
//! to f32, then multiplied (in f64) by the Slaney normalisation and stored to f32 again.

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;

fn logstep() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(f: f64) -> f64 {
    let min_log_mel = MIN_LOG_HZ / F_SP;
    if f >= MIN_LOG_HZ {
        min_log_mel + (f / MIN_LOG_HZ).ln() / logstep()
    } else {
        f / F_SP
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let min_log_mel = MIN_LOG_HZ / F_SP;
    if m >= min_log_mel {
        MIN_LOG_HZ * (logstep() * (m - min_log_mel)).exp()
    } else {
        F_SP * m
    }
}

/// numpy's `linspace(start, stop, num)` (endpoint included), element for element.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    v[num - 1] = stop;
    v
}

/// Slaney-normalised mel filterbank, `n_mels` rows of `n_fft / 2 + 1` values, row-major.
pub fn mel_filterbank(sr: u32, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_freqs = n_fft / 2 + 1;
    // numpy.fft.rfftfreq(n_fft, d=1/sr)
    let val = 1.0 / (n_fft as f64 * (1.0 / f64::from(sr)));
    let fftfreqs: Vec<f64> = (0..n_freqs).map(|k| k as f64 * val).collect();
    let mels = linspace(hz_to_mel(0.0), hz_to_mel(f64::from(sr) / 2.0), n_mels + 2);
    let mel_f: Vec<f64> = mels.iter().map(|&m| mel_to_hz(m)).collect();
    let fdiff: Vec<f64> = mel_f.windows(2).map(|w| w[1] - w[0]).collect();
    let mut weights = vec![0f32; n_mels * n_freqs];
    for i in 0..n_mels {
        let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for (k, &f) in fftfreqs.iter().enumerate() {
            let lower = -(mel_f[i] - f) / fdiff[i];
            let upper = (mel_f[i + 2] - f) / fdiff[i + 1];
            let w = 0f64.max(lower.min(upper)) as f32;
            weights[i * n_freqs + k] = (f64::from(w) * enorm) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values computed with numpy using librosa's algorithm (float32 output), printed with
    /// `repr(float(w[i, j]))`.
    #[test]
    fn spot_values_match_numpy_librosa() {
        let w = mel_filterbank(16000, 400, 80);
        assert_eq!(w.len(), 80 * 201);
        let at = |i: usize, j: usize| w[i * 201 + j];
        // (row, column, f32 bits), values from numpy: 0.02486259490251541, 0.001990821911022067,
        // 0.022871771827340126, 0.01990821771323681, 0.004954374860972166,
        // 0.005411104764789343, 0.014735566452145576, 0.006518189795315266,
        // 0.000366741674952209, 0.0031647118739783764, 0.0004487590049393475.
        let expected: &[(usize, usize, u32)] = &[
            (0, 1, 0x3ccb_aca4),
            (1, 1, 0x3b02_7873),
            (1, 2, 0x3cbb_5d95),
            (10, 10, 0x3ca3_168f),
            (10, 11, 0x3ba2_584f),
            (40, 42, 0x3bb1_4fa3),
            (40, 43, 0x3c71_6d72),
            (40, 44, 0x3bd5_968a),
            (79, 186, 0x39c0_473c),
            (79, 192, 0x3b4f_670e),
            (79, 199, 0x39eb_476a),
        ];
        for &(i, j, bits) in expected {
            let want = f32::from_bits(bits);
            assert_eq!(
                at(i, j).to_bits(),
                bits,
                "w[{i},{j}] = {} != {want}",
                at(i, j)
            );
        }
        assert!((at(0, 1) - 0.024_862_595).abs() < 1e-9);
        // Zeros where numpy has zeros.
        for &(i, j) in &[
            (0, 0),
            (0, 2),
            (1, 3),
            (10, 25),
            (40, 60),
            (79, 200),
            (79, 185),
        ] {
            assert_eq!(at(i, j), 0.0, "w[{i},{j}]");
        }
        // numpy: w.sum() == 1.9990242 (float32), 391 non-zero entries.
        let sum: f64 = w.iter().map(|&x| f64::from(x)).sum();
        assert!((sum - 1.999_024_2).abs() < 1e-5, "sum {sum}");
        assert_eq!(w.iter().filter(|&&x| x != 0.0).count(), 391);
    }

    #[test]
    fn large_v3_bank_has_128_rows() {
        let w = mel_filterbank(16000, 400, 128);
        assert_eq!(w.len(), 128 * 201);
        let sum: f64 = w.iter().map(|&x| f64::from(x)).sum();
        // numpy: 3.1909857
        assert!((sum - 3.190_985_7).abs() < 1e-5, "sum {sum}");
    }
}
