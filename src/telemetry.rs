//! Logging with `tracing`: an env filter (`RUST_LOG` wins over `log.filter`) and text or JSON
//! output to stderr. Never log personal data or secrets; facts go in fields. Text lines carry
//! ANSI colours only when stderr is a terminal: journald and log files get plain text.
//!
//! Lines are formatted on the thread that logs and appended to a shared buffer; a background
//! thread, woken by the first line, writes the buffer out [`FLUSH_EVERY`] later (sooner once it
//! holds [`FLUSH_BYTES`]), in one `write` for everything queued; it sleeps while nothing is
//! logged. A thread that logs never waits for the output and
//! never wakes the writer for a single line: under load, thousands of lines a second cost a
//! few writes and a few wake-ups. Nothing is dropped: when the buffer reaches [`MAX_BYTES`]
//! (the output is stuck), logging waits until it has been written. Keep the [`LogGuard`]
//! until the end of `main`: dropping it writes what is still buffered.

use std::io::{IsTerminal as _, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogFormat, LogSettings};

/// The longest a line waits in the buffer before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// A buffer this full is written at once.
pub const FLUSH_BYTES: usize = 256 * 1024;
/// A buffer this full makes logging threads wait for the writer.
pub const MAX_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Default)]
struct Buffer {
    bytes: Vec<u8>,
    stopping: bool,
    /// No writer thread (it has ended, or could not start): lines go straight to stderr.
    unwritten: bool,
}

#[derive(Debug, Default)]
struct Shared {
    buffer: Mutex<Buffer>,
    /// Wakes the writer (a full buffer, or stopping).
    wake_writer: Condvar,
    /// Wakes threads waiting for room.
    room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A thread that panicked while appending leaves whole lines behind; keep logging.
        self.buffer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn append(&self, line: &[u8]) {
        let mut b = self.lock();
        if b.unwritten {
            drop(b);
            let _ = std::io::stderr().write_all(line);
            return;
        }
        while b.bytes.len() >= MAX_BYTES && !b.stopping {
            self.wake_writer.notify_one();
            b = self
                .room
                .wait(b)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let (was_empty, was_below) = (b.bytes.is_empty(), b.bytes.len() < FLUSH_BYTES);
        b.bytes.extend_from_slice(line);
        // The writer sleeps until the first line (then gathers for FLUSH_EVERY) or a full
        // buffer: at most one wake-up per flush, none while nothing is logged.
        if was_empty || (was_below && b.bytes.len() >= FLUSH_BYTES) {
            self.wake_writer.notify_one();
        }
    }
}

/// Hands each formatted line to the shared buffer (`tracing_subscriber` writes one event's
/// line in one call).
#[derive(Debug, Clone)]
pub struct BatchWriter(Arc<Shared>);

impl Write for BatchWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchWriter {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Keeps the log-writing thread; dropping it writes out what is still buffered.
#[must_use = "log lines are written by a background thread until this is dropped"]
#[derive(Debug)]
pub struct LogGuard {
    shared: Option<Arc<Shared>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.lock().stopping = true;
            shared.wake_writer.notify_one();
            shared.room.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the thread that writes buffered lines to `out`; returns the writer to log through
/// and the guard that ends it.
pub fn batch_writer<W: Write + Send + 'static>(mut out: W) -> (BatchWriter, LogGuard) {
    let shared = Arc::new(Shared::default());
    let theirs = shared.clone();
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            let mut spare = Vec::new();
            loop {
                let stopping = {
                    let mut b = theirs.lock();
                    while b.bytes.is_empty() && !b.stopping {
                        b = theirs
                            .wake_writer
                            .wait(b)
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                    }
                    if b.bytes.len() < FLUSH_BYTES && !b.stopping {
                        b = theirs
                            .wake_writer
                            .wait_timeout(b, FLUSH_EVERY)
                            .map(|(b, _)| b)
                            .unwrap_or_else(|e| e.into_inner().0);
                    }
                    std::mem::swap(&mut b.bytes, &mut spare);
                    b.stopping
                };
                theirs.room.notify_all();
                if !spare.is_empty() {
                    // Nowhere to report a failing log output: the lines are lost, logging goes on.
                    let _ = out.write_all(&spare).and_then(|()| out.flush());
                    spare.clear();
                }
                if stopping {
                    let mut b = theirs.lock();
                    if b.bytes.is_empty() {
                        b.unwritten = true;
                        return;
                    }
                }
            }
        });
    match thread {
        Ok(thread) => (
            BatchWriter(shared.clone()),
            LogGuard {
                shared: Some(shared),
                thread: Some(thread),
            },
        ),
        // No thread to write the buffer: lines go straight to stderr.
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "cannot start the log-writer thread: {e}");
            shared.lock().unwritten = true;
            (
                BatchWriter(shared),
                LogGuard {
                    shared: None,
                    thread: None,
                },
            )
        }
    }
}

/// Log timestamps in RFC 3339, UTC, to the microsecond (`2026-12-03T08:53:12.123456Z`, the
/// form of `tracing_subscriber`'s default timer), with the part up to the second written once
/// a second per thread: the default timer's calendar arithmetic and formatting were half of
/// the cost of a log line, and a busy node logs each report it files.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogTime;

impl LogTime {
    /// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SS` (`None` past year 9999).
    fn second(secs: u64) -> Option<[u8; 19]> {
        let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
        let text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        text.as_bytes().try_into().ok()
    }

