//! The federation's health as this node sees it — on the hub, which holds every event, for
//! the whole federation:
//!
//! - [`chains`]: per origin chain the head held and the events missing below it (a gap), and
//!   events refused because another event holds their place (an equivocation) or does not link
//!   (a broken chain), with their ids;
//! - [`nodes`]: per member node, what its latest signed status (`federation::status`, table
//!   `node_status`) reported beside what the hub holds: last contact, head reported vs held
//!   (events missing at the hub), its outbox towards each peer, quarantine, pull cursors,
//!   version, clock skew and the chain's audit state; `hub::alerts` raises alerts from it.

use std::collections::BTreeMap;

use diesel::prelude::*;

use crate::config::NodeRole;
use crate::db::DbConn;
use crate::db::schema::{chain_heads, events, node_status, peers, quarantine};
use crate::domain::{NodeId, Timestamp};
use crate::federation::protocol::{NodeStatus, StatusCursor};

/// The state of one origin's chain at this node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Audit {
    /// Every event from 1 to the head is held; no conflicting event was seen.
    Ok,
    /// Events below the head are missing.
    Gap {
        /// How many.
        missing: i64,
    },
    /// Events below the head are not held, on a node that holds only the tickets it takes
    /// part in (a province): expected, not an alert.
    Partial {
        /// How many.
        missing: i64,
    },
    /// Two events claimed one place in the chain, or an event did not link (ids refused).
    Equivocation {
        /// The refused events' ids (at most 20).
        events: Vec<String>,
    },
}

/// One origin's chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainHealth {
    /// The origin node.
    pub origin: String,
    /// Highest sequence number held (0: none).
    pub head_held: i64,
    /// Events held.
    pub events_held: i64,
    /// The audit state.
    pub audit: Audit,
}

/// Reads every origin's chain state. Counts the held events per origin (one pass over the
/// events' key index). `holds_all`: this node receives every event (the hub), so a missing
/// one is a gap; elsewhere it is a partial chain.
///
/// # Errors
///
/// The database could not be read.
pub fn chains(conn: &mut DbConn, me: &str, holds_all: bool) -> QueryResult<Vec<ChainHealth>> {
    let heads: Vec<(String, i64)> = chain_heads::table
        .select((chain_heads::origin, chain_heads::seq))
        .load(conn)?;
    let held: Vec<(String, i64, Option<i64>)> = events::table
        .group_by(events::origin)
        .select((
            events::origin,
            diesel::dsl::count_star(),
            diesel::dsl::max(events::seq),
        ))
        .load(conn)?;
    let refused: Vec<(Option<String>, Option<String>)> = quarantine::table
        .filter(quarantine::reason.eq_any(["equivocation", "broken_chain"]))
        .order(quarantine::id.asc())
        .select((quarantine::origin, quarantine::event_id))
        .load(conn)?;
    let mut out: BTreeMap<String, ChainHealth> = BTreeMap::new();
    let entry = |out: &mut BTreeMap<String, ChainHealth>, origin: &str| {
        out.entry(origin.to_owned())
            .or_insert_with(|| ChainHealth {
                origin: origin.to_owned(),
                head_held: 0,
                events_held: 0,
                audit: Audit::Ok,
            })
            .clone()
    };
    for (origin, seq) in heads {
        let mut c = entry(&mut out, &origin);
        c.head_held = c.head_held.max(seq);
        out.insert(origin, c);
    }
    for (origin, n, max) in held {
        let mut c = entry(&mut out, &origin);
        c.events_held = n;
        c.head_held = c.head_held.max(max.unwrap_or(0));
        out.insert(origin, c);
    }
    for c in out.values_mut() {
        let missing = c.head_held - c.events_held;
        if missing > 0 {
            c.audit = if holds_all || c.origin == me {
                Audit::Gap { missing }
            } else {
                Audit::Partial { missing }
            };
        }
    }
    for (origin, event) in refused {
        let Some(origin) = origin else { continue };
        let mut c = entry(&mut out, &origin);
        match &mut c.audit {
            Audit::Equivocation { events } => {
                if events.len() < 20 {
                    events.extend(event);
                }
            }
            _ => {
                c.audit = Audit::Equivocation {
                    events: event.into_iter().collect(),
                }
            }
        }
        out.insert(origin, c);
    }
    Ok(out.into_values().collect())
}

/// A held status: the node's report as sent and when the hub received it.
#[derive(Debug, Clone)]
pub struct Held {
    /// The status as sent (signature checked on receipt).
    pub status: NodeStatus,
    /// The hub's clock on receipt (ms).
    pub received_ms: i64,
}

/// Every held status, by node.
///
/// # Errors
///
/// The database could not be read.
pub fn held(conn: &mut DbConn) -> QueryResult<Vec<Held>> {
    let rows: Vec<(String, i64)> = node_status::table
        .order(node_status::node_id.asc())
        .select((node_status::status, node_status::received_ms))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(text, received_ms)| {
            let mut v: serde_json::Value = serde_json::from_str(&text).ok()?;
            v.as_object_mut()?.remove("sig");
            Some(Held {
                status: serde_json::from_value(v).ok()?,
                received_ms,
            })
        })
        .collect())
}

