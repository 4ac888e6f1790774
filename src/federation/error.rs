//! What can go wrong on the federation side, as callers handle it.

use super::inbox::InboxError;
use crate::db::DbError;

/// A federation failure.
#[derive(Debug, thiserror::Error)]
pub enum FedError {
    /// The peer could not be reached or did not answer in time.
    #[error("{peer} unreachable: {cause}")]
    Unreachable {
        /// The peer.
        peer: String,
        /// The transport error.
        cause: String,
    },
    /// The peer answered with an error.
    #[error("{peer} answered {status}: {body}")]
    Refused {
        /// The peer.
        peer: String,
        /// HTTP status.
        status: u16,
        /// Its body (error JSON).
        body: String,
    },
    /// The peer's answer could not be understood.
    #[error("{peer} answered something unreadable: {cause}")]
    BadAnswer {
        /// The peer.
        peer: String,
        /// What is wrong.
        cause: String,
    },
    /// The peer's keys changed without a rotation this node can accept.
    #[error("{peer}: {message}")]
    KeyChange {
        /// The peer.
        peer: String,
        /// What changed.
        message: String,
    },
    /// Not a configured peer.
    #[error("{0} is not a configured peer")]
    UnknownPeer(String),
    /// Local database failure.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Applying received events failed locally.
    #[error(transparent)]
    Inbox(#[from] InboxError),
    /// TLS set-up.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

impl From<diesel::result::Error> for FedError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}
