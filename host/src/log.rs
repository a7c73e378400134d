//! Prefect-style log lines on stderr, and guest stdout/stderr turned into log lines.
//!
//! A line reads `15:28:43.228 | INFO    | Task run 'add-one-d85' - Finished in state
//! Completed()`: local time, level, the run it belongs to, the message.

use std::cell::RefCell;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Details for debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Something went wrong but the run goes on.
    Warning,
    /// Something failed.
    Error,
}

impl Level {
    /// The level's name, e.g. `WARNING`.
    pub fn name(self) -> &'static str {
        self.label().trim_end()
    }

    /// The level a name (`INFO`, `warning`, …) names.
    pub fn parse(name: &str) -> Option<Level> {
        match name.to_ascii_uppercase().as_str() {
            "DEBUG" => Some(Level::Debug),
            "INFO" => Some(Level::Info),
            "WARNING" | "WARN" => Some(Level::Warning),
            "ERROR" => Some(Level::Error),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG  ",
            Level::Info => "INFO   ",
            Level::Warning => "WARNING",
            Level::Error => "ERROR  ",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Level::Debug => "\x1b[2m",
            Level::Info => "\x1b[36m",
            Level::Warning => "\x1b[33m",
            Level::Error => "\x1b[31m",
        }
    }
}

/// Who a log line is about: `Flow run 'name'`, `Task run 'name'`, or cachehost itself.
#[derive(Clone, Debug)]
pub enum Subject {
    /// The host, not a run.
    Host,
    /// A flow run, by name.
    FlowRun(String),
    /// A task run, by name.
    TaskRun(String),
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Host => f.write_str("cachehost"),
            Subject::FlowRun(name) => write!(f, "Flow run '{name}'"),
            Subject::TaskRun(name) => write!(f, "Task run '{name}'"),
        }
    }
}

/// Writes log lines to stderr (or any writer), one whole line per write.
pub struct Logger {
    min_level: Level,
    colour: bool,
    out: Mutex<Box<dyn Write + Send>>,
    kept: Mutex<Option<Kept>>,
}

/// A log line kept for the run report, as well as written.
#[derive(Clone, Debug)]
pub struct KeptLine {
    /// When, in Unix milliseconds.
    pub at_ms: i64,
    /// Its level.
    pub level: Level,
    /// Whom it is about.
    pub subject: Subject,
    /// The message.
    pub message: String,
}

thread_local! {
    static CAPTURE: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

/// The log lines written on the threads working for one call, whatever their level: a
/// worker relays them to the flow that made the call. Threads that run calls submitted
/// from such a thread capture into the same place ([`Capture::current`]).
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<KeptLine>>>);

impl Capture {
    /// The capture this thread writes into, if any.
    pub fn current() -> Option<Capture> {
        CAPTURE.with(|c| c.borrow().clone())
    }

    /// Runs `work` with this thread's lines captured here too.
    pub fn within<R>(&self, work: impl FnOnce() -> R) -> R {
        let before = CAPTURE.with(|c| c.replace(Some(self.clone())));
        let result = work();
        CAPTURE.with(|c| *c.borrow_mut() = before);
        result
    }

    /// Runs `work` inside `capture`, if there is one: a thread started for the work of
    /// another carries that one's capture so.
    pub fn carry<R>(capture: Option<Capture>, work: impl FnOnce() -> R) -> R {
        match capture {
            Some(capture) => capture.within(work),
            None => work(),
        }
    }

    /// The lines captured so far, oldest first.
    pub fn take(&self) -> Vec<KeptLine> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

struct Kept {
    lines: Vec<KeptLine>,
    limit: usize,
}

impl Logger {
    /// A logger on this process's stderr, coloured only when stderr is a terminal.
    pub fn stderr(min_level: Level) -> Logger {
        let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
        Logger { min_level, colour, out: Mutex::new(Box::new(std::io::stderr())), kept: Mutex::new(None) }
    }

    /// A logger writing to `out`, without colour (for tests and reports).
    pub fn to_writer(min_level: Level, out: Box<dyn Write + Send>) -> Logger {
        Logger { min_level, colour: false, out: Mutex::new(out), kept: Mutex::new(None) }
    }

    /// From now on, also keeps the lines written (at most `limit` of them), for
    /// [`Logger::kept`].
    pub fn keep_lines(&self, limit: usize) {
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(Kept { lines: Vec::new(), limit });
    }

