//! Where the AutoSub service keeps task files (a task's input and outputs, kept 24 h).
//!
//! Two backends behind one [`Storage`] value:
//!
//! - **local**: a folder, by default `$AUTOSUB_DATA_DIR/storage/`, laid out as `task_{id}/input/NAME` and
//!   `task_{id}/out/NAME`;
//! - **S3**: an S3-compatible object store (AWS, MinIO, moto, ...) chosen with
//!   `AUTOSUB_STORAGE_URL=s3://bucket/prefix` and configured by the standard `AWS_ENDPOINT_URL`,
//!   `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` variables, so that workers on different
//!   machines share results and can hand out presigned download links.
//!
//! Keys are `/`-separated and always relative to the root folder (local) or the prefix (S3); a key can never
//! escape that root: empty, `.` and `..` segments, absolute keys, backslashes and control characters are
//! refused with [`StorageError::InvalidKey`]. [`Storage::task_key`] builds clean keys from untrusted names.
//!
//! Files move streamed (never whole in memory, except S3 objects up to one part, 8 MiB), and writes to local
//! paths are atomic: a temporary name in the same folder, then a rename.

#![warn(missing_docs)]

mod keys;
pub mod moto;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{ClientOptions, ObjectStore, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use keys::{check_key, check_prefix};

/// The environment variable that selects the backend (`s3://bucket/prefix`; unset or empty: local folder).
pub const STORAGE_URL_VAR: &str = "AUTOSUB_STORAGE_URL";

/// Files larger than this go to S3 as a multipart upload, in parts of this size; smaller ones in one PUT.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// How many multipart parts may be in flight at once (memory: about this many times [`PART_SIZE`]).
const PARTS_IN_FLIGHT: usize = 4;

/// Read size for local streams and uploads.
const CHUNK: usize = 256 * 1024;

/// Name prefix of the temporary files written next to their destination; never listed.
const TMP_PREFIX: &str = ".autosub-tmp-";

/// Errors of the storage layer. No message ever contains the S3 secret access key.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key (or the local file behind it) does not exist.
    #[error("not found in storage: {0}")]
    NotFound(String),
    /// The key is not a clean relative path (empty, absolute, `.`/`..`, backslash, control character).
    #[error("invalid storage key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The configuration is unusable; `var` names the environment variable to fix.
    #[error("{var}: {message}")]
    Config {
        /// The environment variable at fault, e.g. `AUTOSUB_STORAGE_URL` or `AWS_SECRET_ACCESS_KEY`.
        var: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A local file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The object store failed (network, HTTP status, protocol).
    #[error("{context}: {message}")]
    Remote {
        /// What was being done, with the key.
        context: String,
        /// The object store's error and its causes, with any secret removed.
        message: String,
    },
}

impl StorageError {
    fn io(context: impl fmt::Display, path: &Path, source: std::io::Error) -> Self {
        StorageError::Io {
            context: format!("{context} {}", path.display()),
            source,
        }
    }
}

/// S3 connection settings, normally read from the standard `AWS_*` variables by [`S3Options::from_env`].
///
/// Its `Debug` output hides the secret access key and the session token.
#[derive(Clone, Default)]
pub struct S3Options {
    /// `AWS_ENDPOINT_URL`: `http(s)://host:port` of an S3-compatible server; `None` for AWS itself.
    /// Plain `http://` is allowed; requests are path-style (`endpoint/bucket/key`).
    pub endpoint: Option<String>,
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`); `us-east-1` when `None`.
    pub region: Option<String>,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `AWS_SESSION_TOKEN`, for temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint.as_deref().map(redact_userinfo))
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &hidden(&self.secret_access_key))
            .field("session_token", &hidden(&self.session_token))
            .finish()
    }
}

impl S3Options {
    /// Reads `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`), `AWS_REGION` (or `AWS_DEFAULT_REGION`),
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`; empty values count as unset.
    pub fn from_env() -> S3Options {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        S3Options {
            endpoint: var("AWS_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT")),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: var("AWS_SESSION_TOKEN"),
        }
    }
}

