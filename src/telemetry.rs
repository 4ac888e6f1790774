//! Logging with `tracing`: an env filter (`RUST_LOG` wins over `log.filter`) and text or JSON
//! output to stderr. Never log personal data or secrets; facts go in fields.
//!
//! Lines are formatted on the thread that logs and written by a background thread, which
//! writes whatever has queued up in one go (one `write` for many lines under load, instead of
//! one per line on a request thread). The queue is not lossy: when it is full, logging waits.
//! Keep the [`LogGuard`] until the end of `main`: dropping it writes what is still queued.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogFormat, LogSettings};

/// Keeps the log-writing thread; dropping it writes out what is still queued.
#[must_use = "log lines are written by a background thread until this is dropped"]
#[derive(Debug)]
pub struct LogGuard {
    _worker: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Installs the global subscriber. Calling it twice is harmless (the second call does nothing).
pub fn init(settings: &LogSettings) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_span_events(FmtSpan::NONE);
    let installed = match settings.format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    LogGuard {
        _worker: installed.ok().map(|()| guard),
    }
}
