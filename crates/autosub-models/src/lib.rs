//! AutoSub model management for whisper.cpp.
//!
//! * [`convert_ct2_to_ggml`]: CTranslate2 / faster-whisper model directory -> whisper.cpp
//!   ggml file (f16, or q8_0 like whisper.cpp's `quantize` tool).
//! * [`CATALOG`] / [`download`] / [`download_model`]: the official ggml models with their
//!   sizes and SHA-256, and a verified, resumable, retrying HTTP downloader.
//! * [`default_models_dir`], [`list_installed`], [`model_path`], [`import_ct2_dir`],
//!   [`read_ggml_header`]: the local models directory.
//!
//! No inference happens here and whisper.cpp is not linked.

mod catalog;
mod convert;
mod ct2;
mod download;
mod error;
mod ggml;
mod mel;
mod models_dir;
mod vocab;

pub use catalog::{find, lookup, CatalogEntry, CATALOG, CATALOG_REVISION, DEFAULT_BASE_URL};
pub use convert::{
    convert_ct2_to_ggml, derive_model_name, inspect_ct2_dir, validate_ct2_dir, ConvertReport, Quant,
};
pub use download::{
    download, download_model, partial_path, sha256_file, DownloadOptions, DownloadReport,
    BASE_URL_ENV,
};
pub use error::ModelError;
pub use ggml::{
    dequantize_q8_0, quantize_q8_0, read_ggml_header, read_tensor_table, GgmlFtype, GgmlHeader,
    GgmlTensorInfo, GGML_FILE_MAGIC, GGML_QNT_VERSION, GGML_QNT_VERSION_FACTOR, Q8_0_BLOCK_BYTES,
    QK8_0,
};
pub use mel::mel_filterbank;
pub use models_dir::{
    default_models_dir, import_ct2_dir, import_ct2_dir_with_progress, list_installed, model_path,
    validate_model_name, InstalledModel, MODELS_DIR_ENV,
};
pub use vocab::{ByteDecoder, GGML_VOCAB_TOKENS};
