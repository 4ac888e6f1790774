//! Response bodies rendered from the tickets wing's read models (`tickets::queries`). Nothing
//! is decided here: who sees what was decided by the query that built the model (an audience's
//! timeline, the reporter only where the rule allows); this module only writes it out.

use super::dto::{
    Count, Deadlines, PublicReport, ReporterView, SlaCompliance, Stats, TicketDetail, TicketPage,
    TicketView, TimelineEntry,
};
use crate::domain::Timestamp;
use crate::tickets::model::TicketRow;
use crate::tickets::{Contact, Detail, InboxPage, ReportView, Statistics, Step};

fn ts(ms: i64) -> String {
    Timestamp::from_millis(ms).to_string()
}

/// A value's serde name (roles, SLA steps).
fn wire_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
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
        origin_province: row.tracking_code.chars().take(2).collect(),
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

/// The public (or citizen) view of a report.
#[must_use]
pub fn public_report(view: &ReportView) -> PublicReport {
    let row = &view.ticket;
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
        timeline: timeline(&view.timeline),
    }
}

/// A ticket's detail for an officer.
#[must_use]
pub fn detail(d: &Detail) -> TicketDetail {
    TicketDetail {
        ticket: ticket_view(&d.ticket),
        reporter: d.reporter.as_ref().map(reporter),
        suggested_agency: d.suggested_agency.as_ref().map(ToString::to_string),
        allowed_actions: d.allowed_actions.iter().map(|a| (*a).to_owned()).collect(),
        timeline: timeline(&d.timeline),
    }
}

/// A reporter's contact.
#[must_use]
pub fn reporter(c: &Contact) -> ReporterView {
    ReporterView {
        name: c.name.clone(),
        phone: c.phone.clone(),
        email: c.email.clone(),
    }
}

/// A timeline.
#[must_use]
pub fn timeline(steps: &[Step]) -> Vec<TimelineEntry> {
    steps
        .iter()
        .map(|s| TimelineEntry {
            kind: s.kind.to_owned(),
            at: s.at.to_string(),
            role: wire_name(&s.role),
            message: s.message.clone(),
            agency: s.agency.as_ref().map(ToString::to_string),
            officer: s.officer.clone(),
            event_id: s.event_id.to_string(),
            verified: s.verified,
        })
        .collect()
}

/// A page of the inbox.
#[must_use]
pub fn page(p: &InboxPage) -> TicketPage {
    TicketPage {
        items: p.tickets.iter().map(ticket_view).collect(),
        next_cursor: p.next_cursor.clone(),
    }
}

/// Statistics.
#[must_use]
pub fn stats(s: &Statistics) -> Stats {
    let counts = |list: &[(String, i64)]| {
        list.iter()
            .map(|(key, count)| Count {
                key: key.clone(),
                count: *count,
            })
            .collect()
    };
    Stats {
        total: s.total,
        by_status: counts(&s.by_status),
        by_kind: counts(&s.by_kind),
        by_category: counts(&s.by_category),
        by_agency: counts(&s.by_agency),
        sla: s
            .sla
            .iter()
            .map(|c| SlaCompliance {
                step: wire_name(&c.step),
                measured: c.measured,
                breached: c.breached,
                on_time_permille: c.on_time_permille,
            })
            .collect(),
    }
}
