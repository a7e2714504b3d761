//! Error types.

/// A subtitle or JSON file could not be parsed.
///
/// `Display` gives `line N: what was expected`, e.g.
/// `line 12: expected a timing line like 00:00:01,000 --> 00:00:02,000, found "hello"`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number in the input where the problem was found.
    pub line: usize,
    /// What was wrong, without the line prefix.
    pub message: String,
}

impl ParseError {
    /// Creates an error at a 1-based line (0 is bumped to 1).
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line: line.max(1),
            message: message.into(),
        }
    }

    /// 1-based line number.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The message without the line prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A format, profile, style or colour name was not recognised.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?} (expected one of: {expected})")]
pub struct UnknownName {
    /// What kind of name it was: "format", "profile", "style", "rule" or "colour".
    pub kind: &'static str,
    /// The name that was given.
    pub name: String,
    /// The accepted names, comma-separated.
    pub expected: String,
}

impl UnknownName {
    pub(crate) fn new(kind: &'static str, name: &str, expected: &[&str]) -> Self {
        Self {
            kind,
            name: name.to_string(),
            expected: expected.join(", "),
        }
    }
}

/// Shortens `s` for quoting in an error message.
pub(crate) fn snippet(s: &str) -> String {
    const MAX: usize = 40;
    let t = s.trim();
    if t.chars().count() <= MAX {
        t.to_string()
    } else {
        let mut out: String = t.chars().take(MAX).collect();
        out.push('…');
        out
    }
}
