//! Keys, prefixes and the storage URL: pure string checks, unit-tested here.

use crate::{StorageError, STORAGE_URL_VAR};

/// Checks that `key` is a clean relative object key: non-empty, `/`-separated, not absolute, no empty,
/// `.` or `..` segment, no backslash and no control character. Every key passed to [`crate::Storage`] goes
/// through this, so no key can reach outside the storage root or prefix.
pub fn check_key(key: &str) -> Result<(), StorageError> {
    let bad = |reason| {
        Err(StorageError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.starts_with('/') {
        return bad("absolute");
    }
    for segment in key.split('/') {
        match segment {
            "" => return bad("empty path segment"),
            "." | ".." => return bad("`.` or `..` segment"),
            _ => {}
        }
        if segment.contains('\\') {
            return bad("backslash");
        }
        if segment.chars().any(char::is_control) {
            return bad("control character");
        }
    }
    Ok(())
}

/// Checks a listing prefix: empty (everything) or a key as [`check_key`], one trailing `/` allowed.
/// Returns it without the trailing `/`.
pub fn check_prefix(prefix: &str) -> Result<&str, StorageError> {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if prefix.is_empty() {
        return Ok("");
    }
    check_key(trimmed).map_err(|e| match e {
        StorageError::InvalidKey { reason, .. } => StorageError::InvalidKey {
            key: prefix.to_string(),
            reason,
        },
        other => other,
    })?;
    Ok(trimmed)
}

/// `task_{id}/{rel}`, `rel` cleaned (see [`crate::Storage::task_key`]).
pub(crate) fn task_key(id: i64, rel: &str) -> String {
    let mut key = format!("task_{id}");
    for segment in rel.split(['/', '\\']) {
        let segment: String = segment.chars().filter(|c| !c.is_control()).collect();
        if segment.is_empty() || segment == "." || segment == ".." {
            continue;
        }
        key.push('/');
        key.push_str(&segment);
    }
    key
}

/// The id of a `task_{id}` folder name (canonical decimal only, so that `task_{id}` round-trips).
pub(crate) fn parse_task_dir(name: &str) -> Option<i64> {
    let id: i64 = name.strip_prefix("task_")?.parse().ok()?;
    (format!("task_{id}") == name).then_some(id)
}

fn url_error(message: impl Into<String>) -> StorageError {
    StorageError::Config {
        var: STORAGE_URL_VAR,
        message: message.into(),
    }
}

/// Parses `AUTOSUB_STORAGE_URL`: empty → `None` (local); `s3://bucket[/prefix]` → (bucket, prefix).
/// Messages never repeat the URL (it could hold credentials someone pasted into it).
pub(crate) fn parse_storage_url(url: &str) -> Result<Option<(String, String)>, StorageError> {
    let url = url.trim();
    if url.is_empty() {
        return Ok(None);
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(url_error(
            "expected s3://bucket/prefix (or unset for the local folder)",
        ));
    };
    if !scheme.eq_ignore_ascii_case("s3") {
        let scheme: String = scheme
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(16)
            .collect();
        return Err(url_error(format!(
            "unsupported scheme `{scheme}`: expected s3://bucket/prefix (or unset for the local folder)"
        )));
    }
    if rest.contains(['?', '#']) {
        return Err(url_error(
            "no query or fragment allowed: expected s3://bucket/prefix",
        ));
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    check_bucket(bucket)?;
    let prefix = clean_url_prefix(prefix)?;
    Ok(Some((bucket.to_string(), prefix)))
}

/// A bucket name: 1 to 255 of `A-Z a-z 0-9 . - _` (AWS is stricter; other S3 servers less so).
pub(crate) fn check_bucket(bucket: &str) -> Result<(), StorageError> {
    if bucket.is_empty() {
        return Err(url_error("no bucket name: expected s3://bucket/prefix"));
    }
    if bucket.len() > 255
        || !bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(url_error(
            "invalid bucket name (letters, digits, `.`, `-`, `_`; no credentials in the URL: use the AWS_* variables)",
        ));
    }
    Ok(())
}

/// The key prefix inside the bucket without surrounding `/`; its segments checked as keys' are.
pub(crate) fn clean_url_prefix(prefix: &str) -> Result<String, StorageError> {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return Ok(String::new());
    }
    check_key(prefix).map_err(|e| match e {
        StorageError::InvalidKey { reason, .. } => {
            url_error(format!("invalid key prefix: {reason}"))
        }
        other => other,
    })?;
    Ok(prefix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(r: Result<(), StorageError>) -> &'static str {
        match r {
            Err(StorageError::InvalidKey { reason, .. }) => reason,
            other => panic!("expected InvalidKey, got {other:?}"),
        }
    }

    #[test]
    fn keys_checked() {
        for ok in [
            "task_1/out/a.srt",
            "a",
            "task_2/input/My video (1).mp4",
            "x/.hidden",
            "ü/ñ",
        ] {
            check_key(ok).unwrap();
        }
        assert_eq!(reason(check_key("")), "empty");
        assert_eq!(reason(check_key("/etc/passwd")), "absolute");
        assert_eq!(reason(check_key("a//b")), "empty path segment");
        assert_eq!(reason(check_key("a/")), "empty path segment");
        assert_eq!(reason(check_key("task_1/../../x")), "`.` or `..` segment");
        assert_eq!(reason(check_key("..")), "`.` or `..` segment");
        assert_eq!(reason(check_key("./a")), "`.` or `..` segment");
        assert_eq!(reason(check_key("a\\..\\b")), "backslash");
        assert_eq!(reason(check_key("a\nb")), "control character");
    }

    #[test]
    fn prefixes_checked() {
        assert_eq!(check_prefix("").unwrap(), "");
        assert_eq!(check_prefix("task_1/").unwrap(), "task_1");
        assert_eq!(check_prefix("task_1/out").unwrap(), "task_1/out");
        assert!(check_prefix("/").is_err());
        assert!(check_prefix("../").is_err());
        assert!(check_prefix("task_1//").is_err());
    }

    #[test]
    fn task_keys_cleaned() {
        assert_eq!(task_key(7, "out/a.srt"), "task_7/out/a.srt");
        assert_eq!(task_key(7, "/out//a.srt/"), "task_7/out/a.srt");
        assert_eq!(task_key(7, "../../etc/passwd"), "task_7/etc/passwd");
        assert_eq!(task_key(7, "input/..\\..\\x.mp4"), "task_7/input/x.mp4");
        assert_eq!(task_key(7, "./a/./b"), "task_7/a/b");
        assert_eq!(task_key(7, "a/\u{0}b\u{7}/c"), "task_7/a/b/c");
        assert_eq!(task_key(7, ".\u{0}./x"), "task_7/x");
        assert_eq!(task_key(7, ".."), "task_7");
        assert_eq!(task_key(-3, "x"), "task_-3/x");
        for rel in ["../x", "/abs", "a/../../b", "..\\..\\c", "", "."] {
            let key = task_key(42, rel);
            assert!(key == "task_42" || key.starts_with("task_42/"), "{key}");
            if key != "task_42" {
                check_key(&key).unwrap();
            }
        }
    }

    #[test]
    fn task_dirs_parsed() {
        assert_eq!(parse_task_dir("task_12"), Some(12));
        assert_eq!(parse_task_dir("task_-1"), Some(-1));
        assert_eq!(parse_task_dir("task_012"), None);
        assert_eq!(parse_task_dir("task_+1"), None);
        assert_eq!(parse_task_dir("task_"), None);
        assert_eq!(parse_task_dir("task_1x"), None);
        assert_eq!(parse_task_dir("tmp"), None);
    }

    fn url_var(url: &str) -> &'static str {
        match parse_storage_url(url) {
            Err(StorageError::Config { var, message }) => {
                assert!(!message.is_empty());
                var
            }
            other => panic!("expected a config error for {url:?}, got {other:?}"),
        }
    }

    #[test]
    fn urls_parsed() {
        assert_eq!(parse_storage_url("").unwrap(), None);
        assert_eq!(parse_storage_url("  ").unwrap(), None);
        let p = |u: &str| parse_storage_url(u).unwrap().unwrap();
        assert_eq!(p("s3://bucket"), ("bucket".into(), "".into()));
        assert_eq!(p("s3://bucket/"), ("bucket".into(), "".into()));
        assert_eq!(p("s3://bucket/prefix"), ("bucket".into(), "prefix".into()));
        assert_eq!(
            p("S3://my-bucket.x/a/b/"),
            ("my-bucket.x".into(), "a/b".into())
        );
        for bad in [
            "s3://",
            "s3:///x",
            "ftp://x",
            "bucket/prefix",
            "s3://b/a/../c",
            "s3://b/a//c",
            "s3://key:secret@bucket/p",
            "s3://b/p?x=1",
            "http://b",
        ] {
            assert_eq!(url_var(bad), STORAGE_URL_VAR, "{bad}");
        }
        let Err(e) = parse_storage_url("s3://AKIA:hunter2@bucket") else {
            panic!()
        };
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains(STORAGE_URL_VAR), "{e}");
    }
}
