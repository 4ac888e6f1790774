//! Inbox queries: event lookups, inserts, and the quarantine.

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{events, quarantine};
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

/// A refused event to record.
#[derive(Debug, Clone, Copy)]
pub struct NewQuarantine<'a> {
    /// The transport peer that sent it.
    pub received_from: &'a str,
    /// Its claimed id.
    pub event_id: Option<&'a str>,
    /// Its claimed origin.
    pub origin: Option<&'a str>,
    /// Its claimed seq.
    pub seq: Option<i64>,
    /// Machine-readable reason.
    pub reason: &'a str,
    /// Detail.
    pub detail: &'a str,
    /// The event as received.
    pub raw: &'a str,
    /// When.
    pub received_at_ms: i64,
}

/// Raw refused events kept per sending peer: at most this many…
pub const QUARANTINE_RAW_EVENTS: i64 = 1_000;
/// …and this much of them (8 Mi characters of raw JSON).
pub const QUARANTINE_RAW_BYTES: i64 = 8 * 1024 * 1024;
/// Quarantine rows per sending peer (with or without the raw event); beyond them a refusal is
/// only counted (`lapor_federation_quarantine_dropped_total`) and logged.
pub const QUARANTINE_ROWS: i64 = 50_000;

/// What one sender's refused events take in the quarantine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Rows.
    pub rows: i64,
    /// Rows that keep the raw event.
    pub raw_rows: i64,
    /// Bytes of raw events kept.
    pub raw_bytes: i64,
}

/// How a refused event is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// With the raw event.
    Raw,
    /// Its digest, size and reason only (over the raw bounds).
    Digest,
    /// Not at all (over the row bound): counted only.
    Dropped,
    /// Already recorded (the same event, reason and sender).
    Already,
}

/// `sender`'s current quarantine usage.
pub fn usage(conn: &mut DbConn, sender: &str) -> QueryResult<Usage> {
    #[derive(QueryableByName)]
    struct U {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        rows: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        raw_rows: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        raw_bytes: i64,
    }
    let u: U = diesel::sql_query(
        "SELECT COUNT(*) AS rows, \
                COALESCE(SUM(CASE WHEN raw <> '' THEN 1 ELSE 0 END), 0) AS raw_rows, \
                COALESCE(SUM(LENGTH(raw)), 0) AS raw_bytes \
         FROM quarantine WHERE received_from = $1",
    )
    .bind::<diesel::sql_types::Text, _>(sender)
    .get_result(conn)?;
    Ok(Usage {
        rows: u.rows,
        raw_rows: u.raw_rows,
        raw_bytes: u.raw_bytes,
    })
}

/// The first `max` characters of `s`.
fn clip(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(i, _)| &s[..i])
}

/// Records a refused event once per (event, reason, sender), within the sender's bounds
/// (`usage`, updated): the raw event while the sender has fewer than
/// [`QUARANTINE_RAW_EVENTS`] raw events and [`QUARANTINE_RAW_BYTES`] bytes of them kept; then
/// its SHA-256, size and reason only; past [`QUARANTINE_ROWS`] rows, nothing.
pub fn quarantine_bounded(
    conn: &mut DbConn,
    q: &NewQuarantine<'_>,
    usage: &mut Usage,
) -> QueryResult<Kept> {
    if let Some(id) = q.event_id {
        let n: i64 = quarantine::table
            .filter(quarantine::event_id.eq(id))
            .filter(quarantine::reason.eq(q.reason))
            .filter(quarantine::received_from.eq(q.received_from))
            .count()
            .get_result(conn)?;
        if n > 0 {
            return Ok(Kept::Already);
        }
    }
    if usage.rows >= QUARANTINE_ROWS {
        return Ok(Kept::Dropped);
    }
    let size = i64::try_from(q.raw.len()).unwrap_or(i64::MAX);
    let keep_raw = usage.raw_rows < QUARANTINE_RAW_EVENTS
        && usage.raw_bytes.saturating_add(size) <= QUARANTINE_RAW_BYTES;
    let detail;
    let (raw, detail, kept) = if keep_raw {
        (q.raw, clip(q.detail, 2_000), Kept::Raw)
    } else {
        detail = format!(
            "{} [raw event not kept: the sender is over the quarantine's bounds; sha256 {}, {size} bytes]",
            clip(q.detail, 1_800),
            crate::crypto::to_hex(&<sha2::Sha256 as sha2::Digest>::digest(q.raw.as_bytes()))
        );
        ("", detail.as_str(), Kept::Digest)
    };
    diesel::insert_into(quarantine::table)
        .values((
            quarantine::received_from.eq(q.received_from),
            quarantine::event_id.eq(q.event_id.map(|s| clip(s, 64))),
            quarantine::origin.eq(q.origin.map(|s| clip(s, 253))),
            quarantine::seq.eq(q.seq),
            quarantine::reason.eq(q.reason),
            quarantine::detail.eq(detail),
            quarantine::raw.eq(raw),
            quarantine::received_at_ms.eq(q.received_at_ms),
        ))
        .execute(conn)?;
    usage.rows += 1;
    if keep_raw {
        usage.raw_rows += 1;
        usage.raw_bytes = usage.raw_bytes.saturating_add(size);
    }
    Ok(kept)
}

