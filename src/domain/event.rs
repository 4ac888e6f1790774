//! Ticket events: what happened to a ticket, by whom, and when. Every ticket change is one
//! of these; the ticket's state is their fold (`domain::ticket`).
//!
//! The wire form (`docs/PROTOCOL.md`) is a JSON object
//! `{id, origin, seq, prev, ticket, parents, kind, at, body, pii}`: `kind` names the
//! [`Change`], `body` holds its fields plus the `actor`. `id` is the SHA-256 of the canonical
//! bytes (RFC 8785) of the object without `id` (and without the signature the signed-log
//! layer adds).

use serde::{Deserialize, Serialize};

use super::{
    AgencyCode, Category, Channel, EventId, NodeId, Privacy, RegionCode, ReportKind, TicketId,
    Timestamp, TrackingCode,
};

/// Who acts on a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The reporter, through the origin node's public channels.
    Citizen,
    /// Node-wide triage officer (*verifikator*).
    Verifier,
    /// An agency's liaison officer (*pejabat penghubung*), scoped to one agency.
    Liaison,
    /// Accounts and agencies.
    Admin,
    /// Read-only statistics.
    Analyst,
    /// The node itself (SLA sweeps, auto-close).
    System,
}

impl Role {
    /// The wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Citizen => "citizen",
            Self::Verifier => "verifier",
            Self::Liaison => "liaison",
            Self::Admin => "admin",
            Self::Analyst => "analyst",
            Self::System => "system",
        }
    }
}

/// The actor recorded in an event body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// The role the action was taken in.
    pub role: Role,
    /// The officer's account name (staff only; never set for citizens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub officer: Option<String>,
    /// For liaison officers: the agency they act for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<AgencyCode>,
}

impl Actor {
    /// The citizen who filed the report.
    #[must_use]
    pub const fn citizen() -> Self {
        Self {
            role: Role::Citizen,
            officer: None,
            agency: None,
        }
    }

    /// The node itself.
    #[must_use]
    pub const fn system() -> Self {
        Self {
            role: Role::System,
            officer: None,
            agency: None,
        }
    }
}

/// Why a verifier archived a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveReason {
    /// Spam or abuse.
    Spam,
    /// Too unclear to act on.
    Unclear,
    /// Not a public-service matter.
    OutOfScope,
    /// Duplicate of another report.
    Duplicate,
}

/// Which SLA step a breach concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaStep {
    /// Verification and dispatch (3 working days after submission by default).
    VerifyDispatch,
    /// The agency's response (5 working days after dispatch by default).
    Response,
    /// The overall completion cap (60 days by default).
    Overall,
}

impl SlaStep {
    /// Bit used in the ticket's breach set.
    #[must_use]
    pub const fn bit(self) -> u8 {
        match self {
            Self::VerifyDispatch => 1,
            Self::Response => 2,
            Self::Overall => 4,
        }
    }
}

/// Why a ticket was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Nobody replied to the response within the auto-close window.
    NoReply,
}

/// The report as filed (public part; reporter contact is never in an event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// The citizen's tracking code.
    pub tracking_code: TrackingCode,
    /// Complaint, suggestion or information request.
    pub report_kind: ReportKind,
    /// Short title.
    pub title: String,
    /// The report text.
    pub text: String,
    /// Category slug.
    pub category: Category,
    /// Province or regency/city concerned.
    pub region: RegionCode,
    /// The agency the citizen named, if any (a verifier still decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_agency: Option<AgencyCode>,
    /// How the report arrived.
    pub channel: Channel,
    /// Privacy flags.
    pub privacy: Privacy,
    /// Deadline for verification and dispatch.
    pub verify_due: Timestamp,
    /// Overall completion cap.
    pub overall_due: Timestamp,
}

/// Every kind of ticket change, with its own fields. Serialised adjacently tagged as
/// `{"kind": ..., "body": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum Change {
    /// A new report.
    Created(Box<Created>),
    /// A verifier checked the report.
    Verified {},
    /// A verifier sent the ticket to an agency (and so to the agency's owning node).
    Dispatched {
        /// The responsible agency.
        agency: AgencyCode,
        /// The node that owns the agency and now handles the ticket.
        handler: NodeId,
        /// Deadline for the agency's response.
        response_due: Timestamp,
    },
    /// Put on hold (*tunda*).
    Postponed {
        /// Why.
        note: String,
    },
    /// Archived for a reason; terminal.
    Archived {
        /// Why.
        reason: ArchiveReason,
    },
    /// "Not our authority" (*bukan wewenang*): must be re-routed.
    NotOurAuthority {
        /// Why.
        note: String,
    },
    /// The agency started working on it.
    Started {},
    /// The agency's public response.
    Responded {
        /// The response text.
        message: String,
        /// When the ticket closes if the citizen does not reply.
        auto_close_due: Timestamp,
    },
    /// The agency marked it resolved.
    Resolved {
        /// Closing remarks.
        message: String,
        /// When the ticket closes if the citizen neither rates nor reopens it.
        auto_close_due: Timestamp,
        /// Until when the citizen may reopen it.
        reopen_until: Timestamp,
    },
    /// The citizen replied.
    CitizenReplied {
        /// The reply text.
        message: String,
        /// New deadline for the agency when the reply answers a response.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_due: Option<Timestamp>,
    },
    /// The citizen rated the outcome (1–5); a resolved ticket closes.
    Rated {
        /// 1 to 5.
        rating: u8,
    },
    /// The citizen reopened a resolved or closed ticket within the window.
    Reopened {
        /// Why.
        message: String,
        /// New deadline for the agency.
        response_due: Timestamp,
    },
    /// Closed by the node.
    Closed {
        /// Why.
        reason: CloseReason,
    },
    /// The reporter's personal data was erased (the commitment in `created` stays; every
    /// signature still verifies).
    Erased {},
    /// An SLA deadline passed.
    SlaBreached {
        /// Which one.
        step: SlaStep,
    },
}

impl Change {
    /// The `kind` string of this change.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Created(_) => "created",
            Self::Verified {} => "verified",
            Self::Dispatched { .. } => "dispatched",
            Self::Postponed { .. } => "postponed",
            Self::Archived { .. } => "archived",
            Self::NotOurAuthority { .. } => "not_our_authority",
            Self::Started {} => "started",
            Self::Responded { .. } => "responded",
            Self::Resolved { .. } => "resolved",
            Self::CitizenReplied { .. } => "citizen_replied",
            Self::Rated { .. } => "rated",
            Self::Reopened { .. } => "reopened",
            Self::Closed { .. } => "closed",
            Self::Erased {} => "erased",
            Self::SlaBreached { .. } => "sla_breached",
        }
    }
}

/// One event of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// SHA-256 of the canonical bytes.
    pub id: EventId,
    /// The node that wrote it.
    pub origin: NodeId,
    /// Position in the origin's chain: 1, 2, 3… without gaps.
    pub seq: u64,
    /// The origin's previous event (`None` only for `seq == 1`).
    pub prev: Option<EventId>,
    /// The ticket it changes.
    pub ticket: TicketId,
    /// The latest events of this ticket the writer had seen.
    pub parents: Vec<EventId>,
    /// When it happened (the writer's clock).
    pub at: Timestamp,
    /// Who did it.
    pub actor: Actor,
    /// What happened.
    pub change: Change,
    /// Commitment to the reporter's personal data (hex SHA-256), on `created` events that
    /// carry any.
    pub pii: Option<String>,
}
