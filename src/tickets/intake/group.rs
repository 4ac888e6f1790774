//! Filing a group of prepared reports in one writer transaction: tracking codes checked and
//! reserved, the sealed events stored (or placed and signed again), ticket rows, contacts,
//! follow-up tokens and outbox rows inserted together, then the reports still queued placed
//! after the group.

use super::{IntakeQueue, Item, Prepared, Projection, Submitted, lock, poisoned};
use crate::db::{DbConn, DbError};
use crate::domain::{Timestamp, TrackingCode};
use crate::event_log::store as log;
use crate::tickets::error::TicketError;
use crate::tickets::handle::Tickets;
use crate::tickets::model::ContactRow;
use crate::tickets::store;

impl Tickets {
    /// Files prepared reports in the writer's transaction: each report's own refusal (an
    /// unknown agency, a state-machine refusal) is its result; any database failure fails
    /// the group (the caller rolls it back). A report's event sealed ahead is stored as it is
    /// when its place and tracking code are still free; the reports still queued are then
    /// placed after this group.
    pub(super) fn file_group(
        &self,
        conn: &mut DbConn,
        group: Vec<Item<'_>>,
    ) -> Result<Vec<Result<Submitted, TicketError>>, TicketError> {
        self.hold.check()?;
        let preps: Vec<&Prepared> = group.iter().map(|item| item.prepared).collect();
        let mut known_agencies = std::collections::HashMap::new();
        for a in preps.iter().filter_map(|p| p.report.agency.as_ref()) {
            if !known_agencies.contains_key(a.as_str()) {
                let known = store::agency(conn, a.as_str())?.is_some();
                known_agencies.insert(a.as_str().to_owned(), known);
            }
        }
        // Codes were drawn from the counter ahead, so they differ from each other and from
        // every code drawn before. A number can still be taken after a restart that lost its
        // reservation: a report filed alone is looked up; a group of several relies on the
        // unique index on the number instead (a clash fails the group's insert, and its reports
        // are then filed one by one, each looked up, see `answer_group`). Codes stored without
        // a number (other nodes', or drawn at random before numbering) are in no index with
        // them: when the province has any, the drawn codes are looked up among them.
        let names: Vec<&str> = preps.iter().map(|p| p.tracking_code.as_str()).collect();
        let numbers_taken = if preps.len() == 1 {
            let numbers: Vec<i64> = preps.iter().map(|p| p.code_number).collect();
            store::code_numbers_taken(conn, &numbers)?
        } else {
            std::collections::HashSet::new()
        };
        let unnumbered = self.codes.has_unnumbered(conn)?;
        let codes_taken = if unnumbered {
            store::unnumbered_codes_taken(conn, &names)?
        } else {
            std::collections::HashSet::new()
        };
        let clashes: Vec<usize> = preps
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                numbers_taken.contains(&p.code_number)
                    || codes_taken.contains(p.tracking_code.as_str())
            })
            .map(|(i, _)| i)
            .collect();
        let mut fresh = self
            .fresh_tracking_codes(conn, clashes.len(), unnumbered)?
            .into_iter();
        let mut highest = None;
        let mut results: Vec<Option<Result<Submitted, TicketError>>> =
            (0..group.len()).map(|_| None).collect();
        let mut accepted = Vec::new();
        let mut pending = Vec::new();
        for (i, item) in group.into_iter().enumerate() {
            let Item {
                prepared: p,
                sealed,
                projection,
            } = item;
            if let Some(a) = &p.report.agency {
                if known_agencies.get(a.as_str()) != Some(&true) {
                    results[i] = Some(Err(TicketError::UnknownAgency(a.to_string())));
                    continue;
                }
            }
            let clash = clashes.contains(&i);
            let (item, number) = match (sealed, clash) {
                (Some(s), false) => (log::Pending::Sealed(Box::new(s)), p.code_number),
                (_, true) => {
                    let (number, code) = fresh.next().ok_or_else(poisoned)?;
                    (log::Pending::Draft(p.draft(&code)), number)
                }
                (None, false) => (
                    log::Pending::Draft(p.draft(&p.tracking_code)),
                    p.code_number,
                ),
            };
            // The projection built ahead holds the drawn tracking code.
            let mut projection = match projection.filter(|_| !clash) {
                Some(built) => built,
                None => {
                    let change = match &item {
                        log::Pending::Sealed(s) => &s.event().change,
                        log::Pending::Draft(d) => &d.change,
                    };
                    match Projection::create(&self.node, &p.actor, change, p.now, &p.ticket) {
                        Ok(built) => built,
                        Err(e) => {
                            results[i] = Some(Err(e));
                            continue;
                        }
                    }
                }
            };
            projection.row.code_number = Some(number);
            highest = highest.max(Some(number));
            pending.push(item);
            accepted.push((i, projection));
        }
        if let Some(highest) = highest {
            self.codes.reserve(conn, highest)?;
        }
        let now = preps.first().map_or_else(Timestamp::now, |p| p.now);
        let (events, place, appended) =
            log::append_pending(conn, &self.node, self.key.as_ref(), pending, now)?;
        self.intake.resealed.fetch_add(
            appended.resealed as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        self.place_queued(place, now);
        let mut ticket_rows = Vec::with_capacity(events.len());
        let mut contacts = Vec::new();
        let mut follow_ups = Vec::with_capacity(events.len());
        let mut filed = Vec::with_capacity(events.len());
        for ((i, Projection { state, mut row }), event) in accepted.into_iter().zip(&events) {
            let p = preps[i];
            row.head = event.id.to_string();
            ticket_rows.push(row);
            if self.federated {
                crate::federation::outbox::enqueue_for(
                    conn,
                    &self.node,
                    self.hub.as_ref(),
                    None,
                    &state,
                    event,
                )?;
            }
            if let Some((c, salt, _)) = &p.contact {
                contacts.push(ContactRow {
                    ticket_id: p.ticket.to_string(),
                    name: c.name.clone(),
                    phone: c.phone.clone(),
                    email: c.email.clone(),
                    salt: Some(salt.clone()),
                    stored_at_ms: p.now.millis(),
                });
            }
            follow_ups.push((p.ticket.to_string(), p.follow_up_hash.clone()));
            filed.push(i);
        }
        store::insert_many(conn, &ticket_rows)?;
        store::insert_contacts(conn, &contacts)?;
        store::insert_follow_ups(conn, &follow_ups)?;
        for (i, event) in filed.into_iter().zip(events) {
            if let Some(hook) = &preps[i].hook {
                (hook.0)(conn, &event)?;
            }
            results[i] = Some(Ok(Submitted {
                event,
                follow_up_token: preps[i].follow_up_token.clone(),
            }));
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(poisoned())))
            .collect())
    }

    /// After a group took the chain up to `place`: checks that the reports still queued were
    /// sealed in order from there, seals again (without signing) any that were not, and sets
    /// the place the next report takes. Runs on the writer, so a place computed here is the
    /// chain's next unless this transaction fails (then the next group seals again).
    fn place_queued(&self, mut place: log::Place, now: Timestamp) {
        let mut queue = lock(&self.intake.queue);
        let IntakeQueue { items, next } = &mut *queue;
        for q in items.iter_mut() {
            let fits = q.sealed.as_ref().is_some_and(|s| *s.place() == place);
            if !fits {
                let draft = match &q.sealed {
                    Some(s) => s.draft(),
                    None => q.prepared.draft(&q.prepared.tracking_code),
                };
                q.sealed = log::Sealed::new(
                    &self.node,
                    self.key.id().as_str(),
                    draft,
                    place.clone(),
                    now,
                )
                .ok();
            }
            match &q.sealed {
                Some(s) => place = log::Place::after(s),
                None => {
                    // Could not seal (the writer will say why): no place is known ahead.
                    *next = None;
                    return;
                }
            }
        }
        *next = Some(place);
    }

    /// `n` codes drawn from the counter whose numbers are free and, when the province has codes
    /// stored without a number (`unnumbered`), that are none of those.
    fn fresh_tracking_codes(
        &self,
        conn: &mut DbConn,
        n: usize,
        unnumbered: bool,
    ) -> Result<Vec<(i64, TrackingCode)>, TicketError> {
        let mut codes = Vec::with_capacity(n);
        // Each try draws new numbers, so a run of taken numbers (a lost reservation) is passed.
        for _ in 0..64 {
            if codes.len() == n {
                break;
            }
            let drawn = (codes.len()..n)
                .map(|_| self.codes.draw())
                .collect::<Result<Vec<_>, _>>()?;
            let numbers: Vec<i64> = drawn.iter().map(|(n, _)| *n).collect();
            let taken = store::code_numbers_taken(conn, &numbers)?;
            let names: Vec<&str> = drawn.iter().map(|(_, c)| c.as_str()).collect();
            let codes_taken = if unnumbered {
                store::unnumbered_codes_taken(conn, &names)?
            } else {
                std::collections::HashSet::new()
            };
            codes.extend(
                drawn
                    .into_iter()
                    .filter(|(n, c)| !taken.contains(n) && !codes_taken.contains(c.as_str())),
            );
        }
        if codes.len() < n {
            return Err(TicketError::Db(DbError::Unavailable(
                "could not find a free tracking code".into(),
            )));
        }
        Ok(codes)
    }
}
