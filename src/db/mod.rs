//! The database: one binary speaks SQLite (embedded default) and PostgreSQL, chosen by the URL.
//!
//! - [`DbConn`] is a `diesel::MultiConnection` over both backends;
//! - [`ConnManager`] opens connections for the r2d2 pool, keeping the real error of a failed
//!   connection (diesel's own multi-connection `establish` hides it), and sets SQLite's
//!   pragmas (busy timeout first, then WAL, secure delete, foreign keys, synchronous=NORMAL) and
//!   PostgreSQL's timeouts (`connect_timeout`, `statement_timeout`, TCP keepalives) on every
//!   connection ([`DbOptions`]);
//! - [`migrations`] embeds `migrations/sqlite` and `migrations/postgres` (twin folders with
//!   identical names) and runs them (on PostgreSQL under an advisory lock, so processes
//!   starting together take turns);
//! - [`Db`] pairs a read pool with one writer connection owned by the `writer` thread: every
//!   write transaction of the process runs there, and concurrent ones commit as a group;
//! - [`health`] says whether the writer can write now: a lost connection is dropped and
//!   reopened with backoff, and meanwhile writes are refused at once (503).
//!
//! Pooled connections that broke are dropped by the pool (`has_broken`, and a ping on every
//! checkout) and opened anew; a request waits at most `pool_timeout` for one.

pub mod health;
pub mod listen;
pub mod migrations;
pub mod schema;
pub mod writer;

use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use secrecy::ExposeSecret;

use crate::config::DatabaseUrl;

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// Embedded SQLite.
    Sqlite(SqliteConnection),
    /// PostgreSQL.
    Pg(PgConnection),
}

impl std::fmt::Debug for DbConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite(_) => "DbConn::Sqlite",
            Self::Pg(_) => "DbConn::Pg",
        })
    }
}

/// Runs `$body` with `$c` bound to the concrete connection of either backend: for
/// statements the multi-backend connection cannot express, such as multi-row inserts.
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Pg($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// Inserts `$rows` (a slice of insertable values, such as tuples of `column.eq(value)`) into
/// `$table`, in the caller's transaction: on SQLite one cached single-row statement per row,
/// found in the statement cache by its value type ([`FixedSql`]) — diesel's multi-row insert
/// on SQLite renders its SQL anew each time and runs each row under its own savepoint — and on
/// PostgreSQL one multi-row statement per `$chunk` rows. Every row must name the same columns
/// (no `Option` that leaves one out). Row structs with a `sqlite_insert!` declaration go
/// through [`insert_rows!`] instead. Evaluates to `QueryResult<()>`.
macro_rules! insert_all {
    ($conn:expr, $table:expr, $rows:expr, $chunk:expr) => {{
        use diesel::RunQueryDsl as _;
        match $conn {
            $crate::db::DbConn::Sqlite(c) => $rows.iter().try_for_each(|row| {
                $crate::db::FixedSql::of(diesel::insert_into($table).values(row), &$table, row)
                    .execute(c)
                    .map(|_| ())
            }),
            $crate::db::DbConn::Pg(c) => $rows.chunks($chunk).try_for_each(|chunk| {
                diesel::insert_into($table)
                    .values(chunk)
                    .execute(c)
                    .map(|_| ())
            }),
        }
    }};
}
pub(crate) use insert_all;

/// Inserts `$rows` (a slice of a row struct with a [`sqlite_insert!`] declaration) into
/// `$table`, in the caller's transaction: on SQLite one cached single-row statement per row,
/// written out by [`RowInsert`]; on PostgreSQL one multi-row statement per `$chunk` rows.
/// Evaluates to `QueryResult<()>`.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr, $chunk:expr) => {{
        use diesel::RunQueryDsl as _;
        match $conn {
            $crate::db::DbConn::Sqlite(c) => $rows
                .iter()
                .try_for_each(|row| $crate::db::RowInsert(row).execute(c).map(|_| ())),
            $crate::db::DbConn::Pg(c) => $rows.chunks($chunk).try_for_each(|chunk| {
                diesel::insert_into($table)
                    .values(chunk)
                    .execute(c)
                    .map(|_| ())
            }),
        }
    }};
}
pub(crate) use insert_rows;

