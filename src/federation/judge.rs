//! Judging a received batch inside the inbox's transaction: each verified event is checked
//! against what is held (duplicate, equivocation, chain link, causality, authority, agency),
//! stored and applied; the refused are quarantined; the personal-data parts this node is
//! entitled to are kept.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

use super::inbox::{Checked, Context, InboxError, transition_reason};
use super::protocol::{DeferReason, Outcome, PiiPart, RejectReason};
use super::store;
use crate::db::DbConn;
use crate::domain::{
    Change, Event, EventId, NodeId, TicketId, Timestamp, chain, fold, replication,
};
use crate::event_log::model::EventRow;
use crate::event_log::store as log;
use crate::tickets::model::{ContactRow, TicketRow};
use crate::tickets::store as tickets;

/// Judges `checked` in the caller's transaction: stores and applies the acceptable events,
/// quarantines the refused ones, keeps the personal-data parts this node is entitled to.
pub(super) fn judge(
    conn: &mut DbConn,
    ctx: &Context<'_>,
    checked: &[Checked],
    pii: HashMap<String, PiiPart>,
) -> Result<Vec<Outcome>, InboxError> {
    let mut apply = Apply {
        conn,
        me: ctx.me,
        now: ctx.now,
        ctx,
        pii,
        cache: HashMap::new(),
        held: HashSet::new(),
        at: HashMap::new(),
        rows: Vec::new(),
        participants: BTreeSet::new(),
        projections: HashMap::new(),
        handlers: HashMap::new(),
    };
    apply.prefetch(checked)?;
    let mut out = Vec::with_capacity(checked.len());
    for c in checked {
        out.push(apply.one(c)?);
    }
    apply.flush()?;
    if ctx.adopt_own {
        log::advance_own_head(apply.conn, ctx.me)?;
    }
    apply.keep_pii()?;
    Ok(out)
}

struct Apply<'a> {
    conn: &'a mut DbConn,
    me: &'a NodeId,
    now: Timestamp,
    ctx: &'a Context<'a>,
    pii: HashMap<String, PiiPart>,
    /// The history of every ticket the batch touches: stored events, then those accepted
    /// from this batch.
    cache: HashMap<TicketId, Vec<Event>>,
    /// Ids of the batch's events already held, and of those accepted from it.
    held: HashSet<String>,
    /// `(origin, seq) → id` for the places the batch's events and their predecessors occupy.
    at: HashMap<(String, i64), String>,
    /// Accepted events, stored together when the batch has been judged.
    rows: Vec<EventRow>,
    /// `(ticket, node)` participants named by the batch's accepted events.
    participants: BTreeSet<(String, String)>,
    /// Projection rows to write at the end of the batch (one write per ticket), with whether
    /// the row existed before the batch.
    projections: HashMap<TicketId, (TicketRow, bool)>,
    /// After the flush: each changed ticket's handler, whether it is anonymous, and whether
    /// the ticket is new with this batch.
    handlers: HashMap<TicketId, (String, bool, bool)>,
}

