//! What crosses the public API: request and response bodies (the wire format and its OpenAPI
//! documentation), apart from the handlers that act on them. Request bodies refuse unknown
//! fields and convert into the tickets wing's input types (`tickets::input`), which know no
//! wire format; response bodies are rendered from its read models by `views`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::event::ArchiveReason;
use crate::domain::{AgencyCode, Category, Channel, Privacy, RegionCode, ReportKind};
use crate::tickets::{Action, Contact, InboxQuery, NewReport};

/// A new report (`POST /api/v1/reports`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReportRequest {
    /// `pengaduan`, `aspirasi` or `permintaan_informasi`.
    #[schema(value_type = String, example = "pengaduan")]
    pub kind: ReportKind,
    /// Short title.
    pub title: String,
    /// The report text.
    pub body: String,
    /// Category slug, e.g. `transportasi`.
    #[schema(value_type = String, example = "transportasi")]
    pub category: Category,
    /// Province (`31`) or regency/city (`3171`) code.
    #[schema(value_type = String, example = "3171")]
    pub region: RegionCode,
    /// Agency the citizen names (optional).
    #[schema(value_type = Option<String>, example = "DKI-DISHUB")]
    #[serde(default)]
    pub agency: Option<AgencyCode>,
    /// `web`, `sms`, `api`, `open311` or `walk_in` (default `api`).
    #[schema(value_type = Option<String>, example = "web")]
    #[serde(default)]
    pub channel: Option<Channel>,
    /// Hide the reporter's identity from everyone but this node's verifiers.
    #[serde(default)]
    pub anonymous: bool,
    /// Keep the report itself out of public view.
    #[serde(default)]
    pub confidential: bool,
    /// Reporter contact (optional; personal data, never shown publicly).
    #[serde(default)]
    pub reporter: Option<ReporterRequest>,
}

impl From<NewReportRequest> for NewReport {
    fn from(b: NewReportRequest) -> Self {
        Self {
            kind: b.kind,
            title: b.title,
            text: b.body,
            category: b.category,
            region: b.region,
            agency: b.agency,
            channel: b.channel.unwrap_or(Channel::Api),
            privacy: Privacy {
                anonymous: b.anonymous,
                confidential: b.confidential,
            },
            contact: b.reporter.map(Contact::from),
        }
    }
}

/// The reporter's contact given at intake: personal data, shown to the origin node's
/// verifiers and the handling agency's liaison only, never for anonymous reports.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReporterRequest {
    /// Name.
    pub name: Option<String>,
    /// Phone number, digits with optional leading `+`.
    pub phone: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
}

impl From<ReporterRequest> for Contact {
    fn from(r: ReporterRequest) -> Self {
        Self {
            name: r.name,
            phone: r.phone,
            email: r.email,
        }
    }
}

/// An officer's lifecycle action (the body of `POST /api/v1/tickets/{id}/actions`). Who may
/// take which is the state machine's decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionRequest {
    /// Verify.
    Verify,
    /// Dispatch to an agency.
    Dispatch {
        /// The agency.
        #[schema(value_type = String)]
        agency: AgencyCode,
    },
    /// Postpone (*tunda*).
    Postpone {
        /// Why.
        note: String,
    },
    /// Archive.
    Archive {
        /// Why: `spam`, `unclear`, `out_of_scope` or `duplicate`.
        #[schema(value_type = String)]
        reason: ArchiveReason,
    },
    /// Not our authority (*bukan wewenang*).
    NotOurAuthority {
        /// Why.
        note: String,
    },
    /// Start work.
    Start,
    /// Respond publicly.
    Respond {
        /// The response.
        message: String,
    },
    /// Mark resolved.
    Resolve {
        /// Closing remarks.
        message: String,
    },
    /// Citizen reply.
    Reply {
        /// The reply.
        message: String,
    },
    /// Citizen rating.
    Rate {
        /// 1 to 5.
        rating: u8,
    },
    /// Citizen reopen.
    Reopen {
        /// Why.
        message: String,
    },
}