/// A single-row SQLite insert of `R`, its SQL written out by `sqlite_insert!`: one pass over
/// the row's fields binds them all. Diesel's own insert of a row struct walks a tuple of one
/// node per column three times a row (to ask whether it may be cached, to collect the binds,
/// to bind them), which was about a sixth of the writer's time at intake; this one's walks
/// are a flat list of binds. Found in the statement cache by its type, so its text is built
/// once per connection.
#[derive(Debug)]
pub struct RowInsert<'a, R>(pub &'a R);

impl<R: 'static> diesel::query_builder::QueryId for RowInsert<'_, R> {
    type QueryId = RowInsert<'static, R>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<R, Conn> RunQueryDsl<Conn> for RowInsert<'_, R> {}

/// Declares the SQLite insert of a row struct ([`RowInsert`]): `sqlite_insert!(Row, table {
/// field, … })` names every field of `Row` (a missing one does not compile), each bound to
/// the column of the same name with that column's SQL type.
macro_rules! sqlite_insert {
    ($row:ident, $table:ident { $($field:ident),+ $(,)? }) => {
        impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>
            for $crate::db::RowInsert<'_, $row>
        {
            fn walk_ast<'b>(
                &'b self,
                mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
            ) -> diesel::QueryResult<()> {
                let $row { $($field),+ } = self.0;
                out.push_sql("INSERT INTO ");
                out.push_identifier(stringify!($table))?;
                let mut sep = " (";
                $(
                    out.push_sql(sep);
                    out.push_identifier(<$table::$field as diesel::Column>::NAME)?;
                    sep = ", ";
                )+
                sep = ") VALUES (";
                $(
                    out.push_sql(sep);
                    out.push_bind_param::<diesel::dsl::SqlTypeOf<$table::$field>, _>($field)?;
                    sep = ", ";
                )+
                let _ = sep;
                out.push_sql(")");
                Ok(())
            }
        }
    };
}
pub(crate) use sqlite_insert;

/// A SQLite statement whose SQL text depends only on the types `K` (for an insert: its table
/// and row struct), so diesel's statement cache finds it by type: without this, an insert of
/// a row struct renders its whole SQL text (every column name) on each execution only to look
/// the statement up, which was about a fifth of the writer's time at intake.
///
/// Only for statements whose text cannot vary with the values: an insert of a row struct
/// deriving `Insertable` with `treat_none_as_default_value = false` binds every column of
/// every row (without it, diesel's SQLite insert leaves out the columns of `None` fields).
/// diesel still walks the inner insert to ask whether it may be cached (it reaches this
/// through `&FixedSql`, whose `QueryFragment` does not pass such an answer on); for wide
/// rows [`RowInsert`] avoids that walk.
#[derive(Debug)]
pub struct FixedSql<Q, K>(Q, std::marker::PhantomData<fn() -> K>);

impl<Q, T: 'static, R: 'static> FixedSql<Q, (T, R)> {
    /// `query`, an insert of `row` into `table`.
    pub fn of(query: Q, _table: &T, _row: &R) -> Self {
        Self(query, std::marker::PhantomData)
    }
}

impl<Q, K: 'static> diesel::query_builder::QueryId for FixedSql<Q, K> {
    type QueryId = K;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Q, K> diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for FixedSql<Q, K>
where
    Q: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
{
    fn walk_ast<'b>(
        &'b self,
        pass: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }
}

impl<Q, K, Conn> RunQueryDsl<Conn> for FixedSql<Q, K> {}

/// The connection pool.
pub type DbPool = Pool<ConnManager>;
/// A pooled connection.
pub type PooledConn = PooledConnection<ConnManager>;

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The backend refused or could not be reached (the backend's own message).
    #[error("cannot connect to {what}: {cause}")]
    Connect {
        /// Which database (no password).
        what: String,
        /// The backend's error.
        cause: diesel::ConnectionError,
    },
    /// A setup statement failed.
    #[error("cannot set up connection to {what}: {cause}")]
    Setup {
        /// Which database.
        what: String,
        /// The error.
        cause: diesel::result::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create directory {path}: {cause}")]
    Dir {
        /// The directory.
        path: String,
        /// The IO error.
        cause: std::io::Error,
    },
    /// The pool could not be built.
    #[error("connection pool: {0}")]
    Pool(String),
    /// A database file grants access to group or others.
    #[error(
        "{path} is readable by others (mode {mode:04o}) and holds personal data; \
         restrict it with `chmod 600 {path}` (and `chmod 700` its directory)"
    )]
    Permissions {
        /// The file.
        path: String,
        /// Its mode bits.
        mode: u32,
    },
    /// The database could not be opened within the start-up wait.
    #[error("database not available after waiting {secs} s: {last}")]
    GaveUp {
        /// The wait, in seconds.
        secs: u64,
        /// The last attempt's error.
        last: Box<ConnectError>,
    },
}

