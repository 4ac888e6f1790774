//! Building response bodies from projection rows and events, with the privacy rules applied:
//! what each audience may see is decided here and nowhere else.

use super::dto::{Deadlines, PublicReport, ReporterView, TicketView, TimelineEntry};
use crate::domain::{Change, Event, Timestamp};
use crate::tickets::model::{ContactRow, TicketRow};

/// Who is looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Anyone, by tracking code.
    Public,
    /// The reporter (follow-up token presented).
    Citizen,
    /// An officer of this node.
    Officer,
}

fn ts(ms: i64) -> String {
    Timestamp::from_millis(ms).to_string()
}

fn deadlines(row: &TicketRow) -> Deadlines {
    Deadlines {
        verify_due: ts(row.verify_due_ms),
        response_due: row.response_due_ms.map(ts),
        auto_close_due: row.auto_close_due_ms.map(ts),
        reopen_until: row.reopen_until_ms.map(ts),
        overall_due: ts(row.overall_due_ms),
    }
}

/// The officer view of a ticket.
#[must_use]
pub fn ticket_view(row: &TicketRow) -> TicketView {
    TicketView {
        id: row.id.clone(),
        tracking_code: row.tracking_code.clone(),
        kind: row.report_kind.clone(),
        category: row.category.clone(),
        region: row.region.clone(),
        title: row.title.clone(),
        body: row.body.clone(),
        channel: row.channel.clone(),
        status: row.status.clone(),
        agency: row.agency.clone(),
        origin_node: row.origin_node.clone(),
        handling_node: row.handling_node.clone(),
        anonymous: row.anonymous,
        confidential: row.confidential,
        rating: row.rating,
        deadlines: deadlines(row),
        overdue: row.breaches != 0,
        created_at: ts(row.created_at_ms),
        updated_at: ts(row.updated_at_ms),
    }
}

/// The public (or citizen) view of a report. Never carries the reporter's identity.
#[must_use]
pub fn public_report(
    row: &TicketRow,
    events: &[(Event, bool)],
    audience: Audience,
) -> PublicReport {
    PublicReport {
        tracking_code: row.tracking_code.clone(),
        kind: row.report_kind.clone(),
        category: row.category.clone(),
        region: row.region.clone(),
        title: row.title.clone(),
        body: row.body.clone(),
        status: row.status.clone(),
        agency: row.agency.clone(),
        rating: row.rating,
        deadlines: deadlines(row),
        timeline: timeline(events, audience),
    }
}

/// Reporter identity, for the audience [`crate::domain::report::may_see_reporter`] allows
/// (`allowed`); everyone else gets `None`.
#[must_use]
pub fn reporter(contact: Option<ContactRow>, allowed: bool) -> Option<ReporterView> {
    if !allowed {
        return None;
    }
    contact.map(|c| ReporterView {
        name: c.name,
        phone: c.phone,
        email: c.email,
    })
}

/// A timeline for an audience.
#[must_use]
pub fn timeline(events: &[(Event, bool)], audience: Audience) -> Vec<TimelineEntry> {
    events
        .iter()
        .map(|(e, verified)| {
            let (message, agency) = match &e.change {
                Change::Responded { message, .. } | Change::Resolved { message, .. } => {
                    (Some(message.clone()), None)
                }
                Change::CitizenReplied { message, .. } | Change::Reopened { message, .. }
                    if audience != Audience::Public =>
                {
                    (Some(message.clone()), None)
                }
                Change::Postponed { note } | Change::NotOurAuthority { note }
                    if audience == Audience::Officer =>
                {
                    (Some(note.clone()), None)
                }
                Change::Dispatched { agency, .. } => (None, Some(agency.to_string())),
                _ => (None, None),
            };
            TimelineEntry {
                kind: e.change.kind().to_owned(),
                at: e.at.to_string(),
                role: serde_json::to_value(e.actor.role)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                message,
                agency,
                officer: e
                    .actor
                    .officer
                    .clone()
                    .filter(|_| audience == Audience::Officer),
                event_id: e.id.to_string(),
                verified: *verified,
            }
        })
        .collect()
}
