//! The official whisper.cpp ggml models on Hugging Face (`ggerganov/whisper.cpp`).
//!
//! Sizes and SHA-256 digests are those of the files at revision
//! `5359861c739e955e79d9a303bcbc70fb988958b1` of that repository (the Git LFS object ids,
//! which are the SHA-256 of the file contents). They were taken from public projects that
//! pin these files: a mobile app's model catalog pinned to that revision lists all nine
//! (sizes and SHA-256), and other independent sources agree with it (a TypeScript table
//! pinned to the same revision for tiny/tiny.en/base/base.en/small/small.en with sizes, a
//! SQL migration "SHA-256 LFS object IDs" for tiny..medium, Nix `fetchurl` SRI hashes for
//! tiny..medium, several apps for medium.en and large-v3-turbo). The same catalog's sizes for
//! `ggml-base-q8_0.bin` / `ggml-tiny.en-q8_0.bin` are exactly what this crate's converter
//! produces, a further consistency check.
//!
//! whisper.cpp's own `models/README.md` lists only SHA-1 digests; for the English-only
//! models they describe an older upload (those files were re-uploaded 17 bytes longer, with
//! the `<|endoftext|>` token added to the vocabulary), so SHA-1 is not used here.
//!
//! URLs are pinned to that revision (`resolve/<revision>`), so a later re-upload on the
//! repository's head cannot change what is downloaded; the digest is checked all the same.

use serde::Serialize;

use crate::error::ModelError;

/// Default download location (the `ggerganov/whisper.cpp` Hugging Face repository).
pub const DEFAULT_BASE_URL: &str =
    "https://huggingface.co/ggerganov/whisper.cpp/resolve/5359861c739e955e79d9a303bcbc70fb988958b1";

/// The repository revision the catalog's digests were taken from.
pub const CATALOG_REVISION: &str = "5359861c739e955e79d9a303bcbc70fb988958b1";

/// One downloadable model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    /// Model name (`base`, `tiny.en`, `large-v3-turbo`, ...).
    pub name: &'static str,
    /// File name (`ggml-<name>.bin`).
    pub file_name: &'static str,
    /// Canonical download URL.
    pub url: &'static str,
    /// SHA-256 of the file (lower-case hex), when known.
    pub sha256: Option<&'static str>,
    /// Size in bytes, when known.
    pub size: Option<u64>,
    /// Whether the model is multilingual (names without `.en`).
    pub multilingual: bool,
}

impl CatalogEntry {
    /// The download URL with a different base (for mirrors and tests): `<base>/<file_name>`.
    pub fn url_with_base(&self, base: &str) -> String {
        format!("{}/{}", base.trim_end_matches('/'), self.file_name)
    }
}

macro_rules! entry {
    ($name:literal, $size:expr, $sha:literal, $multi:expr) => {
        CatalogEntry {
            name: $name,
            file_name: concat!("ggml-", $name, ".bin"),
            url: concat!(
                "https://huggingface.co/ggerganov/whisper.cpp/resolve/5359861c739e955e79d9a303bcbc70fb988958b1/ggml-",
                $name,
                ".bin"
            ),
            sha256: Some($sha),
            size: Some($size),
            multilingual: $multi,
        }
    };
}

/// The catalog, smallest first.
pub const CATALOG: &[CatalogEntry] = &[
    entry!(
        "tiny",
        77_691_713,
        "be07e048e1e599ad46341c8d2a135645097a538221678b7acdd1b1919c6e1b21",
        true
    ),
    entry!(
        "tiny.en",
        77_704_715,
        "921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f",
        false
    ),
    entry!(
        "base",
        147_951_465,
        "60ed5bc3dd14eea856493d334349b405782ddcaf0028d4b5df4088345fba2efe",
        true
    ),
    entry!(
        "base.en",
        147_964_211,
        "a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002",
        false
    ),
    entry!(
        "small",
        487_601_967,
        "1be3a9b2063867b937e64e2ec7483364a79917e157fa98c5d94b5c1fffea987b",
        true
    ),
    entry!(
        "small.en",
        487_614_201,
        "c6138d6d58ecc8322097e0f987c32f1be8bb0a18532a3f88f734d1bbf9c41e5d",
        false
    ),
    entry!(
        "medium",
        1_533_763_059,
        "6c14d5adee5f86394037b4e4e8b59f1673b6cee10e3cf0b11bbdbee79c156208",
        true
    ),
    entry!(
        "medium.en",
        1_533_774_781,
        "cc37e93478338ec7700281a7ac30a10128929eb8f427dda2e865faa8f6da4356",
        false
    ),
    entry!(
        "large-v3-turbo",
        1_624_555_275,
        "1fc70f774d38eb169993ac391eea357ef47c88757ef72ee5943879b7e8e2bc69",
        true
    ),
];

/// Looks a model up by name (`base`, `ggml-base.bin` and `ggml-base` are accepted).
pub fn find(name: &str) -> Option<&'static CatalogEntry> {
    let n = name.trim();
    let n = n.strip_prefix("ggml-").unwrap_or(n);
    let n = n.strip_suffix(".bin").unwrap_or(n);
    CATALOG.iter().find(|e| e.name.eq_ignore_ascii_case(n))
}

/// Like [`find`], but an unknown name is an error listing the known ones.
pub fn lookup(name: &str) -> Result<&'static CatalogEntry, ModelError> {
    find(name).ok_or_else(|| ModelError::UnknownModel {
        name: name.to_owned(),
        known: CATALOG
            .iter()
            .map(|e| e.name)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_consistent() {
        assert_eq!(CATALOG.len(), 9);
        for e in CATALOG {
            assert_eq!(e.file_name, format!("ggml-{}.bin", e.name));
            assert_eq!(e.url, format!("{DEFAULT_BASE_URL}/{}", e.file_name));
            assert_eq!(e.url_with_base(DEFAULT_BASE_URL), e.url);
            let sha = e.sha256.unwrap();
            assert_eq!(sha.len(), 64);
            assert!(sha
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            assert_eq!(e.multilingual, !e.name.ends_with(".en"));
        }
        assert_eq!(find("ggml-base.bin").unwrap().name, "base");
        assert_eq!(find("Tiny.EN").unwrap().name, "tiny.en");
        assert!(find("huge").is_none());
        let err = lookup("huge").unwrap_err().to_string();
        assert!(err.contains("large-v3-turbo"), "{err}");
        assert_eq!(
            find("tiny").unwrap().url_with_base("http://127.0.0.1:9/m/"),
            "http://127.0.0.1:9/m/ggml-tiny.bin"
        );
    }
}
