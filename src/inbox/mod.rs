//! The inbox: events received from peers (pushed batches and catch-up pulls) are checked —
//! strict JSON, id, signature by a key the origin owns and that was valid at the event's time,
//! chain (equivocation, broken link), causality, authority — and then deduplicated, stored and
//! applied to the ticket projection in one transaction. Each event gets an [`Outcome`]:
//!
//! - `accepted`: stored and applied now;
//! - `duplicate`: already held (a retry or a relayed copy) — harmless;
//! - `deferred`: cannot be judged yet (its parents or its origin's keys are not here); not
//!   stored, not acknowledged: the sender keeps it and retries, and this node pulls the gap;
//! - `rejected`: refused for a reason; quarantined with the raw event for operators, never
//!   applied and never acknowledged as applied.

pub mod http;
pub mod store;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use diesel::Connection;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::metrics::Metrics;
use crate::crypto::signing::{self, Keyring, VerifyError};
use crate::db::{Db, DbConn, DbError};
use crate::domain::{
    Change, Event, EventId, NodeId, ProvinceCode, TicketId, Timestamp, TransitionError, fold,
};
use crate::event_log::model::EventRow;
use crate::event_log::store as log;
use crate::tickets::model::{ContactRow, TicketRow};
use crate::tickets::store as tickets;

/// The personal-data part of a `created` event, sent beside it to an entitled node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiPart {
    /// The ticket of that event.
    pub ticket: String,
    /// The `created` event it belongs to.
    pub event: String,
    /// The commitment's salt (hex).
    pub salt: String,
    /// The data: `{name?, phone?, email?}`.
    pub contact: Value,
}

/// What happened to one received event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Stored and applied.
    Accepted {
        /// Event id.
        id: String,
    },
    /// Already held.
    Duplicate {
        /// Event id.
        id: String,
    },
    /// Not judged yet; send again later.
    Deferred {
        /// Event id (as claimed).
        id: String,
        /// Why: `missing_parents`, `unknown_origin_keys` or `unknown_agency`.
        reason: String,
    },
    /// Refused and quarantined.
    Rejected {
        /// Event id (as claimed, may be empty for unreadable input).
        id: String,
        /// Machine-readable reason.
        reason: String,
        /// Human-readable detail.
        detail: String,
    },
}

impl Outcome {
    /// The event id the outcome is about.
    #[must_use]
    pub fn id(&self) -> &str {
        match self {
            Self::Accepted { id }
            | Self::Duplicate { id }
            | Self::Deferred { id, .. }
            | Self::Rejected { id, .. } => id,
        }
    }

    /// The result word.
    #[must_use]
    pub const fn word(&self) -> &'static str {
        match self {
            Self::Accepted { .. } => "accepted",
            Self::Duplicate { .. } => "duplicate",
            Self::Deferred { .. } => "deferred",
            Self::Rejected { .. } => "rejected",
        }
    }

    /// Acknowledged: the sender may drop its outbox row.
    #[must_use]
    pub const fn acknowledged(&self) -> bool {
        matches!(self, Self::Accepted { .. } | Self::Duplicate { .. })
    }
}

/// A failure of the inbox itself (not of an event).
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// The database failed; nothing was applied.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Reading stored events failed.
    #[error(transparent)]
    Log(#[from] log::LogError),
    /// Reading keys failed.
    #[error(transparent)]
    Keys(#[from] crate::event_log::keys::KeysError),
    /// A projection could not be encoded.
    #[error("cannot encode ticket state: {0}")]
    Encode(#[from] serde_json::Error),
}

impl InboxError {
    /// Whether the database refused a write for a reason in the written content (a unique,
    /// foreign-key, not-null or check constraint) rather than because it failed.
    #[must_use]
    pub fn is_content_conflict(&self) -> bool {
        use diesel::result::DatabaseErrorKind as K;
        matches!(
            self,
            Self::Db(DbError::Query(diesel::result::Error::DatabaseError(
                K::UniqueViolation
                    | K::ForeignKeyViolation
                    | K::NotNullViolation
                    | K::CheckViolation,
                _
            )))
        )
    }
}

impl From<diesel::result::Error> for InboxError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

/// The claimed id of a raw event value (for outcomes about unreadable events).
fn claimed_id(v: &Value) -> String {
    v.get("id")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(64).collect())
        .unwrap_or_default()
}

fn verify_reason(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::Wire(crate::event_log::wire::WireError::IdMismatch { .. }) => "id_mismatch",
        VerifyError::Wire(crate::event_log::wire::WireError::IntegerOutOfRange { .. })
        | VerifyError::Json(crate::crypto::strict_json::StrictJsonError::IntegerOutOfRange {
            ..
        }) => "integer_out_of_range",
        VerifyError::Json(_) | VerifyError::Wire(_) => "malformed",
        VerifyError::Signature(_) => "malformed_signature",
        VerifyError::UnknownSigMember(_) => "unknown_sig_member",
        VerifyError::GroupPathMismatch => "group_path_mismatch",
        VerifyError::UnknownKey(_) => "unknown_key",
        VerifyError::KeyNotOwned { .. } => "key_not_owned",
        VerifyError::KeyNotValidAt { .. } => "key_not_valid_at_event_time",
        VerifyError::BadSignature(_) => "bad_signature",
    }
}

