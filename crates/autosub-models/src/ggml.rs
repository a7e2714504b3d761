//! The legacy whisper.cpp `ggml` model file format (the one `whisper_model_load` reads).
//!
//! ```text
//! u32 magic = 0x67676d6c ("ggml")
//! i32 n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
//!     n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype
//! i32 n_mel, i32 n_fft, n_mel*n_fft x f32        (mel filterbank)
//! i32 n_tokens, n_tokens x { u32 len, len bytes } (vocabulary, raw token bytes)
//! repeated until EOF:
//!     i32 n_dims, i32 name_len, i32 ttype, n_dims x i32 ne (ggml order: ne[0] = fastest),
//!     name bytes, tensor data
//! ```
//!
//! `ftype` is `GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR + ggml_ftype` for quantized files
//! (2007 for q8_0) and plain `1` for f16 files, exactly like whisper.cpp's `quantize` tool.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use serde::Serialize;

use crate::error::ModelError;

/// `"ggml"` little-endian.
pub const GGML_FILE_MAGIC: u32 = 0x6767_6d6c;
/// ggml's `GGML_QNT_VERSION`.
pub const GGML_QNT_VERSION: i32 = 2;
/// ggml's `GGML_QNT_VERSION_FACTOR`.
pub const GGML_QNT_VERSION_FACTOR: i32 = 1000;
/// Elements per q8_0 block (`QK8_0`).
pub const QK8_0: usize = 32;
/// Bytes per q8_0 block: an f16 scale followed by 32 `i8`.
pub const Q8_0_BLOCK_BYTES: usize = 2 + QK8_0;

/// ggml tensor element types used in whisper model files (`enum ggml_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q8_0 = 8,
}

impl GgmlType {
    /// Bytes needed to store `n` elements.
    pub(crate) fn nbytes(self, n: usize) -> usize {
        match self {
            GgmlType::F32 => 4 * n,
            GgmlType::F16 => 2 * n,
            GgmlType::Q8_0 => n / QK8_0 * Q8_0_BLOCK_BYTES,
        }
    }
}

/// The file-wide weight type recorded in the header (`enum ggml_ftype`, without the
/// quantization-version part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum GgmlFtype {
    /// All tensors f32.
    F32,
    /// Matrices f16.
    F16,
    /// Matrices q4_0.
    Q4_0,
    /// Matrices q4_1.
    Q4_1,
    /// Matrices q8_0.
    Q8_0,
    /// Matrices q5_0.
    Q5_0,
    /// Matrices q5_1.
    Q5_1,
    /// Matrices q2_k.
    Q2K,
    /// Matrices q3_k.
    Q3K,
    /// Matrices q4_k.
    Q4K,
    /// Matrices q5_k.
    Q5K,
    /// Matrices q6_k.
    Q6K,
    /// Anything else (value of `enum ggml_ftype`).
    Other(i32),
}

impl GgmlFtype {
    /// Maps the `ggml_ftype` number (after removing the quantization version).
    pub fn from_raw(v: i32) -> Self {
        match v {
            0 => GgmlFtype::F32,
            1 => GgmlFtype::F16,
            2 => GgmlFtype::Q4_0,
            3 => GgmlFtype::Q4_1,
            7 => GgmlFtype::Q8_0,
            8 => GgmlFtype::Q5_0,
            9 => GgmlFtype::Q5_1,
            10 => GgmlFtype::Q2K,
            11 => GgmlFtype::Q3K,
            12 => GgmlFtype::Q4K,
            13 => GgmlFtype::Q5K,
            14 => GgmlFtype::Q6K,
            o => GgmlFtype::Other(o),
        }
    }

