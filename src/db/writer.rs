//! The single writer: one thread owns the write connection and commits work in groups.
//!
//! ```text
//!  caller ─job─► channel ─► writer thread: BEGIN  (PostgreSQL: + the writers' advisory lock)
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
//!
//! On PostgreSQL every write transaction first takes one transaction-scoped advisory lock
//! ([`WRITER_LOCK`]): the writers of several processes sharing the database take turns, so
//! each reads the chain head and the tracking codes the others committed (no process ever
//! appends at a place another took).
//!
//! **Losing the database.** After a failed job or group the writer checks its connection
//! (transaction manager state, then a ping). A broken connection is dropped: the group's jobs
//! get "database unavailable", [`Health`] goes down (logged once), and the writer reopens
//! with backoff ([`RECONNECT_MIN`] doubling to [`RECONNECT_MAX`]), failing every job that
//! arrives meanwhile at once. Once a connection opens, [`Health`] goes up (logged once) and
//! jobs run again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::r2d2::R2D2Connection;

use super::health::Health;
use super::{ConnManager, DbConn};

/// Most jobs committed together.
pub const MAX_GROUP: usize = 128;

/// First delay before reopening a lost connection.
pub const RECONNECT_MIN: Duration = Duration::from_millis(100);
/// Longest delay between two attempts to reopen it.
pub const RECONNECT_MAX: Duration = Duration::from_secs(1);

/// Key of the PostgreSQL advisory lock every write transaction holds ("lapor-wr").
pub const WRITER_LOCK: i64 = 0x6c61_706f_722d_7772;

/// Takes the writers' advisory lock for the current transaction (PostgreSQL; nothing on
/// SQLite, which has one writer per file anyway).
pub fn serialise(conn: &mut DbConn) -> diesel::QueryResult<()> {
    if let DbConn::Pg(c) = conn {
        use diesel::RunQueryDsl as _;
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({WRITER_LOCK})")).execute(c)?;
    }
    Ok(())
}

/// What a transaction job hands back: where its result goes once the commit is known.
pub type Done = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A transaction job, run by the writer or failed without a connection.
pub trait TxWork: Send {
    /// Runs in its own transaction (a savepoint inside a group: `in_group`) and returns
    /// whether it failed, and where its result goes after the commit.
    fn run(self: Box<Self>, conn: &mut DbConn, in_group: bool) -> (bool, Done);
    /// The database is unavailable: answers with `cause` without running.
    fn fail(self: Box<Self>, cause: &str);
}

/// A job that runs alone, outside any transaction (migrations, checkpoints, probes).
pub trait RawWork: Send {
    /// Runs with the writer's connection.
    fn run(self: Box<Self>, conn: &mut DbConn);
    /// The database is unavailable: answers with `cause` without running.
    fn fail(self: Box<Self>, cause: &str);
}

/// A readiness probe: runs with the writer's working connection, or the cause there is none.
pub type Probe = Box<dyn FnOnce(Result<&mut DbConn, String>) + Send>;

/// Work for the writer thread.
pub enum Job {
    /// Opens its own transaction: a savepoint inside the group transaction, or, alone in its
    /// group, the transaction itself.
    Tx(Box<dyn TxWork>),
    /// Runs alone, outside any transaction.
    Raw(Box<dyn RawWork>),
    /// Readiness: the writer pings its connection (going down if it fails) and then runs this
    /// with it, or with the cause when there is none.
    Probe(Probe),
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tx(_) => "Job::Tx",
            Self::Raw(_) => "Job::Raw",
            Self::Probe(_) => "Job::Probe",
        })
    }
}

impl Job {
    fn fail(self, cause: &str) {
        match self {
            Self::Tx(j) => j.fail(cause),
            Self::Raw(j) => j.fail(cause),
            Self::Probe(f) => f(Err(cause.to_owned())),
        }
    }
}

