//! The `argos` engine: offline translation with Argos Translate packages.
//!
//! A package (installed by [`autosub_models::argos`]) is an OpenNMT Transformer in CTranslate2 format plus one
//! sentencepiece model shared by both sides. Texts are cut into pieces exactly as Argos Translate does
//! (`encode(s, out_type=str)`, no end-of-sentence piece appended), translated by CTranslate2 (through `ct2rs`,
//! beam 4, length penalty 0.2, unknown pieces replaced from the source, as Argos does), and the pieces joined back
//! with `▁` as spaces. A pair without its own package goes through English when both halves are installed
//! (`de -> en -> ru`). Each package is loaded once per translator and reused.

use autosub_models::argos::find_package;
use std::path::Path;

#[cfg(feature = "argos")]
mod engine;
#[cfg(feature = "argos")]
pub use engine::ArgosTranslator;

/// How one language pair is translated: directly, or through English.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The packages used, in order (one, or two through English).
    pub hops: Vec<(String, String)>,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut langs: Vec<&str> = self.hops.iter().map(|(a, _)| a.as_str()).collect();
        if let Some((_, b)) = self.hops.last() {
            langs.push(b);
        }
        f.write_str(&langs.join("->"))
    }
}

/// The installed packages that translate `from` into `to`: the direct package, else `from->en` and `en->to`.
pub fn route(models_dir: &Path, from: &str, to: &str) -> Option<Route> {
    let have = |a: &str, b: &str| find_package(models_dir, a, b).is_some();
    if have(from, to) {
        return Some(Route {
            hops: vec![(from.to_owned(), to.to_owned())],
        });
    }
    if from != "en" && to != "en" && have(from, "en") && have("en", to) {
        return Some(Route {
            hops: vec![
                (from.to_owned(), "en".to_owned()),
                ("en".to_owned(), to.to_owned()),
            ],
        });
    }
    None
}

/// What to run to get a route for `from -> to`.
pub fn install_hint(from: &str, to: &str) -> String {
    if from == "en" || to == "en" {
        format!("autosub models install translate:{from}-{to}")
    } else {
        format!(
            "autosub models install translate:{from}-{to} (or translate:{from}-en and translate:en-{to}, to go \
             through English)"
        )
    }
}

/// Decoding settings of the engine.
#[derive(Clone, Debug)]
pub struct ArgosOptions {
    /// CPU threads for CTranslate2.
    pub threads: usize,
    /// Beam width (Argos Translate uses 4).
    pub beam_size: usize,
    /// Shortest output in pieces (CTranslate2's `min_decoding_length`; 1, its default, for real use). The
    /// benchmark sets it, with a generated model biased to stop, to get outputs of a fixed length.
    pub min_decoding_length: usize,
}

impl Default for ArgosOptions {
    fn default() -> Self {
        ArgosOptions {
            threads: crate::asr::default_threads() as usize,
            beam_size: 4,
            min_decoding_length: 1,
        }
    }
}

/// Pieces back to text: `▁` marks a space.
pub fn decode(pieces: &[String]) -> String {
    let joined: String = pieces.concat().replace('\u{2581}', " ");
    joined.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_join_into_text() {
        let p: Vec<String> = ["▁При", "вет", ",", "▁мир", "!"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(decode(&p), "Привет, мир!");
        assert_eq!(decode(&[]), "");
    }

    #[test]
    fn routes_and_hints() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(route(dir.path(), "de", "ru"), None);
        assert!(install_hint("de", "ru").contains("translate:de-en"));
        assert_eq!(
            install_hint("en", "ru"),
            "autosub models install translate:en-ru"
        );
        let r = Route {
            hops: vec![("de".into(), "en".into()), ("en".into(), "ru".into())],
        };
        assert_eq!(r.to_string(), "de->en->ru");
    }
}