/// The S3 half of [`Storage`]: a bucket, a key prefix inside it, and the client.
#[derive(Clone)]
pub struct S3Storage {
    bucket: String,
    /// Without leading or trailing `/`; may be empty.
    prefix: String,
    endpoint: Option<String>,
    region: String,
    store: Arc<AmazonS3>,
    /// Kept only to scrub it out of error messages.
    secret: Option<Arc<str>>,
}

impl S3Storage {
    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix inside the bucket (no leading or trailing `/`; empty for the whole bucket).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn path(&self, key: &str) -> Result<ObjectPath, StorageError> {
        let full = if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        ObjectPath::parse(&full).map_err(|_| StorageError::InvalidKey {
            key: key.to_string(),
            reason: "not a valid object path",
        })
    }

    fn prefix_path(&self, prefix: &str) -> Result<Option<ObjectPath>, StorageError> {
        let full = match (self.prefix.is_empty(), prefix.is_empty()) {
            (true, true) => return Ok(None),
            (true, false) => prefix.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{prefix}", self.prefix),
        };
        ObjectPath::parse(&full)
            .map(Some)
            .map_err(|_| StorageError::InvalidKey {
                key: prefix.to_string(),
                reason: "not a valid object path",
            })
    }

    /// The key of a listed object relative to the prefix, or `None` if it lies outside.
    fn relative(&self, location: &ObjectPath) -> Option<String> {
        let raw = location.as_ref();
        if self.prefix.is_empty() {
            return Some(raw.to_string());
        }
        raw.strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')
            .map(str::to_string)
    }

    fn err(&self, op: &str, key: &str, e: object_store::Error) -> StorageError {
        if let object_store::Error::NotFound { .. } = e {
            return StorageError::NotFound(key.to_string());
        }
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let text = s.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = s.source();
        }
        if let Some(secret) = &self.secret {
            message = message.replace(&**secret, "***");
        }
        StorageError::Remote {
            context: format!("{op} s3://{}/{}", self.bucket, self.full_key(key)),
            message,
        }
    }

    fn full_key(&self, key: &str) -> String {
        match (self.prefix.is_empty(), key.is_empty()) {
            (true, _) => key.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{key}", self.prefix),
        }
    }
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint.as_deref().map(redact_userinfo))
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Where task files live: a local folder or an S3-compatible bucket (see the crate docs).
#[derive(Clone, Debug)]
pub enum Storage {
    /// Files under a local folder, one file per key (`root/task_7/out/a.srt`).
    Local {
        /// The storage folder; created on the first write.
        root: PathBuf,
    },
    /// Objects in an S3-compatible bucket, under a prefix.
    S3(S3Storage),
}

/// A byte stream of an object, as returned by [`Storage::open`].
pub type ByteStream = BoxStream<'static, Result<Bytes, StorageError>>;

impl Storage {
    /// Chooses the backend from the value of `AUTOSUB_STORAGE_URL`.
    ///
    /// `None` (or an empty value) gives the local folder `data_dir/storage`; `Some("s3://bucket/prefix")` an
    /// S3 store configured from the `AWS_*` variables ([`S3Options::from_env`]). Any other value is a
    /// [`StorageError::Config`] naming `AUTOSUB_STORAGE_URL`.
    pub fn from_url(url: Option<&str>, data_dir: &Path) -> Result<Storage, StorageError> {
        match keys::parse_storage_url(url.unwrap_or(""))? {
            None => Ok(Storage::local(data_dir.join("storage"))),
            Some((bucket, prefix)) => Storage::s3(&bucket, &prefix, S3Options::from_env()),
        }
    }

    /// A local folder backend rooted at `root` (created on the first write).
    pub fn local(root: impl Into<PathBuf>) -> Storage {
        Storage::Local { root: root.into() }
    }

