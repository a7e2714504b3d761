//! The one place that launches external programs (ffmpeg, ffprobe, later yt-dlp and espeak).
//!
//! Every child is started without a shell, with stdin closed; its stderr is read line by line on its own
//! thread while it runs (a full pipe would block the child), the caller sees each line as it comes, the child
//! is killed when the [`Sink`] cancels or when a timeout passes, and it is always reaped.

use crate::progress::{Event, Sink};
use crate::{Error, Result};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How many of the last stderr lines are kept for error messages.
const STDERR_TAIL: usize = 30;
/// How often the supervisor wakes up to check cancellation and timeouts.
const POLL: Duration = Duration::from_millis(50);

/// A program invocation. Build with [`Cmd::new`] and the `arg*`/`timeout` methods.
#[derive(Clone)]
pub struct Cmd {
    program: OsString,
    /// Name of the Debian package that provides the program, for the "not found" message.
    package: String,
    args: Vec<OsString>,
    timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    capture_stdout: bool,
    /// Extra environment variables; never shown by [`Cmd::display`] (a password goes here, not in an argument).
    env: Vec<(OsString, OsString)>,
}

/// What a finished child left behind.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// The last lines the child wrote to stderr.
    pub stderr_tail: Vec<String>,
}

impl Output {
    /// The most informative stderr line for an error message: the last non-empty one.
    pub fn last_error_line(&self) -> String {
        self.stderr_tail
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| format!("exited with {}", self.status))
    }
}

impl std::fmt::Debug for Cmd {
    /// The command line, without the environment (which may hold a password).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cmd({})", self.display())
    }
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>, package: &str) -> Self {
        Cmd {
            program: program.as_ref().to_owned(),
            package: package.to_owned(),
            args: Vec::new(),
            timeout: None,
            idle_timeout: None,
            capture_stdout: false,
            env: Vec::new(),
        }
    }
    /// Sets an environment variable of the child (not shown in logs).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, it: I) -> Self {
        self.args
            .extend(it.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }
    /// Kill the child if it runs longer than this in total.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// Kill the child if it writes nothing to stderr (and nothing to stdout) for this long.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = Some(d);
        self
    }
    /// Collect stdout into [`Output::stdout`] (otherwise it is discarded).
    pub fn capture_stdout(mut self) -> Self {
        self.capture_stdout = true;
        self
    }

    fn program_name(&self) -> String {
        std::path::Path::new(&self.program)
            .file_name()
            .unwrap_or(self.program.as_os_str())
            .to_string_lossy()
            .into_owned()
    }

    /// The command line for logs, each argument shell-quoted so it can be pasted into a terminal.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs the program to completion. `on_line` sees every stderr line as it is written. A non-zero exit status
    /// is *not* an error here (callers decide what it means); failing to start, a timeout and cancellation are.
    pub fn run(&self, sink: &dyn Sink, on_line: &mut dyn FnMut(&str)) -> Result<Output> {
        let display = self.display();
        sink.event(Event::Debug(&format!("run: {display}")));
        log_command(&display);
        if sink.is_cancelled() {
            return Err(Error::Cancelled);
        }
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            // Own process group: cancelling kills the program and anything it started (yt-dlp runs ffmpeg).
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(if self.capture_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::ProgramMissing {
                    program: self.program_name(),
                    package: self.package.clone(),
                },
                _ => Error::ProgramFailed {
                    program: self.program_name(),
                    message: format!("could not start: {e}"),
                },
            })?;

        let (tx, rx) = mpsc::channel::<Msg>();
        let stderr = child.stderr.take().expect("stderr is piped");
        let tx_err = tx.clone();
        let err_thread = std::thread::spawn(move || {
            // Lines may be separated by \n or \r (progress meters); split on both, keep bytes lossless enough.
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match read_line_cr_lf(&mut reader, &mut buf) {
                    Ok(0) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).into_owned();
                        if tx_err.send(Msg::Line(line)).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let out_thread = child.stdout.take().map(|mut stdout| {
            let tx_out = tx.clone();
            std::thread::spawn(move || {
                let mut data = Vec::new();
                let mut chunk = vec![0u8; 1 << 16];
                loop {
                    match stdout.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            data.extend_from_slice(&chunk[..n]);
                            let _ = tx_out.send(Msg::Activity);
                        }
                    }
                }
                data
            })
        });
        drop(tx);

        let started = Instant::now();
        let mut last_activity = Instant::now();
        let mut tail: VecDeque<String> = VecDeque::with_capacity(STDERR_TAIL);
        let mut failure: Option<Error> = None;
        let status = loop {
            // Handle what arrived, then always check cancellation and timeouts: a child streaming stdout sends
            // messages faster than the poll interval, and the checks must still run.
            match rx.recv_timeout(POLL) {
                Ok(Msg::Line(line)) => {
                    last_activity = Instant::now();
                    on_line(&line);
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
                Ok(Msg::Activity) => last_activity = Instant::now(),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // Both pipes closed: the child is exiting; wait without spinning.
                Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(POLL / 5),
            }
            if failure.is_none() {
                if sink.is_cancelled() {
                    failure = Some(Error::Cancelled);
                } else if let Some(t) = self.timeout.filter(|t| started.elapsed() > *t) {
                    failure = Some(Error::Timeout {
                        program: self.program_name(),
                        seconds: t.as_secs(),
                    });
                } else if let Some(t) = self.idle_timeout.filter(|t| last_activity.elapsed() > *t) {
                    failure = Some(Error::Stalled {
                        program: self.program_name(),
                        seconds: t.as_secs(),
                    });
                }
                if failure.is_some() {
                    kill_group(&mut child);
                }
            }
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::Io(e));
                }
            }
        };
        // Drain what is left of stderr after exit, but do not wait forever for a grandchild that escaped the group
        // and still holds the pipe.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Msg::Line(line)) => {
                    on_line(&line);
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
                Ok(Msg::Activity) => {}
                Err(_) => break,
            }
        }
        let stdout = match out_thread {
            Some(t) if t.is_finished() || failure.is_none() => t.join().unwrap_or_default(),
            _ => Vec::new(),
        };
        drop(err_thread);
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(Output {
            status,
            stdout,
            stderr_tail: tail.into_iter().collect(),
        })
    }
}