/// How connections are opened and how long anything may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbOptions {
    /// Connections in the read pool.
    pub pool_size: u32,
    /// PostgreSQL: opening a connection gives up after this (libpq `connect_timeout`).
    pub connect_timeout: Duration,
    /// PostgreSQL: the server cancels a statement running longer (zero: never).
    pub statement_timeout: Duration,
    /// Longest wait for a pooled connection.
    pub pool_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            pool_timeout: Duration::from_secs(2),
        }
    }
}

impl DbOptions {
    /// The defaults with a pool of `size`.
    #[must_use]
    pub fn with_pool_size(size: u32) -> Self {
        Self {
            pool_size: size,
            ..Self::default()
        }
    }
}

/// SQLite's busy timeout: how long a statement waits for another connection's lock.
const SQLITE_BUSY_MS: u64 = 10_000;

/// Opens connections for the pool.
#[derive(Debug, Clone)]
pub struct ConnManager {
    url: DatabaseUrl,
    options: DbOptions,
}

/// `url` with libpq's `connect_timeout` and TCP keepalives added, unless it sets them itself.
fn pg_url(url: &str, options: &DbOptions) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    let given: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let has = |k: &str| given.iter().any(|g| g == k);
    let secs = options.connect_timeout.as_secs().max(2).to_string();
    let mut add: Vec<(&str, &str)> = Vec::new();
    if !has("connect_timeout") {
        add.push(("connect_timeout", &secs));
    }
    // A peer that vanished without closing (a cut link) is noticed within about a minute.
    for (k, v) in [
        ("keepalives", "1"),
        ("keepalives_idle", "30"),
        ("keepalives_interval", "10"),
        ("keepalives_count", "3"),
    ] {
        if !has(k) {
            add.push((k, v));
        }
    }
    if !add.is_empty() {
        parsed.query_pairs_mut().extend_pairs(add);
    }
    parsed.into()
}

impl ConnManager {
    /// A manager for this database, with the default options.
    #[must_use]
    pub fn new(url: DatabaseUrl) -> Self {
        Self::with_options(url, DbOptions::default())
    }

    /// A manager for this database.
    #[must_use]
    pub const fn with_options(url: DatabaseUrl, options: DbOptions) -> Self {
        Self { url, options }
    }

    /// Opens one connection.
    pub fn open(&self) -> Result<DbConn, ConnectError> {
        let what = self.url.describe();
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let path_str = path.to_string_lossy();
                let mut c = SqliteConnection::establish(&path_str).map_err(|cause| {
                    ConnectError::Connect {
                        what: what.clone(),
                        cause,
                    }
                })?;
                // The busy timeout first: switching to WAL needs a lock, and another process
                // reading the file at that moment would otherwise fail the start at once with
                // "database is locked".
                c.batch_execute(&format!("PRAGMA busy_timeout = {SQLITE_BUSY_MS};"))
                    .map_err(|cause| ConnectError::Setup {
                        what: what.clone(),
                        cause,
                    })?;
                sqlite_wal(&mut c).map_err(|cause| ConnectError::Setup {
                    what: what.clone(),
                    cause,
                })?;
                // Page cache 4 MB per connection: 16 MB was no faster at intake, empty or with
                // 287,000 tickets held, but a full scan (the SLA sweep's) grew the process by
                // ≈ 110 MiB with a million tickets held, against ≈ 40 MiB at 4 MB
                // (docs/BENCHMARKS.md, 2026-12-02 late evening).
                c.batch_execute(
                    "PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
                     PRAGMA temp_store = MEMORY; PRAGMA cache_size = -4000;",
                )
                .map_err(|cause| ConnectError::Setup { what, cause })?;
                Ok(DbConn::Sqlite(c))
            }
            DatabaseUrl::Postgres(url) => {
                let full = pg_url(url.expose_secret(), &self.options);
                let mut c =
                    PgConnection::establish(&full).map_err(|cause| ConnectError::Connect {
                        what: what.clone(),
                        cause,
                    })?;
                let ms = self.options.statement_timeout.as_millis();
                c.batch_execute(&format!(
                    "SET statement_timeout = {ms}; SET application_name = 'lapor-node';"
                ))
                .map_err(|cause| ConnectError::Setup { what, cause })?;
                Ok(DbConn::Pg(c))
            }
        }
    }
}

