//! `lapor-node audit verify`: re-verifies every stored event — strict JSON, id, signature with
//! the key valid at the event's time, the stored columns against the signed content, each
//! origin's chain (`seq` without gaps, `prev` = the previous id, no two events at one place) —
//! and folds every ticket, reporting events the lifecycle rules refuse. Faults name the event.
//!
//! Which chains can be judged whole depends on the node ([`Scope`]): every node holds its own
//! chain whole, and the hub holds every event's public part, so on the hub every chain must be
//! whole. A province holds only the events of tickets it takes part in: another origin's chain
//! there is *partial* by design — a missing stretch is reported as such, not as a fault, while
//! what it does hold is still checked (signatures, and `prev` wherever two consecutive events
//! are both held).

use std::collections::BTreeSet;

use diesel::prelude::*;

use super::keys::{self, KeysError};
use super::model::EventRow;
use super::store::{self as log, LogError};
use crate::crypto::signing;
use crate::db::DbConn;
use crate::db::schema::events;
use crate::domain::{NodeId, TicketId, chain, fold};

/// Whose chains the audit can expect to be whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// This node: its own chain is always whole.
    pub node: NodeId,
    /// Whether every chain is held whole here (the hub).
    pub holds_all: bool,
}

impl Scope {
    fn whole(&self, origin: &str) -> bool {
        self.holds_all || origin == self.node.as_str()
    }
}

/// A chain held in part (by design, on a province node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partial {
    /// The origin.
    pub origin: String,
    /// Events of it held here.
    pub held: u64,
    /// The highest `seq` held.
    pub head: i64,
}

/// One fault found by the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The event (id, or `origin#seq` when the id itself is in doubt).
    pub event: String,
    /// What is wrong.
    pub reason: String,
}

/// What the audit saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Events checked.
    pub events: u64,
    /// Events whose signature verified.
    pub verified: u64,
    /// Origins (chains) seen.
    pub origins: u64,
    /// Tickets folded.
    pub tickets: u64,
    /// Every fault.
    pub faults: Vec<Fault>,
    /// Chains held in part, as this node's role allows (not faults).
    pub partial: Vec<Partial>,
}

/// Audit failure (not a finding: the audit could not run).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Keys could not be read.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// Query failed.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

const PAGE: i64 = 1000;

/// Runs the audit over the whole log, judging chains as `scope` says they can be judged.
#[tracing::instrument(name = "event_log.audit", skip_all)]
pub fn run(conn: &mut DbConn, scope: &Scope) -> Result<Report, AuditError> {
    let keyring = keys::keyring(conn)?;
    let mut report = Report::default();
    let mut cursor: Option<(String, i64)> = None;
    let mut last: Option<(String, i64, String)> = None;
    let mut tickets = BTreeSet::new();
    loop {
        let mut q = events::table.select(EventRow::as_select()).into_boxed();
        if let Some((o, s)) = &cursor {
            q = q.filter(
                events::origin
                    .gt(o.clone())
                    .or(events::origin.eq(o.clone()).and(events::seq.gt(*s))),
            );
        }
        let rows: Vec<EventRow> = q
            .order((events::origin.asc(), events::seq.asc()))
            .limit(PAGE)
            .load(conn)?;
        let Some(tail) = rows.last() else { break };
        cursor = Some((tail.origin.clone(), tail.seq));
        for row in rows {
            report.events += 1;
            tickets.insert(row.ticket.clone());
            let mut fault = |reason: String| {
                report.faults.push(Fault {
                    event: row.id.clone(),
                    reason,
                });
            };
            match signing::verify(row.raw.as_bytes(), &keyring) {
                Ok(e) => {
                    report.verified += 1;
                    let columns_match = e.id.as_str() == row.id
                        && e.origin.as_str() == row.origin
                        && i64::try_from(e.seq).ok() == Some(row.seq)
                        && e.ticket.to_string() == row.ticket
                        && e.change.kind() == row.kind;
                    if !columns_match {
                        fault("stored columns do not match the signed event".into());
                    }
                }
                Err(e) => fault(e.to_string()),
            }
            // Chain continuity within the origin (`domain::chain`); a chain held in part may
            // miss events, nothing else.
            let whole = scope.whole(&row.origin);
            let before = match &last {
                Some((origin, seq, id)) if *origin == row.origin => {
                    Some((u64::try_from(*seq).unwrap_or(0), id.as_str()))
                }
                _ => {
                    report.origins += 1;
                    if !whole {
                        report.partial.push(Partial {
                            origin: row.origin.clone(),
                            held: 0,
                            head: 0,
                        });
                    }
                    None
                }
            };
            let place = chain::Place {
                origin: &row.origin,
                seq: u64::try_from(row.seq).unwrap_or(0),
                id: &row.id,
                prev: row.prev.as_deref(),
            };
            if let Err(f) = chain::check_place(before, place) {
                if whole || !f.is_missing_events() {
                    fault(f.to_string());
                }
            }
            if let Some(p) = report.partial.last_mut().filter(|p| p.origin == row.origin) {
                p.held += 1;
                p.head = row.seq;
            }
            last = Some((row.origin.clone(), row.seq, row.id.clone()));
        }
    }
    // A chain with no missing stretch in what is held is not partial.
    report
        .partial
        .retain(|p| i64::try_from(p.held).ok() != Some(p.head));
    for t in tickets {
        report.tickets += 1;
        let Ok(id) = TicketId::parse(&t) else {
            report.faults.push(Fault {
                event: t.clone(),
                reason: "ticket id is not a UUIDv7".into(),
            });
            continue;
        };
        let decoded: Vec<_> = log::for_ticket(conn, &id)?
            .iter()
            .filter_map(|r| log::decode(r).ok())
            .collect();
        for (event, why) in fold::fold(&decoded).rejected {
            report.faults.push(Fault {
                event: event.to_string(),
                reason: format!("refused by the lifecycle: {why}"),
            });
        }
    }
    Ok(report)
}
