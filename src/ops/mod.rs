//! Operator commands that act on a node's files as a whole: the node lock (is the node
//! running?), backup and restore (and `restore-check`), the federation state (`peers`,
//! `quarantine`, `federation status`), the hub-signed roster (`roster`) and `sync`.

pub mod backup;
pub mod federation;
pub mod federation_status;
pub mod lock;
pub mod restore_check;
pub mod roster;
pub mod sync;