/// One quarantined event, as operators see it.
#[derive(
    Debug, Clone, PartialEq, Eq, Queryable, Selectable, serde::Serialize, utoipa::ToSchema,
)]
#[diesel(table_name = quarantine)]
pub struct QuarantineRow {
    /// Row id.
    pub id: i64,
    /// Sender.
    pub received_from: String,
    /// Claimed event id.
    pub event_id: Option<String>,
    /// Claimed origin.
    pub origin: Option<String>,
    /// Claimed seq.
    pub seq: Option<i64>,
    /// Reason code.
    pub reason: String,
    /// Detail.
    pub detail: String,
    /// When received (ms).
    pub received_at_ms: i64,
}

/// The latest `limit` quarantined events.
pub fn list(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<QuarantineRow>> {
    quarantine::table
        .order(quarantine::id.desc())
        .limit(limit)
        .select(QuarantineRow::as_select())
        .load(conn)
}

/// Quarantined events per sender.
pub fn count_by_sender(conn: &mut DbConn) -> QueryResult<Vec<(String, i64)>> {
    quarantine::table
        .group_by(quarantine::received_from)
        .select((quarantine::received_from, diesel::dsl::count_star()))
        .load(conn)
}

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's bound-parameter limits.
const CHUNK: usize = 400;

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

/// The reasons `sender`'s events were quarantined for, with how many each, most frequent first.
pub fn reasons_of(conn: &mut DbConn, sender: &str) -> QueryResult<Vec<(String, i64)>> {
    let mut rows: Vec<(String, i64)> = quarantine::table
        .filter(quarantine::received_from.eq(sender))
        .group_by(quarantine::reason)
        .select((quarantine::reason, diesel::dsl::count_star()))
        .load(conn)?;
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(rows)
}

/// A quarantined event kept whole, to judge again.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct KeptRaw {
    /// Row id.
    pub id: i64,
    /// Sender.
    pub received_from: String,
    /// Claimed event id.
    pub event_id: Option<String>,
    /// Reason code.
    pub reason: String,
    /// The event as received.
    pub raw: String,
}

/// Up to `limit` quarantined events kept whole (from `sender`, or from anyone), oldest first,
/// after row `after`.
pub fn kept_raw(
    conn: &mut DbConn,
    sender: Option<&str>,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<KeptRaw>> {
    let mut q = quarantine::table
        .filter(quarantine::id.gt(after))
        .filter(quarantine::raw.ne(""))
        .into_boxed();
    if let Some(s) = sender {
        q = q.filter(quarantine::received_from.eq(s.to_owned()));
    }
    q.order(quarantine::id.asc())
        .limit(limit)
        .select((
            quarantine::id,
            quarantine::received_from,
            quarantine::event_id,
            quarantine::reason,
            quarantine::raw,
        ))
        .load(conn)
}

/// Deletes quarantine rows by id.
pub fn delete(conn: &mut DbConn, ids: &[i64]) -> QueryResult<usize> {
    let mut n = 0;
    for chunk in ids.chunks(CHUNK) {
        n +=
            diesel::delete(quarantine::table.filter(quarantine::id.eq_any(chunk))).execute(conn)?;
    }
    Ok(n)
}

/// Deletes the quarantined events of `sender` (or of anyone) with reason `reason` (or any).
pub fn clear(conn: &mut DbConn, sender: Option<&str>, reason: Option<&str>) -> QueryResult<usize> {
    let mut q = diesel::delete(quarantine::table).into_boxed();
    if let Some(s) = sender {
        q = q.filter(quarantine::received_from.eq(s.to_owned()));
    }
    if let Some(r) = reason {
        q = q.filter(quarantine::reason.eq(r.to_owned()));
    }
    q.execute(conn)
}

/// Refusals that a later event of the same id can resolve: the key was not pinned yet (or not
/// valid then), or this node's database could not store it. Refusals that speak of the
/// content (a forged id, a bad signature, an illegal transition) stay as evidence.
pub const RESOLVABLE: [&str; 3] = ["unknown_key", "key_not_valid_at_event_time", "unstorable"];

/// Forgets the [`RESOLVABLE`] quarantine rows of events now held (`ids` were accepted or found
/// held): a refusal that a later delivery, a pin or a retry resolved no longer shows. Cheap
/// when the quarantine is empty.
pub fn forget_held(conn: &mut DbConn, ids: &[&str]) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    let any: Option<i64> = quarantine::table
        .select(quarantine::id)
        .first(conn)
        .optional()?;
    if any.is_none() {
        return Ok(0);
    }
    let mut n = 0;
    for chunk in ids.chunks(CHUNK) {
        n += diesel::delete(
            quarantine::table
                .filter(quarantine::event_id.eq_any(chunk))
                .filter(quarantine::reason.eq_any(RESOLVABLE)),
        )
        .execute(conn)?;
    }
    Ok(n)
}