impl From<ActionRequest> for Action {
    fn from(a: ActionRequest) -> Self {
        match a {
            ActionRequest::Verify => Self::Verify,
            ActionRequest::Dispatch { agency } => Self::Dispatch { agency },
            ActionRequest::Postpone { note } => Self::Postpone { note },
            ActionRequest::Archive { reason } => Self::Archive { reason },
            ActionRequest::NotOurAuthority { note } => Self::NotOurAuthority { note },
            ActionRequest::Start => Self::Start,
            ActionRequest::Respond { message } => Self::Respond { message },
            ActionRequest::Resolve { message } => Self::Resolve { message },
            ActionRequest::Reply { message } => Self::Reply { message },
            ActionRequest::Rate { rating } => Self::Rate { rating },
            ActionRequest::Reopen { message } => Self::Reopen { message },
        }
    }
}

/// Deadlines of a ticket (RFC 3339 UTC); absent when not running.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deadlines {
    /// Verification and dispatch.
    pub verify_due: String,
    /// Agency response.
    pub response_due: Option<String>,
    /// Auto-close.
    pub auto_close_due: Option<String>,
    /// Reopen window end.
    pub reopen_until: Option<String>,
    /// Completion cap.
    pub overall_due: String,
}

/// Answer to a new report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportCreated {
    /// Tracking code to follow the report.
    pub tracking_code: String,
    /// Secret for follow-up actions; shown only now.
    pub follow_up_token: String,
    /// Status.
    pub status: String,
    /// Deadlines.
    pub deadlines: Deadlines,
}

/// One entry of a timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    /// Event kind (`created`, `verified`, `dispatched`, `responded`, …).
    pub kind: String,
    /// When.
    pub at: String,
    /// Role of the actor.
    pub role: String,
    /// Public text of the step (responses, resolutions; citizen replies only for the citizen
    /// and officers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Agency concerned (dispatch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// Officer account (officer views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub officer: Option<String>,
    /// Event id.
    pub event_id: String,
    /// Whether the event's signature verified (with its origin's key valid at its time).
    pub verified: bool,
}

/// The public view of a report.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicReport {
    /// Tracking code.
    pub tracking_code: String,
    /// Kind.
    pub kind: String,
    /// Category.
    pub category: String,
    /// Region.
    pub region: String,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// Status.
    pub status: String,
    /// Agency handling it.
    pub agency: Option<String>,
    /// Rating given.
    pub rating: Option<i32>,
    /// Deadlines.
    pub deadlines: Deadlines,
    /// Steps so far.
    pub timeline: Vec<TimelineEntry>,
}

/// A citizen reply or reopen reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageRequest {
    /// The text.
    pub message: String,
}

/// A citizen rating.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingRequest {
    /// 1 to 5.
    pub rating: u8,
}

/// Officer login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Account name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A bearer token.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// Expiry (RFC 3339 UTC).
    pub expires_at: String,
    /// Role.
    pub role: String,
    /// Agency (liaison officers).
    pub agency: Option<String>,
}

/// A ticket as officers see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    /// Ticket id.
    pub id: String,
    /// Tracking code.
    pub tracking_code: String,
    /// Kind.
    pub kind: String,
    /// Category.
    pub category: String,
    /// Region.
    pub region: String,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// Channel.
    pub channel: String,
    /// Status.
    pub status: String,
    /// Agency.
    pub agency: Option<String>,
    /// Origin node.
    pub origin_node: String,
    /// The origin's province (two digits; the tracking code's prefix): a ticket whose origin
    /// node is not this node was forwarded from that province.
    pub origin_province: String,
    /// Handling node.
    pub handling_node: String,
    /// Privacy flag.
    pub anonymous: bool,
    /// Privacy flag.
    pub confidential: bool,
    /// Rating.
    pub rating: Option<i32>,
    /// Deadlines.
    pub deadlines: Deadlines,
    /// Any deadline passed (breach recorded).
    pub overdue: bool,
    /// Filed at.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// Reporter contact: given at intake; shown to the origin node's verifiers and the handling
