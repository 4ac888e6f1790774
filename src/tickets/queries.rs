//! The read side, for every channel (HTTP API, web console, SMS, Open311, the hub's
//! statistics): plain functions on [`Tickets`] that return read models and know nothing of
//! HTTP. Who may see what is decided here, with the rules of `domain`, and nowhere else:
//!
//! - a timeline is the ticket's events in fold order, each with whether its signature
//!   verified, filtered for its [`Audience`] by [`crate::domain::visibility::shown`];
//! - a report found by tracking code ([`Tickets::find_report`]) is shown to the public unless
//!   it is confidential, and to its citizen with the follow-up token; an unknown code, a
//!   confidential report without its token and a wrong token get one refusal
//!   ([`TicketError::ReportHidden`]), so no answer tells whether a hidden report exists;
//! - officers read tickets by role: verifiers every ticket, a liaison its agency's
//!   ([`Tickets::inbox`], [`Tickets::ticket_detail`]); the reporter's identity only as
//!   [`crate::domain::report::may_see_reporter`] allows;
//! - statistics for analysts and admins ([`Tickets::statistics`]), and their public part
//!   for anyone ([`Tickets::public_statistics`]).
//!
//! The functions block on the database: async callers run them off the executor.

use super::error::{OutOfScope, Problem, TicketError, invalid};
use super::handle::Tickets;
use super::input::{Contact, InboxQuery, hash_token};
use super::model::TicketRow;
use super::store::{self, Filter, GroupColumn};
use crate::auth::Officer;
use crate::db::DbConn;
use crate::domain::event::SlaStep;
use crate::domain::report::{Viewer, may_see_reporter};
use crate::domain::visibility::{Audience, shown};
use crate::domain::{
    AgencyCode, Event, EventId, RegionCode, Role, Status, TicketId, Timestamp, TrackingCode,
};
use crate::event_log::store as log;

/// One step of a ticket's timeline, as its audience may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Event kind (`created`, `verified`, `dispatched`, …).
    pub kind: &'static str,
    /// When.
    pub at: Timestamp,
    /// The actor's role.
    pub role: Role,
    /// The step's text, where the audience may read it.
    pub message: Option<String>,
    /// The agency a dispatch named.
    pub agency: Option<AgencyCode>,
    /// The officer's account (officers only).
    pub officer: Option<String>,
    /// The event.
    pub event_id: EventId,
    /// The node that wrote and signed it.
    pub node: String,
    /// Its signature verified with the key its origin held at the event's time.
    pub verified: bool,
}

impl Step {
    /// What `audience` sees of `event`.
    fn of(event: &Event, verified: bool, audience: Audience) -> Self {
        let s = shown(event, audience);
        Self {
            kind: event.change.kind(),
            at: event.at,
            role: event.actor.role,
            message: s.message.map(str::to_owned),
            agency: s.agency.cloned(),
            officer: s.officer.map(str::to_owned),
            event_id: event.id.clone(),
            node: event.origin.to_string(),
            verified,
        }
    }
}

/// A report as the public or its citizen sees it. It has no place for the reporter's
/// identity.
#[derive(Debug, Clone)]
pub struct ReportView {
    /// The ticket.
    pub ticket: TicketRow,
    /// Its steps, for the audience.
    pub timeline: Vec<Step>,
}

/// A report found by tracking code, and who is looking.
#[derive(Debug, Clone)]
pub struct Found {
    /// The ticket.
    pub ticket: TicketRow,
    /// `Citizen` with the right token, `Public` without one.
    pub audience: Audience,
}

/// A ticket as an officer who may read it sees it.
#[derive(Debug, Clone)]
pub struct Detail {
    /// The ticket.
    pub ticket: TicketRow,
    /// The reporter, when this officer may see them and the node holds the contact.
    pub reporter: Option<Contact>,
    /// The agency the citizen suggested at intake.
    pub suggested_agency: Option<AgencyCode>,
    /// The actions this officer may take now (action names).
    pub allowed_actions: Vec<&'static str>,
    /// Every step.
    pub timeline: Vec<Step>,
}