    /// An S3 backend for `bucket`, keys under `prefix` (may be empty; surrounding `/` are ignored).
    ///
    /// Plain `http://` endpoints are allowed; requests are path-style, which MinIO and moto need. Without
    /// credentials and without an endpoint, the AWS instance/container credentials are used; with a custom
    /// endpoint both the access key id and the secret are required.
    pub fn s3(bucket: &str, prefix: &str, options: S3Options) -> Result<Storage, StorageError> {
        keys::check_bucket(bucket)?;
        let prefix = keys::clean_url_prefix(prefix)?;
        let endpoint = match options.endpoint.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(e) => {
                if !endpoint_has_host(e) {
                    return Err(StorageError::Config {
                        var: "AWS_ENDPOINT_URL",
                        // The value is not repeated: a mistyped variable could hold a secret.
                        message: "expected http://host[:port] or https://host[:port]".to_string(),
                    });
                }
                Some(e.trim_end_matches('/').to_string())
            }
        };
        let region = options
            .region
            .clone()
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| "us-east-1".to_string());

        let client = ClientOptions::new()
            .with_timeout(Duration::from_secs(300))
            .with_connect_timeout(Duration::from_secs(10));
        let mut builder = AmazonS3Builder::new()
            .with_client_options(client)
            .with_bucket_name(bucket)
            .with_region(&region)
            .with_virtual_hosted_style_request(false);
        if let Some(e) = &endpoint {
            builder = builder
                .with_endpoint(e)
                .with_allow_http(e.to_ascii_lowercase().starts_with("http://"));
        }
        let key_id = options.access_key_id.filter(|v| !v.is_empty());
        let secret = options.secret_access_key.filter(|v| !v.is_empty());
        match (key_id, &secret) {
            (Some(id), Some(secret)) => {
                builder = builder
                    .with_access_key_id(id)
                    .with_secret_access_key(secret);
                if let Some(token) = options.session_token.filter(|v| !v.is_empty()) {
                    builder = builder.with_token(token);
                }
            }
            (Some(_), None) => {
                return Err(StorageError::Config {
                    var: "AWS_SECRET_ACCESS_KEY",
                    message: "not set, but AWS_ACCESS_KEY_ID is".to_string(),
                })
            }
            (None, Some(_)) => {
                return Err(StorageError::Config {
                    var: "AWS_ACCESS_KEY_ID",
                    message: "not set, but AWS_SECRET_ACCESS_KEY is".to_string(),
                })
            }
            (None, None) if endpoint.is_some() => {
                return Err(StorageError::Config {
                    var: "AWS_ACCESS_KEY_ID",
                    message: "not set (with AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and \
                              AWS_SECRET_ACCESS_KEY are required)"
                        .to_string(),
                })
            }
            (None, None) => {
                tracing::info!("no AWS_ACCESS_KEY_ID: using the instance/container credentials");
            }
        }
        let secret: Option<Arc<str>> = secret.map(Arc::from);
        let store = builder.build().map_err(|e| {
            let mut message = e.to_string();
            if let Some(s) = &secret {
                message = message.replace(&**s, "***");
            }
            StorageError::Config {
                var: STORAGE_URL_VAR,
                message: format!("cannot set up the S3 client: {message}"),
            }
        })?;
        Ok(Storage::S3(S3Storage {
            bucket: bucket.to_string(),
            prefix,
            endpoint,
            region,
            store: Arc::new(store),
            secret,
        }))
    }

    /// A one-line description for logs and `doctor`: `local /x/storage` or
    /// `s3://bucket/prefix (endpoint http://host:9000, region us-east-1)`. Never contains a secret.
    pub fn describe(&self) -> String {
        match self {
            Storage::Local { root } => format!("local {}", root.display()),
            Storage::S3(s) => {
                let location = if s.prefix.is_empty() {
                    format!("s3://{}", s.bucket)
                } else {
                    format!("s3://{}/{}", s.bucket, s.prefix)
                };
                let endpoint = s
                    .endpoint
                    .as_deref()
                    .map(redact_userinfo)
                    .unwrap_or_else(|| "AWS".to_string());
                format!("{location} (endpoint {endpoint}, region {})", s.region)
            }
        }
    }

    /// True for the local folder backend.
    pub fn is_local(&self) -> bool {
        matches!(self, Storage::Local { .. })
    }

    /// The local storage folder, or `None` for S3.
    pub fn local_root(&self) -> Option<&Path> {
        match self {
            Storage::Local { root } => Some(root),
            Storage::S3(_) => None,
        }
    }

    /// The key `task_{id}/{rel}`, with `rel` cleaned: `\` taken as `/`, control characters removed, and
    /// empty, `.` and `..` segments dropped, so `../../etc/passwd` becomes `task_{id}/etc/passwd` and the
    /// result always stays inside the task's folder. A `rel` with nothing left gives `task_{id}`.
    pub fn task_key(id: i64, rel: &str) -> String {
        keys::task_key(id, rel)
    }

    /// Stores the local file `file` under `key`, streamed from disk; returns the number of bytes stored.
    ///
    /// Local: copied to a temporary name next to the destination (folders created), then renamed into
    /// place. S3: files up to [`PART_SIZE`] in one PUT, larger ones as a multipart upload in
    /// [`PART_SIZE`] parts (aborted on failure). An existing object is replaced.
    pub async fn put_file(&self, key: &str, file: &Path) -> Result<u64, StorageError> {
        check_key(key)?;
        match self {
            Storage::Local { root } => {
                let dest = local_path(root, key);
                let parent = dest.parent().unwrap_or(root);
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| StorageError::io("cannot create", parent, e))?;
                let tmp = tmp_path(&dest);
                let copied = match tokio::fs::copy(file, &tmp).await {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tokio::fs::remove_file(&tmp).await;
                        return Err(StorageError::io("cannot copy", file, e));
                    }
                };
                if let Err(e) = tokio::fs::rename(&tmp, &dest).await {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(StorageError::io("cannot rename into", &dest, e));
                }
                tracing::debug!(key, bytes = copied, "stored locally");
                Ok(copied)
            }
            Storage::S3(s) => {
                let path = s.path(key)?;
                let mut f = tokio::fs::File::open(file)
                    .await
                    .map_err(|e| StorageError::io("cannot open", file, e))?;
                let len = f
                    .metadata()
                    .await
                    .map_err(|e| StorageError::io("cannot stat", file, e))?
                    .len();
                if len <= PART_SIZE as u64 {
                    let mut buf = Vec::with_capacity(len as usize);
                    f.read_to_end(&mut buf)
                        .await
                        .map_err(|e| StorageError::io("cannot read", file, e))?;
                    let n = buf.len() as u64;
                    s.store
                        .put(&path, PutPayload::from(buf))
                        .await
                        .map_err(|e| s.err("upload", key, e))?;
                    tracing::debug!(key, bytes = n, "stored in S3 (single put)");
                    return Ok(n);
                }
                let upload = s
                    .store
                    .put_multipart(&path)
                    .await
                    .map_err(|e| s.err("start upload", key, e))?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
                let mut buf = vec![0u8; CHUNK];
                let mut total = 0u64;
                loop {
                    let n = match f.read(&mut buf).await {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = writer.abort().await;
                            return Err(StorageError::io("cannot read", file, e));
                        }
                    };
                    if n == 0 {
                        break;
                    }
                    if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                        let _ = writer.abort().await;
                        return Err(s.err("upload", key, e));
                    }
                    writer.write(&buf[..n]);
                    total += n as u64;
                }
                writer
                    .finish()
                    .await
                    .map_err(|e| s.err("finish upload", key, e))?;
                tracing::debug!(key, bytes = total, "stored in S3 (multipart)");
                Ok(total)
            }
        }
    }

    /// Writes the object `key` to the local file `dest`, streamed, atomically (temporary name next to
    /// `dest`, then rename; `dest`'s folder is created). Returns the number of bytes written;
    /// [`StorageError::NotFound`] for a missing key.
    pub async fn get_to_file(&self, key: &str, dest: &Path) -> Result<u64, StorageError> {
        check_key(key)?;
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match self {
            Storage::Local { root } => {
                let src = local_path(root, key);
                match tokio::fs::metadata(&src).await {
                    Ok(m) if m.is_file() => {}
                    Ok(_) => return Err(StorageError::NotFound(key.to_string())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(StorageError::NotFound(key.to_string()))
                    }
                    Err(e) => return Err(StorageError::io("cannot stat", &src, e)),
                }
                tokio::fs::create_dir_all(&parent)
                    .await
                    .map_err(|e| StorageError::io("cannot create", &parent, e))?;
                let tmp = tmp_path(dest);
                let copied = match tokio::fs::copy(&src, &tmp).await {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tokio::fs::remove_file(&tmp).await;
                        if e.kind() == std::io::ErrorKind::NotFound {
                            return Err(StorageError::NotFound(key.to_string()));
                        }
                        return Err(StorageError::io("cannot copy", &src, e));
                    }
                };
                finish_tmp(&tmp, dest).await?;
                Ok(copied)
            }
            Storage::S3(s) => {
                let path = s.path(key)?;
                let result = s
                    .store
                    .get(&path)
                    .await
                    .map_err(|e| s.err("download", key, e))?;
                let mut stream = result.into_stream();
                tokio::fs::create_dir_all(&parent)
                    .await
                    .map_err(|e| StorageError::io("cannot create", &parent, e))?;
                let tmp = tmp_path(dest);
                let written: Result<u64, StorageError> = async {
                    let mut out = tokio::fs::File::create(&tmp)
                        .await
                        .map_err(|e| StorageError::io("cannot create", &tmp, e))?;
                    let mut total = 0u64;
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(|e| s.err("download", key, e))?;
                        out.write_all(&chunk)
                            .await
                            .map_err(|e| StorageError::io("cannot write", &tmp, e))?;
                        total += chunk.len() as u64;
                    }
                    out.flush()
                        .await
                        .map_err(|e| StorageError::io("cannot write", &tmp, e))?;
                    out.sync_data()
                        .await
                        .map_err(|e| StorageError::io("cannot sync", &tmp, e))?;
                    Ok(total)
                }
                .await;
                match written {
                    Ok(total) => {
                        finish_tmp(&tmp, dest).await?;
                        tracing::debug!(key, bytes = total, "fetched from S3");
                        Ok(total)
                    }
                    Err(e) => {
                        let _ = tokio::fs::remove_file(&tmp).await;
                        Err(e)
                    }
                }
            }
        }
    }

    /// The size of the object `key` in bytes, or `None` if there is none.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        check_key(key)?;
        match self {
            Storage::Local { root } => {
                let path = local_path(root, key);
                match tokio::fs::metadata(&path).await {
                    Ok(m) if m.is_file() => Ok(Some(m.len())),
                    Ok(_) => Ok(None),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(StorageError::io("cannot stat", &path, e)),
                }
            }
            Storage::S3(s) => {
                let path = s.path(key)?;
                match s.store.head(&path).await {
                    Ok(meta) => Ok(Some(meta.size)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(s.err("stat", key, e)),
                }
            }
        }
    }

    /// Opens the object `key` for reading: its size and a stream of its bytes (for HTTP responses).
    /// [`StorageError::NotFound`] for a missing key.
    pub async fn open(&self, key: &str) -> Result<(u64, ByteStream), StorageError> {
        check_key(key)?;
        match self {
            Storage::Local { root } => {
                let path = local_path(root, key);
                let file = match tokio::fs::File::open(&path).await {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(StorageError::NotFound(key.to_string()))
                    }
                    Err(e) => return Err(StorageError::io("cannot open", &path, e)),
                };
                let meta = file
                    .metadata()
                    .await
                    .map_err(|e| StorageError::io("cannot stat", &path, e))?;
                if !meta.is_file() {
                    return Err(StorageError::NotFound(key.to_string()));
                }
                Ok((meta.len(), file_stream(file, path)))
            }
            Storage::S3(s) => {
                let path = s.path(key)?;
                let result = s
                    .store
                    .get(&path)
                    .await
                    .map_err(|e| s.err("download", key, e))?;
                let size = result.meta.size;
                let s2 = s.clone();
                let key = key.to_string();
                let stream = result
                    .into_stream()
                    .map_err(move |e| s2.err("download", &key, e))
                    .boxed();
                Ok((size, stream))
            }
        }
    }

    /// Every object under the folder `prefix` (whole segments: `task_1` covers `task_1/...`, not
    /// `task_10/...`; empty: everything), as (key relative to the root, size), sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let prefix = check_prefix(prefix)?;
        let mut out = match self {
            Storage::Local { root } => {
                let start = if prefix.is_empty() {
                    root.clone()
                } else {
                    local_path(root, prefix)
                };
                list_local(&start, prefix).await?
            }
            Storage::S3(s) => {
                let location = s.prefix_path(prefix)?;
                let mut stream = s.store.list(location.as_ref());
                let mut out = Vec::new();
                while let Some(meta) = stream.next().await {
                    let meta = meta.map_err(|e| s.err("list", prefix, e))?;
                    if let Some(key) = s.relative(&meta.location) {
                        out.push((key, meta.size));
                    }
                }
                out
            }
        };
        out.sort();
        Ok(out)
    }

    /// The ids of every `task_{id}/` folder present, sorted.
    pub async fn task_ids(&self) -> Result<Vec<i64>, StorageError> {
        let mut ids = Vec::new();
        match self {
            Storage::Local { root } => {
                let mut dir = match tokio::fs::read_dir(root).await {
                    Ok(d) => d,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
                    Err(e) => return Err(StorageError::io("cannot list", root, e)),
                };
                while let Some(entry) = dir
                    .next_entry()
                    .await
                    .map_err(|e| StorageError::io("cannot list", root, e))?
                {
                    let is_dir = entry.file_type().await.map(|t| t.is_dir()).unwrap_or(false);
                    if let (true, Some(name)) = (is_dir, entry.file_name().to_str()) {
                        ids.extend(keys::parse_task_dir(name));
                    }
                }
            }
            Storage::S3(s) => {
                let location = s.prefix_path("")?;
                let listing = s
                    .store
                    .list_with_delimiter(location.as_ref())
                    .await
                    .map_err(|e| s.err("list", "", e))?;
                for p in &listing.common_prefixes {
                    if let Some(name) = p.filename() {
                        ids.extend(keys::parse_task_dir(name));
                    }
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// Deletes everything under `task_{id}/`; a task with no files is not an error.
    pub async fn delete_task(&self, id: i64) -> Result<(), StorageError> {
        let dir = format!("task_{id}");
        match self {
            Storage::Local { root } => {
                let path = root.join(&dir);
                match tokio::fs::remove_dir_all(&path).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(StorageError::io("cannot delete", &path, e)),
                }
            }
            Storage::S3(s) => {
                let location = s.prefix_path(&dir)?;
                let locations = s
                    .store
                    .list(location.as_ref())
                    .map_ok(|meta| meta.location)
                    .boxed();
                let mut deleted = s.store.delete_stream(locations);
                let mut count = 0usize;
                while let Some(result) = deleted.next().await {
                    match result {
                        Ok(_) | Err(object_store::Error::NotFound { .. }) => count += 1,
                        Err(e) => return Err(s.err("delete", &dir, e)),
                    }
                }
                tracing::debug!(task = id, objects = count, "deleted task files from S3");
                Ok(())
            }
        }
    }

    /// A URL that fetches `key` with a plain GET, without credentials, for `valid` (S3: presigned,
    /// SigV4, at most 7 days); `None` for the local backend, whose files the service serves itself.
    /// The object need not exist yet; nothing is sent over the network.
    pub async fn signed_url(
        &self,
        key: &str,
        valid: Duration,
    ) -> Result<Option<String>, StorageError> {
        check_key(key)?;
        match self {
            Storage::Local { .. } => Ok(None),
            Storage::S3(s) => {
                let path = s.path(key)?;
                let url = s
                    .store
                    .signed_url(http::Method::GET, &path, valid)
                    .await
                    .map_err(|e| s.err("sign", key, e))?;
                Ok(Some(url.to_string()))
            }
        }
    }
}

/// `root` joined with the (checked) key's segments.
fn local_path(root: &Path, key: &str) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(key.split('/'));
    path
}

/// A unique temporary name next to `dest`.
fn tmp_path(dest: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!("{TMP_PREFIX}{}-{n}-{name}", std::process::id()))
}