/// Switches a SQLite connection to WAL. The switch needs a moment without other connections'
/// transactions on a file not yet in WAL mode; the busy timeout covers most waits, and a
/// refusal is retried for as long again.
fn sqlite_wal(c: &mut SqliteConnection) -> diesel::QueryResult<()> {
    let until = std::time::Instant::now() + Duration::from_millis(SQLITE_BUSY_MS);
    loop {
        match c.batch_execute("PRAGMA journal_mode = WAL;") {
            Err(e) if health::unavailable(&e) && std::time::Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

impl ManageConnection for ConnManager {
    type Connection = DbConn;
    type Error = ConnectError;

    fn connect(&self) -> Result<DbConn, ConnectError> {
        self.open()
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), ConnectError> {
        diesel::sql_query("SELECT 1")
            .execute(conn)
            .map(|_| ())
            .map_err(|cause| ConnectError::Setup {
                what: self.url.describe(),
                cause,
            })
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        use diesel::r2d2::R2D2Connection as _;
        conn.is_broken()
    }
}

/// Builds the pool. For SQLite the parent directory is created; the first connection is opened
/// here, so a wrong URL or password fails now with the backend's message.
pub fn connect(url: &DatabaseUrl, options: &DbOptions) -> Result<DbPool, ConnectError> {
    if let DatabaseUrl::Sqlite(path) = url {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_dir(dir)?;
        }
        if !is_memory(path) {
            private_sqlite_files(path)?;
        }
    }
    let manager = ConnManager::with_options(url.clone(), *options);
    // Open once by hand so the caller sees the real error rather than a pool timeout.
    drop(manager.open()?);
    // The pool opens the rest in the background: a database that stops answering now costs
    // a request `pool_timeout` at most, never the start.
    Ok(r2d2::Pool::builder()
        .max_size(options.pool_size)
        .connection_timeout(options.pool_timeout)
        .build_unchecked(manager))
}

/// `:memory:` and `file:` URIs name no plain file to protect.
fn is_memory(path: &Path) -> bool {
    let s = path.to_string_lossy();
    s == ":memory:" || s.starts_with("file:")
}

fn create_dir(dir: &Path) -> Result<(), ConnectError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let err = |cause| ConnectError::Dir {
        path: dir.display().to_string(),
        cause,
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
        // The umask may have narrowed the mode further, never widened it; set it exactly.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    } else if let Ok(meta) = std::fs::metadata(dir) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format_args!("{mode:04o}"),
                "the data directory is open to group or others; `chmod 700` it"
            );
        }
    }
    Ok(())
}

/// Creates the SQLite database file readable by its owner only (SQLite gives its `-wal` and
/// `-shm` files the database file's mode), and refuses to open a database, log or shared-memory
/// file that group or others may read: it holds reporters' names and phone numbers.
fn private_sqlite_files(path: &Path) -> Result<(), ConnectError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let shown = path.display().to_string();
    if !path.exists() {
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(cause) => return Err(ConnectError::Dir { path: shown, cause }),
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{shown}{suffix}"));
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(ConnectError::Permissions {
                path: file.display().to_string(),
                mode,
            });
        }
    }
    Ok(())
}

/// The node's database: a pool for reads and one dedicated writer connection.
///
/// All writes of a process go through the writer thread ([`writer`]): SQLite allows a single
/// writer anyway, and concurrent requests share one commit. On PostgreSQL, processes sharing a
/// database take turns under one advisory lock ([`writer::WRITER_LOCK`]), so none appends at
/// a place another took; the `(origin, seq)` key is the last guard.
/// Readers never wait for the writer (SQLite WAL, PostgreSQL MVCC).
#[derive(Clone)]
pub struct Db {
    pool: DbPool,
    /// Reads of the national statistics, from a replica when one is configured.
    statistics: Option<DbPool>,
    writer: std::sync::mpsc::SyncSender<writer::Job>,
    writer_stats: std::sync::Arc<writer::WriterStats>,
    health: std::sync::Arc<health::Health>,
    backend: Backend,
    /// Held by every clone; the SQLite checkpointer stops when the last one is dropped.
    _alive: std::sync::Arc<()>,
    /// Held by every clone and by the writer and checkpoint threads until their connections
    /// are closed: see [`Db::closed_probe`].
    open: std::sync::Arc<()>,
}