/// One cell of the outbox matrix: a node's queue towards one peer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxCell {
    /// The peer.
    pub peer: String,
    /// Events not yet acknowledged by it.
    pub depth: i64,
    /// Age of the oldest of them now (the reported age plus the time since the report).
    pub oldest_age_ms: Option<i64>,
}

/// One member node's health at the hub.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeHealth {
    /// The node.
    pub node: String,
    /// `hub` or `province` (`unknown`: an origin of events that is not a configured peer).
    pub role: &'static str,
    /// Last time it contacted the hub (a request or a status), ms; this node itself: now.
    pub last_contact_ms: Option<i64>,
    /// When its latest status arrived (ms); none yet: `None`.
    pub status_received_ms: Option<i64>,
    /// Its software version, as reported.
    pub version: Option<String>,
    /// Its clock minus the hub's when its latest status arrived (ms; the transfer time counts
    /// against it).
    pub clock_skew_ms: Option<i64>,
    /// Its own chain head, as reported.
    pub head_reported: Option<i64>,
    /// That head's event id, as reported.
    pub head_event_reported: Option<String>,
    /// Its chain's highest seq held here.
    pub head_held: i64,
    /// Its events held here.
    pub events_held: i64,
    /// Events up to the reported head that the hub does not hold (in transit, or lost).
    pub missing_at_hub: Option<i64>,
    /// Events in its quarantine, as reported.
    pub quarantined: Option<i64>,
    /// Its outbox towards each peer.
    pub outbox: Vec<OutboxCell>,
    /// Its catch-up cursors.
    pub cursors: Vec<StatusCursor>,
    /// Its chain's audit state at the hub.
    pub audit: Audit,
}

/// Every member's health: this node (its own figures, read live), each configured peer, and
/// any other origin of held events. `own`: this node's status now (`federation::status::build`).
///
/// # Errors
///
/// The database could not be read.
pub fn nodes(
    conn: &mut DbConn,
    me: &NodeId,
    own: NodeStatus,
    members: &[(NodeId, NodeRole)],
    chains: &[ChainHealth],
    now: Timestamp,
) -> QueryResult<Vec<NodeHealth>> {
    let mut statuses: BTreeMap<String, Held> = held(conn)?
        .into_iter()
        .map(|h| (h.status.node.clone(), h))
        .collect();
    statuses.insert(
        me.to_string(),
        Held {
            status: own,
            received_ms: now.millis(),
        },
    );
    let contacts: BTreeMap<String, Option<i64>> = peers::table
        .select((peers::node_id, peers::last_contact_ms))
        .load::<(String, Option<i64>)>(conn)?
        .into_iter()
        .collect();
    let mut names: Vec<(String, &'static str)> = vec![(me.to_string(), "hub")];
    for (id, role) in members {
        names.push((
            id.to_string(),
            match role {
                NodeRole::Hub => "hub",
                NodeRole::Province => "province",
            },
        ));
    }
    for c in chains {
        if !names.iter().any(|(n, _)| n == &c.origin) {
            names.push((c.origin.clone(), "unknown"));
        }
    }
    let mut out = Vec::with_capacity(names.len());
    for (node, role) in names {
        let chain = chains.iter().find(|c| c.origin == node);
        let (head_held, events_held, audit) = chain.map_or((0, 0, Audit::Ok), |c| {
            (c.head_held, c.events_held, c.audit.clone())
        });
        let status = statuses.remove(&node);
        let mine = node == me.as_str();
        let contact = contacts.get(&node).copied().flatten();
        let last_contact_ms = if mine {
            Some(now.millis())
        } else {
            contact.max(status.as_ref().map(|h| h.received_ms))
        };
        let (mut h, status_received_ms) = match status {
            Some(h) => {
                let received = h.received_ms;
                (Some(h), (!mine).then_some(received))
            }
            None => (None, None),
        };
        let since = |h: &Held| (now.millis() - h.received_ms).max(0);
        out.push(NodeHealth {
            last_contact_ms,
            status_received_ms,
            version: h.as_ref().map(|h| h.status.version.clone()),
            clock_skew_ms: h.as_ref().map(|h| {
                if mine {
                    0
                } else {
                    h.status.sent_at_ms - h.received_ms
                }
            }),
            head_reported: h.as_ref().map(|h| h.status.head.seq),
            head_event_reported: h.as_ref().and_then(|h| h.status.head.event.clone()),
            missing_at_hub: h
                .as_ref()
                .map(|h| (h.status.head.seq.max(head_held) - events_held).max(0)),
            quarantined: h.as_ref().map(|h| h.status.quarantined),
            outbox: h.as_ref().map_or_else(Vec::new, |h| {
                h.status
                    .outbox
                    .iter()
                    .map(|o| OutboxCell {
                        peer: o.peer.clone(),
                        depth: o.depth,
                        oldest_age_ms: o.oldest_age_ms.map(|a| a + since(h)),
                    })
                    .collect()
            }),
            cursors: h
                .as_mut()
                .map_or_else(Vec::new, |h| std::mem::take(&mut h.status.cursors)),
            node,
            role,
            head_held,
            events_held,
            audit,
        });
    }
    Ok(out)
}
