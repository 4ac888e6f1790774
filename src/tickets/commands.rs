//! Ticket commands: an action on a ticket (an officer's or the citizen's), erasure of the
//! reporter's personal data, and the SLA sweep. Each checks its input, asks the domain state
//! machine whether the change is legal, and appends the event, updates the projection and
//! queues the outbox rows in one write transaction: on any error nothing is written.
//! (Filing a report is `intake`.)

use super::error::{TicketError, Unavailability};
use super::handle::Tickets;
use super::input::Action;
use super::intake::TxHook;
use super::model::TicketRow;
use super::queries::{ReportView, row_id};
use super::store;
use crate::auth::Officer;
use crate::db::DbConn;
use crate::domain::event::{CloseReason, SlaStep};
use crate::domain::visibility::Audience;
use crate::domain::{Actor, Change, Event, NodeId, Role, TicketId, TicketState, Timestamp};
use crate::event_log::store::{self as log, Draft};

/// What an SLA sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Breach events written.
    pub breaches: usize,
    /// Tickets auto-closed.
    pub closed: usize,
    /// Escalations raised to this node's verifiers (`tickets::escalations`).
    pub escalations: usize,
}

impl Tickets {
    /// Takes an action on a ticket. Returns the new event and state.
    #[tracing::instrument(name = "tickets.act", skip_all, fields(ticket = %ticket, role = ?actor.role))]
    pub fn act(
        &self,
        ticket: &TicketId,
        actor: &Actor,
        action: Action,
        now: Timestamp,
    ) -> Result<(Event, TicketState), TicketError> {
        self.act_with(ticket, actor, action, now, None)
    }

    /// [`Tickets::act`] with the channel's work in the same transaction ([`TxHook`]).
    pub fn act_with(
        &self,
        ticket: &TicketId,
        actor: &Actor,
        action: Action,
        now: Timestamp,
        hook: Option<TxHook>,
    ) -> Result<(Event, TicketState), TicketError> {
        action.check(&self.limits)?;
        let this = self.clone();
        let (ticket, actor) = (*ticket, actor.clone());
        self.db.write(move |conn| {
            let row = store::by_id(conn, &ticket)?.ok_or(TicketError::NotFound)?;
            let state = row.state()?;
            let change = this.change_for(conn, &state, action, now)?;
            if actor.role != Role::Citizen
                && state.handler != this.node
                && !matches!(change, Change::SlaBreached { .. })
            {
                return Err(TicketError::NotHandler(state.handler.to_string()));
            }
            let done = this.append_change(conn, &ticket, &row, &state, &actor, change, now)?;
            if let Some(hook) = &hook {
                hook(conn, &done.0)?;
            }
            Ok(done)
        })
    }