/// Tells when a database's every handle is closed: every [`Db`] clone dropped and its
/// writer and checkpoint threads ended with their connections (SQLite's last close
/// checkpoints the log into the file). A node stopped inside a process (the demo cluster,
/// tests) waits for it before anything touches the files.
#[derive(Debug, Clone)]
pub struct ClosedProbe(std::sync::Weak<()>);

impl ClosedProbe {
    /// Whether every handle is closed.
    pub fn is_closed(&self) -> bool {
        self.0.strong_count() == 0
    }

    /// Waits (blocking) up to `limit` for every handle to close; whether they did.
    pub fn wait(&self, limit: Duration) -> bool {
        let start = std::time::Instant::now();
        while !self.is_closed() {
            if start.elapsed() >= limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Which backend a database uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A failed database call.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time, or the writer's is lost (retry later).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
}

/// How often the SQLite checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// WAL size (frames; 64 MiB with 4 KiB pages) above which the checkpointer also asks the
/// writer for a checkpoint between two group commits: only then can the whole log be
/// backfilled, so the next commit starts the WAL over instead of growing it under steady
/// load. The writer waits for that checkpoint's two `fsync`s, so it is asked rarely: under a
/// full intake load about once a second.
const CHECKPOINT_RESET_FRAMES: i64 = 16_384;

/// Frames the writer may be left to copy: before asking it, the checkpointer copies again
/// (at most [`CATCH_UP_PASSES`] times) what piled up during its previous pass.
const CHECKPOINT_HANDOFF_FRAMES: i64 = 256;

/// Most extra passive passes before the writer is asked.
const CATCH_UP_PASSES: usize = 4;

/// Runs passive WAL checkpoints every [`CHECKPOINT_EVERY`] on `conn` — they copy pages
/// without blocking the writer or readers — and, when the log has grown past
/// [`CHECKPOINT_RESET_FRAMES`], catches up and then has one run on the writer thread between
/// groups (where little is left to copy). Stops, after one last checkpoint, when `alive` is
/// gone.
fn spawn_checkpointer(
    mut conn: DbConn,
    writer: std::sync::mpsc::SyncSender<writer::Job>,
    alive: std::sync::Weak<()>,
    open: std::sync::Arc<()>,
) -> Result<(), ConnectError> {
    std::thread::Builder::new()
        .name("db-checkpoint".into())
        .spawn(move || {
            checkpoint_until_closed(&mut conn, &writer, &alive);
            drop(conn);
            drop(writer);
            drop(open);
        })
        .map(|_| ())
        .map_err(|e| ConnectError::Pool(format!("cannot start the checkpoint thread: {e}")))
}

fn checkpoint_until_closed(
    conn: &mut DbConn,
    writer: &std::sync::mpsc::SyncSender<writer::Job>,
    alive: &std::sync::Weak<()>,
) {
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        let last = alive.upgrade().is_none();
        match passive_checkpoint(conn) {
            Ok(mut wal) if wal.frames > CHECKPOINT_RESET_FRAMES && !last => {
                for _ in 0..CATCH_UP_PASSES {
                    if wal.frames - wal.copied <= CHECKPOINT_HANDOFF_FRAMES {
                        break;
                    }
                    match passive_checkpoint(conn) {
                        Ok(w) => wal = w,
                        Err(_) => break,
                    }
                }
                let _ = writer.try_send(writer::Job::Raw(Box::new(CheckpointJob)));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; will retry"),
        }
        if last {
            return;
        }
    }
}

/// A passive checkpoint on the writer's connection, between two groups.
struct CheckpointJob;

impl writer::RawWork for CheckpointJob {
    fn run(self: Box<Self>, conn: &mut DbConn) {
        if let Err(e) = passive_checkpoint(conn) {
            tracing::warn!(error = %e, "WAL checkpoint on the writer failed");
        }
    }

    fn fail(self: Box<Self>, _cause: &str) {}
}

/// A job of [`Db::write_then`]: `f` in a transaction, `then` with its result after the commit.
struct TxJob<F, D> {
    f: F,
    then: D,
}

impl<T, E, F, D> writer::TxWork for TxJob<F, D>
where
    F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    D: FnOnce(Result<T, E>) + Send + 'static,
    T: Send + 'static,
    E: From<diesel::result::Error> + From<DbError> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut DbConn, in_group: bool) -> (bool, writer::Done) {
        let Self { f, then } = *self;
        let result = conn.transaction(|c| {
            if !in_group {
                writer::serialise(c).map_err(E::from)?;
            }
            f(c)
        });
        let failed = result.is_err();
        let done: writer::Done = Box::new(move |commit: Result<(), String>| {
            then(match commit {
                Ok(()) => result,
                Err(e) => Err(E::from(DbError::Unavailable(format!("commit failed: {e}")))),
            });
        });
        (failed, done)
    }

