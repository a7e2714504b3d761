//! The library used directly: load the model once, transcribe files, cut the words with two profiles.
//!
//! `cargo run --release -p autosub-core --example transcribe -- MODEL.bin FILE...`

use autosub_core::asr::Recognizer;
use autosub_core::pipeline::{self, TranscribeOptions};
use autosub_core::progress::{Event, Sink};
use autosub_subs::Profile;

/// Prints stage starts and warnings to stderr.
struct Log;
impl Sink for Log {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Start { stage, .. } => eprintln!("{}...", stage.label()),
            Event::Warning(w) => eprintln!("warning: {w}"),
            _ => {}
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args.next().ok_or("usage: transcribe MODEL.bin FILE...")?;
    let recognizer = Recognizer::load(model.as_ref())?;
    for file in args {
        let tr = pipeline::transcribe_file(
            &recognizer,
            file.as_ref(),
            &TranscribeOptions::default(),
            &Log,
        )?;
        for profile in [Profile::standard(), Profile::shorts()] {
            let doc = pipeline::document(&tr, "example", &profile);
            println!("== {file} ({}, {} cues)", profile.name, doc.cues.len());
            print!("{}", autosub_subs::write_srt(&doc.cues));
        }
    }
    Ok(())
}
