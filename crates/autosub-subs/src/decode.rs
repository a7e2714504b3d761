//! Text from the bytes of a subtitle file in whatever encoding it was saved in ([`decode_text`]).
//!
//! Real files come from Windows editors (Windows-1251 for Russian, Windows-1250 for Czech and Polish,
//! Windows-1252...), old rippers (UTF-16 with a BOM), and everything else as UTF-8, with or without a BOM.
//! The order of the checks:
//!
//! 1. a byte-order mark: UTF-8, UTF-16LE or UTF-16BE;
//! 2. UTF-16 without a BOM when it is obvious: many NUL bytes, nearly all at odd positions (little endian)
//!    or nearly all at even ones (big endian), as ASCII digits, arrows and spaces in UTF-16 give;
//! 3. valid UTF-8 (plain ASCII included);
//! 4. otherwise the legacy encoding `chardetng` (Firefox's detector) finds most likely, decoded with
//!    `encoding_rs`; malformed sequences become U+FFFD and [`Decoded::lossy`] says so.
//!
//! A forced encoding (`--encoding`) is a WHATWG label (`windows-1251`, `cp1251`, `latin1`, `utf-16le`,
//! `koi8-r`, `shift_jis`..., case-insensitive) and is used as it is, a BOM of the same encoding removed;
//! bytes it cannot decode are an error naming the line and the detector's guess.

use encoding_rs::{DecoderResult, Encoding, UTF_16BE, UTF_16LE, UTF_8};

/// How the encoding of a [`Decoded`] text was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncodingSource {
    /// A byte-order mark at the start of the file.
    Bom,
    /// UTF-16 without a BOM, told from where the NUL bytes are.
    Utf16Pattern,
    /// The bytes are valid UTF-8.
    Utf8,
    /// Guessed by the detector.
    Detected,
    /// Given by the caller.
    Forced,
}

impl EncodingSource {
    /// A short description: "byte-order mark", "UTF-16 byte pattern", "valid UTF-8", "detected", "given".
    pub fn describe(self) -> &'static str {
        match self {
            EncodingSource::Bom => "byte-order mark",
            EncodingSource::Utf16Pattern => "UTF-16 byte pattern",
            EncodingSource::Utf8 => "valid UTF-8",
            EncodingSource::Detected => "detected",
            EncodingSource::Forced => "given",
        }
    }
}

/// Text decoded from bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The text, without a byte-order mark.
    pub text: String,
    /// The encoding's WHATWG name: `"UTF-8"`, `"UTF-16LE"`, `"windows-1251"`...
    pub encoding: &'static str,
    /// How the encoding was chosen.
    pub source: EncodingSource,
    /// Some bytes could not be decoded and became U+FFFD (only ever true for a detected or BOM-marked
    /// encoding; a forced one is an error instead).
    pub lossy: bool,
}

/// The bytes could not be decoded as asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The forced encoding's name is not one `encoding_rs` knows.
    #[error("unknown encoding {0:?} (expected a name such as utf-8, utf-16le, utf-16be, windows-1251, cp1250, latin1, iso-8859-2, koi8-r, shift_jis, gbk)")]
    UnknownEncoding(String),
    /// The bytes are not valid in the forced encoding.
    #[error("line {line}: the file is not valid {encoding}{}", guess.map(|g| format!(" (it looks like {g})")).unwrap_or_default())]
    Malformed {
        /// The forced encoding.
        encoding: &'static str,
        /// 1-based line of the first byte that could not be decoded.
        line: usize,
        /// What the automatic detection would have chosen, when it differs.
        guess: Option<&'static str>,
    },
}

/// Decodes the bytes of a subtitle file: with `forced`, in that encoding (a WHATWG label); otherwise BOM,
/// UTF-16 pattern, UTF-8, detector, in that order (see the module documentation).
///
/// ```
/// use autosub_subs::{decode_text, EncodingSource};
/// // "Привет" in Windows-1251.
/// let bytes = b"1\r\n00:00:01,000 --> 00:00:02,000\r\n\xcf\xf0\xe8\xe2\xe5\xf2, \xec\xe8\xf0! \xca\xe0\xea \xe4\xe5\xeb\xe0?\r\n";
/// let d = decode_text(bytes, None).unwrap();
/// assert_eq!((d.encoding, d.source), ("windows-1251", EncodingSource::Detected));
/// assert!(d.text.contains("Привет, мир! Как дела?"));
/// assert_eq!(decode_text(bytes, Some("cp1251")).unwrap().text, d.text);
/// assert!(decode_text(bytes, Some("klingon")).is_err());
/// ```
pub fn decode_text(bytes: &[u8], forced: Option<&str>) -> Result<Decoded, DecodeError> {
    if let Some(label) = forced {
        return decode_forced(bytes, label);
    }
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let (text, lossy) = decode_lossy(encoding, &bytes[bom_len..]);
        return Ok(Decoded {
            text,
            encoding: encoding.name(),
            source: EncodingSource::Bom,
            lossy,
        });
    }
    if let Some(encoding) = utf16_pattern(bytes) {
        let (text, lossy) = decode_lossy(encoding, bytes);
        return Ok(Decoded {
            text,
            encoding: encoding.name(),
            source: EncodingSource::Utf16Pattern,
            lossy,
        });
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Decoded {
            text: text.to_string(),
            encoding: UTF_8.name(),
            source: EncodingSource::Utf8,
            lossy: false,
        });
    }
    let encoding = detect(bytes);
    let (text, lossy) = decode_lossy(encoding, bytes);
    Ok(Decoded {
        text,
        encoding: encoding.name(),
        source: EncodingSource::Detected,
        lossy,
    })
}