fn transition_reason(e: &TransitionError) -> &'static str {
    match e {
        TransitionError::Authority { .. } => "out_of_authority",
        TransitionError::Forbidden { .. } | TransitionError::WrongAgency { .. } => "forbidden",
        _ => "illegal_transition",
    }
}

/// One event after the signature checks: either verified, or already judged.
enum Checked {
    Verified(Box<Event>, Value),
    Judged(Outcome, Value),
}

impl Checked {
    fn raw(&self) -> &Value {
        match self {
            Self::Verified(_, v) | Self::Judged(_, v) => v,
        }
    }

    /// The event's id: verified, or as claimed.
    fn claimed_id(&self) -> Option<String> {
        match self {
            Self::Verified(e, _) => Some(e.id.to_string()),
            Self::Judged(_, v) => Some(claimed_id(v)).filter(|s| !s.is_empty()),
        }
    }
}

/// The inbox of one node.
#[derive(Debug, Clone)]
pub struct Inbox {
    db: Db,
    node: NodeId,
    metrics: Arc<Metrics>,
    /// The province of every member (this node and its peers): a `created` event's tracking
    /// code must carry its origin's province.
    provinces: Arc<HashMap<String, ProvinceCode>>,
}

impl Inbox {
    /// The inbox of `node`; `provinces` maps every member's node id (this node's included) to
    /// its province.
    #[must_use]
    pub fn new(
        db: Db,
        node: NodeId,
        metrics: Arc<Metrics>,
        provinces: HashMap<String, ProvinceCode>,
    ) -> Self {
        Self {
            db,
            node,
            metrics,
            provinces: Arc::new(provinces),
        }
    }