/// A page of an officer's inbox.
#[derive(Debug, Clone)]
pub struct InboxPage {
    /// Tickets, newest first.
    pub tickets: Vec<TicketRow>,
    /// The cursor of the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// Ticket counts and SLA compliance of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statistics {
    /// All tickets.
    pub total: i64,
    /// `(status, count)`.
    pub by_status: Vec<(String, i64)>,
    /// `(kind, count)`.
    pub by_kind: Vec<(String, i64)>,
    /// `(category, count)`.
    pub by_category: Vec<(String, i64)>,
    /// `(agency, count)`, dispatched tickets.
    pub by_agency: Vec<(String, i64)>,
    /// Per SLA step.
    pub sla: Vec<SlaCompliance>,
}

/// SLA compliance of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaCompliance {
    /// The step.
    pub step: SlaStep,
    /// Tickets whose step finished or whose deadline passed.
    pub measured: i64,
    /// Of those, breached.
    pub breached: i64,
    /// On-time share in per mille (1000 = all on time, also when none was measured).
    pub on_time_permille: i64,
}

/// The id of a stored ticket row (one that does not parse is a damaged row, our fault).
pub(super) fn row_id(row: &TicketRow) -> Result<TicketId, TicketError> {
    TicketId::parse(&row.id).map_err(TicketError::Stored)
}

/// The roles that read tickets.
const READERS: &[Role] = &[Role::Verifier, Role::Liaison];

impl Tickets {
    /// A ticket's events in fold order, each with whether its signature verified with the key
    /// its origin held at the event's time.
    pub fn events(
        &self,
        conn: &mut DbConn,
        ticket: &TicketId,
    ) -> Result<Vec<(Event, bool)>, TicketError> {
        let keyring = crate::event_log::keys::keyring(conn)?;
        let rows = log::for_ticket(conn, ticket)?;
        // A verified event comes out of the verification already decoded; only the others are
        // decoded on their own.
        let mut checked = std::collections::HashMap::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        for r in &rows {
            let (event, verified) = match crate::crypto::signing::verify(r.raw.as_bytes(), &keyring)
            {
                Ok(e) => (e, true),
                Err(_) => (log::decode(r)?, false),
            };
            checked.insert(event.id.clone(), verified);
            events.push(event);
        }
        Ok(crate::domain::fold::order(&events)
            .into_iter()
            .map(|e| (e.clone(), checked.get(&e.id).copied().unwrap_or(false)))
            .collect())
    }

    /// A ticket's timeline for `audience`.
    pub fn timeline(
        &self,
        conn: &mut DbConn,
        ticket: &TicketId,
        audience: Audience,
    ) -> Result<Vec<Step>, TicketError> {
        Ok(self
            .events(conn, ticket)?
            .iter()
            .map(|(e, verified)| Step::of(e, *verified, audience))
            .collect())
    }

    /// The report with tracking code `code`, filed at this node, if any.
    pub fn filed_here(
        &self,
        conn: &mut DbConn,
        code: &TrackingCode,
    ) -> Result<Option<TicketRow>, TicketError> {
        Ok(store::by_tracking_code(conn, &self.codes, code)?
            .filter(|r| r.origin_node == self.node.as_str()))
    }