async fn finish_tmp(tmp: &Path, dest: &Path) -> Result<(), StorageError> {
    if let Err(e) = tokio::fs::rename(tmp, dest).await {
        let _ = tokio::fs::remove_file(tmp).await;
        return Err(StorageError::io("cannot rename into", dest, e));
    }
    Ok(())
}

fn file_stream(file: tokio::fs::File, path: PathBuf) -> ByteStream {
    futures::stream::try_unfold((file, path), |(mut file, path)| async move {
        let mut buf = BytesMut::with_capacity(CHUNK);
        let n = file
            .read_buf(&mut buf)
            .await
            .map_err(|e| StorageError::io("cannot read", &path, e))?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some((buf.freeze(), (file, path))))
    })
    .boxed()
}

/// Files under `start` (recursively), keyed `prefix/...`; symlinks, temporary files and non-UTF-8 names
/// are skipped. A missing `start`, or one that is a file, gives nothing.
async fn list_local(start: &Path, prefix: &str) -> Result<Vec<(String, u64)>, StorageError> {
    let mut out = Vec::new();
    let mut pending = vec![(start.to_path_buf(), prefix.to_string())];
    while let Some((dir, key)) = pending.pop() {
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(d) => d,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::NotADirectory =>
            {
                continue
            }
            Err(e) => return Err(StorageError::io("cannot list", &dir, e)),
        };
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| StorageError::io("cannot list", &dir, e))?
        {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                tracing::warn!(path = %entry.path().display(), "skipping a non-UTF-8 name in storage");
                continue;
            };
            if name.starts_with(TMP_PREFIX) {
                continue;
            }
            let child = if key.is_empty() {
                name
            } else {
                format!("{key}/{name}")
            };
            let kind = entry
                .file_type()
                .await
                .map_err(|e| StorageError::io("cannot stat", &entry.path(), e))?;
            if kind.is_dir() {
                pending.push((entry.path(), child));
            } else if kind.is_file() {
                let len = entry
                    .metadata()
                    .await
                    .map_err(|e| StorageError::io("cannot stat", &entry.path(), e))?
                    .len();
                out.push((child, len));
            }
        }
    }
    Ok(out)
}

