//! The federation's health as this node sees it — on the hub, which holds every event, for
//! the whole federation: per origin chain the head held and the events missing below it
//! (a gap), and events refused because another event holds their place (an equivocation) or
//! does not link (a broken chain), with their ids; per configured peer, last contact and the
//! delivery queue towards it (`federation::peers::status`).
//!
//! Not yet here: the signed status each node would send the hub (its own head, outbox matrix,
//! clock, version), so "head reported vs held" is "head held" only.

use std::collections::BTreeMap;

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{chain_heads, events, quarantine};

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
