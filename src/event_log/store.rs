//! Appending to and reading from the event log. Callers pass the connection of an open write
//! transaction ([`crate::db::Db::write`]): the event, the chain head and the projection change
//! commit together or not at all.

use diesel::prelude::*;

use super::model::{ChainHead, EventRow};
use super::wire::{self, WireError};
use crate::crypto::signing::{EventSig, MAX_GROUP_SIZE, SignEvents};
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
/// the one before; one chain-head read and write, and the rows stored by [`insert_rows`].
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
    let pending = drafts.into_iter().map(Pending::Draft).collect();
    Ok(append_pending(conn, origin, key, pending, stored_at)?.0)
}

/// A place in a chain: the `seq` and `prev` the next event takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The next event's `seq`.
    pub seq: i64,
    /// The id of the event before it (`None` for the first).
    pub prev: Option<String>,
}

impl Place {
    /// The place after `sealed`.
    #[must_use]
    pub fn after(sealed: &Sealed) -> Self {
        Self {
            seq: sealed.place.seq.saturating_add(1),
            prev: Some(sealed.row.id.clone()),
        }
    }
}

/// An event given its place and id ahead of the writer (its canonical form and id computed on
/// another thread): the writer signs and stores it as it is when the place is still the
/// chain's next one, and seals the draft again otherwise.
#[derive(Debug)]
pub struct Sealed {
    place: Place,
    event: Event,
    /// The row, without `raw` and `sig` until signed.
    row: EventRow,
    /// What the id hashes and the signature covers.
    canonical: String,
}

impl Sealed {
    /// Gives `draft` the place `place`: its id, not yet its signature.
    pub fn new(
        origin: &NodeId,
        key_id: &str,
        draft: Draft,
        place: Place,
        stored_at: Timestamp,
    ) -> Result<Self, LogError> {
        let (event, canonical) = place_event(origin, draft, &place)?;
        let row = EventRow {
            id: event.id.to_string(),
            origin: origin.to_string(),
            seq: place.seq,
            prev: place.prev.clone(),
            ticket: event.ticket.to_string(),
            kind: event.change.kind().to_owned(),
            at_ms: event.at.millis(),
            raw: String::new(),
            key_id: Some(key_id.to_owned()),
            sig: None,
            stored_at_ms: stored_at.millis(),
        };
        Ok(Self {
            place,
            event,
            row,
            canonical,
        })
    }

    /// The place it was given.
    #[must_use]
    pub fn place(&self) -> &Place {
        &self.place
    }

    /// The event (its id set).
    #[must_use]
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// Signs it alone with `key`: the `sig` column and the stored text.
    fn sign(&self, key: &dyn SignEvents) -> Result<(Option<String>, String), LogError> {
        let sig = key.sign_event(self.canonical.as_bytes());
        signed_parts(&self.row.id, sig, &self.canonical)
    }

    /// The draft again, to be placed elsewhere.
    #[must_use]
    pub fn draft(&self) -> Draft {
        let e = &self.event;
        Draft {
            ticket: e.ticket,
            parents: e.parents.clone(),
            at: e.at,
            actor: e.actor.clone(),
            change: e.change.clone(),
            pii: e.pii.clone(),
        }
    }
}

/// An event to append: a draft, or one sealed ahead (used as it is if its place is still free).
#[derive(Debug)]
pub enum Pending {
    /// To be placed and signed here.
    Draft(Draft),
    /// Placed ahead (its id computed), not signed.
    Sealed(Box<Sealed>),
}

/// What [`append_pending`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Appended {
    /// Events stored as sealed ahead.
    pub as_sealed: usize,
    /// Events placed and signed here (drafts, and sealed ones whose place was taken).
    pub resealed: usize,
}

