//! Why a tickets operation was refused or failed.

use crate::db::DbError;
use crate::domain::TransitionError;
use crate::event_log::store::LogError;

/// A failed ticket command. The first group is the caller's fault (4xx), the rest are ours.
#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    /// A field is missing, empty, too long or malformed.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No such ticket.
    #[error("ticket not found")]
    NotFound,
    /// The region is not in the reference data.
    #[error("unknown region {0}")]
    UnknownRegion(String),
    /// The agency is not known.
    #[error("unknown agency {0}")]
    UnknownAgency(String),
    /// The agency exists but cannot take a dispatch now.
    #[error("agency {agency}: {reason}")]
    AgencyUnavailable {
        /// The agency.
        agency: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The state machine refused the change.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// This node does not hold the ticket's authority for the change.
    #[error("this node does not handle the ticket (handler: {0})")]
    NotHandler(String),
    /// Database failure.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Event log failure.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Could not encode the projection.
    #[error("cannot encode ticket state: {0}")]
    Encode(#[from] serde_json::Error),
}

impl From<super::codes::Exhausted> for TicketError {
    fn from(e: super::codes::Exhausted) -> Self {
        Self::Db(DbError::Unavailable(e.to_string()))
    }
}

impl From<diesel::result::Error> for TicketError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

pub(super) fn invalid(field: &'static str, message: impl Into<String>) -> TicketError {
    TicketError::Invalid {
        field,
        message: message.into(),
    }
}
