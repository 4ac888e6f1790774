//! Appending to and reading from the event log. Callers pass the connection of an open write
//! transaction ([`crate::db::Db::write`]): the event, the chain head and the projection change
//! commit together or not at all.

use diesel::prelude::*;

use super::model::{ChainHead, EventRow};
use super::wire::{self, WireError};
use crate::crypto::signing::SignEvents;
use crate::db::DbConn;
use crate::db::schema::{chain_heads, events};
use crate::domain::{Actor, Change, Event, EventId, NodeId, TicketId, Timestamp};

/// A failed log operation.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// A stored or new event could not be encoded or decoded.
    #[error("event {id}: {cause}")]
    Wire {
        /// The event concerned.
        id: String,
        /// The fault.
        cause: WireError,
    },
}

/// An event before the log gives it its place (`seq`, `prev`) and id.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The ticket.
    pub ticket: TicketId,
    /// The ticket's latest events seen by the writer.
    pub parents: Vec<EventId>,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// What.
    pub change: Change,
    /// Personal-data commitment.
    pub pii: Option<String>,
}

/// Appends a draft as `origin`'s next event, signed with `key`, and returns it.
#[tracing::instrument(name = "event_log.append", skip_all, fields(event.kind = draft.change.kind()))]
pub fn append(
    conn: &mut DbConn,
    origin: &NodeId,
    key: &dyn SignEvents,
    draft: Draft,
    stored_at: Timestamp,
) -> Result<Event, LogError> {
    append_many(conn, origin, key, vec![draft], stored_at).map(|mut v| v.swap_remove(0))
}

/// Appends drafts as `origin`'s next events, in order, each signed with `key` and linked to
/// the one before; one chain-head read and write, and one multi-row insert per 100 events ([`insert_rows`]).
/// Returns the events in the drafts' order (an empty list for no drafts).
#[tracing::instrument(name = "event_log.append_many", skip_all, fields(events = drafts.len()))]
pub fn append_many(
    conn: &mut DbConn,
    origin: &NodeId,
    key: &dyn SignEvents,
    drafts: Vec<Draft>,
    stored_at: Timestamp,
) -> Result<Vec<Event>, LogError> {
    if drafts.is_empty() {
        return Ok(Vec::new());
    }
    let head: Option<ChainHead> = crate::db::on_backend!(conn, c => chain_heads::table
        .find(origin.as_str())
        .select(ChainHead::as_select())
        .first(c)
        .optional())?;
    let (mut seq, mut prev) = match &head {
        Some(h) => (h.seq, Some(h.last_id.clone())),
        None => (0, None),
    };
    let mut events = Vec::with_capacity(drafts.len());
    let mut rows = Vec::with_capacity(drafts.len());
    for draft in drafts {
        seq = seq.saturating_add(1);
        let (event, row) = seal(origin, key, draft, seq, prev.as_deref(), stored_at)?;
        prev = Some(row.id.clone());
        events.push(event);
        rows.push(row);
    }
    insert_rows(conn, &rows)?;
    let new_head = ChainHead {
        origin: origin.to_string(),
        seq,
        last_id: prev.unwrap_or_default(),
    };
    if head.is_some() {
        crate::db::on_backend!(conn, c => diesel::update(chain_heads::table.find(origin.as_str()))
            .set(&new_head)
            .execute(c))?;
    } else {
        crate::db::on_backend!(conn, c => diesel::insert_into(chain_heads::table)
            .values(&new_head)
            .execute(c))?;
    }
    Ok(events)
}

/// Gives a draft its place (`seq`, `prev`), id and signature: the event and its row.
fn seal(
    origin: &NodeId,
    key: &dyn SignEvents,
    draft: Draft,
    seq: i64,
    prev: Option<&str>,
    stored_at: Timestamp,
) -> Result<(Event, EventRow), LogError> {
    let prev = prev
        .map(EventId::parse)
        .transpose()
        .map_err(|e| LogError::Wire {
            id: format!("{origin}#{}", seq.saturating_sub(1)),
            cause: WireError::Field {
                field: "prev",
                message: e.to_string(),
            },
        })?;
    let mut event = Event {
        id: EventId::of_bytes(b""),
        origin: origin.clone(),
        seq: u64::try_from(seq).unwrap_or(u64::MAX),
        prev,
        ticket: draft.ticket,
        parents: draft.parents,
        at: draft.at,
        actor: draft.actor,
        change: draft.change,
        pii: draft.pii,
    };
    let wire_err = |cause| LogError::Wire {
        id: format!("{origin}#{seq}"),
        cause,
    };
    let mut value = wire::unsigned_value(&event).map_err(wire_err)?;
    let canonical = wire::canonical_bytes(&value).map_err(wire_err)?;
    event.id = EventId::of_bytes(&canonical);
    let sig = key.sign_event(&canonical);
    let sig_value = sig
        .get("value")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    if let serde_json::Value::Object(m) = &mut value {
        m.insert("id".into(), serde_json::Value::String(event.id.to_string()));
        m.insert("sig".into(), sig);
    }
    let row = EventRow {
        id: event.id.to_string(),
        origin: origin.to_string(),
        seq,
        prev: event.prev.as_ref().map(ToString::to_string),
        ticket: event.ticket.to_string(),
        kind: event.change.kind().to_owned(),
        at_ms: event.at.millis(),
        raw: value.to_string(),
        key_id: Some(key.key_id().to_string()),
        sig: sig_value,
        stored_at_ms: stored_at.millis(),
    };
    Ok((event, row))
}

/// Stores event rows as they are (appended or received), 100 rows per statement (11
/// parameters a row).
pub fn insert_rows(conn: &mut DbConn, rows: &[EventRow]) -> QueryResult<()> {
    for chunk in rows.chunks(100) {
        crate::db::on_backend!(conn, c => diesel::insert_into(events::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

/// Decodes a stored row.
pub fn decode(row: &EventRow) -> Result<Event, LogError> {
    let wire_err = |cause| LogError::Wire {
        id: row.id.clone(),
        cause,
    };
    let v: serde_json::Value = serde_json::from_str(&row.raw).map_err(|e| {
        wire_err(WireError::Field {
            field: "raw",
            message: e.to_string(),
        })
    })?;
    wire::from_value(&v).map_err(wire_err)
}

/// A ticket's events, in the order they were stored.
#[tracing::instrument(name = "event_log.for_ticket", skip_all)]
pub fn for_ticket(conn: &mut DbConn, ticket: &TicketId) -> Result<Vec<EventRow>, LogError> {
    Ok(crate::db::on_backend!(conn, c => events::table
        .filter(events::ticket.eq(ticket.to_string()))
        .order((
            events::stored_at_ms.asc(),
            events::origin.asc(),
            events::seq.asc(),
        ))
        .select(EventRow::as_select())
        .load(c))?)
}

/// A page of all events, by id, after `after` (for rebuild and audit).
pub fn page(conn: &mut DbConn, after: Option<&str>, limit: i64) -> Result<Vec<EventRow>, LogError> {
    let mut q = events::table
        .select(EventRow::as_select())
        .order(events::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(events::id.gt(a.to_owned()));
    }
    Ok(q.load(conn)?)
}

/// Ids of all tickets that have events.
pub fn ticket_ids(conn: &mut DbConn) -> Result<Vec<String>, LogError> {
    Ok(events::table
        .select(events::ticket)
        .distinct()
        .order(events::ticket.asc())
        .load(conn)?)
}

/// Number of stored events.
pub fn count(conn: &mut DbConn) -> Result<i64, LogError> {
    Ok(events::table.count().get_result(conn)?)
}