    /// Finds a report by tracking code for a citizen or the public, and decides the audience:
    /// `Citizen` with the right follow-up token, `Public` without one.
    ///
    /// A code that does not parse is [`TicketError::BadTrackingCode`]; when `need_token` (a
    /// follow-up) and no token is given, [`TicketError::TokenRequired`] before the code is
    /// looked up. An unknown code, a confidential report without its token and a wrong token
    /// (on any report) are all [`TicketError::ReportHidden`].
    pub fn find_report(
        &self,
        code: &str,
        token: Option<&str>,
        need_token: bool,
    ) -> Result<Found, TicketError> {
        let code = TrackingCode::parse(code).map_err(TicketError::BadTrackingCode)?;
        if need_token && token.is_none() {
            return Err(TicketError::TokenRequired);
        }
        let mut c = self.db.read()?;
        let row = self.filed_here(&mut c, &code)?;
        let audience = match (row.as_ref(), token) {
            (Some(row), Some(t)) => {
                let stored = store::follow_up_hash(&mut c, &row_id(row)?)?;
                if stored.is_none_or(|h| h != hash_token(t)) {
                    return Err(TicketError::ReportHidden);
                }
                Audience::Citizen
            }
            (Some(row), None) if !row.confidential => Audience::Public,
            _ => return Err(TicketError::ReportHidden),
        };
        Ok(Found {
            ticket: row.ok_or(TicketError::ReportHidden)?,
            audience,
        })
    }

    /// The report with tracking code `code` as the caller may see it (see
    /// [`Tickets::find_report`]).
    pub fn report(&self, code: &str, token: Option<&str>) -> Result<ReportView, TicketError> {
        let found = self.find_report(code, token, false)?;
        let mut c = self.db.read()?;
        let timeline = self.timeline(&mut c, &row_id(&found.ticket)?, found.audience)?;
        Ok(ReportView {
            ticket: found.ticket,
            timeline,
        })
    }

    /// The report of ticket `id` for `audience` (who has already been let in).
    pub fn report_view(
        &self,
        id: &TicketId,
        audience: Audience,
    ) -> Result<ReportView, TicketError> {
        let mut c = self.db.read()?;
        let ticket = store::by_id(&mut c, id)?.ok_or(TicketError::NotFound)?;
        let timeline = self.timeline(&mut c, id, audience)?;
        Ok(ReportView { ticket, timeline })
    }

    /// A page of `officer`'s inbox: a verifier's of every ticket, a liaison's held to their
    /// agency (asking for another is [`OutOfScope::OtherAgencyList`]).
    pub fn inbox(&self, officer: &Officer, q: &InboxQuery) -> Result<InboxPage, TicketError> {
        let filter = scoped_filter(officer, q)?;
        let limit = q.limit.unwrap_or(50);
        if !(1..=100).contains(&limit) {
            return Err(invalid("limit", Problem::OutOfRange { min: 1, max: 100 }));
        }
        if let Some(c) = &q.cursor {
            TicketId::parse(c).map_err(|_| invalid("cursor", Problem::NotACursor))?;
        }
        let page = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut tickets = {
            let mut c = self.db.read()?;
            store::search(&mut c, &filter, q.cursor.as_deref(), i64::from(limit) + 1)?
        };
        let more = tickets.len() > page;
        tickets.truncate(page);
        let next_cursor = if more {
            tickets.last().map(|t| t.id.clone())
        } else {
            None
        };
        Ok(InboxPage {
            tickets,
            next_cursor,
        })
    }

    /// The ticket `id` if `officer` may read it: [`TicketError::NoSuchTicket`] when it does
    /// not exist, [`OutOfScope::OtherAgencyTicket`] for a liaison's reach outside their
    /// agency (the ticket id is not secret among officers).
    pub(super) fn visible_row(
        &self,
        officer: &Officer,
        id: &str,
    ) -> Result<TicketRow, TicketError> {
        officer.require(READERS, "read tickets")?;
        let not_found = || TicketError::NoSuchTicket(id.to_owned());
        let tid = TicketId::parse(id).map_err(|_| not_found())?;
        let row = {
            let mut c = self.db.read()?;
            store::by_id(&mut c, &tid)?
        }
        .ok_or_else(not_found)?;
        if officer.role == Role::Liaison
            && row.agency.as_deref() != officer.agency.as_ref().map(AgencyCode::as_str)
        {
            return Err(TicketError::OutOfScope(OutOfScope::OtherAgencyTicket));
        }
        Ok(row)
    }