impl Apply<'_> {
    fn quarantine(&mut self, outcome: Outcome, raw: &Value) -> Result<Outcome, InboxError> {
        self.ctx.quarantine(self.conn, outcome, raw)
    }

    fn one(&mut self, c: &Checked) -> Result<Outcome, InboxError> {
        let (event, raw) = match c {
            Checked::Judged(o, raw) => return self.quarantine(o.clone(), raw),
            Checked::Verified(e, raw) => (e, raw),
        };
        let id = event.id.to_string();
        let reject = |reason: RejectReason, detail: String| Outcome::Rejected {
            id: id.clone(),
            reason,
            detail,
        };
        if self.held.contains(&id) {
            return Ok(Outcome::Duplicate { id });
        }
        let seq = i64::try_from(event.seq).unwrap_or(i64::MAX);
        let named = event.prev.as_ref().map(ToString::to_string);
        let place = chain::Place {
            origin: event.origin.as_str(),
            seq: event.seq,
            id: &id,
            prev: named.as_deref(),
        };
        if let Some(fault) = self
            .at
            .get(&(event.origin.to_string(), seq))
            .and_then(|held| chain::equivocation_at(held, place))
        {
            let o = reject(RejectReason::Equivocation, fault.to_string());
            return self.quarantine(o, raw);
        }
        if event.origin == *self.me && !self.ctx.adopt_own {
            let o = reject(
                RejectReason::UnknownOwnEvent,
                "claims to be this node's event, which this node never wrote".into(),
            );
            return self.quarantine(o, raw);
        }
        if let Change::Created(report) = &event.change {
            let origin_province = self.ctx.provinces.get(event.origin.as_str());
            if !origin_province.is_some_and(|p| report.tracking_code.belongs_to(p)) {
                let o = reject(
                    RejectReason::CodeNotOfOrigin,
                    match origin_province {
                        Some(p) => format!(
                            "tracking code {} does not carry its origin's province {p}",
                            report.tracking_code
                        ),
                        None => format!(
                            "{} is not a member of this federation; its reports cannot be placed",
                            event.origin
                        ),
                    },
                );
                return self.quarantine(o, raw);
            }
        }
        // Only the link to a held predecessor is judged here; a missing one defers the event
        // (its parents are pulled).
        let before = self
            .at
            .get(&(event.origin.to_string(), seq - 1))
            .map(|held| (event.seq.saturating_sub(1), held.as_str()));
        if let Err(fault) = chain::check_place(before, place) {
            if !fault.is_missing_events() {
                let o = reject(RejectReason::BrokenChain, fault.to_string());
                return self.quarantine(o, raw);
            }
        }
        if let Change::Dispatched { agency, .. } = &event.change {
            if crate::tickets::agencies::get(self.conn, agency.as_str())?.is_none() {
                // Not this event's fault: the agency is not in this node's list yet. Kept by
                // the sender and sent again; the operator adds the agency (`agencies add` or
                // `agencies import`) and the next delivery is accepted.
                tracing::warn!(event = %id, agency = %agency, "event names an agency unknown here; deferred until it is added");
                return Ok(Outcome::Deferred {
                    id,
                    reason: DeferReason::UnknownAgency,
                });
            }
        }
        let history = self.cache.entry(event.ticket).or_default();
        let ticket_exists = !history.is_empty();
        let known: HashSet<&EventId> = history.iter().map(|e| &e.id).collect();
        if event.parents.iter().any(|p| !known.contains(p)) {
            return Ok(Outcome::Deferred {
                id,
                reason: DeferReason::MissingParents,
            });
        }
        history.push((**event).clone());
        let folded = fold::fold(history);
        let refused = folded
            .rejected
            .iter()
            .find(|(rid, _)| *rid == event.id)
            .map(|(_, err)| reject(transition_reason(err), err.to_string()));
        let (Some(state), Some(head), None) = (folded.state, folded.head, refused.as_ref()) else {
            history.pop();
            let o = refused.unwrap_or_else(|| {
                reject(
                    RejectReason::IllegalTransition,
                    "the ticket has no valid `created` event".into(),
                )
            });
            return self.quarantine(o, raw);
        };
        // Store, apply, and keep what comes with it — all in this transaction.
        let sig = raw.get("sig");
        let row = EventRow {
            id: id.clone(),
            origin: event.origin.to_string(),
            seq,
            prev: event.prev.as_ref().map(ToString::to_string),
            ticket: event.ticket.to_string(),
            kind: event.change.kind().to_owned(),
            at_ms: event.at.millis(),
            raw: raw.to_string(),
            key_id: sig
                .and_then(|s| s.get("key"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            sig: sig
                .and_then(|s| s.get("value"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            stored_at_ms: self.now.millis(),
        };
        self.held.insert(id.clone());
        self.at.insert((row.origin.clone(), seq), id.clone());
        self.rows.push(row);
        let ticket_row = TicketRow::from_state(&event.ticket, &state, &head)?;
        let existed = self
            .projections
            .get(&event.ticket)
            .map_or(ticket_exists, |(_, e)| *e);
        self.projections.insert(event.ticket, (ticket_row, existed));
        // Participants change only when a ticket starts or its handler changes.
        if replication::changes_participants(&event.change) {
            for node in replication::participants(&state) {
                self.participants
                    .insert((event.ticket.to_string(), node.to_string()));
            }
        }
        // The SMS notice a change made elsewhere causes at the origin, in this transaction.
        crate::sms::outbox::on_event(self.conn, self.me, &state, event)?;
        if matches!(event.change, Change::Erased {}) {
            let n = tickets::delete_contact(self.conn, &event.ticket)?;
            self.ctx.deleted.set(self.ctx.deleted.get() + n);
        }
        // A ticket handled elsewhere now (dispatched on, or returned): this node no longer
        // needs the reporter's contact unless it is the origin.
        if replication::must_forget_contact(&event.change, self.me, &state) {
            let n = tickets::delete_contact(self.conn, &event.ticket)?;
            self.ctx.deleted.set(self.ctx.deleted.get() + n);
        }
        Ok(Outcome::Accepted { id })
    }

    /// Loads, in a few statements, what judging the batch needs: which of its events are
    /// held, who holds the places in the origins' chains they claim, and the stored history
    /// of every ticket they touch.
    fn prefetch(&mut self, checked: &[Checked]) -> Result<(), InboxError> {
        let events: Vec<&Event> = checked
            .iter()
            .filter_map(|c| match c {
                Checked::Verified(e, _) => Some(&**e),
                Checked::Judged(..) => None,
            })
            .collect();
        let keys: Vec<(String, String)> = events
            .iter()
            .map(|e| (e.ticket.to_string(), e.id.to_string()))
            .collect();
        let refs: Vec<(&str, &str)> = keys.iter().map(|(t, i)| (t.as_str(), i.as_str())).collect();
        self.held = store::held_ids(self.conn, &refs)?;
        let mut places: HashMap<&str, BTreeSet<i64>> = HashMap::new();
        for e in &events {
            let seq = i64::try_from(e.seq).unwrap_or(i64::MAX);
            let seqs = places.entry(e.origin.as_str()).or_default();
            seqs.insert(seq);
            seqs.insert(seq - 1);
        }
        for (origin, seqs) in places {
            let seqs: Vec<i64> = seqs.into_iter().collect();
            for (seq, id) in store::ids_at(self.conn, origin, &seqs)? {
                self.at.insert((origin.to_owned(), seq), id);
            }
        }
        let tickets: BTreeSet<TicketId> = events.iter().map(|e| e.ticket).collect();
        let names: Vec<String> = tickets.iter().map(ToString::to_string).collect();
        for t in tickets {
            self.cache.insert(t, Vec::new());
        }
        for row in store::for_tickets(self.conn, &names)? {
            let event = log::decode(&row)?;
            self.cache.entry(event.ticket).or_default().push(event);
        }
        Ok(())
    }

    /// Stores the accepted events, the new participants and each changed ticket's
    /// projection (once per ticket).
    fn flush(&mut self) -> Result<(), InboxError> {
        log::insert_rows(self.conn, &std::mem::take(&mut self.rows))?;
        crate::federation::outbox::add_participants(
            self.conn,
            &std::mem::take(&mut self.participants),
        )?;
        for (ticket, (row, existed)) in std::mem::take(&mut self.projections) {
            if existed {
                tickets::update(self.conn, &row)?;
            } else {
                tickets::insert(self.conn, &row)?;
            }
            self.handlers
                .insert(ticket, (row.handling_node, row.anonymous, !existed));
        }
        Ok(())
    }

    /// Keeps the personal-data parts this node is entitled to — it handles the ticket (after
    /// the whole batch) and the report is not anonymous — when they open the commitment of
    /// the stored `created` event. Others are dropped and logged (without the data).
    fn keep_pii(&mut self) -> Result<(), InboxError> {
        if self.pii.is_empty() {
            return Ok(());
        }
        // The `created` events of the batch's tickets are in the cache; others are read.
        let cached: HashMap<String, Event> = self
            .cache
            .values()
            .flat_map(|h| h.iter().filter(|e| matches!(e.change, Change::Created(_))))
            .map(|e| (e.id.to_string(), e.clone()))
            .collect();
        let mut contacts = Vec::new();
        for (event_id, part) in std::mem::take(&mut self.pii) {
            let event = match cached.get(&event_id) {
                Some(e) => e.clone(),
                None => match store::event_row(self.conn, &part.ticket, &event_id)? {
                    Some(row) => log::decode(&row)?,
                    None => {
                        tracing::warn!(event = %event_id, "personal-data part for an event not held; not kept");
                        continue;
                    }
                },
            };
            let (handler, anonymous, new) = match self.handlers.get(&event.ticket) {
                Some(h) => h.clone(),
                None => match tickets::by_id(self.conn, &event.ticket)? {
                    Some(t) => (t.handling_node, t.anonymous, false),
                    None => continue,
                },
            };
            let entitled = crate::domain::replication::entitled_to_pii(
                self.me.as_str(),
                self.ctx.hub,
                &handler,
                anonymous,
            );
            let opens = event
                .pii
                .as_deref()
                .is_some_and(|c| crate::crypto::pii::opens(c, &part.salt, &part.contact));
            if !(entitled && opens && matches!(event.change, Change::Created(_))) {
                tracing::warn!(event = %event_id, entitled, opens, "personal-data part not kept");
                continue;
            }
            if self.erased(&event.ticket)? {
                tracing::warn!(event = %event_id, "personal-data part for an erased report; not kept");
                continue;
            }
            if !new && tickets::contact(self.conn, &event.ticket)?.is_some() {
                continue;
            }
            let field = |k: &str| {
                part.contact
                    .get(k)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            contacts.push(ContactRow {
                ticket_id: event.ticket.to_string(),
                name: field("name"),
                phone: field("phone"),
                email: field("email"),
                salt: Some(part.salt.clone()),
                stored_at_ms: self.now.millis(),
            });
        }
        tickets::insert_contacts(self.conn, &contacts)?;
        Ok(())
    }

    /// Whether the reporter's personal data on `ticket` has been erased: a late copy of a
    /// personal-data part must not bring it back.
    fn erased(&mut self, ticket: &TicketId) -> Result<bool, InboxError> {
        let is_erasure = |e: &Event| matches!(e.change, Change::Erased {});
        if let Some(history) = self.cache.get(ticket) {
            return Ok(history.iter().any(is_erasure));
        }
        for row in log::for_ticket(self.conn, ticket)? {
            if is_erasure(&log::decode(&row)?) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
