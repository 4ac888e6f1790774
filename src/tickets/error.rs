//! Why a tickets operation was refused or failed: one enum for the whole wing, commands and
//! queries alike.
//!
//! The first group of [`TicketError`] is the caller's fault and carries its reason as a value
//! ([`Problem`], [`Unavailability`], [`OutOfScope`], the state machine's
//! [`TransitionError`]), so a channel decides what to answer by matching variants, never by
//! reading a message. The rest are the node's own faults. How each becomes an HTTP answer is
//! written in one place, `api::error`.

use crate::auth::NotAllowed;
use crate::db::DbError;
use crate::domain::{IdError, TrackingCode, TransitionError};
use crate::event_log::keys::KeysError;
use crate::event_log::store::LogError;

/// A refused or failed tickets operation.
#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    /// A field is missing, empty, too long or malformed.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field, as the caller named it (`title`, `contact.phone`, `limit`, …).
        field: &'static str,
        /// What is wrong with it.
        problem: Problem,
    },
    /// No such ticket (a command on a ticket id).
    #[error("ticket not found")]
    NotFound,
    /// No ticket with this id (an officer reading a ticket).
    #[error("no ticket {0}")]
    NoSuchTicket(String),
    /// The text given as a tracking code is not one.
    #[error(transparent)]
    BadTrackingCode(IdError),
    /// A citizen's follow-up came without the follow-up token.
    #[error("this action needs the follow-up token")]
    TokenRequired,
    /// No report with this tracking code that the caller may see. One refusal for an unknown
    /// code, a confidential report asked for without its token, and a wrong token, so no
    /// answer tells whether a hidden report exists.
    #[error("no report with this tracking code that this request may see")]
    ReportHidden,
    /// No report with this tracking code was filed at this node.
    #[error("no report with tracking code {0} filed here")]
    NotFiledHere(TrackingCode),
    /// The region is not in the reference data.
    #[error("unknown region {0}")]
    UnknownRegion(String),
    /// The agency is not known.
    #[error("unknown agency {0}")]
    UnknownAgency(String),
    /// The agency exists but cannot take a dispatch now.
    #[error("agency {agency}: {why}")]
    AgencyUnavailable {
        /// The agency.
        agency: String,
        /// Why, and what to do.
        why: Unavailability,
    },
    /// The officer's role may not do this at all.
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    /// A liaison officer reached outside their agency.
    #[error("{0}")]
    OutOfScope(OutOfScope),
    /// The state machine refused the change.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// A restored node holds its writes until it has its own events back.
    #[error(transparent)]
    Held(#[from] crate::event_log::hold::Held),
    /// No SLA escalation with this id.
    #[error("no SLA escalation {0}")]
    NoSuchEscalation(String),
    /// The SLA escalation was acknowledged already (by the officer named).
    #[error("this SLA escalation was already acknowledged by {0}")]
    AlreadyAcknowledged(String),
    /// This node does not hold the ticket's authority for the change.
    #[error("this node does not handle the ticket (handler: {0})")]
    NotHandler(String),
    /// A stored identifier does not parse (a damaged row).
    #[error("stored identifier does not parse: {0}")]
    Stored(IdError),
    /// Database failure.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Event log failure.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The key table could not be read.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// Could not encode or decode the projection.
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

/// A refusal of `field` for `problem`.
pub(super) const fn invalid(field: &'static str, problem: Problem) -> TicketError {
    TicketError::Invalid { field, problem }
}

/// What is wrong with a field. [`Problem::code`] is the stable code a channel shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Blank.
    Empty,
    /// Longer than the configured limit.
    TooLong {
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Blank or longer than `max` (contact fields).
    Length {
        /// The limit.
        max: usize,
    },
    /// Holds a control character.
    Control {
        /// The character's code point.
        code: u32,
        /// Its position, counted in characters from 1.
        at: usize,
        /// The field may hold line breaks and tabs.
        multiline: bool,
    },
    /// Not a phone number.
    NotPhone,
    /// Not an e-mail address.
    NotEmail,
    /// A report that is not anonymous names no reporter.
    NoReporter,
    /// A number outside its range.
    OutOfRange {
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// A value that is not one of the known ones.
    Unknown {
        /// What kind of value (`status`, `kind`).
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// Not a cursor this listing returned.
    NotACursor,
    /// Not a well-formed identifier or code.
    Malformed(IdError),
}

impl Problem {
    /// The stable code: `too_long` for text over its limit, `invalid_field` for the rest.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::TooLong { .. } => "too_long",
            _ => "invalid_field",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("must not be empty"),
            Self::TooLong { len, max } => write!(f, "is {len} characters; the limit is {max}"),
            Self::Length { max } => write!(f, "must be 1 to {max} characters"),
            Self::Control {
                code,
                at,
                multiline,
            } => write!(
                f,
                "contains the control character U+{code:04X} at character {at}; {}",
                if *multiline {
                    "only line breaks and tabs are allowed"
                } else {
                    "this field is one line of text"
                }
            ),
            Self::NotPhone => f.write_str("must be digits, optionally starting with +"),
            Self::NotEmail => f.write_str("is not an e-mail address"),
            Self::NoReporter => f.write_str(
                "a report that is not anonymous needs the reporter's name, phone or e-mail; \
                 give one, or file the report as anonymous",
            ),
            Self::OutOfRange { min, max } => write!(f, "must be between {min} and {max}"),
            Self::Unknown { what, value } => write!(f, "unknown {what} {value:?}"),
            Self::NotACursor => f.write_str("is not a cursor returned by this endpoint"),
            Self::Malformed(e) => e.fmt(f),
        }
    }
}

/// Why an agency takes no dispatch now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailability {
    /// An admin disabled it on this node.
    Disabled,
    /// Its owning node is not a member of this node's federation.
    NotAMember {
        /// The owning node.
        owner: String,
    },
    /// The federation's roster no longer lists it.
    DroppedByRoster {
        /// The roster version that dropped it.
        version: i64,
    },
}