    /// Ticket `id` as `officer` may see it: its timeline, the reporter where
    /// [`may_see_reporter`] allows, and the actions the officer may take now. Refused with
    /// [`TicketError::NotAllowed`] for a role that does not read tickets,
    /// [`TicketError::NoSuchTicket`] when it does not exist, and
    /// [`OutOfScope::OtherAgencyTicket`] for a liaison's reach outside their agency (the
    /// ticket id is not secret among officers).
    pub fn ticket_detail(&self, officer: &Officer, id: &str) -> Result<Detail, TicketError> {
        let ticket = self.visible_row(officer, id)?;
        let tid = row_id(&ticket)?;
        let here = self.node.as_str();
        let may_see = may_see_reporter(
            ticket.anonymous,
            ticket.agency.as_deref(),
            &Viewer {
                role: officer.role,
                agency: officer.agency.as_ref().map(AgencyCode::as_str),
                at_origin: ticket.origin_node == here,
                at_handler: ticket.handling_node == here,
            },
        );
        let mut c = self.db.read()?;
        let timeline = self.timeline(&mut c, &tid, Audience::Officer)?;
        let reporter = if may_see {
            store::contact(&mut c, &tid)?.map(|r| Contact {
                name: r.name,
                phone: r.phone,
                email: r.email,
            })
        } else {
            None
        };
        Ok(Detail {
            reporter,
            suggested_agency: ticket.state().ok().and_then(|s| s.report.suggested_agency),
            allowed_actions: allowed_actions(officer, &ticket, here),
            timeline,
            ticket,
        })
    }

    /// Ticket `id` as the liaison who just handed it back sees it in the answer to that
    /// action: the ticket and its timeline, no reporter and no action (it is no longer their
    /// agency's, so [`Tickets::ticket_detail`] refuses them from now on).
    pub fn detail_after_return(&self, id: &str) -> Result<Detail, TicketError> {
        let not_found = || TicketError::NoSuchTicket(id.to_owned());
        let tid = TicketId::parse(id).map_err(|_| not_found())?;
        let mut c = self.db.read()?;
        let ticket = store::by_id(&mut c, &tid)?.ok_or_else(not_found)?;
        let timeline = self.timeline(&mut c, &tid, Audience::Officer)?;
        Ok(Detail {
            reporter: None,
            suggested_agency: ticket.state().ok().and_then(|s| s.report.suggested_agency),
            allowed_actions: Vec::new(),
            timeline,
            ticket,
        })
    }

    /// Ticket counts and SLA compliance (analysts and admins).
    pub fn statistics(&self, officer: &Officer) -> Result<Statistics, TicketError> {
        officer.require(&[Role::Analyst, Role::Admin], "read statistics")?;
        self.counts()
    }

    /// The public part of [`Tickets::statistics`], for anyone: the total, counts by status
    /// and kind, and SLA compliance — aggregates over every ticket (confidential ones count),
    /// with no text, category or agency.
    pub fn public_statistics(&self) -> Result<Statistics, TicketError> {
        let all = self.counts()?;
        Ok(Statistics {
            by_category: Vec::new(),
            by_agency: Vec::new(),
            ..all
        })
    }

    fn counts(&self) -> Result<Statistics, TicketError> {
        let mut c = self.db.read()?;
        let by_status = store::count_by(&mut c, GroupColumn::Status)?;
        let groups = store::count_by_status_and_breaches(&mut c)?;
        Ok(Statistics {
            total: by_status.iter().map(|(_, n)| n).sum(),
            by_kind: store::count_by(&mut c, GroupColumn::Kind)?,
            by_category: store::count_by(&mut c, GroupColumn::Category)?,
            by_agency: store::count_by(&mut c, GroupColumn::Agency)?,
            by_status,
            sla: sla_compliance(&groups),
        })
    }
}