    /// Short lower-case name as used in whisper.cpp file names (`f16`, `q8_0`, ...).
    pub fn as_str(&self) -> String {
        match self {
            GgmlFtype::F32 => "f32".into(),
            GgmlFtype::F16 => "f16".into(),
            GgmlFtype::Q4_0 => "q4_0".into(),
            GgmlFtype::Q4_1 => "q4_1".into(),
            GgmlFtype::Q8_0 => "q8_0".into(),
            GgmlFtype::Q5_0 => "q5_0".into(),
            GgmlFtype::Q5_1 => "q5_1".into(),
            GgmlFtype::Q2K => "q2_k".into(),
            GgmlFtype::Q3K => "q3_k".into(),
            GgmlFtype::Q4K => "q4_k".into(),
            GgmlFtype::Q5K => "q5_k".into(),
            GgmlFtype::Q6K => "q6_k".into(),
            GgmlFtype::Other(v) => format!("ftype{v}"),
        }
    }
}

impl From<GgmlFtype> for String {
    fn from(f: GgmlFtype) -> String {
        f.as_str()
    }
}

impl std::fmt::Display for GgmlFtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// The hyper-parameters at the start of a whisper.cpp ggml file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GgmlHeader {
    /// Vocabulary size (51864 English-only, 51865 multilingual, 51866 large-v3).
    pub n_vocab: i32,
    /// Audio context (1500).
    pub n_audio_ctx: i32,
    /// Encoder width.
    pub n_audio_state: i32,
    /// Encoder attention heads.
    pub n_audio_head: i32,
    /// Encoder layers.
    pub n_audio_layer: i32,
    /// Text context (448).
    pub n_text_ctx: i32,
    /// Decoder width.
    pub n_text_state: i32,
    /// Decoder attention heads.
    pub n_text_head: i32,
    /// Decoder layers.
    pub n_text_layer: i32,
    /// Mel bins (80, or 128 for large-v3).
    pub n_mels: i32,
    /// The raw `ftype` field (includes `qntvr * 1000` for quantized files).
    pub ftype_raw: i32,
    /// Mel filterbank rows stored in the file.
    pub filters_n_mel: i32,
    /// Mel filterbank columns stored in the file (201).
    pub filters_n_fft: i32,
}

impl GgmlHeader {
    /// The weight type, with the quantization version removed.
    pub fn ftype(&self) -> GgmlFtype {
        GgmlFtype::from_raw(self.ftype_raw % GGML_QNT_VERSION_FACTOR)
    }

    /// The quantization format version (`GGML_QNT_VERSION` of the tool that made the file, 0 for f16/f32).
    pub fn quantization_version(&self) -> i32 {
        self.ftype_raw / GGML_QNT_VERSION_FACTOR
    }

    /// Whether the model is multilingual (`n_vocab >= 51865`, the same test whisper.cpp uses).
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }

    /// Model size class as whisper.cpp names it from the encoder depth
    /// (`tiny`, `base`, `small`, `medium`, `large`), or `unknown`.
    pub fn size_class(&self) -> &'static str {
        match self.n_audio_layer {
            4 => "tiny",
            6 => "base",
            12 => "small",
            24 => "medium",
            32 => "large",
            _ => "unknown",
        }
    }

    pub(crate) fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(&GGML_FILE_MAGIC.to_le_bytes())?;
        for v in [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype_raw,
        ] {
            w.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    }
}

fn read_i32(r: &mut impl Read) -> std::io::Result<i32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(i32::from_le_bytes(b))
}