    /// Erases the reporter's personal data of a ticket that originated here: deletes the
    /// contact and its salt and appends an `erased` event, in one transaction. The `created`
    /// event keeps its commitment, so every signature still verifies.
    #[tracing::instrument(name = "tickets.erase", skip_all, fields(ticket = %ticket))]
    pub fn erase(
        &self,
        ticket: &TicketId,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Event, TicketError> {
        let this = self.clone();
        let (ticket, actor) = (*ticket, actor.clone());
        let event = self.db.write(move |conn| -> Result<Event, TicketError> {
            let row = store::by_id(conn, &ticket)?.ok_or(TicketError::NotFound)?;
            let state = row.state()?;
            let (event, _) =
                this.append_change(conn, &ticket, &row, &state, &actor, Change::Erased {}, now)?;
            store::delete_contact(conn, &ticket)?;
            Ok(event)
        })?;
        if let Err(e) = self.db.scrub() {
            tracing::error!(error = %e, "erased data may remain on disk until the next checkpoint or VACUUM");
        }
        Ok(event)
    }

    /// A citizen's follow-up (reply, rating, reopen) on the report with tracking code `code`,
    /// with its follow-up token: the report is found by [`Tickets::find_report`]'s rules (a
    /// missing token is refused before the code is looked up), the action is taken as the
    /// citizen, and the citizen's view of the report after it is returned.
    pub fn follow_up(
        &self,
        code: &str,
        token: Option<&str>,
        action: Action,
        now: Timestamp,
    ) -> Result<(Event, ReportView), TicketError> {
        let found = self.find_report(code, token, true)?;
        let id = row_id(&found.ticket)?;
        let (event, _) = self.act(&id, &Actor::citizen(), action, now)?;
        Ok((event, self.report_view(&id, Audience::Citizen)?))
    }

    /// An officer's lifecycle action on the ticket with id `id`: refused as reading it would
    /// be ([`Tickets::ticket_detail`]), then taken as that officer.
    pub fn officer_action(
        &self,
        officer: &Officer,
        id: &str,
        action: Action,
        now: Timestamp,
    ) -> Result<Event, TicketError> {
        let row = self.visible_row(officer, id)?;
        let actor = Actor {
            role: officer.role,
            officer: Some(officer.username.clone()),
            agency: officer.agency.clone(),
        };
        let (event, _) = self.act(&row_id(&row)?, &actor, action, now)?;
        Ok(event)
    }

    /// An admin's erasure of the personal data of the report with tracking code `code`, filed
    /// at this node (see [`Tickets::erase`]).
    pub fn erase_report(
        &self,
        officer: &Officer,
        code: &str,
        now: Timestamp,
    ) -> Result<Event, TicketError> {
        officer.require(&[Role::Admin], "erase personal data")?;
        let code =
            crate::domain::TrackingCode::parse(code).map_err(TicketError::BadTrackingCode)?;
        let row = {
            let mut c = self.db.read()?;
            self.filed_here(&mut c, &code)?
        }
        .ok_or(TicketError::NotFiledHere(code))?;
        let actor = Actor {
            role: Role::Admin,
            officer: Some(officer.username.clone()),
            agency: None,
        };
        self.erase(&row_id(&row)?, &actor, now)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one transaction step with its whole context"
    )]
    fn append_change(
        &self,
        conn: &mut DbConn,
        ticket: &TicketId,
        row: &TicketRow,
        state: &TicketState,
        actor: &Actor,
        change: Change,
        now: Timestamp,
    ) -> Result<(Event, TicketState), TicketError> {
        self.hold.check()?;
        let next = state.apply_from(&self.node, actor, &change, now)?;
        let parents = vec![crate::domain::EventId::parse(&row.head).map_err(TicketError::Stored)?];
        let draft = Draft {
            ticket: *ticket,
            parents,
            at: now,
            actor: actor.clone(),
            change,
            pii: None,
        };
        let event = log::append(conn, &self.node, self.key.as_ref(), draft, now)?;
        store::update(conn, &TicketRow::from_state(ticket, &next, &event.id)?)?;
        // The SMS notice the change causes, if any, in this transaction.
        crate::sms::outbox::on_event(conn, &self.node, &next, &event)?;
        if self.federated {
            crate::federation::outbox::enqueue_for(
                conn,
                &self.node,
                self.hub.as_ref(),
                Some(state),
                &next,
                &event,
            )?;
        }
        Ok((event, next))
    }

    fn change_for(
        &self,
        conn: &mut DbConn,
        state: &TicketState,
        action: Action,
        now: Timestamp,
    ) -> Result<Change, TicketError> {
        let sla = &self.sla;
        Ok(match action {
            Action::Verify => Change::Verified {},
            Action::Dispatch { agency } => {
                let a = super::agencies::get(conn, agency.as_str())?
                    .ok_or_else(|| TicketError::UnknownAgency(agency.to_string()))?;
                if a.disabled {
                    return Err(TicketError::AgencyUnavailable {
                        agency: a.code,
                        why: Unavailability::Disabled,
                    });
                }
                if let Some(version) = a.dropped_by_roster {
                    return Err(TicketError::AgencyUnavailable {
                        agency: a.code,
                        why: Unavailability::DroppedByRoster { version },
                    });
                }
                if !self.members.contains(&a.owner_node) {
                    return Err(TicketError::AgencyUnavailable {
                        agency: a.code,
                        why: Unavailability::NotAMember {
                            owner: a.owner_node,
                        },
                    });
                }
                let handler = NodeId::parse(&a.owner_node).map_err(TicketError::Stored)?;
                Change::Dispatched {
                    agency,
                    handler,
                    response_due: self.due(now, sla.response_working_days),
                }
            }
            Action::Postpone { note } => Change::Postponed { note },
            Action::Archive { reason } => Change::Archived { reason },
            Action::NotOurAuthority { note } => Change::NotOurAuthority { note },
            Action::Start => Change::Started {},
            Action::Respond { message } => Change::Responded {
                message,
                auto_close_due: self.due(now, sla.auto_close_working_days),
            },
            Action::Resolve { message } => Change::Resolved {
                message,
                auto_close_due: self.due(now, sla.auto_close_working_days),
                reopen_until: self.due(now, sla.reopen_window_working_days),
            },
            Action::Reply { message } => Change::CitizenReplied {
                message,
                response_due: (state.status == crate::domain::Status::Responded)
                    .then(|| self.due(now, sla.response_working_days)),
            },
            Action::Rate { rating } => Change::Rated { rating },
            Action::Reopen { message } => Change::Reopened {
                message,
                response_due: self.due(now, sla.response_working_days),
            },
        })
    }