thread_local! {
    /// Set by a job on the writer thread that wants [`WriterStats::notices`] to tick after
    /// its group commits.
    static NOTICE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Called inside a write transaction (on the writer thread): once the transaction commits,
/// [`WriterStats::notices`] ticks, so that whoever waits for what it wrote (the delivery
/// workers, for new outbox rows) wakes at once. A group that fails to commit ticks nothing.
pub fn notice_after_commit() {
    NOTICE.with(|n| n.set(true));
}

/// Counters of the writer, for metrics, and its commit notices.
#[derive(Debug)]
pub struct WriterStats {
    /// Ticks after each committed group in which a job called [`notice_after_commit`].
    pub notices: tokio::sync::watch::Sender<u64>,
    /// Group transactions committed or failed.
    pub groups: AtomicU64,
    /// Jobs run in them.
    pub jobs: AtomicU64,
    /// Groups whose commit failed.
    pub failed_groups: AtomicU64,
    /// Jobs refused without running because the database was unavailable.
    pub refused_jobs: AtomicU64,
    /// Connections reopened after a loss.
    pub reconnects: AtomicU64,
}

impl Default for WriterStats {
    fn default() -> Self {
        Self {
            notices: tokio::sync::watch::Sender::new(0),
            groups: AtomicU64::default(),
            jobs: AtomicU64::default(),
            failed_groups: AtomicU64::default(),
            refused_jobs: AtomicU64::default(),
            reconnects: AtomicU64::default(),
        }
    }
}

/// The writer's side: its channel, counters and health.
#[derive(Debug)]
pub struct Spawned {
    /// Where jobs go.
    pub sender: mpsc::SyncSender<Job>,
    /// Counters.
    pub stats: Arc<WriterStats>,
    /// Up or down.
    pub health: Arc<Health>,
}

/// Starts the writer thread with `conn` (opened by `manager`, which reopens it after a
/// loss); it ends when every sender is dropped. `setup` runs on every connection the writer
/// opens (the first one included, by the caller). `open` is dropped once its connection is
/// closed.
pub fn spawn(
    conn: DbConn,
    manager: ConnManager,
    setup: fn(&mut DbConn) -> Result<(), String>,
    open: Arc<()>,
    announce: Option<String>,
) -> std::io::Result<Spawned> {
    let (tx, rx) = mpsc::sync_channel::<Job>(4 * MAX_GROUP);
    let stats = Arc::new(WriterStats::default());
    let health = Arc::new(Health::default());
    let mut writer = Writer {
        conn: Some(conn),
        manager,
        setup,
        stats: stats.clone(),
        health: health.clone(),
        announce,
    };
    std::thread::Builder::new()
        .name("db-writer".into())
        .spawn(move || {
            writer.run(&rx);
            drop(writer);
            drop(open);
        })?;
    Ok(Spawned {
        sender: tx,
        stats,
        health,
    })
}

struct Writer {
    conn: Option<DbConn>,
    manager: ConnManager,
    setup: fn(&mut DbConn) -> Result<(), String>,
    stats: Arc<WriterStats>,
    health: Arc<Health>,
    /// PostgreSQL: this handle's token, sent with `NOTIFY` after a commit that asked for a
    /// notice, so that the other processes on the database wake too ([`super::listen`]).
    announce: Option<String>,
}

/// Whether a connection still works, after something failed on it: `Err` with the cause when
/// it must be dropped.
fn check(conn: &mut DbConn) -> Result<(), String> {
    if conn.is_broken() {
        return Err("the connection's transaction state is broken".into());
    }
    conn.ping()
        .map_err(|e| format!("the connection is lost: {e}"))
}

impl Writer {
    fn run(&mut self, rx: &mpsc::Receiver<Job>) {
        let mut pending: Option<Job> = None;
        let mut backoff = RECONNECT_MIN;
        loop {
            if self.conn.is_none() {
                match self.reopen() {
                    Ok(()) => backoff = RECONNECT_MIN,
                    Err(cause) => {
                        self.health.mark_down(&cause);
                        let cause = self.health.cause().unwrap_or(cause);
                        if let Some(j) = pending.take() {
                            self.refuse(j, &cause);
                        }
                        // Every job arriving before the next attempt is refused at once.
                        let until = Instant::now() + backoff;
                        backoff = (backoff * 2).min(RECONNECT_MAX);
                        loop {
                            let left = until.saturating_duration_since(Instant::now());
                            if left.is_zero() {
                                break;
                            }
                            match rx.recv_timeout(left) {
                                Ok(j) => self.refuse(j, &cause),
                                Err(mpsc::RecvTimeoutError::Timeout) => break,
                                Err(mpsc::RecvTimeoutError::Disconnected) => return,
                            }
                        }
                        continue;
                    }
                }
            }
            let first = match pending.take() {
                Some(j) => j,
                None => match rx.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                },
            };
            let first = match first {
                Job::Raw(f) => {
                    self.raw(f);
                    continue;
                }
                Job::Probe(f) => {
                    self.probe(f);
                    continue;
                }
                Job::Tx(f) => f,
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(Job::Tx(f)) => group.push(f),
                    Ok(other) => {
                        pending = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.group(group);
        }
    }

    /// Opens a new connection (after a loss) and sets it up.
    fn reopen(&mut self) -> Result<(), String> {
        let mut c = self.manager.open().map_err(|e| e.to_string())?;
        (self.setup)(&mut c)?;
        self.conn = Some(c);
        self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        self.health.mark_up();
        Ok(())
    }

    fn refuse(&self, job: Job, cause: &str) {
        self.stats.refused_jobs.fetch_add(1, Ordering::Relaxed);
        job.fail(cause);
    }

    /// Drops the connection when `check` says it is lost; returns the cause then.
    fn lost(&mut self) -> Option<String> {
        let conn = self.conn.as_mut()?;
        let cause = check(conn).err()?;
        self.conn = None;
        self.health.mark_down(&cause);
        Some(self.health.cause().unwrap_or(cause))
    }

    fn raw(&mut self, f: Box<dyn RawWork>) {
        let Some(conn) = self.conn.as_mut() else {
            f.fail("database unavailable");
            return;
        };
        f.run(conn);
        if conn.is_broken() {
            let _ = self.lost();
        }
    }

    fn probe(&mut self, f: Probe) {
        let Some(conn) = self.conn.as_mut() else {
            f(Err(self
                .health
                .cause()
                .unwrap_or_else(|| "database unavailable".into())));
            return;
        };
        if let Err(cause) = check(conn) {
            self.conn = None;
            self.health.mark_down(&cause);
            f(Err(self.health.cause().unwrap_or(cause)));
            return;
        }
        f(Ok(conn));
    }

    fn group(&mut self, mut group: Vec<Box<dyn TxWork>>) {
        let Some(conn) = self.conn.as_mut() else {
            let cause = self
                .health
                .cause()
                .unwrap_or_else(|| "database unavailable".into());
            for j in group {
                self.stats.refused_jobs.fetch_add(1, Ordering::Relaxed);
                j.fail(&cause);
            }
            return;
        };
        let mut dones: Vec<Done> = Vec::with_capacity(group.len());
        let mut any_failed = false;
        NOTICE.with(|n| n.set(false));
        let mut outcome = if group.len() == 1 {
            // A lone job's own transaction is the group's: no savepoint (whose sub-journal
            // copies every page the job changes) is needed to keep it apart from others. It
            // has committed, or rolled back and carries its error, when it returns.
            for job in group.drain(..) {
                let (failed, done) = job.run(conn, false);
                any_failed |= failed;
                dones.push(done);
            }
            Ok(())
        } else {
            conn.transaction(|c| {
                serialise(c)?;
                for job in group.drain(..) {
                    let (failed, done) = job.run(c, true);
                    any_failed |= failed;
                    dones.push(done);
                }
                Ok::<(), diesel::result::Error>(())
            })
            .map_err(|e| e.to_string())
        };
        // Jobs the failed lock statement never ran are refused with its error.
        let refused = outcome.as_ref().err().cloned();
        for job in group {
            job.fail(refused.as_deref().unwrap_or("database unavailable"));
        }
        if any_failed || outcome.is_err() {
            if let Some(cause) = self.lost() {
                // Whatever the group's jobs answered, the connection under them is gone: none
                // is known to have committed.
                outcome = Err(cause);
            }
        }
        self.stats.groups.fetch_add(1, Ordering::Relaxed);
        self.stats
            .jobs
            .fetch_add(dones.len() as u64, Ordering::Relaxed);
        if let Err(e) = &outcome {
            self.stats.failed_groups.fetch_add(1, Ordering::Relaxed);
            if self.health.is_up() {
                tracing::error!(error = %e, jobs = dones.len(), "group commit failed");
            }
        }
        if outcome.is_ok() && NOTICE.with(std::cell::Cell::take) {
            self.stats.notices.send_modify(|n| *n = n.wrapping_add(1));
            if let (Some(token), Some(DbConn::Pg(c))) = (&self.announce, self.conn.as_mut()) {
                // Best effort: a process that misses it finds the rows at its idle check.
                if let Err(e) = super::listen::announce(c, token) {
                    tracing::debug!(error = %e, "commit notice to other processes failed");
                }
            }
        }
        for done in dones {
            done(outcome.clone());
        }
    }
}
