//! Refused events kept for operators (`docs/PROTOCOL.md`, Quarantine): bounded per sender,
//! listed with their reasons, forgotten once the event is held after all, and judged again by
//! `lapor-node quarantine retry` once their cause is fixed (a peer's new key pinned, a missing
//! agency added, the database repaired).
//!
//! Only events kept whole can be retried (a sender over the bounds leaves a digest only). A
//! retried `created` event comes without its personal-data part, which is never quarantined:
//! the sender's `peers resend` delivers the event with it instead.

use std::collections::HashMap;

use diesel::prelude::*;
use serde_json::Value;

use super::inbox::{Inbox, InboxError};
use super::protocol::{Outcome, RejectReason};
use super::store::CHUNK;
use crate::db::DbConn;
use crate::db::schema::quarantine;
use crate::domain::{NodeId, Timestamp};

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

/// Whether refusals with `reason` are [`RESOLVABLE`].
#[must_use]
pub fn resolvable(reason: &RejectReason) -> bool {
    RESOLVABLE.contains(&reason.code())
}

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

/// Quarantined events read per round.
const PAGE: i64 = 200;

/// What a retry did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retried {
    /// Quarantined events judged again.
    pub tried: usize,
    /// Now stored (or found already held): gone from the quarantine.
    pub stored: usize,
    /// Still not judged (e.g. their parents are missing): kept as they were.
    pub deferred: usize,
    /// Refused again, by reason (the quarantine keeps them, with that reason).
    pub refused: Vec<(String, usize)>,
}

impl Inbox {
    /// Judges again every quarantined event kept whole — from `sender`, or from every sender
    /// — that was quarantined before this call, as if `sender` had just sent it.
    pub fn retry_quarantine(
        &self,
        sender: Option<&NodeId>,
        now: Timestamp,
    ) -> Result<Retried, InboxError> {
        let last: Option<i64> = {
            let mut conn = self.db.read()?;
            kept_raw(&mut conn, sender.map(NodeId::as_str), 0, i64::MAX)?
                .last()
                .map(|r| r.id)
        };
        let Some(last) = last else {
            return Ok(Retried::default());
        };
        let mut done = Retried::default();
        let mut refused: HashMap<String, usize> = HashMap::new();
        let mut after = 0;
        loop {
            let rows: Vec<KeptRaw> = {
                let mut conn = self.db.read()?;
                kept_raw(&mut conn, sender.map(NodeId::as_str), after, PAGE)?
            };
            let rows: Vec<KeptRaw> = rows.into_iter().filter(|r| r.id <= last).collect();
            let Some(end) = rows.last().map(|r| r.id) else {
                break;
            };
            after = end;
            let mut by_sender: Vec<(String, Vec<KeptRaw>)> = Vec::new();
            for r in rows {
                match by_sender.iter_mut().find(|(s, _)| *s == r.received_from) {
                    Some((_, group)) => group.push(r),
                    None => by_sender.push((r.received_from.clone(), vec![r])),
                }
            }
            for (from, group) in by_sender {
                let Ok(from) = NodeId::parse(&from) else {
                    continue;
                };
                self.retry_group(&from, group, now, &mut done, &mut refused)?;
            }
        }
        let mut refused: Vec<(String, usize)> = refused.into_iter().collect();
        refused.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        done.refused = refused;
        Ok(done)
    }

    fn retry_group(
        &self,
        from: &NodeId,
        group: Vec<KeptRaw>,
        now: Timestamp,
        done: &mut Retried,
        refused: &mut HashMap<String, usize>,
    ) -> Result<(), InboxError> {
        let (rows, values): (Vec<KeptRaw>, Vec<Value>) = group
            .into_iter()
            .filter_map(|r| {
                let v = serde_json::from_str::<Value>(&r.raw).ok()?;
                Some((r, v))
            })
            .unzip();
        if rows.is_empty() {
            return Ok(());
        }
        done.tried += rows.len();
        let outcomes = self.receive(from, values, Vec::new(), now)?;
        let by_id: HashMap<&str, &Outcome> = outcomes.iter().map(|o| (o.id(), o)).collect();
        let mut forget = Vec::new();
        for r in &rows {
            match by_id.get(r.event_id.as_deref().unwrap_or_default()) {
                Some(o) if o.acknowledged() => {
                    done.stored += 1;
                    forget.push(r.id);
                }
                Some(Outcome::Rejected { reason, .. }) => {
                    *refused.entry(reason.code().to_owned()).or_default() += 1;
                    // Refused for another reason: that refusal is quarantined now; the old
                    // one no longer holds.
                    if reason.code() != r.reason {
                        forget.push(r.id);
                    }
                }
                _ => done.deferred += 1,
            }
        }
        if !forget.is_empty() {
            self.db
                .write(move |c| Ok::<_, InboxError>(delete(c, &forget)?))?;
        }
        Ok(())
    }
}