    /// Records passed deadlines and auto-closes tickets, up to `max_tickets` per call. Each
    /// ticket is its own transaction; a ticket that fails is logged and left for the next sweep.
    #[tracing::instrument(name = "tickets.sla_sweep", skip_all)]
    pub fn sla_sweep(&self, now: Timestamp, max_tickets: usize) -> Result<Swept, TicketError> {
        let mut swept = Swept::default();
        let mut after: Option<(i64, String)> = None;
        let mut seen = 0usize;
        while seen < max_tickets {
            let batch = {
                let mut conn = self.db.read()?;
                store::sweep_candidates(
                    &mut conn,
                    self.node.as_str(),
                    now.millis(),
                    after.as_ref(),
                    200,
                )?
            };
            let Some(last) = batch.last() else { break };
            after = Some((last.next_due_ms.unwrap_or(i64::MIN), last.id.clone()));
            for row in batch {
                seen += 1;
                let Ok(id) = TicketId::parse(&row.id) else {
                    continue;
                };
                match self.sweep_one(&id, now) {
                    Ok((s, breached)) => {
                        swept.breaches += s.breaches;
                        swept.closed += s.closed;
                        swept.escalations += breached.iter().filter(|(_, e)| *e).count();
                        self.count_breaches(&breached);
                    }
                    Err(e) => {
                        tracing::warn!(ticket = %id, error = %e, "sla sweep skipped a ticket");
                    }
                }
            }
        }
        Ok(swept)
    }

    /// Counts the breaches recorded and the escalations raised (after their transaction
    /// committed): `lapor_sla_breaches_total{step}`,
    /// `lapor_sla_escalations_total{level="verifiers",step}`.
    fn count_breaches(&self, breached: &[(SlaStep, bool)]) {
        let Some(metrics) = self.metrics.get() else {
            return;
        };
        for (step, escalated) in breached {
            let step = super::escalations::step_name(*step);
            metrics.inc("lapor_sla_breaches_total", &[("step", step)], 1);
            if *escalated {
                metrics.inc(
                    "lapor_sla_escalations_total",
                    &[("level", "verifiers"), ("step", step)],
                    1,
                );
            }
        }
    }

    /// One ticket's breaches and auto-close, in one transaction; with each breach's step and
    /// whether it raised an escalation.
    fn sweep_one(
        &self,
        ticket: &TicketId,
        now: Timestamp,
    ) -> Result<(Swept, Vec<(SlaStep, bool)>), TicketError> {
        let this = self.clone();
        let ticket = *ticket;
        self.db.write(move |conn| {
            let mut swept = Swept::default();
            let mut breached = Vec::new();
            let Some(mut row) = store::by_id(conn, &ticket)? else {
                return Ok((swept, breached));
            };
            let mut state = row.state()?;
            if state.handler != this.node {
                return Ok((swept, breached));
            }
            let system = Actor::system();
            for step in [SlaStep::VerifyDispatch, SlaStep::Response, SlaStep::Overall] {
                let due = state.breach_due(step).filter(|d| *d <= now);
                if due.is_some() && state.breaches & step.bit() == 0 {
                    let (event, next) = this.append_change(
                        conn,
                        &ticket,
                        &row,
                        &state,
                        &system,
                        Change::SlaBreached { step },
                        now,
                    )?;
                    row.head = event.id.to_string();
                    let escalated = super::escalations::record(conn, &state, &event)?;
                    breached.push((step, escalated.is_some()));
                    state = next;
                    swept.breaches += 1;
                }
            }
            if state.auto_close_due.is_some_and(|d| d <= now) {
                let change = Change::Closed {
                    reason: CloseReason::NoReply,
                };
                if state.apply(&system, &change, now).is_ok() {
                    this.append_change(conn, &ticket, &row, &state, &system, change, now)?;
                    swept.closed += 1;
                }
            }
            // Nothing was due (a row laid out before `next_due_ms` was exact, or a change the
            // state machine refused): the row gets its exact next time, so it is not read again
            // before then.
            if swept == Swept::default() {
                let exact = state.next_due().map(Timestamp::millis);
                if row.next_due_ms != exact {
                    store::set_next_due(conn, &row.id, exact)?;
                }
            }
            Ok((swept, breached))
        })
    }
}
