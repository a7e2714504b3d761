//! The engine itself: CTranslate2 (ct2rs) and sentencepiece; compiled with the `argos` feature.

use super::{find_package, install_hint, route, ArgosOptions};
use crate::progress::{Event, Sink};
use crate::{Error, Result};
use autosub_models::argos::InstalledPackage;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Sentences translated per CTranslate2 call: small enough that cancellation is noticed within about a second,
/// large enough to keep both cores busy.
const BATCH: usize = 16;

/// A loaded package.
struct Loaded {
    translator: ct2rs::sys::Translator,
    spm: sentencepiece::SentencePieceProcessor,
    package: InstalledPackage,
}

/// The `argos` translator over the packages in a models folder.
pub struct ArgosTranslator {
    models_dir: PathBuf,
    opts: ArgosOptions,
    loaded: Mutex<HashMap<(String, String), Arc<Loaded>>>,
}

impl ArgosTranslator {
    pub fn new(models_dir: &Path, opts: ArgosOptions) -> Self {
        ArgosTranslator {
            models_dir: models_dir.to_owned(),
            opts,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The package for one hop, loaded on first use.
    fn load(&self, from: &str, to: &str, sink: &dyn Sink) -> Result<Arc<Loaded>> {
        let key = (from.to_owned(), to.to_owned());
        if let Some(l) = self.loaded.lock().expect("not poisoned").get(&key) {
            return Ok(l.clone());
        }
        let package = find_package(&self.models_dir, from, to).ok_or_else(|| {
            Error::BadInput(format!(
                "no Argos package for {from}->{to} is installed; run `{}`",
                install_hint(from, to)
            ))
        })?;
        let t0 = std::time::Instant::now();
        let broken = |what: &str, e: &dyn std::fmt::Display| {
            Error::Translate(format!(
                "the Argos package {from}->{to} in {} cannot be loaded ({what}: {e}); reinstall it with `{}`",
                package.dir.display(),
                install_hint(from, to)
            ))
        };
        let spm = sentencepiece::SentencePieceProcessor::open(&package.spm)
            .map_err(|e| broken("sentencepiece model", &e))?;
        let config = ct2rs::Config {
            device: ct2rs::Device::CPU,
            compute_type: ct2rs::ComputeType::DEFAULT,
            num_threads_per_replica: self.opts.threads.max(1),
            ..Default::default()
        };
        let translator = ct2rs::sys::Translator::new(&package.model_dir, &config)
            .map_err(|e| broken("CTranslate2 model", &e))?;
        sink.event(Event::Debug(&format!(
            "Argos package {from}->{to} {} loaded in {:.2} s",
            package.version,
            t0.elapsed().as_secs_f64()
        )));
        let l = Arc::new(Loaded {
            translator,
            spm,
            package,
        });
        self.loaded
            .lock()
            .expect("not poisoned")
            .insert(key, l.clone());
        Ok(l)
    }

    /// One hop: every text through one package, in batches, on a worker thread (CTranslate2 cannot be
    /// interrupted inside a batch; on cancellation this returns at once and the batch finishes on its own).
    fn hop(&self, texts: &[String], from: &str, to: &str, sink: &dyn Sink) -> Result<Vec<String>> {
        let pkg = self.load(from, to, sink)?;
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            if sink.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let pieces: Vec<Vec<String>> = batch
                .iter()
                .map(|t| encode(&pkg.spm, t))
                .collect::<Result<_>>()?;
            let (tx, rx) = std::sync::mpsc::channel();
            let worker = pkg.clone();
            let opts = self.opts.clone();
            std::thread::spawn(move || {
                let _ = tx.send(translate_pieces(&worker.translator, &pieces, &opts));
            });
            let results = loop {
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(r) => break r,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        if sink.is_cancelled() {
                            return Err(Error::Cancelled);
                        }
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        return Err(Error::Translate("CTranslate2 crashed".into()));
                    }
                }
            }
            .map_err(|e| {
                Error::Translate(format!(
                    "the Argos package {from}->{to} ({}) failed: {e}",
                    pkg.package.dir.display()
                ))
            })?;
            out.extend(results.into_iter().map(|p| detokenize(&pkg.spm, &p)));
        }
        Ok(out)
    }
}

impl crate::translate::Translator for ArgosTranslator {
    fn name(&self) -> &str {
        "argos"
    }

    fn translate(
        &self,
        texts: &[String],
        from: &str,
        to: &str,
        sink: &dyn Sink,
    ) -> Result<Vec<String>> {
        let r = route(&self.models_dir, from, to).ok_or_else(|| {
            Error::BadInput(format!(
                "no Argos package translates {from}->{to}; run `{}`",
                install_hint(from, to)
            ))
        })?;
        let mut cur = texts.to_vec();
        for (a, b) in &r.hops {
            cur = self.hop(&cur, a, b, sink)?;
        }
        Ok(cur)
    }
}

/// Pieces back to text by sentencepiece itself, which drops control pieces (`<s>`, `</s>`) a model may emit;
/// the plain join of [`super::decode`] if sentencepiece refuses.
fn detokenize(spm: &sentencepiece::SentencePieceProcessor, pieces: &[String]) -> String {
    match spm.decode_pieces(pieces) {
        Ok(t) => t.split_whitespace().collect::<Vec<_>>().join(" "),
        Err(_) => super::decode(pieces),
    }
}

/// A text as sentencepiece pieces, as Argos Translate feeds them (no `</s>`).
fn encode(spm: &sentencepiece::SentencePieceProcessor, text: &str) -> Result<Vec<String>> {
    let pieces = spm
        .encode(text.trim())
        .map_err(|e| Error::Translate(format!("sentencepiece failed on {text:?}: {e}")))?;
    Ok(pieces.into_iter().map(|p| p.piece).collect())
}

/// Argos Translate's decoding settings; the output may be at most twice the input plus 10 pieces (at most 256), so
/// a model that never stops cannot run away.
fn translate_pieces(
    translator: &ct2rs::sys::Translator,
    pieces: &[Vec<String>],
    engine: &ArgosOptions,
) -> std::result::Result<Vec<Vec<String>>, String> {
    let longest = pieces.iter().map(Vec::len).max().unwrap_or(0);
    let opts: ct2rs::sys::TranslationOptions<String, String> = ct2rs::sys::TranslationOptions {
        beam_size: engine.beam_size.max(1),
        length_penalty: 0.2,
        replace_unknowns: true,
        max_batch_size: BATCH,
        max_decoding_length: (2 * longest + 10).min(256).max(engine.min_decoding_length),
        min_decoding_length: engine.min_decoding_length.max(1),
        ..Default::default()
    };
    let results = translator
        .translate_batch(pieces, &opts, None)
        .map_err(|e| e.to_string())?;
    Ok(results
        .into_iter()
        .map(|r| r.output().cloned().unwrap_or_default())
        .collect())
}