    fn fail(self: Box<Self>, cause: &str) {
        let Self { f, then } = *self;
        then(Err(E::from(DbError::Unavailable(cause.to_owned()))));
        drop(f);
    }
}

/// A job of [`Db::with_writer`].
struct RawJob<T, F> {
    f: F,
    tx: std::sync::mpsc::SyncSender<Result<T, DbError>>,
}

impl<T, F> writer::RawWork for RawJob<T, F>
where
    F: FnOnce(&mut DbConn) -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut DbConn) {
        let _ = self.tx.send(Ok((self.f)(conn)));
    }

    fn fail(self: Box<Self>, cause: &str) {
        let _ = self.tx.send(Err(DbError::Unavailable(cause.to_owned())));
    }
}

/// The writer's set-up of each connection it opens.
fn writer_setup(conn: &mut DbConn) -> Result<(), String> {
    if let DbConn::Sqlite(c) = conn {
        // WAL checkpoints run on their own thread, not inside the writer's commits.
        c.batch_execute("PRAGMA wal_autocheckpoint = 0;")
            .map_err(|e| format!("cannot set up the writer's connection: {e}"))?;
    }
    Ok(())
}

/// What a checkpoint left: frames in the WAL and how many of them are in the database file.
#[derive(Debug, Clone, Copy, diesel::QueryableByName)]
struct WalState {
    #[diesel(sql_type = diesel::sql_types::BigInt, column_name = log)]
    frames: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt, column_name = checkpointed)]
    copied: i64,
}

/// The answer of `PRAGMA wal_checkpoint(TRUNCATE)`: `busy` is 1 when it could not finish.
#[derive(Debug, Clone, Copy, diesel::QueryableByName)]
struct Checkpoint {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    busy: i64,
}

/// `PRAGMA wal_checkpoint(PASSIVE)`.
fn passive_checkpoint(conn: &mut DbConn) -> Result<WalState, diesel::result::Error> {
    let rows: Vec<WalState> = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").load(conn)?;
    Ok(rows.first().copied().unwrap_or(WalState {
        frames: 0,
        copied: 0,
    }))
}

impl Db {
    /// Opens the pool and the writer, with the default options and a pool of `pool_size`.
    pub fn open(url: &DatabaseUrl, pool_size: u32) -> Result<Self, ConnectError> {
        Self::open_with(url, &DbOptions::with_pool_size(pool_size))
    }

    /// Opens the pool and the writer.
    pub fn open_with(url: &DatabaseUrl, options: &DbOptions) -> Result<Self, ConnectError> {
        let pool = connect(url, options)?;
        let manager = ConnManager::with_options(url.clone(), *options);
        let mut writer = manager.open()?;
        let backend = match url {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        };
        let alive = std::sync::Arc::new(());
        let sqlite = matches!(writer, DbConn::Sqlite(_));
        writer_setup(&mut writer).map_err(ConnectError::Pool)?;
        let open = std::sync::Arc::new(());
        let announce = (!sqlite).then(listen::token);
        let spawned = writer::spawn(
            writer,
            manager.clone(),
            writer_setup,
            open.clone(),
            announce.clone(),
        )
        .map_err(|e| ConnectError::Pool(format!("cannot start the writer thread: {e}")))?;
        if sqlite {
            spawn_checkpointer(
                manager.open()?,
                spawned.sender.clone(),
                std::sync::Arc::downgrade(&alive),
                open.clone(),
            )?;
        }
        if let Some(token) = announce {
            listen::spawn(
                manager.clone(),
                token,
                spawned.stats.clone(),
                std::sync::Arc::downgrade(&alive),
                open.clone(),
            )
            .map_err(|e| ConnectError::Pool(format!("cannot start the listener thread: {e}")))?;
        }
        Ok(Self {
            pool,
            statistics: None,
            writer: spawned.sender,
            writer_stats: spawned.stats,
            health: spawned.health,
            backend,
            _alive: alive,
            open,
        })
    }

