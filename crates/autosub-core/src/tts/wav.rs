//! RIFF/WAVE reading and writing: what the engines write (16-bit PCM, sometimes streamed with unknown sizes) and
//! what tests hand to ffmpeg (32-bit float). Pure.

use super::Speech;

/// Why a WAV could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a readable WAV file: {0}")]
pub struct WavError(pub String);

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Decodes a WAV file to mono f32 (channels are averaged). Accepts PCM 8/16/24/32-bit and IEEE float 32/64, and
/// a `data` chunk whose stated size is larger than what is there (espeak-ng's `--stdout` writes `0x7ffff000`
/// because it streams).
pub fn decode(bytes: &[u8]) -> Result<Speech, WavError> {
    let bad = |m: &str| WavError(m.to_owned());
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad("no RIFF/WAVE header"));
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32_at(bytes, pos + 4).ok_or_else(|| bad("truncated chunk header"))? as usize;
        let body = pos + 8;
        if id == b"fmt " {
            let f = bytes
                .get(body..body + size.min(40))
                .ok_or_else(|| bad("truncated fmt chunk"))?;
            let mut format = u16_at(f, 0).ok_or_else(|| bad("short fmt chunk"))?;
            let channels = u16_at(f, 2).ok_or_else(|| bad("short fmt chunk"))?;
            let rate = u32_at(f, 4).ok_or_else(|| bad("short fmt chunk"))?;
            let bits = u16_at(f, 14).ok_or_else(|| bad("short fmt chunk"))?;
            if format == 0xFFFE {
                // WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the format code.
                format = u16_at(f, 24).ok_or_else(|| bad("short extensible fmt chunk"))?;
            }
            fmt = Some((format, channels, rate, bits));
        } else if id == b"data" {
            let (format, channels, rate, bits) = fmt.ok_or_else(|| bad("data before fmt"))?;
            let end = body.saturating_add(size).min(bytes.len());
            return decode_samples(&bytes[body..end], format, channels, rate, bits);
        }
        pos = body.saturating_add(size).saturating_add(size & 1);
    }
    Err(bad("no data chunk"))
}

fn decode_samples(
    data: &[u8],
    format: u16,
    channels: u16,
    rate: u32,
    bits: u16,
) -> Result<Speech, WavError> {
    if channels == 0 || rate == 0 {
        return Err(WavError(format!("{channels} channels at {rate} Hz")));
    }
    let width = (bits as usize).div_ceil(8);
    let sample: fn(&[u8]) -> f32 = match (format, bits) {
        (1, 8) => |b| (b[0] as f32 - 128.0) / 128.0,
        (1, 16) => |b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0,
        (1, 24) => |b| ((i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32) / 8_388_608.0,
        (1, 32) => |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0,
        (3, 32) => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        (3, 64) => |b| f64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])) as f32,
        _ => {
            return Err(WavError(format!(
                "unsupported sample format {format} with {bits} bits"
            )))
        }
    };
    let frame = width * channels as usize;
    let samples = data
        .chunks_exact(frame)
        .map(|f| {
            let sum: f32 = f.chunks_exact(width).map(sample).sum();
            sum / channels as f32
        })
        .collect();
    Ok(Speech {
        samples,
        sample_rate: rate,
    })
}

/// Encodes mono samples as a 32-bit float WAV (no quantisation: for measurements by other programs).
pub fn encode_f32(samples: &[f32], sample_rate: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(44 + samples.len() * 4);
    write_f32(&mut out, samples, sample_rate).expect("writing to memory");
    out
}

/// Writes a mono 32-bit float WAV file to `w` as it goes (no copy of the samples in memory). Fails on more than
/// the format's 4 GiB of data (over 6 hours at 48 kHz).
pub fn write_f32(
    w: &mut impl std::io::Write,
    samples: &[f32],
    sample_rate: u32,
) -> std::io::Result<()> {
    let data_len = u32::try_from(samples.len() * 4).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "audio too long for a WAV file (over 4 GiB)",
        )
    })?;
    let mut head = Vec::with_capacity(44);
    head.extend_from_slice(b"RIFF");
    head.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
    head.extend_from_slice(b"WAVEfmt ");
    head.extend_from_slice(&16u32.to_le_bytes());
    head.extend_from_slice(&3u16.to_le_bytes()); // IEEE float
    head.extend_from_slice(&1u16.to_le_bytes()); // mono
    head.extend_from_slice(&sample_rate.to_le_bytes());
    head.extend_from_slice(&(sample_rate * 4).to_le_bytes());
    head.extend_from_slice(&4u16.to_le_bytes());
    head.extend_from_slice(&32u16.to_le_bytes());
    head.extend_from_slice(b"data");
    head.extend_from_slice(&data_len.to_le_bytes());
    w.write_all(&head)?;
    let mut buf = Vec::with_capacity(64 * 1024);
    for chunk in samples.chunks(16 * 1024) {
        buf.clear();
        for s in chunk {
            buf.extend_from_slice(&s.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    w.flush()
}

/// Writes a mono 32-bit float WAV file at `path`.
pub fn write_f32_file(
    path: &std::path::Path,
    samples: &[f32],
    sample_rate: u32,
) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    write_f32(&mut f, samples, sample_rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm16(rate: u32, channels: u16, frames: &[i16], stated: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * 2 * channels as u32).to_le_bytes());
        b.extend_from_slice(&(2 * channels).to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"LIST");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(b"abc\0"); // odd size, padded
        b.extend_from_slice(b"data");
        b.extend_from_slice(&stated.to_le_bytes());
        for s in frames {
            b.extend_from_slice(&s.to_le_bytes());
        }
        b
    }

    #[test]
    fn streamed_size_and_padding_and_stereo() {
        let w = decode(&pcm16(22050, 1, &[0, 16384, -32768], 0x7fff_f000)).unwrap();
        assert_eq!(w.sample_rate, 22050);
        assert_eq!(w.samples, vec![0.0, 0.5, -1.0]);
        let w = decode(&pcm16(16000, 2, &[16384, 0, -16384, -16384], 8)).unwrap();
        assert_eq!(w.samples, vec![0.25, -0.5]);
    }

    #[test]
    fn float_round_trip_and_garbage() {
        let s = [0.0f32, 0.25, -0.75];
        let w = decode(&encode_f32(&s, 48000)).unwrap();
        assert_eq!((w.samples.as_slice(), w.sample_rate), (&s[..], 48000));
        assert!(decode(b"").is_err());
        assert!(decode(b"RIFF\0\0\0\0WAVEjunk").is_err());
    }
}
