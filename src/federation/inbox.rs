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

use std::collections::HashMap;
use std::sync::Arc;

use diesel::Connection;
use serde_json::Value;

use super::protocol::{DeferReason, Outcome, PiiPart, RejectReason};
use super::quarantine;
use crate::crypto::signing::{self, Keyring, VerifyError};
use crate::db::{Db, DbConn, DbError};
use crate::domain::{Event, NodeId, ProvinceCode, Timestamp, TransitionError};
use crate::event_log::rotation::{self, KeyStatement};
use crate::event_log::store as log;
use crate::metrics::Metrics;

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
pub(super) fn claimed_id(v: &Value) -> String {
    v.get("id")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(64).collect())
        .unwrap_or_default()
}

fn verify_reason(e: &VerifyError) -> RejectReason {
    match e {
        VerifyError::Wire(crate::event_log::wire::WireError::IdMismatch { .. }) => {
            RejectReason::IdMismatch
        }
        VerifyError::Wire(crate::event_log::wire::WireError::IntegerOutOfRange { .. })
        | VerifyError::Json(crate::crypto::strict_json::StrictJsonError::IntegerOutOfRange {
            ..
        }) => RejectReason::IntegerOutOfRange,
        VerifyError::Json(_) | VerifyError::Wire(_) => RejectReason::Malformed,
        VerifyError::Signature(_) => RejectReason::MalformedSignature,
        VerifyError::UnknownSigMember(_) => RejectReason::UnknownSigMember,
        VerifyError::GroupPathMismatch => RejectReason::GroupPathMismatch,
        VerifyError::UnknownKey(_) => RejectReason::UnknownKey,
        VerifyError::KeyNotOwned { .. } => RejectReason::KeyNotOwned,
        VerifyError::KeyNotValidAt { .. } => RejectReason::KeyNotValidAtEventTime,
        VerifyError::BadSignature(_) => RejectReason::BadSignature,
    }
}

pub(super) fn transition_reason(e: &TransitionError) -> RejectReason {
    match e {
        TransitionError::Authority { .. } => RejectReason::OutOfAuthority,
        TransitionError::Forbidden { .. } | TransitionError::WrongAgency { .. } => {
            RejectReason::Forbidden
        }
        _ => RejectReason::IllegalTransition,
    }
}

/// One event after the signature checks: either verified, or already judged.
pub(super) enum Checked {
    Verified(Box<Event>, Value),
    Judged(Outcome, Value),
}

impl Checked {
    pub(super) fn raw(&self) -> &Value {
        match self {
            Self::Verified(_, v) | Self::Judged(_, v) => v,
        }
    }

    /// The event's id: verified, or as claimed.
    pub(super) fn claimed_id(&self) -> Option<String> {
        match self {
            Self::Verified(e, _) => Some(e.id.to_string()),
            Self::Judged(_, v) => Some(claimed_id(v)).filter(|s| !s.is_empty()),
        }
    }
}

/// The inbox of one node.
#[derive(Debug, Clone)]
pub struct Inbox {
    pub(super) db: Db,
    node: NodeId,
    metrics: Arc<Metrics>,
    /// Whether this node is the hub (never entitled to personal data).
    hub: bool,
    /// The province of every member (this node and its peers): a `created` event's tracking
    /// code must carry its origin's province.
    provinces: Arc<HashMap<String, ProvinceCode>>,
    /// The live membership, when the node has one: its provinces replace `provinces`.
    members: Option<super::membership::Members>,
    /// A restored node takes its own events back (`federation::recover`) while this is on.
    adopt_own: Arc<std::sync::atomic::AtomicBool>,
}

impl Inbox {
    /// The inbox of `node`; `provinces` maps every member's node id (this node's included) to
    /// its province.
    #[must_use]
    pub fn new(
        db: Db,
        node: NodeId,
        hub: bool,
        metrics: Arc<Metrics>,
        provinces: HashMap<String, ProvinceCode>,
    ) -> Self {
        Self {
            db,
            node,
            hub,
            metrics,
            provinces: Arc::new(provinces),
            members: None,
            adopt_own: Arc::default(),
        }
    }