    /// Opens the database like [`Db::open_with`], retrying for up to `wait` while it cannot be
    /// opened (a server still starting, a file another process holds locked): each failure is
    /// logged with its cause, and the last one is returned once `wait` has passed. A missing
    /// data directory that cannot be created fails at once.
    pub fn open_waiting(
        url: &DatabaseUrl,
        options: &DbOptions,
        wait: Duration,
    ) -> Result<Self, ConnectError> {
        let start = std::time::Instant::now();
        let mut delay = Duration::from_millis(250);
        loop {
            match Self::open_with(url, options) {
                Ok(db) => return Ok(db),
                Err(e @ (ConnectError::Dir { .. } | ConnectError::Permissions { .. })) => {
                    return Err(e);
                }
                Err(e) => {
                    let waited = start.elapsed();
                    if waited + delay > wait {
                        return Err(ConnectError::GaveUp {
                            secs: wait.as_secs(),
                            last: Box::new(e),
                        });
                    }
                    tracing::warn!(
                        database = %url.describe(),
                        error.cause = %e,
                        waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "database not available yet; retrying"
                    );
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Whether the writer can write now.
    #[must_use]
    pub fn health(&self) -> &health::Health {
        &self.health
    }

    /// Readiness: asks the writer to ping its connection and then runs `check` with it,
    /// waiting at most `timeout` for the answer. `Err` with the cause when the writer has no
    /// working connection, or did not answer in time.
    pub fn probe<T: Send + 'static>(
        &self,
        timeout: Duration,
        check: impl FnOnce(&mut DbConn) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        if let Some(cause) = self.health.cause() {
            return Err(cause);
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<T, String>>(1);
        let job = writer::Job::Probe(Box::new(move |conn: Result<&mut DbConn, String>| {
            let _ = tx.send(conn.and_then(check));
        }));
        match self.writer.try_send(job) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(_)) => {
                return Err("the writer's queue is full".into());
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                return Err("the writer has stopped".into());
            }
        }
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(format!(
                "the writer did not answer within {} ms",
                timeout.as_millis()
            )),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err("the writer has stopped".into())
            }
        }
    }

    /// The backend.
    #[must_use]
    pub const fn backend(&self) -> Backend {
        self.backend
    }

    /// Ticks after every commit that asked for it ([`writer::notice_after_commit`]): a
    /// receiver's `changed()` wakes once per tick it has not seen.
    #[must_use]
    pub fn notices(&self) -> tokio::sync::watch::Receiver<u64> {
        self.writer_stats.notices.subscribe()
    }

    /// The writer's counters (group commits and jobs).
    #[must_use]
    pub fn writer_stats(&self) -> &writer::WriterStats {
        &self.writer_stats
    }

    /// Serves [`Db::read_statistics`] from `url` (a PostgreSQL streaming replica): its pool
    /// is opened lazily, so a replica that is down fails the statistics reads only (503), not
    /// the node's start.
    #[must_use]
    pub fn with_statistics(mut self, url: &DatabaseUrl, options: &DbOptions) -> Self {
        let manager = ConnManager::with_options(url.clone(), *options);
        let pool = Pool::builder()
            .max_size(options.pool_size)
            .min_idle(Some(0))
            .connection_timeout(options.pool_timeout)
            .build_unchecked(manager);
        self.statistics = Some(pool);
        self
    }

    /// A probe that tells when every handle on this database is closed (see [`ClosedProbe`]).
    pub fn closed_probe(&self) -> ClosedProbe {
        ClosedProbe(std::sync::Arc::downgrade(&self.open))
    }

