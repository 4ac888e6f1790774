//! SLA escalations to this node's verifiers (decision 103): a breach of a step the agency owns
//! (`domain::escalation::to_verifiers`) becomes a row of `sla_escalations`, written by the
//! sweep in the breach's own transaction; verifiers (and admins) list the open ones and
//! acknowledge each. The rows are derived from the `sla_breached` events this node signed, so
//! `rebuild` can write any that are missing ([`rederive`]); the acknowledgement (who, when) is
//! local supervision, not a change of the ticket, and stays with the row.
//!
//! ```text
//!  sla_sweep ── breach event ─┬─► record (same tx) ─► sla_escalations ◄── rederive (rebuild)
//!                             └─► lapor_sla_escalations_total{level="verifiers",step}
//!  GET /api/v1/escalations, /petugas/eskalasi ─► open ─── acknowledge ◄── POST …/ack
//! ```
//!
//! Rows hold the ticket id, the agency code, the step and times: no personal data.

use diesel::prelude::*;

use super::error::TicketError;
use super::handle::Tickets;
use crate::auth::Officer;
use crate::db::DbConn;
use crate::db::schema::{events, sla_escalations, tickets};
use crate::domain::escalation::{self, Escalation};
use crate::domain::event::SlaStep;
use crate::domain::{Event, NodeId, Role, TicketId, TicketState, Timestamp};
use crate::event_log::store as log;

/// Who may read and acknowledge escalations.
const SUPERVISORS: &[Role] = &[Role::Verifier, Role::Admin];

/// The wire name of a step (`verify_dispatch`, `response`, `overall`).
#[must_use]
pub const fn step_name(step: SlaStep) -> &'static str {
    match step {
        SlaStep::VerifyDispatch => "verify_dispatch",
        SlaStep::Response => "response",
        SlaStep::Overall => "overall",
    }
}

/// An escalation as verifiers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationView {
    /// Its id: the id of the breach event.
    pub id: String,
    /// The ticket.
    pub ticket: String,
    /// The ticket's tracking code.
    pub tracking_code: String,
    /// The agency that missed the deadline.
    pub agency: String,
    /// The step (`response`, `overall`).
    pub step: &'static str,
    /// The deadline missed (ms).
    pub due_ms: i64,
    /// When the breach was recorded (ms).
    pub breached_at_ms: i64,
    /// How late, at the time of reading (ms past the deadline).
    pub late_ms: i64,
    /// Who acknowledged it, when it is acknowledged.
    pub acknowledged_by: Option<String>,
    /// When it was acknowledged (ms).
    pub acknowledged_at_ms: Option<i64>,
}

type Row = (
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<i64>,
);

fn view(r: Row, now: Timestamp) -> EscalationView {
    let (id, ticket, code, agency, step, due_ms, breached_at_ms, by, at) = r;
    EscalationView {
        id,
        ticket,
        tracking_code: code.unwrap_or_default(),
        agency,
        step: match step.as_str() {
            "response" => "response",
            "overall" => "overall",
            _ => "verify_dispatch",
        },
        due_ms,
        breached_at_ms,
        // At least as late as when the breach was recorded (a clock behind it reads no less).
        late_ms: (at.unwrap_or(now.millis().max(breached_at_ms)) - due_ms).max(0),
        acknowledged_by: by,
        acknowledged_at_ms: at,
    }
}

fn select(
    conn: &mut DbConn,
    id: Option<&str>,
    open_only: bool,
    now: Timestamp,
) -> QueryResult<Vec<EscalationView>> {
    let mut q = sla_escalations::table
        .left_join(tickets::table.on(tickets::id.eq(sla_escalations::ticket)))
        .select((
            sla_escalations::event_id,
            sla_escalations::ticket,
            tickets::tracking_code.nullable(),
            sla_escalations::agency,
            sla_escalations::step,
            sla_escalations::due_ms,
            sla_escalations::breached_at_ms,
            sla_escalations::acked_by,
            sla_escalations::acked_at_ms,
        ))
        .order((
            sla_escalations::breached_at_ms.asc(),
            sla_escalations::event_id.asc(),
        ))
        .into_boxed();
    if let Some(id) = id {
        q = q.filter(sla_escalations::event_id.eq(id.to_owned()));
    }
    if open_only {
        q = q.filter(sla_escalations::acked_at_ms.is_null());
    }
    Ok(q.limit(1000)
        .load::<Row>(conn)?
        .into_iter()
        .map(|r| view(r, now))
        .collect())
}

/// Writes the escalation a breach `event` recorded on a ticket in state `before` raises, if
/// any (in the caller's transaction). Returns its step.
///
/// # Errors
///
/// The database could not be written.
pub(super) fn record(
    conn: &mut DbConn,
    before: &TicketState,
    event: &Event,
) -> QueryResult<Option<SlaStep>> {
    let crate::domain::Change::SlaBreached { step } = event.change else {
        return Ok(None);
    };
    let Some(x) = escalation::to_verifiers(before, step) else {
        return Ok(None);
    };
    insert(conn, &event.ticket, &event.id.to_string(), event.at, &x)?;
    Ok(Some(step))
}