/// agency's liaison, never for anonymous reports.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReporterView {
    /// Name.
    pub name: Option<String>,
    /// Phone number, digits with optional leading `+`.
    pub phone: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
}

/// Full ticket detail.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketDetail {
    /// The ticket.
    #[serde(flatten)]
    pub ticket: TicketView,
    /// Reporter, when this caller may see it.
    pub reporter: Option<ReporterView>,
    /// The agency the citizen suggested at intake, if any (the verifier decides).
    pub suggested_agency: Option<String>,
    /// What this officer may do next in the ticket's status (action names of
    /// `POST /api/v1/tickets/{id}/actions`).
    pub allowed_actions: Vec<String>,
    /// Every step.
    pub timeline: Vec<TimelineEntry>,
}

/// A page of the inbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketPage {
    /// Tickets, newest first.
    pub items: Vec<TicketView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Inbox filters (`GET /api/v1/tickets`).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TicketQuery {
    /// Status.
    pub status: Option<String>,
    /// Agency code.
    pub agency: Option<String>,
    /// Only tickets with a breached deadline.
    pub overdue: Option<bool>,
    /// Report kind.
    pub kind: Option<String>,
    /// Region code (province codes match their regencies too).
    pub region: Option<String>,
    /// Text search in title and body.
    pub q: Option<String>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 50).
    pub limit: Option<u32>,
}

impl From<TicketQuery> for InboxQuery {
    fn from(q: TicketQuery) -> Self {
        Self {
            status: q.status,
            agency: q.agency,
            overdue: q.overdue,
            kind: q.kind,
            region: q.region,
            text: q.q,
            cursor: q.cursor,
            limit: q.limit,
        }
    }
}

/// One count.
#[derive(Debug, Serialize, ToSchema)]
pub struct Count {
    /// Key (status, kind, category or agency).
    pub key: String,
    /// Number of tickets.
    pub count: i64,
}

/// SLA compliance of one step.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlaCompliance {
    /// `verify_dispatch`, `response` or `overall`.
    pub step: String,
    /// Tickets whose step finished or whose deadline passed.
    pub measured: i64,
    /// Of those, breached.
    pub breached: i64,
    /// On-time share in per mille (no floats): 1000 = all on time.
    pub on_time_permille: i64,
}

/// Statistics (`GET /api/v1/stats`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    /// All tickets on this node.
    pub total: i64,
    /// By status.
    pub by_status: Vec<Count>,
    /// By kind.
    pub by_kind: Vec<Count>,
    /// By category.
    pub by_category: Vec<Count>,
    /// By agency (dispatched tickets).
    pub by_agency: Vec<Count>,
    /// SLA compliance per step.
    pub sla: Vec<SlaCompliance>,
}

/// An SLA escalation (`GET /api/v1/escalations`): an agency missed a deadline it owns on a
/// ticket this node handles.
#[derive(Debug, Serialize, ToSchema)]
pub struct EscalationBody {
    /// Its id (the id of the breach event).
    pub id: String,
    /// The ticket id.
    pub ticket: String,
    /// The ticket's tracking code.
    pub tracking_code: String,
    /// The agency that missed the deadline.
    pub agency: String,
    /// The step: `response` (the agency's response) or `overall` (the completion cap, while
    /// the agency holds the ticket).
    #[schema(example = "response")]
    pub step: String,
    /// The deadline missed.
    pub due_at: String,
    /// When the breach was recorded.
    pub breached_at: String,
    /// How late: milliseconds past the deadline now (or when acknowledged).
    pub late_ms: i64,
    /// Who acknowledged it (after an acknowledgement).
    pub acknowledged_by: Option<String>,
    /// When it was acknowledged.
    pub acknowledged_at: Option<String>,
}

/// The open SLA escalations, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EscalationList {
    /// The escalations not yet acknowledged (at most 1,000).
    pub escalations: Vec<EscalationBody>,
}
