//! Embedded migrations, twin folders for the two backends with identical names.

use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::DbConn;

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A migration failed.
#[derive(Debug, thiserror::Error)]
#[error("migration failed: {0}")]
pub struct MigrationError(String);

/// Applies pending migrations; returns the names applied.
pub fn run_pending(conn: &mut DbConn) -> Result<Vec<String>, MigrationError> {
    let applied = match conn {
        DbConn::Sqlite(c) => c
            .run_pending_migrations(SQLITE)
            .map(|v| v.iter().map(ToString::to_string).collect()),
        DbConn::Pg(c) => c
            .run_pending_migrations(POSTGRES)
            .map(|v| v.iter().map(ToString::to_string).collect()),
    };
    applied.map_err(|e| MigrationError(e.to_string()))
}

/// Reverts every migration (tests and `migrate --revert-all`); returns the names reverted.
pub fn revert_all(conn: &mut DbConn) -> Result<Vec<String>, MigrationError> {
    let reverted = match conn {
        DbConn::Sqlite(c) => c
            .revert_all_migrations(SQLITE)
            .map(|v| v.iter().map(ToString::to_string).collect()),
        DbConn::Pg(c) => c
            .revert_all_migrations(POSTGRES)
            .map(|v| v.iter().map(ToString::to_string).collect()),
    };
    reverted.map_err(|e| MigrationError(e.to_string()))
}

/// Reverts the newest applied migration; returns its name.
pub fn revert_last(conn: &mut DbConn) -> Result<String, MigrationError> {
    let reverted = match conn {
        DbConn::Sqlite(c) => c.revert_last_migration(SQLITE).map(|v| v.to_string()),
        DbConn::Pg(c) => c.revert_last_migration(POSTGRES).map(|v| v.to_string()),
    };
    reverted.map_err(|e| MigrationError(e.to_string()))
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
