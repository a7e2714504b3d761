//! Terminal output: one progress bar per stage (with ETA), notes and warnings on stderr.

use autosub_core::progress::{Event, Sink, Stage};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;
use std::time::Duration;

pub struct Ui {
    quiet: bool,
    verbose: bool,
    bar: Mutex<Option<(Stage, ProgressBar)>>,
}

impl Ui {
    pub fn new(quiet: bool, verbose: bool) -> Self {
        Ui {
            quiet,
            verbose,
            bar: Mutex::new(None),
        }
    }

    fn target(&self) -> ProgressDrawTarget {
        if self.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        }
    }

    /// Removes the current bar, if any.
    pub fn clear(&self) {
        if let Some((_, bar)) = self.bar.lock().unwrap().take() {
            bar.finish_and_clear();
        }
    }

    pub fn note(&self, msg: &str) {
        if !self.quiet {
            self.print(msg);
        }
    }

    pub fn warn(&self, msg: &str) {
        self.print(&format!("warning: {msg}"));
    }

    pub fn debug(&self, msg: &str) {
        if self.verbose {
            self.print(msg);
        }
    }

    fn print(&self, msg: &str) {
        match &*self.bar.lock().unwrap() {
            Some((_, bar)) if !bar.is_hidden() => bar.println(msg),
            _ => eprintln!("{msg}"),
        }
    }

    fn start(&self, stage: Stage, total: Option<u64>) {
        let bar = match (stage, total) {
            (Stage::Download | Stage::Convert, Some(t)) => {
                ProgressBar::with_draw_target(Some(t), self.target()).with_style(
                    ProgressStyle::with_template(
                        "{prefix:>14} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                )
            }
            (_, Some(t)) => ProgressBar::with_draw_target(Some(t), self.target()).with_style(
                ProgressStyle::with_template(
                    "{prefix:>14} [{bar:30}] {percent:>3}% {msg} ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            ),
            (_, None) => ProgressBar::with_draw_target(None, self.target()).with_style(
                ProgressStyle::with_template("{prefix:>14} {spinner} {elapsed}")
                    .expect("valid template"),
            ),
        };
        bar.set_prefix(stage.label());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Some((_, old)) = self.bar.lock().unwrap().replace((stage, bar)) {
            old.finish_and_clear();
        }
    }
}

impl Sink for Ui {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Start { stage, total } => self.start(stage, total),
            Event::Progress { stage, done } => {
                if let Some((s, bar)) = &*self.bar.lock().unwrap() {
                    if *s == stage {
                        bar.set_position(done.min(bar.length().unwrap_or(u64::MAX)));
                    }
                }
            }
            Event::Finish { stage, elapsed } => {
                let mut guard = self.bar.lock().unwrap();
                if let Some((s, bar)) = guard.take() {
                    if s == stage {
                        bar.finish_and_clear();
                        if !self.quiet {
                            eprintln!(
                                "{:>14} done in {:.1} s",
                                stage.label(),
                                elapsed.as_secs_f64()
                            );
                        }
                    } else {
                        *guard = Some((s, bar));
                    }
                }
            }
            Event::Warning(w) => self.warn(w),
            Event::Note(n) => {
                self.clear();
                self.note(n)
            }
            Event::Debug(d) => self.debug(d),
        }
    }
}

pub fn fmt_ms(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

pub fn fmt_bytes(b: u64) -> String {
    if b >= 1 << 20 {
        format!("{:.0} MB", b as f64 / 1e6)
    } else {
        format!("{:.0} kB", b as f64 / 1e3)
    }
}
