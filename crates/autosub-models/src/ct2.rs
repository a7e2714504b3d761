//! Reader for CTranslate2 `model.bin` files (binary format versions 4 to 6).
//!
//! Layout (little-endian), as written by `ctranslate2/specs/model_spec.py::_serialize`:
//!
//! ```text
//! u32 binary_version
//! string spec_name            (string = u16 length incl. trailing NUL, bytes, NUL)
//! u32 spec_revision
//! u32 n_variables
//! n_variables x { string name, u8 rank, rank x u32 dim, u8 dtype, u32 n_bytes, n_bytes data }
//! u32 n_aliases
//! n_aliases x { string alias, string target }
//! ```
//!
//! dtype ids: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16.
//! Quantized weights (`int8`, `int16`) come with a `<name>_scale` variable; the real value is
//! `q / scale` (per output row for int8, a single scalar for int16).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::ModelError;

/// Element type of a CTranslate2 variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ct2Dtype {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl Ct2Dtype {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Ct2Dtype::F32,
            1 => Ct2Dtype::I8,
            2 => Ct2Dtype::I16,
            3 => Ct2Dtype::I32,
            4 => Ct2Dtype::F16,
            5 => Ct2Dtype::Bf16,
            _ => return None,
        })
    }

    pub(crate) fn size(self) -> usize {
        match self {
            Ct2Dtype::I8 => 1,
            Ct2Dtype::I16 | Ct2Dtype::F16 | Ct2Dtype::Bf16 => 2,
            Ct2Dtype::F32 | Ct2Dtype::I32 => 4,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Ct2Dtype::F32 => "float32",
            Ct2Dtype::I8 => "int8",
            Ct2Dtype::I16 => "int16",
            Ct2Dtype::I32 => "int32",
            Ct2Dtype::F16 => "float16",
            Ct2Dtype::Bf16 => "bfloat16",
        }
    }
}

/// One stored variable: where its bytes are in the file.
#[derive(Debug, Clone)]
pub(crate) struct Ct2Var {
    pub shape: Vec<usize>,
    pub dtype: Ct2Dtype,
    offset: u64,
    nbytes: u64,
}

impl Ct2Var {
    pub(crate) fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// An opened `model.bin`: the variable index plus the file to read data from on demand.
pub(crate) struct Ct2Model {
    path: PathBuf,
    file: BufReader<File>,
    vars: HashMap<String, Ct2Var>,
    aliases: HashMap<String, String>,
    pub spec_name: String,
    pub binary_version: u32,
}

struct Cursor<'a> {
    r: &'a mut BufReader<File>,
    pos: u64,
    len: u64,
    path: &'a Path,
}