fn insert(
    conn: &mut DbConn,
    ticket: &TicketId,
    event_id: &str,
    at: Timestamp,
    x: &Escalation,
) -> QueryResult<usize> {
    let held = sla_escalations::table
        .find(event_id)
        .select(sla_escalations::event_id)
        .first::<String>(conn)
        .optional()?;
    if held.is_some() {
        return Ok(0);
    }
    diesel::insert_into(sla_escalations::table)
        .values((
            sla_escalations::event_id.eq(event_id),
            sla_escalations::ticket.eq(ticket.to_string()),
            sla_escalations::agency.eq(x.agency.to_string()),
            sla_escalations::step.eq(step_name(x.step)),
            sla_escalations::due_ms.eq(x.due.millis()),
            sla_escalations::breached_at_ms.eq(at.millis()),
        ))
        .execute(conn)
}

/// Writes the escalations missing for the breaches node `me` recorded (`lapor-node rebuild`);
/// rows held, with their acknowledgements, stay as they are. Returns how many it wrote.
///
/// # Errors
///
/// The log or the database could not be read or written.
pub fn rederive(conn: &mut DbConn, me: &NodeId) -> Result<usize, TicketError> {
    let ids: Vec<String> = events::table
        .filter(events::kind.eq("sla_breached"))
        .filter(events::origin.eq(me.as_str()))
        .select(events::ticket)
        .distinct()
        .load(conn)?;
    let mut written = 0;
    for id in ids {
        let ticket = TicketId::parse(&id).map_err(TicketError::Stored)?;
        let rows = log::for_ticket(conn, &ticket)?;
        let events = rows
            .iter()
            .map(log::decode)
            .collect::<Result<Vec<_>, _>>()?;
        for (event_id, at, x) in escalation::of_events(&events, me) {
            written += insert(conn, &ticket, &event_id.to_string(), at, &x)?;
        }
    }
    Ok(written)
}

/// Open escalations by step (the `lapor_sla_escalations_open` gauge).
///
/// # Errors
///
/// The database could not be read.
pub fn open_counts(conn: &mut DbConn) -> QueryResult<Vec<(&'static str, i64)>> {
    let rows: Vec<(String, i64)> = sla_escalations::table
        .filter(sla_escalations::acked_at_ms.is_null())
        .group_by(sla_escalations::step)
        .select((sla_escalations::step, diesel::dsl::count_star()))
        .load(conn)?;
    Ok([SlaStep::Response, SlaStep::Overall]
        .into_iter()
        .map(step_name)
        .map(|s| (s, rows.iter().find(|(r, _)| r == s).map_or(0, |(_, n)| *n)))
        .collect())
}

impl Tickets {
    /// The open escalations (oldest first, at most 1,000), for this node's verifiers and
    /// admins; any other role is refused.
    ///
    /// # Errors
    ///
    /// [`TicketError::NotAllowed`] for another role; the database failed.
    pub fn escalations(
        &self,
        officer: &Officer,
        now: Timestamp,
    ) -> Result<Vec<EscalationView>, TicketError> {
        officer.require(SUPERVISORS, "read SLA escalations")?;
        let mut c = self.db.read()?;
        Ok(select(&mut c, None, true, now)?)
    }

    /// A verifier (or admin) acknowledges escalation `id`: it leaves the open list, with who
    /// and when kept on the row and written to the log.
    ///
    /// # Errors
    ///
    /// [`TicketError::NotAllowed`] for another role, [`TicketError::NoSuchEscalation`] for an
    /// unknown id, [`TicketError::AlreadyAcknowledged`] when someone did it first.
    pub fn acknowledge(
        &self,
        officer: &Officer,
        id: &str,
        now: Timestamp,
    ) -> Result<EscalationView, TicketError> {
        officer.require(SUPERVISORS, "acknowledge SLA escalations")?;
        let (id, who) = (id.to_owned(), officer.username.clone());
        let done = self.db.write(move |c| {
            let Some(found) = select(c, Some(&id), false, now)?.pop() else {
                return Err(TicketError::NoSuchEscalation(id));
            };
            if let Some(by) = found.acknowledged_by {
                return Err(TicketError::AlreadyAcknowledged(by));
            }
            diesel::update(sla_escalations::table.find(&id))
                .set((
                    sla_escalations::acked_by.eq(&who),
                    sla_escalations::acked_at_ms.eq(now.millis()),
                ))
                .execute(c)?;
            Ok(select(c, Some(&id), false, now)?.pop())
        })?;
        let done = done.ok_or(TicketError::NotFound)?;
        tracing::info!(
            escalation = %done.id,
            ticket = %done.ticket,
            agency = %done.agency,
            step = done.step,
            officer = %officer.username,
            at = %now,
            "sla escalation acknowledged"
        );
        Ok(done)
    }
}
