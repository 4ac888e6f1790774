//! The outbox: per-destination queues of events still to be acknowledged, written in the same
//! transaction as the event itself (invariant 5).
//!
//! Who receives what (invariant 6, `docs/PROTOCOL.md`):
//! - the hub: every event this node writes (events carry no personal data, only a commitment);
//! - a ticket's participants — its origin and every node that has handled it — its events;
//!   a node that becomes the handler also gets the ticket's earlier events;
//! - the personal-data part (salt + contact) rides with the `created` event only to the
//!   handling node, only when the report is not anonymous, never to the hub.
//!
//! A row leaves the outbox only when its destination acknowledged the event (`accepted` or
//! `duplicate`); a refused event stays, marked with the destination's reason, for operators.

use diesel::prelude::*;

use crate::db::{Db, DbConn};
use serde_json::Value;

use super::FedError;
use super::protocol::{Batch, PiiPart, batch_id, compress_at};
use crate::db::schema::{events, outbox, ticket_participants};
use crate::domain::replication;
use crate::domain::{Change, Event, NodeId, TicketId, TicketState, Timestamp};

/// Adds `node` to a ticket's participants (no-op if present).
pub fn add_participant(conn: &mut DbConn, ticket: &TicketId, node: &NodeId) -> QueryResult<()> {
    let t = ticket.to_string();
    let present: i64 = ticket_participants::table
        .filter(ticket_participants::ticket.eq(&t))
        .filter(ticket_participants::node.eq(node.as_str()))
        .count()
        .get_result(conn)?;
    if present == 0 {
        diesel::insert_into(ticket_participants::table)
            .values((
                ticket_participants::ticket.eq(&t),
                ticket_participants::node.eq(node.as_str()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Records `(ticket, node)` participants not yet recorded, several rows per statement.
pub fn add_participants(
    conn: &mut DbConn,
    pairs: &std::collections::BTreeSet<(String, String)>,
) -> QueryResult<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let tickets: Vec<&str> = pairs
        .iter()
        .map(|(t, _)| t.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut present = std::collections::HashSet::new();
    for chunk in tickets.chunks(400) {
        let found: Vec<(String, String)> = ticket_participants::table
            .filter(ticket_participants::ticket.eq_any(chunk))
            .select((ticket_participants::ticket, ticket_participants::node))
            .load(conn)?;
        present.extend(found);
    }
    let missing: Vec<_> = pairs
        .iter()
        .filter(|p| !present.contains(*p))
        .map(|(t, n)| {
            (
                ticket_participants::ticket.eq(t.clone()),
                ticket_participants::node.eq(n.clone()),
            )
        })
        .collect();
    crate::db::insert_all!(conn, ticket_participants::table, missing, 400)
}

/// A ticket's participants.
pub fn participants(conn: &mut DbConn, ticket: &TicketId) -> QueryResult<Vec<String>> {
    ticket_participants::table
        .filter(ticket_participants::ticket.eq(ticket.to_string()))
        .select(ticket_participants::node)
        .order(ticket_participants::node.asc())
        .load(conn)
}

/// Whether `node` takes part in `ticket`.
pub fn is_participant(conn: &mut DbConn, ticket: &str, node: &str) -> QueryResult<bool> {
    let n: i64 = ticket_participants::table
        .filter(ticket_participants::ticket.eq(ticket))
        .filter(ticket_participants::node.eq(node))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

fn enqueue_one(
    conn: &mut DbConn,
    destination: &str,
    (ticket, event_id): (&str, &str),
    with_pii: bool,
    now: Timestamp,
) -> QueryResult<()> {
    let present: i64 = outbox::table
        .filter(outbox::destination.eq(destination))
        .filter(outbox::event_id.eq(event_id))
        .count()
        .get_result(conn)?;
    if present == 0 {
        // The destination's worker wakes once this commits.
        crate::db::writer::notice_after_commit();
        diesel::insert_into(outbox::table)
            .values((
                outbox::destination.eq(destination),
                outbox::event_id.eq(event_id),
                outbox::ticket.eq(ticket),
                outbox::with_pii.eq(with_pii),
                outbox::enqueued_at_ms.eq(now.millis()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Records the participants of `after` and writes the outbox rows of `event`, which this node
/// (`me`) just appended; `before` is the state the event was applied to (`None` for
/// `created`). Runs inside the event's write transaction.
pub fn enqueue_for(
    conn: &mut DbConn,
    me: &NodeId,
    hub: Option<&NodeId>,
    before: Option<&TicketState>,
    after: &TicketState,
    event: &Event,
) -> QueryResult<()> {
    let ticket = &event.ticket;
    if replication::changes_participants(&event.change) {
        for node in replication::participants(after) {
            add_participant(conn, ticket, node)?;
        }
    }
    let id = event.id.to_string();
    let tid = ticket.to_string();
    let key = (tid.as_str(), id.as_str());
    let now = event.at;
    let anonymous = after.report.privacy.anonymous;
    // A node that just became the handler receives the ticket's history first, so the new
    // event arrives after its parents; when the report is not anonymous, the personal data
    // rides with the new event itself — the one that makes the receiver the handler — so that
    // a batch boundary between the history and it cannot leave the receiver holding the part
    // before it is entitled to keep it.
    let new_handler = before.is_some_and(|b| b.handler != after.handler) && after.handler != *me;
    let handler_is_hub = hub.is_some_and(|h| *h == after.handler);
    if new_handler {
        let earlier: Vec<(String, String)> = events::table
            .filter(events::ticket.eq(&tid))
            .filter(events::id.ne(&id))
            .select((events::id, events::kind))
            .order((events::stored_at_ms.asc(), events::seq.asc()))
            .load(conn)?;
        for (eid, _) in earlier {
            enqueue_one(conn, after.handler.as_str(), (&tid, &eid), false, now)?;
        }
    }
    if let Some(hub) = hub.filter(|h| *h != me) {
        enqueue_one(conn, hub.as_str(), key, false, now)?;
    }
    for p in participants(conn, ticket)? {
        if p == me.as_str() || hub.is_some_and(|h| h.as_str() == p) {
            continue;
        }
        let carries = (matches!(event.change, Change::Created(_)) && event.pii.is_some())
            || (new_handler && p == after.handler.as_str() && !handler_is_hub);
        let with_pii =
            carries && replication::entitled_to_pii(&p, false, after.handler.as_str(), anonymous);
        enqueue_one(conn, &p, key, with_pii, now)?;
    }
    Ok(())
}

/// Rows claimed for one destination, in outbox order, with the events' JSON.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Outbox row id.
    pub row: i64,
    /// Event id.
    pub event_id: String,
    /// Ticket id.
    pub ticket: String,
    /// Send the personal-data part along.
    pub with_pii: bool,
    /// The event's JSON (with `sig`).
    pub raw: String,
}

/// The oldest `limit` pending rows for `destination` after row `after`: not refused, and not
/// waiting after a deferral (due at `now_ms`).
pub fn pending(
    conn: &mut DbConn,
    destination: &str,
    after: i64,
    limit: i64,
    now_ms: i64,
) -> QueryResult<Vec<Claimed>> {
    let rows: Vec<(i64, String, String, bool, String)> = outbox::table
        .inner_join(
            events::table.on(events::ticket
                .eq(outbox::ticket)
                .and(events::id.eq(outbox::event_id))),
        )
        .filter(outbox::destination.eq(destination))
        .filter(outbox::id.gt(after))
        .filter(outbox::refused_reason.is_null())
        .filter(
            outbox::retry_at_ms
                .is_null()
                .or(outbox::retry_at_ms.le(now_ms)),
        )
        .order(outbox::id.asc())
        .limit(limit)
        .select((
            outbox::id,
            outbox::event_id,
            events::ticket,
            outbox::with_pii,
            events::raw,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(row, event_id, ticket, with_pii, raw)| Claimed {
            row,
            event_id,
            ticket,
            with_pii,
            raw,
        })
        .collect())
}

/// Removes acknowledged rows.
pub fn acknowledge(conn: &mut DbConn, rows: &[i64]) -> QueryResult<usize> {
    let mut n = 0;
    for chunk in rows.chunks(500) {
        n += diesel::delete(outbox::table.filter(outbox::id.eq_any(chunk))).execute(conn)?;
    }
    Ok(n)
}

/// The wait after a row's `n`-th deferral: 1 s, doubling, at most 10 minutes.
#[must_use]
pub fn deferral_wait_ms(n: i32) -> i64 {
    let exp = u32::try_from(n.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    (1_000_i64 << exp).min(600_000)
}

/// Rows their destination deferred: each waits [`deferral_wait_ms`] of its deferrals before it
/// is sent again.
pub fn defer(conn: &mut DbConn, rows: &[i64], now_ms: i64) -> QueryResult<usize> {
    let mut n = 0;
    for chunk in rows.chunks(500) {
        let current: Vec<(i64, i32)> = outbox::table
            .filter(outbox::id.eq_any(chunk))
            .select((outbox::id, outbox::deferrals))
            .load(conn)?;
        for (row, deferrals) in current {
            let deferrals = deferrals.saturating_add(1);
            n += diesel::update(outbox::table.find(row))
                .set((
                    outbox::deferrals.eq(deferrals),
                    outbox::retry_at_ms
                        .eq(Some(now_ms.saturating_add(deferral_wait_ms(deferrals)))),
                ))
                .execute(conn)?;
        }
    }
    Ok(n)
}

/// When the first row for `destination` waiting after a deferral comes due (ms).
pub fn next_retry(conn: &mut DbConn, destination: &str) -> QueryResult<Option<i64>> {
    outbox::table
        .filter(outbox::destination.eq(destination))
        .filter(outbox::refused_reason.is_null())
        .select(diesel::dsl::min(outbox::retry_at_ms))
        .first(conn)
}

/// Marks a row refused by its destination (it stays, for operators).
pub fn refuse(conn: &mut DbConn, row: i64, reason: &str) -> QueryResult<usize> {
    diesel::update(outbox::table.find(row))
        .set(outbox::refused_reason.eq(Some(reason)))
        .execute(conn)
}

/// Queue figures for one destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct OutboxStats {
    /// Rows waiting to be delivered.
    pub depth: i64,
    /// Rows the destination refused.
    pub refused: i64,
    /// Enqueue time of the oldest waiting row.
    pub oldest_ms: Option<i64>,
}

/// Figures for `destination`.
pub fn stats(conn: &mut DbConn, destination: &str) -> QueryResult<OutboxStats> {
    let depth = outbox::table
        .filter(outbox::destination.eq(destination))
        .filter(outbox::refused_reason.is_null())
        .count()
        .get_result(conn)?;
    let refused = outbox::table
        .filter(outbox::destination.eq(destination))
        .filter(outbox::refused_reason.is_not_null())
        .count()
        .get_result(conn)?;
    let oldest_ms = outbox::table
        .filter(outbox::destination.eq(destination))
        .filter(outbox::refused_reason.is_null())
        .select(diesel::dsl::min(outbox::enqueued_at_ms))
        .first(conn)?;
    Ok(OutboxStats {
        depth,
        refused,
        oldest_ms,
    })
}

/// The reasons `destination` gave for the rows it refused, with how many rows each, most
/// frequent first. A reason is stored as `code: detail`; rows are grouped by the whole text.
pub fn refusals(conn: &mut DbConn, destination: &str) -> QueryResult<Vec<(String, i64)>> {
    let mut rows: Vec<(Option<String>, i64)> = outbox::table
        .filter(outbox::destination.eq(destination))
        .filter(outbox::refused_reason.is_not_null())
        .group_by(outbox::refused_reason)
        .select((outbox::refused_reason, diesel::dsl::count_star()))
        .load(conn)?;
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(rows
        .into_iter()
        .map(|(r, n)| (r.unwrap_or_default(), n))
        .collect())
}

/// Offers `destination` its refused rows again (all of them, or those whose reason code is
/// `code`): they become pending, in their original order. Returns how many.
pub fn resend(conn: &mut DbConn, destination: &str, code: Option<&str>) -> QueryResult<usize> {
    let refused: Vec<(i64, Option<String>)> = outbox::table
        .filter(outbox::destination.eq(destination))
        .filter(outbox::refused_reason.is_not_null())
        .select((outbox::id, outbox::refused_reason))
        .load(conn)?;
    let rows: Vec<i64> = refused
        .into_iter()
        .filter(|(_, reason)| code.is_none_or(|c| reason.as_deref().map(reason_code) == Some(c)))
        .map(|(row, _)| row)
        .collect();
    let mut n = 0;
    for chunk in rows.chunks(500) {
        n += diesel::update(outbox::table.filter(outbox::id.eq_any(chunk)))
            .set(outbox::refused_reason.eq(None::<String>))
            .execute(conn)?;
    }
    Ok(n)
}

/// The code of a stored refusal (`code: detail`).
#[must_use]
pub fn reason_code(stored: &str) -> &str {
    stored.split_once(':').map_or(stored, |(c, _)| c).trim()
}

/// A batch ready to send.
#[derive(Debug, Clone)]
pub struct Built {
    /// Batch id.
    pub id: String,
    /// (outbox row, event id) per event.
    pub rows: Vec<(i64, String)>,
    /// The zstd-compressed JSON body.
    pub body: Vec<u8>,
}

/// How batches are cut and packed.
#[derive(Debug, Clone, Copy)]
pub struct BatchSpec {
    /// Rows read (the events of every batch built, together).
    pub limit: i64,
    /// Events per batch.
    pub max_events: usize,
    /// About this much JSON per batch (a single larger event still goes alone).
    pub max_bytes: usize,
    /// Rows waiting after a deferral go when due by then.
    pub due: Timestamp,
    /// zstd level.
    pub level: i32,
    /// With the shipped zstd dictionary (the peer holds it too).
    pub dictionary: bool,
}

/// Builds batches for `dest` from its oldest pending outbox rows after row `after`, as
/// `spec` says.
pub fn build_batches(
    db: &Db,
    dest: &str,
    after: i64,
    spec: BatchSpec,
) -> Result<Vec<Built>, FedError> {
    let BatchSpec {
        limit,
        max_events,
        max_bytes,
        due,
        level,
        dictionary,
    } = spec;
    let mut conn = db.read()?;
    let rows = pending(&mut conn, dest, after, limit, due.millis())?;
    let mut out = Vec::new();
    let mut cur: Vec<Claimed> = Vec::new();
    let mut bytes = 0usize;
    for r in rows {
        if !cur.is_empty() && (cur.len() >= max_events || bytes + r.raw.len() > max_bytes) {
            out.push(finish(
                &mut conn,
                std::mem::take(&mut cur),
                level,
                dictionary,
            )?);
            bytes = 0;
        }
        bytes += r.raw.len();
        cur.push(r);
    }
    if !cur.is_empty() {
        out.push(finish(&mut conn, cur, level, dictionary)?);
    }
    Ok(out)
}

fn finish(
    conn: &mut crate::db::DbConn,
    rows: Vec<Claimed>,
    level: i32,
    dictionary: bool,
) -> Result<Built, FedError> {
    let mut events = Vec::with_capacity(rows.len());
    let mut pii = Vec::new();
    for r in &rows {
        let v: Value = serde_json::from_str(&r.raw).map_err(|e| FedError::BadAnswer {
            peer: "local outbox".into(),
            cause: format!("stored event {} unreadable: {e}", r.event_id),
        })?;
        events.push(v);
        if r.with_pii {
            // The part names the ticket's `created` event (whose commitment it opens), whichever
            // of the ticket's events carries it.
            let created: Option<String> = events::table
                .filter(events::ticket.eq(&r.ticket))
                .filter(events::kind.eq("created"))
                .select(events::id)
                .first(conn)
                .optional()?;
            if let Some(p) = pii_part(conn, &r.ticket, created.as_deref().unwrap_or(&r.event_id))? {
                pii.push(p);
            }
        }
    }
    let key_statements = crate::event_log::rotation::introducing(conn, &events)?;
    let batch = Batch {
        batch: batch_id(&events),
        events,
        pii,
        key_statements,
    };
    let json = serde_json::to_vec(&batch).map_err(|e| FedError::BadAnswer {
        peer: "local outbox".into(),
        cause: e.to_string(),
    })?;
    Ok(Built {
        id: batch.batch,
        rows: rows.into_iter().map(|r| (r.row, r.event_id)).collect(),
        body: if dictionary {
            super::dictionary::compress(&json, level)
        } else {
            compress_at(&json, level)
        },
    })
}

/// The personal-data part of a ticket's `created` event, when this node holds it.
pub fn pii_part(
    conn: &mut crate::db::DbConn,
    ticket: &str,
    event_id: &str,
) -> Result<Option<PiiPart>, FedError> {
    let Ok(tid) = crate::domain::TicketId::parse(ticket) else {
        return Ok(None);
    };
    let Some(c) = crate::tickets::store::contact(conn, &tid)? else {
        return Ok(None);
    };
    let Some(salt) = c.salt.clone() else {
        return Ok(None);
    };
    let contact = crate::tickets::contact_value(&crate::tickets::Contact {
        name: c.name,
        phone: c.phone,
        email: c.email,
    });
    Ok(Some(PiiPart {
        ticket: ticket.to_owned(),
        event: event_id.to_owned(),
        salt,
        contact,
    }))
}
