//! Lookups of held events: by id, by origin and seq, by ticket — for the inbox, the feed and
//! the client's catch-up.

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::events;
use crate::event_log::model::EventRow;

/// Whether an event of `ticket` is held.
pub fn event_exists(conn: &mut DbConn, ticket: &str, id: &str) -> QueryResult<bool> {
    let n: i64 = events::table
        .filter(events::ticket.eq(ticket))
        .filter(events::id.eq(id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// A stored event row of `ticket` by id.
pub fn event_row(conn: &mut DbConn, ticket: &str, id: &str) -> QueryResult<Option<EventRow>> {
    events::table
        .find((ticket, id))
        .select(EventRow::as_select())
        .first(conn)
        .optional()
}

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's bound-parameter limits.
pub(super) const CHUNK: usize = 400;

/// Which of these `(ticket, id)` events are held: their ids.
pub fn held_ids(
    conn: &mut DbConn,
    events: &[(&str, &str)],
) -> QueryResult<std::collections::HashSet<String>> {
    let mut held = std::collections::HashSet::new();
    for chunk in events.chunks(CHUNK / 2) {
        let tickets: std::collections::BTreeSet<&str> = chunk.iter().map(|(t, _)| *t).collect();
        let ids: Vec<&str> = chunk.iter().map(|(_, id)| *id).collect();
        let asked: std::collections::HashSet<(&str, &str)> = chunk.iter().copied().collect();
        // Looked up through the (ticket, id) key; a pair that only crosses two events (the
        // ticket of one, the id of another) is filtered out below.
        let found: Vec<(String, String)> = events::table
            .filter(events::ticket.eq_any(&tickets))
            .filter(events::id.eq_any(&ids))
            .select((events::ticket, events::id))
            .load(conn)?;
        held.extend(
            found
                .into_iter()
                .filter(|(t, id)| asked.contains(&(t.as_str(), id.as_str())))
                .map(|(_, id)| id),
        );
    }
    Ok(held)
}

/// The held events of `origin` at `seqs`, as `(seq, id)`.
pub fn ids_at(conn: &mut DbConn, origin: &str, seqs: &[i64]) -> QueryResult<Vec<(i64, String)>> {
    let mut out = Vec::new();
    for chunk in seqs.chunks(CHUNK) {
        let found: Vec<(i64, String)> = events::table
            .filter(events::origin.eq(origin))
            .filter(events::seq.eq_any(chunk))
            .select((events::seq, events::id))
            .load(conn)?;
        out.extend(found);
    }
    Ok(out)
}

/// The stored events of `tickets`, each ticket's in log order.
pub fn for_tickets(conn: &mut DbConn, tickets: &[String]) -> QueryResult<Vec<EventRow>> {
    let mut out = Vec::new();
    for chunk in tickets.chunks(CHUNK) {
        let found: Vec<EventRow> = events::table
            .filter(events::ticket.eq_any(chunk))
            .order((
                events::ticket.asc(),
                events::stored_at_ms.asc(),
                events::origin.asc(),
                events::seq.asc(),
            ))
            .select(EventRow::as_select())
            .load(conn)?;
        out.extend(found);
    }
    Ok(out)
}

/// The highest seq `n` of `origin` such that every one of its events after `cursor` up to
/// `n` is held here (`cursor` itself when there is a hole: a province holds other chains in
/// part): catch-up starts after it, so a pull never fetches again what push delivered. Reads
/// only the events after the cursor.
pub fn contiguous_after(conn: &mut DbConn, origin: &str, cursor: i64) -> QueryResult<i64> {
    let (held, max): (i64, Option<i64>) = events::table
        .filter(events::origin.eq(origin))
        .filter(events::seq.gt(cursor))
        .select((diesel::dsl::count_star(), diesel::dsl::max(events::seq)))
        .first(conn)?;
    Ok(match max {
        Some(m) if m == cursor.saturating_add(held) => m,
        _ => cursor,
    })
}