/// True for `http://host...` or `https://host...` with a non-empty host.
fn endpoint_has_host(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    !host.is_empty() && !host.starts_with(':')
}

/// `http://user:pass@host` → `http://***@host`; anything else unchanged.
fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => (&url[..i + 3], &url[i + 3..]),
        None => ("", url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_checked() {
        for ok in [
            "http://h",
            "https://s3.example.com/",
            "HTTP://127.0.0.1:9000",
            "http://u:p@h:1",
        ] {
            assert!(endpoint_has_host(ok), "{ok}");
        }
        for bad in [
            "ftp://h",
            "http://",
            "https:///x",
            "http://u:p@",
            "http://:9000",
            "h:9000",
        ] {
            assert!(!endpoint_has_host(bad), "{bad}");
        }
    }

    #[test]
    fn redacts_userinfo() {
        assert_eq!(
            redact_userinfo("http://a:b@host:9000/x"),
            "http://***@host:9000/x"
        );
        assert_eq!(redact_userinfo("http://host:9000"), "http://host:9000");
        assert_eq!(redact_userinfo("https://host/p@q"), "https://host/p@q");
    }

    #[test]
    fn local_paths_and_temp_names() {
        let root = Path::new("/data/storage");
        assert_eq!(
            local_path(root, "task_3/out/a b.srt"),
            PathBuf::from("/data/storage/task_3/out/a b.srt")
        );
        let tmp = tmp_path(Path::new("/x/y/file.mp4"));
        assert_eq!(tmp.parent(), Some(Path::new("/x/y")));
        let name = tmp.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(TMP_PREFIX) && name.ends_with("file.mp4"),
            "{name}"
        );
        assert_ne!(tmp_path(Path::new("/x/y/file.mp4")), tmp);
    }

    #[test]
    fn s3_options_debug_hides_secrets() {
        let o = S3Options {
            endpoint: Some("http://u:pw@h:1".into()),
            region: None,
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("sEcReT".into()),
            session_token: Some("tOkEn".into()),
        };
        let d = format!("{o:?}");
        assert!(
            !d.contains("sEcReT") && !d.contains("tOkEn") && !d.contains("pw"),
            "{d}"
        );
        assert!(d.contains("AKID"));
    }

    #[test]
    fn s3_constructor_checks() {
        let opts = |endpoint: &str, id: Option<&str>, secret: Option<&str>| S3Options {
            endpoint: Some(endpoint.to_string()),
            region: None,
            access_key_id: id.map(str::to_string),
            secret_access_key: secret.map(str::to_string),
            session_token: None,
        };
        let ok = Storage::s3(
            "bkt",
            "/a/b/",
            opts("http://127.0.0.1:9/", Some("id"), Some("sk")),
        )
        .unwrap();
        assert_eq!(
            ok.describe(),
            "s3://bkt/a/b (endpoint http://127.0.0.1:9, region us-east-1)"
        );
        assert!(!ok.is_local() && ok.local_root().is_none());
        let var = |r: Result<Storage, StorageError>| match r {
            Err(StorageError::Config { var, .. }) => var,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(
            var(Storage::s3("b", "", opts("ftp://h", Some("i"), Some("s")))),
            "AWS_ENDPOINT_URL"
        );
        assert_eq!(
            var(Storage::s3("b", "", opts("http://h", Some("i"), None))),
            "AWS_SECRET_ACCESS_KEY"
        );
        assert_eq!(
            var(Storage::s3("b", "", opts("http://h", None, Some("s")))),
            "AWS_ACCESS_KEY_ID"
        );
        assert_eq!(
            var(Storage::s3("b", "", opts("http://h", None, None))),
            "AWS_ACCESS_KEY_ID"
        );
        assert_eq!(
            var(Storage::s3("", "", opts("http://h", Some("i"), Some("s")))),
            STORAGE_URL_VAR
        );
        assert_eq!(
            var(Storage::s3(
                "b",
                "a/../c",
                opts("http://h", Some("i"), Some("s"))
            )),
            STORAGE_URL_VAR
        );
    }

    #[test]
    fn s3_relative_keys() {
        let Storage::S3(s) = Storage::s3(
            "b",
            "p/q",
            S3Options {
                endpoint: Some("http://h".into()),
                access_key_id: Some("i".into()),
                secret_access_key: Some("s".into()),
                ..S3Options::default()
            },
        )
        .unwrap() else {
            unreachable!()
        };
        assert_eq!(
            s.path("task_1/out/x.srt").unwrap().as_ref(),
            "p/q/task_1/out/x.srt"
        );
        assert_eq!(
            s.relative(&ObjectPath::from("p/q/task_1/a")).as_deref(),
            Some("task_1/a")
        );
        assert_eq!(s.relative(&ObjectPath::from("p/qq/task_1/a")), None);
        assert_eq!(s.prefix_path("").unwrap().unwrap().as_ref(), "p/q");
        assert_eq!(
            s.prefix_path("task_1").unwrap().unwrap().as_ref(),
            "p/q/task_1"
        );
    }
}