/// Reads and sanity-checks the header of a whisper.cpp ggml model file.
///
/// Fails with [`ModelError::NotGgml`] for anything that whisper.cpp would not load as a
/// model (wrong magic, GGUF files, truncated files, implausible hyper-parameters).
pub fn read_ggml_header(path: &Path) -> Result<GgmlHeader, ModelError> {
    let f = File::open(path).map_err(|e| ModelError::io("opening", path, e))?;
    let file_len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut r = BufReader::new(f);
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)
        .map_err(|_| ModelError::not_ggml(path, "file is too short"))?;
    if &magic == b"GGUF" {
        return Err(ModelError::not_ggml(
            path,
            "this is a GGUF file (llama.cpp-style); whisper.cpp needs a ggml whisper model",
        ));
    }
    if u32::from_le_bytes(magic) != GGML_FILE_MAGIC {
        return Err(ModelError::not_ggml(
            path,
            format!("bad magic {:02x?} (expected \"lmgg\")", magic),
        ));
    }
    let mut v = [0i32; 13];
    for x in v.iter_mut() {
        *x = read_i32(&mut r).map_err(|_| ModelError::not_ggml(path, "header is truncated"))?;
    }
    let h = GgmlHeader {
        n_vocab: v[0],
        n_audio_ctx: v[1],
        n_audio_state: v[2],
        n_audio_head: v[3],
        n_audio_layer: v[4],
        n_text_ctx: v[5],
        n_text_state: v[6],
        n_text_head: v[7],
        n_text_layer: v[8],
        n_mels: v[9],
        ftype_raw: v[10],
        filters_n_mel: v[11],
        filters_n_fft: v[12],
    };
    let dims_ok = [
        h.n_vocab,
        h.n_audio_ctx,
        h.n_audio_state,
        h.n_audio_head,
        h.n_audio_layer,
        h.n_text_ctx,
        h.n_text_state,
        h.n_text_head,
        h.n_text_layer,
        h.n_mels,
    ]
    .iter()
    .all(|&x| x > 0 && x < 1_000_000);
    if !dims_ok || h.ftype_raw < 0 {
        return Err(ModelError::not_ggml(
            path,
            format!("implausible hyper-parameters {h:?} (not a whisper model?)"),
        ));
    }
    if h.n_audio_state != h.n_text_state {
        return Err(ModelError::not_ggml(
            path,
            format!(
                "n_audio_state {} != n_text_state {} (not a whisper model?)",
                h.n_audio_state, h.n_text_state
            ),
        ));
    }
    if h.filters_n_mel <= 0
        || h.filters_n_fft <= 0
        || h.filters_n_mel > 1024
        || h.filters_n_fft > 4096
    {
        return Err(ModelError::not_ggml(
            path,
            "no mel filterbank after the hyper-parameters (not a whisper model?)",
        ));
    }
    let min_len = 4 + 13 * 4 + 4 * (h.filters_n_mel as u64 * h.filters_n_fft as u64) + 4;
    if file_len < min_len {
        return Err(ModelError::not_ggml(path, "file is truncated"));
    }
    if let GgmlFtype::Other(x) = h.ftype() {
        return Err(ModelError::not_ggml(path, format!("unknown ftype {x}")));
    }
    Ok(h)
}

/// Writes one tensor record header: n_dims, name length, type, dims (ggml order), name.
pub(crate) fn write_tensor_header(
    w: &mut impl Write,
    name: &str,
    ne: &[usize],
    ttype: GgmlType,
) -> std::io::Result<()> {
    w.write_all(&(ne.len() as i32).to_le_bytes())?;
    w.write_all(&(name.len() as i32).to_le_bytes())?;
    w.write_all(&(ttype as i32).to_le_bytes())?;
    for &d in ne {
        w.write_all(&(d as i32).to_le_bytes())?;
    }
    w.write_all(name.as_bytes())
}