    /// The timestamp of `now` (time since the epoch).
    fn text(now: Duration, out: &mut [u8; 27]) -> Option<&str> {
        thread_local! {
            static SECOND: std::cell::Cell<Option<(u64, [u8; 19])>> = const { std::cell::Cell::new(None) };
        }
        let secs = now.as_secs();
        let second = match SECOND.get() {
            Some((s, text)) if s == secs => text,
            _ => {
                let text = Self::second(secs)?;
                SECOND.set(Some((secs, text)));
                text
            }
        };
        out[..19].copy_from_slice(&second);
        out[19] = b'.';
        let mut micros = now.subsec_micros();
        for digit in out[20..26].iter_mut().rev() {
            // A digit: the remainder of a division by ten.
            *digit = b'0' + u8::try_from(micros % 10).ok()?;
            micros /= 10;
        }
        out[26] = b'Z';
        std::str::from_utf8(out).ok()
    }
}

impl tracing_subscriber::fmt::time::FormatTime for LogTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut buf = [0u8; 27];
        match Self::text(now, &mut buf) {
            Some(text) => w.write_str(text),
            // Outside years 0–9999 (a clock far off): the default timer's form.
            None => tracing_subscriber::fmt::time::SystemTime.format_time(w),
        }
    }
}

/// Installs the global subscriber. Calling it twice is harmless (the second call does nothing).
pub fn init(settings: &LogSettings) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = batch_writer(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_timer(LogTime)
        .with_ansi(std::io::stderr().is_terminal())
        .with_span_events(FmtSpan::NONE);
    let installed = match settings.format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // Already installed (a second call): this writer is unused; its thread ends with the
    // guard, dropped here.
    if installed.is_err() {
        drop(guard);
        return LogGuard {
            shared: None,
            thread: None,
        };
    }
    guard
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink whose contents the test can read while the writer owns it.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn contents(sink: &Sink) -> String {
        String::from_utf8_lossy(
            &sink
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }

    #[test]
    fn log_times_read_as_the_default_timer_writes_them() {
        use tracing_subscriber::fmt::format::Writer;
        use tracing_subscriber::fmt::time::FormatTime;
        // Across a second and a day boundary, and twice within one second (the cached part).
        for (secs, micros) in [
            (1_796_256_000u64, 5u32),
            (1_796_255_999, 999_999),
            (1_796_256_000, 7),
            (0, 0),
            (253_402_300_799, 123_456),
        ] {
            let now = Duration::from_secs(secs) + Duration::from_micros(micros.into());
            let mut buf = [0u8; 27];
            let ours = LogTime::text(now, &mut buf).map(str::to_owned);
            let t = time::OffsetDateTime::UNIX_EPOCH + now;
            let expected = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                micros
            );
            assert_eq!(
                ours.as_deref(),
                Some(expected.as_str()),
                "at {secs}.{micros:06}"
            );
        }
        // The installed timer writes the same form.
        let mut line = String::new();
        LogTime.format_time(&mut Writer::new(&mut line)).unwrap();
        let mut default = String::new();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut Writer::new(&mut default))
            .unwrap();
        assert_eq!(line.len(), default.len(), "{line} vs {default}");
        assert_eq!(line[..16], default[..16], "{line} vs {default}");
    }

    #[test]
    fn every_line_from_every_thread_is_written_whole_and_none_is_lost() {
        let sink = Sink::default();
        let (writer, guard) = batch_writer(sink.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let mut w = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        let _ = w.write(format!("thread {t} line {i}\n").as_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
        drop(guard);
        let text = contents(&sink);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 20_000);
        for t in 0..4 {
            let mine: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            let expected: Vec<String> =
                (0..5_000).map(|i| format!("thread {t} line {i}")).collect();
            assert_eq!(mine, expected, "thread {t}'s lines in order and whole");
        }
    }

    #[test]
    fn a_line_is_written_within_the_flush_interval_without_more_logging() {
        let sink = Sink::default();
        let (mut writer, _guard) = batch_writer(sink.clone());
        let _ = writer.write(b"one line\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while contents(&sink).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(contents(&sink), "one line\n");
    }

    #[test]
    fn a_stuck_output_makes_logging_wait_instead_of_dropping_lines() {
        /// Blocks every write until the test opens the gate.
        #[derive(Clone)]
        struct Gate(Arc<(Mutex<bool>, Condvar)>, Sink);
        impl Write for Gate {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let (open, cv) = &*self.0;
                let mut o = open
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                while !*o {
                    o = cv
                        .wait(o)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                self.1.write(buf)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let gate = Gate(Arc::default(), sink.clone());
        let (writer, guard) = batch_writer(gate.clone());
        let mut line = vec![b'x'; 1023];
        line.push(b'\n');
        let logged = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = logged.clone();
        let mut w = writer.clone();
        let logger = std::thread::spawn(move || {
            // Three times the cap: more than the buffer and the write in flight can hold.
            for _ in 0..(3 * MAX_BYTES / 1024) {
                let _ = w.write(&line);
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        let stalled = logged.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            stalled < 3 * MAX_BYTES / 1024,
            "logging went on while the output was stuck"
        );
        {
            let (open, cv) = &*gate.0;
            *open
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
            cv.notify_all();
        }
        let _ = logger.join();
        drop(guard);
        assert_eq!(contents(&sink).lines().count(), 3 * MAX_BYTES / 1024);
    }
}
