//! AutoSub model management for whisper.cpp.
//!
//! * [`convert_ct2_to_ggml`]: CTranslate2 / faster-whisper model directory -> whisper.cpp
//!   ggml file (f16, or q8_0 like whisper.cpp's `quantize` tool).
//! * [`CATALOG`] / [`download`] / [`download_model`]: the official ggml models with their
//!   sizes and SHA-256, and a verified, resumable, retrying HTTP downloader.
//! * [`default_models_dir`], [`list_installed`], [`model_path`], [`import_ct2_dir`],
//!   [`read_ggml_header`]: the local models directory.
//! * [`install_pair`], [`import_package`], [`list_packages`], [`find_package`],
//!   [`remove_package`]: Argos Translate packages (`.argosmodel`) for offline translation,
//!   from the Argos package index ([`fetch_index`], [`parse_index`], [`select`]). Also
//!   reachable as the module [`argos`] (`autosub_models::argos::find_package`, ...).
//!
//! No inference happens here; neither whisper.cpp nor CTranslate2 is linked.

pub mod argos;
mod catalog;
mod convert;
mod ct2;
mod download;
mod error;
mod ggml;
mod mel;
mod models_dir;
mod vocab;

pub use argos::{
    argos_dir, argos_index_url, compare_versions, fetch_index, find_package, import_package,
    install_entry, install_pair, list_packages, normalize_lang_code, package_dir, parse_index,
    remove_package, select, IndexEntry, InstalledPackage, ARGOS_INDEX_ENV, AUTOSUB_RECORD_FILE,
    DEFAULT_INDEX_URL as DEFAULT_ARGOS_INDEX_URL, MAX_INDEX_BYTES, MAX_PACKAGE_BYTES,
    MAX_PACKAGE_ENTRIES,
};
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
