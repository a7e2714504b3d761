//! The local models directory: where models live, what is installed, importing.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::convert::{
    convert_ct2_to_ggml, derive_model_name, inspect_ct2_dir, ConvertReport, Quant,
};
use crate::error::ModelError;
use crate::ggml::{read_ggml_header, GgmlHeader};

/// Environment variable overriding the models directory.
pub const MODELS_DIR_ENV: &str = "AUTOSUB_MODELS_DIR";

/// `$AUTOSUB_MODELS_DIR`, else `$XDG_DATA_HOME/autosub/models`, else
/// `~/.local/share/autosub/models` (relative `./autosub-models` if there is no home).
/// Empty variables count as unset; a relative `XDG_DATA_HOME` is ignored, as the XDG
/// specification says.
pub fn default_models_dir() -> PathBuf {
    models_dir_from(
        std::env::var_os(MODELS_DIR_ENV),
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
    )
}

fn models_dir_from(
    explicit: Option<std::ffi::OsString>,
    xdg_data_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> PathBuf {
    if let Some(d) = explicit.filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(x) = xdg_data_home.map(PathBuf::from).filter(|p| p.is_absolute()) {
        return x.join("autosub").join("models");
    }
    match home.filter(|h| !h.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/share/autosub/models"),
        None => PathBuf::from("autosub-models"),
    }
}

/// `<dir>/ggml-<name>.bin`.
pub fn model_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("ggml-{name}.bin"))
}

/// Checks that a model name can be used in a file name: non-empty, at most 100 characters
/// of `[A-Za-z0-9._-]`, not starting with `.` or `-`.
pub fn validate_model_name(name: &str) -> Result<(), ModelError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidName(name.to_owned()))
    }
}

/// A model file found in the models directory.
#[derive(Debug, Clone, Serialize)]
pub struct InstalledModel {
    /// Name (`base`, `tiny.en`, `base-q8_0`, ...): the file name without `ggml-` and `.bin`.
    pub name: String,
    /// Full path.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Weight format from the header (`f16`, `q8_0`, `q5_1`, ...), or `invalid` when the file
    /// is not a readable whisper ggml model.
    pub quantization: String,
    /// Whether the model is multilingual (`None` when the header is unreadable).
    pub multilingual: Option<bool>,
    /// The header, when readable.
    pub header: Option<GgmlHeader>,
    /// Why the header could not be read, if it could not.
    pub error: Option<String>,
}

/// Lists `ggml-*.bin` files in `dir`, sorted by name. Partial downloads and temporary
/// conversion files are skipped; a missing directory gives an empty list.
pub fn list_installed(dir: &Path) -> Vec<InstalledModel> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<InstalledModel> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let file_name = e.file_name().to_string_lossy().into_owned();
            let name = file_name
                .strip_prefix("ggml-")?
                .strip_suffix(".bin")?
                .to_owned();
            if name.is_empty() {
                return None;
            }
            let path = e.path();
            let meta = std::fs::metadata(&path).ok()?;
            if !meta.is_file() {
                return None;
            }
            let (quantization, multilingual, header, error) = match read_ggml_header(&path) {
                Ok(h) => (h.ftype().as_str(), Some(h.is_multilingual()), Some(h), None),
                Err(e) => ("invalid".to_owned(), None, None, Some(e.to_string())),
            };
            Some(InstalledModel {
                name,
                path,
                size: meta.len(),
                quantization,
                multilingual,
                header,
                error,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Converts a CTranslate2 Whisper directory and installs it in `models_dir`
/// (created if needed) as `ggml-<name>.bin`, where `name` defaults to one derived from the
/// model's shapes (`base`, `tiny.en`, ...) and gets a `-q8_0` suffix for [`Quant::Q8_0`]
/// (`ggml-base-q8_0.bin`). An existing file of that name is replaced. Returns the path.
pub fn import_ct2_dir(
    src_dir: &Path,
    models_dir: &Path,
    name: Option<&str>,
    quant: Quant,
) -> Result<PathBuf, ModelError> {
    import_ct2_dir_with_progress(src_dir, models_dir, name, quant, &mut |_, _| true)
        .map(|r| r.output)
}

/// [`import_ct2_dir`] with a progress callback (see [`convert_ct2_to_ggml`]) and the full
/// report.
pub fn import_ct2_dir_with_progress(
    src_dir: &Path,
    models_dir: &Path,
    name: Option<&str>,
    quant: Quant,
    progress: &mut dyn FnMut(u64, u64) -> bool,
) -> Result<ConvertReport, ModelError> {
    if let Some(n) = name {
        validate_model_name(n)?;
    }
    let header = inspect_ct2_dir(src_dir)?;
    let base = name
        .map(str::to_owned)
        .unwrap_or_else(|| derive_model_name(&header));
    let full = match quant {
        Quant::Q8_0 if !base.ends_with("-q8_0") => format!("{base}-q8_0"),
        _ => base,
    };
    validate_model_name(&full)?;
    std::fs::create_dir_all(models_dir).map_err(|e| ModelError::io("creating", models_dir, e))?;
    convert_ct2_to_ggml(src_dir, &model_path(models_dir, &full), quant, progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_dir_precedence() {
        let s = |x: &str| Some(std::ffi::OsString::from(x));
        assert_eq!(
            models_dir_from(s("/a"), s("/x"), s("/h")),
            PathBuf::from("/a")
        );
        assert_eq!(
            models_dir_from(s(""), s("/x"), s("/h")),
            PathBuf::from("/x/autosub/models")
        );
        assert_eq!(
            models_dir_from(None, s("rel"), s("/h")),
            PathBuf::from("/h/.local/share/autosub/models")
        );
        assert_eq!(
            models_dir_from(None, None, s("/h")),
            PathBuf::from("/h/.local/share/autosub/models")
        );
        assert_eq!(
            models_dir_from(None, None, None),
            PathBuf::from("autosub-models")
        );
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(
            model_path(Path::new("/m"), "base-q8_0"),
            PathBuf::from("/m/ggml-base-q8_0.bin")
        );
        for ok in ["base", "tiny.en", "large-v3-turbo", "my_model-2"] {
            validate_model_name(ok).unwrap();
        }
        for bad in ["", "../x", "a/b", ".hidden", "-x", "a b", "é"] {
            assert!(validate_model_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_reports_invalid_files_and_skips_partials() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ggml-junk.bin"),
            b"hello world, not a model",
        )
        .unwrap();
        std::fs::write(dir.path().join("ggml-gguf.bin"), b"GGUF\x03\0\0\0").unwrap();
        std::fs::write(dir.path().join("ggml-base.bin.partial"), b"x").unwrap();
        std::fs::write(dir.path().join("other.bin"), b"x").unwrap();
        let l = list_installed(dir.path());
        let names: Vec<&str> = l.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["gguf", "junk"]);
        assert!(l
            .iter()
            .all(|m| m.quantization == "invalid" && m.header.is_none()));
        assert!(l[0].error.as_deref().unwrap().contains("GGUF"));
        assert!(l[1].error.as_deref().unwrap().contains("bad magic"));
        assert!(list_installed(&dir.path().join("missing")).is_empty());
    }
}
