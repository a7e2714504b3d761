//! Token list for the ggml vocabulary section.
//!
//! CTranslate2 stores the tokens in GPT-2's byte-level form (every byte mapped to a printable
//! code point, `Ġ` for space, `Ċ` for newline, ...). whisper.cpp wants the raw bytes, like
//! `convert-pt-to-ggml.py` writes them from the tiktoken files. A token can hold only part
//! of a UTF-8 character (Cyrillic letters are often split), so the result is bytes, never
//! a `String`.

use std::collections::HashMap;
use std::path::Path;

use crate::error::ModelError;

/// Number of tokens written to the ggml vocabulary section: the GPT-2 BPE ranks
/// (0..=50256). whisper.cpp synthesises the special tokens above that itself.
pub const GGML_VOCAB_TOKENS: usize = 50257;

/// GPT-2's `bytes_to_unicode` table: byte -> code point.
fn bytes_to_unicode() -> [u32; 256] {
    let mut table = [0u32; 256];
    let printable = |b: u32| {
        (u32::from(b'!')..=u32::from(b'~')).contains(&b)
            || (0xA1..=0xAC).contains(&b)
            || (0xAE..=0xFF).contains(&b)
    };
    let mut n = 0;
    for b in 0..256u32 {
        if printable(b) {
            table[b as usize] = b;
        } else {
            table[b as usize] = 256 + n;
            n += 1;
        }
    }
    table
}

/// Inverse of GPT-2's `bytes_to_unicode`.
pub struct ByteDecoder {
    map: HashMap<char, u8>,
}

impl Default for ByteDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ByteDecoder {
    /// Builds the table.
    pub fn new() -> Self {
        let mut map = HashMap::with_capacity(256);
        for (b, &cp) in bytes_to_unicode().iter().enumerate() {
            if let Some(c) = char::from_u32(cp) {
                map.insert(c, b as u8);
            }
        }
        ByteDecoder { map }
    }

