//! Whether the node can write now, and which database failures mean "unavailable".
//!
//! The writer thread ([`super::writer`]) owns [`Health`]: it goes down when the writer's
//! connection is lost (or cannot be opened) and up when a new one is open. It is logged once
//! each way, with the cause; while it is down, writes are refused at once (503) instead of
//! queueing behind a dead connection. [`unavailable`] is the one place that sorts a query
//! error into "the database is unavailable" (503, retry later) or a fault (500).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The writer's state, shared with the handlers.
#[derive(Debug)]
pub struct Health {
    up: AtomicBool,
    outages: AtomicU64,
    down: Mutex<Option<Down>>,
}

/// An outage in progress.
#[derive(Debug, Clone)]
struct Down {
    since: Instant,
    cause: String,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            up: AtomicBool::new(true),
            outages: AtomicU64::new(0),
            down: Mutex::new(None),
        }
    }
}

impl Health {
    /// Whether the writer holds a working connection (as far as it knows).
    #[must_use]
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Outages since start.
    #[must_use]
    pub fn outages(&self) -> u64 {
        self.outages.load(Ordering::Relaxed)
    }

    /// Why writes are refused now (`None` while up). Safe to show: no URL, no password.
    #[must_use]
    pub fn cause(&self) -> Option<String> {
        self.lock().as_ref().map(|d| {
            format!(
                "database unavailable for {} s: {}",
                d.since.elapsed().as_secs(),
                d.cause
            )
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Down>> {
        self.down
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The writer lost its connection or could not open one: logged once per outage; later
    /// causes of the same outage replace the reason quietly.
    pub(crate) fn mark_down(&self, cause: &str) {
        let mut down = self.lock();
        match down.as_mut() {
            Some(d) => {
                if d.cause != cause {
                    tracing::debug!(error.cause = %cause, "database still unavailable");
                    cause.clone_into(&mut d.cause);
                }
            }
            None => {
                tracing::error!(
                    error.cause = %cause,
                    "database unavailable: writes are refused (503) until it answers again"
                );
                *down = Some(Down {
                    since: Instant::now(),
                    cause: cause.to_owned(),
                });
                self.outages.fetch_add(1, Ordering::Relaxed);
                self.up.store(false, Ordering::Release);
            }
        }
    }

    /// The writer has a working connection again: logged once, with the outage's cause.
    pub(crate) fn mark_up(&self) {
        let mut down = self.lock();
        if let Some(d) = down.take() {
            let ms = u64::try_from(d.since.elapsed().as_millis()).unwrap_or(u64::MAX);
            tracing::warn!(
                outage_ms = ms,
                error.cause = %d.cause,
                "database available again: writes resume"
            );
        }
        self.up.store(true, Ordering::Release);
    }
}

/// Whether a query error means the database cannot be used now (its connection is gone, the
/// transaction manager is broken, SQLite is locked, full or failing I/O, a statement ran out
/// of time) rather than a fault in what was asked: such an error is answered 503 with
/// `Retry-After`, and the request may be repeated.
///
/// SQLite's and PostgreSQL's own error texts are matched for the cases diesel gives no kind
/// for: SQLite's come from `sqlite3ErrStr` (fixed in its source for `SQLITE_BUSY`,
/// `SQLITE_LOCKED`, `SQLITE_FULL`, `SQLITE_IOERR`), PostgreSQL's from the server's message
/// catalogue for a cancelled statement and an administrator's shutdown (English locale).
#[must_use]
pub fn unavailable(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error};
    match e {
        Error::BrokenTransactionManager
        | Error::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, _) => true,
        Error::DatabaseError(_, info) => {
            const TEXTS: [&str; 8] = [
                "database is locked",
                "database table is locked",
                "database or disk is full",
                "disk I/O error",
                "canceling statement due to statement timeout",
                "terminating connection due to administrator command",
                "server closed the connection unexpectedly",
                "no connection to the server",
            ];
            let m = info.message();
            TEXTS.iter().any(|t| m.contains(t))
        }
        _ => false,
    }
}