/// Appends pending events as `origin`'s next events, in order: a sealed one whose place is the
/// chain's next is kept as it is, any other is placed here; several are signed together (one
/// signature over their Merkle tree), one alone. One chain-head read and write; the rows
/// stored by [`insert_rows`].
/// Returns the events in order, the place after the last, and how many were used as sealed.
#[tracing::instrument(name = "event_log.append_pending", skip_all, fields(events = pending.len()))]
pub fn append_pending(
    conn: &mut DbConn,
    origin: &NodeId,
    key: &dyn SignEvents,
    pending: Vec<Pending>,
    stored_at: Timestamp,
) -> Result<(Vec<Event>, Place, Appended), LogError> {
    let head: Option<ChainHead> = crate::db::on_backend!(conn, c => chain_heads::table
        .find(origin.as_str())
        .select(ChainHead::as_select())
        .first(c)
        .optional())?;
    let mut place = match &head {
        Some(h) => Place {
            seq: h.seq.saturating_add(1),
            prev: Some(h.last_id.clone()),
        },
        None => Place { seq: 1, prev: None },
    };
    if pending.is_empty() {
        return Ok((Vec::new(), place, Appended::default()));
    }
    let mut done = Appended::default();
    let mut placed = Vec::with_capacity(pending.len());
    for p in pending {
        // `Err`: sealed at this very place, kept; `Ok`: a draft to place here.
        let draft = match p {
            Pending::Sealed(s) if s.place == place => Err(s),
            Pending::Sealed(s) => Ok(s.draft()),
            Pending::Draft(d) => Ok(d),
        };
        let sealed = match draft {
            Err(s) => {
                done.as_sealed += 1;
                *s
            }
            Ok(d) => {
                done.resealed += 1;
                let id = key.key_id().as_str();
                Sealed::new(origin, id, d, place.clone(), stored_at)?
            }
        };
        place = Place::after(&sealed);
        placed.push(sealed);
    }
    // Several events: one signature over their Merkle tree (per `MAX_GROUP_SIZE` events); an
    // event alone: its own signature.
    let ids: Vec<EventId> = placed.iter().map(|s| s.event.id.clone()).collect();
    let mut group_sigs: Vec<Option<EventSig>> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(usize::try_from(MAX_GROUP_SIZE).unwrap_or(usize::MAX)) {
        if chunk.len() < 2 {
            group_sigs.extend(chunk.iter().map(|_| None));
            continue;
        }
        let sigs = key.sign_events(chunk).map_err(|e| LogError::Wire {
            id: chunk.first().map(ToString::to_string).unwrap_or_default(),
            cause: WireError::Canonical(e.to_string()),
        })?;
        if sigs.len() != chunk.len() {
            return Err(LogError::Wire {
                id: chunk.first().map(ToString::to_string).unwrap_or_default(),
                cause: WireError::Canonical(format!(
                    "{} signatures for {} events",
                    sigs.len(),
                    chunk.len()
                )),
            });
        }
        group_sigs.extend(sigs.into_iter().map(Some));
    }
    let mut events = Vec::with_capacity(placed.len());
    let mut rows = Vec::with_capacity(placed.len());
    for (sealed, group_sig) in placed.into_iter().zip(group_sigs) {
        let (sig, raw) = match group_sig {
            Some(sig) => signed_parts(&sealed.row.id, sig, &sealed.canonical)?,
            None => sealed.sign(key)?,
        };
        let Sealed { event, mut row, .. } = sealed;
        row.sig = sig;
        row.raw = raw;
        events.push(event);
        rows.push(row);
    }
    insert_rows(conn, &rows)?;
    let new_head = ChainHead {
        origin: origin.to_string(),
        seq: place.seq.saturating_sub(1),
        last_id: place.prev.clone().unwrap_or_default(),
    };
    if head.is_some() {
        // Only the changed columns: naming the key column too would make SQLite rewrite its
        // index entry (one more page in every commit).
        match conn {
            DbConn::Sqlite(c) => HeadUpdate {
                origin: origin.as_str(),
                seq: new_head.seq,
                last_id: &new_head.last_id,
            }
            .execute(c)?,
            DbConn::Pg(c) => diesel::update(chain_heads::table.find(origin.as_str()))
                .set((
                    chain_heads::seq.eq(new_head.seq),
                    chain_heads::last_id.eq(&new_head.last_id),
                ))
                .execute(c)?,
        };
    } else {
        crate::db::on_backend!(conn, c => diesel::insert_into(chain_heads::table)
            .values(&new_head)
            .execute(c))?;
    }
    Ok((events, place, done))
}

/// The chain-head update of [`append_pending`] on SQLite, as a statement kept in the
/// connection's statement cache (found by type): diesel marks every `UPDATE` as not
/// cacheable, since a changeset may leave out columns, so its update was parsed and prepared
/// anew in every group commit, ≈ 7 % of the writer's time at intake.
struct HeadUpdate<'a> {
    origin: &'a str,
    seq: i64,
    last_id: &'a str,
}