    /// Decodes one byte-level token to its raw bytes. Characters outside the table (which
    /// byte-level BPE never produces) are kept as their UTF-8 encoding.
    pub fn decode(&self, token: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(token.len());
        for c in token.chars() {
            match self.map.get(&c) {
                Some(&b) => out.push(b),
                None => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        out
    }
}

/// Reads the byte-level token strings from a CTranslate2 model directory, trying
/// `vocabulary.json` (ctranslate2 >= 3), `vocabulary.txt` (older) and `tokenizer.json`.
pub(crate) fn load_tokens(dir: &Path) -> Result<Vec<String>, ModelError> {
    let json = dir.join("vocabulary.json");
    if json.is_file() {
        let text =
            std::fs::read_to_string(&json).map_err(|e| ModelError::io("reading", &json, e))?;
        let tokens: Vec<String> = serde_json::from_str(&text)
            .map_err(|e| ModelError::ct2(&json, format!("not a JSON list of strings: {e}")))?;
        return Ok(tokens);
    }
    let txt = dir.join("vocabulary.txt");
    if txt.is_file() {
        let text = std::fs::read_to_string(&txt).map_err(|e| ModelError::io("reading", &txt, e))?;
        let mut tokens: Vec<String> = text.split('\n').map(str::to_owned).collect();
        if tokens.last().is_some_and(|t| t.is_empty()) {
            tokens.pop();
        }
        return Ok(tokens);
    }
    let tok = dir.join("tokenizer.json");
    if tok.is_file() {
        return tokens_from_tokenizer_json(&tok);
    }
    Err(ModelError::MissingFile {
        dir: dir.to_path_buf(),
        file: "vocabulary.txt, vocabulary.json or tokenizer.json".into(),
    })
}

fn tokens_from_tokenizer_json(path: &Path) -> Result<Vec<String>, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::io("reading", path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ModelError::ct2(path, format!("invalid JSON: {e}")))?;
    let vocab = v
        .get("model")
        .and_then(|m| m.get("vocab"))
        .and_then(|m| m.as_object())
        .ok_or_else(|| ModelError::ct2(path, "no model.vocab object"))?;
    let mut by_id: HashMap<usize, String> = HashMap::with_capacity(vocab.len() + 2000);
    for (tok, id) in vocab {
        if let Some(id) = id.as_u64() {
            by_id.insert(id as usize, tok.clone());
        }
    }
    if let Some(added) = v.get("added_tokens").and_then(|a| a.as_array()) {
        for t in added {
            if let (Some(id), Some(content)) = (
                t.get("id").and_then(|i| i.as_u64()),
                t.get("content").and_then(|c| c.as_str()),
            ) {
                by_id
                    .entry(id as usize)
                    .or_insert_with(|| content.to_owned());
            }
        }
    }
    let n = by_id.keys().max().map_or(0, |m| m + 1);
    // Ids without a token (the multilingual vocabulary has a hole at 50256) are empty strings.
    Ok((0..n)
        .map(|i| by_id.remove(&i).unwrap_or_default())
        .collect())
}

/// The first [`GGML_VOCAB_TOKENS`] tokens as raw bytes.
pub(crate) fn ggml_vocab(tokens: &[String], path: &Path) -> Result<Vec<Vec<u8>>, ModelError> {
    if tokens.len() < GGML_VOCAB_TOKENS {
        return Err(ModelError::ct2(
            path,
            format!(
                "vocabulary has {} tokens, expected at least {GGML_VOCAB_TOKENS}",
                tokens.len()
            ),
        ));
    }
    let dec = ByteDecoder::new();
    Ok(tokens[..GGML_VOCAB_TOKENS]
        .iter()
        .map(|t| dec.decode(t))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_gpt2s() {
        let t = bytes_to_unicode();
        assert_eq!(t[b' ' as usize], 'Ġ' as u32);
        assert_eq!(t[b'\n' as usize], 'Ċ' as u32);
        assert_eq!(t[b'A' as usize], 'A' as u32);
        assert_eq!(t[0], 256);
        assert_eq!(t[0xAD], 'Ń' as u32); // soft hyphen is not printable in GPT-2's table
        let mut seen: Vec<u32> = t.to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 256);
    }

    #[test]
    fn decodes_spaces_and_cyrillic() {
        let d = ByteDecoder::new();
        assert_eq!(d.decode("Ġhello"), b" hello");
        // "о" (U+043E) is d0 be; as a GPT-2 token that is "Ð¾".
        assert_eq!(d.decode("Ð¾"), vec![0xd0, 0xbe]);
        assert_eq!(String::from_utf8(d.decode("ĠÐ¿ÑĢÐ¸")).unwrap(), " при");
        // A lone lead byte: exact byte, no lossy replacement character.
        assert_eq!(d.decode("Ð"), vec![0xd0]);
        assert_eq!(d.decode("<|endoftext|>"), b"<|endoftext|>");
        assert_eq!(d.decode(""), b"");
    }

    /// Reads a Cyrillic token from a real CTranslate2 vocabulary when one is on the machine.
    #[test]
    fn decodes_cyrillic_token_from_real_vocabulary() {
        let dir = Path::new("/var/cache/autosub/ct2-base");
        if !dir.join("vocabulary.txt").is_file() {
            eprintln!("skipping: {} not present", dir.display());
            return;
        }
        let tokens = load_tokens(dir).unwrap();
        assert_eq!(tokens.len(), 51865);
        let d = ByteDecoder::new();
        // Token 354 of the multilingual vocabulary is "о"; token 140 is the bare lead byte d0.
        assert_eq!(tokens[354], "Ð¾");
        assert_eq!(String::from_utf8(d.decode(&tokens[354])).unwrap(), "о");
        assert_eq!(d.decode(&tokens[140]), vec![0xd0]);
        assert_eq!(tokens[50256], "");
        assert_eq!(tokens[50257], "<|endoftext|>");
        let v = ggml_vocab(&tokens, dir).unwrap();
        assert_eq!(v.len(), GGML_VOCAB_TOKENS);
        assert_eq!(v.iter().map(|t| 4 + t.len()).sum::<usize>(), 508_085);
    }
}
