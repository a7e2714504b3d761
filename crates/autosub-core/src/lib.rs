//! AutoSub's pipeline stages as plain functions over typed inputs and options.
//!
//! Every stage reports progress and honours cancellation through one [`progress::Sink`]; every external program
//! is started through [`proc::Cmd`]. The data types (words, cues, formats, profiles) live in [`autosub_subs`]; model
//! files (conversion, download) in [`autosub_models`].
//!
//! ```no_run
//! use autosub_core::{asr::Recognizer, pipeline, progress::NullSink};
//! let rec = Recognizer::load("ggml-base.bin".as_ref())?;
//! let tr = pipeline::transcribe_file(&rec, "talk.mp4".as_ref(), &Default::default(), &NullSink)?;
//! let doc = pipeline::document(&tr, "base", &autosub_subs::Profile::standard());
//! print!("{}", autosub_subs::write_srt(&doc.cues));
//! # Ok::<(), autosub_core::Error>(())
//! ```

pub mod asr;
mod error;
pub mod fetch;
pub mod job;
pub mod lang;
pub mod media;
pub mod models;
pub mod partial;
pub mod pipeline;
pub mod proc;
pub mod progress;
pub mod render;
pub mod translate;
pub mod tts;
pub mod vad;

pub use error::{Error, ErrorKind, Result};