impl diesel::query_builder::QueryId for HeadUpdate<'_> {
    type QueryId = HeadUpdate<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for HeadUpdate<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Text};
        out.push_sql("UPDATE ");
        out.push_identifier("chain_heads")?;
        out.push_sql(" SET ");
        out.push_identifier(<chain_heads::seq as Column>::NAME)?;
        out.push_sql(" = ");
        out.push_bind_param::<BigInt, _>(&self.seq)?;
        out.push_sql(", ");
        out.push_identifier(<chain_heads::last_id as Column>::NAME)?;
        out.push_sql(" = ");
        out.push_bind_param::<Text, _>(self.last_id)?;
        out.push_sql(" WHERE ");
        out.push_identifier(<chain_heads::origin as Column>::NAME)?;
        out.push_sql(" = ");
        out.push_bind_param::<Text, _>(self.origin)?;
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for HeadUpdate<'_> {}

/// The `sig` column (the signature's value) and the stored text of an event signed with `sig`.
fn signed_parts(
    id: &str,
    sig: EventSig,
    canonical: &str,
) -> Result<(Option<String>, String), LogError> {
    let text = stored_text(id, &sig, canonical).map_err(|e| LogError::Wire {
        id: id.to_owned(),
        cause: WireError::Canonical(e.to_string()),
    })?;
    Ok((Some(sig.value), text))
}

/// The stored text of an event: `id` and `sig` followed by the members of its canonical form
/// (an object's members in any order are the same object: verification canonicalises what it
/// reads).
fn stored_text(id: &str, sig: &EventSig, canonical: &str) -> Result<String, serde_json::Error> {
    let members = canonical
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or_default();
    let sig = serde_json::to_string(sig)?;
    let mut out = String::with_capacity(canonical.len() + id.len() + sig.len() + 16);
    out.push_str("{\"id\":\"");
    out.push_str(id);
    out.push_str("\",\"sig\":");
    out.push_str(&sig);
    if !members.is_empty() {
        out.push(',');
        out.push_str(members);
    }
    out.push('}');
    Ok(out)
}

/// Gives a draft its place: the event with its id, and its canonical form (what the id hashes
/// and the signature covers).
fn place_event(origin: &NodeId, draft: Draft, place: &Place) -> Result<(Event, String), LogError> {
    let seq = place.seq;
    let prev = place
        .prev
        .as_deref()
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
    let canonical = match wire::created_canonical(&event) {
        Some(written) => written,
        None => wire::unsigned_value(&event).and_then(|v| wire::canonical_bytes(&v)),
    }
    .map_err(wire_err)?;
    event.id = EventId::of_bytes(&canonical);
    let canonical =
        String::from_utf8(canonical).map_err(|e| wire_err(WireError::Canonical(e.to_string())))?;
    Ok((event, canonical))
}

/// Stores event rows as they are (appended or received): `db::insert_rows!`, 100 rows
/// per statement on PostgreSQL (11 parameters a row).
pub fn insert_rows(conn: &mut DbConn, rows: &[EventRow]) -> QueryResult<()> {
    crate::db::insert_rows!(conn, events::table, rows, 100)
}

/// Stores many new events at once, for bulk loads (the national data generator): on
/// PostgreSQL one `COPY events FROM STDIN` (binary) for all of `rows`, on SQLite as
/// [`insert_rows`]. A row whose id is already stored fails the whole call, as with
/// [`insert_rows`].
pub fn copy_rows(conn: &mut DbConn, rows: &[EventRow]) -> QueryResult<()> {
    match conn {
        DbConn::Pg(c) if !rows.is_empty() => diesel::copy_from(events::table)
            .from_insertable(rows)
            .execute(c)
            .map(|_| ()),
        _ => insert_rows(conn, rows),
    }
}

