//! Backup and restore (to come).