/// The store filter of an inbox query: every filter checked, a liaison held to their agency.
fn scoped_filter(officer: &Officer, q: &InboxQuery) -> Result<Filter, TicketError> {
    officer.require(READERS, "read tickets")?;
    if let Some(s) = &q.status {
        if Status::parse(s).is_none() {
            return Err(invalid("status", unknown("status", s)));
        }
    }
    if let Some(k) = &q.kind {
        if !["pengaduan", "aspirasi", "permintaan_informasi"].contains(&k.as_str()) {
            return Err(invalid("kind", unknown("kind", k)));
        }
    }
    if let Some(r) = &q.region {
        RegionCode::parse(r).map_err(|e| invalid("region", Problem::Malformed(e)))?;
    }
    let mut agency = q.agency.clone();
    if officer.role == Role::Liaison {
        let own = officer.agency.as_ref().map(ToString::to_string);
        if agency.is_some() && agency != own {
            return Err(TicketError::OutOfScope(OutOfScope::OtherAgencyList));
        }
        agency = own;
    }
    Ok(Filter {
        status: q.status.clone(),
        agency,
        overdue: q.overdue,
        kind: q.kind.clone(),
        region: q.region.clone(),
        text: q.text.clone(),
    })
}

fn unknown(what: &'static str, value: &str) -> Problem {
    Problem::Unknown {
        what,
        value: value.to_owned(),
    }
}

/// The actions `officer` may take on `row` now: the status's next actions for the officer's
/// role, a liaison's only on a ticket of its agency, and none where this node does not handle
/// the ticket.
fn allowed_actions(officer: &Officer, row: &TicketRow, here: &str) -> Vec<&'static str> {
    let Some(status) = Status::parse(&row.status) else {
        return Vec::new();
    };
    if row.handling_node != here {
        return Vec::new();
    }
    let own_agency = row.agency.as_deref() == officer.agency.as_ref().map(AgencyCode::as_str);
    status
        .next_actions()
        .iter()
        .filter(|(_, role)| *role == officer.role && (*role != Role::Liaison || own_agency))
        .map(|(action, _)| *action)
        .collect()
}

/// On-time shares per SLA step from counts by (status, breach bits). A step is measured once it
/// is finished (the ticket moved past it) or breached.
fn sla_compliance(groups: &[(String, i32, i64)]) -> Vec<SlaCompliance> {
    [SlaStep::VerifyDispatch, SlaStep::Response, SlaStep::Overall]
        .into_iter()
        .map(|step| {
            let bit = i32::from(step.bit());
            let (mut measured, mut breached) = (0i64, 0i64);
            for (status, bits, n) in groups {
                let st = Status::parse(status).unwrap_or(Status::Submitted);
                let finished = match step {
                    SlaStep::VerifyDispatch => !st.is_triage() && st != Status::Archived,
                    SlaStep::Response => {
                        matches!(st, Status::Responded | Status::Resolved | Status::Closed)
                    }
                    SlaStep::Overall => matches!(st, Status::Resolved | Status::Closed),
                };
                if bits & bit != 0 {
                    breached += n;
                    measured += n;
                } else if finished {
                    measured += n;
                }
            }
            let on_time_permille = if measured == 0 {
                1000
            } else {
                (measured - breached) * 1000 / measured
            };
            SlaCompliance {
                step,
                measured,
                breached,
                on_time_permille,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sla_compliance_measures_finished_or_breached_steps() {
        let groups = vec![
            ("submitted".to_owned(), 0, 4),
            ("dispatched".to_owned(), 0, 3),
            (
                "dispatched".to_owned(),
                i32::from(SlaStep::VerifyDispatch.bit()),
                1,
            ),
            ("closed".to_owned(), 0, 2),
        ];
        let sla = sla_compliance(&groups);
        let verify = sla[0];
        assert_eq!(verify.step, SlaStep::VerifyDispatch);
        // The submitted ones are not measured yet; the breached one is, and is late.
        assert_eq!((verify.measured, verify.breached), (6, 1));
        assert_eq!(verify.on_time_permille, 833);
        let overall = sla[2];
        assert_eq!((overall.measured, overall.breached), (2, 0));
        assert_eq!(overall.on_time_permille, 1000);
    }
}