    /// The lines kept so far; none unless [`Logger::keep_lines`] was called.
    pub fn kept(&self) -> Vec<KeptLine> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|k| k.lines.clone()).unwrap_or_default()
    }

    /// Writes one line.
    pub fn log(&self, level: Level, subject: &Subject, message: &str) {
        self.log_args(level, subject, format_args!("{message}"));
    }

    /// Writes one line whose message is formatted straight into it (no message string is
    /// built first: the end of every task run logs one).
    pub fn log_args(&self, level: Level, subject: &Subject, message: std::fmt::Arguments<'_>) {
        let now = time::OffsetDateTime::now_local().unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        if let Some(capture) = Capture::current() {
            capture.0.lock().unwrap_or_else(|e| e.into_inner()).push(KeptLine {
                at_ms: (now.unix_timestamp_nanos() / 1_000_000) as i64,
                level,
                subject: subject.clone(),
                message: message.to_string(),
            });
        }
        self.write(level, subject, message, now);
    }

    /// Writes a line written elsewhere (by a worker, for a call of this process's flow) at
    /// the time it was written there.
    pub fn relay(&self, line: &KeptLine) {
        let utc = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(line.at_ms) * 1_000_000)
            .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        let at = match time::UtcOffset::current_local_offset() {
            Ok(offset) => utc.to_offset(offset),
            Err(_) => utc,
        };
        self.write(line.level, &line.subject, format_args!("{}", line.message), at);
    }

    fn write(&self, level: Level, subject: &Subject, message: std::fmt::Arguments<'_>, now: time::OffsetDateTime) {
        use std::fmt::Write as _;
        if level < self.min_level {
            return;
        }
        let (hour, minute, second, milli) = (now.hour(), now.minute(), now.second(), now.millisecond());
        let mut line = String::with_capacity(128);
        // Writing into a String cannot fail.
        let _ = if self.colour {
            writeln!(
                line,
                "\x1b[2m{hour:02}:{minute:02}:{second:02}.{milli:03}\x1b[0m | {}{}\x1b[0m | {subject} - {message}",
                level.colour(),
                level.label()
            )
        } else {
            writeln!(line, "{hour:02}:{minute:02}:{second:02}.{milli:03} | {} | {subject} - {message}", level.label())
        };
        if let Some(kept) = self.kept.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            if kept.lines.len() < kept.limit {
                kept.lines.push(KeptLine {
                    at_ms: (now.unix_timestamp_nanos() / 1_000_000) as i64,
                    level,
                    subject: subject.clone(),
                    message: message.to_string(),
                });
            }
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A closed stderr must not fail a run.
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }
}

/// A guest's stdout or stderr: every complete line becomes a log line of its run
/// (Prefect's `log_prints`); a last unterminated line is logged when the run's Store is
/// dropped.
#[derive(Clone)]
pub struct GuestOutput {
    sink: Arc<LineSink>,
}

struct LineSink {
    logger: Arc<Logger>,
    subject: Subject,
    level: Level,
    pending: Mutex<Vec<u8>>,
}

impl GuestOutput {
    /// Output of the run `subject`, logged at `level`.
    pub fn new(logger: Arc<Logger>, subject: Subject, level: Level) -> GuestOutput {
        GuestOutput { sink: Arc::new(LineSink { logger, subject, level, pending: Mutex::new(Vec::new()) }) }
    }
}

impl LineSink {
    fn write(&self, bytes: &[u8]) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend_from_slice(bytes);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            self.logger.log(self.level, &self.subject, text.trim_end_matches('\r'));
        }
    }
}

impl Drop for LineSink {
    fn drop(&mut self) {
        let pending = std::mem::take(self.pending.get_mut().unwrap_or_else(|e| e.into_inner()));
        if !pending.is_empty() {
            self.logger.log(self.level, &self.subject, &String::from_utf8_lossy(&pending));
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.sink.write(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.sink.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn guest_output_becomes_one_log_line_per_printed_line() {
        let captured = Shared::default();
        let logger = Arc::new(Logger::to_writer(Level::Debug, Box::new(captured.clone())));
        let mut out = GuestOutput::new(logger, Subject::TaskRun("t-abc".into()), Level::Info);
        OutputStream::write(&mut out, bytes::Bytes::from_static(b"hel")).unwrap();
        OutputStream::write(&mut out, bytes::Bytes::from_static(b"lo\nsecond\nthird")).unwrap();
        drop(out);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().map(|l| l.split_once(" | ").unwrap().1).collect();
        assert_eq!(
            lines,
            [
                "INFO    | Task run 't-abc' - hello",
                "INFO    | Task run 't-abc' - second",
                "INFO    | Task run 't-abc' - third"
            ]
        );
    }
}
