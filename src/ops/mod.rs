//! Operator commands that act on a node's files as a whole: the node lock (is the node
//! running?), backup and restore, and the federation state (`peers`, `quarantine`, `federation status`).

pub mod backup;
pub mod federation;
pub mod federation_status;
pub mod lock;
