//! Embedded migrations, twin folders for the two backends with identical names.
//!
//! On PostgreSQL each run holds a session advisory lock ([`MIGRATION_LOCK`]): processes that
//! start together on one database take turns, and the second finds the work done (without it,
//! two `CREATE TABLE`s of the same new table race and one fails on `pg_type`).

use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::DbConn;

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A migration failed.
#[derive(Debug, thiserror::Error)]
#[error("migration failed: {0}")]
pub struct MigrationError(String);

/// Key of the PostgreSQL advisory lock held while migrating ("lapor-mg").
pub const MIGRATION_LOCK: i64 = 0x6c61_706f_722d_6d67;

/// Runs `f` holding [`MIGRATION_LOCK`] on PostgreSQL (waiting for another process's run to
/// end); on SQLite the migration's own write transaction serialises processes.
fn locked<T>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, MigrationError>,
) -> Result<T, MigrationError> {
    use diesel::RunQueryDsl as _;
    if !matches!(conn, DbConn::Pg(_)) {
        return f(conn);
    }
    let sql = |verb: &str| format!("SELECT pg_advisory_{verb}({MIGRATION_LOCK})");
    diesel::sql_query(sql("lock"))
        .execute(conn)
        .map_err(|e| MigrationError(format!("cannot take the migration lock: {e}")))?;
    let out = f(conn);
    let unlocked = diesel::sql_query(sql("unlock")).execute(conn);
    match (out, unlocked) {
        (Ok(v), Ok(_)) => Ok(v),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(MigrationError(format!(
            "cannot release the migration lock: {e}"
        ))),
    }
}

/// Applies pending migrations; returns the names applied.
pub fn run_pending(conn: &mut DbConn) -> Result<Vec<String>, MigrationError> {
    locked(conn, |conn| {
        let applied = match conn {
            DbConn::Sqlite(c) => c
                .run_pending_migrations(SQLITE)
                .map(|v| v.iter().map(ToString::to_string).collect()),
            DbConn::Pg(c) => c
                .run_pending_migrations(POSTGRES)
                .map(|v| v.iter().map(ToString::to_string).collect()),
        };
        applied.map_err(|e| MigrationError(e.to_string()))
    })
}

/// Reverts every migration (tests and `migrate --revert-all`); returns the names reverted.
pub fn revert_all(conn: &mut DbConn) -> Result<Vec<String>, MigrationError> {
    locked(conn, |conn| {
        let reverted = match conn {
            DbConn::Sqlite(c) => c
                .revert_all_migrations(SQLITE)
                .map(|v| v.iter().map(ToString::to_string).collect()),
            DbConn::Pg(c) => c
                .revert_all_migrations(POSTGRES)
                .map(|v| v.iter().map(ToString::to_string).collect()),
        };
        reverted.map_err(|e| MigrationError(e.to_string()))
    })
}

/// Reverts the newest applied migration; returns its name.
pub fn revert_last(conn: &mut DbConn) -> Result<String, MigrationError> {
    locked(conn, |conn| {
        let reverted = match conn {
            DbConn::Sqlite(c) => c.revert_last_migration(SQLITE).map(|v| v.to_string()),
            DbConn::Pg(c) => c.revert_last_migration(POSTGRES).map(|v| v.to_string()),
        };
        reverted.map_err(|e| MigrationError(e.to_string()))
    })
}

/// Whether every embedded migration has been applied (readiness).
pub fn all_applied(conn: &mut DbConn) -> Result<bool, MigrationError> {
    let pending = match conn {
        DbConn::Sqlite(c) => c.has_pending_migration(SQLITE),
        DbConn::Pg(c) => c.has_pending_migration(POSTGRES),
    };
    pending
        .map(|p| !p)
        .map_err(|e| MigrationError(e.to_string()))
}