/// The legacy encoding the detector finds most likely (UTF-8 not allowed: that was checked first).
fn detect(bytes: &[u8]) -> &'static Encoding {
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    detector.guess(None, chardetng::Utf8Detection::Deny)
}

/// UTF-16 without a BOM: at least 4 bytes, a quarter or more of the 2-byte units with a NUL on one side
/// and at most one in eight of those on the other.
fn utf16_pattern(bytes: &[u8]) -> Option<&'static Encoding> {
    let sample = &bytes[..bytes.len().min(8192) & !1];
    let units = sample.len() / 2;
    if units < 2 {
        return None;
    }
    let (mut even, mut odd) = (0usize, 0usize);
    for pair in sample.chunks_exact(2) {
        even += usize::from(pair[0] == 0);
        odd += usize::from(pair[1] == 0);
    }
    if odd * 4 >= units && even * 8 <= odd {
        Some(UTF_16LE)
    } else if even * 4 >= units && odd * 8 <= even {
        Some(UTF_16BE)
    } else {
        None
    }
}

/// Decodes without BOM handling, malformed sequences replaced: the text and whether any were.
fn decode_lossy(encoding: &'static Encoding, bytes: &[u8]) -> (String, bool) {
    let (text, lossy) = encoding.decode_without_bom_handling(bytes);
    (text.into_owned(), lossy)
}

fn decode_forced(bytes: &[u8], label: &str) -> Result<Decoded, DecodeError> {
    let encoding = Encoding::for_label(label.trim().as_bytes())
        .filter(|e| *e != encoding_rs::REPLACEMENT)
        .ok_or_else(|| DecodeError::UnknownEncoding(label.to_string()))?;
    // `for_label("utf-16")` is UTF-16LE; a BOM of the same encoding is not text.
    let body = match Encoding::for_bom(bytes) {
        Some((bom, len)) if bom == encoding => &bytes[len..],
        _ => bytes,
    };
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let mut text = String::with_capacity(
        decoder
            .max_utf8_buffer_length_without_replacement(body.len())
            .unwrap_or(body.len()),
    );
    let mut read_total = 0;
    loop {
        let (result, read) =
            decoder.decode_to_string_without_replacement(&body[read_total..], &mut text, true);
        read_total += read;
        match result {
            DecoderResult::InputEmpty => break,
            DecoderResult::OutputFull => text.reserve(body.len().max(64)),
            DecoderResult::Malformed(_, _) => {
                let line = text.matches('\n').count() + 1;
                let guess = decode_text(bytes, None)
                    .ok()
                    .map(|d| d.encoding)
                    .filter(|g| *g != encoding.name());
                return Err(DecodeError::Malformed {
                    encoding: encoding.name(),
                    line,
                    guess,
                });
            }
        }
    }
    Ok(Decoded {
        text,
        encoding: encoding.name(),
        source: EncodingSource::Forced,
        lossy: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str, le: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend(if le { [0xff, 0xfe] } else { [0xfe, 0xff] });
        }
        for u in s.encode_utf16() {
            out.extend(if le { u.to_le_bytes() } else { u.to_be_bytes() });
        }
        out
    }

    const SRT: &str = "1\n00:00:01,000 --> 00:00:02,000\nПривет, мир!\n";

    #[test]
    fn boms_and_utf16() {
        for (le, bom) in [(true, true), (false, true), (true, false), (false, false)] {
            let d = decode_text(&utf16(SRT, le, bom), None).unwrap();
            assert_eq!(d.text, SRT, "le {le} bom {bom}");
            assert_eq!(d.encoding, if le { "UTF-16LE" } else { "UTF-16BE" });
            let source = if bom {
                EncodingSource::Bom
            } else {
                EncodingSource::Utf16Pattern
            };
            assert_eq!(d.source, source);
        }
        let mut bytes = b"\xef\xbb\xbf".to_vec();
        bytes.extend(SRT.as_bytes());
        let d = decode_text(&bytes, None).unwrap();
        assert_eq!((d.text.as_str(), d.source), (SRT, EncodingSource::Bom));
        let d = decode_text(SRT.as_bytes(), None).unwrap();
        assert_eq!((d.encoding, d.source), ("UTF-8", EncodingSource::Utf8));
        assert_eq!(decode_text(b"", None).unwrap().text, "");
    }

    #[test]
    fn forced_labels() {
        let (cp1251, _, _) = encoding_rs::WINDOWS_1251.encode(SRT);
        for label in ["windows-1251", "CP1251", " x-cp1251 "] {
            let d = decode_text(&cp1251, Some(label)).unwrap();
            assert_eq!(
                (d.text.as_str(), d.encoding, d.source),
                (SRT, "windows-1251", EncodingSource::Forced)
            );
        }
        assert_eq!(
            decode_text(b"caf\xe9", Some("latin1")).unwrap().text,
            "café"
        );
        assert_eq!(
            decode_text(&utf16(SRT, true, true), Some("utf-16le"))
                .unwrap()
                .text,
            SRT
        );
        let e = decode_text(b"x", Some("klingon")).unwrap_err();
        assert!(
            e.to_string().contains("unknown encoding \"klingon\""),
            "{e}"
        );
        // ISO-2022-KR and friends map to the replacement encoding: not something to decode with.
        assert!(decode_text(b"x", Some("iso-2022-kr")).is_err());
        let e = decode_text(&cp1251, Some("utf-8")).unwrap_err();
        assert_eq!(
            e,
            DecodeError::Malformed {
                encoding: "UTF-8",
                line: 3,
                guess: Some("windows-1251")
            }
        );
        assert_eq!(
            e.to_string(),
            "line 3: the file is not valid UTF-8 (it looks like windows-1251)"
        );
    }
}