/// Kills the child's whole process group (the child leads it), then the child itself for good measure.
fn kill_group(child: &mut std::process::Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
}

enum Msg {
    Line(String),
    Activity,
}

/// Reads up to and including the next `\n` or `\r`; returns the number of bytes consumed (0 at EOF). The
/// terminator is not kept in `buf`.
fn read_line_cr_lf(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut consumed = 0;
    loop {
        let available = r.fill_buf()?;
        if available.is_empty() {
            return Ok(consumed);
        }
        if let Some(i) = available.iter().position(|&b| b == b'\n' || b == b'\r') {
            buf.extend_from_slice(&available[..i]);
            r.consume(i + 1);
            return Ok(consumed + i + 1);
        }
        let n = available.len();
        buf.extend_from_slice(available);
        r.consume(n);
        consumed += n;
    }
}

/// Appends the command line to the file named by `AUTOSUB_COMMAND_LOG`, when set (used by tests and for
/// auditing which programs a run started).
fn log_command(line: &str) {
    if let Some(path) = std::env::var_os("AUTOSUB_COMMAND_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Quotes `s` for a POSIX shell when it contains anything but safe characters. For display only: programs are
/// never run through a shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NullSink;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn lines_are_seen_while_running_and_split_on_cr() {
        let mut lines = Vec::new();
        let out = Cmd::new("sh", "dash")
            .args(["-c", "printf 'a\\rb\\nc\\n' >&2; echo out"])
            .capture_stdout()
            .run(&NullSink, &mut |l| lines.push(l.to_owned()))
            .unwrap();
        assert!(out.status.success());
        assert_eq!(lines, ["a", "b", "c"]);
        assert_eq!(out.stdout, b"out\n");
    }

    #[test]
    fn missing_program_names_the_package() {
        let err = Cmd::new("autosub-no-such-program", "some-package")
            .run(&NullSink, &mut |_| {})
            .unwrap_err();
        assert!(matches!(err, Error::ProgramMissing { .. }), "{err:?}");
        assert!(err.to_string().contains("apt-get install some-package"));
    }

    #[test]
    fn timeout_kills_the_child() {
        let t0 = Instant::now();
        let err = Cmd::new("sleep", "coreutils")
            .arg("30")
            .timeout(Duration::from_millis(300))
            .run(&NullSink, &mut |_| {})
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn idle_timeout_fires_when_the_child_goes_quiet() {
        let err = Cmd::new("sh", "dash")
            .args(["-c", "echo hi >&2; sleep 30"])
            .idle_timeout(Duration::from_millis(300))
            .timeout(Duration::from_secs(20))
            .run(&NullSink, &mut |_| {})
            .unwrap_err();
        assert!(matches!(err, Error::Stalled { .. }), "{err:?}");
    }

    struct Cancelling(AtomicBool);
    impl Sink for Cancelling {
        fn event(&self, _: Event<'_>) {}
        fn is_cancelled(&self) -> bool {
            self.0.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn cancel_kills_the_child() {
        let sink = Cancelling(AtomicBool::new(false));
        let t0 = Instant::now();
        let err = Cmd::new("sh", "dash")
            .args(["-c", "echo started >&2; sleep 30"])
            .run(&sink, &mut |_| sink.0.store(true, Ordering::Relaxed))
            .unwrap_err();
        assert!(matches!(err, Error::Cancelled), "{err:?}");
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn cancel_works_while_the_child_streams_stdout() {
        // A child that never stops writing to stdout (like ffmpeg decoding a long file) must still be stopped.
        let sink = Cancelling(AtomicBool::new(false));
        let t0 = Instant::now();
        let err = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(300));
                sink.0.store(true, Ordering::Relaxed);
            });
            Cmd::new("yes", "coreutils")
                .capture_stdout()
                .run(&sink, &mut |_| {})
                .unwrap_err()
        });
        assert!(matches!(err, Error::Cancelled), "{err:?}");
        assert!(t0.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_chatty_child_does_not_deadlock() {
        // 2 MB on stderr would fill a pipe many times over if nobody read it while the child runs.
        let mut n = 0usize;
        let out = Cmd::new("sh", "dash")
            .args(["-c", "i=0; while [ $i -lt 40000 ]; do echo 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' >&2; i=$((i+1)); done"])
            .timeout(Duration::from_secs(60))
            .run(&NullSink, &mut |_| n += 1)
            .unwrap();
        assert!(out.status.success());
        assert_eq!(n, 40000);
    }

    #[test]
    fn quoting_for_display() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("-i"), "-i");
    }
}