    /// While `on`, events of this node's own chain that verify with its own keys are taken
    /// back (a restored node recovering the events it wrote after its backup); otherwise they
    /// are refused as `unknown_own_event`.
    pub fn adopt_own_events(&self, on: bool) {
        self.adopt_own
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// The inbox of the node `settings` describe, whose members are `members` (their
    /// provinces bound the tracking codes they may create; read at each batch, so members a
    /// roster adds are known at once).
    #[must_use]
    pub fn of_node(
        settings: &crate::config::Settings,
        members: &super::membership::Members,
        db: Db,
        metrics: Arc<Metrics>,
    ) -> Self {
        let me = settings.node_id().clone();
        let hub = settings.raw.node.role == crate::config::NodeRole::Hub;
        let mut inbox = Self::new(db, me, hub, metrics, HashMap::new());
        inbox.members = Some(members.clone());
        inbox
    }

    /// Judges the key statements that came with a batch or a feed page (or in `from`'s node
    /// information), before the events they introduce keys for are checked: each accepted one
    /// pins its new key; each refused one is logged with its reason, counted
    /// (`lapor_federation_key_statements_total{result}`) and changes nothing. A database
    /// failure is logged; the events are then judged on the keys held.
    pub fn accept_key_statements(
        &self,
        from: &NodeId,
        statements: Vec<KeyStatement>,
        now: Timestamp,
    ) {
        if statements.is_empty() {
            return;
        }
        let judged = match rotation::accept_all(&self.db, statements, now.millis()) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(from = %from, error = %e, "cannot judge key statements");
                return;
            }
        };
        for (s, outcome) in judged {
            let result = match &outcome {
                Ok(rotation::Accepted::Pinned) => {
                    tracing::info!(from = %from, node = %s.node, retiring = %s.retiring, key = %s.key_id,
                        valid_from_ms = s.valid_from_ms, "signing key rotation accepted from its signed statement");
                    "pinned"
                }
                Ok(_) => continue,
                Err(r) => {
                    tracing::error!(from = %from, node = %s.node, retiring = %s.retiring, key = %s.key_id,
                        reason = r.code(), message = %r, "key statement refused; nothing pinned");
                    r.code()
                }
            };
            self.metrics.inc(
                "lapor_federation_key_statements_total",
                &[("result", result)],
                1,
            );
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
        let hub = self.hub;
        let from_c = from.clone();
        let provinces = self.members.as_ref().map_or_else(
            || Arc::clone(&self.provinces),
            super::membership::Members::provinces,
        );
        let adopt_own = self.adopt_own.load(std::sync::atomic::Ordering::SeqCst);
        let mut pii: HashMap<String, PiiPart> =
            pii.into_iter().map(|p| (p.event.clone(), p)).collect();
        let (outcomes, deleted, over) = self.db.write(move |conn| {
            let ctx = Context {
                me: &me,
                hub,
                from: &from_c,
                now,
                provinces: &provinces,
                adopt_own,
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
            let whole = conn.transaction(|c| super::judge::judge(c, &ctx, &checked, pii.clone()));
            let judged = match whole {
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
                        match conn.transaction(|tx| super::judge::judge(tx, &ctx, one, part)) {
                            Ok(mut o) => out.append(&mut o),
                            Err(e) if e.is_content_conflict() => {
                                let o = Outcome::Rejected {
                                    id: c.claimed_id().unwrap_or_default(),
                                    reason: RejectReason::Unstorable,
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
            };
            if let Ok((out, ..)) = &judged {
                let held: Vec<&str> =
                    out.iter().filter(|o| o.acknowledged()).map(Outcome::id).collect();
                quarantine::forget_held(conn, &held)?;
            }
            judged
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
                    &[("reason", reason.code())],
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
                        reason: DeferReason::UnknownOriginKeys,
                    },
                    v,
                )
            }
            Err(e) => Checked::Judged(
                Outcome::Rejected {
                    id: claimed_id(&v),
                    reason: verify_reason(&e),
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
pub(super) struct Context<'a> {
    pub(super) me: &'a NodeId,
    /// This node is the hub.
    pub(super) hub: bool,
    pub(super) from: &'a NodeId,
    pub(super) now: Timestamp,
    pub(super) provinces: &'a HashMap<String, ProvinceCode>,
    /// This node's own events are taken back (restore), not refused.
    pub(super) adopt_own: bool,
    /// Reporter contacts deleted (erasure, or the ticket handled elsewhere now).
    pub(super) deleted: std::cell::Cell<usize>,
    /// The sender's quarantine usage, read at its first refusal in this batch.
    pub(super) usage: std::cell::Cell<Option<quarantine::Usage>>,
    /// Refused events kept as a digest only / not kept at all (over the bounds).
    pub(super) digests: std::cell::Cell<u64>,
    pub(super) dropped: std::cell::Cell<u64>,
}

impl Context<'_> {
    /// Quarantines a rejected event (other outcomes pass through).
    pub(super) fn quarantine(
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
                None => quarantine::usage(conn, self.from.as_str())?,
            };
            let kept = quarantine::quarantine_bounded(
                conn,
                &quarantine::NewQuarantine {
                    received_from: self.from.as_str(),
                    event_id: (!id.is_empty()).then_some(id.as_str()),
                    origin,
                    seq,
                    reason: reason.code(),
                    detail,
                    raw: &raw.to_string(),
                    received_at_ms: self.now.millis(),
                },
                &mut usage,
            )?;
            self.usage.set(Some(usage));
            match kept {
                quarantine::Kept::Digest => self.digests.set(self.digests.get() + 1),
                quarantine::Kept::Dropped => self.dropped.set(self.dropped.get() + 1),
                quarantine::Kept::Raw | quarantine::Kept::Already => {}
            }
        }
        Ok(outcome)
    }
}