/// Moves `origin`'s chain head over the events of its chain stored after it without a gap
/// (a restored node taking its own events back): the head becomes the last of the contiguous
/// run, so the next event this node writes continues after it. Returns the new head's seq.
pub fn advance_own_head(conn: &mut DbConn, origin: &NodeId) -> QueryResult<i64> {
    let head: Option<ChainHead> = crate::db::on_backend!(conn, c => chain_heads::table
        .find(origin.as_str())
        .select(ChainHead::as_select())
        .first(c)
        .optional())?;
    let from = head.as_ref().map_or(0, |h| h.seq);
    let after: Vec<(i64, String)> = crate::db::on_backend!(conn, c => events::table
        .filter(events::origin.eq(origin.as_str()))
        .filter(events::seq.gt(from))
        .order(events::seq.asc())
        .select((events::seq, events::id))
        .load(c))?;
    let mut last = None;
    for (seq, id) in after {
        if seq != last.as_ref().map_or(from, |(s, _)| *s) + 1 {
            break;
        }
        last = Some((seq, id));
    }
    let Some((seq, last_id)) = last else {
        return Ok(from);
    };
    let new_head = ChainHead {
        origin: origin.to_string(),
        seq,
        last_id,
    };
    if head.is_some() {
        crate::db::on_backend!(conn, c => diesel::update(chain_heads::table.find(origin.as_str()))
            .set((
                chain_heads::seq.eq(new_head.seq),
                chain_heads::last_id.eq(&new_head.last_id),
            ))
            .execute(c))?;
    } else {
        crate::db::on_backend!(conn, c => diesel::insert_into(chain_heads::table)
            .values(&new_head)
            .execute(c))?;
    }
    Ok(seq)
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

/// A page of all events in key order (ticket, then id), after the event `after` names by
/// `(ticket, id)`.
pub fn page(
    conn: &mut DbConn,
    after: Option<(&str, &str)>,
    limit: i64,
) -> Result<Vec<EventRow>, LogError> {
    let mut q = events::table
        .select(EventRow::as_select())
        .order((events::ticket.asc(), events::id.asc()))
        .limit(limit)
        .into_boxed();
    if let Some((ticket, id)) = after {
        // `ticket >=` lets the key's index seek to the cursor instead of scanning from the start.
        q = q.filter(events::ticket.ge(ticket.to_owned())).filter(
            events::ticket
                .gt(ticket.to_owned())
                .or(events::id.gt(id.to_owned())),
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DbError;

    /// Groups appended one after another continue one chain: each group starts after the head
    /// the one before left (seq and prev), and the head names the last event.
    #[test]
    fn appended_groups_continue_the_chain_from_its_head() {
        let (_dir, db) = crate::app::temp_database();
        let origin = NodeId::parse("prov-31.lapor.test").unwrap();
        let ticket = TicketId::new();
        for (group, size) in [(0i64, 1i64), (1, 3), (2, 2)] {
            let origin = origin.clone();
            db.write(move |c| {
                let pending = (0..size)
                    .map(|i| {
                        Pending::Draft(Draft {
                            ticket,
                            parents: Vec::new(),
                            at: Timestamp::from_millis(1_790_000_000_000 + group * 10 + i),
                            actor: Actor::citizen(),
                            change: Change::Verified {},
                            pii: None,
                        })
                    })
                    .collect();
                let key = crate::crypto::keys::NodeKey::generate();
                append_pending(c, &origin, &key, pending, Timestamp::now())
                    .map(|_| ())
                    .map_err(|e| crate::db::DbError::Unavailable(e.to_string()))
            })
            .unwrap();
        }
        let mut c = db.read().unwrap();
        let mut rows = for_ticket(&mut c, &ticket).unwrap();
        rows.sort_by_key(|r| r.seq);
        assert_eq!(
            rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6]
        );
        for pair in rows.windows(2) {
            assert_eq!(pair[1].prev.as_deref(), Some(pair[0].id.as_str()));
        }
        let head: ChainHead = chain_heads::table
            .find(origin.as_str())
            .select(ChainHead::as_select())
            .first(&mut c)
            .unwrap();
        assert_eq!((head.seq, head.last_id.as_str()), (6, rows[5].id.as_str()));
    }

    /// Event rows with every column set (and with the optional ones empty), stored through the
    /// insert the writer uses and read back: each field lands in its own column.
    #[test]
    fn event_rows_are_stored_column_for_column() {
        let (_dir, db) = crate::app::temp_database();
        let ticket = TicketId::new();
        let row = |seq: i64, full: bool| EventRow {
            id: format!("{seq:064x}"),
            origin: "prov-31.lapor.test".into(),
            seq,
            prev: full.then(|| format!("{:064x}", seq - 1)),
            ticket: ticket.to_string(),
            kind: "created".into(),
            at_ms: seq * 10,
            raw: format!("{{\"seq\":{seq}}}"),
            key_id: full.then(|| "key-1".to_owned()),
            sig: full.then(|| "c2ln".to_owned()),
            stored_at_ms: seq * 100,
        };
        let rows = vec![row(1, false), row(2, true), row(3, false)];
        let stored = rows.clone();
        db.write(move |c| insert_rows(c, &stored).map_err(DbError::from))
            .unwrap();
        let mut c = db.read().unwrap();
        let back = for_ticket(&mut c, &ticket).unwrap();
        assert_eq!(format!("{back:?}"), format!("{rows:?}"));
    }
}