impl std::fmt::Display for Unavailability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Disabled => f.write_str(
                "is disabled on this node; choose another agency (an admin enables it with \
                 `lapor-node agencies enable`)",
            ),
            Self::NotAMember { owner } => write!(
                f,
                "is handled by node {owner}, which is not a member of this node's federation \
                 (not in its roster nor among [[federation.peers]]); the ticket would never \
                 reach it"
            ),
            Self::DroppedByRoster { version } => write!(
                f,
                "is no longer listed in the federation's roster (dropped by version {version}); \
                 choose another agency"
            ),
        }
    }
}

/// Where a liaison officer reached outside their agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfScope {
    /// Listed another agency's tickets.
    OtherAgencyList,
    /// Read or acted on a ticket not dispatched to their agency.
    OtherAgencyTicket,
}

impl std::fmt::Display for OutOfScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::OtherAgencyList => "a liaison officer may only list their own agency's tickets",
            Self::OtherAgencyTicket => "this ticket is not dispatched to your agency",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_text_over_its_limit_is_too_long() {
        assert_eq!(Problem::TooLong { len: 9, max: 8 }.code(), "too_long");
        for p in [
            Problem::Empty,
            Problem::Length { max: 32 },
            Problem::NotPhone,
            Problem::OutOfRange { min: 1, max: 5 },
            Problem::NotACursor,
        ] {
            assert_eq!(p.code(), "invalid_field", "{p}");
        }
    }

    #[test]
    fn messages_name_the_field_and_the_rule() {
        let e = invalid("title", Problem::TooLong { len: 201, max: 200 });
        assert_eq!(e.to_string(), "title: is 201 characters; the limit is 200");
        let e = invalid(
            "title",
            Problem::Control {
                code: 0x1b,
                at: 3,
                multiline: false,
            },
        );
        assert_eq!(
            e.to_string(),
            "title: contains the control character U+001B at character 3; this field is one \
             line of text"
        );
        let e = invalid(
            "status",
            Problem::Unknown {
                what: "status",
                value: "lost".into(),
            },
        );
        assert_eq!(e.to_string(), "status: unknown status \"lost\"");
    }
}
