//! The single writer: one thread owns the write connection and commits work in groups.
//!
//! ```text
//!  caller ─job─► channel ─► writer thread: BEGIN
//!  caller ─job─►              SAVEPOINT; job 1; RELEASE (or ROLLBACK TO on its error)
//!  caller ─job─►              SAVEPOINT; job 2; …            (up to MAX_GROUP jobs)
//!     ▲                      COMMIT
//!     └──── result ◄──────── each caller gets its own result after the COMMIT
//! ```
//!
//! A job that fails is rolled back to its savepoint and does not disturb the others of its
//! group; a failed COMMIT fails every job of the group. A job alone in its group runs as its
//! own transaction (BEGIN … COMMIT, no savepoint). Results are delivered only after the
//! COMMIT, so a caller that sees `Ok` knows its writes are durable (per the backend's
//! synchronous setting). Grouping amortises the commit (WAL frame writes) over many small
//! transactions when requests arrive concurrently; a lone request is committed at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use diesel::Connection;

use super::{DbConn, DbError};

/// Most jobs committed together.
pub const MAX_GROUP: usize = 128;

type Done = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Work for the writer thread.
pub enum Job {
    /// Opens its own transaction (`Connection::transaction`): a savepoint inside the group
    /// transaction, or, alone in its group, the transaction itself.
    Tx(Box<dyn FnOnce(&mut DbConn) -> Done + Send>),
    /// Runs alone, outside any transaction (migrations).
    Raw(Box<dyn FnOnce(&mut DbConn) + Send>),
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tx(_) => "Job::Tx",
            Self::Raw(_) => "Job::Raw",
        })
    }
}

/// Counters of the writer, for metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Group transactions committed or failed.
    pub groups: AtomicU64,
    /// Jobs run in them.
    pub jobs: AtomicU64,
    /// Groups whose commit failed.
    pub failed_groups: AtomicU64,
}

/// Starts the writer thread; it ends when every sender is dropped.
pub fn spawn(mut conn: DbConn) -> Result<(mpsc::SyncSender<Job>, Arc<WriterStats>), DbError> {
    let (tx, rx) = mpsc::sync_channel::<Job>(4 * MAX_GROUP);
    let stats = Arc::new(WriterStats::default());
    let thread_stats = stats.clone();
    std::thread::Builder::new()
        .name("db-writer".into())
        .spawn(move || run(&mut conn, &rx, &thread_stats))
        .map_err(|e| DbError::Unavailable(format!("cannot start the writer thread: {e}")))?;
    Ok((tx, stats))
}

fn run(conn: &mut DbConn, rx: &mpsc::Receiver<Job>, stats: &WriterStats) {
    let mut pending: Option<Job> = None;
    loop {
        let first = match pending.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        let first = match first {
            Job::Raw(f) => {
                f(conn);
                continue;
            }
            Job::Tx(f) => f,
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(Job::Tx(f)) => group.push(f),
                Ok(raw @ Job::Raw(_)) => {
                    pending = Some(raw);
                    break;
                }
                Err(_) => break,
            }
        }
        let mut dones: Vec<Done> = Vec::with_capacity(group.len());
        let outcome = if group.len() == 1 {
            // A lone job's own transaction is the group's: no savepoint (whose sub-journal
            // copies every page the job changes) is needed to keep it apart from others. It
            // has committed, or rolled back and carries its error, when it returns.
            dones.extend(group.drain(..).map(|job| job(conn)));
            Ok(())
        } else {
            conn.transaction(|c| {
                for job in group.drain(..) {
                    dones.push(job(c));
                }
                Ok::<(), diesel::result::Error>(())
            })
            .map_err(|e| e.to_string())
        };
        stats.groups.fetch_add(1, Ordering::Relaxed);
        stats.jobs.fetch_add(dones.len() as u64, Ordering::Relaxed);
        if let Err(e) = &outcome {
            stats.failed_groups.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, jobs = dones.len(), "group commit failed");
        }
        for done in dones {
            done(outcome.clone());
        }
    }
}