    /// Checks, stores and applies `values` received from `from` (the transport peer: the
    /// origin itself or a relay). `pii` parts are kept only when this node is entitled to them.
    /// On `Err` nothing was stored.
    #[tracing::instrument(name = "inbox.receive", skip_all, fields(from = %from, events = values.len()))]
    pub fn receive(
        &self,
        from: &NodeId,
        values: Vec<Value>,
        pii: Vec<PiiPart>,
        now: Timestamp,
    ) -> Result<Vec<Outcome>, InboxError> {
        let keys = {
            let mut conn = self.db.read()?;
            crate::event_log::keys::keyring(&mut conn)?
        };
        let checked = check_signatures(values, &keys);
        let me = self.node.clone();
        let from_c = from.clone();
        let provinces = Arc::clone(&self.provinces);
        let mut pii: HashMap<String, PiiPart> =
            pii.into_iter().map(|p| (p.event.clone(), p)).collect();
        let (outcomes, deleted, over) = self.db.write(move |conn| {
            let ctx = Context {
                me: &me,
                from: &from_c,
                now,
                provinces: &provinces,
                deleted: std::cell::Cell::new(0),
                usage: std::cell::Cell::new(None),
                digests: std::cell::Cell::new(0),
                dropped: std::cell::Cell::new(0),
            };
            // The whole batch in one savepoint; if it cannot be stored for a reason in the
            // content of some event (a constraint of the database refused it), each event is
            // judged alone in its own savepoint, so that one poisoned event is refused by
            // itself and the others are stored — never a server error the sender retries
            // forever behind it.
            let whole = conn.transaction(|c| judge(c, &ctx, &checked, pii.clone()));
            match whole {
                Err(e) if e.is_content_conflict() && !checked.is_empty() => {
                    tracing::warn!(error = %e, "batch refused by a database constraint; judging each event alone");
                    let mut out = Vec::with_capacity(checked.len());
                    for c in &checked {
                        let one = std::slice::from_ref(c);
                        let part: HashMap<String, PiiPart> = c
                            .claimed_id()
                            .and_then(|id| pii.remove_entry(&id))
                            .into_iter()
                            .collect();
                        match conn.transaction(|tx| judge(tx, &ctx, one, part)) {
                            Ok(mut o) => out.append(&mut o),
                            Err(e) if e.is_content_conflict() => {
                                let o = Outcome::Rejected {
                                    id: c.claimed_id().unwrap_or_default(),
                                    reason: "unstorable".into(),
                                    detail: format!("refused by a constraint of this node's database: {e}"),
                                };
                                out.push(conn.transaction(|tx| ctx.quarantine(tx, o, c.raw()))?);
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    Ok((out, ctx.deleted.get(), (ctx.digests.get(), ctx.dropped.get())))
                }
                other => other.map(|out| (out, ctx.deleted.get(), (ctx.digests.get(), ctx.dropped.get()))),
            }
        })?;
        for (what, n) in [("digest_only", over.0), ("dropped", over.1)] {
            if n > 0 {
                self.metrics.inc(
                    "lapor_federation_quarantine_over_bounds_total",
                    &[("peer", from.as_str()), ("kept", what)],
                    n,
                );
                tracing::warn!(from = %from, events = n, kept = what, "quarantine bounds reached for this sender");
            }
        }
        if deleted > 0 {
            if let Err(e) = self.db.scrub() {
                tracing::error!(error = %e, "erased data may remain on disk until the next checkpoint or VACUUM");
            }
        }
        for o in &outcomes {
            self.metrics
                .inc("lapor_federation_events_total", &[("result", o.word())], 1);
            if let Outcome::Rejected { id, reason, detail } = o {
                self.metrics.inc(
                    "lapor_federation_rejected_total",
                    &[("reason", reason.as_str())],
                    1,
                );
                tracing::warn!(from = %from, event = %id, reason = %reason, detail = %detail, "event refused and quarantined");
            }
        }
        Ok(outcomes)
    }
}

fn check_signatures(values: Vec<Value>, keys: &Keyring) -> Vec<Checked> {
    // Fast path: the whole batch at once; on any failure, each event alone to judge each.
    if let Ok(events) = signing::verify_many(&values, keys) {
        return events
            .into_iter()
            .zip(values)
            .map(|(e, v)| Checked::Verified(Box::new(e), v))
            .collect();
    }
    values
        .into_iter()
        .map(|v| match signing::verify_value(&v, keys) {
            Ok(e) => Checked::Verified(Box::new(e), v),
            Err(VerifyError::UnknownKey(k)) if !origin_has_keys(&v, keys) => {
                let _ = k;
                Checked::Judged(
                    Outcome::Deferred {
                        id: claimed_id(&v),
                        reason: "unknown_origin_keys".into(),
                    },
                    v,
                )
            }
            Err(e) => Checked::Judged(
                Outcome::Rejected {
                    id: claimed_id(&v),
                    reason: verify_reason(&e).into(),
                    detail: e.to_string(),
                },
                v,
            ),
        })
        .collect()
}

fn origin_has_keys(v: &Value, keys: &Keyring) -> bool {
    let Some(origin) = v.get("origin").and_then(Value::as_str) else {
        return true;
    };
    keys.values().any(|k| k.origin.as_str() == origin)
}

/// What judging needs besides the events: who we are, who sent them, when, and the members'
/// provinces.
struct Context<'a> {
    me: &'a NodeId,
    from: &'a NodeId,
    now: Timestamp,
    provinces: &'a HashMap<String, ProvinceCode>,
    /// Reporter contacts deleted (erasure, or the ticket handled elsewhere now).
    deleted: std::cell::Cell<usize>,
    /// The sender's quarantine usage, read at its first refusal in this batch.
    usage: std::cell::Cell<Option<store::Usage>>,
    /// Refused events kept as a digest only / not kept at all (over the bounds).
    digests: std::cell::Cell<u64>,
    dropped: std::cell::Cell<u64>,
}

impl Context<'_> {
    /// Quarantines a rejected event (other outcomes pass through).
    fn quarantine(
        &self,
        conn: &mut DbConn,
        outcome: Outcome,
        raw: &Value,
    ) -> Result<Outcome, InboxError> {
        if let Outcome::Rejected { id, reason, detail } = &outcome {
            let origin = raw.get("origin").and_then(Value::as_str);
            let seq = raw.get("seq").and_then(Value::as_i64);
            let mut usage = match self.usage.get() {
                Some(u) => u,
                None => store::usage(conn, self.from.as_str())?,
            };
            let kept = store::quarantine_bounded(
                conn,
                &store::NewQuarantine {
                    received_from: self.from.as_str(),
                    event_id: (!id.is_empty()).then_some(id.as_str()),
                    origin,
                    seq,
                    reason,
                    detail,
                    raw: &raw.to_string(),
                    received_at_ms: self.now.millis(),
                },
                &mut usage,
            )?;
            self.usage.set(Some(usage));
            match kept {
                store::Kept::Digest => self.digests.set(self.digests.get() + 1),
                store::Kept::Dropped => self.dropped.set(self.dropped.get() + 1),
                store::Kept::Raw | store::Kept::Already => {}
            }
        }
        Ok(outcome)
    }
}

/// Judges `checked` in the caller's transaction: stores and applies the acceptable events,
/// quarantines the refused ones, keeps the personal-data parts this node is entitled to.
fn judge(
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
        let reject = |reason: &str, detail: String| Outcome::Rejected {
            id: id.clone(),
            reason: reason.into(),
            detail,
        };
        if self.held.contains(&id) {
            return Ok(Outcome::Duplicate { id });
        }
        let seq = i64::try_from(event.seq).unwrap_or(i64::MAX);
        if let Some(other) = self.at.get(&(event.origin.to_string(), seq)) {
            let o = reject(
                "equivocation",
                format!(
                    "{} already wrote event {other} at seq {}; this is a second event at that place",
                    event.origin, event.seq
                ),
            );
            return self.quarantine(o, raw);
        }
        if event.origin == *self.me {
            let o = reject(
                "unknown_own_event",
                "claims to be this node's event, which this node never wrote".into(),
            );
            return self.quarantine(o, raw);
        }
        if let Change::Created(report) = &event.change {
            let origin_province = self.ctx.provinces.get(event.origin.as_str());
            if !origin_province.is_some_and(|p| report.tracking_code.belongs_to(p)) {
                let o = reject(
                    "code_not_of_origin",
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
        if event.seq > 1 {
            if let Some(prev_id) = self.at.get(&(event.origin.to_string(), seq - 1)) {
                if event.prev.as_ref().map(ToString::to_string).as_ref() != Some(prev_id) {
                    let o = reject(
                        "broken_chain",
                        format!(
                            "seq {} does not name {prev_id} (seq {}) as prev",
                            event.seq,
                            event.seq - 1
                        ),
                    );
                    return self.quarantine(o, raw);
                }
            }
        } else if event.prev.is_some() {
            let o = reject("broken_chain", "seq 1 must not name a prev".into());
            return self.quarantine(o, raw);
        }
        if let Change::Dispatched { agency, .. } = &event.change {
            if crate::tickets::agencies::get(self.conn, agency.as_str())?.is_none() {
                // Not this event's fault: the agency is not in this node's list yet. Kept by
                // the sender and sent again; the operator adds the agency (`agencies add` or
                // `agencies import`) and the next delivery is accepted.
                tracing::warn!(event = %id, agency = %agency, "event names an agency unknown here; deferred until it is added");
                return Ok(Outcome::Deferred {
                    id,
                    reason: "unknown_agency".into(),
                });
            }
        }
        let history = self.cache.entry(event.ticket).or_default();
        let ticket_exists = !history.is_empty();
        let known: HashSet<&EventId> = history.iter().map(|e| &e.id).collect();
        if event.parents.iter().any(|p| !known.contains(p)) {
            return Ok(Outcome::Deferred {
                id,
                reason: "missing_parents".into(),
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
                    "illegal_transition",
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
        if matches!(
            event.change,
            Change::Created(_) | Change::Dispatched { .. } | Change::NotOurAuthority { .. }
        ) {
            let t = event.ticket.to_string();
            self.participants
                .insert((t.clone(), state.origin.to_string()));
            self.participants.insert((t, state.handler.to_string()));
        }
        if matches!(event.change, Change::Erased {}) {
            let n = tickets::delete_contact(self.conn, &event.ticket)?;
            self.ctx.deleted.set(self.ctx.deleted.get() + n);
        }
        // A ticket handled elsewhere now (dispatched on, or returned): this node no longer
        // needs the reporter's contact unless it is the origin.
        if matches!(
            event.change,
            Change::Dispatched { .. } | Change::NotOurAuthority { .. }
        ) && state.handler != *self.me
            && state.origin != *self.me
        {
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
        crate::outbox::store::add_participants(self.conn, &std::mem::take(&mut self.participants))?;
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
            let entitled = handler == self.me.as_str() && !anonymous;
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