impl Cursor<'_> {
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, ModelError> {
        if self.pos + n as u64 > self.len {
            return Err(ModelError::ct2(self.path, "file is truncated"));
        }
        let mut buf = vec![0u8; n];
        self.r
            .read_exact(&mut buf)
            .map_err(|e| ModelError::io("reading", self.path, e))?;
        self.pos += n as u64;
        Ok(buf)
    }
    fn u8(&mut self) -> Result<u8, ModelError> {
        Ok(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ModelError> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, ModelError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String, ModelError> {
        let n = self.u16()? as usize;
        let mut b = self.bytes(n)?;
        if b.last() == Some(&0) {
            b.pop();
        }
        String::from_utf8(b).map_err(|_| ModelError::ct2(self.path, "variable name is not UTF-8"))
    }
    fn skip(&mut self, n: u64) -> Result<(), ModelError> {
        if self.pos + n > self.len {
            return Err(ModelError::ct2(self.path, "file is truncated"));
        }
        self.r
            .seek_relative(n as i64)
            .map_err(|e| ModelError::io("seeking in", self.path, e))?;
        self.pos += n;
        Ok(())
    }
}

impl Ct2Model {
    /// Opens `model.bin` and reads its variable index (the data itself is read lazily).
    pub(crate) fn open(path: &Path) -> Result<Self, ModelError> {
        let f = File::open(path).map_err(|e| ModelError::io("opening", path, e))?;
        let len = f
            .metadata()
            .map_err(|e| ModelError::io("reading metadata of", path, e))?
            .len();
        let mut file = BufReader::with_capacity(1 << 16, f);
        let mut c = Cursor {
            r: &mut file,
            pos: 0,
            len,
            path,
        };
        let binary_version = c.u32()?;
        if !(4..=6).contains(&binary_version) {
            return Err(ModelError::ct2(
                path,
                format!(
                    "unsupported CTranslate2 binary version {binary_version} (supported: 4 to 6); \
                     re-convert the model with ctranslate2 >= 3"
                ),
            ));
        }
        let spec_name = c.string()?;
        let _revision = c.u32()?;
        let n_vars = c.u32()?;
        let mut vars = HashMap::with_capacity(n_vars as usize);
        for _ in 0..n_vars {
            let name = c.string()?;
            let rank = c.u8()? as usize;
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(c.u32()? as usize);
            }
            let type_id = c.u8()?;
            let dtype = Ct2Dtype::from_id(type_id).ok_or_else(|| {
                ModelError::ct2(path, format!("variable {name}: unknown dtype id {type_id}"))
            })?;
            let nbytes = u64::from(c.u32()?);
            let numel: u64 = shape.iter().map(|&d| d as u64).product();
            if numel * dtype.size() as u64 != nbytes {
                return Err(ModelError::ct2(
                    path,
                    format!(
                        "variable {name}: shape {shape:?} of {} does not match its {nbytes} bytes",
                        dtype.name()
                    ),
                ));
            }
            let offset = c.pos;
            c.skip(nbytes)?;
            vars.insert(
                name,
                Ct2Var {
                    shape,
                    dtype,
                    offset,
                    nbytes,
                },
            );
        }
        let mut aliases = HashMap::new();
        if c.pos < c.len {
            let n_aliases = c.u32()?;
            for _ in 0..n_aliases {
                let alias = c.string()?;
                let target = c.string()?;
                aliases.insert(alias, target);
            }
        }
        Ok(Ct2Model {
            path: path.to_path_buf(),
            file,
            vars,
            aliases,
            spec_name,
            binary_version,
        })
    }

    fn resolve<'a>(&'a self, name: &'a str) -> &'a str {
        let mut n = name;
        // Aliases may chain in principle; bound the walk.
        for _ in 0..8 {
            match self.aliases.get(n) {
                Some(t) => n = t,
                None => break,
            }
        }
        n
    }

    /// Looks a variable up by name, following aliases.
    pub(crate) fn var(&self, name: &str) -> Option<&Ct2Var> {
        self.vars.get(self.resolve(name))
    }

    /// Like [`Ct2Model::var`] but a missing variable is an error.
    pub(crate) fn require(&self, name: &str) -> Result<&Ct2Var, ModelError> {
        self.var(name)
            .ok_or_else(|| ModelError::ct2(&self.path, format!("missing variable {name}")))
    }

    /// Whether a variable (or alias) of that name exists.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.var(name).is_some()
    }

    fn raw(&mut self, name: &str) -> Result<(Ct2Var, Vec<u8>), ModelError> {
        let v = self.require(name)?.clone();
        self.file
            .seek(SeekFrom::Start(v.offset))
            .map_err(|e| ModelError::io("seeking in", &self.path, e))?;
        let mut buf = vec![0u8; v.nbytes as usize];
        self.file
            .read_exact(&mut buf)
            .map_err(|e| ModelError::io("reading", &self.path, e))?;
        Ok((v, buf))
    }

    /// Reads a scalar integer variable (such as `encoder/num_heads`).
    pub(crate) fn read_int_scalar(&mut self, name: &str) -> Result<i64, ModelError> {
        let (v, b) = self.raw(name)?;
        if v.numel() != 1 {
            return Err(ModelError::ct2(
                &self.path,
                format!("{name} is not a scalar"),
            ));
        }
        Ok(match v.dtype {
            Ct2Dtype::I8 => i64::from(b[0] as i8),
            Ct2Dtype::I16 => i64::from(i16::from_le_bytes([b[0], b[1]])),
            Ct2Dtype::I32 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Ct2Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            Ct2Dtype::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32() as i64,
            Ct2Dtype::Bf16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32() as i64,
        })
    }

    /// Reads a variable as `f32`, de-quantizing `int8` / `int16` weights with their `_scale`.
    pub(crate) fn read_f32(&mut self, name: &str) -> Result<Vec<f32>, ModelError> {
        let (v, b) = self.raw(name)?;
        let mut out: Vec<f32> = match v.dtype {
            Ct2Dtype::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Ct2Dtype::F16 => b
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Ct2Dtype::Bf16 => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Ct2Dtype::I8 => b.iter().map(|&x| f32::from(x as i8)).collect(),
            Ct2Dtype::I16 => b
                .chunks_exact(2)
                .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])))
                .collect(),
            Ct2Dtype::I32 => {
                return Err(ModelError::ct2(
                    &self.path,
                    format!("{name}: int32 tensors are not supported"),
                ))
            }
        };
        if matches!(v.dtype, Ct2Dtype::I8 | Ct2Dtype::I16) {
            let scale_name = format!("{}_scale", self.resolve(name));
            if !self.has(&scale_name) {
                return Err(ModelError::ct2(
                    &self.path,
                    format!(
                        "{name} is quantized ({}) but {scale_name} is missing",
                        v.dtype.name()
                    ),
                ));
            }
            let scale = self.read_f32(&scale_name)?;
            let rows = v.shape.first().copied().unwrap_or(1).max(1);
            let per_row = out.len() / rows;
            if scale.len() == 1 {
                let s = scale[0];
                out.iter_mut().for_each(|x| *x /= s);
            } else if scale.len() == rows {
                for (row, s) in out.chunks_mut(per_row.max(1)).zip(scale.iter()) {
                    row.iter_mut().for_each(|x| *x /= *s);
                }
            } else {
                return Err(ModelError::ct2(
                    &self.path,
                    format!(
                        "{scale_name} has {} values, expected 1 or {rows}",
                        scale.len()
                    ),
                ));
            }
        }
        Ok(out)
    }

    /// The element type the weights are stored in (taken from the token embedding).
    pub(crate) fn weight_dtype(&self) -> Option<Ct2Dtype> {
        self.var("decoder/embeddings/weight").map(|v| v.dtype)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
