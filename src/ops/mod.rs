//! Operator commands that act on a node's files as a whole: the node lock (is the node
//! running?), backup and restore.

pub mod backup;
pub mod lock;