    /// A pooled connection for reading the national statistics: from the replica when
    /// `database.statistics_url` is set (its figures may lag the primary by the replication
    /// delay), else as [`Db::read`].
    pub fn read_statistics(&self) -> Result<PooledConn, DbError> {
        match &self.statistics {
            Some(pool) => pool
                .get()
                .map_err(|e| DbError::Unavailable(format!("statistics replica: {e}"))),
            None => self.read(),
        }
    }

    /// A pooled connection for reads.
    pub fn read(&self) -> Result<PooledConn, DbError> {
        self.pool
            .get()
            .map_err(|e| DbError::Unavailable(e.to_string()))
    }

    /// Runs `f` in a transaction on the writer connection (under a savepoint of the group
    /// transaction) and returns its result once the group has committed. On `Err` nothing `f`
    /// wrote is kept. While the database is unavailable it fails at once with
    /// [`DbError::Unavailable`].
    pub fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<diesel::result::Error> + From<DbError> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<T, E>>(1);
        self.write_then(f, move |out| {
            let _ = tx.send(out);
        })
        .map_err(E::from)?;
        rx.recv()
            .map_err(|_| DbError::Unavailable("the writer has stopped".into()))?
    }

    /// Like [`Db::write`], without waiting: queues `f` for the writer and returns. `then`
    /// receives `f`'s result once the group has committed (or the commit's failure), on the
    /// writer thread — so it must be quick and must not wait for the writer. `Err` when the
    /// writer has stopped (`f` and `then` are not run).
    pub fn write_then<T, E, F, D>(&self, f: F, then: D) -> Result<(), DbError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        D: FnOnce(Result<T, E>) + Send + 'static,
        T: Send + 'static,
        E: From<diesel::result::Error> + From<DbError> + Send + 'static,
    {
        if let Some(cause) = self.health.cause() {
            return Err(DbError::Unavailable(cause));
        }
        let job = writer::Job::Tx(Box::new(TxJob { f, then }));
        self.writer
            .send(job)
            .map_err(|_| DbError::Unavailable("the writer has stopped".into()))
    }

    /// Makes deleted personal data unreadable on disk, after an erasure has committed.
    ///
    /// - SQLite: every connection runs with `secure_delete = ON`, so deleted rows are zeroed
    ///   in the database pages; the old pages may still sit in the write-ahead log, so the
    ///   writer checkpoints the whole log into the database and truncates it (retried while a
    ///   reader holds an old snapshot, for at most about a second).
    /// - PostgreSQL: a deleted row's bytes stay in its table's pages after a plain `VACUUM`
    ///   (the space is only marked free), so the contacts table is rewritten with
    ///   `VACUUM FULL reporter_contacts`: the new file holds only live rows and the old one is
    ///   deleted. It locks that table while it runs (≈ 5 s per million contacts on a 2-core
    ///   machine; intake of reports with a contact waits meanwhile). Bytes may survive in
    ///   PostgreSQL's own WAL and in base backups until those are recycled or expire: README's
    ///   PostgreSQL section says how to bound that.
    ///
    /// # Errors
    ///
    /// When the checkpoint or VACUUM could not run; the erasure itself stands.
    pub fn scrub(&self) -> Result<(), DbError> {
        match self.backend {
            Backend::Sqlite => self.with_writer(|conn| {
                for attempt in 0..40 {
                    let rows: Vec<Checkpoint> =
                        diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").load(conn)?;
                    if rows.first().is_none_or(|r| r.busy == 0) {
                        return Ok(());
                    }
                    tracing::debug!(attempt, "WAL truncation waits for a reader");
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(DbError::Unavailable(
                    "the write-ahead log could not be truncated: a reader kept an old snapshot"
                        .into(),
                ))
            })?,
            Backend::Postgres => {
                let mut conn = self.read()?;
                diesel::sql_query("VACUUM FULL reporter_contacts").execute(&mut conn)?;
                Ok(())
            }
        }
    }

    /// Runs `f` with the writer connection, outside any transaction (migrations).
    pub fn with_writer<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DbConn) -> T + Send + 'static,
    ) -> Result<T, DbError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<T, DbError>>(1);
        let job = writer::Job::Raw(Box::new(RawJob { f, tx }));
        self.writer
            .send(job)
            .map_err(|_| DbError::Unavailable("the writer has stopped".into()))?;
        rx.recv()
            .map_err(|_| DbError::Unavailable("the writer has stopped".into()))?
    }
}