/// Appends `data` encoded as `ttype` to `out`.
pub(crate) fn encode(data: &[f32], ttype: GgmlType, out: &mut Vec<u8>) {
    match ttype {
        GgmlType::F32 => {
            out.reserve(data.len() * 4);
            for &x in data {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        GgmlType::F16 => {
            out.reserve(data.len() * 2);
            for &x in data {
                out.extend_from_slice(&half::f16::from_f32(x).to_le_bytes());
            }
        }
        GgmlType::Q8_0 => quantize_q8_0(data, out),
    }
}

/// Quantizes `x` (length a multiple of 32) to q8_0 blocks, bit-for-bit like ggml's
/// `quantize_row_q8_0_ref`: `d = amax / 127`, `q = roundf(x * (1/d))`, `d` stored as f16.
pub fn quantize_q8_0(x: &[f32], out: &mut Vec<u8>) {
    assert!(
        x.len().is_multiple_of(QK8_0),
        "q8_0 needs a multiple of {QK8_0} values"
    );
    out.reserve(x.len() / QK8_0 * Q8_0_BLOCK_BYTES);
    for block in x.chunks_exact(QK8_0) {
        let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
        for &v in block {
            out.push((v * id).round() as i8 as u8);
        }
    }
}

/// Decodes q8_0 blocks back to f32 (`x = d * q`, like ggml's `dequantize_row_q8_0`).
pub fn dequantize_q8_0(blocks: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(blocks.len() / Q8_0_BLOCK_BYTES * QK8_0);
    for b in blocks.chunks_exact(Q8_0_BLOCK_BYTES) {
        let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
        out.extend(b[2..].iter().map(|&q| f32::from(q as i8) * d));
    }
    out
}

/// One tensor record of a ggml file, as listed by [`read_tensor_table`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgmlTensorInfo {
    /// Tensor name (for example `encoder.blocks.0.attn.query.weight`).
    pub name: String,
    /// Dimensions in ggml order (`ne[0]` is the contiguous one).
    pub ne: Vec<usize>,
    /// ggml type id (0 f32, 1 f16, 8 q8_0, ...).
    pub ttype: i32,
    /// Offset of the data in the file.
    pub offset: u64,
    /// Size of the data in bytes.
    pub nbytes: u64,
}

fn ggml_type_nbytes(ttype: i32, n: u64) -> Option<u64> {
    // (block size, bytes per block) for the types whisper files use.
    let (blk, size) = match ttype {
        0 => (1, 4),
        1 => (1, 2),
        2 => (32, 18),    // q4_0
        3 => (32, 20),    // q4_1
        6 => (32, 22),    // q5_0
        7 => (32, 24),    // q5_1
        8 => (32, 34),    // q8_0
        10 => (256, 84),  // q2_k
        11 => (256, 110), // q3_k
        12 => (256, 144), // q4_k
        13 => (256, 176), // q5_k
        14 => (256, 210), // q6_k
        30 => (1, 2),     // bf16
        _ => return None,
    };
    if !n.is_multiple_of(blk) {
        return None;
    }
    Some(n / blk * size)
}

/// Reads the header, skips the filterbank and vocabulary and lists every tensor record.
///
/// Used by tests and diagnostics to check that a file is structurally complete.
pub fn read_tensor_table(path: &Path) -> Result<(GgmlHeader, Vec<GgmlTensorInfo>), ModelError> {
    let header = read_ggml_header(path)?;
    let f = File::open(path).map_err(|e| ModelError::io("opening", path, e))?;
    let len = f
        .metadata()
        .map_err(|e| ModelError::io("reading metadata of", path, e))?
        .len();
    let mut r = BufReader::with_capacity(1 << 16, f);
    let trunc = |_| ModelError::not_ggml(path, "file is truncated");
    let mut pos: u64 = 4 + 13 * 4;
    let skip = |r: &mut BufReader<File>, n: u64, pos: &mut u64| -> Result<(), ModelError> {
        if *pos + n > len {
            return Err(ModelError::not_ggml(path, "file is truncated"));
        }
        r.seek_relative(n as i64)
            .map_err(|e| ModelError::io("seeking in", path, e))?;
        *pos += n;
        Ok(())
    };
    r.seek_relative(pos as i64)
        .map_err(|e| ModelError::io("seeking in", path, e))?;
    skip(
        &mut r,
        4 * header.filters_n_mel as u64 * header.filters_n_fft as u64,
        &mut pos,
    )?;
    let n_tokens = read_i32(&mut r).map_err(trunc)?;
    pos += 4;
    if n_tokens < 0 {
        return Err(ModelError::not_ggml(path, "negative token count"));
    }
    for _ in 0..n_tokens {
        let l = read_i32(&mut r).map_err(trunc)? as u32;
        pos += 4;
        skip(&mut r, u64::from(l), &mut pos)?;
    }
    let mut tensors = Vec::new();
    while pos < len {
        let n_dims = read_i32(&mut r).map_err(trunc)?;
        let name_len = read_i32(&mut r).map_err(trunc)?;
        let ttype = read_i32(&mut r).map_err(trunc)?;
        pos += 12;
        if !(1..=4).contains(&n_dims) || !(1..=256).contains(&name_len) {
            return Err(ModelError::not_ggml(
                path,
                format!("bad tensor record at offset {}", pos - 12),
            ));
        }
        let mut ne = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            let d = read_i32(&mut r).map_err(trunc)?;
            if d <= 0 {
                return Err(ModelError::not_ggml(path, "bad tensor dimension"));
            }
            ne.push(d as usize);
            pos += 4;
        }
        let mut name = vec![0u8; name_len as usize];
        r.read_exact(&mut name).map_err(trunc)?;
        pos += name_len as u64;
        let name = String::from_utf8_lossy(&name).into_owned();
        let numel: u64 = ne.iter().map(|&d| d as u64).product();
        let nbytes = ggml_type_nbytes(ttype, numel).ok_or_else(|| {
            ModelError::not_ggml(path, format!("tensor {name}: unsupported type {ttype}"))
        })?;
        let offset = pos;
        skip(&mut r, nbytes, &mut pos)?;
        tensors.push(GgmlTensorInfo {
            name,
            ne,
            ttype,
            offset,
            nbytes,
        });
    }
    Ok((header, tensors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
    }

    #[test]
    fn q8_0_round_trip_error_is_bounded() {
        let mut seed = 42u64;
        let mut x: Vec<f32> = (0..32 * 64).map(|_| lcg(&mut seed) * 3.0).collect();
        // Some special blocks: all zeros, a single spike, tiny values.
        x[..32].iter_mut().for_each(|v| *v = 0.0);
        x[32..64].iter_mut().for_each(|v| *v = 0.0);
        x[40] = -5.5;
        x[64..96].iter_mut().for_each(|v| *v *= 1e-4);
        let mut q = Vec::new();
        quantize_q8_0(&x, &mut q);
        assert_eq!(q.len(), x.len() / 32 * 34);
        let y = dequantize_q8_0(&q);
        assert_eq!(y.len(), x.len());
        for (bx, by) in x.chunks(32).zip(y.chunks(32)) {
            let amax = bx.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            // Step is d = amax/127; rounding costs at most d/2. d is stored as f16: relative
            // error <= 2^-11, or absolute 2^-25 in the subnormal range; times |q| <= 127.
            let d = amax / 127.0;
            let d_err = (d / 2048.0).max(1.0 / (1u32 << 25) as f32);
            let bound = d * 0.5 + 127.0 * d_err + 1e-12;
            for (a, b) in bx.iter().zip(by) {
                assert!((a - b).abs() <= bound, "{a} vs {b}, bound {bound}");
            }
        }
        // Zero block decodes to exact zeros; the spike survives exactly up to f16 precision.
        assert!(y[..32].iter().all(|&v| v == 0.0));
        assert!((y[40] + 5.5).abs() < 5.5 / 1000.0);
        assert_eq!(q[34 + 2 + 8] as i8, -127);
    }

    #[test]
    fn q8_0_matches_reference_formula_on_a_known_block() {
        let x: Vec<f32> = (0..32).map(|i| i as f32 - 15.5).collect();
        let mut q = Vec::new();
        quantize_q8_0(&x, &mut q);
        let d = half::f16::from_le_bytes([q[0], q[1]]).to_f32();
        assert_eq!(d, half::f16::from_f32(15.5 / 127.0).to_f32());
        let qs: Vec<i8> = q[2..].iter().map(|&b| b as i8).collect();
        // amax = 15.5, so the scale is 127/15.5 = 8.1935...
        assert_eq!(qs[0], -127); // -15.5
        assert_eq!(qs[31], 127); // 15.5
        assert_eq!(qs[16], 4); // 0.5 * 8.19 = 4.10
        assert_eq!(qs[15], -4); // -0.5
        assert_eq!(qs[20], 37); // 4.5 * 8.19 = 36.87
    }
}
